package scan_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan"
)

// TestIntegrationManyHostsUnderLoss scans 32 addresses in a namespace that
// drops 3% of the packets each way and filters two hosts entirely: every
// open port must be found, none invented, and the filtered hosts reported
// filtered.
func TestIntegrationManyHostsUnderLoss(t *testing.T) {
	n := testnet.NewNamespace(t)
	_, hosts := n.AddHosts(t, 32)
	openPorts := []uint16{2222, 8080, 9443}
	for _, p := range openPorts {
		n.ListenAny(t, p)
	}
	filtered := []netip.Addr{hosts[5], hosts[20]}
	for _, h := range filtered {
		n.Nft(t, fmt.Sprintf("add rule inet t in ip daddr %s drop", h))
	}
	n.Nft(t, "add chain inet t out { type filter hook output priority 0 ; }")
	n.Nft(t, "add rule inet t in tcp flags syn numgen random mod 100 < 3 drop")
	n.Nft(t, "add rule inet t out numgen random mod 100 < 3 drop")

	targets, err := scan.ParseTargets(context.Background(), []string{fmt.Sprintf("%s-%s", hosts[0], hosts[len(hosts)-1])}, nil, scan.TargetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ports, err := scan.ParsePorts("2200-2230,8080,9443,9000-9010", registry.Builtin(), registry.TCP)
	if err != nil {
		t.Fatal(err)
	}
	plan := scan.Plan{Targets: targets, Ports: ports, Seed: 1,
		Connect: scan.ConnectConfig{Concurrency: 256, Retries: 4, Timeout: 200 * time.Millisecond}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got := map[netip.AddrPort]scan.Result{}
	if _, err := scan.Run(ctx, plan, func(r scan.Result) { got[netip.AddrPortFrom(r.Addr, r.Port)] = r }, nil); err != nil {
		t.Fatal(err)
	}
	isHost := map[netip.Addr]bool{}
	for _, h := range hosts {
		isHost[h] = true
	}
	isFiltered := map[netip.Addr]bool{filtered[0]: true, filtered[1]: true}
	isOpen := map[uint16]bool{}
	for _, p := range openPorts {
		isOpen[p] = true
	}
	if want := int(targets.Len()) * ports.Len(); len(got) != want {
		t.Fatalf("%d results; want %d", len(got), want)
	}
	for ap, r := range got {
		var want scan.State
		switch {
		case !isHost[ap.Addr()]:
			t.Fatalf("scanned %v, outside the targets", ap)
		case isFiltered[ap.Addr()]:
			want = scan.Filtered
		case isOpen[ap.Port()]:
			want = scan.Open
		default:
			want = scan.Closed
		}
		if r.State == scan.Open && want != scan.Open {
			t.Errorf("%v invented open (%s)", ap, r.Reason)
		}
		if want == scan.Open && r.State != scan.Open {
			t.Errorf("%v open but reported %s/%s after %d tries", ap, r.State, r.Reason, r.Tries)
		}
		if want == scan.Filtered && r.State != scan.Filtered {
			t.Errorf("%v filtered but reported %s/%s", ap, r.State, r.Reason)
		}
	}
}
