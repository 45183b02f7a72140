package sshtun

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// Listen asks the SSH server to listen on addr ("host:port" on the
// server's side; port 0 lets the server pick) and hands over the
// connections it accepts, like ssh -R. The listener outlives the SSH
// connection: after a reconnect it is requested again by itself. The first
// request is made before Listen returns, waiting up to the connect timeout
// for the link, and its refusal is Listen's error. With port 0 the server
// may pick another port after a reconnect (Addr tells). network must be
// tcp, tcp4 or tcp6.
func (h *Host) Listen(ctx context.Context, network, addr string) (net.Listener, error) {
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	rl := &remoteListener{h: h, network: network, want: addr, conns: make(chan net.Conn), done: make(chan struct{})}
	ctx, cancel := h.waitContext(ctx)
	defer cancel()
	for {
		l, err := h.link(ctx)
		if err != nil {
			return nil, err
		}
		ln, err := listenContext(ctx, l, network, addr)
		if err != nil {
			if l.lost() && ctx.Err() == nil {
				continue // the link broke under us: wait for the next one
			}
			return nil, fmt.Errorf("ssh %s: listen on %s (server side): %w", h.chain.last(), addr, err)
		}
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			ln.Close()
			return nil, ErrClosed
		}
		h.listeners[rl] = struct{}{}
		cur := h.cur
		h.mu.Unlock()
		rl.serve(l, ln)
		if cur != nil && cur != l {
			// The link changed between the request and the registration:
			// run() bound the registered listeners without this one.
			go rl.bind(cur)
		}
		return rl, nil
	}
}

// listenContext asks the server for a remote forward, giving up when ctx
// ends (a forward granted after that is cancelled).
func listenContext(ctx context.Context, l *link, network, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		ln, err := l.client.Listen(network, addr)
		done <- result{ln, err}
	}()
	select {
	case r := <-done:
		return r.ln, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.ln != nil {
				r.ln.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// remoteListener is a net.Listener for a remote forward, across
// reconnects.
type remoteListener struct {
	h       *Host
	network string
	want    string // the address asked for
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once

	mu      sync.Mutex
	ln      net.Listener // on the current link
	on      *link
	addr    net.Addr
	lastErr error
}

// bind requests the listener on link l, retrying every second while l
// lives (the server may still hold the port for the connection that was
// lost).
func (rl *remoteListener) bind(l *link) {
	for {
		rl.mu.Lock()
		if rl.on == l {
			rl.mu.Unlock()
			return
		}
		rl.mu.Unlock()
		select {
		case <-rl.done:
			return
		default:
		}
		ln, err := l.client.Listen(rl.network, rl.want)
		if err == nil {
			rl.serve(l, ln)
			return
		}
		rl.mu.Lock()
		rl.lastErr = err
		rl.mu.Unlock()
		select {
		case <-rl.done:
			return
		case <-l.dead:
			return
		case <-time.After(time.Second):
		}
	}
}

// serve records ln as the listener on link l and passes its connections
// on until it ends.
func (rl *remoteListener) serve(l *link, ln net.Listener) {
	rl.mu.Lock()
	select {
	case <-rl.done:
		rl.mu.Unlock()
		ln.Close()
		return
	default:
	}
	if rl.on == l {
		rl.mu.Unlock()
		ln.Close()
		return
	}
	rl.ln, rl.on, rl.addr, rl.lastErr = ln, l, ln.Addr(), nil
	rl.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wc := rl.h.wrap(c, l)
			select {
			case rl.conns <- wc:
			case <-rl.done:
				wc.Close()
				return
			}
		}
	}()
}

// Accept waits for the next connection the server accepted.
func (rl *remoteListener) Accept() (net.Conn, error) {
	select {
	case c := <-rl.conns:
		return c, nil
	case <-rl.done:
		return nil, net.ErrClosed
	}
}

// Close cancels the remote forward.
func (rl *remoteListener) Close() error {
	rl.h.mu.Lock()
	delete(rl.h.listeners, rl)
	rl.h.mu.Unlock()
	rl.closeLocal()
	return nil
}

// closeLocal stops accepting and cancels the forward on the server.
func (rl *remoteListener) closeLocal() {
	rl.once.Do(func() {
		close(rl.done)
		rl.mu.Lock()
		ln := rl.ln
		rl.mu.Unlock()
		if ln != nil {
			ln.Close()
		}
	})
}

// Addr is the address the server listens on (with the port it picked for
// port 0) on the current or last link.
func (rl *remoteListener) Addr() net.Addr {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return rl.addr
}

// Err returns why the listener could not be requested again after the
// last reconnect, or nil.
func (rl *remoteListener) Err() error {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	return rl.lastErr
}

// ListenerErr returns why a listener from Listen is not listening on
// the current link (nil when it is, or when ln is not from Listen).
func ListenerErr(ln net.Listener) error {
	if rl, ok := ln.(*remoteListener); ok {
		return rl.Err()
	}
	return nil
}

// Forward accepts connections on ln and relays each to addr through the
// host, like ssh -L, until ln is closed or ctx ends; then it closes the
// connections still open and returns. A connection the tunnel cannot open
// is closed with a reset.
func (h *Host) Forward(ctx context.Context, ln net.Listener, addr string) error {
	return serve(ctx, ln, func(ctx context.Context, c net.Conn) {
		r, err := h.Dial(ctx, "tcp", addr)
		if err != nil {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
			return
		}
		Relay(c, r)
	})
}

// serve accepts connections on ln and runs handle for each on a
// goroutine of its own, until ln is closed or ctx ends; then it cancels
// the context handle got, closes the connections still open, waits for
// the handlers and returns.
func serve(ctx context.Context, ln net.Listener, handle func(context.Context, net.Conn)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]struct{}{}
	defer func() {
		cancel()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		mu.Lock()
		open[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(open, c)
				mu.Unlock()
			}()
			handle(ctx, c)
		})
	}
}
