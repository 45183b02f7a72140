package web

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/registry"
)

// TestIntegrationMachineNamesContainers: the dashboard's table, from a
// namespace where a real Docker daemon publishes a container's port, names
// the container behind docker-proxy's listener.
func TestIntegrationMachineNamesContainers(t *testing.T) {
	e := testnet.StartDocker(t, testnet.DockerOptions{})
	port := uint16(20000 + rand.IntN(10000))
	e.Run(t, "run", "-d", "--name", "shopfront", "-p", fmt.Sprintf("%d:80", port), e.Image, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www")
	m := Machine{NetNS: "/run/netns/" + e.NS.Name, ContainerHosts: []string{e.Host}}
	s, err := New(Options{Source: m})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		tab, err := m.Table(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for i := range tab.Sockets {
			x := &tab.Sockets[i]
			if x.Local.Port() == port && x.Listening() {
				if r := s.row(x, registry.Range{}); r.Container == "shopfront" && r.Process == "docker-proxy" {
					return
				} else if time.Now().After(deadline) {
					t.Fatalf("row of the published port = %+v; want docker-proxy for container shopfront", r)
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listener on port %d in %s after 10s", port, e.NS.Name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
