package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portctl/portctl/forward/sshtun"
)

// dialFunc opens a connection to a target: from here, or from the far
// end of an SSH connection.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// startTunnel starts a rule whose connections are not two plain sockets:
// one that goes through SSH (Via), or a SOCKS5 server. They run on the
// goroutine path, and the SSH transport is sshtun's.
func (f *Forwarder) startTunnel(run *running, r Rule) error {
	dial := dialFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{KeepAliveConfig: keepAlive}
		return d.DialContext(ctx, network, addr)
	})
	var host *sshtun.Host
	if r.Via != "" {
		if f.cfg.SSH == nil {
			return fmt.Errorf("it goes via %s, but the forwarder has no SSH transport (Config.SSH)", r.Via)
		}
		h, err := f.cfg.SSH.Host(r.Via)
		if err != nil {
			return err
		}
		host = h
	}
	var handle func(c net.Conn, client netip.AddrPort, r *Rule)
	switch r.Mode {
	case ModeRemote:
		// The server listens; what it accepts goes to the backends from
		// here, which are resolved and checked here too.
		ln, err := host.Listen(run.ctx, "tcp", r.Listen.String())
		if err != nil {
			return err
		}
		run.ln = ln
		handle = func(c net.Conn, client netip.AddrPort, r *Rule) { run.forwardTo(c, client, r, dial) }
		go run.pool.maintain(run.ctx, f.cfg.OnError, r.Name)
	case ModeSOCKS:
		if host != nil {
			dial = host.Dial
		}
		handle = func(c net.Conn, client netip.AddrPort, r *Rule) { run.serveSOCKS(c, r, dial) }
	default:
		// ssh -L: the backends are reached, and resolved, from the SSH
		// server; there is nothing to resolve or check here.
		handle = func(c net.Conn, client netip.AddrPort, r *Rule) { run.forwardTo(c, client, r, host.Dial) }
	}
	if run.ln == nil {
		ln, err := listenTCP(r.Listen)
		if err != nil {
			return err
		}
		run.ln = ln
	}
	go run.serve(run.ln, handle)
	return nil
}

// forwardTo relays the client connection c to one of the rule's
// backends, opened with dial.
func (run *running) forwardTo(c net.Conn, client netip.AddrPort, r *Rule, dial dialFunc) {
	defer c.Close()
	up, done := run.openBackend(c, client, r, func(addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(run.killCtx, r.connectTimeout())
		defer cancel()
		return dial(ctx, "tcp", addr)
	})
	if up == nil {
		return
	}
	defer done()
	run.relay(c, run.meter(c, up, r))
}

// serveSOCKS serves one SOCKS5 client: its request names the target,
// which dial opens.
func (run *running) serveSOCKS(c net.Conn, r *Rule, dial dialFunc) {
	var dialErr error
	s := sshtun.SOCKS5{
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, r.connectTimeout())
			defer cancel()
			up, err := dial(ctx, network, addr)
			if err != nil {
				dialErr = err
				return nil, err
			}
			return run.meter(c, up, r), nil
		},
	}
	// The error: a client that does not speak SOCKS5, a target that
	// cannot be reached, a relay that failed.
	if err := s.ServeConn(run.killCtx, c); err != nil && !quietEnd(err) && run.killCtx.Err() == nil {
		if dialErr == nil {
			err = fmt.Errorf("socks client %s: %w", c.RemoteAddr(), err)
		}
		run.fail(err)
	}
}

// relay copies between the client and its metered backend connection
// until both directions end (sshtun.Relay: half-closes passed on, a
// failure aborts both).
func (run *running) relay(c net.Conn, up *meteredConn) {
	if _, _, err := sshtun.Relay(c, up); err != nil && !quietEnd(err) && run.killCtx.Err() == nil {
		run.fail(err)
	}
}

// quietEnd reports whether a relay's error is one of its own ending: a
// connection this side closed (an idle timeout, Shutdown).
func quietEnd(err error) bool { return errors.Is(err, net.ErrClosed) }

