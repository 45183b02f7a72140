package scan

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/portctl/portctl/registry"
)

// protoPorts is a Ports laid out for comparison.
type protoPorts struct {
	TCP, UDP []uint16
}

func layout(p *Ports) protoPorts {
	var out protoPorts
	for i := range p.Len() {
		proto, port := p.At(i)
		switch proto {
		case registry.TCP:
			out.TCP = append(out.TCP, port)
		case registry.UDP:
			out.UDP = append(out.UDP, port)
		}
	}
	return out
}

// seq returns first..last.
func seq(first, last int) []uint16 {
	var out []uint16
	for p := first; p <= last; p++ {
		out = append(out, uint16(p))
	}
	return out
}

// sorted returns a sorted copy of ps.
func sorted(ps []uint16) []uint16 {
	out := slices.Clone(ps)
	slices.Sort(out)
	return out
}

func TestParsePorts(t *testing.T) {
	const tcp, udp, both = registry.TCP, registry.UDP, registry.TCP | registry.UDP
	tests := []struct {
		spec  string
		proto registry.Protocol
		want  protoPorts
	}{
		{"22,80,443", tcp, protoPorts{TCP: []uint16{22, 80, 443}}},
		{"443,22,80", 0, protoPorts{TCP: []uint16{22, 80, 443}}},
		{" 22 , 80 ", tcp, protoPorts{TCP: []uint16{22, 80}}},
		{"0080", tcp, protoPorts{TCP: []uint16{80}}},
		{"1-5", tcp, protoPorts{TCP: seq(1, 5)}},
		{"7-7", tcp, protoPorts{TCP: []uint16{7}}},
		{"-", tcp, protoPorts{TCP: seq(1, 65535)}},
		{"-5", tcp, protoPorts{TCP: seq(1, 5)}},
		{"65530-", tcp, protoPorts{TCP: seq(65530, 65535)}},
		{"65535", tcp, protoPorts{TCP: []uint16{65535}}},
		{"22,22,20-25,21", tcp, protoPorts{TCP: seq(20, 25)}},
		{"53", udp, protoPorts{UDP: []uint16{53}}},
		{"53,1-2", both, protoPorts{TCP: []uint16{1, 2, 53}, UDP: []uint16{1, 2, 53}}},
		{"T:80,U:53", tcp, protoPorts{TCP: []uint16{80}, UDP: []uint16{53}}},
		{"T:80,443,U:53,161", tcp, protoPorts{TCP: []uint16{80, 443}, UDP: []uint16{53, 161}}},
		{"T:80,U:53,T:1-3", udp, protoPorts{TCP: []uint16{1, 2, 3, 80}, UDP: []uint16{53}}},
		{"22,u:53", both, protoPorts{TCP: []uint16{22}, UDP: []uint16{22, 53}}},
		{"T:22,T:22,U:22", tcp, protoPorts{TCP: []uint16{22}, UDP: []uint16{22}}},
		{"ssh,https", tcp, protoPorts{TCP: []uint16{22, 443}}},
		{"SSH", tcp, protoPorts{TCP: []uint16{22}}},
		{"www", tcp, protoPorts{TCP: []uint16{80}}},
		{"domain", both, protoPorts{TCP: []uint16{53}, UDP: []uint16{53}}},
		{"who", both, protoPorts{UDP: []uint16{513}}},
		{"U:ntp,T:ssh", tcp, protoPorts{TCP: []uint16{22}, UDP: []uint16{123}}},
		{"x11", tcp, protoPorts{TCP: seq(6000, 6063)}},
		{"top:1", tcp, protoPorts{TCP: []uint16{80}}},
		{"top:10", tcp, protoPorts{TCP: sorted(topTCP[:10])}},
		{"TOP:3,U:top:3", tcp, protoPorts{TCP: sorted(topTCP[:3]), UDP: sorted(topUDP[:3])}},
		{"top:5", both, protoPorts{TCP: sorted(topTCP[:5]), UDP: sorted(topUDP[:5])}},
		{"top:65535", tcp, protoPorts{TCP: seq(1, 65535)}},
		{"U:top:65535", tcp, protoPorts{UDP: seq(1, 65535)}},
		{"top:2,22,top:1", tcp, protoPorts{TCP: []uint16{22, 80, 443}}},
	}
	for _, tc := range tests {
		got, err := ParsePorts(tc.spec, registry.Builtin(), tc.proto)
		if err != nil {
			t.Errorf("ParsePorts(%q, %v) = %v", tc.spec, tc.proto, err)
			continue
		}
		if diff := cmp.Diff(tc.want, layout(got)); diff != "" {
			t.Errorf("ParsePorts(%q, %v) mismatch (-want +got):\n%s", tc.spec, tc.proto, diff)
		}
		var protos registry.Protocol
		if len(tc.want.TCP) > 0 {
			protos |= registry.TCP
		}
		if len(tc.want.UDP) > 0 {
			protos |= registry.UDP
		}
		if got.Protocols() != protos {
			t.Errorf("ParsePorts(%q, %v).Protocols() = %v; want %v", tc.spec, tc.proto, got.Protocols(), protos)
		}
	}
}

