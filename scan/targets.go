package scan

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/bits"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/portctl/portctl/registry"
)

// maxTargets is the most addresses one scan takes: 2^32, an IPv4 /0 or an
// IPv6 /96. With at most 2 × 65,535 (protocol, port) pairs the index space
// then stays below 2^49, and nobody finishes probing more addresses anyway.
const maxTargets = 1 << 32

// resolveWorkers bounds the host names resolved at the same time.
const resolveWorkers = 16

// TargetOptions configures ParseTargets.
type TargetOptions struct {
	// Resolver turns host names into addresses; *net.Resolver satisfies it.
	// When it is nil, host names are refused: the caller has turned name
	// resolution off.
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
	// Family restricts the targets to IPv4 (4) or IPv6 (6); 0 keeps both.
	// Host names resolve to the addresses of that family only, and an
	// address, CIDR or range wholly of the other family is an error.
	Family int
}

// Targets is a set of addresses to scan, kept as sorted, disjoint ranges so
// that a /8 or an IPv6 /96 costs a few bytes, not one entry per address.
// IPv4 addresses come first in numeric order, then IPv6 addresses; an
// IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address a.b.c.d.
//
// A Targets is read-only once ParseTargets returns it and is safe for
// concurrent use.
type Targets struct {
	spans []tgtSpan // sorted by first key, disjoint and not adjacent
	// before[i] is how many addresses the spans before spans[i] hold.
	before []uint64
	n      uint64
	names  map[netip.Addr]string
}

// Len returns the number of addresses in the set, at most 2^32.
func (t *Targets) Len() uint64 { return t.n }

// At returns the i-th address of the set (0 <= i < Len), IPv4 addresses
// first, each family in numeric order. It takes O(log ranges) time and does
// not allocate. For i >= Len it returns the zero (invalid) Addr.
func (t *Targets) At(i uint64) netip.Addr {
	if i >= t.n {
		return netip.Addr{}
	}
	// Find the last span that starts at or before i.
	lo, hi := 0, len(t.spans)
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if t.before[m] <= i {
			lo = m
		} else {
			hi = m
		}
	}
	return t.spans[lo].first.add(i - t.before[lo]).addr()
}

// Name returns the host name addr came from, or "" when it was given as an
// address, CIDR or range. When several names resolve to one address, the
// first one given wins.
func (t *Targets) Name(addr netip.Addr) string {
	if len(t.names) == 0 {
		return ""
	}
	return t.names[tgtKeyOf(addr).addr()]
}

// ParseTargets parses target specs and exclusions into a set of addresses.
//
// Each spec is an IPv4 or IPv6 address, a CIDR (10.0.0.0/8,
// 2001:db8::/120; an address with bits set beyond its prefix, such as
// 10.0.0.0/0 or 10.0.0.5/24, is refused, naming the network it would be
// and the one probably meant), an
// IPv4 range (10.0.0.1-20 for the last octet, or 10.0.0.1-10.0.1.5), an IPv6
// range of two full addresses, or a host name, which stands for every
// address it resolves to (of opts.Family). A spec may hold several of these
// separated by commas or white space. Excludes have the same syntax and are
// removed from the set.
//
// Malformed specs, unknown host names and sets of more than 2^32 addresses
// are refused with an error that matches registry.ErrSyntax and names the
// bad value. An empty result (everything excluded) is not an error. Host
// names are resolved through opts.Resolver, several at a time; nothing
// else does I/O.
func ParseTargets(ctx context.Context, specs []string, excludes []string, opts TargetOptions) (*Targets, error) {
	if opts.Family != 0 && opts.Family != 4 && opts.Family != 6 {
		return nil, fmt.Errorf("scan: address family %d (want 0, 4 or 6)", opts.Family)
	}
	inc, err := tgtParseAll(specs, "target")
	if err != nil {
		return nil, err
	}
	if len(inc) == 0 {
		return nil, specErrorf("no targets given (want addresses, CIDRs, ranges or host names)")
	}
	exc, err := tgtParseAll(excludes, "exclusion")
	if err != nil {
		return nil, err
	}
	if err := tgtResolve(ctx, inc, exc, opts); err != nil {
		return nil, err
	}

	// The keys of the family asked for.
	famLo, famHi := tgtKey{}, tgtKeyMax
	switch opts.Family {
	case 4:
		famHi = tgtKey{0, 1<<32 - 1}
	case 6:
		famLo = tgtKey{0, 1 << 32}
	}

	t := &Targets{}
	var include, exclude []tgtSpan
	for i := range inc {
		p := &inc[i]
		kept := 0
		for _, s := range p.spans {
			if s, ok := s.clip(famLo, famHi); ok {
				include = append(include, s)
				kept++
			}
		}
		switch {
		case p.host == "" && kept == 0:
			return nil, specErrorf("target %q is IPv%d, but only IPv%d was asked for", p.spec, 10-opts.Family, opts.Family)
		case p.host != "" && kept == 0:
			return nil, specErrorf("host %q has no IPv%d address", p.host, opts.Family)
		}
		for _, a := range p.addrs {
			k := tgtKeyOf(a)
			if k.less(famLo) || famHi.less(k) {
				continue
			}
			if t.names == nil {
				t.names = make(map[netip.Addr]string)
			}
			if _, dup := t.names[k.addr()]; !dup {
				t.names[k.addr()] = p.host
			}
		}
	}
	for _, p := range exc {
		exclude = append(exclude, p.spans...)
	}

	t.spans = tgtSubtract(tgtNormalize(include), tgtNormalize(exclude))
	t.before = make([]uint64, len(t.spans))
	for i, s := range t.spans {
		t.before[i] = t.n
		d := s.last.sub(s.first)
		if d.hi != 0 || d.lo >= maxTargets || t.n+d.lo+1 > maxTargets {
			return nil, tgtTooMany(inc)
		}
		t.n += d.lo + 1
	}
	return t, nil
}

