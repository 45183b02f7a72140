package portmap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
	"github.com/huin/goupnp/soap"
	"golang.org/x/net/ipv4"
)

// The SSDP search targets DiscoverUPnP asks for. Only internetgateway2's
// generated clients are used: its WANIPConnection:1 and WANPPPConnection:1
// services are the same service types an IGD:1 device holds, so one
// package serves both device versions.
const (
	igd1 = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
	igd2 = "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
)

// ssdpMulticast is SSDP's IPv4 multicast group and port.
var ssdpMulticast = netip.MustParseAddrPort("239.255.255.250:1900")

// maxListEntries bounds List's walk of the router's table.
const maxListEntries = 1024

// ErrExternalUnknown is returned by IGD.ExternalAddress when the router
// reports its external address as 0.0.0.0 or empty: it has none it will
// tell (not connected yet, or it does not know).
var ErrExternalUnknown = errors.New("the router reports no external address (0.0.0.0)")

// UPnPOptions configures DiscoverUPnP.
type UPnPOptions struct {
	// Gateway, when valid, is also sent the search by unicast (some
	// routers answer only that), and discovery ends as soon as it
	// answered.
	Gateway netip.Addr
	// Interfaces names the interfaces to send the multicast search on;
	// empty means every interface that is up and multicast-capable.
	Interfaces []string
	// NoMulticast sends the search only to Gateway.
	NoMulticast bool
	// Wait is how long to wait for answers; zero means 2 seconds. The
	// context's deadline, when earlier, ends it too.
	Wait time.Duration
	// HTTPClient fetches the device description and makes the SOAP
	// requests; nil means one with a 5-second timeout.
	HTTPClient *http.Client

	// ssdpPort is the gateway's SSDP port (1900 when zero); tests set it.
	ssdpPort uint16
}

