//go:build !linux

package portmap

import (
	"errors"
	"net/netip"
)

// DefaultGateway is not read on this OS yet: name the router.
func DefaultGateway() (netip.Addr, error) {
	return netip.Addr{}, errors.New("reading the default gateway is supported on Linux only")
}

// DefaultGateway6 is not read on this OS yet: name the router.
func DefaultGateway6() (netip.Addr, error) {
	return netip.Addr{}, errors.New("reading the default gateway is supported on Linux only")
}
