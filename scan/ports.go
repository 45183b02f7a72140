package scan

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/portctl/portctl/registry"
)

// Ports is a set of (protocol, port) pairs to probe: TCP ports in
// ascending order, then UDP ports in ascending order. A Ports is read-only
// once ParsePorts returns it and is safe for concurrent use.
type Ports struct {
	ports []uint16 // the TCP ports, then the UDP ports, each ascending
	nTCP  int
}

// Len returns the number of (protocol, port) pairs.
func (p *Ports) Len() int { return len(p.ports) }

// At returns the i-th pair (0 <= i < Len): TCP ports first, then UDP
// ports, each in ascending order. For i out of range it returns (0, 0).
func (p *Ports) At(i int) (registry.Protocol, uint16) {
	switch {
	case i < 0 || i >= len(p.ports):
		return 0, 0
	case i < p.nTCP:
		return registry.TCP, p.ports[i]
	}
	return registry.UDP, p.ports[i]
}

// Protocols returns the protocols that have at least one port in the set.
func (p *Ports) Protocols() registry.Protocol {
	var protos registry.Protocol
	if p.nTCP > 0 {
		protos |= registry.TCP
	}
	if len(p.ports) > p.nTCP {
		protos |= registry.UDP
	}
	return protos
}

// ParsePorts parses a port spec, as nmap's -p does: a comma-separated list
// of items, each one of
//
//	22          a port, 1-65535 (port 0 cannot be probed)
//	1-1024      an inclusive range; "-100" is 1-100, "60000-" is 60000-65535
//	-           every port, 1-65535
//	top:100     the N most commonly open ports by portctl's ranking
//	ssh         a service name, looked up in reg for the protocol
//
// An item may start with a protocol prefix, "T:" or "U:", which applies to
// it and the items after it until the next prefix: "T:80,443,U:53" is TCP
// 80 and 443 and UDP 53. Items before any prefix are for defaultProto,
// which is TCP, UDP or both (0 means TCP). Duplicates are merged.
//
// A nil reg means registry.Builtin(). Malformed specs, port 0, ports above
// 65535, backward ranges and unknown service names are refused with an
// error that matches registry.ErrSyntax and names the bad value.
func ParsePorts(spec string, reg *registry.Registry, defaultProto registry.Protocol) (*Ports, error) {
	if defaultProto == 0 {
		defaultProto = registry.TCP
	}
	if defaultProto&^(registry.TCP|registry.UDP) != 0 {
		return nil, fmt.Errorf("scan: cannot scan %s ports (want tcp, udp or both)", defaultProto)
	}
	if reg == nil {
		reg = registry.Builtin()
	}
	if strings.TrimSpace(spec) == "" {
		return nil, specErrorf("empty port list (want ports such as 22,80,443, a range such as 1-1024, - for all, top:N or service names)")
	}
	var tcp, udp portSet
	set := func(proto registry.Protocol) *portSet {
		if proto == registry.TCP {
			return &tcp
		}
		return &udp
	}
	protos := defaultProto
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, specErrorf("empty item in port list %q (want items separated by single commas)", spec)
		}
		body := item
		if len(item) >= 2 && item[1] == ':' {
			switch item[0] {
			case 'T', 't':
				protos = registry.TCP
			case 'U', 'u':
				protos = registry.UDP
			default:
				return nil, specErrorf("unknown protocol prefix %q in port item %q (want T: for TCP or U: for UDP)", item[:2], item)
			}
			body = strings.TrimSpace(item[2:])
			if body == "" {
				return nil, specErrorf("port item %q has no ports after its prefix", item)
			}
		}
		if err := portParseItem(body, reg, protos, set); err != nil {
			return nil, err
		}
	}
	p := &Ports{}
	p.ports = tcp.appendTo(p.ports)
	p.nTCP = len(p.ports)
	p.ports = udp.appendTo(p.ports)
	return p, nil
}

