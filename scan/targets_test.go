package scan

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/portctl/portctl/registry"
)

// fakeResolver answers from a table, as *net.Resolver would: "ip4" and
// "ip6" return only that family, unknown names a not-found DNSError.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	strs, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range strs {
		a := netip.MustParseAddr(s)
		if network == "ip4" && !a.Unmap().Is4() || network == "ip6" && a.Unmap().Is4() {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

// failResolver fails every lookup.
type failResolver struct{}

func (failResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return nil, errors.New("resolver: lookups disabled in this test")
}

var testHosts = fakeResolver{
	"web.example":    {"192.0.2.10", "2001:db8::10"},
	"v6only.example": {"2001:db8::6"},
	"mapped.example": {"::ffff:192.0.2.20"},
	"dup.example":    {"192.0.2.10"},
	"empty.example":  {},
}

// addrs parses a list of addresses for the want side of a table.
func addrs(ss ...string) []netip.Addr {
	out := []netip.Addr{}
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// expand lists every address of t through At.
func expand(t *Targets) []netip.Addr {
	out := []netip.Addr{}
	for i := range t.Len() {
		out = append(out, t.At(i))
	}
	return out
}

func TestParseTargets(t *testing.T) {
	tests := []struct {
		name     string
		specs    []string
		excludes []string
		family   int
		want     []netip.Addr
	}{
		{"ipv4", []string{"10.0.0.1"}, nil, 0, addrs("10.0.0.1")},
		{"ipv6", []string{"2001:db8::1"}, nil, 0, addrs("2001:db8::1")},
		{"mapped ipv6 is ipv4", []string{"::ffff:10.0.0.1"}, nil, 0, addrs("10.0.0.1")},
		{"cidr", []string{"10.0.0.0/30"}, nil, 0, addrs("10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3")},
		{"cidr /32", []string{"10.0.0.5/32"}, nil, 0, addrs("10.0.0.5")},
		{"ipv6 cidr", []string{"2001:db8::/126"}, nil, 0, addrs("2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3")},
		{"mapped cidr is ipv4", []string{"::ffff:10.0.0.0/127"}, nil, 0, addrs("10.0.0.0", "10.0.0.1")},
		{"last octet range", []string{"10.0.0.1-3"}, nil, 0, addrs("10.0.0.1", "10.0.0.2", "10.0.0.3")},
		{"one-address range", []string{"10.0.0.7-7"}, nil, 0, addrs("10.0.0.7")},
		{"full range", []string{"10.0.0.254-10.0.1.1"}, nil, 0, addrs("10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1")},
		{"ipv6 range", []string{"2001:db8::fe-2001:db8::101"}, nil, 0, addrs("2001:db8::fe", "2001:db8::ff", "2001:db8::100", "2001:db8::101")},
		{"ipv6 range over the mapped block", []string{"::fffe:ffff:ffff-::1:0:0:0"}, []string{"0.0.0.0/0"}, 0,
			addrs("::fffe:ffff:ffff", "::1:0:0:0")},
		{"ipv6 range into the mapped block", []string{"::fffe:ffff:ffff-::ffff:0.0.0.1"}, nil, 0,
			addrs("0.0.0.0", "0.0.0.1", "::fffe:ffff:ffff")},
		{"comma list", []string{"10.0.0.2,10.0.0.1"}, nil, 0, addrs("10.0.0.1", "10.0.0.2")},
		{"space list and several args", []string{"10.0.0.3 10.0.0.1", "10.0.0.2,"}, nil, 0, addrs("10.0.0.1", "10.0.0.2", "10.0.0.3")},
		{"overlaps merged", []string{"10.0.0.0/30", "10.0.0.2-5", "10.0.0.1"}, nil, 0,
			addrs("10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5")},
		{"ipv4 before ipv6", []string{"2001:db8::1", "10.0.0.1", "::1"}, nil, 0, addrs("10.0.0.1", "::1", "2001:db8::1")},
		{"exclude address and range", []string{"10.0.0.0/29"}, []string{"10.0.0.2", "10.0.0.4-5"}, 0,
			addrs("10.0.0.0", "10.0.0.1", "10.0.0.3", "10.0.0.6", "10.0.0.7")},
		{"exclude cidr", []string{"10.0.0.0/29", "10.0.1.1"}, []string{"10.0.0.0/30,10.0.0.6/31"}, 0,
			addrs("10.0.0.4", "10.0.0.5", "10.0.1.1")},
		{"exclude over two spans", []string{"10.0.0.1-2", "10.0.0.5-6"}, []string{"10.0.0.2-10.0.0.5"}, 0, addrs("10.0.0.1", "10.0.0.6")},
		{"exclude ipv6", []string{"2001:db8::/126"}, []string{"2001:db8::1"}, 0, addrs("2001:db8::", "2001:db8::2", "2001:db8::3")},
		{"exclude mapped form of ipv4", []string{"10.0.0.1-2"}, []string{"::ffff:10.0.0.2"}, 0, addrs("10.0.0.1")},
		{"exclude everything", []string{"10.0.0.0/24"}, []string{"10.0.0.0/16"}, 0, addrs()},
		{"exclude all of ipv6", []string{"::/0"}, []string{"::/1", "8000::/1"}, 0, addrs()},
		{"exclude all but the ends", []string{"::/0"}, []string{"::1-ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "0.0.0.0/0"}, 0,
			addrs("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")},
		{"exclude unrelated", []string{"10.0.0.1"}, []string{"2001:db8::/32", "192.0.2.0/24"}, 0, addrs("10.0.0.1")},
		{"host name", []string{"web.example"}, nil, 0, addrs("192.0.2.10", "2001:db8::10")},
		{"host name ipv4 only", []string{"web.example"}, nil, 4, addrs("192.0.2.10")},
		{"host name ipv6 only", []string{"web.example"}, nil, 6, addrs("2001:db8::10")},
		{"host name with mapped address", []string{"mapped.example"}, nil, 4, addrs("192.0.2.20")},
		{"host name excluded", []string{"web.example", "10.0.0.1"}, []string{"web.example"}, 0, addrs("10.0.0.1")},
		{"family 4 keeps ipv4 of a wide ipv6 range", []string{"::/0"}, []string{"0.0.0.0/1"}, 4, addrs()[:0]},
		{"family 6 drops mapped part of a range", []string{"::fffe:ffff:ffff-::1:0:0:0"}, nil, 6, addrs("::fffe:ffff:ffff", "::1:0:0:0")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := TargetOptions{Resolver: testHosts, Family: tc.family}
			got, err := ParseTargets(t.Context(), tc.specs, tc.excludes, opts)
			if err != nil {
				t.Fatalf("ParseTargets(%q, %q) = %v", tc.specs, tc.excludes, err)
			}
			if tc.name == "family 4 keeps ipv4 of a wide ipv6 range" {
				// 128.0.0.0/1 is left: check the size and the ends only.
				if got.Len() != 1<<31 || got.At(0) != netip.MustParseAddr("128.0.0.0") || got.At(got.Len()-1) != netip.MustParseAddr("255.255.255.255") {
					t.Errorf("ParseTargets(%q, %q) = %d addresses from %v to %v; want 128.0.0.0/1", tc.specs, tc.excludes, got.Len(), got.At(0), got.At(got.Len()-1))
				}
				return
			}
			if diff := cmp.Diff(tc.want, expand(got), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("ParseTargets(%q, %q) mismatch (-want +got):\n%s", tc.specs, tc.excludes, diff)
			}
			if n := got.Len(); got.At(n).IsValid() {
				t.Errorf("At(Len()) = %v; want the zero Addr", got.At(n))
			}
		})
	}
}

func TestParseTargetsErrors(t *testing.T) {
	tests := []struct {
		name     string
		specs    []string
		excludes []string
		family   int
		resolver bool
		want     string // a part of the message
	}{
		{"empty", nil, nil, 0, true, "no targets"},
		{"only separators", []string{" , "}, nil, 0, true, "no targets"},
		{"bad ipv4", []string{"300.1.1.1"}, nil, 0, true, `"300.1.1.1" is not a valid IPv4 address`},
		{"short ipv4", []string{"10.1.2"}, nil, 0, true, `"10.1.2" is not a valid IPv4 address`},
		{"bad cidr address", []string{"300.1.1.1/33"}, nil, 0, true, `"300.1.1.1" is not an IP address`},
		{"ipv4 prefix too long", []string{"10.0.0.0/33"}, nil, 0, true, `prefix length "33" is out of range (want /0 to /32 for IPv4)`},
		{"ipv6 prefix too long", []string{"2001:db8::/129"}, nil, 0, true, `prefix length "129" is out of range (want /0 to /128 for IPv6)`},
		{"negative prefix", []string{"10.0.0.0/-1"}, nil, 0, true, `prefix length "-1"`},
		{"empty prefix", []string{"10.0.0.0/"}, nil, 0, true, `prefix length ""`},
		{"bad ipv6", []string{"2001:db8::g"}, nil, 0, true, `"2001:db8::g" is not a valid IPv6 address`},
		{"zone", []string{"fe80::1%eth0"}, nil, 0, true, "zone"},
		{"backwards octet range", []string{"10.0.0.5-1"}, nil, 0, true, `"10.0.0.5-1" runs backwards`},
		{"backwards range", []string{"10.0.1.0-10.0.0.255"}, nil, 0, true, "runs backwards"},
		{"octet out of range", []string{"10.0.0.1-300"}, nil, 0, true, "last octet 300 is out of range"},
		{"mixed family range", []string{"10.0.0.1-2001:db8::1"}, nil, 0, true, `range end "2001:db8::1" is not a last octet`},
		{"open range", []string{"10.0.0.1-"}, nil, 0, true, `range end ""`},
		{"bad host name", []string{"bad_host!"}, nil, 0, true, `"bad_host!" is not an address, CIDR, range or host name`},
		{"bad exclusion", []string{"10.0.0.0/24"}, []string{"10.0.0.300"}, 0, true, `exclusion "10.0.0.300"`},
		{"unresolvable", []string{"10.0.0.1", "nope.invalid"}, nil, 0, true, `cannot resolve host "nope.invalid": no such host`},
		{"unresolvable exclusion", []string{"10.0.0.1"}, []string{"nope.invalid"}, 0, true, `"nope.invalid"`},
		{"no address", []string{"empty.example"}, nil, 0, true, `host "empty.example" has no address`},
		{"no address of the family", []string{"v6only.example"}, nil, 4, true, `host "v6only.example" has no IPv4 address`},
		{"no resolver", []string{"web.example"}, nil, 0, false, `target "web.example" is a host name, but name resolution is off`},
		{"no resolver for exclusion", []string{"10.0.0.1"}, []string{"web.example"}, 0, false, `exclusion "web.example" is a host name`},
		{"ipv6 literal with family 4", []string{"10.0.0.1", "2001:db8::1"}, nil, 4, true, `target "2001:db8::1" is IPv6, but only IPv4 was asked for`},
		{"ipv4 cidr with family 6", []string{"10.0.0.0/8"}, nil, 6, true, `target "10.0.0.0/8" is IPv4, but only IPv6 was asked for`},
		{"ipv6 /64", []string{"2001:db8::/64"}, nil, 0, true, `target "2001:db8::/64" has 2^64 addresses; a scan takes at most 2^32`},
		{"everything", []string{"::/0"}, nil, 0, true, `"::/0" has 2^128 addresses`},
		{"huge range", []string{"::1-::2:0:0:1"}, nil, 0, true, `"::1-::2:0:0:1" has 562949953421313 addresses`},
		{"huge range with ipv4", []string{"::2-::1:0:0:1"}, nil, 0, true, `"::2-::1:0:0:1" has 2^48 addresses`},
		{"too many together", []string{"0.0.0.0/0", "2001:db8::1"}, nil, 0, true, "more than 2^32 addresses together"},
		{"still too many after exclusion", []string{"2001:db8::/64"}, []string{"2001:db8::/65"}, 0, true, `"2001:db8::/64" has 2^64`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := TargetOptions{Family: tc.family}
			if tc.resolver {
				opts.Resolver = testHosts
			}
			got, err := ParseTargets(t.Context(), tc.specs, tc.excludes, opts)
			if err == nil {
				t.Fatalf("ParseTargets(%q, %q) = %d addresses; want an error containing %q", tc.specs, tc.excludes, got.Len(), tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("ParseTargets(%q, %q) = %q; want one line containing %q", tc.specs, tc.excludes, err, tc.want)
			}
			if !errors.Is(err, registry.ErrSyntax) {
				t.Errorf("ParseTargets(%q, %q) = %v; want an error matching registry.ErrSyntax", tc.specs, tc.excludes, err)
			}
		})
	}
}

// TestParseTargetsHostBits: a CIDR whose address sets bits beyond its
// prefix is refused, naming the network it would be and the shortest
// prefix, in whole octets or hex digits, that keeps the address's bits; a
// masked one is taken.
func TestParseTargetsHostBits(t *testing.T) {
	tests := []struct {
		name     string
		specs    []string
		excludes []string
		want     string // the whole message
	}{
		{"ipv4 /0", []string{"10.0.0.0/0"}, nil,
			`target "10.0.0.0/0" has bits set beyond its /0 prefix: it would be 0.0.0.0/0 (every IPv4 address); did you mean 10.0.0.0/8?`},
		{"ipv4 /16 of a /24", []string{"192.168.1.0/16"}, nil,
			`target "192.168.1.0/16" has bits set beyond its /16 prefix: it would be 192.168.0.0/16 (65536 addresses); did you mean 192.168.1.0/24?`},
		{"ipv4 host in a /24", []string{"192.168.1.5/24"}, nil,
			`target "192.168.1.5/24" has bits set beyond its /24 prefix: it would be 192.168.1.0/24 (256 addresses); did you mean 192.168.1.5/32?`},
		{"ipv4 /1", []string{"192.0.0.0/1"}, nil,
			`target "192.0.0.0/1" has bits set beyond its /1 prefix: it would be 128.0.0.0/1 (2^31 addresses); did you mean 192.0.0.0/8?`},
		{"ipv4 in a list", []string{"10.0.0.0/24,172.16.0.0/8"}, nil,
			`target "172.16.0.0/8" has bits set beyond its /8 prefix: it would be 172.0.0.0/8 (2^24 addresses); did you mean 172.16.0.0/16?`},
		{"ipv6 /0", []string{"2001:db8::/0"}, nil,
			`target "2001:db8::/0" has bits set beyond its /0 prefix: it would be ::/0 (every IPv6 address); did you mean 2001:db8::/32?`},
		{"ipv6 /16", []string{"2001:db8::/16"}, nil,
			`target "2001:db8::/16" has bits set beyond its /16 prefix: it would be 2001::/16 (2^112 addresses); did you mean 2001:db8::/32?`},
		{"ipv6 in hex digits", []string{"2001:db8:ab00::/24"}, nil,
			`target "2001:db8:ab00::/24" has bits set beyond its /24 prefix: it would be 2001:d00::/24 (2^104 addresses); did you mean 2001:db8:ab00::/40?`},
		{"ipv6 host in a /127", []string{"2001:db8::ff/127"}, nil,
			`target "2001:db8::ff/127" has bits set beyond its /127 prefix: it would be 2001:db8::fe/127 (2 addresses); did you mean 2001:db8::ff/128?`},
		{"ipv6 low bits", []string{"::1/64"}, nil,
			`target "::1/64" has bits set beyond its /64 prefix: it would be ::/64 (2^64 addresses); did you mean ::1/128?`},
		{"mapped ipv4", []string{"::ffff:10.0.0.0/96"}, nil,
			`target "::ffff:10.0.0.0/96" has bits set beyond its /96 prefix: it would be ::ffff:0.0.0.0/96 (2^32 addresses); did you mean ::ffff:10.0.0.0/104?`},
		{"exclusion", []string{"10.0.0.0/24"}, []string{"10.0.0.1/24"},
			`exclusion "10.0.0.1/24" has bits set beyond its /24 prefix: it would be 10.0.0.0/24 (256 addresses); did you mean 10.0.0.1/32?`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTargets(t.Context(), tc.specs, tc.excludes, TargetOptions{})
			if err == nil {
				t.Fatalf("ParseTargets(%q, %q) = %d addresses; want the error %q", tc.specs, tc.excludes, got.Len(), tc.want)
			}
			if err.Error() != tc.want || !errors.Is(err, registry.ErrSyntax) {
				t.Errorf("ParseTargets(%q, %q) = %q; want %q, matching registry.ErrSyntax", tc.specs, tc.excludes, err, tc.want)
			}
		})
	}
	// The suggestion, and every masked prefix, is taken as written.
	for _, spec := range []string{"0.0.0.0/0", "10.0.0.0/8", "192.168.1.0/24", "192.168.1.5/32", "128.0.0.0/1", "::/0", "2001:db8::/32", "2001:db8:ab00::/40", "2001:db8::ff/128", "::ffff:10.0.0.0/104"} {
		if _, err := ParseTargets(t.Context(), []string{"10.0.0.1"}, []string{spec}, TargetOptions{}); err != nil {
			t.Errorf("ParseTargets(10.0.0.1, exclude %q) = %v; want no error", spec, err)
		}
	}
}

func TestParseTargetsLimits(t *testing.T) {
	for _, spec := range []string{"0.0.0.0/0", "2001:db8::/96", "::ffff:0:0/96"} {
		got, err := ParseTargets(t.Context(), []string{spec}, nil, TargetOptions{})
		if err != nil || got.Len() != 1<<32 {
			t.Fatalf("ParseTargets(%q) = %v, %v; want 2^32 addresses", spec, got, err)
		}
		if first := got.At(0); first != netip.MustParsePrefix(spec).Masked().Addr().Unmap() {
			t.Errorf("ParseTargets(%q).At(0) = %v; want the network address", spec, first)
		}
	}
	if _, err := ParseTargets(t.Context(), []string{"2001:db8::/95"}, nil, TargetOptions{}); !errors.Is(err, registry.ErrSyntax) {
		t.Errorf("ParseTargets(2001:db8::/95) = %v; want a syntax error", err)
	}
	if _, err := ParseTargets(t.Context(), []string{"10.0.0.1"}, nil, TargetOptions{Family: 5}); err == nil || errors.Is(err, registry.ErrSyntax) {
		t.Errorf("ParseTargets with Family 5 = %v; want a configuration error", err)
	}
}

func TestParseTargetsCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := ParseTargets(ctx, []string{"web.example"}, nil, TargetOptions{Resolver: testHosts})
	if !errors.Is(err, context.Canceled) || errors.Is(err, registry.ErrSyntax) {
		t.Errorf("ParseTargets with a canceled context = %v; want context.Canceled", err)
	}
}