func TestParsePortsTopCounts(t *testing.T) {
	for _, n := range []int{1, 100, 999, 1000, 1001, 5000, 65534, 65535} {
		got, err := ParsePorts("top:"+strconv.Itoa(n)+",U:top:"+strconv.Itoa(n), nil, registry.TCP)
		if err != nil {
			t.Fatalf("ParsePorts(top:%d) = %v", n, err)
		}
		l := layout(got)
		if len(l.TCP) != n || len(l.UDP) != n {
			t.Errorf("ParsePorts(top:%d) = %d TCP and %d UDP ports; want %d of each", n, len(l.TCP), len(l.UDP), n)
		}
	}
	// The ports beyond the lists come in ascending order.
	got, _ := ParsePorts("top:1001", nil, registry.TCP)
	var firstUnlisted uint16
	for p := uint16(1); ; p++ {
		if !slices.Contains(topTCP[:], p) {
			firstUnlisted = p
			break
		}
	}
	if !slices.Contains(layout(got).TCP, firstUnlisted) {
		t.Errorf("ParsePorts(top:1001) lacks %d, the lowest port not ranked", firstUnlisted)
	}
}

func TestParsePortsErrors(t *testing.T) {
	tests := []struct {
		spec  string
		proto registry.Protocol
		want  string
	}{
		{"", registry.TCP, "empty port list"},
		{"   ", registry.TCP, "empty port list"},
		{"70000", registry.TCP, "port 70000 is out of range (want 1-65535)"},
		{"65536", registry.TCP, "port 65536 is out of range"},
		{"1234567", registry.TCP, "port 1234567 is out of range"},
		{"0", registry.TCP, "port 0 cannot be scanned"},
		{"0-10", registry.TCP, "port 0 cannot be scanned"},
		{"000", registry.TCP, "port 0 cannot be scanned"},
		{"10-1", registry.TCP, `port range "10-1" runs backwards`},
		{"1-70000", registry.TCP, "port 70000 is out of range"},
		{"1-2-3", registry.TCP, `port range "1-2-3" has more than one "-"`},
		{"--", registry.TCP, `port range "--"`},
		{"abc", registry.TCP, `unknown service "abc"`},
		{"ssh,abc", registry.TCP, `unknown service "abc"`},
		{"who", registry.TCP, `service "who" has no tcp port (it is udp 513`},
		{"22,,80", registry.TCP, `empty item in port list "22,,80"`},
		{"22,", registry.TCP, `empty item in port list "22,"`},
		{"top:0", registry.TCP, `"top:0" asks for no ports`},
		{"top:x", registry.TCP, `"top:x": "x" is not a number`},
		{"top:-1", registry.TCP, `"top:-1": "-1" is not a number`},
		{"top:", registry.TCP, `"top:" has no count`},
		{"top:65536", registry.TCP, `"top:65536" asks for more ports than there are`},
		{"top:99999999999999999999", registry.TCP, "asks for too many ports"},
		{"T:", registry.TCP, `port item "T:" has no ports after its prefix`},
		{"S:80", registry.TCP, `unknown protocol prefix "S:" in port item "S:80"`},
		{"T:U:53", registry.TCP, `port item "U:53" is not a port`},
		{"22 80", registry.TCP, `"22 80" is not a port`},
	}
	for _, tc := range tests {
		got, err := ParsePorts(tc.spec, registry.Builtin(), tc.proto)
		if err == nil {
			t.Errorf("ParsePorts(%q) = %v; want an error containing %q", tc.spec, layout(got), tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParsePorts(%q) = %q; want one line containing %q", tc.spec, err, tc.want)
		}
		if !errors.Is(err, registry.ErrSyntax) {
			t.Errorf("ParsePorts(%q) = %v; want an error matching registry.ErrSyntax", tc.spec, err)
		}
	}
	if _, err := ParsePorts("22", nil, registry.SCTP); err == nil || errors.Is(err, registry.ErrSyntax) {
		t.Errorf("ParsePorts(22, sctp) = %v; want a configuration error", err)
	}
}

func TestPortsAt(t *testing.T) {
	p, err := ParsePorts("T:443,22,U:53", nil, registry.TCP)
	if err != nil {
		t.Fatal(err)
	}
	type pair struct {
		Proto registry.Protocol
		Port  uint16
	}
	var got []pair
	for _, i := range []int{-1, 0, 1, 2, 3} {
		proto, port := p.At(i)
		got = append(got, pair{proto, port})
	}
	want := []pair{{0, 0}, {registry.TCP, 22}, {registry.TCP, 443}, {registry.UDP, 53}, {0, 0}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("At mismatch (-want +got):\n%s", diff)
	}
	if p.Len() != 3 {
		t.Errorf("Len() = %d; want 3", p.Len())
	}
}

// TestTopPorts checks the ranked lists against the method topports.go
// describes.
func TestTopPorts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		list   []uint16
		proto  registry.Protocol
		length int
	}{
		{"tcp", topTCP[:], registry.TCP, 1000},
		{"udp", topUDP[:], registry.UDP, 250},
	} {
		if len(tc.list) != tc.length {
			t.Errorf("%s list has %d ports; want %d", tc.name, len(tc.list), tc.length)
		}
		seen := map[uint16]bool{}
		for i, p := range tc.list {
			if p == 0 || seen[p] {
				t.Errorf("%s list: port %d at rank %d is 0 or a duplicate", tc.name, p, i+1)
			}
			seen[p] = true
		}
		// Tier 2: every single port, or narrow range, of the de facto table.
		for _, u := range registry.AllUses() {
			if u.Protos&tc.proto == 0 || u.Last > u.Port+15 {
				continue
			}
			for p := int(u.Port); p <= int(max(u.Last, u.Port)); p++ {
				if !seen[uint16(p)] {
					t.Errorf("%s list lacks %d (%s), a de facto port", tc.name, p, u.Text)
				}
			}
		}
	}
	if topTCP[0] != 80 || topTCP[1] != 443 || topUDP[0] != 53 {
		t.Errorf("top ports start %v / %v; want 80, 443 / 53", topTCP[:2], topUDP[:1])
	}
}

