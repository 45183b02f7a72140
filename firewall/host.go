package firewall

import "net/netip"

// route finds the route the kernel would pick for dst: the local table
// first, then the longest prefix of the main table.
func (h *Host) route(dst netip.Addr) (Route, bool) {
	best, found := Route{}, false
	for _, r := range h.Routes {
		if r.Dst.Addr().Is4() != dst.Is4() || !r.Dst.Contains(dst) {
			continue
		}
		loc := r.Type == "local" || r.Type == "broadcast"
		bestLoc := best.Type == "local" || best.Type == "broadcast"
		if !found || loc && !bestLoc || loc == bestLoc && r.Dst.Bits() > best.Dst.Bits() {
			best, found = r, true
		}
	}
	return best, found
}

// isLocal says whether dst is an address of this machine.
func (h *Host) isLocal(dst netip.Addr) bool {
	if dst.IsLoopback() {
		return true
	}
	if r, ok := h.route(dst); ok && r.Type == "local" {
		return true
	}
	for _, i := range h.Interfaces {
		for _, a := range i.Addrs {
			if a.Addr() == dst {
				return true
			}
		}
	}
	return false
}
