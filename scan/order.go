package scan

import (
	"math/bits"
	"strconv"
	"strings"
)

// orderRounds is the number of Feistel rounds. Four make a pseudo-random
// permutation in theory (Luby–Rackoff); more make small domains mix well.
const orderRounds = 8

// Order is a keyed pseudo-random permutation of the indexes [0, n): the
// order in which a scan visits its (target, port) pairs. Position i of the
// scan probes index At(i). It is computed, not stored: an Order is a few
// words whatever n is, and At costs a few dozen nanoseconds.
//
// The index of a pair is t*ports.Len() + p, for the t-th address of the
// Targets and the p-th pair of the Ports; n is Targets.Len()*Ports.Len().
// The permutation is over the whole product, so consecutive positions hit
// unrelated hosts and ports and no host sees its ports in sequence.
//
// The same (n, seed) gives the same permutation in every process and on
// every machine, which is what makes shards and resume files work; the
// algorithm is part of the resume format and must not change without a
// new Resume version. It is not a cryptographic permutation.
//
// An Order is a value; it is safe for concurrent use.
type Order struct {
	n      uint64
	lw, rw uint // bit widths of the Feistel halves; lw+rw bits hold n-1
	keys   [orderRounds]uint64
}

// NewOrder returns the permutation of [0, n) keyed by seed.
//
// It is a Feistel network over the smallest power of two 2^b >= n, with
// halves of ceil(b/2) and floor(b/2) bits (an unbalanced network when b is
// odd), round functions that mix the right half with a round key through
// the splitmix64 finalizer, and round keys drawn from seed by splitmix64.
// Values at or above n are walked along their cycle until one falls in
// [0, n) ("cycle walking"), which keeps it a permutation of [0, n); since
// 2^b < 2n, that takes fewer than two steps on average.
func NewOrder(n uint64, seed uint64) Order {
	o := Order{n: n}
	if n > 1 {
		b := uint(bits.Len64(n - 1))
		o.lw = (b + 1) / 2
		o.rw = b / 2
	}
	state := seed
	for i := range o.keys {
		state += 0x9e3779b97f4a7c15
		o.keys[i] = orderMix(state)
	}
	return o
}

// Len returns n, the size of the permuted range.
func (o Order) Len() uint64 { return o.n }

// At returns the index at position i of the permutation (0 <= i < Len).
// For i >= Len it returns i.
func (o Order) At(i uint64) uint64 {
	if i >= o.n {
		return i
	}
	x := o.permute(i)
	for x >= o.n {
		x = o.permute(x)
	}
	return x
}

// permute is the Feistel network on [0, 2^(lw+rw)).
func (o *Order) permute(x uint64) uint64 {
	lw, rw := o.lw, o.rw
	l, r := x>>rw, x&(1<<rw-1)
	for _, k := range o.keys {
		// (l, r) of widths (lw, rw) becomes (r, l ^ F(r)) of widths (rw, lw).
		l, r = r, (l^orderMix(r^k))&(1<<lw-1)
		lw, rw = rw, lw
	}
	return l<<rw | r
}

// orderMix is the splitmix64 finalizer: a bijection of uint64 in which
// every input bit affects every output bit.
func orderMix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Shard returns the positions [start, end) of the permutation that shard k
// of n (1 <= k <= n) visits: the n shards split [0, Len) into contiguous
// blocks whose sizes differ by at most one, so the shards are disjoint and
// together visit every index exactly once. Because the permutation
// scatters positions, each shard probes a random sample of hosts and ports,
// not a block of addresses. For k or n out of range it returns an empty
// range.
func (o Order) Shard(k, n uint64) (start, end uint64) {
	if n == 0 || k == 0 || k > n {
		return 0, 0
	}
	return orderMulDiv(o.n, k-1, n), orderMulDiv(o.n, k, n)
}

// orderMulDiv returns a*b/c for b <= c, without overflow.
func orderMulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	q, _ := bits.Div64(hi, lo, c) // hi < c because b <= c
	return q
}

// ParseShard parses "K/N", shard K of N with 1 <= K <= N, as given to
// --shard. Errors match registry.ErrSyntax and name the bad value.
func ParseShard(s string) (k, n uint64, err error) {
	ks, ns, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, 0, specErrorf("shard %q is not K/N (want K/N with 1 <= K <= N, such as 1/4)", s)
	}
	k, errK := orderParseCount(ks)
	n, errN := orderParseCount(ns)
	switch {
	case errK != nil || errN != nil:
		return 0, 0, specErrorf("shard %q is not K/N with whole numbers (want K/N with 1 <= K <= N, such as 1/4)", s)
	case n == 0:
		return 0, 0, specErrorf("shard %q has N = 0 (want K/N with 1 <= K <= N, such as 1/4)", s)
	case k == 0 || k > n:
		return 0, 0, specErrorf("shard %q has K outside 1 to %d (want K/N with 1 <= K <= N, such as 1/4)", s, n)
	}
	return k, n, nil
}

// orderParseCount parses a decimal number of plain digits.
func orderParseCount(s string) (uint64, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseUint(s, 10, 64)
}