func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"22,80,443", "1-1024", "-", "-100", "60000-", "top:100", "ssh,https", "T:80,U:53,T:1-100",
		"70000", "10-1", "", "abc", "top:0", "top:x", "U:top:65535", "0", "T:", "22,,80"} {
		f.Add(s, uint8(1))
	}
	f.Fuzz(func(t *testing.T, spec string, proto uint8) {
		defaultProto := []registry.Protocol{0, registry.TCP, registry.UDP, registry.TCP | registry.UDP}[proto%4]
		got, err := ParsePorts(spec, registry.Builtin(), defaultProto)
		if err != nil {
			if !errors.Is(err, registry.ErrSyntax) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParsePorts(%q) = %q; want one line matching ErrSyntax", spec, err)
			}
			return
		}
		if got.Len() == 0 || got.Len() > 2*65535 {
			t.Fatalf("ParsePorts(%q).Len() = %d; want 1 to 131070", spec, got.Len())
		}
		var protos registry.Protocol
		prevProto, prevPort := registry.Protocol(0), uint16(0)
		for i := range got.Len() {
			proto, port := got.At(i)
			if port == 0 || (proto != registry.TCP && proto != registry.UDP) {
				t.Fatalf("ParsePorts(%q).At(%d) = %v, %d; want tcp or udp and a port above 0", spec, i, proto, port)
			}
			if proto == prevProto && port <= prevPort || proto < prevProto {
				t.Fatalf("ParsePorts(%q): At(%d) = %v %d after %v %d; want TCP then UDP, each ascending", spec, i, proto, port, prevProto, prevPort)
			}
			prevProto, prevPort = proto, port
			protos |= proto
		}
		if got.Protocols() != protos {
			t.Fatalf("ParsePorts(%q).Protocols() = %v; want %v", spec, got.Protocols(), protos)
		}
	})
}