// DiscoverUPnP searches for UPnP Internet Gateway Devices (v1 and v2) by
// SSDP, reads each one's device description and returns a client for each
// WANIPConnection:2, WANIPConnection:1 and WANPPPConnection:1 service it
// finds, the first ones preferred. A device whose SSDP answer names a
// description on another host than the one that answered is ignored. It
// returns an error wrapping ErrNoAnswer when no device answered.
func DiscoverUPnP(ctx context.Context, opts UPnPOptions) ([]*IGD, error) {
	answers, err := searchSSDP(ctx, opts)
	if err != nil {
		return nil, err
	}
	if len(answers) == 0 {
		return nil, fmt.Errorf("upnp: ssdp search: %w", ErrNoAnswer)
	}
	var clients []*IGD
	var errs []error
	for _, a := range answers {
		cs, err := clientsAt(ctx, a.Location, opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		clients = append(clients, cs...)
	}
	if len(clients) == 0 {
		return nil, fmt.Errorf("upnp: %w", oneLine(errs))
	}
	return clients, nil
}

// ssdpAnswer is what DiscoverUPnP keeps of an SSDP search response.
type ssdpAnswer struct {
	ST       string
	USN      string
	Location *url.URL
}

// parseSSDPResponse parses an SSDP search response (an HTTP response over
// UDP) from the host from, checking that its LOCATION is an http URL on
// that host.
func parseSSDPResponse(b []byte, from netip.Addr) (ssdpAnswer, error) {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
	if err != nil {
		return ssdpAnswer{}, fmt.Errorf("ssdp response: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ssdpAnswer{}, fmt.Errorf("ssdp response: status %q", resp.Status)
	}
	a := ssdpAnswer{ST: resp.Header.Get("St"), USN: resp.Header.Get("Usn")}
	loc := resp.Header.Get("Location")
	u, err := url.Parse(loc)
	if err != nil {
		return ssdpAnswer{}, fmt.Errorf("ssdp response: location: %w", err)
	}
	if u.Scheme != "http" {
		return ssdpAnswer{}, fmt.Errorf("ssdp response: location %q is not an http URL", loc)
	}
	host, err := netip.ParseAddr(u.Hostname())
	if err != nil || host.Unmap() != from.Unmap() {
		return ssdpAnswer{}, fmt.Errorf("ssdp response: location %q is not on %v, which answered", loc, from)
	}
	a.Location = u
	return a, nil
}

// searchMessage is an SSDP M-SEARCH for the target st, sent to host.
func searchMessage(host netip.AddrPort, st string) []byte {
	return []byte("M-SEARCH * HTTP/1.1\r\n" +
		"HOST: " + host.String() + "\r\n" +
		"MAN: \"ssdp:discover\"\r\n" +
		"MX: 1\r\n" +
		"ST: " + st + "\r\n\r\n")
}

// searchSSDP sends the M-SEARCHes (twice, for loss) and gathers the
// answers, one per location, until the wait ends or the gateway answered.
func searchSSDP(ctx context.Context, opts UPnPOptions) ([]ssdpAnswer, error) {
	wait := opts.Wait
	if wait <= 0 {
		wait = 2 * time.Second
	}
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// Over IPv6 (a gateway given by its IPv6 address: IGDv2's pinholes
	// are asked for from the address they open to) the search is unicast
	// only.
	network, v6 := "udp4", opts.Gateway.Is6() && !opts.Gateway.Is4In6()
	if v6 {
		network, opts.NoMulticast = "udp6", true
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, network, ":0")
	if err != nil {
		return nil, fmt.Errorf("upnp: ssdp: %w", err)
	}
	defer pc.Close()
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Now()) })
	defer stop()

	send := func() error {
		var sent int
		var errs []error
		if opts.Gateway.IsValid() {
			port := opts.ssdpPort
			if port == 0 {
				port = 1900
			}
			to := netip.AddrPortFrom(opts.Gateway.Unmap(), port)
			for _, st := range []string{igd2, igd1} {
				if _, err := pc.WriteTo(searchMessage(to, st), net.UDPAddrFromAddrPort(to)); err != nil {
					errs = append(errs, err)
				} else {
					sent++
				}
			}
		}
		if !opts.NoMulticast {
			n, err := sendMulticast(pc, opts.Interfaces)
			sent += n
			if err != nil {
				errs = append(errs, err)
			}
		}
		if sent == 0 {
			if len(errs) == 0 {
				return errors.New("no interface to search on (no gateway given, no multicast interface up)")
			}
			return oneLine(errs)
		}
		return nil
	}
	if err := send(); err != nil {
		return nil, fmt.Errorf("upnp: ssdp search: %w", err)
	}
	resend := time.Now().Add(wait / 4)
	resent := false

	var answers []ssdpAnswer
	seen := map[string]bool{}
	buf := make([]byte, 2048)
	for range 1000 { // bounded: at most that many datagrams
		readUntil := deadline
		if !resent && resend.Before(readUntil) {
			readUntil = resend
		}
		pc.SetReadDeadline(readUntil)
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				if len(answers) > 0 {
					break // the context ended the wait; what came is enough
				}
				return nil, fmt.Errorf("upnp: ssdp search: %w", ctx.Err())
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if !resent && time.Now().Before(deadline) {
					resent = true
					_ = send() // the first send worked; a loss here only costs the retry
					continue
				}
				break
			}
			return answers, fmt.Errorf("upnp: ssdp search: %w", err)
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		from := ua.AddrPort().Addr().Unmap()
		a, err := parseSSDPResponse(buf[:n], from)
		if err != nil || (a.ST != igd1 && a.ST != igd2) || seen[a.Location.String()] {
			continue
		}
		seen[a.Location.String()] = true
		answers = append(answers, a)
		if opts.Gateway.IsValid() && from == opts.Gateway.Unmap() {
			break
		}
	}
	return answers, nil
}

