package forward

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// keepAlive turns TCP keepalive on for both legs, probing after 30 s of
// silence; the interval and count stay the kernel's (fewer setsockopt
// calls per connection).
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: -1, Count: -1}

// listenTCP listens with the kernel's full backlog (Go asks for
// net.core.somaxconn) and keepalive on accepted connections.
func listenTCP(addr netip.AddrPort) (*net.TCPListener, error) {
	lc := net.ListenConfig{KeepAliveConfig: keepAlive}
	network := "tcp"
	if addr.Addr().Is4() {
		network = "tcp4"
	}
	ln, err := lc.Listen(context.Background(), network, addr.String())
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

// serveTCP accepts until the listener closes.
func (run *running) serveTCP() {
	run.serve(run.ln, func(c net.Conn, client netip.AddrPort, r *Rule) { run.handle(c.(*net.TCPConn), client, r) })
}

// serve accepts on ln until it closes, refuses the clients the rule does
// not allow or has no room for, and runs handle for the others, each in a
// goroutine of its own.
func (run *running) serve(ln net.Listener, handle func(c net.Conn, client netip.AddrPort, r *Rule)) {
	var pause time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if run.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) {
				// Out of descriptors: spinning on accept would not free
				// any. Wait for connections to end.
				pause = backoff(pause)
				run.fail(err)
				select {
				case <-time.After(pause):
				case <-run.ctx.Done():
					return
				}
			}
			continue
		}
		pause = 0
		r := run.rule.Load()
		client := addrPort(c.RemoteAddr())
		if !r.allowed(client.Addr()) || r.MaxConns > 0 && run.c.active.Load() >= int64(r.MaxConns) {
			run.c.refused.Add(1)
			abortConn(c) // the client learns at once
			continue
		}
		run.c.conns.Add(1)
		run.c.active.Add(1)
		run.conns.Go(func() {
			defer run.c.active.Add(-1)
			handle(c, client, r)
		})
	}
}

// abortConn closes c, with a reset when it is a TCP connection.
func abortConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// openBackend picks a backend for the client c and connects to it with
// dial, sending the PROXY header first when the rule asks. When it cannot
// it counts and reports the error and returns nil: a client whose backend
// was not reached is reset. done ends the backend's count of active
// connections.
func (run *running) openBackend(c net.Conn, client netip.AddrPort, r *Rule, dial func(addr string) (net.Conn, error)) (up net.Conn, done func()) {
	b := run.pool.pick()
	if b == nil {
		run.fail(errors.New("no backend available"))
		abortConn(c)
		return nil, nil
	}
	b.active.Add(1)
	done = func() { b.active.Add(-1) }
	up, err := dial(b.target())
	if err != nil {
		run.fail(err)
		abortConn(c)
		done()
		return nil, nil
	}
	if r.ProxyProtocol != 0 {
		hdr := proxyHeader(r.ProxyProtocol, client, addrPort(c.LocalAddr()))
		up.SetWriteDeadline(time.Now().Add(r.connectTimeout()))
		if _, err := up.Write(hdr); err != nil {
			run.fail(err)
			up.Close()
			done()
			return nil, nil
		}
		up.SetWriteDeadline(time.Time{})
	}
	return up, done
}

// handle relays one client connection, from client, to a backend.
func (run *running) handle(c *net.TCPConn, client netip.AddrPort, r *Rule) {
	defer c.Close()
	// Without a context: one that can be cancelled costs a goroutine per
	// dial; the timeout bounds it.
	d := net.Dialer{Timeout: r.connectTimeout(), KeepAliveConfig: keepAlive}
	bc, done := run.openBackend(c, client, r, func(addr string) (net.Conn, error) { return d.Dial("tcp", addr) })
	if bc == nil {
		return
	}
	defer done()
	up := bc.(*net.TCPConn)
	defer up.Close()
	// abort ends both directions at once: the client gets a reset.
	abort := func() {
		c.SetLinger(0)
		c.Close()
		up.Close()
	}
	// Ending the rule's connections (Shutdown past its deadline) aborts.
	stop := context.AfterFunc(run.killCtx, abort)
	defer stop()
	idle := r.IdleTimeout
	var activity activityMeter
	if idle > 0 {
		activity.init(c, up)
	}
	relay := func(dst, src *net.TCPConn, count *atomic.Uint64) {
		for {
			if idle > 0 {
				src.SetReadDeadline(time.Now().Add(idle))
			}
			n, err := io.Copy(dst, src) // *net.TCPConn to *net.TCPConn: splice
			count.Add(uint64(n))
			switch {
			case err == nil:
				// The source shut down writing: pass it on, and let the
				// other direction run on.
				dst.CloseWrite()
				return
			case errors.Is(err, os.ErrDeadlineExceeded):
				if n > 0 || activity.moved() {
					continue // idle this way, not the other
				}
			case !errors.Is(err, net.ErrClosed):
				run.fail(err)
			}
			// A reset, an idle timeout: end both directions.
			abort()
			return
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { relay(up, c, &run.c.bytesIn) })
	relay(c, up, &run.c.bytesOut)
	wg.Wait()
}
