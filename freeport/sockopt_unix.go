//go:build !windows

package freeport

import (
	"errors"
	"syscall"
)

// noReuseAddr turns SO_REUSEADDR off (Go turns it on for listeners), so
// that a port held on a specific address or in TIME_WAIT counts as busy.
func noReuseAddr(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0)
	})
	return errors.Join(err, serr)
}

// noFamily reports whether err says the host has no IPv6 at all.
func noFamily(err error) bool {
	return errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EPROTONOSUPPORT)
}

// busy reports whether a bind error means the port is taken, or not ours
// to take (a privileged port).
func busy(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}