// portParseItem adds the ports of one item, without its prefix, to the
// sets of protos.
func portParseItem(item string, reg *registry.Registry, protos registry.Protocol, set func(registry.Protocol) *portSet) error {
	if len(item) > 4 && strings.EqualFold(item[:4], "top:") {
		n, err := strconv.ParseUint(item[4:], 10, 32)
		switch {
		case err != nil && strings.Trim(item[4:], "0123456789") == "":
			return specErrorf("%q asks for too many ports (want top:N with N from 1 to 65535)", item)
		case err != nil:
			return specErrorf("%q: %q is not a number (want top:N with N from 1 to 65535)", item, item[4:])
		case n == 0:
			return specErrorf("%q asks for no ports (want top:N with N from 1 to 65535)", item)
		case n > 65535:
			return specErrorf("%q asks for more ports than there are (want top:N with N from 1 to 65535)", item)
		}
		for _, proto := range protos.Each() {
			set(proto).addTop(proto, int(n))
		}
		return nil
	}
	if strings.EqualFold(item, "top:") {
		return specErrorf("%q has no count (want top:N with N from 1 to 65535)", item)
	}
	if strings.Trim(item, "0123456789-") == "" {
		first, last, err := portParseRange(item)
		if err != nil {
			return err
		}
		for _, proto := range protos.Each() {
			set(proto).addRange(first, last)
		}
		return nil
	}
	return portParseName(item, reg, protos, set)
}

// portParseRange parses "A", "A-B", "-B", "A-" or "-".
func portParseRange(item string) (first, last uint16, err error) {
	a, b, isRange := strings.Cut(item, "-")
	if !isRange {
		p, err := portParseNumber(a)
		return p, p, err
	}
	if strings.Contains(b, "-") {
		return 0, 0, specErrorf("port range %q has more than one \"-\" (want A-B)", item)
	}
	first, last = 1, 65535
	if a != "" {
		if first, err = portParseNumber(a); err != nil {
			return 0, 0, err
		}
	}
	if b != "" {
		if last, err = portParseNumber(b); err != nil {
			return 0, 0, err
		}
	}
	if first > last {
		return 0, 0, specErrorf("port range %q runs backwards (want A-B with A <= B)", item)
	}
	return first, last, nil
}

// portParseNumber parses a port 1-65535 written in decimal digits.
func portParseNumber(s string) (uint16, error) {
	t := strings.TrimLeft(s, "0")
	switch {
	case t == "" && s != "":
		return 0, specErrorf("port 0 cannot be scanned (want 1-65535)")
	case len(t) > 5:
		return 0, specErrorf("port %s is out of range (want 1-65535)", s)
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return 0, specErrorf("port %q is not a number (want 1-65535)", s)
	}
	if n > 65535 {
		return 0, specErrorf("port %s is out of range (want 1-65535)", s)
	}
	return uint16(n), nil
}

// portParseName adds the ports the registry assigns to a service name.
func portParseName(name string, reg *registry.Registry, protos registry.Protocol, set func(registry.Protocol) *portSet) error {
	if strings.ContainsAny(name, ": \t") {
		return specErrorf("port item %q is not a port, a range, top:N or a service name", name)
	}
	found := false
	for _, proto := range protos.Each() {
		for _, a := range reg.Name(name, proto) {
			r := a.Range()
			if r.First == 0 {
				if r.Last == 0 {
					continue
				}
				r.First = 1
			}
			set(proto).addRange(r.First, r.Last)
			found = true
		}
	}
	if found {
		return nil
	}
	if other := reg.Name(name, 0); len(other) > 0 {
		return specErrorf("service %q has no %s port (it is %s %d; want a service name of the protocol scanned)", name, protos, other[0].Proto, other[0].Port)
	}
	return specErrorf("unknown service %q (want a port number, a range, top:N or a service name such as ssh)", name)
}

// portSet is a bitmap of ports 0-65535.
type portSet [65536 / 64]uint64

func (s *portSet) add(p uint16)      { s[p/64] |= 1 << (p % 64) }
func (s *portSet) has(p uint16) bool { return s[p/64]&(1<<(p%64)) != 0 }

func (s *portSet) addRange(first, last uint16) {
	for p := int(first); p <= int(last); p++ {
		s.add(uint16(p))
	}
}

// addTop adds the n top-ranked ports of proto (see topports.go).
func (s *portSet) addTop(proto registry.Protocol, n int) {
	ranked := topTCP[:]
	if proto == registry.UDP {
		ranked = topUDP[:]
	}
	if n <= len(ranked) {
		for _, p := range ranked[:n] {
			s.add(p)
		}
		return
	}
	var listed portSet
	for _, p := range ranked {
		s.add(p)
		listed.add(p)
	}
	n -= len(ranked)
	for p := 1; p <= 65535 && n > 0; p++ {
		if !listed.has(uint16(p)) {
			s.add(uint16(p))
			n--
		}
	}
}

// appendTo appends the ports in the set, ascending, to dst.
func (s *portSet) appendTo(dst []uint16) []uint16 {
	for w, word := range s {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			dst = append(dst, uint16(w*64+b))
			word &= word - 1
		}
	}
	return dst
}
