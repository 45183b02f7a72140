package scan

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/portctl/portctl/registry"
)

// bitset marks indexes seen, failing on a repeat or one out of range.
type bitset []uint64

func newBitset(n uint64) bitset { return make(bitset, (n+63)/64) }

func (b bitset) mark(t *testing.T, n, x uint64, what string) {
	t.Helper()
	if x >= n {
		t.Fatalf("%s: index %d is out of [0, %d)", what, x, n)
	}
	if b[x/64]&(1<<(x%64)) != 0 {
		t.Fatalf("%s: index %d visited twice", what, x)
	}
	b[x/64] |= 1 << (x % 64)
}

func (b bitset) count() (c int) {
	for _, w := range b {
		for ; w != 0; w &= w - 1 {
			c++
		}
	}
	return c
}

var orderSizes = []uint64{0, 1, 2, 3, 5, 1000, 1024, 1025, 65535, 65535 * 3}

func TestOrderIsPermutation(t *testing.T) {
	for _, n := range orderSizes {
		for _, seed := range []uint64{0, 1, 0xdeadbeefcafe} {
			o := NewOrder(n, seed)
			seen := newBitset(n)
			for i := range n {
				seen.mark(t, n, o.At(i), fmt.Sprintf("NewOrder(%d, %d).At(%d)", n, seed, i))
			}
			if c := seen.count(); uint64(c) != n {
				t.Errorf("NewOrder(%d, %d) visits %d indexes; want %d", n, seed, c, n)
			}
			if o.Len() != n {
				t.Errorf("NewOrder(%d, %d).Len() = %d; want %d", n, seed, o.Len(), n)
			}
			if got := o.At(n); got != n {
				t.Errorf("NewOrder(%d, %d).At(%d) = %d; want %d (outside the range)", n, seed, n, got, n)
			}
		}
	}
}

func TestOrderDeterministic(t *testing.T) {
	const n = 65535 * 3
	a, b, c := NewOrder(n, 42), NewOrder(n, 42), NewOrder(n, 43)
	same, fixed, ascending := 0, 0, 0
	for i := range uint64(n) {
		if a.At(i) != b.At(i) {
			t.Fatalf("NewOrder(%d, 42).At(%d) = %d then %d; want the same", n, i, a.At(i), b.At(i))
		}
		if a.At(i) == c.At(i) {
			same++
		}
		if a.At(i) == i {
			fixed++
		}
		if i > 0 && a.At(i) == a.At(i-1)+1 {
			ascending++
		}
	}
	// A random permutation agrees with another, has fixed points, and steps
	// by one about once on average.
	if same > 20 || fixed > 20 || ascending > 20 {
		t.Errorf("NewOrder(%d, 42): %d positions agree with seed 43, %d fixed points, %d steps of +1; want a few of each", n, same, fixed, ascending)
	}
}

func TestOrderSpread(t *testing.T) {
	// The first positions of a scan of 256 hosts × 1000 ports should reach
	// many hosts, not walk the ports of one.
	const hosts, ports = 256, 1000
	o := NewOrder(hosts*ports, 7)
	seen := map[uint64]bool{}
	for i := range uint64(256) {
		seen[o.At(i)/ports] = true
	}
	if len(seen) < 128 {
		t.Errorf("the first 256 positions reach %d hosts; want at least 128 of 256", len(seen))
	}
}

func TestOrderLarge(t *testing.T) {
	for _, n := range []uint64{1 << 48, 1<<48 + 1, 1<<63 + 1, ^uint64(0)} {
		o := NewOrder(n, 99)
		seen := map[uint64]bool{}
		for i := range uint64(1000) {
			x := o.At(i)
			if x >= n || seen[x] {
				t.Fatalf("NewOrder(%d).At(%d) = %d: out of range or repeated", n, i, x)
			}
			seen[x] = true
		}
		if x := o.At(n - 1); x >= n {
			t.Errorf("NewOrder(%d).At(n-1) = %d; want below n", n, x)
		}
	}
}

