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
