package portmap

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var loopback = netip.MustParseAddr("127.0.0.1")

// equateAddrs compares netip values with ==.
var equateAddrs = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})

func TestUPnPDiscoverUnicastOnlySSDP(t *testing.T) {
	f := newFakeIGD(t)
	start := time.Now()
	c := f.discover(t)
	// Discovery ends as soon as the gateway answered, not at the end of
	// the wait.
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("discovery took %v; want it to end at the gateway's answer", took)
	}
	urn, ctl := c.Service()
	if urn != "urn:schemas-upnp-org:service:WANIPConnection:1" || !strings.HasSuffix(ctl, "/ctl/IPConn") {
		t.Errorf("Service() = %q, %q; want WANIPConnection:1 at /ctl/IPConn", urn, ctl)
	}
	if got := c.Gateway(); got != loopback {
		t.Errorf("Gateway() = %v; want %v", got, loopback)
	}
	if c.Protocol() != UPnP {
		t.Errorf("Protocol() = %v; want %v", c.Protocol(), UPnP)
	}
}

func TestUPnPWANPPPConnection(t *testing.T) {
	f := newFakeIGD(t)
	f.set(func(f *fakeIGD) { f.ppp = true })
	c := f.discover(t)
	if urn, _ := c.Service(); urn != "urn:schemas-upnp-org:service:WANPPPConnection:1" {
		t.Errorf("Service() = %q; want WANPPPConnection:1", urn)
	}
	ctx := testContext(t)
	m, err := c.Map(ctx, Request{Proto: "udp", Internal: netip.MustParseAddrPort("127.0.0.1:5000"), External: 15000, Lease: time.Hour})
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if err := c.Unmap(ctx, m); err != nil {
		t.Fatalf("Unmap: %v", err)
	}
}

func TestUPnPDiscoverNoAnswer(t *testing.T) {
	f := newFakeIGD(t)
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0") // takes the searches, answers none
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	opts := f.options()
	opts.ssdpPort = uint16(silent.LocalAddr().(*net.UDPAddr).Port)
	opts.Wait = 300 * time.Millisecond
	_, err = DiscoverUPnP(testContext(t), opts)
	if !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("DiscoverUPnP with nobody answering: %v; want ErrNoAnswer", err)
	}
	f.set(func(f *fakeIGD) {
		if f.searches != 0 {
			t.Errorf("the fake saw %d searches; want 0", f.searches)
		}
	})
}

func TestUPnPDiscoverNowhereToSearch(t *testing.T) {
	_, err := DiscoverUPnP(testContext(t), UPnPOptions{NoMulticast: true})
	if err == nil || errors.Is(err, ErrNoAnswer) {
		t.Fatalf("DiscoverUPnP without gateway or multicast: %v; want an error saying there is nowhere to search", err)
	}
}

func TestUPnPMapListUnmap(t *testing.T) {
	f := newFakeIGD(t)
	c := f.discover(t)
	ctx := testContext(t)

	m, err := c.Map(ctx, Request{Proto: "tcp", Internal: netip.AddrPortFrom(netip.IPv4Unspecified(), 8080),
		External: 18080, Lease: time.Hour, Description: "portctl test"})
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	want := Mapping{Protocol: UPnP, Proto: "tcp",
		Internal:    netip.MustParseAddrPort("127.0.0.1:8080"),
		External:    netip.MustParseAddrPort("11.77.0.1:18080"),
		Lease:       time.Hour,
		Description: "portctl test"}
	if diff := cmp.Diff(want, m, equateAddrs); diff != "" {
		t.Errorf("Map (-want +got):\n%s", diff)
	}
	wantTable := []fakeMapping{{proto: "TCP", ext: 18080, in: 8080, client: "127.0.0.1", description: "portctl test", lease: 3600}}
	if diff := cmp.Diff(wantTable, f.table(), cmp.AllowUnexported(fakeMapping{})); diff != "" {
		t.Errorf("router's table after Map (-want +got):\n%s", diff)
	}

	l, err := c.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if diff := cmp.Diff([]Mapping{want}, l, equateAddrs); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}

	if err := c.Unmap(ctx, m); err != nil {
		t.Fatalf("Unmap: %v", err)
	}
	if got := f.table(); len(got) != 0 {
		t.Errorf("router's table after Unmap = %v; want empty", got)
	}
	if l, err := c.List(ctx); err != nil || len(l) != 0 {
		t.Errorf("List after Unmap = %v, %v; want none", l, err)
	}
}

