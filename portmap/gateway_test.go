package portmap

import (
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
