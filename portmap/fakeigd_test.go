package portmap

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeIGD is an in-process UPnP Internet Gateway Device (v1, one
// WANIPConnection:1 service) on loopback: an HTTP server on 127.0.0.1:0
// for the device description and SOAP control, and an SSDP responder on a
// UDP socket of 127.0.0.1:0 that answers M-SEARCHes sent to it by unicast
// (as some routers answer only those). Its switches make it misbehave as
// routers in the field do. It is safe for concurrent use.
type fakeIGD struct {
	t    testing.TB
	ssdp net.PacketConn

	mu sync.Mutex
	// The misbehaviours.
	onlyPermanent bool                   // AddPortMapping with a lease gives 725
	zeroExternal  bool                   // GetExternalIPAddress says 0.0.0.0
	upperOnly     bool                   // a protocol name not in upper case gives 402
	endless       bool                   // GetGenericPortMappingEntry never says 713
	deny          func(port uint16) bool // AddPortMapping of such an external port gives 606
	ppp           bool                   // the service is WANPPPConnection:1, not WANIPConnection:1
	srv           *httptest.Server
	mappings      []fakeMapping
	calls         []fakeCall
	searches      int
}

// fakeMapping is an entry of the fake's table.
type fakeMapping struct {
	proto       string
	ext, in     uint16
	client      string
	description string
	lease       uint32
}

// fakeCall is a SOAP action the fake received, with its arguments.
type fakeCall struct {
	action string
	args   map[string]string
}

const fakeUDN = "uuid:3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b"

// newFakeIGD starts the fake; it stops when the test ends.
func newFakeIGD(t testing.TB) *fakeIGD {
	t.Helper()
	f := &fakeIGD{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.ssdp = pc
	var wg sync.WaitGroup
	wg.Go(f.answerSSDP)
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.srv.Close()
	})
	return f
}

// ssdpPort is the SSDP responder's port.
func (f *fakeIGD) ssdpPort() uint16 {
	return uint16(f.ssdp.LocalAddr().(*net.UDPAddr).Port)
}

// location is the device description's URL.
func (f *fakeIGD) location() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.srv.URL + "/rootDesc.xml"
}

// restart stops the HTTP server and starts it again on another port, as
// miniupnpd does: the control URL changes.
func (f *fakeIGD) restart() {
	f.mu.Lock()
	old := f.srv
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	f.mu.Unlock()
	old.Close()
}

// vanish forgets every mapping, as routers do that lose them before
// their lease ends.
func (f *fakeIGD) vanish() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mappings = nil
}

func (f *fakeIGD) set(fn func(f *fakeIGD)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// table returns a copy of the mappings.
func (f *fakeIGD) table() []fakeMapping {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeMapping(nil), f.mappings...)
}

// actions returns the calls of one action.
func (f *fakeIGD) actions(name string) []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeCall
	for _, c := range f.calls {
		if c.action == name {
			out = append(out, c)
		}
	}
	return out
}

// answerSSDP answers M-SEARCHes for the IGD until the socket closes.
func (f *fakeIGD) answerSSDP() {
	buf := make([]byte, 2048)
	for {
		n, from, err := f.ssdp.ReadFrom(buf)
		if err != nil {
			return
		}
		req := string(buf[:n])
		if !strings.HasPrefix(req, "M-SEARCH * HTTP/1.1\r\n") {
			continue
		}
		var st string
		for _, line := range strings.Split(req, "\r\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "ST") {
				st = strings.TrimSpace(v)
			}
		}
		if st != igd1 && st != "ssdp:all" && st != "upnp:rootdevice" {
			continue
		}
		if st != igd1 {
			st = igd1
		}
		f.mu.Lock()
		f.searches++
		f.mu.Unlock()
		resp := "HTTP/1.1 200 OK\r\n" +
			"CACHE-CONTROL: max-age=120\r\n" +
			"ST: " + st + "\r\n" +
			"USN: " + fakeUDN + "::" + st + "\r\n" +
			"EXT:\r\n" +
			"SERVER: Debian/12 UPnP/1.1 fakeigd/1.0\r\n" +
			"LOCATION: " + f.location() + "\r\n\r\n"
		f.ssdp.WriteTo([]byte(resp), from)
	}
}

