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
	return serve(t, l, nil)
}

// Serve starts a TCP listener on addr that runs handle for each
// connection, on a goroutine of its own, until the test ends; the
// connection is closed when handle returns, or when the test ends. It
// returns the listener's address.
func Serve(t testing.TB, addr string, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, l, handle)
}

// serve accepts connections on l until the test ends, handing each to
// handle, or closing it at once when handle is nil, and returns l's
// address. At the end it closes l and the connections still open, and
// waits for the handlers.
func serve(t testing.TB, l net.Listener, handle func(net.Conn)) netip.AddrPort {
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]struct{}{}
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if handle == nil {
				c.Close()
				continue
			}
			mu.Lock()
			open[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(open, c)
					mu.Unlock()
					c.Close()
				}()
				handle(c)
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
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