func TestTargetsName(t *testing.T) {
	got, err := ParseTargets(t.Context(), []string{"web.example", "dup.example", "10.0.0.1", "mapped.example"}, nil, TargetOptions{Resolver: testHosts})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, a := range expand(got) {
		names[a.String()] = got.Name(a)
	}
	want := map[string]string{
		"10.0.0.1":     "",
		"192.0.2.10":   "web.example", // dup.example came second
		"192.0.2.20":   "mapped.example",
		"2001:db8::10": "web.example",
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("Name mismatch (-want +got):\n%s", diff)
	}
	if n := got.Name(netip.MustParseAddr("::ffff:192.0.2.20")); n != "mapped.example" {
		t.Errorf("Name(::ffff:192.0.2.20) = %q; want mapped.example", n)
	}
}

// TestTargetsGroundTruth compares random sets of ranges, CIDRs and
// exclusions with a set built address by address. The IPv6 cases sit on
// the cuts of the key space (the mapped IPv4 block and 2^48).
func TestTargetsGroundTruth(t *testing.T) {
	bases := []netip.Addr{
		netip.MustParseAddr("10.0.0.0"),
		netip.MustParseAddr("::fffe:ffff:fe00"),     // below ::ffff:0.0.0.0
		netip.MustParseAddr("::ffff:255.255.254.0"), // below 2^48
		netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fc00"),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		base := bases[round%len(bases)]
		at := func(off int) netip.Addr {
			a := base
			for range off {
				a = a.Next()
			}
			return a
		}
		randSpec := func() string {
			switch rng.IntN(4) {
			case 0:
				return at(rng.IntN(1024)).String()
			case 1:
				bits := base.BitLen() - rng.IntN(9)
				return netip.PrefixFrom(at(rng.IntN(1024)), bits).Masked().String()
			default:
				a, b := rng.IntN(1024), rng.IntN(1024)
				return at(min(a, b)).String() + "-" + at(max(a, b)).String()
			}
		}
		var specs, excludes []string
		for range 1 + rng.IntN(5) {
			specs = append(specs, randSpec())
		}
		for range rng.IntN(5) {
			excludes = append(excludes, randSpec())
		}
		want := groundTruth(t, specs, excludes)
		got, err := ParseTargets(t.Context(), specs, excludes, TargetOptions{})
		if err != nil {
			t.Fatalf("ParseTargets(%q, %q) = %v", specs, excludes, err)
		}
		if diff := cmp.Diff(want, expand(got), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Fatalf("ParseTargets(%q, %q) mismatch (-want +got):\n%s", specs, excludes, diff)
		}
	}
}

