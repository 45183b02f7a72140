package freeport

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/registry"
)

func rg(a, b uint16) registry.Range { return registry.Range{First: a, Last: b} }

func TestCandidates(t *testing.T) {
	host := netconf.Host{
		Ephemeral:         rg(32768, 60999),
		Reserved:          []registry.Range{rg(8080, 8080), rg(9000, 9010), rg(40000, 40005)},
		UnprivilegedStart: 1024,
	}
	explicit := rg(0, 100)
	tests := []struct {
		name     string
		cfg      Config
		within   registry.Range
		excluded []registry.Range
		count    int
	}{
		{"default", Config{Host: host}, rg(1024, 65535),
			[]registry.Range{rg(8080, 8080), rg(9000, 9010), rg(32768, 60999)}, 65535 - 1024 + 1 - 1 - 11 - 28232},
		{"default as root", Config{Host: netconf.Host{UnprivilegedStart: 2000}, Privileged: true}, rg(1024, 65535),
			nil, 65535 - 1024 + 1},
		{"explicit range keeps privileged and ephemeral ports", Config{Host: host, Range: &explicit}, rg(0, 100),
			[]registry.Range{rg(0, 0)}, 100},
		{"high unprivileged start", Config{Host: netconf.Host{UnprivilegedStart: 2000}}, rg(1024, 65535),
			[]registry.Range{rg(1024, 1999)}, 65535 - 2000 + 1},
		{"nothing may be bound", Config{Host: netconf.Host{UnprivilegedStart: 65536}}, rg(1024, 65535),
			[]registry.Range{rg(1024, 65535)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := candidates(tt.cfg)
			if s.within != tt.within {
				t.Errorf("within = %v; want %v", s.within, tt.within)
			}
			if diff := cmp.Diff(tt.excluded, s.excluded); diff != "" {
				t.Errorf("excluded (-want +got):\n%s", diff)
			}
			if tt.count != 0 && s.count() != tt.count {
				t.Errorf("count = %d; want %d", s.count(), tt.count)
			}
			// count agrees with contains.
			n := 0
			for p := int(s.within.First); p <= int(s.within.Last); p++ {
				if s.contains(uint16(p)) {
					n++
				}
			}
			if n != s.count() {
				t.Errorf("count = %d; contains says %d", s.count(), n)
			}
		})
	}
}

func TestNearOrder(t *testing.T) {
	s := newPortSet(rg(95, 110), []registry.Range{rg(101, 101)})
	next := s.near(100)
	var got []uint16
	for p, ok := next(); ok; p, ok = next() {
		got = append(got, p)
	}
	want := []uint16{100, 99, 102, 98, 103, 97, 104, 96, 105, 95, 106, 107, 108, 109, 110}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("near(100) order (-want +got):\n%s", diff)
	}
	// From outside the set, and at the edges of the port space.
	for _, tc := range []struct {
		set  portSet
		from uint16
		want []uint16
	}{
		{newPortSet(rg(10, 12), nil), 5, []uint16{10, 11, 12}},
		{newPortSet(rg(65533, 65535), nil), 65535, []uint16{65535, 65534, 65533}},
		{newPortSet(rg(1, 3), nil), 1, []uint16{1, 2, 3}},
	} {
		next := tc.set.near(tc.from)
		var got []uint16
		for p, ok := next(); ok; p, ok = next() {
			got = append(got, p)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("near(%d) in %v (-want +got):\n%s", tc.from, tc.set.within, diff)
		}
	}
}

func TestRandomVisitsEachOnce(t *testing.T) {
	s := newPortSet(rg(1000, 1100), []registry.Range{rg(1010, 1019), rg(1050, 1050)})
	next := s.random(nil)
	seen := map[uint16]bool{}
	for p, ok := next(); ok; p, ok = next() {
		if seen[p] || !s.contains(p) {
			t.Fatalf("random gave %d twice or outside the set", p)
		}
		seen[p] = true
	}
	if len(seen) != s.count() {
		t.Errorf("random visited %d ports; want %d", len(seen), s.count())
	}
}
