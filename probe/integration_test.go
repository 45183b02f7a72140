package probe

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
)

// TestIntegrationCheckFiltered checks hosts behind nftables rules in a
// network namespace: dropped packets, ICMP errors and resets.
func TestIntegrationCheckFiltered(t *testing.T) {
	n := testnet.NewNamespace(t)
	tests := []struct {
		port   uint16
		rule   string // empty: no rule, nothing listens
		state  State
		reason string
	}{
		{7001, "drop", StateFiltered, ReasonTimeout},
		{7002, "reject with icmp type host-unreachable", StateFiltered, ReasonHostUnreachable},
		{7003, "reject with icmp type net-unreachable", StateFiltered, ReasonNetUnreachable},
		{7004, "reject with icmp type admin-prohibited", StateFiltered, ReasonHostUnreachable},
		{7005, "reject with tcp reset", StateClosed, ReasonRefused},
		{7006, "", StateClosed, ReasonRefused},
		{7007, "drop", StateFiltered, ReasonTimeout},
	}
	var targets []Target
	for _, tt := range tests {
		if tt.rule != "" {
			n.Nft(t, fmt.Sprintf("add rule inet t in tcp dport %d %s", tt.port, tt.rule))
		}
		targets = append(targets, Target{Host: n.Peer.String(), Port: tt.port})
	}
	const timeout = 2 * time.Second
	start := time.Now()
	got, err := Check(context.Background(), targets, Config{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	// In parallel: the whole check takes one timeout, not one per dropped
	// target (two here).
	if elapsed := time.Since(start); elapsed > timeout+timeout*3/4 {
		t.Errorf("Check took %v; want about one timeout (%v)", elapsed, timeout)
	}
	for i, tt := range tests {
		r := got[i]
		if r.State != tt.state || r.Reason != tt.reason {
			t.Errorf("port %d behind %q: %v (%s); want %v (%s)", tt.port, tt.rule, r.State, r.Reason, tt.state, tt.reason)
		}
		if r.Addr != netip.AddrPortFrom(n.Peer, tt.port) {
			t.Errorf("port %d: address %v; want %v:%d", tt.port, r.Addr, n.Peer, tt.port)
		}
	}
	if r := got[0]; r.Latency < timeout-50*time.Millisecond {
		t.Errorf("dropped port answered in %v; want the timeout, %v", r.Latency, timeout)
	}
}

// TestIntegrationWaitCancelWhileFiltered stops a wait on a host that drops
// every packet: the attempt in flight must not hold up the return.
func TestIntegrationWaitCancelWhileFiltered(t *testing.T) {
	n := testnet.NewNamespace(t)
	n.Nft(t, "add rule inet t in tcp dport 7010 drop")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	got, err := Wait(ctx, []Target{{Host: n.Peer.String(), Port: 7010}}, WaitConfig{Config: Config{Timeout: 10 * time.Second}})
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Wait returned %v after the cancel; want at once, not after the 10 s timeout", elapsed-300*time.Millisecond)
	}
	if err == nil || got[0].Ready {
		t.Errorf("Wait = %+v, %v; want not ready and an error", got, err)
	}
}
