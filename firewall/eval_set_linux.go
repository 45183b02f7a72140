package firewall

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables/expr"
)

// typeSizes are the byte sizes of the types nft concatenates in set keys.
var typeSizes = map[string]uint32{
	"ipv4_addr": 4, "ipv6_addr": 16, "inet_service": 2, "inet_proto": 1, "ether_addr": 6,
	"ether_type": 2, "mark": 4, "ifname": 16, "iface_index": 4, "nf_proto": 1, "ct_state": 4,
	"ct_dir": 1, "ct_status": 4, "dscp": 1, "ecn": 1, "icmp_type": 1, "icmpv6_type": 1,
	"pkt_type": 1, "iface_type": 2, "realm": 4, "classid": 4, "uid": 4, "gid": 4, "boolean": 1,
}

func (s *Set) index() *setIndex {
	s.once.Do(func() {
		s.idx = buildIndex(s)
		if s.Table != nil {
			s.Table.setsOnce.Do(func() { indexSets(s.Table) })
			s.idx.filled = s.Table.filled[s]
		}
	})
	return s.idx
}

func buildIndex(s *Set) *setIndex {
	ix := &setIndex{}
	fields := s.Fields
	if len(fields) == 0 && s.Concat {
		for _, name := range strings.Split(s.KeyType, " . ") {
			n, ok := typeSizes[name]
			if !ok {
				ix.broken = "a concatenated set key of type " + s.KeyType
				return ix
			}
			fields = append(fields, n)
		}
	}
	if len(fields) > 1 {
		off := 0
		for _, f := range fields {
			ix.fields = append(ix.fields, off)
			ix.lens = append(ix.lens, int(f))
			off += (int(f) + 3) &^ 3
		}
		if s.KeyLen != 0 && uint32(off) > s.KeyLen {
			ix.broken = "a concatenated set key longer than its fields"
			return ix
		}
		for i := range s.Elements {
			e := &s.Elements[i]
			if e.IntervalEnd {
				continue
			}
			hi := e.KeyEnd
			if hi == nil {
				hi = e.Key
			}
			if len(e.Key) < off || len(hi) < off {
				ix.broken = "a set element shorter than the set's key"
				return ix
			}
			ix.ranges = append(ix.ranges, keyRange{lo: e.Key, hi: hi, e: e})
		}
		return ix
	}
	els := make([]*Element, 0, len(s.Elements))
	for i := range s.Elements {
		els = append(els, &s.Elements[i])
	}
	slices.SortStableFunc(els, func(a, b *Element) int { return bytes.Compare(a.Key, b.Key) })
	for i, e := range els {
		if e.IntervalEnd {
			continue
		}
		hi := e.Key
		switch {
		case e.KeyEnd != nil:
			hi = e.KeyEnd
		case s.Interval:
			// The range runs to just before the next element, or to the
			// end of the key space.
			if i+1 < len(els) {
				hi = dec(els[i+1].Key)
			} else {
				hi = bytes.Repeat([]byte{0xff}, len(e.Key))
			}
		}
		ix.ranges = append(ix.ranges, keyRange{lo: e.Key, hi: hi, e: e})
	}
	return ix
}

// dec is b minus one, as a big-endian number.
func dec(b []byte) []byte {
	out := slices.Clone(b)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]--
		if out[i] != 0xff {
			break
		}
	}
	return out
}

func inc(b []byte) []byte {
	out := slices.Clone(b)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			break
		}
	}
	return out
}

func (w *walk) findSet(t *Table, id uint32, name string) *Set {
	t.setsOnce.Do(func() { indexSets(t) })
	if s := t.setNames[name]; name != "" && s != nil {
		return s
	}
	if id != 0 {
		return t.setIDs[id]
	}
	return nil
}

// indexSets makes t's sets findable by name and ID, and marks those that
// rules fill as packets pass (a dynset add or update, a meter): what they
// hold then depends on the traffic before.
func indexSets(t *Table) {
	t.setNames = make(map[string]*Set, len(t.Sets))
	t.setIDs = make(map[uint32]*Set, len(t.Sets))
	t.filled = map[*Set]bool{}
	for _, s := range t.Sets {
		if _, dup := t.setNames[s.Name]; !dup {
			t.setNames[s.Name] = s
		}
		if s.Dynamic {
			// flags dynamic: rules update it from the packet path, also
			// through expressions this package could not decode.
			t.filled[s] = true
		}
		if _, dup := t.setIDs[s.ID]; s.ID != 0 && !dup {
			t.setIDs[s.ID] = s
		}
	}
	for _, c := range t.Chains {
		for _, r := range c.Rules {
			for _, x := range r.Exprs {
				d, ok := x.(*expr.Dynset)
				if !ok || d.Operation == 2 {
					continue
				}
				if s := t.setNames[d.SetName]; d.SetName != "" && s != nil {
					t.filled[s] = true
				} else if s := t.setIDs[d.SetID]; s != nil {
					t.filled[s] = true
				}
			}
		}
	}
}