// sendMulticast sends the M-SEARCHes to SSDP's group on each named
// interface (every multicast-capable one that is up when none is named)
// and returns how many it sent.
func sendMulticast(pc net.PacketConn, names []string) (int, error) {
	var ifs []net.Interface
	if len(names) == 0 {
		all, err := net.Interfaces()
		if err != nil {
			return 0, err
		}
		for _, ifi := range all {
			if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 {
				ifs = append(ifs, ifi)
			}
		}
	} else {
		for _, name := range names {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				return 0, fmt.Errorf("interface %q: %w", name, err)
			}
			ifs = append(ifs, *ifi)
		}
	}
	p := ipv4.NewPacketConn(pc)
	to := net.UDPAddrFromAddrPort(ssdpMulticast)
	var sent int
	var errs []error
	for _, ifi := range ifs {
		if err := p.SetMulticastInterface(&ifi); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ifi.Name, err))
			continue
		}
		for _, st := range []string{igd2, igd1} {
			if _, err := pc.WriteTo(searchMessage(ssdpMulticast, st), to); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ifi.Name, err))
				continue
			}
			sent++
		}
	}
	return sent, oneLine(errs)
}

// igdConn is what IGD needs of goupnp's generated WANIPConnection1,
// WANIPConnection2 and WANPPPConnection1 clients.
type igdConn interface {
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	AddPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, proto string,
		internalPort uint16, internalClient string, enabled bool, description string, lease uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, proto string) error
	GetGenericPortMappingEntryCtx(ctx context.Context, index uint16) (remoteHost string, externalPort uint16,
		proto string, internalPort uint16, internalClient string, enabled bool, description string, lease uint32, err error)
	GetSpecificPortMappingEntryCtx(ctx context.Context, remoteHost string, externalPort uint16, proto string) (
		internalPort uint16, internalClient string, enabled bool, description string, lease uint32, err error)
	GetServiceClient() *goupnp.ServiceClient
}

// clientsAt reads the device description at loc and returns a client for
// each WAN connection service in it.
func clientsAt(ctx context.Context, loc *url.URL, opts UPnPOptions) ([]*IGD, error) {
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	root, err := fetchDescription(ctx, hc, loc)
	if err != nil {
		return nil, fmt.Errorf("device description %s: %w", loc, err)
	}
	var conns []igdConn
	ip2, _ := internetgateway2.NewWANIPConnection2ClientsFromRootDevice(root, loc)
	for _, c := range ip2 {
		conns = append(conns, c)
	}
	ip1, _ := internetgateway2.NewWANIPConnection1ClientsFromRootDevice(root, loc)
	for _, c := range ip1 {
		conns = append(conns, c)
	}
	ppp, _ := internetgateway2.NewWANPPPConnection1ClientsFromRootDevice(root, loc)
	for _, c := range ppp {
		conns = append(conns, c)
	}
	if len(conns) == 0 {
		return nil, fmt.Errorf("device %s (%q) has no WANIPConnection or WANPPPConnection service",
			loc, root.Device.FriendlyName)
	}
	// The IPv6 firewall control, for pinholes: IGDv2 puts it beside the
	// WAN connection services.
	var fc *internetgateway2.WANIPv6FirewallControl1
	if fcs, _ := internetgateway2.NewWANIPv6FirewallControl1ClientsFromRootDevice(root, loc); len(fcs) > 0 {
		fc = fcs[0]
		fc.SOAPClient.HTTPClient = *hc
	}
	var out []*IGD
	for _, c := range conns {
		sc := c.GetServiceClient()
		sc.SOAPClient.HTTPClient = *hc
		out = append(out, &IGD{opts: opts, conn: c, fc: fc, udn: root.Device.UDN})
	}
	return out, nil
}

// maxDescription bounds the size of a device description.
const maxDescription = 1 << 20

// fetchDescription GETs the device description at loc with hc (not
// goupnp's DeviceByURLCtx, which uses the process-wide
// http.DefaultClient: the caller's client may dial in another network
// namespace, or through a proxy).
func fetchDescription(ctx context.Context, hc *http.Client, loc *url.URL) (*goupnp.RootDevice, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	return parseDescription(io.LimitReader(resp.Body, maxDescription), loc)
}