const fakeDescription = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>fake IGD</friendlyName>
<UDN>` + fakeUDN + `</UDN>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<friendlyName>WANDevice</friendlyName>
<UDN>uuid:3d3cec3a-8cf0-11e0-98ee-001a6bd2d07c</UDN>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<friendlyName>WANConnectionDevice</friendlyName>
<UDN>uuid:3d3cec3a-8cf0-11e0-98ee-001a6bd2d07d</UDN>
<serviceList><service>
<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>/ctl/IPConn</controlURL>
<eventSubURL>/evt/IPConn</eventSubURL>
<SCPDURL>/WANIPCn.xml</SCPDURL>
</service></serviceList>
</device></deviceList>
</device></deviceList>
</device>
</root>
`

// soapAction is a SOAP request's action element with its arguments.
type soapAction struct {
	XMLName xml.Name
	Args    []struct {
		XMLName xml.Name
		Value   string `xml:",chardata"`
	} `xml:",any"`
}

func (f *fakeIGD) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/rootDesc.xml":
		w.Header().Set("Content-Type", "text/xml")
		desc := fakeDescription
		f.mu.Lock()
		if f.ppp {
			desc = strings.ReplaceAll(desc, "WANIPConnection:1", "WANPPPConnection:1")
		}
		f.mu.Unlock()
		io.WriteString(w, desc)
		return
	case r.Method == http.MethodPost && r.URL.Path == "/ctl/IPConn":
	default:
		http.NotFound(w, r)
		return
	}
	var env struct {
		Body struct {
			Inner []byte `xml:",innerxml"`
		} `xml:"Body"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	var a soapAction
	if err := xml.Unmarshal(body, &env); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := xml.Unmarshal(env.Body.Inner, &a); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	args := map[string]string{}
	for _, arg := range a.Args {
		args[arg.XMLName.Local] = arg.Value
	}
	f.mu.Lock()
	f.calls = append(f.calls, fakeCall{action: a.XMLName.Local, args: args})
	out, code := f.act(a.XMLName.Local, args)
	f.mu.Unlock()
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	const head = `<?xml version="1.0"?>` + "\r\n" +
		`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>`
	const tail = `</s:Body></s:Envelope>` + "\r\n"
	if code != 0 {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, head+`<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>`+
			`<detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>%d</errorCode>`+
			`<errorDescription>%s</errorDescription></UPnPError></detail></s:Fault>`+tail, code, upnpErrorNames[code])
		return
	}
	var sb strings.Builder
	for _, kv := range out {
		fmt.Fprintf(&sb, "<%s>%s</%s>", kv[0], xmlEscape(kv[1]), kv[0])
	}
	fmt.Fprintf(w, head+`<u:%sResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">%s</u:%sResponse>`+tail,
		a.XMLName.Local, sb.String(), a.XMLName.Local)
}

func xmlEscape(s string) string {
	var sb strings.Builder
	xml.EscapeText(&sb, []byte(s))
	return sb.String()
}

