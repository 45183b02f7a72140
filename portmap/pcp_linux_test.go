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

// TestIntegrationUPnPPinhole: IGDv2's WANIPv6FirewallControl in Debian's
// miniupnpd, asked over IPv6 (the router found by a unicast search to its
// IPv6 address): Map opens a pinhole to the lan's listener that lets a
// connection from the wan in; Map again renews it (UpdatePinhole); Lookup
// finds it; after the router restarts, Map opens it again; Unmap closes
// it, and Lookup then does not.
func TestIntegrationUPnPPinhole(t *testing.T) {
	r := testnet.NewRouter(t, testnet.RouterConfig{IPv6: true})
	var igds []*IGD
	var err error
	testnet.In(t, r.LAN, func() {
		igds, err = DiscoverUPnP(ctxFor(t, 5*time.Second), UPnPOptions{Gateway: r.RouterLAN6, HTTPClient: nsHTTPClient(t, r.LAN), Wait: 2 * time.Second})
	})
	if err != nil || len(igds) == 0 {
		t.Fatalf("DiscoverUPnP over IPv6: %v, %v\n%s", igds, err, r.Log())
	}
	if igds[0].firewall() == nil {
		t.Fatalf("the router's IGD has no WANIPv6FirewallControl")
	}
	rc := routerClient{r, igds[0]}
	l := testnet.ListenIn(t, r.LAN, netip.AddrPortFrom(r.LAN6, 0))
	if r.Connects(t, l, 300*time.Millisecond) {
		t.Fatalf("%s connects from the wan before any pinhole", l)
	}
	req := Request{Proto: "tcp", Internal: netip.AddrPortFrom(netip.IPv6Unspecified(), l.Port()), Lease: time.Minute, Description: "pinhole"}
	m, err := rc.mapPort(t, req)
	if err != nil {
		t.Fatalf("Map(%s): %v\n%s", l, err, r.Log())
	}
	if m.External != l || m.Internal != l || m.Lease != time.Minute {
		t.Errorf("Map(%s) = %+v; want the lan's own address and port, a minute's lease", l, m)
	}
	if _, ok := rc.connectsWithin(t, l, true, 3*time.Second); !ok {
		t.Fatalf("after Map, %s does not connect from the wan\n%s", l, r.Log())
	}
	if _, err := rc.mapPort(t, req); err != nil {
		t.Errorf("Map again (renewal): %v", err)
	}
	var found bool
	testnet.In(t, r.LAN, func() { _, found, err = igds[0].Lookup(ctxFor(t, 5*time.Second), m) })
	if err != nil || !found {
		t.Errorf("Lookup of the open pinhole: %v, %v; want found", found, err)
	}
	// A router that restarts loses its pinholes and listens elsewhere:
	// the renewal finds it again and opens the pinhole anew.
	r.Restart(t)
	if _, ok := rc.connectsWithin(t, l, false, 3*time.Second); !ok {
		t.Fatalf("after the router restarted, %s still connects from the wan", l)
	}
	if _, err := rc.mapPort(t, req); err != nil {
		t.Fatalf("Map after the router restarted: %v\n%s", err, r.Log())
	}
	if _, ok := rc.connectsWithin(t, l, true, 3*time.Second); !ok {
		t.Fatalf("after the renewal that followed the restart, %s does not connect from the wan", l)
	}
	if err := rc.unmap(t, m); err != nil {
		t.Fatalf("Unmap: %v", err)
	}
	if _, ok := rc.connectsWithin(t, l, false, 3*time.Second); !ok {
		t.Errorf("after Unmap, %s still connects from the wan", l)
	}
	testnet.In(t, r.LAN, func() { _, found, err = igds[0].Lookup(ctxFor(t, 5*time.Second), m) })
	if err != nil || found {
		t.Errorf("Lookup after Unmap: %v, %v; want not found", found, err)
	}
}
