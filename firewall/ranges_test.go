package firewall

import (
	"fmt"
	"net/netip"
	"testing"
)

func rs(spec ...string) addrSet {
	var s addrSet
	for i := 0; i+1 < len(spec); i += 2 {
		s = append(s, addrRange{netip.MustParseAddr(spec[i]), netip.MustParseAddr(spec[i+1])})
	}
	return s
}

func TestAddrSets(t *testing.T) {
	a := rs("10.0.0.0", "10.0.0.255", "10.0.2.0", "10.0.2.255")
	b := rs("10.0.0.128", "10.0.2.3")
	if got, want := fmt.Sprint(a.intersect(b)), fmt.Sprint(rs("10.0.0.128", "10.0.0.255", "10.0.2.0", "10.0.2.3")); got != want {
		t.Errorf("intersect = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(a.minus(b)), fmt.Sprint(rs("10.0.0.0", "10.0.0.127", "10.0.2.4", "10.0.2.255")); got != want {
		t.Errorf("minus = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(rs("10.0.0.0", "10.0.3.0").minus(b)), fmt.Sprint(rs("10.0.0.0", "10.0.0.127", "10.0.2.4", "10.0.3.0")); got != want {
		t.Errorf("complement = %s, want %s", got, want)
	}
	w := rs("10.0.0.0", "10.0.0.9", "10.0.1.0", "10.0.1.9", "10.0.2.0", "10.0.2.9")
	if got, want := fmt.Sprint(w.window(netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.0.1.0"))), fmt.Sprint(rs("10.0.0.0", "10.0.0.9", "10.0.1.0", "10.0.1.9")); got != want {
		t.Errorf("window = %s, want %s", got, want)
	}
	if got := w.window(netip.MustParseAddr("10.0.0.10"), netip.MustParseAddr("10.0.0.255")); len(got) != 0 {
		t.Errorf("window of a gap = %v", got)
	}
	all := rs("0.0.0.0", "255.255.255.255")
	if got := all.minus(all); len(got) != 0 {
		t.Errorf("all minus all = %v", got)
	}
	if got, want := fmt.Sprint(rs("10.0.0.5", "10.0.0.9", "10.0.0.0", "10.0.0.4").normal()), fmt.Sprint(rs("10.0.0.0", "10.0.0.9")); got != want {
		t.Errorf("normal = %s, want %s", got, want)
	}
}
