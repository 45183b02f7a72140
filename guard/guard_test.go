package guard

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func probe(src string, dport uint16, kind Kind, at time.Duration) Probe {
	p := Probe{Time: t0.Add(at), Proto: TCP, Kind: kind,
		Src: netip.AddrPortFrom(netip.MustParseAddr(src), 40000+dport),
		Dst: netip.AddrPortFrom(netip.MustParseAddr("10.9.0.1"), dport)}
	if kind == KindUDP {
		p.Proto = UDP
	}
	return p
}

func TestDetectorDecides(t *testing.T) {
	open := map[uint16]bool{22: true, 80: true, 443: true}
	for _, tc := range []struct {
		name   string
		kind   Kind
		ports  []uint16
		gap    time.Duration
		want   int // probes until the scan event; 0 for none
		spoofy bool
	}{
		{"SYN scan of closed ports", KindSYN, []uint16{1, 2, 3, 4, 5, 6}, time.Millisecond, 4, false},
		{"slow SYN scan, one probe in five minutes", KindSYN, []uint16{1, 2, 3, 4, 5}, 5 * time.Minute, 4, false},
		{"scan that meets open ports first", KindSYN, []uint16{22, 80, 1, 2, 3, 4, 5, 6, 7}, time.Second, 8, false},
		{"FIN scan", KindFIN, []uint16{22, 80, 5, 6}, time.Millisecond, 4, true},
		{"UDP scan", KindUDP, []uint16{53, 161, 7, 9, 11}, time.Millisecond, 4, true},
		{"client of open ports", KindSYN, []uint16{22, 80, 443, 80, 22, 443, 80}, time.Second, 0, false},
		{"client retrying one closed port", KindSYN, []uint16{8080, 8080, 8080, 8080, 8080, 8080}, time.Second, 0, false},
		{"traceroute", KindUDP, []uint16{33434, 33435, 33436, 33437, 33438, 33439}, time.Millisecond, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDetector(DetectConfig{})
			got := 0
			for i, port := range tc.ports {
				p := probe("10.9.0.2", port, tc.kind, time.Duration(i)*tc.gap)
				evs := d.See(p, Outcome(open[port]))
				if len(evs) > 0 {
					if got != 0 {
						t.Fatalf("a second event after probe %d: %+v", i+1, evs)
					}
					got = i + 1
					ev := evs[0]
					if ev.Type != EventScan || ev.Source != "10.9.0.2" || ev.Kind != tc.kind || ev.Spoofable != tc.spoofy {
						t.Errorf("event %+v; want a scan of kind %s from 10.9.0.2, spoofable %v", ev, tc.kind, tc.spoofy)
					}
					if slices.ContainsFunc(ev.Ports, func(p uint16) bool { return open[p] && tc.kind == KindSYN }) {
						t.Errorf("event ports %v list an open port", ev.Ports)
					}
				}
			}
			if got != tc.want {
				t.Errorf("scan event after probe %d; want %d", got, tc.want)
			}
		})
	}
}

func TestDetectorLatePacketsAndAllow(t *testing.T) {
	d := NewDetector(DetectConfig{Allow: []netip.Prefix{netip.MustParsePrefix("10.9.0.100/32")}})
	// Late ACKs to four ports the source connected to are no probes; to
	// four others they are an ACK scan.
	for i := range 4 {
		d.See(probe("10.9.0.2", uint16(1000+i), KindSYN, 0), Success)
	}
	for i := range 4 {
		if evs := d.See(probe("10.9.0.2", uint16(1000+i), KindACK, time.Duration(i)*time.Hour), Failure); len(evs) > 0 {
			t.Fatalf("late packet %d: %+v", i, evs)
		}
	}
	var evs []Event
	for i := range 4 {
		evs = append(evs, d.See(probe("10.9.0.2", uint16(2000+i), KindACK, 5*time.Hour), Failure)...)
	}
	if len(evs) != 1 || evs[0].Kind != KindACK {
		t.Errorf("ACKs to four ports never connected to: %+v; want an ack scan", evs)
	}
	for i := range 10 {
		if evs := d.See(probe("10.9.0.100", uint16(i+1), KindSYN, time.Second), Failure); len(evs) > 0 {
			t.Fatalf("allowed source: %+v", evs)
		}
	}
}

func TestDetectorGroupsAndSweeps(t *testing.T) {
	d := NewDetector(DetectConfig{Group4: 24})
	var evs []Event
	for i := range 4 {
		evs = append(evs, d.See(probe("10.9.0."+string(rune('2'+i)), uint16(i+1), KindSYN, 0), Failure)...)
	}
	if len(evs) != 1 || evs[0].Source != "10.9.0.0/24" {
		t.Errorf("grouped by /24: %+v; want one scan from 10.9.0.0/24", evs)
	}
	d = NewDetector(DetectConfig{FanOut: 4})
	evs = nil
	for i := range 4 {
		p := probe("10.9.0.2", 22, KindSYN, time.Duration(i)*time.Second)
		p.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, 1, byte(i)}), 22)
		evs = append(evs, d.See(p, Success)...)
	}
	if len(evs) != 1 || evs[0].Type != EventSweep || len(evs[0].Hosts) != 4 {
		t.Errorf("sweep of 4 hosts: %+v; want one sweep event", evs)
	}
}

