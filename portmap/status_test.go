package portmap

import (
	"net/netip"
	"testing"
	"time"
)

// TestTracker: Keep's events become the mappings held, with their
// renewals, remaps and last error; an unmapped one is gone.
func TestTracker(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	m := func(proto string, port, ext uint16) Mapping {
		return Mapping{Protocol: NATPMP, Proto: proto, Internal: netip.AddrPortFrom(netip.MustParseAddr("192.168.1.10"), port),
			External: netip.AddrPortFrom(netip.MustParseAddr("203.0.113.1"), ext), Lease: time.Hour}
	}
	var tr Tracker
	tr.Event(KeepEvent{Time: t0, Type: "mapped", Mapping: m("udp", 8080, 8080)})
	tr.Event(KeepEvent{Time: t0, Type: "mapped", Mapping: m("tcp", 8080, 8080)})
	tr.Event(KeepEvent{Time: t0.Add(time.Minute), Type: "renewed", Mapping: m("tcp", 8080, 8080)})
	tr.Event(KeepEvent{Time: t0.Add(2 * time.Minute), Type: "retry", Mapping: m("tcp", 8080, 8080), Reason: "no answer"})
	got := tr.Mappings()
	if len(got) != 2 || got[0].Proto != "tcp" || got[0].Renewals != 1 || got[0].Error != "no answer" || !got[0].Renewed.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after a renewal and a failed one: %+v", got)
	}
	// NAT-PMP's answer names no address: the one known stays.
	again := m("tcp", 8080, 9090)
	again.External = netip.AddrPortFrom(netip.Addr{}, 9090)
	tr.Event(KeepEvent{Time: t0.Add(3 * time.Minute), Type: "remapped", Mapping: again})
	got = tr.Mappings()
	if k := got[0]; k.Remaps != 1 || k.Error != "" || k.External.String() != "203.0.113.1:9090" || !k.Since.Equal(t0) {
		t.Errorf("after a remap: %+v; want 1 remap, no error, 203.0.113.1:9090, since %s", k, t0)
	}
	tr.Event(KeepEvent{Time: t0.Add(4 * time.Minute), Type: "unmapped", Mapping: m("udp", 8080, 8080)})
	if got := tr.Mappings(); len(got) != 1 || got[0].Proto != "tcp" {
		t.Errorf("after the udp one is unmapped: %+v", got)
	}
}
