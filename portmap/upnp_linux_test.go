//go:build linux

package portmap

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/netns"
)

var updateUPnP = flag.Bool("update-upnp", false, "rewrite testdata/upnp from the real router (TestIntegrationUPnP)")

// nsHTTPClient is an HTTP client whose connections are made inside the
// network namespace ns: net/http dials on goroutines of its own, which
// testnet.In's locked thread does not cover.
func nsHTTPClient(t *testing.T, ns string) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			var err error
			var d net.Dialer
			if nerr := netns.Do("/run/netns/"+ns, func() { c, err = d.DialContext(ctx, network, addr) }); nerr != nil {
				return nil, nerr
			}
			return c, err
		},
		DisableKeepAlives: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: 5 * time.Second, Transport: tr}
}

// upnpRouter is the real router and an IGD client of it from the lan.
func upnpRouter(t *testing.T) (*testnet.Router, *IGD, *http.Client) {
	r := testnet.NewRouter(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("miniupnpd's log:\n%s", r.Log())
		}
	})
	hc := nsHTTPClient(t, r.LAN)
	var cs []*IGD
	var err error
	ctx := testContext(t)
	// Multicast only, on every interface of the lan namespace.
	testnet.In(t, r.LAN, func() { cs, err = DiscoverUPnP(ctx, UPnPOptions{HTTPClient: hc, Wait: 2 * time.Second}) })
	if err != nil {
		t.Fatalf("DiscoverUPnP in the lan: %v\nminiupnpd's log:\n%s", err, r.Log())
	}
	if len(cs) == 0 || cs[0].Gateway() != r.RouterLAN {
		t.Fatalf("DiscoverUPnP in the lan found %v; want the router at %v", cs, r.RouterLAN)
	}
	return r, cs[0], hc
}

// in runs fn inside the lan namespace.
func in(t *testing.T, r *testnet.Router, fn func()) { testnet.In(t, r.LAN, fn) }

