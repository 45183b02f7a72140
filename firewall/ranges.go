package firewall

import (
	"net/netip"
	"slices"
)

// addrRange is the addresses from lo to hi, both included.
type addrRange struct{ lo, hi netip.Addr }

// addrSet is a set of addresses of one family: sorted ranges that neither
// overlap nor touch.
type addrSet []addrRange

func setOfPrefixes(ps []netip.Prefix) addrSet {
	var s addrSet
	for _, p := range ps {
		s = append(s, addrRange{p.Masked().Addr(), lastOf(p)})
	}
	return s.normal()
}

// normal sorts s and joins what overlaps or touches.
func (s addrSet) normal() addrSet {
	slices.SortFunc(s, func(a, b addrRange) int { return a.lo.Compare(b.lo) })
	var out addrSet
	for _, r := range s {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if next := last.hi.Next(); !next.IsValid() || r.lo.Compare(next) <= 0 {
				if r.hi.Compare(last.hi) > 0 {
					last.hi = r.hi
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// intersect is the addresses in both.
func (s addrSet) intersect(t addrSet) addrSet {
	var out addrSet
	i, j := 0, 0
	for i < len(s) && j < len(t) {
		lo, hi := s[i].lo, s[i].hi
		if t[j].lo.Compare(lo) > 0 {
			lo = t[j].lo
		}
		if t[j].hi.Compare(hi) < 0 {
			hi = t[j].hi
		}
		if lo.Compare(hi) <= 0 {
			out = append(out, addrRange{lo, hi})
		}
		if s[i].hi.Compare(t[j].hi) < 0 {
			i++
		} else {
			j++
		}
	}
	return out
}

// minus is the addresses of s not in t.
func (s addrSet) minus(t addrSet) addrSet {
	var out addrSet
	j := 0
	for _, r := range s {
		lo := r.lo
		for j < len(t) && t[j].hi.Compare(lo) < 0 {
			j++
		}
		k := j
		done := false
		for k < len(t) && t[k].lo.Compare(r.hi) <= 0 {
			if t[k].lo.Compare(lo) > 0 {
				out = append(out, addrRange{lo, t[k].lo.Prev()})
			}
			if t[k].hi.Compare(r.hi) >= 0 {
				done = true
				break
			}
			lo = t[k].hi.Next()
			k++
		}
		if !done && lo.IsValid() && lo.Compare(r.hi) <= 0 {
			out = append(out, addrRange{lo, r.hi})
		}
	}
	return out
}

// prefixes covers s with prefixes.
func (s addrSet) prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, r := range s {
		out = append(out, rangePrefixes(r.lo, r.hi)...)
	}
	return out
}

// scope is the source addresses an evaluation holds for, around the
// packet's own: the range [lo, hi], and within it those in (or out of)
// the sets the walk looked the source address up in.
type scope struct {
	lo, hi netip.Addr
	conds  []memberCond
}

// memberCond is a source address's membership of a set, as one walk met it.
type memberCond struct {
	set addrSet
	in  bool
}

// covers is the addresses of the scope within [lo, hi].
func (s scope) covers(lo, hi netip.Addr) addrSet {
	if s.lo.Compare(lo) > 0 {
		lo = s.lo
	}
	if s.hi.Compare(hi) < 0 {
		hi = s.hi
	}
	if lo.Compare(hi) > 0 {
		return nil
	}
	out := addrSet{{lo, hi}}
	for _, c := range s.conds {
		set := c.set.window(lo, hi)
		if c.in {
			out = out.intersect(set)
		} else {
			out = out.minus(set)
		}
	}
	return out
}

// window is the part of s's ranges that overlap [lo, hi], found by binary
// search: a set of 100,000 ranges costs little when the window is small.
func (s addrSet) window(lo, hi netip.Addr) addrSet {
	i, _ := slices.BinarySearchFunc(s, lo, func(r addrRange, a netip.Addr) int { return r.hi.Compare(a) })
	j, _ := slices.BinarySearchFunc(s, hi, func(r addrRange, a netip.Addr) int { return r.lo.Compare(a) })
	if j < len(s) && s[j].lo == hi {
		j++
	}
	if i > j {
		return nil
	}
	return s[i:j]
}
