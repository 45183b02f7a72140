package scan_test

import (
	"testing"

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
