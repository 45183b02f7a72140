package nmapdb

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portctl/portctl/registry"
)

// Defaults nmap applies to a probe without the directive.
const (
	DefaultRarity     = 5
	DefaultTotalWait  = 5 * time.Second // totalwaitms
	DefaultTCPWrapped = 2 * time.Second // tcpwrappedms, TCP probes only
)

// NullProbe is the name of the probe that sends nothing and reads the
// banner a service volunteers. Every TCP probe falls back on its matches.
const NullProbe = "NULL"

// DB is a parsed nmap-service-probes file. It is read-only once Parse
// returns it and safe for concurrent use, as long as callers do not change
// its fields.
type DB struct {
	// Probes in file order, the NULL probe included.
	Probes []*Probe
	// Exclude holds the ports the Exclude directive says not to probe
	// (printers print whatever they receive).
	Exclude ProtoPorts
}

// Probe is a Probe directive and the lines that follow it. Like its DB, it
// is read-only once Parse returns.
type Probe struct {
	Name    string            // "NULL", "GetRequest", ...
	Proto   registry.Protocol // registry.TCP or registry.UDP
	Payload []byte            // what to send, unescaped; empty for NULL
	// NoPayload reports the no-payload option: the payload is not to be
	// used as a UDP payload of a port scan.
	NoPayload bool

	Ports    PortSet // ports the service this probe detects commonly uses
	SSLPorts PortSet // the same, for the service wrapped in SSL/TLS

	TotalWait  time.Duration // how long to wait for a response; DefaultTotalWait unless set
	TCPWrapped time.Duration // a close before this is tcpwrapped; DefaultTCPWrapped for TCP unless set
	Rarity     int           // 1 (common) to 9 (rare); DefaultRarity unless set

	// Fallback names the probes whose matches are tried, in this order,
	// after this probe's own (the fallback directive).
	Fallback []string

	// Matches holds the match and softmatch lines, in file order.
	Matches []*Match
}

// PortRange is an inclusive range of ports.
type PortRange struct {
	First, Last uint16
}

// PortSet is a set of ports, as sorted, non-overlapping, non-adjacent
// ranges (as Parse builds it).
type PortSet []PortRange

// Contains reports whether port is in the set.
func (s PortSet) Contains(port uint16) bool {
	i, found := slices.BinarySearchFunc(s, port, func(r PortRange, p uint16) int { return cmp.Compare(r.First, p) })
	if found {
		return true
	}
	return i > 0 && s[i-1].Last >= port
}

// String writes the set as nmap does: "21-25,53,80".
func (s PortSet) String() string {
	var sb strings.Builder
	for i, r := range s {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(int(r.First)))
		if r.Last != r.First {
			sb.WriteByte('-')
			sb.WriteString(strconv.Itoa(int(r.Last)))
		}
	}
	return sb.String()
}

// normalize sorts ranges and merges those that overlap or touch.
func normalize(rs []PortRange) PortSet {
	slices.SortFunc(rs, func(a, b PortRange) int { return cmp.Compare(a.First, b.First) })
	var out PortSet
	for _, r := range rs {
		if n := len(out); n > 0 && int(r.First) <= int(out[n-1].Last)+1 {
			out[n-1].Last = max(out[n-1].Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}

// ProtoPorts is a set of ports per transport protocol.
type ProtoPorts struct {
	TCP, UDP, SCTP PortSet
}

// Contains reports whether port is in the set for proto (a single
// protocol).
func (p ProtoPorts) Contains(proto registry.Protocol, port uint16) bool {
	switch proto {
	case registry.TCP:
		return p.TCP.Contains(port)
	case registry.UDP:
		return p.UDP.Contains(port)
	case registry.SCTP:
		return p.SCTP.Contains(port)
	}
	return false
}

// HasPort reports whether the probe's ports or sslports directive lists
// port.
func (p *Probe) HasPort(port uint16) bool {
	return p.Ports.Contains(port) || p.SSLPorts.Contains(port)
}

// Probe returns the first probe called name, of either protocol, or nil.
// Some names (Help, SIPOptions, ...) have a TCP and a UDP probe; ProbeFor
// picks one.
func (db *DB) Probe(name string) *Probe {
	for _, p := range db.Probes {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// ProbeFor returns the probe called name for proto, or nil.
func (db *DB) ProbeFor(proto registry.Protocol, name string) *Probe {
	for _, p := range db.Probes {
		if p.Name == name && p.Proto == proto {
			return p
		}
	}
	return nil
}

// fallback resolves a fallback name of probe p: the probe of that name and
// p's protocol, or else of any protocol (the file lets TCP DNS probes fall
// back on the UDP DNS probes' matches).
func (db *DB) fallback(p *Probe, name string) *Probe {
	if f := db.ProbeFor(p.Proto, name); f != nil {
		return f
	}
	return db.Probe(name)
}

// ForPort returns the probes of proto in the order a scanner should send
// them to port:
//
//  1. for TCP, the NULL probe, which sends nothing and reads a banner;
//  2. the probes whose ports or sslports list port, in file order;
//  3. the others, by rarity (most common first), in file order within a
//     rarity.
//
// nmap's --version-intensity N tries the probes of group 2 whatever their
// rarity, and those of group 3 up to rarity N (7 by default): stop at the
// first probe of group 3 (!p.HasPort(port)) whose Rarity is above N.
// ForPort does not look at Exclude; see DB.Exclude.
func (db *DB) ForPort(proto registry.Protocol, port uint16) []*Probe {
	var null, listed, rest []*Probe
	for _, p := range db.Probes {
		switch {
		case p.Proto != proto:
		case p.Name == NullProbe && proto == registry.TCP:
			null = append(null, p)
		case p.HasPort(port):
			listed = append(listed, p)
		default:
			rest = append(rest, p)
		}
	}
	slices.SortStableFunc(rest, func(a, b *Probe) int { return cmp.Compare(a.Rarity, b.Rarity) })
	return slices.Concat(null, listed, rest)
}

// MatchAll identifies the service that sent resp in answer to probe p. It
// tries p's match lines, then those of the probes p's fallback directive
// names, in order, then, for a TCP probe, those of the NULL probe (a
// service may greet before it reads the probe), as nmap does. The first
// hard match wins; the first softmatch is returned only if no line matches
// hard. Each probe is tried once even if named twice. A nil p matches
// nothing.
func (db *DB) MatchAll(p *Probe, resp []byte) (Result, bool) {
	if p == nil {
		return Result{}, false
	}
	chain := []*Probe{p}
	for _, name := range p.Fallback {
		if f := db.fallback(p, name); f != nil {
			chain = append(chain, f)
		}
	}
	if p.Proto == registry.TCP {
		if null := db.ProbeFor(registry.TCP, NullProbe); null != nil {
			chain = append(chain, null)
		}
	}
	subject := latin1(resp)
	var soft Result
	found := false
	for i, q := range chain {
		if slices.Contains(chain[:i], q) {
			continue
		}
		for _, m := range q.Matches {
			if found && m.Soft {
				continue // only a hard match can improve on a softmatch
			}
			res, ok := m.match(subject)
			if !ok {
				continue
			}
			if !res.Soft {
				return res, true
			}
			soft, found = res, true
		}
	}
	return soft, found
}
