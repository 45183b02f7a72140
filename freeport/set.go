package freeport

import (
	"cmp"
	"math/rand/v2"
	"slices"

	"github.com/portctl/portctl/registry"
)

// portSet is a range of ports less some excluded ranges.
type portSet struct {
	within   registry.Range
	excluded []registry.Range // sorted, disjoint, inside within
}

// candidates returns the ports cfg allows Find to try.
func candidates(cfg Config) portSet {
	excl := []registry.Range{{First: 0, Last: 0}} // port 0 means "any port"
	excl = append(excl, cfg.Host.Reserved...)
	within := DefaultRange
	if cfg.Range != nil {
		within = *cfg.Range
	} else {
		excl = append(excl, cfg.Host.Ephemeral)
		if !cfg.Privileged && cfg.Host.UnprivilegedStart > 0 {
			excl = append(excl, registry.Range{First: 0, Last: uint16(min(cfg.Host.UnprivilegedStart-1, 65535))})
		}
	}
	return newPortSet(within, excl)
}

// newPortSet clips, sorts and merges excl inside within.
func newPortSet(within registry.Range, excl []registry.Range) portSet {
	var clipped []registry.Range
	for _, r := range excl {
		if r.Last < within.First || r.First > within.Last || r.First > r.Last {
			continue
		}
		clipped = append(clipped, registry.Range{First: max(r.First, within.First), Last: min(r.Last, within.Last)})
	}
	slices.SortFunc(clipped, func(a, b registry.Range) int { return cmp.Compare(a.First, b.First) })
	var merged []registry.Range
	for _, r := range clipped {
		if n := len(merged); n > 0 && int(r.First) <= int(merged[n-1].Last)+1 {
			merged[n-1].Last = max(merged[n-1].Last, r.Last)
			continue
		}
		merged = append(merged, r)
	}
	return portSet{within: within, excluded: merged}
}

// contains reports whether p is in the set.
func (s portSet) contains(p uint16) bool {
	if !s.within.Contains(p) {
		return false
	}
	for _, r := range s.excluded {
		if r.Contains(p) {
			return false
		}
	}
	return true
}

// count returns the number of ports in the set.
func (s portSet) count() int {
	n := s.within.Len()
	for _, r := range s.excluded {
		n -= r.Len()
	}
	return n
}

// excludedRanges returns the excluded ranges other than port 0 alone.
func (s portSet) excludedRanges() []registry.Range {
	var out []registry.Range
	for _, r := range s.excluded {
		if r != (registry.Range{}) {
			out = append(out, r)
		}
	}
	return out
}

// random returns an iterator over the set in random order: a Fisher-Yates
// shuffle done one draw at a time, so that finding one port costs one
// random number, not a shuffle of them all.
func (s portSet) random(r *rand.Rand) func() (uint16, bool) {
	ports := make([]uint16, 0, max(s.count(), 0))
	p := int(s.within.First)
	for _, x := range s.excluded {
		for ; p < int(x.First); p++ {
			ports = append(ports, uint16(p))
		}
		p = int(x.Last) + 1
	}
	for ; p <= int(s.within.Last); p++ {
		ports = append(ports, uint16(p))
	}
	intN := rand.IntN
	if r != nil {
		intN = r.IntN
	}
	i := 0
	return func() (uint16, bool) {
		if i >= len(ports) {
			return 0, false
		}
		j := i + intN(len(ports)-i)
		ports[i], ports[j] = ports[j], ports[i]
		i++
		return ports[i-1], true
	}
}

// near returns an iterator over the set from p outwards: p, p+1, p-1,
// p+2, p-2, ...
func (s portSet) near(p uint16) func() (uint16, bool) {
	d, up := 0, true // next: p+d when up, else p-d
	return func() (uint16, bool) {
		for {
			lo, hi := int(p)-d, int(p)+d
			if lo < int(s.within.First) && hi > int(s.within.Last) {
				return 0, false
			}
			var q int
			if up {
				q, up = hi, false
				if d == 0 {
					d, up = 1, true // p itself only once
				}
			} else {
				q, up, d = lo, true, d+1
			}
			if q >= 0 && q <= 65535 && s.contains(uint16(q)) {
				return uint16(q), true
			}
		}
	}
}
