//go:build linux

package portmap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
)

// The integration tests below run the NAT-PMP and PCP clients inside the
// lan namespace of a real router (testnet.NewRouter: Debian's miniupnpd
// between a lan and a wan namespace), each the same way.

// routerClient is a client under test and the namespace it runs in.
type routerClient struct {
	r *testnet.Router
	c Client
}

// routerProtocols are the NAT-PMP and PCP clients of r's gateway.
var routerProtocols = []struct {
	name string
	new  func(r *testnet.Router) Client
}{
	{"natpmp", func(r *testnet.Router) Client { return NewNATPMP(r.RouterLAN) }},
	{"pcp", func(r *testnet.Router) Client { return NewPCP(r.RouterLAN, netip.Addr{}) }},
}

// forEachProtocol runs test as a subtest for NAT-PMP and PCP, each with a
// router of its own made with cfg.
func forEachProtocol(t *testing.T, cfg testnet.RouterConfig, test func(t *testing.T, rc routerClient)) {
	for _, p := range routerProtocols {
		t.Run(p.name, func(t *testing.T) {
			r := testnet.NewRouter(t, cfg)
			test(t, routerClient{r, p.new(r)})
		})
	}
}

// ctxFor is a context that ends after limit or with the test.
func ctxFor(t *testing.T, limit time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	t.Cleanup(cancel)
	return ctx
}

// external runs ExternalAddress inside the lan.
func (rc routerClient) external(t *testing.T) (netip.Addr, uint32, error) {
	t.Helper()
	var a netip.Addr
	var epoch uint32
	var err error
	testnet.In(t, rc.r.LAN, func() { a, epoch, err = rc.c.ExternalAddress(ctxFor(t, 5*time.Second)) })
	return a, epoch, err
}

// mapPort runs Map inside the lan.
func (rc routerClient) mapPort(t *testing.T, req Request) (Mapping, error) {
	t.Helper()
	var m Mapping
	var err error
	// 10 s: a request the router denies takes miniupnpd 2.3.1 a while.
	testnet.In(t, rc.r.LAN, func() { m, err = rc.c.Map(ctxFor(t, 10*time.Second), req) })
	return m, err
}

// unmap runs Unmap inside the lan.
func (rc routerClient) unmap(t *testing.T, m Mapping) error {
	t.Helper()
	var err error
	testnet.In(t, rc.r.LAN, func() { err = rc.c.Unmap(ctxFor(t, 5*time.Second), m) })
	return err
}

// listener starts a TCP listener in the lan and returns the request that
// maps it, asking for external port ext.
func (rc routerClient) listener(t *testing.T, ext uint16, lease time.Duration) Request {
	l := testnet.ListenIn(t, rc.r.LAN, netip.AddrPortFrom(rc.r.LANAddr, 0))
	return Request{Proto: "tcp", Internal: netip.AddrPortFrom(netip.Addr{}, l.Port()), External: ext, Lease: lease}
}

// externalOf is m's external address and port (NAT-PMP does not say the
// address in a mapping's answer: the router's is used).
func (rc routerClient) externalOf(m Mapping) netip.AddrPort {
	return netip.AddrPortFrom(rc.r.External, m.External.Port())
}

