package containers

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/portctl/portctl/internal/testnet"
)

// TestIntegrationList asks a real Docker daemon, started in a namespace of
// the test's own, for a container with Compose labels and a published port.
func TestIntegrationList(t *testing.T) {
	d := testnet.StartDocker(t, testnet.DockerOptions{})
	id := d.Run(t, "run", "-d", "--name", "cache", "-l", "com.docker.compose.project=shop", "-l", "com.docker.compose.service=redis",
		"-p", "127.0.0.1:16379:6379/tcp", "-p", "15353:53/udp", d.Image, "/bin/busybox", "sleep", "300")
	cs, err := List(context.Background(), Config{Hosts: []string{"unix:///nonexistent/docker.sock", d.Host}})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 {
		t.Fatalf("List = %+v; want one container", cs)
	}
	c := cs[0]
	if c.ID != id || c.Name != "cache" || c.Image != d.Image || c.Runtime != "docker" || c.ComposeProject != "shop" || c.ComposeService != "redis" {
		t.Errorf("container = %+v; want cache (%s), shop/redis, %s", c.ContainerInfo, id, d.Image)
	}
	if len(c.Addrs) == 0 || !c.Addrs[0].Is4() {
		t.Errorf("addresses = %v; want the bridge's IPv4 address", c.Addrs)
	}
	want := Port{Proto: "tcp", Host: netip.MustParseAddrPort("127.0.0.1:16379"), Container: 6379}
	if !slices.Contains(c.Ports, want) || !slices.ContainsFunc(c.Ports, func(p Port) bool { return p.Proto == "udp" && p.Host.Port() == 15353 && p.Container == 53 }) {
		t.Errorf("ports = %+v; want %+v and udp 15353→53", c.Ports, want)
	}
	if x := NewIndex(cs); x.ByID(id[:12]) == nil || len(x.Publishing("udp", 15353)) == 0 {
		t.Errorf("index of the real answer: ByID(%s) or Publishing(udp, 15353) missing", id[:12])
	}
}

func TestListNoEngine(t *testing.T) {
	_, err := List(context.Background(), Config{Hosts: []string{"unix://" + filepath.Join(t.TempDir(), "docker.sock")}})
	if !errors.Is(err, ErrNoEngine) {
		t.Errorf("List with no socket: %v; want ErrNoEngine", err)
	}
}