func TestUPnPMapExternalPortDefaultsToInternal(t *testing.T) {
	f := newFakeIGD(t)
	c := f.discover(t)
	m, err := c.Map(testContext(t), Request{Proto: "udp", Internal: netip.MustParseAddrPort("127.0.0.1:5000"), Lease: time.Minute})
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if m.External.Port() != 5000 || m.Proto != "udp" {
		t.Errorf("Map = %+v; want external port 5000, udp", m)
	}
}

// Error 725: the router takes only permanent leases. Map asks again with
// lease 0, and says the mapping is permanent.
func TestUPnPOnlyPermanentLeases(t *testing.T) {
	f := newFakeIGD(t)
	f.set(func(f *fakeIGD) { f.onlyPermanent = true })
	c := f.discover(t)
	m, err := c.Map(testContext(t), Request{Proto: "tcp", Internal: netip.MustParseAddrPort("127.0.0.1:8080"),
		External: 18080, Lease: time.Hour})
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if m.Lease != 0 {
		t.Errorf("Map's lease = %v; want 0 (permanent)", m.Lease)
	}
	var leases []string
	for _, call := range f.actions("AddPortMapping") {
		leases = append(leases, call.args["NewLeaseDuration"])
	}
	if diff := cmp.Diff([]string{"3600", "0"}, leases); diff != "" {
		t.Errorf("AddPortMapping leases asked (-want +got):\n%s", diff)
	}
	if tab := f.table(); len(tab) != 1 || tab[0].lease != 0 {
		t.Errorf("router's table = %+v; want one permanent mapping", tab)
	}
}

// A router that reports 0.0.0.0: the address is unknown, said so by
// ExternalAddress and left invalid by Map, which still maps.
func TestUPnPZeroExternalAddress(t *testing.T) {
	f := newFakeIGD(t)
	f.set(func(f *fakeIGD) { f.zeroExternal = true })
	c := f.discover(t)
	ctx := testContext(t)
	a, epoch, err := c.ExternalAddress(ctx)
	if !errors.Is(err, ErrExternalUnknown) || a.IsValid() || epoch != 0 {
		t.Errorf("ExternalAddress = %v, %d, %v; want invalid, 0, ErrExternalUnknown", a, epoch, err)
	}
	if err != nil && !strings.Contains(err.Error(), "0.0.0.0") {
		t.Errorf("ExternalAddress's error %q does not say 0.0.0.0", err)
	}
	m, err := c.Map(ctx, Request{Proto: "tcp", Internal: netip.MustParseAddrPort("127.0.0.1:8080"), External: 18080, Lease: time.Hour})
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if m.External.Addr().IsValid() || m.External.Port() != 18080 {
		t.Errorf("Map's external = %v; want an unknown address and port 18080", m.External)
	}
}

// A router that takes protocol names only in upper case.
func TestUPnPUpperCaseProtocolNamesOnly(t *testing.T) {
	f := newFakeIGD(t)
	f.set(func(f *fakeIGD) { f.upperOnly = true })
	c := f.discover(t)
	ctx := testContext(t)
	for _, proto := range []string{"tcp", "udp", "TCP", "Udp"} {
		m, err := c.Map(ctx, Request{Proto: proto, Internal: netip.MustParseAddrPort("127.0.0.1:8080"), External: 18080, Lease: time.Hour})
		if err != nil {
			t.Fatalf("Map(%q): %v", proto, err)
		}
		if want := strings.ToLower(proto); m.Proto != want {
			t.Errorf("Map(%q).Proto = %q; want %q", proto, m.Proto, want)
		}
		if err := c.Unmap(ctx, m); err != nil {
			t.Fatalf("Unmap(%q): %v", proto, err)
		}
	}
	for _, call := range append(f.actions("AddPortMapping"), f.actions("DeletePortMapping")...) {
		if p := call.args["NewProtocol"]; p != "TCP" && p != "UDP" {
			t.Errorf("%s sent protocol %q; want upper case", call.action, p)
		}
	}
	if _, err := c.Map(ctx, Request{Proto: "sctp", Internal: netip.MustParseAddrPort("127.0.0.1:8080")}); err == nil {
		t.Errorf("Map(sctp) worked; want an error")
	}
}