// TestIntegrationUPnP: against Debian's miniupnpd, discovery from the lan
// finds the router (by multicast, and by unicast alone); a mapping of a
// lan listener makes a connection from the wan arrive; upnpc -l and List
// show it with its description; Unmap removes it; a port the router's
// deny rule forbids gives an error naming the refusal.
func TestIntegrationUPnP(t *testing.T) {
	r, c, hc := upnpRouter(t)
	ctx := testContext(t)
	t.Logf("found %v", c)

	// Unicast only, to the gateway.
	var cs []*IGD
	var err error
	in(t, r, func() {
		cs, err = DiscoverUPnP(ctx, UPnPOptions{HTTPClient: hc, Gateway: r.RouterLAN, NoMulticast: true, Wait: 2 * time.Second})
	})
	if err != nil || len(cs) == 0 || cs[0].Gateway() != r.RouterLAN {
		t.Errorf("DiscoverUPnP by unicast to %v = %v, %v; want the router", r.RouterLAN, cs, err)
	}

	// Multicast on the named interface only.
	in(t, r, func() {
		cs, err = DiscoverUPnP(ctx, UPnPOptions{HTTPClient: hc, Interfaces: []string{"lr"}, Wait: 2 * time.Second})
	})
	if err != nil || len(cs) == 0 || cs[0].Gateway() != r.RouterLAN {
		t.Errorf("DiscoverUPnP by multicast on lr = %v, %v; want the router", cs, err)
	}
	// Several interfaces, the router on one, the lan's multicast route
	// through another: a search sent where the route says finds nothing;
	// one on every interface (the default) finds the router.
	// (A veth pair inside the lan: this kernel has no dummy devices.)
	testnet.Run(t, "ip", "-n", r.LAN, "link", "add", "other0", "type", "veth", "peer", "name", "other1")
	testnet.Run(t, "ip", "-n", r.LAN, "link", "set", "other0", "up")
	testnet.Run(t, "ip", "-n", r.LAN, "link", "set", "other1", "up")
	testnet.Run(t, "ip", "-n", r.LAN, "addr", "add", "10.66.0.10/24", "dev", "other0")
	testnet.Run(t, "ip", "-n", r.LAN, "route", "add", "239.0.0.0/8", "dev", "other0")
	in(t, r, func() {
		_, err = DiscoverUPnP(ctx, UPnPOptions{HTTPClient: hc, Interfaces: []string{"other0"}, Wait: 300 * time.Millisecond})
	})
	if !errors.Is(err, ErrNoAnswer) {
		t.Errorf("DiscoverUPnP on other0 alone = %v; want no answer there", err)
	}
	in(t, r, func() { cs, err = DiscoverUPnP(ctx, UPnPOptions{HTTPClient: hc, Wait: 2 * time.Second}) })
	if err != nil || len(cs) == 0 || cs[0].Gateway() != r.RouterLAN {
		t.Errorf("DiscoverUPnP on every interface, the multicast route through other0 = %v, %v; want the router", cs, err)
	}
	testnet.Run(t, "ip", "-n", r.LAN, "link", "del", "other0") // upnpc -l, below, fails while it is there

	in(t, r, func() {
		_, err = DiscoverUPnP(ctx, UPnPOptions{HTTPClient: hc, Interfaces: []string{"nosuch0"}, Wait: 200 * time.Millisecond})
	})
	if err == nil || !strings.Contains(err.Error(), "nosuch0") {
		t.Errorf("DiscoverUPnP on interface nosuch0: %v; want an error naming it", err)
	}

	var ext netip.Addr
	in(t, r, func() { ext, _, err = c.ExternalAddress(ctx) })
	if err != nil || ext != r.External {
		t.Fatalf("ExternalAddress = %v, %v; want %v", ext, err, r.External)
	}

	if *updateUPnP {
		resp, err := hc.Get(fmt.Sprintf("http://%s:%d/rootDesc.xml", r.RouterLAN, r.HTTPPort))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := os.WriteFile(filepath.Join("testdata", "upnp", "miniupnpd-rootDesc.xml"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	l := testnet.ListenIn(t, r.LAN, netip.AddrPortFrom(r.LANAddr, 0))
	port := 40000 + l.Port()%20000
	outside := netip.AddrPortFrom(r.External, port)
	if r.Connects(t, outside, 500*time.Millisecond) {
		t.Fatalf("%v connects before any mapping", outside)
	}
	desc := fmt.Sprintf("portctl test %d", port)
	var m Mapping
	start := time.Now()
	in(t, r, func() {
		m, err = c.Map(ctx, Request{Proto: "tcp", Internal: netip.AddrPortFrom(netip.IPv4Unspecified(), l.Port()),
			External: port, Lease: 10 * time.Minute, Description: desc})
	})
	if err != nil {
		t.Fatalf("Map: %v\nminiupnpd's log:\n%s", err, r.Log())
	}
	if !connectsWithin(t, r, outside, 5*time.Second) {
		t.Fatalf("%v does not connect from the wan after Map; rules %q", outside, r.Redirects(t))
	}
	t.Logf("from Map to a working connection from the wan: %v", time.Since(start).Round(time.Millisecond))
	want := Mapping{Protocol: UPnP, Proto: "tcp", Internal: netip.AddrPortFrom(r.LANAddr, l.Port()),
		External: outside, Lease: 10 * time.Minute, Description: desc}
	if m != want {
		t.Errorf("Map = %+v; want %+v", m, want)
	}

	if _, err := exec.LookPath("upnpc"); err != nil {
		t.Log("no upnpc (Debian package miniupnpc): the reference client's view is not checked")
	} else {
		out, err := r.Exec(t, r.LAN, 10*time.Second, "upnpc", "-l")
		if err != nil || !strings.Contains(out, desc) || !strings.Contains(out, fmt.Sprintf("%d->%s:%d", port, r.LANAddr, l.Port())) {
			t.Errorf("upnpc -l does not list %d->%s:%d %q: %v\n%s", port, r.LANAddr, l.Port(), desc, err, out)
		}
	}

	var got Mapping
	var ok bool
	in(t, r, func() { got, ok, err = c.Lookup(ctx, m) })
	if err != nil || !ok || got.Internal != want.Internal || got.Description != desc || got.Lease <= 0 || got.Lease > want.Lease {
		t.Errorf("Lookup = %+v, %v, %v; want %+v with what remains of its lease", got, ok, err, want)
	}

	var list []Mapping
	in(t, r, func() { list, err = c.List(ctx) })
	if err != nil || !slices.ContainsFunc(list, func(x Mapping) bool {
		return x.External == outside && x.Internal == want.Internal && x.Description == desc && x.Proto == "tcp"
	}) {
		t.Errorf("List = %+v, %v; want it to hold %+v", list, err, want)
	}

	in(t, r, func() { err = c.Unmap(ctx, m) })
	if err != nil {
		t.Fatalf("Unmap: %v", err)
	}
	if r.Connects(t, outside, 500*time.Millisecond) {
		t.Errorf("%v still connects after Unmap; rules %q", outside, r.Redirects(t))
	}
	in(t, r, func() { list, err = c.List(ctx) })
	if err != nil || len(list) != 0 {
		t.Errorf("List after Unmap = %+v, %v; want none", list, err)
	}
	in(t, r, func() { got, ok, err = c.Lookup(ctx, m) })
	if err != nil || ok {
		t.Errorf("Lookup after Unmap = %+v, %v, %v; want false", got, ok, err)
	}

	// External port 0: miniupnpd (IGDv2) picks one through
	// AddAnyPortMapping.
	in(t, r, func() {
		m, err = c.Map(ctx, Request{Proto: "tcp", Internal: netip.AddrPortFrom(netip.IPv4Unspecified(), l.Port()),
			Lease: time.Minute, Description: desc})
	})
	if err != nil || m.External.Port() == 0 || m.External.Addr() != r.External {
		t.Fatalf("Map with external port 0 = %+v, %v; want a port the router chose", m, err)
	}
	if !connectsWithin(t, r, m.External, 5*time.Second) {
		t.Errorf("%v (the router's choice) does not connect from the wan; rules %q", m.External, r.Redirects(t))
	}
	in(t, r, func() { err = c.Unmap(ctx, m) })
	if err != nil {
		t.Fatalf("Unmap: %v", err)
	}

	// The default rules deny ports below 1024.
	in(t, r, func() {
		_, err = c.Map(ctx, Request{Proto: "tcp", Internal: netip.AddrPortFrom(netip.IPv4Unspecified(), l.Port()),
			External: 80, Lease: time.Minute, Description: desc})
	})
	var ue *UPnPError
	if !errors.Is(err, ErrRefused) || !errors.As(err, &ue) || ue.Code == 0 {
		t.Fatalf("Map of denied port 80 = %v; want a UPnPError wrapping ErrRefused", err)
	}
	t.Logf("a denied port: %v", err)
}

// TestIntegrationUPnPRouterRestart: after miniupnpd restarts (its HTTP
// port changes, its mappings are gone) the client finds it again and
// maps anew.
func TestIntegrationUPnPRouterRestart(t *testing.T) {
	r, c, _ := upnpRouter(t)
	ctx := testContext(t)
	l := testnet.ListenIn(t, r.LAN, netip.AddrPortFrom(r.LANAddr, 0))
	port := 40000 + l.Port()%20000
	outside := netip.AddrPortFrom(r.External, port)
	req := Request{Proto: "tcp", Internal: netip.AddrPortFrom(netip.IPv4Unspecified(), l.Port()), External: port, Lease: 10 * time.Minute, Description: "portctl restart"}
	var err error
	in(t, r, func() { _, err = c.Map(ctx, req) })
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	_, before := c.Service()
	r.Restart(t)
	if r.Connects(t, outside, 500*time.Millisecond) {
		t.Fatalf("%v still connects after the router restarted", outside)
	}
	in(t, r, func() { _, err = c.Map(ctx, req) })
	if err != nil {
		t.Fatalf("Map after the router restarted: %v\nminiupnpd's log:\n%s", err, r.Log())
	}
	if _, after := c.Service(); after == before {
		t.Errorf("control URL still %s after the restart (HTTP port now %d)", after, r.HTTPPort)
	}
	if !connectsWithin(t, r, outside, 5*time.Second) {
		t.Errorf("%v does not connect after the remap; rules %q", outside, r.Redirects(t))
	}
}

// TestIntegrationUPnPLatency measures discovery and ExternalAddress
// against the real router, each time with a new client (no kept
// connection): the median of 20, and of its three steps: the SSDP search
// (multicast, and unicast to the gateway, ending at its answer), the
// device description, GetExternalIPAddress.
func TestIntegrationUPnPLatency(t *testing.T) {
	r, _, _ := upnpRouter(t)
	ctx := testContext(t)
	var total, search, desc, soap []time.Duration
	for range 20 {
		hc := nsHTTPClient(t, r.LAN)
		opts := UPnPOptions{HTTPClient: hc, Gateway: r.RouterLAN, Wait: 2 * time.Second}
		var err error
		start := time.Now()
		in(t, r, func() {
			var cs []*IGD
			cs, err = DiscoverUPnP(ctx, opts)
			if err == nil {
				_, _, err = cs[0].ExternalAddress(ctx)
			}
		})
		if err != nil {
			t.Fatalf("discovery and ExternalAddress: %v", err)
		}
		total = append(total, time.Since(start))

		// The same, step by step.
		var answers []ssdpAnswer
		var cs []*IGD
		t0 := time.Now()
		in(t, r, func() { answers, err = searchSSDP(ctx, opts) })
		t1 := time.Now()
		if err == nil && len(answers) > 0 {
			in(t, r, func() { cs, err = clientsAt(ctx, answers[0].Location, opts) })
		}
		t2 := time.Now()
		if err == nil && len(cs) > 0 {
			in(t, r, func() { _, _, err = cs[0].ExternalAddress(ctx) })
		}
		t3 := time.Now()
		if err != nil || len(cs) == 0 {
			t.Fatalf("step by step: %d answers, %d clients, %v", len(answers), len(cs), err)
		}
		search, desc, soap = append(search, t1.Sub(t0)), append(desc, t2.Sub(t1)), append(soap, t3.Sub(t2))
	}
	t.Logf("discovery + ExternalAddress, 20 runs: median %v (min %v, max %v); steps' medians: SSDP search %v, device description %v, GetExternalIPAddress %v",
		median(total), slices.Min(total).Round(10*time.Microsecond), slices.Max(total).Round(10*time.Microsecond),
		median(search), median(desc), median(soap))
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2].Round(10 * time.Microsecond)
}

// connectsWithin tries to connect from the wan to dst until it works or
// limit passes (every 20 ms).
func connectsWithin(t *testing.T, r *testnet.Router, dst netip.AddrPort, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if r.Connects(t, dst, 200*time.Millisecond) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
