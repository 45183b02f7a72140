// Package testnet holds loopback helpers shared by the tests of several
// packages: listeners that accept until the test ends, and ports where
// nothing listens. It is imported only from _test.go files.
package testnet

import (
	"net"
	"net/netip"
	"sync"
	"testing"
)

// Listen starts a TCP listener on addr ("127.0.0.1:0", "[::1]:0") that
// accepts and closes connections until the test ends, and returns its
// address. The test is skipped when the address family is unavailable.
func Listen(t testing.TB, addr string) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s here: %v", addr, err)
	}
	return serve(t, l)
}

// serve accepts and closes connections on l until the test ends, and
// returns its address.
func serve(t testing.TB, l net.Listener) netip.AddrPort {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// ClosedPort returns an address on host where nothing listens: a port the
// OS handed to a listener that was closed again at once.
func ClosedPort(t testing.TB, host string) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s here: %v", host, err)
	}
	ap := l.Addr().(*net.TCPAddr).AddrPort()
	l.Close()
	return ap
}
