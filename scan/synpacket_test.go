package scan

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
)

var (
	testCookie = synCookie{0x0706050403020100, 0x0f0e0d0c0b0a0908}
	testSrc4   = netip.MustParseAddr("192.0.2.1")
	testDst4   = netip.MustParseAddr("192.0.2.2")
	testSrc6   = netip.MustParseAddr("2001:db8::1")
	testDst6   = netip.MustParseAddr("2001:db8::2")
)

func TestSipHash24(t *testing.T) {
	// The reference vector of the SipHash paper (appendix A): key 00..0f,
	// message 00..0e.
	msg := make([]byte, 15)
	for i := range msg {
		msg[i] = byte(i)
	}
	if got, want := sipHash24(testCookie.k0, testCookie.k1, msg), uint64(0xa129ca6149be45e5); got != want {
		t.Errorf("sipHash24(00..0e) = %#x; want %#x", got, want)
	}
}

func TestSynCookieDiffers(t *testing.T) {
	base := testCookie.seq(testSrc4, testDst4, 40000, 80)
	for name, seq := range map[string]uint32{
		"other key":    synCookie{1, 2}.seq(testSrc4, testDst4, 40000, 80),
		"other src":    testCookie.seq(testDst4, testDst4, 40000, 80),
		"other dst":    testCookie.seq(testSrc4, testSrc4, 40000, 80),
		"other sport":  testCookie.seq(testSrc4, testDst4, 40001, 80),
		"other dport":  testCookie.seq(testSrc4, testDst4, 40000, 81),
		"swapped port": testCookie.seq(testSrc4, testDst4, 80, 40000),
	} {
		if seq == base {
			t.Errorf("%s: same cookie %#x", name, seq)
		}
	}
}

func TestBuildSYN4(t *testing.T) {
	seq := testCookie.seq(testSrc4, testDst4, 40000, 443)
	pkt := buildSYN4(make([]byte, synPacket4Len), testSrc4, testDst4, 40000, 443, seq, 7)
	if len(pkt) != 44 {
		t.Fatalf("len = %d; want 44", len(pkt))
	}
	if c := checksumFold(checksumAdd(0, pkt[:20])); c != 0 {
		t.Errorf("IPv4 header checksum does not verify: %#x", c)
	}
	if c := tcpChecksum(testSrc4, testDst4, pkt[20:]); c != 0 {
		t.Errorf("TCP checksum does not verify: %#x", c)
	}
	r, err := parseTCP4(pkt)
	if err != nil {
		t.Fatal(err)
	}
	want := tcpReply{Src: testSrc4, Dst: testDst4, SrcPort: 40000, DstPort: 443, Seq: seq, Flags: tcpSYN}
	if r != want {
		t.Errorf("parseTCP4(SYN) = %+v; want %+v", r, want)
	}
	if got := binary.BigEndian.Uint16(pkt[22:]); got != 443 {
		t.Errorf("destination port %d", got)
	}
}

func TestBuildSYN6(t *testing.T) {
	seg := buildSYN6(make([]byte, synTCPLen), testSrc6, testDst6, 40000, 22, 12345)
	if c := tcpChecksum(testSrc6, testDst6, seg); c != 0 {
		t.Errorf("TCP checksum does not verify: %#x", c)
	}
	if seg[13] != tcpSYN || seg[12]>>4 != 6 {
		t.Errorf("flags %#x, data offset %d; want SYN, 6", seg[13], seg[12]>>4)
	}
}

// reply4 builds the IPv4 segment a target sends back to a probe.
func reply4(src, dst netip.Addr, sport, dport uint16, ack uint32, flags byte) []byte {
	pkt := buildSYN4(make([]byte, synPacket4Len), src, dst, sport, dport, 99, 1)
	binary.BigEndian.PutUint32(pkt[28:], ack)
	pkt[33] = flags
	return pkt
}

func TestParseTCP4Replies(t *testing.T) {
	seq := testCookie.seq(testSrc4, testDst4, 40000, 80)
	for _, tc := range []struct {
		name   string
		pkt    []byte
		valid  bool
		state  State
		reason Reason
	}{
		{"syn-ack", reply4(testDst4, testSrc4, 80, 40000, seq+1, tcpSYN|tcpACK), true, Open, ReasonSynAck},
		{"rst-ack", reply4(testDst4, testSrc4, 80, 40000, seq+1, tcpRST|tcpACK), true, Closed, ReasonReset},
		{"wrong ack", reply4(testDst4, testSrc4, 80, 40000, seq, tcpSYN|tcpACK), false, Open, ReasonSynAck},
		{"rst without ack", reply4(testDst4, testSrc4, 80, 40000, seq+1, tcpRST), false, Closed, ReasonReset},
		{"other port", reply4(testDst4, testSrc4, 81, 40000, seq+1, tcpSYN|tcpACK), false, Open, ReasonSynAck},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseTCP4(tc.pkt)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.valid(testCookie); got != tc.valid {
				t.Errorf("valid = %v; want %v", got, tc.valid)
			}
			st, reason, ok := r.state()
			if !ok || st != tc.state || reason != tc.reason {
				t.Errorf("state() = %s, %s, %v; want %s, %s", st, reason, ok, tc.state, tc.reason)
			}
		})
	}
}

