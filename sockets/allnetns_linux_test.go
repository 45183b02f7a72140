package sockets_test

import (
	"context"
	"net"
	"os"
	"testing"

	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/sockets"
)

// TestIntegrationListAll finds a listener inside a namespace the test made,
// labelled with that namespace, and one in this process's own.
func TestIntegrationListAll(t *testing.T) {
	ns := testnet.NewNamespace(t)
	inside := ns.Listen(t, 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	here := uint16(l.Addr().(*net.TCPAddr).Port)

	tbl, err := sockets.ListAll(context.Background(), sockets.Query{
		Protos: sockets.TCP, Families: sockets.AllFamilies, States: sockets.StatesOf(sockets.Listen), Processes: true})
	if err != nil {
		t.Fatal(err)
	}
	byInode := map[uint64]sockets.Namespace{}
	for _, n := range tbl.Namespaces {
		byInode[n.Inode] = n
	}
	var foundInside, foundHere bool
	for _, s := range tbl.Sockets {
		n, ok := byInode[s.NetNS]
		if !ok {
			t.Fatalf("socket %v has netns %d, which Namespaces does not describe", s.Local, s.NetNS)
		}
		held := len(s.Processes) > 0 && s.Processes[0].PID == os.Getpid()
		if s.Local.Port() == inside.Port() && n.Name == ns.Name && held {
			foundInside = true
		}
		if s.Local.Port() == here && held {
			foundHere = true
		}
	}
	if !foundInside {
		t.Errorf("ListAll has no listener on port %d in namespace %s held by this process", inside.Port(), ns.Name)
	}
	if !foundHere {
		t.Errorf("ListAll has no listener on port %d in this namespace", here)
	}
}
