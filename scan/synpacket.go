package scan

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"net/netip"
	"time"
)

// This file holds the SYN engine's pure parts: building SYN segments,
// checksums, the sequence-number cookie and decoding replies. Nothing here
// does I/O, so all of it is tested and fuzzed on any OS.

// TCP header flags (RFC 9293).
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// Sizes of what the SYN engine sends: a 20-byte IPv4 header and a 24-byte
// TCP header (20 bytes and an MSS option, as nmap sends).
const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	synTCPLen     = 24
	synPacket4Len = ipv4HeaderLen + synTCPLen
	synWindow     = 1024
	synMSS        = 1460
)

// errShort and errNotReply are what the parsers return for input that is
// not a reply to a probe.
var (
	errShort    = errors.New("scan: packet too short")
	errNotReply = errors.New("scan: not a reply to a SYN probe")
)

// synCookie is the keyed hash that makes the SYN engine stateless: the
// sequence number of a probe is the hash of its addresses and ports, so a
// reply proves it answers our probe when its acknowledgement number is the
// hash plus one, and an ICMP error when the segment it quotes carries the
// hash. The hash is SipHash-2-4 under a random per-scan key. A synCookie is
// safe for concurrent use (it is never modified).
type synCookie struct{ k0, k1 uint64 }

// seq returns the sequence number of the probe from src:sport to dst:dport.
// IPv4 addresses are hashed in their 16-byte mapped form.
func (c synCookie) seq(src, dst netip.Addr, sport, dport uint16) uint32 {
	var m [36]byte
	s, d := src.As16(), dst.As16()
	copy(m[0:16], s[:])
	copy(m[16:32], d[:])
	binary.BigEndian.PutUint16(m[32:], sport)
	binary.BigEndian.PutUint16(m[34:], dport)
	h := sipHash24(c.k0, c.k1, m[:])
	return uint32(h) ^ uint32(h>>32)
}

// sipHash24 is SipHash-2-4 (Aumasson and Bernstein, 2012) of msg.
func sipHash24(k0, k1 uint64, msg []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(msg)
	for len(msg) >= 8 {
		m := binary.LittleEndian.Uint64(msg)
		v3 ^= m
		round()
		round()
		v0 ^= m
		msg = msg[8:]
	}
	var last [8]byte
	copy(last[:], msg)
	last[7] = byte(n)
	m := binary.LittleEndian.Uint64(last[:])
	v3 ^= m
	round()
	round()
	v0 ^= m
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}

// checksumAdd adds b to the running ones'-complement sum (RFC 1071).
func checksumAdd(sum uint32, b []byte) uint32 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	return sum
}

// checksumFold folds a running sum into the 16-bit Internet checksum.
func checksumFold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// tcpChecksum is the checksum of a TCP segment (whose checksum field is
// zero) under the IPv4 or IPv6 pseudo header of src and dst.
func tcpChecksum(src, dst netip.Addr, seg []byte) uint16 {
	var sum uint32
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		sum = checksumAdd(sum, s[:])
		sum = checksumAdd(sum, d[:])
	} else {
		s, d := src.As16(), dst.As16()
		sum = checksumAdd(sum, s[:])
		sum = checksumAdd(sum, d[:])
	}
	sum += 6 + uint32(len(seg)) // zero, protocol, TCP length
	return checksumFold(checksumAdd(sum, seg))
}

// putSYN writes a 24-byte TCP SYN segment from sport to dport with
// sequence number seq and an MSS option into b, checksummed for src and
// dst.
func putSYN(b []byte, src, dst netip.Addr, sport, dport uint16, seq uint32) {
	_ = b[synTCPLen-1]
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint32(b[8:], 0) // ack
	b[12] = (synTCPLen / 4) << 4         // data offset
	b[13] = tcpSYN                       // flags
	binary.BigEndian.PutUint16(b[14:], synWindow)
	binary.BigEndian.PutUint16(b[16:], 0) // checksum, below
	binary.BigEndian.PutUint16(b[18:], 0) // urgent pointer
	b[20], b[21] = 2, 4                   // MSS option
	binary.BigEndian.PutUint16(b[22:], synMSS)
	binary.BigEndian.PutUint16(b[16:], tcpChecksum(src, dst, b[:synTCPLen]))
}

