package probe

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// udpProbe is one of this package's own UDP probes.
type udpProbe struct {
	name  string
	ports []uint16
	req   []byte
	match func([]byte) (Service, bool)
}

var udpProbes = []udpProbe{
	{"dns-version-bind", []uint16{53, 5353}, dnsVersionBind(), func(b []byte) (Service, bool) { return matchDNS(b, false) }},
	{"ntp", []uint16{123}, ntpClientRequest(), matchNTP},
	{"snmp", []uint16{161, 162}, snmpGet(), matchSNMP},
	{"quic", []uint16{443, 4433, 8443}, quicVersionNegotiation(), matchQUIC},
	{"stun", []uint16{3478, 3479, 5349}, stunBindingRequest(), matchSTUN},
	{"sip", []uint16{5060, 5061}, sipOptions(), matchSIP},
	{"mumble-ping", []uint16{64738}, mumblePing, matchMumble},
}

// udp identifies a UDP service. Its probes go out together on one
// connected socket (a server answers the one it understands, and an ICMP
// port unreachable shows as a refused read), so the wait is one round
// trip, not one per probe; answers are checked against every matcher.
func (d *detector) udp() Service {
	order := portFirst(udpProbes, d.t.Addr.Port(), func(p udpProbe) []uint16 { return p.ports })
	c, err := d.dial("udp")
	if err != nil {
		return Service{}
	}
	defer c.Close()
	// TFTP answers from a port of its own (RFC 1350 §4), which a
	// connected socket never sees: its request goes out on a socket of
	// its own, read once the others' wait is over.
	var tftp *net.UDPConn
	if lc, err := net.ListenUDP("udp", nil); err == nil {
		tftp = lc
		defer tftp.Close()
		tftp.SetWriteDeadline(time.Now().Add(d.wait()))
		d.probes++
		tftp.WriteToUDPAddrPort(tftpReadRequest(), d.t.Addr)
	}
	c.SetWriteDeadline(time.Now().Add(d.wait()))
	for _, p := range order {
		d.probes++
		if _, err := c.Write(p.req); err != nil {
			d.err = err
			break
		}
	}
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(d.wait())
	for d.err == nil && d.ctx.Err() == nil {
		c.SetReadDeadline(deadline)
		n, err := c.Read(buf)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				d.err = err
			}
			break
		}
		b := buf[:n]
		d.saw(b)
		for _, p := range order {
			s, ok := p.match(b)
			if !ok {
				continue
			}
			s.Probe = p.name
			if p.name == "ntp" && d.more() {
				// ntpd and NTPsec tell their version to a control query.
				if a := d.exchange(c, ntpReadVar, func([]byte) bool { return true }); len(a) > 0 {
					matchNTPControl(&s, a)
				}
			}
			return s
		}
	}
	if errors.Is(d.err, syscall.ECONNREFUSED) {
		return Service{Extra: []Field{{"state", "closed (port unreachable)"}}}
	}
	if tftp != nil {
		tftp.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		if n, from, err := tftp.ReadFromUDPAddrPort(buf); err == nil && from.Addr().Unmap() == d.t.Addr.Addr().Unmap() {
			d.saw(buf[:n])
			if s, ok := matchTFTP(buf[:n]); ok {
				return s
			}
		}
	}
	if d.seen == nil {
		d.silent++
	}
	return d.nmapProbes(nil)
}