func TestDetectorForgetsAndBounds(t *testing.T) {
	d := NewDetector(DetectConfig{MaxSources: 3, Forget: time.Minute})
	for i := range 10 {
		d.See(probe(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}).String(), 1, KindSYN, 0), Failure)
	}
	if d.Sources() != 3 {
		t.Errorf("Sources() = %d; want 3", d.Sources())
	}
	d.See(probe("10.0.0.200", 1, KindSYN, 2*time.Minute), Failure)
	if d.Sources() != 1 {
		t.Errorf("after Forget: Sources() = %d; want 1", d.Sources())
	}
}

func TestParseKnock(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "tcp/7000,udp/8000,tcp/9000:22", want: "tcp/7000,udp/8000,tcp/9000:tcp/22"},
		{in: "7000,8000:udp/53", want: "tcp/7000,tcp/8000:udp/53"},
		{in: "tcp/7000", bad: true},
		{in: "tcp/7000:0", bad: true},
		{in: "sctp/7000:22", bad: true},
		{in: "tcp/22:22", bad: true},
		{in: ":22", bad: true},
		{in: "70000:22", bad: true},
	} {
		r, err := ParseKnock(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ParseKnock(%q) = %v; want an error", tc.in, r)
			}
			continue
		}
		if err != nil || r.String() != tc.want {
			t.Errorf("ParseKnock(%q) = %v, %v; want %s", tc.in, r, err, tc.want)
		}
	}
}

func knockProbe(src string, t Target, sport uint16, at time.Duration) Probe {
	k := KindSYN
	if t.Proto == UDP {
		k = KindUDP
	}
	return Probe{Time: t0.Add(at), Proto: t.Proto, Kind: k,
		Src: netip.AddrPortFrom(netip.MustParseAddr(src), sport),
		Dst: netip.AddrPortFrom(netip.MustParseAddr("10.9.0.1"), t.Port)}
}

func TestKnocker(t *testing.T) {
	rule, _ := ParseKnock("tcp/7000,udp/8000,tcp/9000:22")
	seq := rule.Seq
	other := Target{TCP, 7001}
	for _, tc := range []struct {
		name  string
		knock []Target
		gaps  time.Duration
		opens bool
	}{
		{"the sequence", seq, time.Second, true},
		{"too slow", seq, 6 * time.Second, false},
		{"out of order", []Target{seq[0], seq[2], seq[1]}, time.Second, false},
		{"another port between", []Target{seq[0], seq[1], other, seq[2]}, time.Second, false},
		{"started over", []Target{seq[0], seq[1], seq[0], seq[1], seq[2]}, time.Second, true},
		{"wrong protocol", []Target{seq[0], {TCP, 8000}, seq[2]}, time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := NewKnocker([]KnockRule{rule}, 10*time.Second)
			opened := false
			for i, kt := range tc.knock {
				if got, ok, _ := k.See(knockProbe("10.9.0.2", kt, uint16(50000+i), time.Duration(i)*tc.gaps)); ok {
					opened = true
					if got != rule.Open {
						t.Errorf("opened %s; want %s", got, rule.Open)
					}
				}
			}
			if opened != tc.opens {
				t.Errorf("opened = %v; want %v", opened, tc.opens)
			}
		})
	}
	// A retransmitted knock is not another contact; another source's
	// knocks are apart.
	k := NewKnocker([]KnockRule{rule}, 10*time.Second)
	k.See(knockProbe("10.9.0.2", seq[0], 50000, 0))
	k.See(knockProbe("10.9.0.2", seq[0], 50000, time.Second))
	k.See(knockProbe("10.9.0.3", seq[1], 50001, time.Second))
	k.See(knockProbe("10.9.0.2", seq[1], 50002, 2*time.Second))
	if _, ok, _ := k.See(knockProbe("10.9.0.2", seq[2], 50003, 3*time.Second)); !ok {
		t.Error("a retransmitted first knock reset the sequence")
	}
}