// Mappings that vanish before their lease ends: List no longer shows
// them, renewing (Map again) restores them, and deleting one that is
// gone is not an error.
func TestUPnPVanishedMapping(t *testing.T) {
	f := newFakeIGD(t)
	c := f.discover(t)
	ctx := testContext(t)
	r := Request{Proto: "tcp", Internal: netip.MustParseAddrPort("127.0.0.1:8080"), External: 18080, Lease: time.Hour, Description: "kept"}
	m, err := c.Map(ctx, r)
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if got, ok, err := c.Lookup(ctx, m); err != nil || !ok || got != m {
		t.Fatalf("Lookup before it vanished = %+v, %v, %v; want %+v, true", got, ok, err, m)
	}
	f.vanish()
	if got, ok, err := c.Lookup(ctx, m); err != nil || ok {
		t.Fatalf("Lookup after the router lost the mapping = %+v, %v, %v; want false", got, ok, err)
	}
	if l, err := c.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("List after the router lost the mapping = %v, %v; want none", l, err)
	}
	if _, err := c.Map(ctx, r); err != nil {
		t.Fatalf("Map again (renewal): %v", err)
	}
	l, err := c.List(ctx)
	if err != nil || len(l) != 1 || l[0] != m {
		t.Fatalf("List after renewal = %v, %v; want [%v]", l, err, m)
	}
	f.vanish()
	if err := c.Unmap(ctx, m); err != nil {
		t.Errorf("Unmap of a vanished mapping: %v; want nil", err)
	}
}

// The router restarted on another HTTP port: the client finds it again
// and carries on.
func TestUPnPControlURLChanged(t *testing.T) {
	f := newFakeIGD(t)
	c := f.discover(t)
	ctx := testContext(t)
	_, before := c.Service()
	f.restart()
	a, _, err := c.ExternalAddress(ctx)
	if err != nil {
		t.Fatalf("ExternalAddress after the router moved: %v", err)
	}
	if a != netip.MustParseAddr("11.77.0.1") {
		t.Errorf("ExternalAddress = %v; want 11.77.0.1", a)
	}
	if _, after := c.Service(); after == before {
		t.Errorf("control URL still %s after the router moved", after)
	}
	if _, err := c.Map(ctx, Request{Proto: "tcp", Internal: netip.MustParseAddrPort("127.0.0.1:8080"), External: 18080, Lease: time.Hour}); err != nil {
		t.Errorf("Map after the router moved: %v", err)
	}
}

// A SOAP fault is an error wrapping ErrRefused, with the code and the
// description.
func TestUPnPRefusal(t *testing.T) {
	f := newFakeIGD(t)
	f.set(func(f *fakeIGD) { f.deny = func(p uint16) bool { return p < 1024 } })
	c := f.discover(t)
	_, err := c.Map(testContext(t), Request{Proto: "tcp", Internal: netip.MustParseAddrPort("127.0.0.1:8080"), External: 80, Lease: time.Hour})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("Map of a denied port: %v; want ErrRefused", err)
	}
	var ue *UPnPError
	if !errors.As(err, &ue) || ue.Code != 606 || ue.Action != "AddPortMapping" {
		t.Fatalf("Map of a denied port: %#v; want a UPnPError 606 from AddPortMapping", err)
	}
	if want := "upnp: AddPortMapping: the router refused: error 606 Action not authorized"; err.Error() != want {
		t.Errorf("error = %q; want %q", err, want)
	}
}

// A router whose table never ends: List stops at its bound.
func TestUPnPListBounded(t *testing.T) {
	f := newFakeIGD(t)
	f.set(func(f *fakeIGD) { f.endless = true })
	c := f.discover(t)
	l, err := c.List(testContext(t))
	if err == nil || len(l) != maxListEntries {
		t.Errorf("List of an endless table = %d entries, %v; want %d and an error", len(l), err, maxListEntries)
	}
}

