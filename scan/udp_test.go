package scan_test

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan"
)

// udpEcho starts a UDP server on addr that sends every datagram back (or,
// when silent, reads and drops it) until the test ends.
func udpEcho(t *testing.T, addr string, silent bool) netip.AddrPort {
	t.Helper()
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s here: %v", addr, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { serveEcho(c, silent) })
	t.Cleanup(func() { c.Close(); wg.Wait() })
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func serveEcho(c net.PacketConn, silent bool) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		if !silent {
			c.WriteTo(buf[:n], from)
		}
	}
}

// udpClosedPort returns a UDP port on host where nothing listens.
func udpClosedPort(t *testing.T, host string) netip.AddrPort {
	t.Helper()
	c, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s here: %v", host, err)
	}
	ap := c.LocalAddr().(*net.UDPAddr).AddrPort()
	c.Close()
	return ap
}

func runUDP(t *testing.T, cfg scan.UDPConfig, addr netip.Addr, ports []uint16) map[uint16]scan.Result {
	t.Helper()
	return runEngine(t, addr, ports, func(ctx context.Context, next func() (scan.Probe, bool), emit func(scan.Result)) error {
		return scan.UDP(ctx, cfg, next, func(r scan.Result) {
			if r.Proto != registry.UDP || r.Addr != addr {
				t.Errorf("result %+v: want protocol udp, address %v", r, addr)
			}
			emit(r)
		})
	})
}

type udpWant struct {
	st     scan.State
	reason scan.Reason
	tries  int
}

func checkUDP(t *testing.T, got map[uint16]scan.Result, want map[uint16]udpWant) {
	t.Helper()
	for p, w := range want {
		r := got[p]
		if r.State != w.st || r.Reason != w.reason || (w.tries > 0 && r.Tries != w.tries) {
			t.Errorf("port %d: %s/%s after %d tries; want %s/%s after %d", p, r.State, r.Reason, r.Tries, w.st, w.reason, w.tries)
		}
	}
}

func TestUDPLoopback(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			hp := net.JoinHostPort(host, "0")
			echo := []netip.AddrPort{udpEcho(t, hp, false), udpEcho(t, hp, false)}
			silent := udpEcho(t, hp, true)
			closed := udpClosedPort(t, host)
			ports := []uint16{echo[0].Port(), closed.Port(), silent.Port(), echo[1].Port()}
			got := runUDP(t, scan.UDPConfig{Timeout: 200 * time.Millisecond, Retries: 2}, echo[0].Addr(), ports)
			checkUDP(t, got, map[uint16]udpWant{
				echo[0].Port(): {scan.Open, scan.ReasonUDPResponse, 1},
				echo[1].Port(): {scan.Open, scan.ReasonUDPResponse, 1},
				closed.Port():  {scan.Closed, scan.ReasonPortUnreach, 1},
				silent.Port():  {scan.OpenFiltered, scan.ReasonNoResponse, 3},
			})
			if r := got[echo[0].Port()]; r.RTT <= 0 {
				t.Errorf("open port: RTT %v; want > 0", r.RTT)
			}
		})
	}
}

// TestUDPNoRetries checks Retries -1 sends one datagram only.
func TestUDPNoRetries(t *testing.T) {
	silent := udpEcho(t, "127.0.0.1:0", true)
	got := runUDP(t, scan.UDPConfig{Timeout: 50 * time.Millisecond, Retries: -1}, silent.Addr(), []uint16{silent.Port()})
	checkUDP(t, got, map[uint16]udpWant{silent.Port(): {scan.OpenFiltered, scan.ReasonNoResponse, 1}})
}

// TestUDPMany scans many closed and a few open loopback ports with a
// small window: every port gets exactly one, right, result.
func TestUDPMany(t *testing.T) {
	open := map[uint16]bool{}
	var ports []uint16
	for range 5 {
		ap := udpEcho(t, "127.0.0.1:0", false)
		open[ap.Port()] = true
		ports = append(ports, ap.Port())
	}
	for range 200 {
		ap := udpClosedPort(t, "127.0.0.1")
		if _, seen := open[ap.Port()]; !seen {
			ports = append(ports, ap.Port())
			open[ap.Port()] = false
		}
	}
	got := runUDP(t, scan.UDPConfig{Concurrency: 16, Timeout: time.Second}, netip.MustParseAddr("127.0.0.1"), ports)
	for p, isOpen := range open {
		want := udpWant{scan.Closed, scan.ReasonPortUnreach, 1}
		if isOpen {
			want = udpWant{scan.Open, scan.ReasonUDPResponse, 1}
		}
		checkUDP(t, got, map[uint16]udpWant{p: want})
	}
}

// TestUDPCancel checks that a cancelled scan returns the context's error.
func TestUDPCancel(t *testing.T) {
	silent := udpEcho(t, "127.0.0.1:0", true)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	err := scan.UDP(ctx, scan.UDPConfig{Timeout: 10 * time.Second}, probesOf(silent.Addr(), []uint16{silent.Port()}), func(scan.Result) {})
	if err != context.Canceled {
		t.Errorf("UDP after cancel = %v; want %v", err, context.Canceled)
	}
}
