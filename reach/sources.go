package reach

import (
	"net/netip"

	"github.com/portctl/portctl/firewall"
)

// classPrefixes are the source ranges of class c on host h.
func classPrefixes(c firewall.Class, h *firewall.Host) []netip.Prefix {
	return firewall.ClassPrefixes(c, h)
}

// evaluateFrom evaluates p from every address of from, split into the
// pieces the ruleset tells apart.
func evaluateFrom(rs *firewall.Ruleset, h *firewall.Host, p firewall.Packet, from []netip.Prefix) []firewall.Piece {
	return firewall.EvaluateFrom(rs, h, p, from)
}
