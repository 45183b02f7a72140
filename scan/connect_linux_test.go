package scan_test

import (
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/scan"
)

// TestIntegrationConnectFiltered scans a namespace where nftables drops one
// port and rejects another with ICMP admin-prohibited.
func TestIntegrationConnectFiltered(t *testing.T) {
	n := testnet.NewNamespace(t)
	open := n.Listen(t, 0)
	n.Nft(t, "add rule inet t in tcp dport 7001 drop")
	n.Nft(t, "add rule inet t in tcp dport 7002 reject with icmp type admin-prohibited")
	n.Nft(t, "add rule inet t in tcp dport 7003 reject with tcp reset")
	ports := []uint16{open.Port(), 7001, 7002, 7003, 7004}
	got := runConnect(t, scan.ConnectConfig{Timeout: 300e6, Retries: 1}, n.Peer, ports)
	want := map[uint16]struct {
		st     scan.State
		reason scan.Reason
	}{
		open.Port(): {scan.Open, scan.ReasonSynAck},
		7001:        {scan.Filtered, scan.ReasonNoResponse},
		// Linux reports ICMP admin-prohibited to connect() as EHOSTUNREACH.
		7002: {scan.Filtered, scan.ReasonHostUnreach},
		7003: {scan.Closed, scan.ReasonConnRefused},
		7004: {scan.Closed, scan.ReasonConnRefused},
	}
	for p, w := range want {
		if r := got[p]; r.State != w.st || r.Reason != w.reason {
			t.Errorf("port %d: %s/%s; want %s/%s", p, r.State, r.Reason, w.st, w.reason)
		}
	}
	if r := got[7001]; r.Tries != 2 {
		t.Errorf("dropped port tried %d times; want 2 (one retry)", r.Tries)
	}
}

// isolated runs t in a network namespace of its own (testnet.Isolated).
func isolated(t *testing.T) bool { return testnet.Isolated(t) }

// TestIntegrationConnectRate checks that Rate caps the attempts started per
// second, also where every connect is answered at once.
func TestIntegrationConnectRate(t *testing.T) {
	n := testnet.NewNamespace(t)
	var ports []uint16
	for p := uint16(30000); p < 30600; p++ {
		ports = append(ports, p)
	}
	start := time.Now()
	got := runConnect(t, scan.ConnectConfig{Rate: 2000}, n.Peer, ports)
	// 600 attempts at 2,000 a second: 0.3 s.
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Errorf("600 attempts at 2000/s took %v; want about 300ms", d)
	}
	for _, p := range ports {
		if r := got[p]; r.State != scan.Closed || r.Reason != scan.ReasonConnRefused {
			t.Errorf("port %d: %s/%s; want closed/conn-refused", p, r.State, r.Reason)
		}
	}
}

// TestIntegrationConnectAfterSilence scans dropped ports first, then closed
// ones and a listener, with one worker: after a run of attempts that find
// no answer at once, the engine stops asking connect() a second time and
// learns the outcome from epoll, and must still tell every state apart,
// once answers come at once again too.
func TestIntegrationConnectAfterSilence(t *testing.T) {
	n := testnet.NewNamespace(t)
	open := n.Listen(t, 0)
	n.Nft(t, "add rule inet t in tcp dport 7000-7039 drop")
	var ports []uint16
	for p := uint16(7000); p < 7200; p++ {
		ports = append(ports, p)
	}
	ports = append(ports, open.Port())
	// Concurrency 8 is one worker, which takes the ports in this order.
	got := runConnect(t, scan.ConnectConfig{Concurrency: 8, Timeout: 100 * time.Millisecond, Retries: -1}, n.Peer, ports)
	for _, p := range ports {
		r := got[p]
		switch {
		case p == open.Port():
			if r.State != scan.Open || r.Reason != scan.ReasonSynAck {
				t.Errorf("listener %d: %s/%s; want open/syn-ack", p, r.State, r.Reason)
			}
		case p < 7040:
			if r.State != scan.Filtered || r.Reason != scan.ReasonNoResponse || r.Tries != 1 {
				t.Errorf("dropped port %d: %s/%s after %d tries; want filtered/no-response after 1", p, r.State, r.Reason, r.Tries)
			}
		default:
			if r.State != scan.Closed || r.Reason != scan.ReasonConnRefused || r.Tries != 1 {
				t.Errorf("closed port %d: %s/%s after %d tries; want closed/conn-refused after 1", p, r.State, r.Reason, r.Tries)
			}
		}
	}
}