// buildSYN4 writes an IPv4 packet carrying a SYN (for a raw socket with
// IP_HDRINCL) into b, which must hold synPacket4Len bytes, and returns
// it. id is the IP identification.
func buildSYN4(b []byte, src, dst netip.Addr, sport, dport uint16, seq uint32, id uint16) []byte {
	b = b[:synPacket4Len]
	b[0] = 0x45 // version 4, 5 words
	b[1] = 0    // DSCP, ECN
	binary.BigEndian.PutUint16(b[2:], synPacket4Len)
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], 0) // flags, fragment offset
	b[8] = 64                            // TTL
	b[9] = 6                             // TCP
	binary.BigEndian.PutUint16(b[10:], 0)
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:], checksumFold(checksumAdd(0, b[:ipv4HeaderLen])))
	putSYN(b[ipv4HeaderLen:], src, dst, sport, dport, seq)
	return b
}

// buildSYN6 writes the TCP SYN segment of an IPv6 probe (for an
// AF_INET6 raw socket, where the kernel adds the IPv6 header) into b,
// which must hold synTCPLen bytes, and returns it.
func buildSYN6(b []byte, src, dst netip.Addr, sport, dport uint16, seq uint32) []byte {
	b = b[:synTCPLen]
	putSYN(b, src, dst, sport, dport, seq)
	return b
}

// tcpReply is a decoded TCP segment that may answer a probe: Src is the
// scanned host, Dst our address.
type tcpReply struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8
}

// state returns what the reply says about the port: Open for SYN+ACK,
// Closed for RST; ok is false for anything else.
func (r tcpReply) state() (State, Reason, bool) {
	switch {
	case r.Flags&tcpRST != 0:
		return Closed, ReasonReset, true
	case r.Flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK:
		return Open, ReasonSynAck, true
	}
	return 0, "", false
}

// valid reports whether the reply acknowledges the probe the cookie
// describes: a SYN+ACK or a RST+ACK whose acknowledgement number is our
// sequence number plus one.
func (r tcpReply) valid(c synCookie) bool {
	if r.Flags&tcpACK == 0 {
		return false
	}
	return r.Ack == c.seq(r.Dst, r.Src, r.DstPort, r.SrcPort)+1
}

// parseTCP4 decodes an IPv4 packet holding a TCP segment, as an AF_INET
// raw socket delivers it.
func parseTCP4(pkt []byte) (tcpReply, error) {
	ihl, err := ipv4Header(pkt, 6)
	if err != nil {
		return tcpReply{}, err
	}
	src := netip.AddrFrom4([4]byte(pkt[12:16]))
	dst := netip.AddrFrom4([4]byte(pkt[16:20]))
	// A reader may have kept only the start of a long segment: the
	// headers are all that matter.
	total := min(int(binary.BigEndian.Uint16(pkt[2:])), len(pkt))
	if total < ihl {
		return tcpReply{}, errShort
	}
	return parseTCP(pkt[ihl:total], src, dst)
}

// ipv4Header checks an IPv4 header carrying protocol proto and not a
// later fragment, and returns its length.
func ipv4Header(pkt []byte, proto byte) (int, error) {
	if len(pkt) < ipv4HeaderLen {
		return 0, errShort
	}
	if pkt[0]>>4 != 4 {
		return 0, errNotReply
	}
	ihl := int(pkt[0]&0x0f) * 4
	if ihl < ipv4HeaderLen || len(pkt) < ihl {
		return 0, errShort
	}
	if pkt[9] != proto || binary.BigEndian.Uint16(pkt[6:])&0x1fff != 0 {
		return 0, errNotReply
	}
	return ihl, nil
}