// lookup is a set membership test, or a map's lookup into a register.
func (w *walk) lookup(r *Rule, rg *regs, e *expr.Lookup) (ruleVerdict, bool) {
	s := w.findSet(r.Chain.Table, e.SetID, e.SetName)
	if s == nil {
		return unknownVerdict(r, "a lookup in set "+e.SetName+", which was not read")
	}
	ix := s.index()
	if ix.broken != "" {
		return w.matched(r, maybe, ix.broken)
	}
	klen := int(s.KeyLen)
	if klen == 0 && len(s.Elements) > 0 {
		klen = len(s.Elements[0].Key)
	}
	lo, _, ok := span(e.SourceRegister, uint32(klen))
	if !ok {
		return unknownVerdict(r, "a lookup from a bad register")
	}
	for i := lo; i < lo+klen; i++ {
		if rg.known[i] != 0xff {
			if e.IsDestRegSet {
				return unknownVerdict(r, "a map lookup in "+s.Name+" of a value the first packet does not fix")
			}
			return w.matched(r, maybe, "a lookup in set "+s.Name+" of a value the first packet does not fix")
		}
	}
	key := rg.data[lo : lo+klen]
	if ix.fields != nil {
		if last := len(ix.fields) - 1; ix.fields[last]+ix.lens[last] > klen {
			return w.matched(r, maybe, "a set key shorter than its fields")
		}
	}
	el := w.find(ix, rg, lo, key)
	found := el != nil
	if !found && ix.filled && (w.added == nil || w.added[s] == nil || !w.added[s].keys[string(key)]) {
		// Not there now; earlier packets of the same client may have put
		// it there by the time this one comes.
		if e.IsDestRegSet {
			return unknownVerdict(r, "a map lookup in "+s.Name+", which rules fill as packets pass")
		}
		return w.matched(r, maybe, "a lookup in set "+s.Name+", which rules fill as packets pass")
	}
	if !found && w.added != nil {
		switch added := w.added[s]; {
		case added == nil:
		case added.unknown:
			if e.IsDestRegSet {
				return unknownVerdict(r, "a map lookup in "+s.Name+" after this packet added a key the first packet does not fix")
			}
			return w.matched(r, maybe, "a lookup in set "+s.Name+" after this packet added a key the first packet does not fix")
		case added.keys[string(key)]:
			if e.IsDestRegSet {
				return unknownVerdict(r, "a map lookup in "+s.Name+" of a key this packet added")
			}
			found = true
			w.pin() // the key may hold the source address
		}
	}
	if e.Invert {
		found = !found
	}
	if !found {
		return ruleVerdict{kind: vNoMatch}, true
	}
	if !e.IsDestRegSet || el == nil {
		return ruleVerdict{}, false
	}
	if e.DestRegister == 0 {
		if el.Verdict == nil {
			return unknownVerdict(r, "a verdict map element without a verdict")
		}
		return ruleVerdictOf(expr.VerdictKind(el.Verdict.Kind), el.Verdict.Chain), true
	}
	if !rg.store(e.DestRegister, el.Val) {
		return unknownVerdict(r, "a map lookup into a bad register")
	}
	return ruleVerdict{}, false
}

// addrs are the set's elements as addresses, for a set of whole IPv4 or
// IPv6 addresses.
func (ix *setIndex) addrs() addrSet {
	ix.addrOnce.Do(func() {
		for _, r := range ix.ranges {
			a, ok1 := netip.AddrFromSlice(r.lo)
			b, ok2 := netip.AddrFromSlice(r.hi)
			if ok1 && ok2 {
				ix.addrSet = append(ix.addrSet, addrRange{a, b})
			}
		}
		ix.addrSet = ix.addrSet.normal()
	})
	return ix.addrSet
}

