package probe

import (
	"errors"
	"slices"
	"syscall"
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

// udp identifies a UDP service: each probe is one datagram on a connected
// socket, so that an ICMP port unreachable shows as a refused read.
func (d *detector) udp() Service {
	var first, rest []udpProbe
	for _, p := range udpProbes {
		if slices.Contains(p.ports, d.t.Addr.Port()) {
			first = append(first, p)
		} else {
			rest = append(rest, p)
		}
	}
	for _, p := range append(first, rest...) {
		if !d.more() {
			break
		}
		c, err := d.dial("udp")
		if err != nil {
			break
		}
		b := d.exchange(c, p.req, func([]byte) bool { return true })
		if s, ok := p.match(b); ok {
			s.Probe = p.name
			if p.name == "ntp" && d.more() {
				// ntpd and NTPsec tell their version to a control query.
				if a := d.exchange(c, ntpReadVar, func([]byte) bool { return true }); len(a) > 0 {
					matchNTPControl(&s, a)
				}
			}
			c.Close()
			return s
		}
		c.Close()
		if errors.Is(d.err, syscall.ECONNREFUSED) {
			return Service{Extra: []Field{{"state", "closed (port unreachable)"}}}
		}
	}
	return d.nmapProbes()
}
