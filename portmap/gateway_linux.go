package portmap

import (
	"errors"
	"net/netip"
	"os"
)

// DefaultGateway is the gateway of this namespace's default IPv4 route.
func DefaultGateway() (netip.Addr, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return netip.Addr{}, err
	}
	defer f.Close()
	gw, _, ok, err := ParseRouteTable(f)
	if err != nil {
		return netip.Addr{}, err
	}
	if !ok {
		return netip.Addr{}, errors.New("no default route through a gateway")
	}
	return gw, nil
}
