package firewall

import (
	"encoding/binary"
	"net/netip"
	"sync"
)

// regs is the register file of nf_tables: the verdict register apart, four
// 16-byte registers that are also sixteen 4-byte ones, 64 bytes in all.
// Every bit also carries whether it is known: a value loaded from a part
// of the packet the first packet of a connection does not fix (its TTL,
// its length, the client's source port when not given) is not.
type regs struct {
	data  [64]byte
	known [64]byte // a set bit is a known bit of data
	// src marks the bytes that hold the packet's source address: index+1
	// of the address byte, 0 for anything else. It lets a comparison tell
	// how far around the source address its answer holds.
	src [64]byte
	// srcMask is the mask a bitwise applied to those bytes.
	srcMask [64]byte
}

// offset is where register r starts in the file, or -1 for a register
// that is not a data register.
func regOffset(r uint32) int {
	switch {
	case r >= 1 && r <= 4: // NFT_REG_1..NFT_REG_4
		return int(r-1) * 16
	case r >= 8 && r <= 23: // NFT_REG32_00..NFT_REG32_15
		return int(r-8) * 4
	}
	return -1
}

// span returns the byte range [off, off+n) of register r, false when it
// does not fit in the file.
func span(r, n uint32) (int, int, bool) {
	off := regOffset(r)
	if off < 0 || n > 64 || off+int(n) > 64 {
		return 0, 0, false
	}
	return off, off + int(n), true
}

// store writes a value into register r, all of it known and from nowhere
// in particular; the store is padded with zeros to a multiple of four
// bytes, as the kernel's register stores are.
func (r *regs) store(reg uint32, b []byte) bool {
	return r.storeKnown(reg, b, nil)
}

// storeKnown writes b with the given known mask (nil: all known).
func (r *regs) storeKnown(reg uint32, b, known []byte) bool {
	n := (len(b) + 3) &^ 3
	lo, hi, ok := span(reg, uint32(n))
	if !ok {
		return false
	}
	for i := lo; i < hi; i++ {
		j := i - lo
		r.data[i], r.known[i], r.src[i], r.srcMask[i] = 0, 0xff, 0, 0xff
		if j < len(b) {
			r.data[i] = b[j]
			if known != nil {
				r.known[i] = known[j]
			}
		}
	}
	return true
}

// unknown marks n bytes of register reg as unknown.
func (r *regs) unknown(reg, n uint32) bool {
	n = (n + 3) &^ 3
	lo, hi, ok := span(reg, n)
	if !ok {
		return false
	}
	for i := lo; i < hi; i++ {
		r.data[i], r.known[i], r.src[i], r.srcMask[i] = 0, 0, 0, 0xff
	}
	return true
}

// tri is a three-valued truth: a comparison of bits not all known may
// have either answer.
type tri int8

const (
	no tri = iota
	yes
	maybe
)

func triOf(b bool) tri {
	if b {
		return yes
	}
	return no
}

func (t tri) not() tri {
	switch t {
	case yes:
		return no
	case no:
		return yes
	}
	return maybe
}

// compare compares register bytes [lo, lo+len(c)) with c as unsigned big
// numbers, byte by byte as nft_cmp does (memcmp): -1, 0, 1, or 2 when the
// answer turns on unknown bits.
func (r *regs) compare(lo int, c []byte) int {
	for i, cb := range c {
		d, k := r.data[lo+i], r.known[lo+i]
		if k == 0xff {
			if d != cb {
				if d < cb {
					return -1
				}
				return 1
			}
			continue
		}
		// Some bits unknown: the byte could still be ordered for certain
		// when its known high bits already differ.
		for bit := 7; bit >= 0; bit-- {
			m := byte(1) << bit
			if k&m == 0 {
				return 2
			}
			if d&m != cb&m {
				if d&m == 0 {
					return -1
				}
				return 1
			}
		}
	}
	return 0
}

// equalKnown says whether register bytes [lo, lo+len(c)) equal c: no when a
// known bit differs, maybe when unknown bits leave it open.
func (r *regs) equalKnown(lo int, c []byte) tri {
	t := yes
	for i, cb := range c {
		d, k := r.data[lo+i], r.known[lo+i]
		if (d^cb)&k != 0 {
			return no
		}
		if k != 0xff {
			t = maybe
		}
	}
	return t
}

// packetBytes is the first packet of a connection as bytes, with what of
// it is known, so that payload loads read what the kernel would.
type packetBytes struct {
	net, netKnown []byte
	th, thKnown   []byte
	srcOff        int // where the source address starts in net
	ll, llKnown   []byte
}

// build lays out the headers of p: an IPv4 header without options or an
// IPv6 header without extension headers, then TCP (a SYN) or UDP.
func buildPacket(p Packet, dst netip.Addr, dport uint16) packetBytes {
	var b packetBytes
	all := func(n int) []byte {
		k := make([]byte, n)
		for i := range k {
			k[i] = 0xff
		}
		return k
	}
	if p.Src.Is4() {
		h := make([]byte, 20)
		k := make([]byte, 20)
		h[0], k[0] = 0x45, 0xff
		// Byte 6: reserved, DF (the client's choice), MF, offset: a first
		// packet that conntrack has reassembled is not a fragment.
		k[6], k[7] = 0xbf, 0xff
		h[9], k[9] = p.Proto, 0xff
		s, d := p.Src.As4(), dst.As4()
		copy(h[12:], s[:])
		copy(h[16:], d[:])
		copy(k[12:], all(8))
		b.net, b.netKnown, b.srcOff = h, k, 12
	} else {
		h := make([]byte, 40)
		k := make([]byte, 40)
		h[0], k[0] = 0x60, 0xf0
		h[6], k[6] = p.Proto, 0xff
		s, d := p.Src.As16(), dst.As16()
		copy(h[8:], s[:])
		copy(h[24:], d[:])
		copy(k[8:], all(32))
		b.net, b.netKnown, b.srcOff = h, k, 8
	}
	var th, tk []byte
	switch p.Proto {
	case 6:
		th, tk = make([]byte, 20), make([]byte, 20)
		th[13], tk[13] = 0x02, 0x3f // SYN; ECE and CWR are the client's choice
	case 17:
		th, tk = make([]byte, 8), make([]byte, 8)
	}
	if th != nil {
		binary.BigEndian.PutUint16(th[2:], dport)
		tk[2], tk[3] = 0xff, 0xff
		if p.SrcPort != 0 {
			binary.BigEndian.PutUint16(th[0:], p.SrcPort)
			tk[0], tk[1] = 0xff, 0xff
		}
	}
	b.th, b.thKnown = th, tk
	// The link layer: an Ethernet header whose addresses are the peers'
	// business; only its type is known.
	b.ll, b.llKnown = make([]byte, 14), make([]byte, 14)
	et := uint16(0x0800)
	if !p.Src.Is4() {
		et = 0x86dd
	}
	binary.BigEndian.PutUint16(b.ll[12:], et)
	b.llKnown[12], b.llKnown[13] = 0xff, 0xff
	return b
}

// setIndex orders a set's elements for lookup: ranges of keys, inclusive,
// sorted and not overlapping for a one-field key; for a concatenation,
// each element with its per-field bounds.
type setIndex struct {
	ranges []keyRange
	fields []int // padded byte offsets of a concatenation's fields; nil for one field
	lens   []int // their unpadded lengths
	broken string
	filled bool // rules add to the set as packets pass

	addrOnce sync.Once
	addrSet  addrSet // the elements as addresses, made on first use
}

type keyRange struct {
	lo, hi []byte
	e      *Element
}
