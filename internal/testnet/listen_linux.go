//go:build linux

package testnet

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Listen opens a TCP listener inside the namespace on its address and the
// given port (0 for any), accepting and closing connections until the test
// ends.
func (n *Namespace) Listen(t testing.TB, port uint16) netip.AddrPort {
	t.Helper()
	return ListenIn(t, n.Name, netip.AddrPortFrom(n.Peer, port))
}

// ListenIn opens a TCP listener on addr inside the network namespace name,
// accepting and closing connections until the test ends, and returns its
// address.
func ListenIn(t testing.TB, name string, addr netip.AddrPort) netip.AddrPort {
	t.Helper()
	var l net.Listener
	var err error
	In(t, name, func() { l, err = net.Listen("tcp", addr.String()) })
	if err != nil {
		t.Fatalf("listen in %s: %v", name, err)
	}
	return serve(t, l)
}

// In runs fn on a locked thread inside the network namespace name (as ip
// netns names it): sockets fn makes belong to that namespace for good.
// The thread comes back to the test's namespace afterwards.
func In(t testing.TB, name string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatalf("setns %s: %v", name, err)
	}
	fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		panic("testnet: cannot return to the test's network namespace: " + err.Error())
	}
}