// parseTCP decodes a TCP segment sent from src to dst (as an AF_INET6
// raw socket delivers it, without the IPv6 header).
func parseTCP(seg []byte, src, dst netip.Addr) (tcpReply, error) {
	if len(seg) < 20 {
		return tcpReply{}, errShort
	}
	if off := int(seg[12]>>4) * 4; off < 20 || off > len(seg) {
		return tcpReply{}, errShort
	}
	return tcpReply{
		Src:     src,
		Dst:     dst,
		SrcPort: binary.BigEndian.Uint16(seg[0:]),
		DstPort: binary.BigEndian.Uint16(seg[2:]),
		Seq:     binary.BigEndian.Uint32(seg[4:]),
		Ack:     binary.BigEndian.Uint32(seg[8:]),
		Flags:   seg[13],
	}, nil
}

// icmpReply is a decoded ICMP or ICMPv6 destination-unreachable error
// about one of our probes: From sent it; Src, Dst, ports and Seq come from
// the probe it quotes.
type icmpReply struct {
	From             netip.Addr
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Seq              uint32
	Reason           Reason
}

// valid reports whether the quoted probe carries our cookie.
func (r icmpReply) valid(c synCookie) bool {
	return r.Seq == c.seq(r.Src, r.Dst, r.SrcPort, r.DstPort)
}

// ICMP destination-unreachable types.
const (
	icmp4Unreach = 3
	icmp6Unreach = 1
)

// icmp4Reason maps an ICMP destination-unreachable code (RFC 792, RFC
// 1812) to a reason, as nmap names them.
func icmp4Reason(code byte) Reason {
	switch code {
	case 0, 6, 11: // net unreachable, unknown, for TOS
		return ReasonNetUnreach
	case 1, 7, 12: // host unreachable, unknown, for TOS
		return ReasonHostUnreach
	case 2:
		return reasonProtoUnreach
	case 3:
		return ReasonPortUnreach
	case 9, 10, 13: // net, host, communication administratively prohibited
		return ReasonAdminProhibited
	}
	return ReasonHostUnreach
}

// icmp6Reason maps an ICMPv6 destination-unreachable code (RFC 4443).
func icmp6Reason(code byte) Reason {
	switch code {
	case 0: // no route
		return ReasonNetUnreach
	case 1, 5, 6: // administratively prohibited, policy, reject route
		return ReasonAdminProhibited
	case 4:
		return ReasonPortUnreach
	}
	return ReasonHostUnreach // 2 beyond scope, 3 address unreachable
}

// reasonProtoUnreach is nmap's name for ICMP protocol unreachable.
const reasonProtoUnreach Reason = "proto-unreach"

// parseICMP4 decodes an IPv4 packet with an ICMP destination-unreachable
// message quoting a TCP segment, as an AF_INET raw ICMP socket delivers
// it.
func parseICMP4(pkt []byte) (icmpReply, error) {
	ihl, err := ipv4Header(pkt, 1)
	if err != nil {
		return icmpReply{}, err
	}
	from := netip.AddrFrom4([4]byte(pkt[12:16]))
	msg := pkt[ihl:]
	if len(msg) < 8 {
		return icmpReply{}, errShort
	}
	if msg[0] != icmp4Unreach {
		return icmpReply{}, errNotReply
	}
	q := msg[8:]
	qihl, err := ipv4Header(q, 6)
	if err != nil {
		return icmpReply{}, err
	}
	if len(q) < qihl+8 {
		return icmpReply{}, errShort
	}
	return quotedProbe(from, netip.AddrFrom4([4]byte(q[12:16])), netip.AddrFrom4([4]byte(q[16:20])), q[qihl:], icmp4Reason(msg[1])), nil
}

