package reach

import (
	"github.com/google/nftables/xt"

	"github.com/portctl/portctl/firewall"
)

// The iptables match types come from google/nftables/xt, which builds on
// Linux alone; elsewhere no rule holds them (xt_other.go).

// xtPorts reads the destination ports of an iptables match, its
// protocol, and whether it is negated.
func xtPorts(x *firewall.Xt) (ports [][2]uint16, proto uint8, negated bool) {
	if x.Target {
		return nil, 0, false
	}
	switch m := x.Info.(type) {
	case *xt.Tcp:
		if m.InvFlags&xt.TcpInvDestPorts != 0 {
			return nil, TCP, true
		}
		if m.DstPorts != [2]uint16{0, 65535} {
			ports = append(ports, m.DstPorts)
		}
		return ports, TCP, false
	case *xt.Udp:
		if m.InvFlags&xt.UdpInvDestPorts != 0 {
			return nil, UDP, true
		}
		if m.DstPorts != [2]uint16{0, 65535} {
			ports = append(ports, m.DstPorts)
		}
		return ports, UDP, false
	case *firewall.Multiport:
		if !m.Dst || m.Src {
			return nil, 0, false
		}
		if m.Invert {
			return nil, 0, true
		}
		return m.Ranges, 0, false
	}
	return nil, 0, false
}