// groundTruth expands small address, CIDR and full-range specs one address
// at a time.
func groundTruth(t *testing.T, specs, excludes []string) []netip.Addr {
	t.Helper()
	each := func(spec string, f func(netip.Addr)) {
		var first, last netip.Addr
		switch {
		case strings.Contains(spec, "/"):
			p := netip.MustParsePrefix(spec).Masked()
			first = p.Addr()
			last = first
			for n := 1 << (first.BitLen() - p.Bits()); n > 1; n-- {
				last = last.Next()
			}
		case strings.Contains(spec, "-"):
			a, b, _ := strings.Cut(spec, "-")
			first, last = netip.MustParseAddr(a), netip.MustParseAddr(b)
		default:
			first = netip.MustParseAddr(spec)
			last = first
		}
		for a := first; ; a = a.Next() {
			f(a.Unmap())
			if a == last {
				break
			}
		}
	}
	set := map[netip.Addr]bool{}
	for _, s := range specs {
		each(s, func(a netip.Addr) { set[a] = true })
	}
	for _, s := range excludes {
		each(s, func(a netip.Addr) { delete(set, a) })
	}
	out := []netip.Addr{}
	for a := range set {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func TestReadTargetFile(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"lines", "10.0.0.1\n10.0.0.2\n", []string{"10.0.0.1", "10.0.0.2"}},
		{"no final newline", "10.0.0.1\n10.0.0.0/24", []string{"10.0.0.1", "10.0.0.0/24"}},
		{"crlf and blanks", "a.example\r\n\r\n  b.example  \r\n", []string{"a.example", "b.example"}},
		{"several a line", "10.0.0.1 10.0.0.2\t2001:db8::1", []string{"10.0.0.1", "10.0.0.2", "2001:db8::1"}},
		{"comments", "# scan these\n10.0.0.1 # the router\n#10.0.0.2\n10.0.0.3#x", []string{"10.0.0.1", "10.0.0.3"}},
		{"commas kept for ParseTargets", "10.0.0.1,10.0.0.2", []string{"10.0.0.1,10.0.0.2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadTargetFile(strings.NewReader(tc.in))
			if err != nil {
				t.Fatalf("ReadTargetFile(%q) = %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ReadTargetFile(%q) mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
	boom := errors.New("disk on fire")
	if _, err := ReadTargetFile(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("ReadTargetFile(failing reader) = %v; want it to wrap %v", err, boom)
	}
}

func FuzzParseTargets(f *testing.F) {
	for _, s := range []string{
		"10.0.0.1", "10.0.0.0/8", "10.0.0.1-20", "10.0.0.1-10.0.1.5", "2001:db8::/120", "::ffff:1.2.3.4",
		"300.1.1.1/33", "host.example", "a,b 10.0.0.1", "::/0", "fe80::1%eth0", "1.2.3", "10.0.0.5-1",
		"10.0.0.0/0", "192.168.1.0/16", "2001:db8::/16", "::ffff:10.0.0.0/96",
	} {
		f.Add(s, "10.0.0.3,2001:db8::/124", uint8(0))
	}
	f.Fuzz(func(t *testing.T, spec, exclude string, family uint8) {
		opts := TargetOptions{Resolver: failResolver{}, Family: []int{0, 4, 6}[family%3]}
		got, err := ParseTargets(t.Context(), []string{spec}, []string{exclude}, opts)
		if err != nil {
			if !errors.Is(err, registry.ErrSyntax) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseTargets(%q, %q) = %q; want one line matching ErrSyntax", spec, exclude, err)
			}
			return
		}
		// A CIDR with bits set beyond its prefix is never taken: it
		// would stand for more addresses than it seems to.
		for _, arg := range []string{spec, exclude} {
			for part := range strings.FieldsFuncSeq(arg, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
				if p, err := netip.ParsePrefix(part); err == nil && p != p.Masked() {
					t.Fatalf("ParseTargets(%q, %q) took %q, which has bits set beyond its prefix", spec, exclude, part)
				}
			}
		}
		n := got.Len()
		if n > 1<<32 {
			t.Fatalf("ParseTargets(%q, %q).Len() = %d; want at most 2^32", spec, exclude, n)
		}
		if got.At(n).IsValid() {
			t.Fatalf("ParseTargets(%q, %q).At(Len) = %v; want the zero Addr", spec, exclude, got.At(n))
		}
		// Addresses are valid, of the family asked for, and strictly
		// increasing (IPv4 first), so At never repeats one.
		var prev netip.Addr
		// Sampled indexes, in increasing order without repeats (for small
		// n, n-3 and n/3 fall among the first ones).
		idx := []uint64{0, 1, 2, n / 3, n / 2, n - 3, n - 2, n - 1}
		slices.Sort(idx)
		idx = slices.Compact(idx)
		for _, i := range idx {
			if i >= n {
				continue
			}
			a := got.At(i)
			if !a.IsValid() || a.Is4In6() || a.Zone() != "" {
				t.Fatalf("ParseTargets(%q, %q).At(%d) = %v; want a plain address", spec, exclude, i, a)
			}
			if opts.Family == 4 && !a.Is4() || opts.Family == 6 && !a.Is6() {
				t.Fatalf("ParseTargets(%q, %q).At(%d) = %v; want IPv%d", spec, exclude, i, a, opts.Family)
			}
			if prev.IsValid() && prev.Compare(a) > 0 {
				t.Fatalf("ParseTargets(%q, %q): At goes down from %v to %v at %d", spec, exclude, prev, a, i)
			}
			prev = a
		}
	})
}

func BenchmarkTargetsAt(b *testing.B) {
	var specs []string
	for i := range 1000 {
		specs = append(specs, fmt.Sprintf("10.%d.%d.0/28", i/256, i%256), fmt.Sprintf("2001:db8::%x:0/124", i))
	}
	targets, err := ParseTargets(b.Context(), specs, nil, TargetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	n := targets.Len()
	b.ReportAllocs()
	var i uint64
	for b.Loop() {
		if !targets.At(i).IsValid() {
			b.Fatal("invalid address")
		}
		i += 7919
		if i >= n {
			i -= n
		}
	}
}