// parseICMP6 decodes an ICMPv6 destination-unreachable message from
// (as an AF_INET6 raw ICMPv6 socket delivers it, without the IPv6
// header) quoting a TCP segment directly after the quoted IPv6 header.
func parseICMP6(msg []byte, from netip.Addr) (icmpReply, error) {
	if len(msg) < 8 {
		return icmpReply{}, errShort
	}
	if msg[0] != icmp6Unreach {
		return icmpReply{}, errNotReply
	}
	q := msg[8:]
	if len(q) < ipv6HeaderLen+8 {
		return icmpReply{}, errShort
	}
	if q[0]>>4 != 6 || q[6] != 6 { // version, next header TCP
		return icmpReply{}, errNotReply
	}
	return quotedProbe(from, netip.AddrFrom16([16]byte(q[8:24])), netip.AddrFrom16([16]byte(q[24:40])), q[ipv6HeaderLen:], icmp6Reason(msg[1])), nil
}

// quotedProbe is the icmpReply from from about the probe from src to dst
// whose TCP header (its first 8 bytes at least) an ICMP error quotes as
// tcp.
func quotedProbe(from, src, dst netip.Addr, tcp []byte, reason Reason) icmpReply {
	return icmpReply{
		From:    from,
		Src:     src,
		Dst:     dst,
		SrcPort: binary.BigEndian.Uint16(tcp[0:]),
		DstPort: binary.BigEndian.Uint16(tcp[2:]),
		Seq:     binary.BigEndian.Uint32(tcp[4:]),
		Reason:  reason,
	}
}

// SynConfig configures the SYN engine. Engines call their next and emit
// functions one at a time, never concurrently. The zero value works: every
// field has a default.
type SynConfig struct {
	// Timeout, when set, is the fixed time to wait for an answer to a
	// probe. When 0 the timeout adapts to measured round trips, starting
	// at InitialTimeout and staying between MinTimeout and MaxTimeout.
	Timeout time.Duration
	// Retries is how many more probes an unanswered port gets (default 1;
	// -1 for none). A port that answered is never probed again.
	Retries int
	// Rate caps probes sent per second (0: no cap). The engine sends
	// slower when it sees replies being lost (see synRate).
	Rate int
	// SourcePort is the TCP port probes come from (0: a free port the
	// kernel picks). The engine keeps a socket bound to it during the scan
	// so no connection of this host takes it.
	SourcePort uint16
	// Window caps the probes awaiting an answer (0: 16384).
	Window int
}

func (c SynConfig) retries() int { return retries(c.Retries, 1) }

func (c SynConfig) window() int {
	if c.Window <= 0 {
		return 16384
	}
	return c.Window
}

// synRate is the SYN engine's send-rate control: a token bucket whose
// rate adapts to loss, additive-increase / multiplicative-decrease like
// TCP's congestion control. It is not safe for concurrent use.
//
// A stateless scanner cannot tell a lost probe from a filtered port by a
// timeout alone (a firewall that drops everything would throttle the scan
// for nothing), so, like nmap, it counts as a drop only what it can prove:
// an answer that came to a probe sent more than once, whose earlier tries
// were lost (at the current rate: see answered). Answers are counted in windows of at least synRateWindow and
// synRateMinAnswers answers (at low rates, of a second). When more than synLossHigh of a window's
// answers came late the rate halves (from the rate measured in the window
// when there was no cap yet), at most once per timeout, so one burst of
// loss counts once. When under synLossLow came late and the sender was held
// back by the cap, the rate grows by a quarter, up to SynConfig.Rate (or
// without bound when none is set). Random loss of a few per cent, which no
// slower rate would cure, stays under synLossHigh and does not slow the
// scan.
type synRate struct {
	limit  float64 // the configured cap, 0 for none
	rate   float64 // the current cap, 0 for none
	tokens float64
	last   time.Time

	winStart             time.Time
	winSent, winAnswers  int
	winReplies           int // answers that were replies, not timeouts
	winLate              int
	winLimited           bool
	lastDecrease         time.Time
	decreases, increases int
}

