package registry

import (
	"strings"
)

// Protocol is a transport protocol, or a set of them. The single protocols
// are distinct bits, so a set such as TCP|UDP is a Protocol too.
type Protocol uint8

// The transport protocols the IANA registry assigns ports for.
const (
	TCP Protocol = 1 << iota
	UDP
	SCTP
	DCCP

	// AnyProtocol is the set of every protocol.
	AnyProtocol = TCP | UDP | SCTP | DCCP
)

var protocolNames = [...]struct {
	p    Protocol
	name string
}{{TCP, "tcp"}, {UDP, "udp"}, {SCTP, "sctp"}, {DCCP, "dccp"}}

// String returns the protocol's lowercase name; a set is written "tcp/udp".
func (p Protocol) String() string {
	var parts []string
	for _, pn := range protocolNames {
		if p&pn.p != 0 {
			parts = append(parts, pn.name)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, "/")
}

// Has reports whether every protocol of q is in p.
func (p Protocol) Has(q Protocol) bool { return q != 0 && p&q == q }

// Each returns the single protocols in p, in the order tcp, udp, sctp, dccp.
func (p Protocol) Each() []Protocol {
	var out []Protocol
	for _, pn := range protocolNames {
		if p&pn.p != 0 {
			out = append(out, pn.p)
		}
	}
	return out
}

// ParseProtocol parses "tcp", "udp", "sctp" or "dccp" (any case), or a set
// of them joined by "/" or ",", such as "tcp/udp".
func ParseProtocol(s string) (Protocol, error) {
	var p Protocol
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == ',' }) {
		found := false
		for _, pn := range protocolNames {
			if strings.EqualFold(strings.TrimSpace(part), pn.name) {
				p |= pn.p
				found = true
			}
		}
		if !found {
			return 0, syntaxf("unknown protocol %q (want tcp, udp, sctp or dccp)", s)
		}
	}
	if p == 0 {
		return 0, syntaxf("unknown protocol %q (want tcp, udp, sctp or dccp)", s)
	}
	return p, nil
}

// MarshalText encodes the protocol as its String form.
func (p Protocol) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText decodes a protocol from its String form.
func (p *Protocol) UnmarshalText(b []byte) error {
	q, err := ParseProtocol(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}