// parseDescription decodes a UPnP device description fetched from loc.
// Its URLBase is taken only when it is an http URL on loc's host;
// otherwise the control URLs are resolved against loc, so that a
// description cannot send the SOAP requests to another host.
func parseDescription(r io.Reader, loc *url.URL) (*goupnp.RootDevice, error) {
	root := new(goupnp.RootDevice)
	d := xml.NewDecoder(r)
	d.DefaultSpace = goupnp.DeviceXMLNamespace
	d.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "utf-8", "us-ascii", "ascii", "iso-8859-1", "latin1":
			return input, nil // the names and URLs that matter are ASCII
		}
		return nil, fmt.Errorf("charset %q", charset)
	}
	if err := d.Decode(root); err != nil {
		return nil, err
	}
	base := loc
	if root.URLBaseStr != "" {
		if u, err := url.Parse(strings.TrimSpace(root.URLBaseStr)); err == nil && u.Scheme == "http" && u.Hostname() == loc.Hostname() {
			base = u
		}
	}
	root.SetURLBase(base)
	for _, s := range append(serviceTypes, internetgateway2.URN_WANIPv6FirewallControl_1) {
		for _, srv := range root.Device.FindService(s) {
			ctl := srv.ControlURL.URL
			if ctl.Scheme != "http" || ctl.Hostname() != loc.Hostname() {
				return nil, fmt.Errorf("%s's control URL %q is not on %s", s, ctl.String(), loc.Hostname())
			}
		}
	}
	return root, nil
}

// serviceTypes are the WAN connection services IGD works with, the
// preferred first.
var serviceTypes = []string{
	internetgateway2.URN_WANIPConnection_2,
	internetgateway2.URN_WANIPConnection_1,
	internetgateway2.URN_WANPPPConnection_1,
}

// IGD is a client of one WAN connection service (WANIPConnection:1 or :2,
// or WANPPPConnection:1) of a UPnP Internet Gateway Device. It implements
// Client, and lists the router's table with List. It is safe for
// concurrent use.
//
// When a request cannot reach the service's control URL (the router
// restarted and listens elsewhere now), it searches again, unicast to the
// router, for the same device and service, and retries once.
type IGD struct {
	opts UPnPOptions
	udn  string

	mu   sync.Mutex
	conn igdConn
	// fc is the device's WANIPv6FirewallControl service, or nil;
	// pinholes the IDs of the pinholes Map opened.
	fc       *internetgateway2.WANIPv6FirewallControl1
	pinholes map[pinholeKey]uint16
}

var _ Client = (*IGD)(nil)

// Protocol returns UPnP.
func (*IGD) Protocol() Protocol { return UPnP }

// Service returns the service type (its URN) and its control URL.
func (c *IGD) Service() (urn, controlURL string) {
	sc := c.current().GetServiceClient()
	u := sc.SOAPClient.EndpointURL
	return sc.Service.ServiceType, u.String()
}

// Gateway returns the router's address: the host of the control URL.
func (c *IGD) Gateway() netip.Addr {
	u := c.current().GetServiceClient().SOAPClient.EndpointURL
	a, _ := netip.ParseAddr(u.Hostname())
	return a.Unmap()
}

func (c *IGD) current() igdConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// ExternalAddress asks the router for its external address
// (GetExternalIPAddress). UPnP has no epoch: it is 0. A router that says
// 0.0.0.0 or nothing gives ErrExternalUnknown.
func (c *IGD) ExternalAddress(ctx context.Context) (netip.Addr, uint32, error) {
	var s string
	err := c.do(ctx, "GetExternalIPAddress", func(conn igdConn) (err error) {
		s, err = conn.GetExternalIPAddressCtx(ctx)
		return err
	})
	if err != nil {
		return netip.Addr{}, 0, err
	}
	a, err := parseExternal(s)
	return a, 0, err
}

// parseExternal reads GetExternalIPAddress's answer.
func parseExternal(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, fmt.Errorf("upnp: GetExternalIPAddress: %w", ErrExternalUnknown)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("upnp: GetExternalIPAddress: the router said %q: %w", s, err)
	}
	a = a.Unmap()
	if a.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("upnp: GetExternalIPAddress: %w", ErrExternalUnknown)
	}
	return a, nil
}