// addedKeys are the keys a packet added to a set on its way.
type addedKeys struct {
	keys    map[string]bool
	unknown bool // a key the first packet does not fix
}

// addToSet records a dynset's add or update.
func (w *walk) addToSet(r *Rule, rg *regs, e *expr.Dynset) {
	s := w.findSet(r.Chain.Table, e.SetID, e.SetName)
	if s == nil {
		return
	}
	if w.added == nil {
		w.added = map[*Set]*addedKeys{}
	}
	a := w.added[s]
	if a == nil {
		a = &addedKeys{keys: map[string]bool{}}
		w.added[s] = a
	}
	n := int(s.KeyLen)
	lo, _, ok := span(e.SrcRegKey, uint32(n))
	if !ok || n == 0 {
		a.unknown = true
		return
	}
	for i := lo; i < lo+n; i++ {
		if rg.known[i] != 0xff {
			a.unknown = true
			return
		}
	}
	a.keys[string(rg.data[lo:lo+n])] = true
}

// find returns the element holding key, and narrows the source range to
// the addresses for which the answer stays the same.
func (w *walk) find(ix *setIndex, rg *regs, lo int, key []byte) *Element {
	if ix.fields == nil {
		i, _ := slices.BinarySearchFunc(ix.ranges, key, func(kr keyRange, k []byte) int { return bytes.Compare(kr.hi, k) })
		// ranges[i] is the first range whose end is not below key.
		var el *Element
		if run, ok := w.srcRun(rg, lo, len(key)); ok && run.full {
			// The answer is the same for every source address in the set,
			// and for every one out of it: say which, rather than narrow
			// to the gap between two elements.
			in := i < len(ix.ranges) && bytes.Compare(ix.ranges[i].lo, key) <= 0
			w.conds = append(w.conds, memberCond{set: ix.addrs(), in: in})
		} else if ok {
			w.narrowMasked(run)
		}
		if i < len(ix.ranges) && bytes.Compare(ix.ranges[i].lo, key) <= 0 {
			el = ix.ranges[i].e
		}
		return el
	}
	// A concatenation: every field must fall in the element's bounds.
	run, hasSrc := w.srcRun(rg, lo, len(key))
	var el *Element
	var candidates [][2][]byte
	for _, kr := range ix.ranges {
		match, othersMatch := true, true
		var srcLo, srcHi []byte
		for f, off := range ix.fields {
			n := ix.lens[f]
			k, a, b := key[off:off+n], kr.lo[off:off+n], kr.hi[off:off+n]
			in := bytes.Compare(a, k) <= 0 && bytes.Compare(k, b) <= 0
			if hasSrc && run.full && lo+off == run.start {
				srcLo, srcHi = a, b
			} else if !in {
				othersMatch = false
			}
			if !in {
				match = false
			}
		}
		if match && el == nil {
			el = kr.e
		}
		if othersMatch && srcLo != nil {
			candidates = append(candidates, [2][]byte{srcLo, srcHi})
		}
	}
	if hasSrc {
		if !run.full {
			w.narrowMasked(run)
		} else {
			w.narrowAround(run, candidates)
		}
	}
	return el
}

// srcRun finds the source address in register bytes [lo, lo+n).
type srcRunInfo struct {
	start int // register offset of the address's first byte
	full  bool
	bits  int // prefix length a mask left, when not full
	ok    bool
}

func (w *walk) srcRun(rg *regs, lo, n int) (srcRunInfo, bool) {
	alen := 4
	if w.v6 {
		alen = 16
	}
	first := -1
	for i := lo; i < lo+n && i < 64; i++ {
		if rg.src[i] != 0 {
			first = i
			break
		}
	}
	if first < 0 {
		return srcRunInfo{}, false
	}
	run := srcRunInfo{start: first}
	// nft loads only the bytes a prefix needs: ip saddr 10.0.0.0/8 is a
	// one-byte load. A run of the address's first k bytes, in order, under
	// a prefix mask, is a prefix of the address.
	if rg.src[first] != 1 {
		w.pin()
		return run, false
	}
	k := 0
	for first+k < lo+n && first+k < 64 && k < alen && rg.src[first+k] == byte(k+1) {
		k++
	}
	bits, prefix := 0, true
	for j := 0; j < k; j++ {
		m := rg.srcMask[first+j]
		for b := 7; b >= 0; b-- {
			if m&(1<<b) != 0 {
				if !prefix {
					w.pin()
					return run, false
				}
				bits++
			} else {
				prefix = false
			}
		}
	}
	for i := first + k; i < lo+n && i < 64; i++ {
		if rg.src[i] != 0 {
			w.pin()
			return run, false
		}
	}
	run.ok = true
	run.full = bits == alen*8
	run.bits = bits
	return run, true
}

