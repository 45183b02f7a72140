package portmap

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

const routeTable = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	00000000	0101A8C0	0003	0	0	600	00000000	0	0	0
wlan0	00000000	FE01A8C0	0003	0	0	100	00000000	0	0	0
eth0	0001A8C0	00000000	0001	0	0	600	00FFFFFF	0	0	0
`

func TestParseRouteTable(t *testing.T) {
	gw, iface, ok, err := ParseRouteTable(strings.NewReader(routeTable))
	if err != nil || !ok || gw != netip.MustParseAddr("192.168.1.254") || iface != "wlan0" {
		t.Errorf("ParseRouteTable = %v, %q, %v, %v; want 192.168.1.254 on wlan0 (the lower metric)", gw, iface, ok, err)
	}
	_, _, ok, err = ParseRouteTable(strings.NewReader(strings.Join(strings.Split(routeTable, "\n")[3:], "\n")))
	if err == nil {
		t.Error("no header: no error")
	}
	hdr := strings.Split(routeTable, "\n")[0] + "\n"
	if _, _, ok, err := ParseRouteTable(strings.NewReader(hdr + "eth0	0001A8C0	00000000	0001	0	0	600	00FFFFFF	0	0	0\n")); ok || err != nil {
		t.Errorf("no default route: ok %v, %v", ok, err)
	}
	if _, _, _, err := ParseRouteTable(strings.NewReader(hdr + "eth0	zz	00000000	0001	0	0	600	00FFFFFF	0	0	0\n")); err == nil {
		t.Error("bad address: no error")
	}
}

func TestBehind(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7": "", "192.168.0.2": "double NAT", "100.80.1.1": "carrier-grade", "0.0.0.0": "unknown", "2001:db8::1": "",
	} {
		if got := Behind(netip.MustParseAddr(in)); !strings.Contains(got, want) || (want == "" && got != "") {
			t.Errorf("Behind(%s) = %q; want %q", in, got, want)
		}
	}
}

const ipv6RouteTable = `fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000000000000000000000001 00000100 00000003 00000000 00000003    wlan0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000004 00000000 80200001       lo
`

func TestParseIPv6RouteTable(t *testing.T) {
	for _, c := range []struct {
		name, table string
		gw          string
		iface       string
		ok          bool
	}{
		{"lowest metric", ipv6RouteTable, "2001:db8::1", "wlan0", true},
		{"link-local gets its zone", strings.Replace(ipv6RouteTable, "00000100 00000003 00000000 00000003    wlan0", "00000500 00000003 00000000 00000003    wlan0", 1), "fe80::1%eth0", "eth0", true},
		{"no default route through a gateway", strings.Join(append(strings.Split(ipv6RouteTable, "\n")[:1], strings.Split(ipv6RouteTable, "\n")[3:]...), "\n"), "", "", false},
		{"empty", "", "", "", false},
	} {
		gw, iface, ok, err := ParseIPv6RouteTable(strings.NewReader(c.table))
		if err != nil || ok != c.ok || iface != c.iface || (c.ok && gw.String() != c.gw) {
			t.Errorf("%s: ParseIPv6RouteTable = %v, %q, %v, %v; want %s, %q, %v", c.name, gw, iface, ok, err, c.gw, c.iface, c.ok)
		}
	}
	for _, bad := range []string{"00 00\n", strings.Replace(ipv6RouteTable, "fe80", "zz80", 1)} {
		if _, _, _, err := ParseIPv6RouteTable(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseIPv6RouteTable(%q): no error", bad)
		}
	}
}

func FuzzParseIPv6RouteTable(f *testing.F) {
	f.Add(ipv6RouteTable)
	f.Fuzz(func(t *testing.T, s string) {
		gw, _, ok, err := ParseIPv6RouteTable(strings.NewReader(s))
		if ok && (err != nil || !gw.Is6()) {
			t.Errorf("ParseIPv6RouteTable(%q) = %v, ok, %v", s, gw, err)
		}
	})
}

func FuzzParseRouteTable(f *testing.F) {
	f.Add(routeTable)
	f.Fuzz(func(t *testing.T, s string) {
		gw, _, ok, err := ParseRouteTable(strings.NewReader(s))
		if ok && (err != nil || !gw.Is4()) {
			t.Errorf("ParseRouteTable = %v, %v, %v", gw, ok, err)
		}
	})
}

// TestNoPublicAddress: the answers that say a router has no public
// address of its own, and some that do not.
func TestNoPublicAddress(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"upnp empty", fmt.Errorf("upnp: %w", ErrExternalUnknown), true},
		{"natpmp network failure", &ResultError{Protocol: NATPMP, Code: uint16(NATPMPNetworkFailure)}, true},
		{"natpmp not authorized", &ResultError{Protocol: NATPMP, Code: uint16(NATPMPNotAuthorized)}, false},
		{"pcp network failure", &ResultError{Protocol: PCP, Code: uint16(PCPNetworkFailure)}, true},
		{"pcp cannot provide external", &ResultError{Protocol: PCP, Code: uint16(PCPCannotProvideExternal)}, true},
		{"pcp no resources", &ResultError{Protocol: PCP, Code: uint16(PCPNoResources)}, false},
		{"timeout", ErrNoAnswer, false},
	} {
		if got := noPublicAddress(c.err); got != c.want {
			t.Errorf("%s: noPublicAddress(%v) = %v; want %v", c.name, c.err, got, c.want)
		}
	}
}