// Map makes or renews a mapping (AddPortMapping), with the protocol name
// in upper case as routers expect. An unspecified internal address is
// this host's address on the route to the router. An external port of 0
// lets an IGDv2 router (WANIPConnection:2, AddAnyPortMapping) choose, near
// the internal port, and asks others for the internal port. Leases are
// at most a week, as IGDv2 allows. A router that only takes permanent leases
// (error 725) is asked again with lease 0, and the mapping returned is
// permanent (Lease 0): the caller must Unmap it. The external address is
// left unknown when the router does not report one.
func (c *IGD) Map(ctx context.Context, r Request) (Mapping, error) {
	proto, err := upnpProto(r.Proto)
	if err != nil {
		return Mapping{}, err
	}
	if r.Internal.Port() == 0 {
		return Mapping{}, errors.New("upnp: map: internal port 0")
	}
	internal := r.Internal.Addr().Unmap()
	if !internal.IsValid() || internal.IsUnspecified() {
		internal, err = c.localAddr(ctx)
		if err != nil {
			return Mapping{}, err
		}
	}
	if internal.Is6() {
		return c.mapPinhole(ctx, r, internal)
	}
	ext := r.External
	if ext == 0 {
		ext = r.Internal.Port()
	}
	lease := leaseSeconds(r.Lease)
	add := func(lease uint32) error {
		return c.do(ctx, "AddPortMapping", func(conn igdConn) error {
			if v2, ok := conn.(*internetgateway2.WANIPConnection2); ok && r.External == 0 {
				// IGDv2 lets the router pick a free port near the one
				// asked for.
				got, err := v2.AddAnyPortMappingCtx(ctx, "", ext, proto, r.Internal.Port(), internal.String(),
					true, r.Description, lease)
				if err == nil && got != 0 {
					ext = got
				}
				return err
			}
			return conn.AddPortMappingCtx(ctx, "", ext, proto, r.Internal.Port(), internal.String(),
				true, r.Description, lease)
		})
	}
	err = add(lease)
	if lease != 0 && errorCode(err) == 725 {
		lease = 0
		err = add(0)
	}
	if err != nil {
		return Mapping{}, err
	}
	m := Mapping{
		Protocol:    UPnP,
		Proto:       strings.ToLower(proto),
		Internal:    netip.AddrPortFrom(internal, r.Internal.Port()),
		External:    netip.AddrPortFrom(netip.Addr{}, ext),
		Lease:       time.Duration(lease) * time.Second,
		Description: r.Description,
	}
	if a, _, err := c.ExternalAddress(ctx); err == nil {
		m.External = netip.AddrPortFrom(a, ext)
	}
	return m, nil
}

// maxLease is the longest lease IGDv2 allows (a week); Map asks for no
// more, from routers of either version.
const maxLease = 604800

// leaseSeconds turns a lease into UPnP's seconds, rounding up, at most a
// week; 0 stays permanent.
func leaseSeconds(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	s := (d + time.Second - 1) / time.Second
	if s > maxLease {
		return maxLease
	}
	return uint32(s)
}

// upnpProto is UPnP's name of the transport protocol: upper case only,
// as some routers take nothing else.
func upnpProto(p string) (string, error) {
	switch strings.ToLower(p) {
	case "tcp":
		return "TCP", nil
	case "udp":
		return "UDP", nil
	}
	return "", fmt.Errorf("upnp: protocol %q: want tcp or udp", p)
}

// localAddr is this host's address on the route to the router: the
// local address of a UDP socket connected to the control URL's host
// (connecting sends nothing).
func (c *IGD) localAddr(ctx context.Context) (netip.Addr, error) {
	u := c.current().GetServiceClient().SOAPClient.EndpointURL
	port := u.Port()
	if port == "" {
		port = "80"
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("upnp: this host's address towards %s: %w", u.Host, err)
	}
	defer conn.Close()
	ap, err := netip.ParseAddrPort(conn.LocalAddr().String())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("upnp: this host's address towards %s: %w", u.Host, err)
	}
	return ap.Addr().Unmap(), nil
}

// Unmap deletes a mapping (DeletePortMapping). A mapping the router no
// longer has (error 714, NoSuchEntryInArray) is not an error.
func (c *IGD) Unmap(ctx context.Context, m Mapping) error {
	proto, err := upnpProto(m.Proto)
	if err != nil {
		return err
	}
	if m.Internal.Addr().Unmap().Is6() {
		return c.unmapPinhole(ctx, m)
	}
	err = c.do(ctx, "DeletePortMapping", func(conn igdConn) error {
		return conn.DeletePortMappingCtx(ctx, "", m.External.Port(), proto)
	})
	if errorCode(err) == 714 {
		return nil
	}
	return err
}

