package firewall

import (
	"encoding/hex"
	"net/netip"
	"testing"
	"time"
)

func TestPortBlockElems(t *testing.T) {
	for _, tc := range []struct {
		b        PortBlock
		set      string
		key, end string // hex, the fields padded to four bytes
		n        int    // elements: one per protocol
	}{
		{PortBlock{Proto: "tcp", Ports: [2]uint16{8080, 8080}}, portsSet,
			"06000000" + "1f900000", "06000000" + "1f900000", 1},
		{PortBlock{Proto: "udp", Ports: [2]uint16{137, 139}}, portsSet,
			"11000000" + "00890000", "11000000" + "008b0000", 1},
		{PortBlock{Proto: "tcp", Ports: [2]uint16{445, 445}, From: netip.MustParsePrefix("10.1.2.3/16")}, from4Set,
			"0a010000" + "06000000" + "01bd0000", "0a01ffff" + "06000000" + "01bd0000", 1},
		{PortBlock{Proto: "tcp", Ports: [2]uint16{22, 22}, From: netip.MustParsePrefix("2001:db8::/32")}, from6Set,
			"20010db8000000000000000000000000" + "06000000" + "00160000",
			"20010db8ffffffffffffffffffffffff" + "06000000" + "00160000", 1},
		{PortBlock{Ports: [2]uint16{53, 53}}, portsSet, "06000000" + "00350000", "06000000" + "00350000", 2},
	} {
		els := tc.b.elems()
		if len(els) != tc.n {
			t.Errorf("%s: %d elements; want %d", tc.b, len(els), tc.n)
			continue
		}
		e := els[0]
		if e.set != tc.set || hex.EncodeToString(e.key) != tc.key || hex.EncodeToString(e.end) != tc.end {
			t.Errorf("%s: element %s %x-%x; want %s %s-%s", tc.b, e.set, e.key, e.end, tc.set, tc.key, tc.end)
		}
		for _, e := range els {
			back, err := parseBlockElem(e.set, e.key, e.end, tc.b.For, 0)
			if err != nil {
				t.Errorf("%s: parseBlockElem: %v", tc.b, err)
				continue
			}
			want := tc.b
			want.From = want.From.Masked()
			if want.Proto == "" {
				want.Proto = blockProtoName(e.key[len(e.key)-8])
			}
			if back != want {
				t.Errorf("parseBlockElem(elems(%s)) = %s; want %s", tc.b, back, want)
			}
		}
	}
}

func TestPortBlockCheck(t *testing.T) {
	for _, b := range []PortBlock{
		{Proto: "icmp", Ports: [2]uint16{1, 1}},
		{Ports: [2]uint16{0, 0}},
		{Ports: [2]uint16{90, 80}},
		{Ports: [2]uint16{80, 80}, For: -time.Second},
		{Ports: [2]uint16{80, 80}, For: time.Microsecond},
	} {
		if err := b.check(); err == nil {
			t.Errorf("%+v.check() = nil; want an error", b)
		}
	}
	if err := (PortBlock{Ports: [2]uint16{1, 65535}, For: time.Hour}).check(); err != nil {
		t.Errorf("check of 1-65535 for 1h: %v", err)
	}
}

func TestMergeBlocks(t *testing.T) {
	got := mergeBlocks([]PortBlock{
		{Proto: "udp", Ports: [2]uint16{53, 53}, For: time.Minute, Expires: 30 * time.Second},
		{Proto: "tcp", Ports: [2]uint16{53, 53}, For: time.Minute, Expires: 29 * time.Second},
		{Proto: "tcp", Ports: [2]uint16{22, 22}},
		{Proto: "udp", Ports: [2]uint16{22, 22}, For: time.Minute}, // another duration: apart
		{Proto: "tcp", Ports: [2]uint16{80, 80}, From: netip.MustParsePrefix("10.0.0.0/8")},
	})
	want := []string{"22/tcp", "22/udp for 1m0s", "53 for 1m0s", "80/tcp from 10.0.0.0/8"}
	if len(got) != len(want) {
		t.Fatalf("mergeBlocks = %v; want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("mergeBlocks[%d] = %s; want %s", i, got[i], want[i])
		}
	}
	if got[2].Expires != 29*time.Second {
		t.Errorf("merged block expires in %v; want the sooner, 29s", got[2].Expires)
	}
}

func TestPortBlockOverlaps(t *testing.T) {
	p := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	for _, tc := range []struct {
		a, b PortBlock
		want bool
	}{
		{PortBlock{Ports: [2]uint16{80, 90}}, PortBlock{Ports: [2]uint16{90, 100}}, true},
		{PortBlock{Ports: [2]uint16{80, 89}}, PortBlock{Ports: [2]uint16{90, 100}}, false},
		{PortBlock{Ports: [2]uint16{80, 80}, From: p("10.0.0.0/8")}, PortBlock{Ports: [2]uint16{80, 80}, From: p("10.1.0.0/16")}, true},
		{PortBlock{Ports: [2]uint16{80, 80}, From: p("10.0.0.0/8")}, PortBlock{Ports: [2]uint16{80, 80}, From: p("11.0.0.0/8")}, false},
		{PortBlock{Ports: [2]uint16{80, 80}, From: p("10.0.0.0/8")}, PortBlock{Ports: [2]uint16{80, 80}}, false},
	} {
		if got := tc.a.overlaps(tc.b); got != tc.want {
			t.Errorf("(%s).overlaps(%s) = %v; want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// FuzzParseBlockElem feeds the reader of portctl's set elements what the
// kernel might hand back, and checks that what it accepts encodes back
// to the same bytes.
func FuzzParseBlockElem(f *testing.F) {
	for _, b := range []PortBlock{
		{Proto: "tcp", Ports: [2]uint16{8080, 8090}},
		{Proto: "udp", Ports: [2]uint16{53, 53}, From: netip.MustParsePrefix("192.0.2.0/24")},
		{Proto: "tcp", Ports: [2]uint16{22, 22}, From: netip.MustParsePrefix("2001:db8::/48")},
	} {
		for _, e := range b.elems() {
			f.Add(e.set, e.key, e.end)
		}
	}
	f.Fuzz(func(t *testing.T, set string, key, end []byte) {
		b, err := parseBlockElem(set, key, end, 0, 0)
		if err != nil {
			return
		}
		if b.Proto != "tcp" && b.Proto != "udp" {
			return // another protocol read back as is; nothing to encode
		}
		if b.Ports[0] == 0 || b.Ports[1] < b.Ports[0] {
			return // not a block portctl makes; reading it must only not fail
		}
		els := b.elems()
		if len(els) != 1 || els[0].set != set {
			t.Fatalf("parseBlockElem(%q, %x, %x) = %s, which encodes to %d elements", set, key, end, b, len(els))
		}
		back, err := parseBlockElem(els[0].set, els[0].key, els[0].end, 0, 0)
		if err != nil || back != b {
			t.Fatalf("parseBlockElem(%q, %x, %x) = %s, which encodes and reads back as %s, %v", set, key, end, b, back, err)
		}
	})
}
