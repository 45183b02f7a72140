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
	"net/netip"
	"slices"
	"strings"

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
	r := host.Ephemeral
	reservedIn := 0
	var reserved []string
	for _, rr := range host.Reserved {
		reserved = append(reserved, rr.String())
		lo, hi := max(rr.First, r.First), min(rr.Last, r.Last)
		if lo <= hi {
			reservedIn += int(hi) - int(lo) + 1
		}
	}
	res := Report{
		Range: r.String(), Size: r.Len(), Reserved: reserved, Available: r.Len() - reservedIn,
		Default: host.EphemeralDefault, TCPTWReuse: host.TCPTWReuse,
		ByState: map[string]int{}, Groups: []Group{}, WarnPercent: warn,
	}
	if res.Reserved == nil {
		res.Reserved = []string{}
	}
	counts := map[groupKey]int{}
	for _, s := range socks {
		if !r.Contains(s.Local.Port()) || s.State == sockets.Listen {
			continue
		}
		res.InRange++
		key := s.State.Name()
		if s.Proto == sockets.UDP {
			key = "udp_" + key
		}
		res.ByState[key]++
		if s.Remote.Port() == 0 {
			continue // unconnected: does not consume a tuple
		}
		counts[groupKey{s.Proto, s.Local.Addr().Unmap(), s.Remote.Addr().Unmap(), s.Remote.Port()}]++
	}
	for k, n := range counts {
		res.Groups = append(res.Groups, Group{
			Protocol: k.proto.String(), Source: k.src.String(),
			Destination: netip.AddrPortFrom(k.dst, k.dport).String(),
			Sockets:     n, Share: 100 * float64(n) / float64(max(res.Available, 1)),
		})
	}
	slices.SortFunc(res.Groups, func(a, b Group) int {
		if a.Sockets != b.Sockets {
			return b.Sockets - a.Sockets
		}
		return cmp.Or(strings.Compare(a.Destination, b.Destination), strings.Compare(a.Source, b.Source), strings.Compare(a.Protocol, b.Protocol))
	})
	if len(res.Groups) > 0 && res.Groups[0].Share > warn {
		res.Exhausting = true
	}
	if len(res.Groups) > top {
		res.Groups = res.Groups[:top]
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