// Lookup asks the router for its entry of m's external port and
// protocol (GetSpecificPortMappingEntry): the mapping as the router has
// it (the lease is what remains of it), and false when the router has
// none (error 714, NoSuchEntryInArray): a mapping that vanished before
// its lease ended.
func (c *IGD) Lookup(ctx context.Context, m Mapping) (Mapping, bool, error) {
	proto, err := upnpProto(m.Proto)
	if err != nil {
		return Mapping{}, false, err
	}
	if m.Internal.Addr().Unmap().Is6() {
		return c.lookupPinhole(ctx, m)
	}
	var (
		inPort uint16
		client string
		desc   string
		lease  uint32
	)
	err = c.do(ctx, "GetSpecificPortMappingEntry", func(conn igdConn) (err error) {
		inPort, client, _, desc, lease, err = conn.GetSpecificPortMappingEntryCtx(ctx, "", m.External.Port(), proto)
		return err
	})
	if errorCode(err) == 714 {
		return Mapping{}, false, nil
	}
	if err != nil {
		return Mapping{}, false, err
	}
	in, _ := netip.ParseAddr(strings.TrimSpace(client))
	return Mapping{
		Protocol:    UPnP,
		Proto:       strings.ToLower(proto),
		Internal:    netip.AddrPortFrom(in.Unmap(), inPort),
		External:    m.External,
		Lease:       time.Duration(lease) * time.Second,
		Description: desc,
	}, true, nil
}

// List reads the router's mapping table (GetGenericPortMappingEntry from
// index 0 until the router says the index is past the end: error 713, or
// 714 or 402 from routers that say it so; at most 1,024 entries). The
// mappings' external address is the router's, when it reports one.
func (c *IGD) List(ctx context.Context) ([]Mapping, error) {
	ext, _, err := c.ExternalAddress(ctx)
	if err != nil && !errors.Is(err, ErrExternalUnknown) {
		return nil, err
	}
	var out []Mapping
	for i := range maxListEntries {
		var (
			extPort, inPort uint16
			proto, client   string
			desc            string
			lease           uint32
		)
		err := c.do(ctx, "GetGenericPortMappingEntry", func(conn igdConn) (err error) {
			_, extPort, proto, inPort, client, _, desc, lease, err = conn.GetGenericPortMappingEntryCtx(ctx, uint16(i))
			return err
		})
		switch errorCode(err) {
		case 713, 714, 402:
			return out, nil
		}
		if err != nil {
			return out, err
		}
		in, _ := netip.ParseAddr(strings.TrimSpace(client))
		out = append(out, Mapping{
			Protocol:    UPnP,
			Proto:       strings.ToLower(proto),
			Internal:    netip.AddrPortFrom(in.Unmap(), inPort),
			External:    netip.AddrPortFrom(ext, extPort),
			Lease:       time.Duration(lease) * time.Second,
			Description: desc,
		})
	}
	return out, fmt.Errorf("upnp: GetGenericPortMappingEntry: more than %d entries; stopped there", maxListEntries)
}

// do runs a SOAP action, turning faults into *UPnPError. When the control
// URL cannot be reached (not a fault: the HTTP request failed), it
// searches again for the device and retries once.
func (c *IGD) do(ctx context.Context, action string, f func(igdConn) error) error {
	conn := c.current()
	err := f(conn)
	if err == nil {
		return nil
	}
	var fault *soap.SOAPFaultError
	if errors.As(err, &fault) {
		return faultError(action, fault)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("upnp: %s: %w", action, err)
	}
	fresh, rerr := c.rediscover(ctx)
	if rerr != nil {
		return fmt.Errorf("upnp: %s: %w (searching the router again: %v)", action, err, rerr)
	}
	if err := f(fresh); err != nil {
		if errors.As(err, &fault) {
			return faultError(action, fault)
		}
		return fmt.Errorf("upnp: %s (after finding the router again): %w", action, err)
	}
	return nil
}

