//go:build linux

package portmap

import (
	"net/netip"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
)

// TestIntegrationPCPPinhole: a PCP MAP from the lan's IPv6 address opens
// a pinhole in Debian's miniupnpd (no NAT: the external address and port
// are the lan's own), which lets a connection from the wan in, and Unmap
// closes it.
func TestIntegrationPCPPinhole(t *testing.T) {
	r := testnet.NewRouter(t, testnet.RouterConfig{IPv6: true})
	rc := routerClient{r, NewPCP(r.RouterLAN6, r.LAN6)}
	l := testnet.ListenIn(t, r.LAN, netip.AddrPortFrom(r.LAN6, 0))
	if r.Connects(t, l, 300*time.Millisecond) {
		t.Fatalf("%s connects from the wan before any pinhole", l)
	}
	m, err := rc.mapPort(t, Request{Proto: "tcp", Internal: l, Lease: time.Minute})
	if err != nil {
		t.Fatalf("Map(%s): %v\n%s", l, err, r.Log())
	}
	if m.External != l || m.Internal != l {
		t.Errorf("Map(%s) = %+v; want the pinhole's external address and port the lan's own", l, m)
	}
	if _, ok := rc.connectsWithin(t, l, true, 3*time.Second); !ok {
		t.Fatalf("after Map, %s does not connect from the wan", l)
	}
	if err := rc.unmap(t, m); err != nil {
		t.Fatalf("Unmap: %v", err)
	}
	if _, ok := rc.connectsWithin(t, l, false, 3*time.Second); !ok {
		t.Errorf("after Unmap, %s still connects from the wan", l)
	}
}