func TestParseTCP4Bad(t *testing.T) {
	good := reply4(testDst4, testSrc4, 80, 40000, 1, tcpSYN|tcpACK)
	frag := append([]byte(nil), good...)
	frag[7] = 1
	udp := append([]byte(nil), good...)
	udp[9] = 17
	for name, pkt := range map[string][]byte{
		"empty":     nil,
		"short":     good[:19],
		"short tcp": good[:30],
		"ihl 4":     append([]byte{0x44}, good[1:]...),
		"ipv6":      append([]byte{0x65}, good[1:]...),
		"fragment":  frag,
		"udp":       udp,
	} {
		if _, err := parseTCP4(pkt); err == nil {
			t.Errorf("parseTCP4(%s) = nil error; want one", name)
		}
	}
}

// icmp4 builds an ICMP destination-unreachable packet from a router
// quoting pkt's header and first 8 bytes.
func icmp4(from, to netip.Addr, code byte, quoted []byte) []byte {
	pkt := make([]byte, 20+8+28)
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8], pkt[9] = 64, 1
	f, t := from.As4(), to.As4()
	copy(pkt[12:], f[:])
	copy(pkt[16:], t[:])
	pkt[20], pkt[21] = icmp4Unreach, code
	copy(pkt[28:], quoted[:28])
	return pkt
}

func TestParseICMP4(t *testing.T) {
	seq := testCookie.seq(testSrc4, testDst4, 40000, 80)
	probe := buildSYN4(make([]byte, synPacket4Len), testSrc4, testDst4, 40000, 80, seq, 1)
	for _, tc := range []struct {
		code   byte
		reason Reason
	}{
		{0, ReasonNetUnreach}, {1, ReasonHostUnreach}, {3, ReasonPortUnreach},
		{9, ReasonAdminProhibited}, {10, ReasonAdminProhibited}, {13, ReasonAdminProhibited},
	} {
		r, err := parseICMP4(icmp4(testDst4, testSrc4, tc.code, probe))
		if err != nil {
			t.Fatalf("code %d: %v", tc.code, err)
		}
		want := icmpReply{From: testDst4, Src: testSrc4, Dst: testDst4, SrcPort: 40000, DstPort: 80, Seq: seq, Reason: tc.reason}
		if r != want {
			t.Errorf("parseICMP4(code %d) = %+v; want %+v", tc.code, r, want)
		}
		if !r.valid(testCookie) {
			t.Errorf("code %d: cookie does not validate", tc.code)
		}
	}
	other := buildSYN4(make([]byte, synPacket4Len), testSrc4, testDst4, 40000, 80, seq+1, 1)
	if r, err := parseICMP4(icmp4(testDst4, testSrc4, 13, other)); err != nil || r.valid(testCookie) {
		t.Errorf("ICMP quoting another sequence number: %+v, %v; want parsed and invalid", r, err)
	}
}

func TestParseICMP6(t *testing.T) {
	seq := testCookie.seq(testSrc6, testDst6, 40000, 80)
	msg := make([]byte, 8+40+24)
	msg[0], msg[1] = icmp6Unreach, 1 // administratively prohibited
	q := msg[8:]
	q[0], q[6] = 0x60, 6
	s, d := testSrc6.As16(), testDst6.As16()
	copy(q[8:], s[:])
	copy(q[24:], d[:])
	buildSYN6(q[40:], testSrc6, testDst6, 40000, 80, seq)
	r, err := parseICMP6(msg, testDst6)
	if err != nil {
		t.Fatal(err)
	}
	want := icmpReply{From: testDst6, Src: testSrc6, Dst: testDst6, SrcPort: 40000, DstPort: 80, Seq: seq, Reason: ReasonAdminProhibited}
	if r != want || !r.valid(testCookie) {
		t.Errorf("parseICMP6 = %+v (valid %v); want %+v", r, r.valid(testCookie), want)
	}
	if _, err := parseICMP6(msg[:50], testDst6); err == nil {
		t.Error("parseICMP6(truncated quote) = nil error")
	}
}

func TestSynRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	t.Run("halves on loss", func(t *testing.T) {
		r := newSynRate(10000)
		r.take(t0)
		for i := range 100 {
			r.answered(i%4 == 0, t0) // 25 % came late
		}
		r.adjust(t0.Add(200*time.Millisecond), time.Second)
		if r.rate != 5000 {
			t.Errorf("rate after 25%% loss = %v; want 5000", r.rate)
		}
		// Loss again within a timeout counts as the same event.
		for i := range 100 {
			r.answered(i%4 == 0, t0)
		}
		r.adjust(t0.Add(400*time.Millisecond), time.Second)
		if r.rate != 5000 {
			t.Errorf("rate after a second loss within the timeout = %v; want 5000", r.rate)
		}
	})
	t.Run("losses from before a decrease count once", func(t *testing.T) {
		r := newSynRate(10000)
		r.take(t0)
		for i := range 100 {
			r.answered(i%3 == 0, t0)
		}
		r.adjust(t0.Add(200*time.Millisecond), 100*time.Millisecond)
		// Now every answer is to a retry of a try lost at the old rate:
		// the rate holds.
		for range 100 {
			r.answered(true, t0.Add(50*time.Millisecond))
		}
		r.adjust(t0.Add(400*time.Millisecond), 100*time.Millisecond)
		if r.rate != 5000 {
			t.Errorf("rate = %v; want 5000, halved once", r.rate)
		}
		// Tries lost after the decrease count.
		for i := range 100 {
			r.answered(i%3 == 0, t0.Add(300*time.Millisecond))
		}
		r.adjust(t0.Add(600*time.Millisecond), 100*time.Millisecond)
		if r.rate != 2500 {
			t.Errorf("rate = %v; want 2500 after losses at the new rate", r.rate)
		}
	})
	t.Run("uncapped starts from the measured rate", func(t *testing.T) {
		r := newSynRate(0)
		for range 1000 {
			r.take(t0)
		}
		for i := range 100 {
			r.answered(i%4 == 0, t0)
		}
		r.adjust(t0.Add(100*time.Millisecond), time.Second)
		if r.rate != 5000 { // 1000 in 100 ms, halved
			t.Errorf("rate = %v; want 5000", r.rate)
		}
	})
	t.Run("heavy loss goes down to the answers' rate", func(t *testing.T) {
		r := newSynRate(0)
		for range 1000 {
			r.take(t0)
		}
		// 100 answers in 100 ms, 60 of them to retries.
		for i := range 100 {
			r.answered(i < 60, t0)
		}
		r.adjust(t0.Add(100*time.Millisecond), time.Second)
		if r.rate != 1000 {
			t.Errorf("rate = %v; want the 1000 a second answered", r.rate)
		}
	})
	t.Run("grows back to the cap", func(t *testing.T) {
		r := newSynRate(10000)
		r.rate = 8000
		now := t0
		for range 10 {
			for r.take(now) == 0 {
			}
			for range 100 {
				r.answered(false, t0)
			}
			now = now.Add(100 * time.Millisecond)
			r.adjust(now, time.Second)
		}
		if r.rate != 10000 {
			t.Errorf("rate = %v; want back at the cap 10000", r.rate)
		}
	})
	t.Run("random loss under the threshold", func(t *testing.T) {
		r := newSynRate(10000)
		r.take(t0)
		for i := range 100 {
			r.answered(i%25 == 0, t0) // 4 %
		}
		r.adjust(t0.Add(200*time.Millisecond), time.Second)
		if r.rate != 10000 {
			t.Errorf("rate after 4%% loss = %v; want 10000", r.rate)
		}
	})
	t.Run("paces", func(t *testing.T) {
		r := newSynRate(1000)
		n := 0
		for now := t0; now.Before(t0.Add(time.Second)); now = now.Add(100 * time.Microsecond) {
			if r.take(now) == 0 {
				n++
			}
		}
		if n < 990 || n > 1010 {
			t.Errorf("%d probes in a second at 1000/s", n)
		}
	})
}

// FuzzParseReply feeds arbitrary packets to every reply parser: none may
// panic, and whatever parses must be consistent with the input.
func FuzzParseReply(f *testing.F) {
	seq := testCookie.seq(testSrc4, testDst4, 40000, 80)
	probe := buildSYN4(make([]byte, synPacket4Len), testSrc4, testDst4, 40000, 80, seq, 1)
	f.Add(reply4(testDst4, testSrc4, 80, 40000, seq+1, tcpSYN|tcpACK))
	f.Add(reply4(testDst4, testSrc4, 80, 40000, seq+1, tcpRST|tcpACK))
	f.Add(icmp4(testDst4, testSrc4, 13, probe))
	f.Add(buildSYN6(make([]byte, synTCPLen), testSrc6, testDst6, 40000, 22, 1))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if r, err := parseTCP4(pkt); err == nil {
			if r.Src != netip.AddrFrom4([4]byte(pkt[12:16])) || !r.Src.Is4() {
				t.Errorf("parseTCP4: source %v not from the header", r.Src)
			}
			if r.valid(testCookie) && r.Flags&tcpACK == 0 {
				t.Error("valid without ACK")
			}
		}
		if r, err := parseTCP(pkt, testDst6, testSrc6); err == nil {
			if len(pkt) < 20 || r.SrcPort != binary.BigEndian.Uint16(pkt) {
				t.Errorf("parseTCP: %+v from %d bytes", r, len(pkt))
			}
		}
		if r, err := parseICMP4(pkt); err == nil && r.Reason == "" {
			t.Error("parseICMP4: no reason")
		}
		if r, err := parseICMP6(pkt, testDst6); err == nil && (r.Reason == "" || !r.Src.Is6()) {
			t.Errorf("parseICMP6: %+v", r)
		}
	})
}