// TestKnockerRandomScans: scans of every TCP and UDP port, in random order
// and as fast as a scanner goes, never open a port guarded by a sequence.
func TestKnockerRandomScans(t *testing.T) {
	rule, _ := ParseKnock("tcp/7000,udp/8000,tcp/9000:22")
	rng := rand.New(rand.NewPCG(1, 2))
	for scan := range 20 {
		k := NewKnocker([]KnockRule{rule}, 10*time.Second)
		var all []Target
		for port := 1; port <= 65535; port++ {
			all = append(all, Target{TCP, uint16(port)}, Target{UDP, uint16(port)})
		}
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		for i, kt := range all {
			if _, ok, _ := k.See(knockProbe("10.9.0.2", kt, uint16(1024+i%60000), time.Duration(i)*time.Microsecond)); ok {
				t.Fatalf("scan %d opened the port after %d probes", scan, i+1)
			}
		}
	}
}

// ipv4TCP builds an IPv4 packet with a TCP header.
func ipv4TCP(src, dst [4]byte, sport, dport uint16, flags uint8) []byte {
	b := make([]byte, 40)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:4], 40)
	b[8], b[9] = 64, TCP
	copy(b[12:16], src[:])
	copy(b[16:20], dst[:])
	binary.BigEndian.PutUint16(b[20:22], sport)
	binary.BigEndian.PutUint16(b[22:24], dport)
	b[32] = 5 << 4
	b[33] = flags
	return b
}

func TestParsePacket(t *testing.T) {
	p, err := ParsePacket(ipv4TCP([4]byte{10, 9, 0, 2}, [4]byte{10, 9, 0, 1}, 40000, 22, flagFIN|flagPSH|flagURG), t0)
	if err != nil || p.Kind != KindXmas || p.Src.String() != "10.9.0.2:40000" || p.Dst.String() != "10.9.0.1:22" {
		t.Errorf("ParsePacket(xmas) = %+v, %v", p, err)
	}
	b6 := make([]byte, 40+8+8+4)
	b6[0] = 0x60
	b6[6] = 0 // hop-by-hop first
	b6[23], b6[39] = 2, 1
	b6[40] = UDP // next: UDP
	binary.BigEndian.PutUint16(b6[48:50], 5353)
	binary.BigEndian.PutUint16(b6[50:52], 62201)
	copy(b6[56:], "spa!")
	p, err = ParsePacket(b6, t0)
	if err != nil || p.Kind != KindUDP || p.Dst.String() != "[::1]:62201" || string(p.Payload) != "spa!" {
		t.Errorf("ParsePacket(IPv6 hop-by-hop UDP) = %+v, %v", p, err)
	}
	for name, b := range map[string][]byte{
		"empty": nil, "short IPv4": {0x45, 0}, "bad IHL": append([]byte{0x41}, make([]byte, 30)...),
		"short TCP": ipv4TCP([4]byte{}, [4]byte{}, 1, 2, 0)[:30], "version 5": {0x50},
	} {
		if p, err := ParsePacket(b, t0); err == nil {
			t.Errorf("ParsePacket(%s) = %+v; want an error", name, p)
		}
	}
}

func FuzzParsePacket(f *testing.F) {
	f.Add(ipv4TCP([4]byte{10, 9, 0, 2}, [4]byte{10, 9, 0, 1}, 40000, 22, flagSYN))
	f.Add(append([]byte{0x60, 0, 0, 0, 0, 8, 17, 64}, make([]byte, 48)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePacket(b, t0)
		if err == nil && p.Proto != TCP && p.Proto != UDP {
			t.Errorf("ParsePacket = %+v with no error", p)
		}
	})
}

func FuzzParseKnock(f *testing.F) {
	f.Add("tcp/7000,udp/8000,tcp/9000:22")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseKnock(s)
		if err != nil {
			return
		}
		r2, err := ParseKnock(r.String())
		if err != nil || r2.String() != r.String() {
			t.Errorf("ParseKnock(%q).String() = %q does not read back: %v", s, r.String(), err)
		}
	})
}

func TestParseFile(t *testing.T) {
	f, err := ParseFile(strings.NewReader("block: 10m\ngroup4: 24\nallow: [192.0.2.10, 10.1.0.0/16]\nknock:\n  - tcp/7000,udp/8000,tcp/9000:22\nopen_for: 45s\nspa:\n  key: /k\n  port: 62201\ntarpit:\n  ports: [2222]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(f.Block) != 10*time.Minute || f.Group4 != 24 || len(f.AllowPrefixes) != 2 || len(f.Knocks) != 1 ||
		time.Duration(f.OpenFor) != 45*time.Second || f.SPA.Port != 62201 || f.Tarpit.Ports[0] != 2222 {
		t.Errorf("ParseFile = %+v", f)
	}
	for _, bad := range []string{"blok: 1m", "block: soon", "group4: 33", "allow: [nowhere]", "knock: [tcp/1]", "tarpit: {ports: [0]}", "block: [1"} {
		if _, err := ParseFile(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseFile(%q): no error", bad)
		}
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add("block: 10m\nknock: [tcp/7000,udp/8000:22]\nallow: [10.0.0.0/8]\n")
	f.Fuzz(func(t *testing.T, s string) {
		ParseFile(strings.NewReader(s))
	})
}
