// Package ephemeral measures the use of a machine's ephemeral (client) port
// range: which sockets hold ports of it, and which (source, destination)
// groups come closest to exhausting it. Every connection of a group needs a
// distinct source port, so a group can hold at most the usable size of the
// range at once. The package only computes: the caller reads the socket
// table (sockets.List) and the settings (netconf.Read).
package ephemeral

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/sockets"
)

// Group is the sockets of one (protocol, source IP, destination IP,
// destination port): they share one budget of source ports, the usable size
// of the range.
type Group struct {
	Protocol    string  `json:"protocol"`
	Source      string  `json:"source"`
	Destination string  `json:"destination"`
	Sockets     int     `json:"sockets"`
	Share       float64 `json:"share_percent"`
}

// Report is the ephemeral port usage of one machine. Its JSON form is what
// `portctl ephemeral --json` prints and what the dashboard's API serves.
type Report struct {
	Range       string                      `json:"range"`
	Size        int                         `json:"size"`
	Reserved    []string                    `json:"reserved"`
	Available   int                         `json:"available"`
	Default     bool                        `json:"range_is_os_default"`
	TCPTWReuse  int                         `json:"tcp_tw_reuse"`
	InRange     int                         `json:"sockets_in_range"`
	ByState     map[string]int              `json:"by_state"`
	Groups      []Group                     `json:"groups"`
	Sockstat    map[string]map[string]int64 `json:"sockstat,omitempty"`
	WarnPercent float64                     `json:"warn_percent"`
	Exhausting  bool                        `json:"over_warn"`
	Advice      []string                    `json:"advice"`
}

type groupKey struct {
	proto    sockets.Proto
	src, dst netip.Addr
	dport    uint16
}

// Usage computes the report from the host's settings and its sockets: the
// sockets whose local port lies in the range by state, and the top busiest
// groups. Exhausting is set when the busiest group uses more than warn
// percent of the usable range.
func Usage(host netconf.Host, socks []sockets.Socket, warn float64, top int) Report {
	c := NewCounter(host)
	for i := range socks { // listeners first: see Counter.Add
		if socks[i].State == sockets.Listen {
			c.Add(&socks[i])
		}
	}
	for i := range socks {
		if socks[i].State != sockets.Listen {
			c.Add(&socks[i])
		}
	}
	return c.Report(warn, top)
}

// Counter computes a Report one socket at a time, so that a caller walking
// a large socket table (sockets.Walk) never holds it whole. A Counter is
// not safe for concurrent use.
type Counter struct {
	host    netconf.Host
	inRange int
	byState map[string]int
	groups  map[groupKey]int
	served  map[uint16]bool // ports with a TCP listener
}

// NewCounter returns a Counter for the host's range.
func NewCounter(host netconf.Host) *Counter {
	return &Counter{host: host, byState: map[string]int{}, groups: map[groupKey]int{}, served: map[uint16]bool{}}
}

// Add counts s if its local port lies in the range. A server's port in the
// range is not client use: listeners do not count, nor do the connections
// they accepted, which share their port. Add listeners before connections,
// as the kernel's dump (and so sockets.Walk) lists them.
func (c *Counter) Add(s *sockets.Socket) {
	if !c.host.Ephemeral.Contains(s.Local.Port()) {
		return
	}
	if s.State == sockets.Listen {
		c.served[s.Local.Port()] = true
		return
	}
	if s.Proto != sockets.UDP && c.served[s.Local.Port()] {
		return
	}
	c.inRange++
	key := s.State.Name()
	if s.Proto == sockets.UDP {
		key = "udp_" + key
	}
	c.byState[key]++
	if s.Remote.Port() == 0 {
		return // unconnected: does not consume a tuple
	}
	c.groups[groupKey{s.Proto, s.Local.Addr().Unmap(), s.Remote.Addr().Unmap(), s.Remote.Port()}]++
}

// Report returns the usage counted so far, with the top busiest groups.
func (c *Counter) Report(warn float64, top int) Report {
	r := c.host.Ephemeral
	reserved := []string{}
	for _, rr := range c.host.Reserved {
		reserved = append(reserved, rr.String())
	}
	res := Report{
		Range: r.String(), Size: r.Len(), Reserved: reserved, Available: c.host.EphemeralUsable(),
		Default: c.host.EphemeralDefault, TCPTWReuse: c.host.TCPTWReuse,
		InRange: c.inRange, ByState: maps.Clone(c.byState), Groups: []Group{}, WarnPercent: warn,
	}
	type counted struct {
		k groupKey
		n int
	}
	all := make([]counted, 0, len(c.groups))
	for k, n := range c.groups {
		all = append(all, counted{k, n})
	}
	// The busiest first; ties in address order, so the output is stable.
	slices.SortFunc(all, func(a, b counted) int {
		if a.n != b.n {
			return b.n - a.n
		}
		return cmp.Or(a.k.dst.Compare(b.k.dst), cmp.Compare(a.k.dport, b.k.dport), a.k.src.Compare(b.k.src), cmp.Compare(a.k.proto, b.k.proto))
	})
	for i, g := range all {
		share := 100 * float64(g.n) / float64(max(res.Available, 1))
		if i == 0 && share > warn {
			res.Exhausting = true
		}
		if i >= top {
			break
		}
		res.Groups = append(res.Groups, Group{
			Protocol: g.k.proto.String(), Source: g.k.src.String(),
			Destination: netip.AddrPortFrom(g.k.dst, g.k.dport).String(),
			Sockets:     g.n, Share: share,
		})
	}
	res.Advice = advice(res)
	return res
}

func advice(res Report) []string {
	var adv []string
	if res.Exhausting {
		g := res.Groups[0]
		adv = append(adv, fmt.Sprintf("%s → %s uses %.1f%% of the %d usable source ports: new connections to it will fail with EADDRNOTAVAIL when it reaches 100%%", g.Source, g.Destination, g.Share, res.Available))
		adv = append(adv, "reuse connections (HTTP keep-alive, connection pools) instead of opening one per request")
		adv = append(adv, "spread the load over more destination addresses or ports, or more source addresses: each (source, destination, port) has its own budget")
	}
	if res.Size < 16384 {
		adv = append(adv, fmt.Sprintf("the range %s is narrow (%d ports): widen it with sysctl net.ipv4.ip_local_port_range=\"1024 65535\" (keep your servers' ports out of it, or list them in ip_local_reserved_ports)", res.Range, res.Size))
	}
	if tw := res.ByState["time_wait"]; tw > res.Available/4 && res.TCPTWReuse == 0 {
		adv = append(adv, fmt.Sprintf("%d sockets sit in TIME-WAIT: net.ipv4.tcp_tw_reuse=1 lets new outgoing connections reuse them safely", tw))
	}
	return adv
}
