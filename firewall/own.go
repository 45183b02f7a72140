package firewall

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// portctl's own table, the only one Block, Unblock and Trace write to:
//
//	table inet portctl {
//		set ports { type inet_proto . inet_service; flags interval,timeout; }
//		set from4 { type ipv4_addr . inet_proto . inet_service; flags interval,timeout; }
//		set from6 { type ipv6_addr . inet_proto . inet_service; flags interval,timeout; }
//		chain block-pre {
//			type filter hook prerouting priority -110; policy accept;
//			fib daddr type unicast return comment "portctl fw block"
//			meta l4proto . th dport @ports drop comment "portctl fw block"
//			ip saddr . meta l4proto . th dport @from4 drop comment "portctl fw block"
//			ip6 saddr . meta l4proto . th dport @from6 drop comment "portctl fw block"
//		}
//		chain block-out {
//			type filter hook output priority -110; policy accept;
//			(the same four rules)
//		}
//		chain trace-pre { type filter hook prerouting priority -350; ... meta nftrace set 1 }
//		chain trace-out { type filter hook output priority -350; ... meta nftrace set 1 }
//	}
//
// Why prerouting at -110 and not input: a port Docker publishes is
// DNATed at prerouting -100 and then goes through forward, never input; at
// -110 the destination port is still the one the client asked for, so
// "block 8080" blocks the published port too, and no table's input or
// forward chain can accept the packet back (a drop ends the walk). The
// fib rule leaves alone packets routed on to other machines (this host as
// a router): a block is about this host's ports, local, broadcast and
// multicast destinations. block-out does the same for this host's own
// clients whose packets to a local address a nat output rule (Docker
// without its userland proxy) would DNAT before they reach prerouting.
const (
	// OwnTable is the name of portctl's own table, of family inet.
	OwnTable = "portctl"
	// BlockComment is the comment on every rule of the block chains, by
	// which owner attribution knows them.
	BlockComment = "portctl fw block"
	// TraceComment is the comment on the rules Trace adds.
	TraceComment = "portctl trace"

	blockPreChain  = "block-pre"
	blockOutChain  = "block-out"
	tracePreChain  = "trace-pre"
	traceOutChain  = "trace-out"
	blockPriority  = -110
	tracePriority  = -350
	portsSet       = "ports"
	from4Set       = "from4"
	from6Set       = "from6"
	protoKeyLength = 4 // inet_proto padded to a register's four bytes
	portKeyLength  = 4 // inet_service padded likewise
)

// ErrNotBlocked is returned by Unblock when nothing of what it was asked
// to remove is blocked.
var ErrNotBlocked = errors.New("not blocked")

// PortBlock is one blocked port range of portctl's own table.
type PortBlock struct {
	// Proto is "tcp", "udp", or "" for both.
	Proto string `json:"proto"`
	// Ports is the first and last port of the range, equal for one port.
	Ports [2]uint16 `json:"ports"`
	// From, when valid, blocks only these sources; invalid blocks all.
	From netip.Prefix `json:"from,omitzero"`
	// For is how long the block lasts from when it is made: the kernel
	// removes it then. Zero lasts until Unblock.
	For time.Duration `json:"for,omitempty"`
	// Expires is, read back by Blocks, how long the block has left; zero
	// for one without For.
	Expires time.Duration `json:"expires,omitempty"`
}

// String is the block as fw block's arguments spell it.
func (b PortBlock) String() string {
	s := strconv.Itoa(int(b.Ports[0]))
	if b.Ports[1] != b.Ports[0] {
		s += "-" + strconv.Itoa(int(b.Ports[1]))
	}
	if b.Proto != "" {
		s += "/" + b.Proto
	}
	if b.From.IsValid() {
		s += " from " + b.From.String()
	}
	if b.For > 0 {
		s += " for " + b.For.String()
	}
	return s
}

// check says what is wrong with a block to add or remove.
func (b PortBlock) check() error {
	switch b.Proto {
	case "", "tcp", "udp":
	default:
		return fmt.Errorf("block %s: protocol %q: want tcp, udp or empty for both", b, b.Proto)
	}
	if b.Ports[0] == 0 || b.Ports[1] < b.Ports[0] {
		return fmt.Errorf("block %s: port range %d-%d: want 1-65535, first no more than last", b, b.Ports[0], b.Ports[1])
	}
	if b.For < 0 {
		return fmt.Errorf("block %s: duration %v is negative", b, b.For)
	}
	if b.For > 0 && b.For < time.Millisecond {
		return fmt.Errorf("block %s: duration %v is below the kernel's millisecond", b, b.For)
	}
	return nil
}

// blockElem is one element of the block sets: a range of the
// concatenated key [source .] protocol . port.
type blockElem struct {
	set      string // portsSet, from4Set, from6Set
	key, end []byte
}

// blockProtoNumbers are the protocol numbers a block's Proto stands for.
func blockProtoNumbers(proto string) []uint8 {
	switch proto {
	case "tcp":
		return []uint8{l4TCP}
	case "udp":
		return []uint8{l4UDP}
	}
	return []uint8{l4TCP, l4UDP}
}

// blockProtoName is the inverse of blockProtoNumbers for one protocol.
func blockProtoName(p uint8) string {
	switch p {
	case l4TCP:
		return "tcp"
	case l4UDP:
		return "udp"
	}
	return "proto " + strconv.Itoa(int(p))
}