func TestOrderShards(t *testing.T) {
	for _, n := range []uint64{0, 1, 2, 10, 1000, 65535 * 3} {
		o := NewOrder(n, 5)
		for _, shards := range []uint64{1, 2, 3, 7} {
			seen := newBitset(n)
			next := uint64(0)
			for k := uint64(1); k <= shards; k++ {
				start, end := o.Shard(k, shards)
				if start != next || end < start {
					t.Fatalf("Shard(%d, %d) of %d = [%d, %d); want it to start at %d", k, shards, n, start, end, next)
				}
				if size := end - start; size != n/shards && size != n/shards+1 {
					t.Errorf("Shard(%d, %d) of %d has %d positions; want %d or %d", k, shards, n, size, n/shards, n/shards+1)
				}
				for pos := start; pos < end; pos++ {
					seen.mark(t, n, o.At(pos), fmt.Sprintf("shard %d/%d of %d", k, shards, n))
				}
				next = end
			}
			if c := uint64(seen.count()); c != n {
				t.Errorf("shards 1..%d of %d visit %d indexes; want all %d", shards, n, c, n)
			}
		}
	}
	o := NewOrder(100, 1)
	for _, kn := range [][2]uint64{{0, 3}, {4, 3}, {1, 0}} {
		if start, end := o.Shard(kn[0], kn[1]); start != end {
			t.Errorf("Shard(%d, %d) = [%d, %d); want an empty range", kn[0], kn[1], start, end)
		}
	}
	// No overflow for the largest sizes.
	big := NewOrder(^uint64(0), 1)
	if start, end := big.Shard(3, 3); end != ^uint64(0) || start != ^uint64(0)/3*2 {
		t.Errorf("Shard(3, 3) of 2^64-1 = [%d, %d); want [%d, %d)", start, end, ^uint64(0)/3*2, ^uint64(0))
	}
}

func TestParseShard(t *testing.T) {
	good := []struct {
		in   string
		k, n uint64
	}{
		{"1/1", 1, 1},
		{"3/7", 3, 7},
		{" 2/4 ", 2, 4},
		{"07/10", 7, 10},
		{"18446744073709551615/18446744073709551615", ^uint64(0), ^uint64(0)},
	}
	for _, tc := range good {
		k, n, err := ParseShard(tc.in)
		if err != nil || k != tc.k || n != tc.n {
			t.Errorf("ParseShard(%q) = %d, %d, %v; want %d, %d, nil", tc.in, k, n, err, tc.k, tc.n)
		}
	}
	bad := []struct{ in, want string }{
		{"", "is not K/N"},
		{"1", `shard "1" is not K/N`},
		{"0/3", "K outside 1 to 3"},
		{"4/3", `shard "4/3" has K outside 1 to 3`},
		{"1/0", "N = 0"},
		{"a/b", "whole numbers"},
		{"1/2/3", "whole numbers"},
		{"-1/3", "whole numbers"},
		{"+1/3", "whole numbers"},
		{"1/", "whole numbers"},
		{"/3", "whole numbers"},
		{"1 / 3", "whole numbers"},
		{"1/18446744073709551616", "whole numbers"},
	}
	for _, tc := range bad {
		k, n, err := ParseShard(tc.in)
		if err == nil {
			t.Errorf("ParseShard(%q) = %d, %d; want an error containing %q", tc.in, k, n, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !errors.Is(err, registry.ErrSyntax) {
			t.Errorf("ParseShard(%q) = %v; want a syntax error containing %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"1/1", "3/7", "0/3", "4/3", "1/0", "a/b", "1/2/3", " 2/4 ", "18446744073709551615/18446744073709551615"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, n, err := ParseShard(s)
		if err != nil {
			if !errors.Is(err, registry.ErrSyntax) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseShard(%q) = %q; want one line matching ErrSyntax", s, err)
			}
			return
		}
		if k < 1 || k > n {
			t.Fatalf("ParseShard(%q) = %d, %d; want 1 <= K <= N", s, k, n)
		}
		k2, n2, err := ParseShard(fmt.Sprintf("%d/%d", k, n))
		if err != nil || k2 != k || n2 != n {
			t.Fatalf("ParseShard(%d/%d) = %d, %d, %v; want the same back", k, n, k2, n2, err)
		}
	})
}

func BenchmarkOrderAt(b *testing.B) {
	for _, n := range []uint64{65535, 256 * 1000, 1<<32*1000 + 1} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			o := NewOrder(n, 1)
			b.ReportAllocs()
			var i, sum uint64
			for b.Loop() {
				sum += o.At(i)
				if i++; i == n {
					i = 0
				}
			}
			_ = sum
		})
	}
}