// tgtTooMany explains a set larger than maxTargets, naming its largest spec.
func tgtTooMany(inc []tgtParsed) error {
	var bigSpec string
	bigSize := new(big.Int)
	for _, p := range inc {
		size := new(big.Int)
		for _, s := range p.spans {
			d := s.last.sub(s.first)
			n := new(big.Int).Lsh(new(big.Int).SetUint64(d.hi), 64)
			n.Add(n, new(big.Int).SetUint64(d.lo))
			size.Add(size, n.Add(n, big.NewInt(1)))
		}
		if size.Cmp(bigSize) > 0 {
			bigSpec, bigSize = p.spec, size
		}
	}
	if bigSize.Cmp(big.NewInt(maxTargets)) > 0 {
		return specErrorf("target %q has %s addresses; a scan takes at most 2^32 (an IPv4 /0 or an IPv6 /96)", bigSpec, tgtCount(bigSize))
	}
	return specErrorf("the targets hold more than 2^32 addresses together; a scan takes at most 2^32 (an IPv4 /0 or an IPv6 /96)")
}

// tgtCount formats n, as 2^k when it is a power of two.
func tgtCount(n *big.Int) string {
	if k := n.BitLen() - 1; k > 0 && n.TrailingZeroBits() == uint(k) {
		return "2^" + strconv.Itoa(k)
	}
	return n.String()
}

// tgtParsed is one target or exclusion spec, parsed.
type tgtParsed struct {
	what  string // "target" or "exclusion"
	spec  string
	spans []tgtSpan
	host  string       // the host name, when the spec is one
	addrs []netip.Addr // what host resolved to
}