const (
	synRateWindow     = 100 * time.Millisecond
	synRateMinAnswers = 50
	synLossHigh       = 0.10
	synLossLow        = 0.05
	synLossHeavy      = 0.5
	synMinRate        = 100
)

func newSynRate(limit int) synRate {
	return synRate{limit: float64(max(limit, 0)), rate: float64(max(limit, 0))}
}

// take books one probe at now; when the cap allows none it returns how
// long to wait.
func (r *synRate) take(now time.Time) time.Duration {
	if r.winStart.IsZero() {
		r.winStart = now
	}
	if r.rate == 0 {
		r.winSent++
		return 0
	}
	burst := max(r.rate/200, 1) // 5 ms of sending
	if r.last.IsZero() {
		r.tokens = burst
	} else {
		r.tokens = min(r.tokens+now.Sub(r.last).Seconds()*r.rate, burst)
	}
	r.last = now
	if r.tokens < 1-1e-9 {
		r.winLimited = true
		return max(time.Duration((1-r.tokens)/r.rate*float64(time.Second)), time.Microsecond)
	}
	r.tokens = max(r.tokens-1, 0)
	r.winSent++
	return 0
}

// answered counts an answer; late says the probe had been sent before
// without one, and lostAt is when that unanswered try was sent. A try
// lost before the last decrease was lost at the old rate, which has been
// paid for already: it does not count again (like TCP, which reduces its
// window once per round trip of losses). Without that, a scan whose first
// burst overflowed a bottleneck, and which is now sending retries only,
// would see every answer late and throttle itself to the minimum.
func (r *synRate) answered(late bool, lostAt time.Time) {
	r.winReplies++
	r.lost(late, lostAt)
}

// lost counts a try known to be lost without an answer to it (a timeout
// of a probe whose host answers others), sent at lostAt: in the loss
// ratio it weighs as a late answer.
func (r *synRate) lost(late bool, lostAt time.Time) {
	r.winAnswers++
	if late && lostAt.After(r.lastDecrease) {
		r.winLate++
	}
}

// adjust closes the window when it is full and adapts the rate; timeout
// is the current probe timeout.
func (r *synRate) adjust(now time.Time, timeout time.Duration) {
	d := now.Sub(r.winStart)
	// A window needs synRateMinAnswers answers, or, at a low rate, a
	// second and one answer.
	if r.winStart.IsZero() || d < synRateWindow || r.winAnswers == 0 ||
		r.winAnswers < synRateMinAnswers && d < time.Second {
		return
	}
	loss := float64(r.winLate) / float64(r.winAnswers)
	switch {
	case loss > synLossHigh && now.Sub(r.lastDecrease) >= timeout:
		if r.rate == 0 {
			r.rate = float64(r.winSent) / d.Seconds()
		}
		// Halve; under heavy loss, go straight down to the rate the
		// answers came at when that is lower: past a bottleneck that is
		// about what it drains, and halving from far above it would take
		// several round trips of heavy loss. (Not under light loss: when
		// most targets are silent, filtered or down, the answers come
		// far slower than the link drains.)
		next := r.rate / 2
		if loss > synLossHeavy {
			next = min(next, float64(r.winReplies)/d.Seconds())
		}
		r.rate = max(next, synMinRate)
		r.lastDecrease = now
		r.decreases++
	case loss < synLossLow && r.winLimited && r.rate > 0 && now.Sub(r.lastDecrease) >= 2*timeout:
		// Only once the tries sent at the decreased rate have had time
		// to be answered, or lost and retried: before, a window looks
		// clean because the losses have not shown yet.
		r.rate += r.rate / 8
		if r.limit > 0 && r.rate > r.limit {
			r.rate = r.limit
		}
		r.increases++
	}
	r.winStart, r.winSent, r.winAnswers, r.winReplies, r.winLate, r.winLimited = now, 0, 0, 0, 0, false
}