// rediscover searches the router again (unicast to it, and multicast
// unless the options say not) for the same device and service type, and
// makes the new control URL the client's.
func (c *IGD) rediscover(ctx context.Context) (igdConn, error) {
	old := c.current()
	opts := c.opts
	if !opts.Gateway.IsValid() {
		opts.Gateway = c.Gateway()
	}
	if opts.Wait <= 0 || opts.Wait > time.Second {
		opts.Wait = time.Second
	}
	found, err := DiscoverUPnP(ctx, opts)
	if err != nil {
		return nil, err
	}
	st := old.GetServiceClient().Service.ServiceType
	for _, f := range found {
		if f.udn == c.udn && f.current().GetServiceClient().Service.ServiceType == st {
			c.mu.Lock()
			c.conn, c.fc = f.conn, f.fc
			c.mu.Unlock()
			return f.conn, nil
		}
	}
	return nil, fmt.Errorf("device %s with %s not found again", c.udn, st)
}

// UPnPError is a router's refusal of a UPnP action (a SOAP fault). It
// wraps ErrRefused.
type UPnPError struct {
	Action      string // the SOAP action, "AddPortMapping"
	Code        int    // the UPnP error code, 725
	Description string // the router's errorDescription, or the standard name of the code
}

func (e *UPnPError) Error() string {
	return fmt.Sprintf("upnp: %s: %v: error %d %s", e.Action, ErrRefused, e.Code, e.Description)
}

// Unwrap returns ErrRefused.
func (e *UPnPError) Unwrap() error { return ErrRefused }

// upnpErrorNames are the standard names of the IGD errors seen in the
// field, for routers that send a code without a description.
var upnpErrorNames = map[int]string{
	401: "Invalid Action",
	402: "Invalid Args",
	501: "Action Failed",
	606: "Action not authorized",
	// WANIPv6FirewallControl's.
	701: "PinholeSpaceExhausted",
	702: "FirewallDisabled",
	703: "InboundPinholeNotAllowed",
	704: "NoSuchEntry",
	705: "ProtocolNotSupported",
	706: "InternalPortWildcardingNotAllowed",
	707: "ProtocolWildcardingNotAllowed",
	708: "WildCardNotPermittedInSrcIP",
	709: "NoPacketSent",
	713: "SpecifiedArrayIndexInvalid",
	714: "NoSuchEntryInArray",
	715: "WildCardNotPermittedInSrcIP",
	716: "WildCardNotPermittedInExtPort",
	718: "ConflictInMappingEntry",
	724: "SamePortValuesRequired",
	725: "OnlyPermanentLeasesSupported",
	726: "RemoteHostOnlySupportsWildcard",
	727: "ExternalPortOnlySupportsWildcard",
	728: "NoPortMapsAvailable",
	729: "ConflictWithOtherMechanisms",
}

func faultError(action string, f *soap.SOAPFaultError) *UPnPError {
	e := &UPnPError{Action: action, Code: f.Detail.UPnPError.Errorcode,
		Description: strings.TrimSpace(f.Detail.UPnPError.ErrorDescription)}
	if e.Description == "" {
		e.Description = upnpErrorNames[e.Code]
	}
	if e.Description == "" {
		e.Description = strings.TrimSpace(f.FaultString)
	}
	return e
}

// errorCode is the UPnP error code in err, or 0.
func errorCode(err error) int {
	var e *UPnPError
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// String describes the client: its service and control URL.
func (c *IGD) String() string {
	urn, ctl := c.Service()
	short := urn
	if i := strings.LastIndex(urn, ":service:"); i >= 0 {
		short = urn[i+len(":service:"):]
	}
	return short + " at " + ctl
}

// oneLine joins errors on one line ("; "), each message once, keeping
// the first to unwrap; nil when there are none.
func oneLine(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var msgs []string
	for _, e := range errs {
		if m := e.Error(); !seen[m] {
			seen[m] = true
			msgs = append(msgs, m)
		}
	}
	if len(msgs) == 1 {
		return errs[0]
	}
	return fmt.Errorf("%w; %s", errs[0], strings.Join(msgs[1:], "; "))
}
