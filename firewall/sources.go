package firewall

import (
	"fmt"
	"net/netip"
	"slices"
)

// Class is a kind of client, by where it connects from.
type Class string

const (
	// Loopback is a client on this machine, connecting over lo.
	Loopback Class = "loopback"
	// LAN is a client on a network this machine has an address in.
	LAN Class = "lan"
	// Internet is a client with a public address, beyond the LAN.
	Internet Class = "internet"
)

// Classes are the source classes in the order commands show them.
var Classes = []Class{Internet, LAN, Loopback}

// Piece is part of a source range that the ruleset treats alike, and what
// happens to a packet from it.
type Piece struct {
	From []netip.Prefix `json:"from"`
	// More is how many more prefixes the piece holds than From lists (a
	// set of 100,000 addresses makes a piece of as many).
	More   int    `json:"more_prefixes,omitempty"`
	Result Result `json:"result"`
}

// special are the IPv4 and IPv6 ranges that are not the public internet:
// private, shared, loopback, link-local, documentation, multicast and
// reserved space (RFC 6890 and its successors).
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("224.0.0.0/3"),
	netip.MustParsePrefix("::/127"),
	netip.MustParsePrefix("::ffff:0:0/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// maxPieces bounds how many pieces EvaluateFrom splits a range into.
const maxPieces = 256

// ClassPrefixes are the source addresses of a class on h: loopback's
// 127.0.0.0/8 and ::1; the LAN's networks of h's interfaces; the
// internet's public IPv4 space and IPv6 global unicast space.
func ClassPrefixes(c Class, h *Host) []netip.Prefix {
	switch c {
	case Loopback:
		return []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	case LAN:
		var out []netip.Prefix
		if h == nil {
			return nil
		}
		for _, i := range h.Interfaces {
			if i.Name == "lo" {
				continue
			}
			for _, a := range i.Addrs {
				if a.Addr().IsLoopback() || a.Addr().IsLinkLocalUnicast() {
					continue
				}
				p := a.Masked()
				if !slices.Contains(out, p) {
					out = append(out, p)
				}
			}
		}
		return out
	case Internet:
		return public()
	}
	return nil
}

// public is the IPv4 space and IPv6's global unicast 2000::/3 minus the
// special ranges.
func public() []netip.Prefix {
	var out []netip.Prefix
	for _, all := range []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("2000::/3")} {
		lo, hi := all.Addr(), lastOf(all)
		var cut [][2]netip.Addr
		for _, s := range special {
			if s.Addr().Is4() == lo.Is4() && all.Overlaps(s) {
				cut = append(cut, [2]netip.Addr{s.Addr(), lastOf(s)})
			}
		}
		slices.SortFunc(cut, func(a, b [2]netip.Addr) int { return a[0].Compare(b[0]) })
		cur := lo
		for _, c := range cut {
			if cur.Compare(c[0]) < 0 {
				out = append(out, rangePrefixes(cur, c[0].Prev())...)
			}
			if c[1].Compare(cur) >= 0 {
				cur = c[1].Next()
				if !cur.IsValid() {
					break
				}
			}
		}
		if cur.IsValid() && cur.Compare(hi) <= 0 {
			out = append(out, rangePrefixes(cur, hi)...)
		}
	}
	return out
}

