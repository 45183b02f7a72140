package reach

import (
	"slices"

	"github.com/portctl/portctl/firewall"
)

// Opening is a port range a rule opens: it accepts packets to those
// ports, or DNATs them elsewhere.
type Opening struct {
	Proto uint8     `json:"-"` // TCP or UDP
	Ports [2]uint16 `json:"ports"`
	DNAT  bool      `json:"dnat,omitempty"`
	// FromSome is set when the rule also matches the source address: it
	// opens the ports to some sources only.
	FromSome     bool `json:"from_some,omitempty"`
	Rule         *firewall.Rule
	Table, Chain string
}

// MaxOpenings bounds what Openings returns: a ruleset that lists every
// port one by one says no more with all of them.
const MaxOpenings = 4096

// Openings finds the port ranges the rules of rs accept or DNAT by
// destination port, with an equality, a range, a set of ports, or an
// iptables tcp, udp or multiport match; negated matches are left out
// (they open every port but some). They are candidates to evaluate:
// another rule may still drop them.
func Openings(rs *firewall.Ruleset) []Opening {
	var out []Opening
	for _, t := range rs.Tables {
		if t.Dormant {
			continue
		}
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				for _, o := range ruleOpenings(t, r) {
					o.Table, o.Chain = t.Name, c.Name
					key := func(x Opening) bool { return x.Proto == o.Proto && x.Ports == o.Ports }
					if !slices.ContainsFunc(out, key) {
						out = append(out, o)
					}
					if len(out) >= MaxOpenings {
						return out
					}
				}
			}
		}
	}
	return out
}