// tgtParseAll splits specs at commas and white space and parses each.
func tgtParseAll(specs []string, what string) ([]tgtParsed, error) {
	var out []tgtParsed
	for _, arg := range specs {
		for _, s := range strings.FieldsFunc(arg, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
			p, err := tgtParseOne(s, what)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// tgtParseOne parses one spec without resolving host names.
func tgtParseOne(s, what string) (tgtParsed, error) {
	p := tgtParsed{what: what, spec: s}
	if strings.ContainsRune(s, '%') {
		return p, specErrorf("%s %q has an IPv6 zone; scoped addresses are not supported", what, s)
	}
	// A CIDR.
	if a, l, ok := strings.Cut(s, "/"); ok {
		addr, err := netip.ParseAddr(a)
		if err != nil {
			return p, specErrorf("%s %q: %q is not an IP address (want a CIDR such as 10.0.0.0/8 or 2001:db8::/32)", what, s, a)
		}
		maxBits := addr.BitLen()
		n, err := strconv.ParseUint(l, 10, 8)
		if err != nil || int(n) > maxBits {
			return p, specErrorf("%s %q: prefix length %q is out of range (want /0 to /%d for IPv%d)", what, s, l, maxBits, tgtFamily(addr))
		}
		pfx, err := addr.Prefix(int(n))
		if err != nil {
			return p, specErrorf("%s %q is not a valid CIDR: %v", what, s, err)
		}
		if pfx.Addr() != addr {
			return p, tgtHostBits(what, s, addr, pfx)
		}
		first := pfx.Addr()
		var last tgtKey
		if first.Is4() {
			last = tgtKey{0, uint64(1)<<(32-n) - 1}
		} else {
			last = tgtKeyMax.shr(uint(n))
		}
		p.spans = tgtAddrSpans(first, tgtRawOf(first).or(last))
		return p, nil
	}
	// A range: the part before the first "-" is an address.
	if a, b, ok := strings.Cut(s, "-"); ok {
		if first, err := netip.ParseAddr(a); err == nil {
			last, err := tgtRangeEnd(first, b)
			if err != nil {
				return p, specErrorf("%s %q: %v", what, s, err)
			}
			if tgtRawOf(last).less(tgtRawOf(first)) {
				return p, specErrorf("%s %q runs backwards (want A-B with A <= B)", what, s)
			}
			p.spans = tgtAddrSpans(first, tgtRawOf(last))
			return p, nil
		}
	}
	if addr, err := netip.ParseAddr(s); err == nil {
		p.spans = tgtAddrSpans(addr, tgtRawOf(addr))
		return p, nil
	}
	if strings.ContainsRune(s, ':') {
		return p, specErrorf("%s %q is not a valid IPv6 address", what, s)
	}
	if tgtNumeric(s) {
		return p, specErrorf("%s %q is not a valid IPv4 address (want a.b.c.d with each part 0-255)", what, s)
	}
	if !tgtHostName(s) {
		return p, specErrorf("%s %q is not an address, CIDR, range or host name", what, s)
	}
	p.host = s
	return p, nil
}

// tgtHostBits explains a CIDR whose address has bits set beyond its prefix
// (10.0.0.0/0, 192.168.1.0/16): the network it would be, which is wider
// than the address suggests, and the one probably meant, the shortest
// prefix in whole octets (IPv4) or hex digits (IPv6) that keeps every bit
// the address sets (10.0.0.0/8, 192.168.1.0/24).
func tgtHostBits(what, spec string, addr netip.Addr, pfx netip.Prefix) error {
	var size string
	switch n := addr.BitLen() - pfx.Bits(); {
	case pfx.Bits() == 0:
		size = "every IPv" + strconv.Itoa(tgtFamily(addr)) + " address"
	case n <= 16:
		size = strconv.Itoa(1<<n) + " addresses"
	default:
		size = "2^" + strconv.Itoa(n) + " addresses"
	}
	// The zero bits at the end, in whole octets of a dotted address and
	// whole hex digits of an IPv6 one: 10.0.0.0 means a /8, not a /7.
	raw := tgtRawOf(addr)
	zeros := bits.TrailingZeros64(raw.lo)
	if raw.lo == 0 {
		zeros = 64 + bits.TrailingZeros64(raw.hi)
	}
	if addr.Unmap().Is4() {
		zeros -= zeros % 8
	} else {
		zeros -= zeros % 4
	}
	meant := netip.PrefixFrom(addr, addr.BitLen()-zeros)
	return specErrorf("%s %q has bits set beyond its /%d prefix: it would be %s (%s); did you mean %s?", what, spec, pfx.Bits(), pfx, size, meant)
}

// tgtRangeEnd parses the end of a range that starts at first: a full
// address of the same family, or for IPv4 a last octet.
func tgtRangeEnd(first netip.Addr, b string) (netip.Addr, error) {
	if first.Is4() && b != "" && len(b) <= 3 && strings.Trim(b, "0123456789") == "" {
		n, _ := strconv.Atoi(b)
		if n > 255 {
			return netip.Addr{}, fmt.Errorf("last octet %s is out of range (want 0-255)", b)
		}
		a4 := first.As4()
		a4[3] = byte(n)
		return netip.AddrFrom4(a4), nil
	}
	last, err := netip.ParseAddr(b)
	if err != nil || last.Is4() != first.Is4() {
		if first.Is4() {
			return netip.Addr{}, fmt.Errorf("range end %q is not a last octet 0-255 or an IPv4 address", b)
		}
		return netip.Addr{}, fmt.Errorf("range end %q is not an IPv6 address", b)
	}
	return last, nil
}

// tgtFamily returns 4 or 6.
func tgtFamily(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// tgtNumeric reports whether s looks like an attempt at a dotted IPv4
// address: its last label is all digits, which no top-level domain is.
func tgtNumeric(s string) bool {
	s = strings.TrimSuffix(s, ".")
	last := s[strings.LastIndexByte(s, '.')+1:]
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// tgtHostName reports whether s is a syntactically valid host name: labels
// of letters, digits, "-" and "_" of 1 to 63 bytes, 253 bytes in all, with
// an optional final dot.
func tgtHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// tgtResolve resolves the host names among inc and exc, resolveWorkers at
// a time. The first failure in spec order is reported.
func tgtResolve(ctx context.Context, inc, exc []tgtParsed, opts TargetOptions) error {
	type job struct {
		p       *tgtParsed
		network string
		err     error
	}
	var jobs []*job
	for i := range inc {
		if inc[i].host != "" {
			network := map[int]string{0: "ip", 4: "ip4", 6: "ip6"}[opts.Family]
			jobs = append(jobs, &job{p: &inc[i], network: network})
		}
	}
	for i := range exc {
		if exc[i].host != "" {
			jobs = append(jobs, &job{p: &exc[i], network: "ip"})
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	if opts.Resolver == nil {
		return specErrorf("%s %q is a host name, but name resolution is off", jobs[0].p.what, jobs[0].p.host)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, resolveWorkers)
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := ctx.Err(); err != nil {
				j.err = err
				return
			}
			addrs, err := opts.Resolver.LookupNetIP(ctx, j.network, j.p.host)
			if err != nil {
				j.err = err
				return
			}
			for _, a := range addrs {
				a = a.Unmap().WithZone("")
				if !a.IsValid() || j.network == "ip4" && !a.Is4() || j.network == "ip6" && !a.Is6() {
					continue
				}
				j.p.addrs = append(j.p.addrs, a)
				j.p.spans = append(j.p.spans, tgtAddrSpans(a, tgtRawOf(a))...)
			}
		}()
	}
	wg.Wait()
	for _, j := range jobs {
		switch {
		case j.err != nil && ctx.Err() != nil:
			return fmt.Errorf("scan: resolve %s: %w", j.p.host, ctx.Err())
		case j.err != nil:
			msg := j.err.Error()
			if dnsErr, ok := errors.AsType[*net.DNSError](j.err); ok {
				msg = dnsErr.Err
			}
			return specErrorf("cannot resolve host %q: %s", j.p.host, strings.Join(strings.Fields(msg), " "))
		case len(j.p.addrs) == 0 && opts.Family != 0 && j.network != "ip":
			return specErrorf("host %q has no IPv%d address", j.p.host, opts.Family)
		case len(j.p.addrs) == 0:
			return specErrorf("host %q has no address", j.p.host)
		}
	}
	return nil
}

// ReadTargetFile reads target specs from r, as for -iL: specs separated by
// white space or line breaks, with "#" starting a comment that runs to the
// end of the line. It does not parse the specs; ParseTargets does.
func ReadTargetFile(r io.Reader) ([]string, error) {
	var specs []string
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		specs = append(specs, strings.Fields(line)...)
		if err == io.EOF {
			return specs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("scan: read targets: %w", err)
		}
	}
}

// tgtSpan is an inclusive range of keys.
type tgtSpan struct{ first, last tgtKey }

// clip returns the part of s inside [lo, hi].
func (s tgtSpan) clip(lo, hi tgtKey) (tgtSpan, bool) {
	if s.first.less(lo) {
		s.first = lo
	}
	if hi.less(s.last) {
		s.last = hi
	}
	return s, !s.last.less(s.first)
}

// tgtNormalize sorts spans and merges those that overlap or touch.
func tgtNormalize(spans []tgtSpan) []tgtSpan {
	slices.SortFunc(spans, func(a, b tgtSpan) int { return a.first.cmp(b.first) })
	var out []tgtSpan
	for _, s := range spans {
		if n := len(out); n > 0 && (out[n-1].last == tgtKeyMax || !out[n-1].last.add(1).less(s.first)) {
			if out[n-1].last.less(s.last) {
				out[n-1].last = s.last
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// tgtSubtract returns inc without exc; both are normalized.
func tgtSubtract(inc, exc []tgtSpan) []tgtSpan {
	var out []tgtSpan
	j := 0
	for _, s := range inc {
		for j < len(exc) && exc[j].last.less(s.first) {
			j++
		}
		for k := j; k < len(exc) && !s.last.less(exc[k].first); k++ {
			e := exc[k]
			if s.first.less(e.first) {
				out = append(out, tgtSpan{s.first, e.first.sub(tgtKey{0, 1})})
			}
			if !e.last.less(s.last) {
				s.first, s.last = tgtKeyMax, tgtKey{} // nothing left
				break
			}
			s.first = e.last.add(1)
		}
		if !s.last.less(s.first) {
			out = append(out, s)
		}
	}
	return out
}

// tgtKey is a 128-bit number. As an address key it orders IPv4 addresses
// before IPv6 ones while keeping ranges of either contiguous: the IPv6
// address space is cut at ::ffff:0:0 (mapped IPv4, M) and at 2^48 (the end
// of the mapped block), and the pieces are moved so that
//
//	key [0, 2^32)      = ::ffff:0.0.0.0 to ::ffff:255.255.255.255, the IPv4 addresses
//	key [2^32, 2^48)   = :: to ::fffe:ffff:ffff
//	key [2^48, 2^128)  = the rest of IPv6, unchanged
//
// The "raw" form of an address is its plain 128-bit IPv6 (or mapped) value.
type tgtKey struct{ hi, lo uint64 }

const (
	tgtMapped  = 0xffff << 32 // ::ffff:0.0.0.0 as a raw value
	tgtMapEnd  = 1 << 48      // the raw value after ::ffff:255.255.255.255
	tgtV4Block = 1 << 32
)

var tgtKeyMax = tgtKey{^uint64(0), ^uint64(0)}

func (k tgtKey) less(o tgtKey) bool { return k.hi < o.hi || k.hi == o.hi && k.lo < o.lo }

func (k tgtKey) cmp(o tgtKey) int {
	switch {
	case k.less(o):
		return -1
	case o.less(k):
		return 1
	}
	return 0
}

func (k tgtKey) add(n uint64) tgtKey {
	lo, c := bits.Add64(k.lo, n, 0)
	return tgtKey{k.hi + c, lo}
}

func (k tgtKey) sub(o tgtKey) tgtKey {
	lo, b := bits.Sub64(k.lo, o.lo, 0)
	return tgtKey{k.hi - o.hi - b, lo}
}

func (k tgtKey) or(o tgtKey) tgtKey { return tgtKey{k.hi | o.hi, k.lo | o.lo} }

// shr shifts right by n < 128 bits.
func (k tgtKey) shr(n uint) tgtKey {
	switch {
	case n == 0:
		return k
	case n >= 64:
		return tgtKey{0, k.hi >> (n - 64)}
	}
	return tgtKey{k.hi >> n, k.lo>>n | k.hi<<(64-n)}
}

// tgtRawOf returns a's raw 128-bit value; IPv4 addresses are mapped.
func tgtRawOf(a netip.Addr) tgtKey {
	b := a.As16()
	var k tgtKey
	for i := range 8 {
		k.hi = k.hi<<8 | uint64(b[i])
		k.lo = k.lo<<8 | uint64(b[8+i])
	}
	return k
}

// tgtKeyOf returns the key of address a.
func tgtKeyOf(a netip.Addr) tgtKey {
	return tgtRawToKey(tgtRawOf(a.WithZone("")))
}

func tgtRawToKey(r tgtKey) tgtKey {
	switch {
	case r.hi != 0 || r.lo >= tgtMapEnd:
		return r
	case r.lo >= tgtMapped:
		return tgtKey{0, r.lo - tgtMapped}
	}
	return tgtKey{0, r.lo + tgtV4Block}
}

// addr returns the address with key k.
func (k tgtKey) addr() netip.Addr {
	switch {
	case k.hi == 0 && k.lo < tgtV4Block:
		return netip.AddrFrom4([4]byte{byte(k.lo >> 24), byte(k.lo >> 16), byte(k.lo >> 8), byte(k.lo)})
	case k.hi == 0 && k.lo < tgtMapEnd:
		k.lo -= tgtV4Block
	}
	var b [16]byte
	for i := range 8 {
		b[7-i] = byte(k.hi >> (8 * i))
		b[15-i] = byte(k.lo >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

// tgtAddrSpans returns the keys of the raw addresses from first to last,
// which may cross the cuts of the key space, as up to three spans.
func tgtAddrSpans(first netip.Addr, last tgtKey) []tgtSpan {
	lo := tgtRawOf(first)
	var out []tgtSpan
	for _, piece := range [...]tgtSpan{
		{tgtKey{}, tgtKey{0, tgtMapped - 1}},
		{tgtKey{0, tgtMapped}, tgtKey{0, tgtMapEnd - 1}},
		{tgtKey{0, tgtMapEnd}, tgtKeyMax},
	} {
		if s, ok := (tgtSpan{lo, last}).clip(piece.first, piece.last); ok {
			out = append(out, tgtSpan{tgtRawToKey(s.first), tgtRawToKey(s.last)})
		}
	}
	return out
}

// specErrorf returns a *registry.SyntaxError, which matches
// registry.ErrSyntax.
func specErrorf(format string, args ...any) error {
	return &registry.SyntaxError{Msg: fmt.Sprintf(format, args...)}
}
