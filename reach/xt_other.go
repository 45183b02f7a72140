//go:build !linux

package reach

import "github.com/portctl/portctl/firewall"

// xtPorts finds nothing: iptables matches are decoded on Linux alone.
func xtPorts(x *firewall.Xt) (ports [][2]uint16, proto uint8, negated bool) {
	return nil, 0, false
}