// connectsWithin polls, every 50 ms for at most limit, until a
// connection from the wan to dst succeeds (want true) or fails (want
// false), and returns how long that took and whether it happened.
func (rc routerClient) connectsWithin(t *testing.T, dst netip.AddrPort, want bool, limit time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < limit {
		if rc.r.Connects(t, dst, 200*time.Millisecond) == want {
			return time.Since(start), true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return limit, false
}

// upnpcList is `upnpc -l` run in the lan against the router's description
// (found without SSDP): the redirections it lists, one per line.
func (rc routerClient) upnpcList(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("upnpc"); err != nil {
		t.Skip("needs upnpc (Debian package miniupnpc; bash test-deps.sh installs it)")
	}
	url := fmt.Sprintf("http://%s/rootDesc.xml", netip.AddrPortFrom(rc.r.RouterLAN, rc.r.HTTPPort))
	out, err := rc.r.Exec(t, rc.r.LAN, 10*time.Second, "upnpc", "-u", url, "-l")
	if err != nil {
		t.Fatalf("upnpc -u %s -l: %v\n%s", url, err, out)
	}
	return out
}

// listed says whether upnpc -l's output has a TCP redirection of ext to
// internal.
func listed(out string, ext uint16, internal netip.AddrPort) bool {
	want := fmt.Sprintf("TCP %5d->%s", ext, internal)
	return slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool { return strings.Contains(l, want) })
}

func TestIntegrationExternalAddress(t *testing.T) {
	forEachProtocol(t, testnet.RouterConfig{}, func(t *testing.T, rc routerClient) {
		a, epoch, err := rc.external(t)
		if err != nil {
			t.Fatalf("ExternalAddress: %v\n%s", err, rc.r.Log())
		}
		if a != rc.r.External {
			t.Errorf("ExternalAddress() = %s; want the router's WAN address %s", a, rc.r.External)
		}
		t.Logf("external address %s, epoch %d", a, epoch)
		// The reference client says the same.
		if _, err := exec.LookPath("natpmpc"); err != nil {
			t.Skip("needs natpmpc (Debian package natpmpc; bash test-deps.sh installs it)")
		}
		out, err := rc.r.Exec(t, rc.r.LAN, 10*time.Second, "natpmpc", "-g", rc.r.RouterLAN.String())
		if want := "Public IP address : " + a.String(); err != nil || !strings.Contains(out, want) {
			t.Errorf("natpmpc -g %s: %v; want %q in\n%s", rc.r.RouterLAN, err, want, out)
		}
	})
}

func TestIntegrationMapUnmap(t *testing.T) {
	forEachProtocol(t, testnet.RouterConfig{}, func(t *testing.T, rc routerClient) {
		req := rc.listener(t, 0, time.Minute)
		req.External = 20000 + req.Internal.Port()%20000
		start := time.Now()
		m, err := rc.mapPort(t, req)
		if err != nil {
			t.Fatalf("Map(%+v): %v\n%s", req, err, rc.r.Log())
		}
		ext := rc.externalOf(m)
		took, ok := rc.connectsWithin(t, ext, true, 3*time.Second)
		if !ok {
			t.Fatalf("after Map = %+v, %s does not connect from the wan; rules %q", m, ext, rc.r.Redirects(t))
		}
		t.Logf("Map to a working connection from the wan: %s (the first connection attempt after Map returned: %s)", time.Since(start), took)
		if m.Lease != time.Minute || m.Internal != netip.AddrPortFrom(rc.r.LANAddr, req.Internal.Port()) || m.Proto != "tcp" {
			t.Errorf("Map(%+v) = %+v; want a lease of 1m0s to %s:%d", req, m, rc.r.LANAddr, req.Internal.Port())
		}
		if m.External.Addr().IsValid() && m.External.Addr() != rc.r.External {
			t.Errorf("Map: external %s; want the router's %s", m.External, rc.r.External)
		}
		if out := rc.upnpcList(t); !listed(out, m.External.Port(), m.Internal) {
			t.Errorf("upnpc -l does not list %d->%s:\n%s", m.External.Port(), m.Internal, out)
		}
		if err := rc.unmap(t, m); err != nil {
			t.Fatalf("Unmap: %v", err)
		}
		if _, ok := rc.connectsWithin(t, ext, false, 3*time.Second); !ok {
			t.Errorf("after Unmap, %s still connects from the wan; rules %q", ext, rc.r.Redirects(t))
		}
		if out := rc.upnpcList(t); listed(out, m.External.Port(), m.Internal) {
			t.Errorf("after Unmap, upnpc -l still lists %d->%s:\n%s", m.External.Port(), m.Internal, out)
		}
	})
}

func TestIntegrationDenied(t *testing.T) {
	// miniupnpd moves a mapping to an allowed external port when it can:
	// a host it denies every port gets the refusal.
	deny := testnet.RouterConfig{Rules: []string{"deny 0-65535 192.168.77.10/32 0-65535", "allow 1024-65535 192.168.77.0/24 1024-65535"}}
	forEachProtocol(t, deny, func(t *testing.T, rc routerClient) {
		// Each denied request makes miniupnpd 2.3.1 try all 65,535 external
		// ports (0.5 s here, more under load): sent once, not again at
		// 250 ms, so that it does not queue several.
		switch c := rc.c.(type) {
		case *natpmpClient:
			c.first = 4 * time.Second
		case *pcpClient:
			c.first = 4 * time.Second
		}
		req := rc.listener(t, 0, time.Minute)
		m, err := rc.mapPort(t, req)
		var re *ResultError
		if !errors.Is(err, ErrRefused) || !errors.As(err, &re) || re.Name != "NOT_AUTHORIZED" || !strings.Contains(err.Error(), "NOT_AUTHORIZED") {
			t.Fatalf("Map of a denied port = %+v, %v; want a refusal: NOT_AUTHORIZED", m, err)
		}
		t.Logf("refused: %v", err)
	})
}

func TestIntegrationLease(t *testing.T) {
	short := testnet.RouterConfig{MinLifetime: 2 * time.Second, MaxLifetime: 60 * time.Second}
	forEachProtocol(t, short, func(t *testing.T, rc routerClient) {
		// Two mappings of 2 s: one left to expire, one renewed every
		// second.
		left, renewed := rc.listener(t, 0, 2*time.Second), rc.listener(t, 0, 2*time.Second)
		ml, err := rc.mapPort(t, left)
		if err != nil {
			t.Fatalf("Map: %v", err)
		}
		mr, err := rc.mapPort(t, renewed)
		if err != nil {
			t.Fatalf("Map: %v", err)
		}
		if ml.Lease != 2*time.Second {
			t.Errorf("Map(lease 2s).Lease = %s; want 2s", ml.Lease)
		}
		start := time.Now()
		var expired time.Duration
		for i := 0; i < 6 && time.Since(start) < 8*time.Second; i++ {
			time.Sleep(time.Second)
			m, err := rc.mapPort(t, renewed)
			if err != nil {
				t.Fatalf("renewing after %s: %v", time.Since(start).Round(time.Millisecond), err)
			}
			if m.External != mr.External {
				t.Errorf("renewal moved the mapping from %s to %s", mr.External, m.External)
			}
			if expired == 0 && !rc.r.Connects(t, rc.externalOf(ml), 200*time.Millisecond) {
				expired = time.Since(start)
			}
		}
		if expired == 0 {
			t.Errorf("the mapping of 2 s not renewed still connects after %s; rules %q", time.Since(start).Round(time.Millisecond), rc.r.Redirects(t))
		} else {
			t.Logf("a lease of 2 s not renewed: gone within %s", expired.Round(time.Second))
		}
		if !rc.r.Connects(t, rc.externalOf(mr), time.Second) {
			t.Errorf("the mapping renewed every second no longer connects after %s", time.Since(start).Round(time.Millisecond))
		}
	})
}

func TestIntegrationRestartEpoch(t *testing.T) {
	forEachProtocol(t, testnet.RouterConfig{}, func(t *testing.T, rc routerClient) {
		req := rc.listener(t, 0, time.Minute)
		m, err := rc.mapPort(t, req)
		if err != nil {
			t.Fatalf("Map: %v", err)
		}
		time.Sleep(2100 * time.Millisecond)
		_, before, err := rc.external(t)
		if err != nil {
			t.Fatalf("ExternalAddress: %v", err)
		}
		rc.r.Restart(t)
		_, after, err := rc.external(t)
		if err != nil {
			t.Fatalf("ExternalAddress after Restart: %v", err)
		}
		t.Logf("epoch %d at the mapping, %d before the restart, %d after", m.Epoch, before, after)
		if before < 2 || after >= before {
			t.Errorf("epoch %d before Restart, %d after; want at least 2, then less", before, after)
		}
		if rc.r.Connects(t, rc.externalOf(m), time.Second) {
			t.Errorf("after Restart, %s still connects", rc.externalOf(m))
		}
		// Mapping again (as a client seeing the epoch go back does) works.
		m2, err := rc.mapPort(t, req)
		if err != nil {
			t.Fatalf("Map after Restart: %v", err)
		}
		if _, ok := rc.connectsWithin(t, rc.externalOf(m2), true, 3*time.Second); !ok {
			t.Errorf("mapped again after Restart, %s does not connect", rc.externalOf(m2))
		}
	})
}

// TestIntegrationExternalAddressLatency measures ExternalAddress against
// the real router: the median of 20 (PCP's is two round trips: a MAP and
// its deletion).
func TestIntegrationExternalAddressLatency(t *testing.T) {
	forEachProtocol(t, testnet.RouterConfig{}, func(t *testing.T, rc routerClient) {
		var took []time.Duration
		for range 20 {
			start := time.Now()
			if _, _, err := rc.external(t); err != nil {
				t.Fatalf("ExternalAddress: %v", err)
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		median := (took[9] + took[10]) / 2
		t.Logf("ExternalAddress: median of 20 %s (fastest %s, slowest %s)", median, took[0], took[19])
		if median > 250*time.Millisecond {
			t.Errorf("ExternalAddress: median of 20 %s; want under 250 ms on this link", median)
		}
	})
}
