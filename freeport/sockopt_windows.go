package freeport

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

// noReuseAddr does nothing: Go leaves SO_REUSEADDR off on Windows, where
// it would let a socket take over a port in use.
func noReuseAddr(network, address string, c syscall.RawConn) error { return nil }

// noFamily reports whether err says the host has no IPv6 at all.
func noFamily(err error) bool {
	return errors.Is(err, windows.WSAEAFNOSUPPORT) || errors.Is(err, windows.WSAEADDRNOTAVAIL) || errors.Is(err, windows.WSAEPROTONOSUPPORT)
}

// busy reports whether a bind error means the port is taken, or not ours
// to take (an excluded port range).
func busy(err error) bool {
	return errors.Is(err, windows.WSAEADDRINUSE) || errors.Is(err, windows.WSAEACCES)
}
