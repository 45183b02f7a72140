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
	if d.seen == nil {
		d.silent++
	}
	return d.nmapProbes(nil)
}