// meter wraps a backend connection up, whose client is c, so that the
// rule counts its bytes, its idle timeout closes both, and so does the
// end of the rule's connections (Shutdown past its deadline).
func (run *running) meter(c, up net.Conn, r *Rule) *meteredConn {
	m := &meteredConn{Conn: up, raw: sshtun.RawSocket(up), in: &run.c.bytesIn, out: &run.c.bytesOut, stamp: r.IdleTimeout > 0}
	m.last.Store(time.Now().UnixNano())
	abort := func() {
		abortConn(c)
		abortConn(up)
	}
	stop := context.AfterFunc(run.killCtx, abort)
	m.onClose = append(m.onClose, func() { stop() })
	if r.IdleTimeout > 0 {
		m.onClose = append(m.onClose, watchIdle(r.IdleTimeout, &m.last, abort))
	}
	return m
}

// meteredConn counts the bytes written to and read from a backend
// connection, and when the last of them moved.
type meteredConn struct {
	net.Conn
	raw     sshtun.Socket  // a TCP backend's raw reads and writes (a remote rule's), or nil
	in, out *atomic.Uint64 // written (client to backend), read (backend to client)
	last    atomic.Int64   // Unix nanoseconds of the last byte either way, when stamp (an idle timeout watches it)
	stamp   bool
	once    sync.Once
	onClose []func()
}

// end is what the backend is read and written through: its raw system
// calls where it has them, or the connection.
func (m *meteredConn) end() io.ReadWriter {
	if m.raw != nil {
		return m.raw
	}
	return m.Conn
}

func (m *meteredConn) Read(p []byte) (int, error) {
	n, err := m.end().Read(p)
	m.moved(m.out, n)
	return n, err
}

func (m *meteredConn) Write(p []byte) (int, error) {
	n, err := m.end().Write(p)
	m.moved(m.in, n)
	return n, err
}

// WriteTo passes what the backend sends on to w through the backend's own
// WriteTo: an SSH channel's writes it from where its transport holds it,
// without a copy through a buffer of ours.
func (m *meteredConn) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := m.Conn.(io.WriterTo); ok && m.raw == nil {
		return wt.WriteTo(meteredWriter{w, m})
	}
	return sshtun.Copy(w, struct{ io.Reader }{m})
}

// TryWrite writes what a TCP backend takes at once (see
// sshwire.TryWriter), or nothing.
func (m *meteredConn) TryWrite(p []byte) (int, error) {
	if m.raw == nil {
		return 0, nil
	}
	n, err := m.raw.TryWrite(p)
	m.moved(m.in, n)
	return n, err
}

// meteredWriter counts what a meteredConn's WriteTo passes on as read.
type meteredWriter struct {
	io.Writer
	m *meteredConn
}

func (w meteredWriter) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	w.m.moved(w.m.out, n)
	return n, err
}

// TryWrite passes on the writer's own, or takes nothing (see
// sshwire.TryWriter).
func (w meteredWriter) TryWrite(p []byte) (int, error) {
	tw, ok := w.Writer.(interface{ TryWrite([]byte) (int, error) })
	if !ok {
		return 0, nil
	}
	n, err := tw.TryWrite(p)
	w.m.moved(w.m.out, n)
	return n, err
}

// moved counts n bytes that moved one way.
func (m *meteredConn) moved(count *atomic.Uint64, n int) {
	if n > 0 {
		count.Add(uint64(n))
		m.touch()
	}
}

// touch records that bytes moved, for the idle timeout.
func (m *meteredConn) touch() {
	if m.stamp {
		m.last.Store(time.Now().UnixNano())
	}
}

// CloseWrite passes a half-close on.
func (m *meteredConn) CloseWrite() error {
	if cw, ok := m.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("the connection cannot half-close")
}

func (m *meteredConn) Close() error {
	m.once.Do(func() {
		for _, f := range m.onClose {
			f()
		}
	})
	return m.Conn.Close()
}

// watchIdle calls abort once last (Unix nanoseconds) is idle old; the
// returned function stops watching.
func watchIdle(idle time.Duration, last *atomic.Int64, abort func()) (stop func()) {
	var mu sync.Mutex
	var t *time.Timer
	check := func() {
		mu.Lock()
		defer mu.Unlock()
		quiet := time.Since(time.Unix(0, last.Load()))
		if quiet >= idle {
			abort()
			return
		}
		t.Reset(idle - quiet)
	}
	mu.Lock()
	t = time.AfterFunc(idle, check)
	mu.Unlock()
	return func() {
		mu.Lock()
		t.Stop()
		mu.Unlock()
	}
}

// addrPort is a net.Addr's address and port, when it has them.
func addrPort(a net.Addr) netip.AddrPort {
	if a, ok := a.(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