func TestParseSSDPResponse(t *testing.T) {
	from := netip.MustParseAddr("192.168.77.1")
	tests := []struct {
		name, in string
		want     string // the location, or "" for an error
	}{
		{"miniupnpd", "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: " + igd1 + "\r\nUSN: uuid:x::" + igd1 +
			"\r\nEXT:\r\nSERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1\r\nLOCATION: http://192.168.77.1:38147/rootDesc.xml\r\nOPT: \"http://schemas.upnp.org/upnp/1/0/\"; ns=01\r\n\r\n",
			"http://192.168.77.1:38147/rootDesc.xml"},
		{"lower-case headers", "HTTP/1.1 200 OK\r\nst: " + igd2 + "\r\nlocation: http://192.168.77.1/desc.xml\r\n\r\n", "http://192.168.77.1/desc.xml"},
		{"no final blank line", "HTTP/1.1 200 OK\r\nST: " + igd1 + "\r\nLOCATION: http://192.168.77.1/d.xml\r\n", ""},
		{"elsewhere", "HTTP/1.1 200 OK\r\nST: " + igd1 + "\r\nLOCATION: http://10.0.0.9/d.xml\r\n\r\n", ""},
		{"name not address", "HTTP/1.1 200 OK\r\nST: " + igd1 + "\r\nLOCATION: http://router.lan/d.xml\r\n\r\n", ""},
		{"https", "HTTP/1.1 200 OK\r\nST: " + igd1 + "\r\nLOCATION: https://192.168.77.1/d.xml\r\n\r\n", ""},
		{"no location", "HTTP/1.1 200 OK\r\nST: " + igd1 + "\r\n\r\n", ""},
		{"not ok", "HTTP/1.1 404 Not Found\r\nLOCATION: http://192.168.77.1/d.xml\r\n\r\n", ""},
		{"a search", "M-SEARCH * HTTP/1.1\r\nST: " + igd1 + "\r\n\r\n", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := parseSSDPResponse([]byte(tt.in), from)
			var got string
			if err == nil {
				got = a.Location.String()
			}
			if got != tt.want {
				t.Errorf("parseSSDPResponse(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzParseSSDPResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nST: "+igd1+"\r\nLOCATION: http://192.168.77.1:5000/rootDesc.xml\r\n\r\n"), []byte{192, 168, 77, 1})
	f.Add([]byte("HTTP/1.1 200 OK\r\nLOCATION: http://[::1]:5000/\r\n\r\n"), []byte{127, 0, 0, 1})
	f.Add([]byte("HTTP/1.0 200\r\n\r\n"), []byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b, ip []byte) {
		from, ok := netip.AddrFromSlice(ip)
		if !ok {
			return
		}
		a, err := parseSSDPResponse(b, from)
		if err != nil {
			return
		}
		if a.Location == nil || a.Location.Scheme != "http" {
			t.Fatalf("parseSSDPResponse(%q) = %+v; want an http location", b, a)
		}
		host, err := netip.ParseAddr(a.Location.Hostname())
		if err != nil || host.Unmap() != from.Unmap() {
			t.Fatalf("parseSSDPResponse(%q, %v) took location %v, not on the sender", b, from, a.Location)
		}
	})
}

func TestParseExternal(t *testing.T) {
	tests := []struct {
		in      string
		want    netip.Addr
		unknown bool
	}{
		{"11.77.0.1", netip.MustParseAddr("11.77.0.1"), false},
		{" 100.64.0.9\n", netip.MustParseAddr("100.64.0.9"), false},
		{"::ffff:11.77.0.1", netip.MustParseAddr("11.77.0.1"), false},
		{"0.0.0.0", netip.Addr{}, true},
		{"", netip.Addr{}, true},
		{"::", netip.Addr{}, true},
		{"garbage", netip.Addr{}, false},
	}
	for _, tt := range tests {
		got, err := parseExternal(tt.in)
		if got != tt.want || errors.Is(err, ErrExternalUnknown) != tt.unknown || (tt.in == "garbage") != (err != nil && !tt.unknown) {
			t.Errorf("parseExternal(%q) = %v, %v; want %v (unknown %v)", tt.in, got, err, tt.want, tt.unknown)
		}
	}
}

func TestLeaseSeconds(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want uint32
	}{
		{0, 0},
		{-time.Second, 0},
		{time.Millisecond, 1},
		{2 * time.Hour, 7200},
		{8 * 24 * time.Hour, 604800},
		{1 << 62, 604800},
	}
	for _, tt := range tests {
		if got := leaseSeconds(tt.in); got != tt.want {
			t.Errorf("leaseSeconds(%v) = %d; want %d", tt.in, got, tt.want)
		}
	}
}

