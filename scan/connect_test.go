package scan_test

import (
	"context"
	"net"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/scan"
)

// probesOf returns a next function over the given ports of addr.
func probesOf(addr netip.Addr, ports []uint16) func() (scan.Probe, bool) {
	i := 0
	return func() (scan.Probe, bool) {
		if i == len(ports) {
			return scan.Probe{}, false
		}
		i++
		return scan.Probe{Addr: addr, Port: ports[i-1]}, true
	}
}

// engine is scan.Connect, scan.UDP or scan.SYN with its configuration
// given.
type engine func(ctx context.Context, next func() (scan.Probe, bool), emit func(scan.Result)) error

// runEngine runs run over the ports of addr and returns one result per
// port, failing on duplicates or gaps.
func runEngine(t testing.TB, addr netip.Addr, ports []uint16, run engine) map[uint16]scan.Result {
	t.Helper()
	got := map[uint16]scan.Result{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := run(ctx, probesOf(addr, ports), func(r scan.Result) {
		if _, dup := got[r.Port]; dup {
			t.Errorf("port %d reported twice", r.Port)
		}
		got[r.Port] = r
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ports) {
		t.Fatalf("%d results for %d ports", len(got), len(ports))
	}
	return got
}

func runConnect(t *testing.T, cfg scan.ConnectConfig, addr netip.Addr, ports []uint16) map[uint16]scan.Result {
	t.Helper()
	return runEngine(t, addr, ports, func(ctx context.Context, next func() (scan.Probe, bool), emit func(scan.Result)) error {
		return scan.Connect(ctx, cfg, next, emit)
	})
}

func TestConnectOpenAndClosed(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			open := []netip.AddrPort{
				testnet.Listen(t, net.JoinHostPort(host, "0")),
				testnet.Listen(t, net.JoinHostPort(host, "0")),
			}
			closed := testnet.ClosedPort(t, host)
			ports := []uint16{open[0].Port(), closed.Port(), open[1].Port()}
			got := runConnect(t, scan.ConnectConfig{}, open[0].Addr(), ports)
			for _, ap := range open {
				if r := got[ap.Port()]; r.State != scan.Open || r.Reason != scan.ReasonSynAck || r.Tries != 1 {
					t.Errorf("listener %v: %+v", ap, r)
				}
			}
			if r := got[closed.Port()]; r.State != scan.Closed || r.Reason != scan.ReasonConnRefused {
				t.Errorf("closed port %v: %+v", closed, r)
			}
		})
	}
}

// TestConnectAllPortsMatchesListeners scans every port of 127.0.0.1 with a
// small window, and checks that the open set contains the test's listeners
// and nothing that refuses a second connection.
func TestConnectAllPortsMatchesListeners(t *testing.T) {
	if testing.Short() {
		t.Skip("scans 65,535 ports")
	}
	if isolated(t) {
		return
	}
	want := map[uint16]bool{}
	for i := 0; i < 5; i++ {
		want[testnet.Listen(t, "127.0.0.1:0").Port()] = true
	}
	ports := make([]uint16, 0, 65535)
	for p := 1; p <= 65535; p++ {
		ports = append(ports, uint16(p))
	}
	got := runConnect(t, scan.ConnectConfig{Concurrency: 256}, netip.MustParseAddr("127.0.0.1"), ports)
	var open []int
	for p, r := range got {
		if r.State == scan.Open {
			open = append(open, int(p))
		} else if r.State != scan.Closed {
			t.Errorf("port %d on loopback: %+v; want open or closed", p, r)
		}
	}
	sort.Ints(open)
	for p := range want {
		if got[p].State != scan.Open {
			t.Errorf("listener %d not found open", p)
		}
	}
	// Every other open port must really accept: nothing invented.
	for _, p := range open {
		if want[uint16(p)] {
			continue
		}
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p)).String(), time.Second)
		if err != nil {
			t.Errorf("port %d reported open but refuses: %v", p, err)
			continue
		}
		c.Close()
	}
}