// act carries out an action on the table (f.mu held) and returns the out
// arguments in order, or a UPnP error code.
func (f *fakeIGD) act(action string, args map[string]string) ([][2]string, int) {
	port := func(name string) (uint16, bool) {
		n, err := strconv.ParseUint(args[name], 10, 16)
		return uint16(n), err == nil
	}
	proto := func() (string, bool) {
		p := args["NewProtocol"]
		if f.upperOnly {
			return p, p == "TCP" || p == "UDP"
		}
		p = strings.ToUpper(p)
		return p, p == "TCP" || p == "UDP"
	}
	switch action {
	case "GetExternalIPAddress":
		ext := "11.77.0.1"
		if f.zeroExternal {
			ext = "0.0.0.0"
		}
		return [][2]string{{"NewExternalIPAddress", ext}}, 0
	case "AddPortMapping":
		p, ok := proto()
		ext, ok1 := port("NewExternalPort")
		in, ok2 := port("NewInternalPort")
		lease, err := strconv.ParseUint(args["NewLeaseDuration"], 10, 32)
		if !ok || !ok1 || !ok2 || err != nil || ext == 0 || in == 0 {
			return nil, 402
		}
		if f.deny != nil && f.deny(ext) {
			return nil, 606
		}
		if f.onlyPermanent && lease != 0 {
			return nil, 725
		}
		m := fakeMapping{proto: p, ext: ext, in: in, client: args["NewInternalClient"],
			description: args["NewPortMappingDescription"], lease: uint32(lease)}
		for i, old := range f.mappings {
			if old.proto == p && old.ext == ext {
				if old.client != m.client {
					return nil, 718
				}
				f.mappings[i] = m
				return nil, 0
			}
		}
		f.mappings = append(f.mappings, m)
		return nil, 0
	case "DeletePortMapping":
		p, ok := proto()
		ext, ok1 := port("NewExternalPort")
		if !ok || !ok1 {
			return nil, 402
		}
		for i, old := range f.mappings {
			if old.proto == p && old.ext == ext {
				f.mappings = append(f.mappings[:i], f.mappings[i+1:]...)
				return nil, 0
			}
		}
		return nil, 714
	case "GetSpecificPortMappingEntry":
		p, ok := proto()
		ext, ok1 := port("NewExternalPort")
		if !ok || !ok1 {
			return nil, 402
		}
		for _, m := range f.mappings {
			if m.proto == p && m.ext == ext {
				return m.entry(), 0
			}
		}
		return nil, 714
	case "GetGenericPortMappingEntry":
		i, ok := port("NewPortMappingIndex")
		if !ok {
			return nil, 402
		}
		var m fakeMapping
		switch {
		case f.endless:
			m = fakeMapping{proto: "UDP", ext: i + 1, in: i + 1, client: "127.0.0.1", description: "endless"}
		case int(i) < len(f.mappings):
			m = f.mappings[i]
		default:
			return nil, 713
		}
		return append([][2]string{{"NewRemoteHost", ""}, {"NewExternalPort", strconv.Itoa(int(m.ext))}, {"NewProtocol", m.proto}},
			m.entry()...), 0
	}
	return nil, 401
}

// entry is what both GetSpecificPortMappingEntry and
// GetGenericPortMappingEntry answer of m.
func (m fakeMapping) entry() [][2]string {
	return [][2]string{
		{"NewInternalPort", strconv.Itoa(int(m.in))},
		{"NewInternalClient", m.client},
		{"NewEnabled", "1"},
		{"NewPortMappingDescription", m.description},
		{"NewLeaseDuration", strconv.FormatUint(uint64(m.lease), 10)},
	}
}

// discover finds the fake by unicast SSDP only, and returns its client.
func (f *fakeIGD) discover(t testing.TB) *IGD {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := DiscoverUPnP(ctx, f.options())
	if err != nil {
		t.Fatalf("DiscoverUPnP: %v", err)
	}
	if len(cs) != 1 {
		t.Fatalf("DiscoverUPnP found %d clients; want 1", len(cs))
	}
	return cs[0]
}

// options are DiscoverUPnP's options to find the fake: unicast to it
// only, so that nothing leaves loopback.
func (f *fakeIGD) options() UPnPOptions {
	return UPnPOptions{
		Gateway:     netip.MustParseAddr("127.0.0.1"),
		NoMulticast: true,
		Wait:        3 * time.Second,
		ssdpPort:    f.ssdpPort(),
	}
}