// rangePrefixes covers [lo, hi] with the fewest prefixes.
func rangePrefixes(lo, hi netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	for lo.IsValid() && lo.Compare(hi) <= 0 {
		bits := lo.BitLen()
		// The largest block that starts at lo and ends within hi.
		for bits > 0 {
			p := netip.PrefixFrom(lo, bits-1)
			if p.Masked().Addr() != lo || lastOf(p).Compare(hi) > 0 {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(lo, bits)
		out = append(out, p)
		lo = lastOf(p).Next()
	}
	return out
}

// Evaluate walks p through rs as the kernel would on h, and says what
// happens to it. It sends nothing and changes nothing. It evaluates on
// Linux only: elsewhere every verdict is unknown.
//
// Where a match cannot be settled from the packet (a rate limit, an
// expression this package does not model, a field the client chooses), it
// tries both answers; the verdict is certain only when every way agrees,
// and unknown otherwise, naming what it depends on.
func Evaluate(rs *Ruleset, h *Host, p Packet) Result {
	res, _ := evaluate(rs, h, p)
	return res
}

// EvaluateFrom evaluates p from every source address in from, split into
// the pieces the ruleset tells apart: each evaluation stands for every
// source address for which each comparison on its way answers alike — a
// range, and within it the addresses in (or out of) the sets it looked the
// source up in. At most maxPieces evaluations are made; a last piece with
// an unknown verdict covers what is left. Pieces with the same verdict and
// deciding rule are joined, even when apart. p.Src is ignored; p.InIface,
// when empty, is the device the route back to each piece leaves by.
func EvaluateFrom(rs *Ruleset, h *Host, p Packet, from []netip.Prefix) []Piece {
	var fam []netip.Prefix
	for _, pf := range from {
		if pf.Addr().Is4() == p.Dst.Is4() {
			fam = append(fam, pf)
		}
	}
	left := setOfPrefixes(fam)
	type part struct {
		res  Result
		addr addrSet
	}
	var parts []part
	add := func(res Result, s addrSet) {
		for i := range parts {
			if sameOutcome(parts[i].res, res) {
				parts[i].addr = append(parts[i].addr, s...)
				return
			}
		}
		parts = append(parts, part{res, s})
	}
	for evals := 0; len(left) > 0; evals++ {
		if evals >= maxPieces {
			add(Result{Verdict: Unknown, Steps: []Step{}, DependsOn: []string{fmt.Sprintf("more than %d pieces: narrow --from", maxPieces)}}, left)
			break
		}
		q := p
		q.Src = left[0].lo
		if q.InIface == "" {
			q.InIface = h.InboundIface(q.Src)
		}
		res, sc := evaluate(rs, h, q)
		// What the evaluation holds for, range by range of what is left:
		// a window of a set per range costs little when the ranges are
		// few addresses each (sampled clients).
		var got addrSet
		for _, r := range left.window(sc.lo, sc.hi) {
			got = append(got, sc.covers(r.lo, r.hi)...)
		}
		if len(got) == 0 {
			// Cannot be (the scope holds the packet's own source), but
			// never loop on it.
			got = addrSet{{q.Src, q.Src}}
		}
		if p.InIface == "" {
			// Another device leads back to other addresses: keep to the
			// route's own prefix.
			if r, ok := h.route(q.Src); ok {
				got = got.intersect(addrSet{{r.Dst.Masked().Addr(), lastOf(r.Dst)}})
			}
		}
		add(res, got)
		left = left.minus(got)
	}
	var out []Piece
	for _, pt := range parts {
		pfx := pt.addr.normal().prefixes()
		pc := Piece{From: pfx, Result: pt.res}
		if len(pfx) > maxListed {
			pc.From, pc.More = pfx[:maxListed], len(pfx)-maxListed
		}
		out = append(out, pc)
	}
	return out
}

// maxListed bounds the prefixes a piece lists.
const maxListed = 64

func sameOutcome(a, b Result) bool {
	if a.Verdict != b.Verdict {
		return false
	}
	if (a.Decider == nil) != (b.Decider == nil) {
		return false
	}
	return a.Decider == nil || a.Decider.Rule == b.Decider.Rule && a.Decider.Action == b.Decider.Action && a.Decider.Chain == b.Decider.Chain
}

// ClassSamples are n clients of class c spread over its address space, for
// each family the class has addresses of here, as one-address prefixes:
// a quick look at what the ruleset does to the class, where covering it
// (EvaluateFrom over ClassPrefixes) would take too long.
func ClassSamples(c Class, h *Host, n int) []netip.Prefix {
	var out []netip.Prefix
	for _, v4 := range []bool{true, false} {
		var fam []netip.Prefix
		for _, p := range ClassPrefixes(c, h) {
			if p.Addr().Is4() == v4 {
				fam = append(fam, p)
			}
		}
		if len(fam) == 0 {
			continue
		}
		if c == Loopback {
			a := netip.IPv6Loopback()
			if v4 {
				a = netip.MustParseAddr("127.0.0.1")
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		for _, a := range spread(fam, n) {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

// spread picks n addresses spread over the prefixes, by their sizes.
func spread(prefixes []netip.Prefix, n int) []netip.Addr {
	var out []netip.Addr
	for i, p := range prefixes {
		k := n / len(prefixes)
		if i < n%len(prefixes) {
			k++
		}
		if k == 0 {
			continue
		}
		hostBits := p.Addr().BitLen() - p.Bits()
		for j := 0; j < k; j++ {
			a := p.Masked().Addr().AsSlice()
			// Place sample j at fraction (2j+1)/(2k) of the prefix: set
			// the top host bits from that fraction.
			frac := float64(2*j+1) / float64(2*k)
			for b := 0; b < hostBits && b < 24; b++ {
				frac *= 2
				if frac >= 1 {
					frac--
					bit := p.Bits() + b
					a[bit/8] |= 1 << (7 - bit%8)
				}
			}
			if hostBits > 0 {
				a[len(a)-1] |= 1 // not the network's own address
			}
			addr, _ := netip.AddrFromSlice(a)
			if !slices.Contains(out, addr) {
				out = append(out, addr)
			}
		}
	}
	return out
}

// InboundIface is the device a packet from src arrives on: the one the
// route back to src leaves by.
func (h *Host) InboundIface(src netip.Addr) string {
	if h == nil {
		return ""
	}
	if src.IsLoopback() {
		return "lo"
	}
	if r, ok := h.route(src); ok && r.Type != "local" {
		return r.Iface
	}
	return ""
}

// Address is the address a client of the given family reaches this
// machine at through device iface: its first global address there.
func (h *Host) Address(iface string, v4 bool) (netip.Addr, bool) {
	if h == nil {
		return netip.Addr{}, false
	}
	for _, i := range h.Interfaces {
		if i.Name != iface {
			continue
		}
		for _, a := range i.Addrs {
			if a.Addr().Is4() == v4 && !a.Addr().IsLinkLocalUnicast() {
				return a.Addr(), true
			}
		}
	}
	return netip.Addr{}, false
}

// lastOf is the last address of p.
func lastOf(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range a {
		for b := 7; b >= 0; b-- {
			if i*8+(7-b) >= bits {
				a[i] |= 1 << b
			}
		}
	}
	out, _ := netip.AddrFromSlice(a)
	if p.Addr().Is4In6() {
		return out
	}
	return out.Unmap()
}