func TestParseDescription(t *testing.T) {
	miniupnpd, err := os.ReadFile("testdata/upnp/miniupnpd-rootDesc.xml")
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := url.Parse("http://192.168.77.1:44083/rootDesc.xml")
	withBase := func(base, ctl string) string {
		return strings.Replace(strings.Replace(fakeDescription, "<specVersion>", "<URLBase>"+base+"</URLBase><specVersion>", 1),
			"<controlURL>/ctl/IPConn</controlURL>", "<controlURL>"+ctl+"</controlURL>", 1)
	}
	tests := []struct {
		name, in string
		want     string // the first service's control URL, or "" for an error
	}{
		{"miniupnpd", string(miniupnpd), "http://192.168.77.1:44083/ctl/IPConn"},
		{"fake", fakeDescription, "http://192.168.77.1:44083/ctl/IPConn"},
		{"URLBase on the same host", withBase("http://192.168.77.1:5000/", "ctl"), "http://192.168.77.1:5000/ctl"},
		{"URLBase elsewhere ignored", withBase("http://10.9.9.9:5000/", "/ctl"), "http://192.168.77.1:44083/ctl"},
		{"control URL elsewhere", withBase("", "http://10.9.9.9/ctl"), ""},
		{"control URL https", withBase("", "https://192.168.77.1/ctl"), ""},
		{"not XML", "<root", ""},
		{"odd charset", `<?xml version="1.0" encoding="EBCDIC"?><root/>`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := parseDescription(strings.NewReader(tt.in), loc)
			var got string
			if err == nil {
				for _, s := range serviceTypes {
					if srvs := root.Device.FindService(s); len(srvs) > 0 {
						got = srvs[0].ControlURL.URL.String()
						break
					}
				}
			}
			if got != tt.want {
				t.Errorf("parseDescription = control URL %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func FuzzParseDescription(f *testing.F) {
	if b, err := os.ReadFile("testdata/upnp/miniupnpd-rootDesc.xml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(fakeDescription))
	loc, _ := url.Parse("http://192.168.77.1:44083/rootDesc.xml")
	f.Fuzz(func(t *testing.T, b []byte) {
		root, err := parseDescription(bytes.NewReader(b), loc)
		if err != nil {
			return
		}
		for _, s := range serviceTypes {
			for _, srv := range root.Device.FindService(s) {
				if u := srv.ControlURL.URL; u.Scheme != "http" || u.Hostname() != loc.Hostname() {
					t.Fatalf("parseDescription(%q) took control URL %v", b, &u)
				}
			}
		}
	})
}

// TestUPnPPinholeWithoutFirewallControl: an IPv6 mapping through a device
// without WANIPv6FirewallControl (an IGDv1) fails saying so, and asks the
// router nothing.
func TestUPnPPinholeWithoutFirewallControl(t *testing.T) {
	f := newFakeIGD(t)
	c := f.discover(t)
	_, err := c.Map(testContext(t), Request{Proto: "tcp", Internal: netip.MustParseAddrPort("[2001:db8::10]:8080"), Lease: time.Hour})
	if !errors.Is(err, errNoFirewallControl) {
		t.Errorf("Map of an IPv6 address = %v; want %v", err, errNoFirewallControl)
	}
	if got := f.table(); len(got) != 0 {
		t.Errorf("router's table = %v; want empty", got)
	}
}

func TestPinholeLease(t *testing.T) {
	for d, want := range map[time.Duration]uint32{0: 86400, time.Second: 1, 90 * time.Second: 90, 48 * time.Hour: 86400, time.Millisecond: 1} {
		if got := pinholeLease(d); got != want {
			t.Errorf("pinholeLease(%s) = %d; want %d", d, got, want)
		}
	}
}