// elems are the set elements that make b: one per protocol, each field
// padded to four bytes as the registers hold them.
func (b PortBlock) elems() []blockElem {
	var out []blockElem
	for _, p := range blockProtoNumbers(b.Proto) {
		tail := func(port uint16) []byte {
			t := make([]byte, protoKeyLength+portKeyLength)
			t[0] = p
			binary.BigEndian.PutUint16(t[protoKeyLength:], port)
			return t
		}
		e := blockElem{set: portsSet, key: tail(b.Ports[0]), end: tail(b.Ports[1])}
		if b.From.IsValid() {
			pfx := b.From.Masked()
			first, last := pfx.Addr(), prefixLast(pfx)
			e.set = from4Set
			if first.Is6() {
				e.set = from6Set
			}
			e.key = append(first.AsSlice(), e.key...)
			e.end = append(last.AsSlice(), e.end...)
		}
		out = append(out, e)
	}
	return out
}

// prefixLast is the last address of a masked prefix.
func prefixLast(p netip.Prefix) netip.Addr {
	a := p.Addr().AsSlice()
	for i := p.Bits(); i < len(a)*8; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	r, _ := netip.AddrFromSlice(a)
	return r
}

// parseBlockElem reads an element of one of the block sets back into a
// block of one protocol. timeout is the element's own timeout, expires
// what it has left.
func parseBlockElem(set string, key, end []byte, timeout, expires time.Duration) (PortBlock, error) {
	addrLen := 0
	switch set {
	case portsSet:
	case from4Set:
		addrLen = 4
	case from6Set:
		addrLen = 16
	default:
		return PortBlock{}, fmt.Errorf("set %q is not a block set", set)
	}
	want := addrLen + protoKeyLength + portKeyLength
	if len(key) != want || len(end) != want {
		return PortBlock{}, fmt.Errorf("set %s: element of %d and %d bytes, want %d", set, len(key), len(end), want)
	}
	var b PortBlock
	if addrLen > 0 {
		first, _ := netip.AddrFromSlice(key[:addrLen])
		last, _ := netip.AddrFromSlice(end[:addrLen])
		p, ok := rangeToPrefix(first, last)
		if !ok {
			return PortBlock{}, fmt.Errorf("set %s: source range %s-%s is not a prefix", set, first, last)
		}
		b.From = p
	}
	if key[addrLen] != end[addrLen] {
		return PortBlock{}, fmt.Errorf("set %s: protocol range %d-%d", set, key[addrLen], end[addrLen])
	}
	b.Proto = blockProtoName(key[addrLen])
	b.Ports[0] = binary.BigEndian.Uint16(key[addrLen+protoKeyLength:])
	b.Ports[1] = binary.BigEndian.Uint16(end[addrLen+protoKeyLength:])
	b.For, b.Expires = timeout, expires
	return b, nil
}

// rangeToPrefix is the prefix that spans exactly first to last, if one
// does.
func rangeToPrefix(first, last netip.Addr) (netip.Prefix, bool) {
	for bits := 0; bits <= first.BitLen(); bits++ {
		p := netip.PrefixFrom(first, bits)
		if p.Masked().Addr() == first && prefixLast(p) == last {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// overlaps says whether two blocks of one protocol share a port and a
// source.
func (b PortBlock) overlaps(o PortBlock) bool {
	if b.Ports[1] < o.Ports[0] || o.Ports[1] < b.Ports[0] {
		return false
	}
	switch {
	case !b.From.IsValid() && !o.From.IsValid():
		return true
	case b.From.IsValid() && o.From.IsValid():
		return b.From.Overlaps(o.From)
	}
	return false // one in ports, the other in a from set: apart
}

// sameKey says whether two blocks of one protocol are the same element.
func (b PortBlock) sameKey(o PortBlock) bool {
	return b.Ports == o.Ports && b.From.Masked() == o.From.Masked() && b.Proto == o.Proto
}

// mergeBlocks joins the tcp and udp halves of a block made for both
// protocols into one with Proto "", and sorts by port, source and
// protocol.
func mergeBlocks(bs []PortBlock) []PortBlock {
	slices.SortFunc(bs, func(a, b PortBlock) int {
		return cmp.Or(cmp.Compare(a.Ports[0], b.Ports[0]), cmp.Compare(a.Ports[1], b.Ports[1]),
			a.From.Addr().Compare(b.From.Addr()), cmp.Compare(a.From.Bits(), b.From.Bits()),
			cmp.Compare(a.Proto, b.Proto))
	})
	var out []PortBlock
	for i := 0; i < len(bs); i++ {
		b := bs[i]
		if i+1 < len(bs) && b.Proto == "tcp" && bs[i+1].Proto == "udp" {
			n := bs[i+1]
			if n.Ports == b.Ports && n.From == b.From && n.For == b.For {
				b.Proto = ""
				b.Expires = min(b.Expires, n.Expires)
				i++
			}
		}
		out = append(out, b)
	}
	return out
}

// split is b as one block per protocol.
func (b PortBlock) split() []PortBlock {
	var out []PortBlock
	for _, p := range blockProtoNumbers(b.Proto) {
		c := b
		c.Proto = blockProtoName(p)
		out = append(out, c)
	}
	return out
}