// narrowMasked narrows the source range to the packet's block under the
// mask: every address in it compares alike.
func (w *walk) narrowMasked(run srcRunInfo) {
	if !run.ok {
		return
	}
	p, _ := w.p.Src.Prefix(run.bits)
	w.narrowTo(p.Masked().Addr(), lastOf(p))
}

func (w *walk) narrowTo(lo, hi netip.Addr) {
	if lo.Compare(w.lo) > 0 {
		w.lo = lo
	}
	if hi.Compare(w.hi) < 0 {
		w.hi = hi
	}
}

func addrOf(b []byte) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(b)
	return a, ok
}

// narrowAround narrows around the source address given the address ranges
// that decide: inside one, to it; between them, to the gap.
func (w *walk) narrowAround(run srcRunInfo, ranges [][2][]byte) {
	rep := w.p.Src.AsSlice()
	for _, r := range ranges {
		switch {
		case bytes.Compare(r[1], rep) < 0:
			if a, ok := addrOf(inc(r[1])); ok && !bytes.Equal(r[1], bytes.Repeat([]byte{0xff}, len(rep))) {
				w.narrowTo(a, w.hi)
			}
		case bytes.Compare(r[0], rep) > 0:
			if b, ok := addrOf(dec(r[0])); ok {
				w.narrowTo(w.lo, b)
			}
		default:
			a, _ := addrOf(r[0])
			b, _ := addrOf(r[1])
			w.narrowTo(a, b)
		}
	}
}

// narrowByRoutes narrows the source range to the addresses the routing
// table answers alike for: the same longest-prefix route, and none of this
// machine's own addresses unless the source is one.
func (w *walk) narrowByRoutes() {
	src := w.p.Src
	n := len(src.AsSlice())
	var ranges [][2][]byte
	for _, r := range w.h.Routes {
		if r.Dst.Addr().Is4() != src.Is4() {
			continue
		}
		ranges = append(ranges, [2][]byte{r.Dst.Masked().Addr().AsSlice(), lastOf(r.Dst).AsSlice()})
	}
	for _, i := range w.h.Interfaces {
		for _, a := range i.Addrs {
			if a.Addr().Is4() == src.Is4() {
				b := a.Addr().AsSlice()
				ranges = append(ranges, [2][]byte{b, b})
			}
		}
	}
	for _, special := range []string{"127.0.0.0/8", "224.0.0.0/4", "255.255.255.255/32", "::1/128", "ff00::/8"} {
		p := netip.MustParsePrefix(special)
		if p.Addr().Is4() == src.Is4() {
			ranges = append(ranges, [2][]byte{p.Addr().AsSlice(), lastOf(p).AsSlice()})
		}
	}
	if len(ranges) > 0 && len(ranges[0][0]) == n {
		w.narrowAround(srcRunInfo{ok: true, full: true, bits: n * 8}, ranges)
	}
}

// narrowPoint narrows for a comparison of register bytes with c.
func (w *walk) narrowPoint(rg *regs, lo int, c []byte) {
	w.narrowRange(rg, lo, c, c)
}

// narrowRange narrows for a comparison of register bytes with the range
// [from, to]: around the range of source addresses it stands for.
func (w *walk) narrowRange(rg *regs, lo int, from, to []byte) {
	run, ok := w.srcRun(rg, lo, len(from))
	if !ok {
		return
	}
	off := run.start - lo
	n := len(w.p.Src.AsSlice())
	k := min(n, len(from)-off)
	a := widen(from[off:off+k], run.bits, n, 0)
	b := widen(to[off:off+k], run.bits, n, 0xff)
	w.narrowAround(run, [][2][]byte{{a, b}})
}

// widen makes a whole address of the first bytes of one: the bits past
// the prefix set to fill's.
func widen(b []byte, bits, n int, fill byte) []byte {
	out := make([]byte, n)
	copy(out, b)
	for i := 0; i < n; i++ {
		for j := 7; j >= 0; j-- {
			if i*8+(7-j) >= bits {
				out[i] = out[i]&^(1<<j) | fill&(1<<j)
			}
		}
	}
	return out
}
