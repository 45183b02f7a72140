//go:build linux

package testnet

import (
	"net"
	"net/netip"
	"testing"

	"github.com/portctl/portctl/netns"
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
	return serve(t, l, nil)
}

// In runs fn on a locked thread inside the network namespace name (as ip
// netns names it): sockets fn makes belong to that namespace for good.
// The thread comes back to the test's namespace afterwards.
func In(t testing.TB, name string, fn func()) {
	t.Helper()
	if err := netns.Do("/run/netns/"+name, fn); err != nil {
		t.Fatal(err)
	}
}
