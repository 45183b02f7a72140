package portmap

import (
	"errors"
	"io"
	"net/netip"
	"os"
)

// DefaultGateway is the gateway of this namespace's default IPv4 route.
func DefaultGateway() (netip.Addr, error) {
	return readGateway("/proc/net/route", ParseRouteTable)
}

// DefaultGateway6 is the gateway of this namespace's default IPv6 route;
// a link-local one has its interface as its zone.
func DefaultGateway6() (netip.Addr, error) {
	return readGateway("/proc/net/ipv6_route", ParseIPv6RouteTable)
}

func readGateway(path string, parse func(io.Reader) (netip.Addr, string, bool, error)) (netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return netip.Addr{}, err
	}
	defer f.Close()
	gw, _, ok, err := parse(f)
	if err != nil {
		return netip.Addr{}, err
	}
	if !ok {
		return netip.Addr{}, errors.New("no default route through a gateway")
	}
	return gw, nil
}
