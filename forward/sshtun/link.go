package sshtun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// link is one live SSH connection to a host, through its jump hosts.
type link struct {
	client  *ssh.Client   // the target's
	clients []*ssh.Client // every hop's, the target's last
	wire    *wireConn     // the target's transport
	dead    chan struct{} // closed once the connection is gone
	err     error         // why, once dead is closed
	once    sync.Once
	since   time.Time
}

// close ends the connection (and its hops), recording why.
func (l *link) close(why error) {
	l.once.Do(func() {
		l.err = why
		for i := len(l.clients) - 1; i >= 0; i-- {
			l.clients[i].Close()
		}
	})
}

// watch closes dead once the target's connection ends.
func (l *link) watch() {
	err := l.client.Wait()
	l.once.Do(func() {
		if err == nil {
			err = errors.New("connection closed")
		}
		l.err = err
		for i := len(l.clients) - 2; i >= 0; i-- {
			l.clients[i].Close()
		}
	})
	close(l.dead)
}

// lost reports whether the transport broke (as opposed to being open):
// set before any channel sees the end of the connection.
func (l *link) lost() bool { return l.wire.broken.Load() }

// wireConn is the transport under an SSH connection. It records a failed
// read or write before the SSH layer sees it, so that a channel's io.EOF
// can be told from a link that broke (see conn.Read).
type wireConn struct {
	net.Conn
	broken   atomic.Bool
	quickAck func() // nil: not TCP, or not Linux
}

func (w *wireConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if err != nil {
		w.broken.Store(true)
	} else if w.quickAck != nil && n < len(p) {
		// Caught up with the sender (the socket is drained): acknowledge
		// at once. Reads that fill the buffer are a stream in full flow,
		// where the ACKs go out anyway.
		w.quickAck()
	}
	return n, err
}

// Write marks the link broken when the transport fails, and closes it, so
// that the reading side ends too (after a reset, Linux reports the error
// to one call; a read after it sees only the end of the stream).
func (w *wireConn) Write(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	if err != nil {
		w.broken.Store(true)
		w.Conn.Close()
	}
	return n, err
}

// connect logs in to every hop of c in turn, each through the one before.
func (o *Options) connect(ctx context.Context, c *chain) (*link, error) {
	ctx, cancel := context.WithTimeout(ctx, c.last().connectTimeout)
	defer cancel()
	l := &link{dead: make(chan struct{})}
	fail := func(err error) (*link, error) {
		for i := len(l.clients) - 1; i >= 0; i-- {
			l.clients[i].Close()
		}
		if ctx.Err() != nil && !errors.Is(err, ErrAuth) && !errors.Is(err, ErrHostKeyChanged) && !errors.Is(err, ErrHostKeyUnknown) {
			err = fmt.Errorf("%w (connect timeout %s)", err, c.last().connectTimeout)
		}
		return nil, err
	}
	for i, e := range c.hops {
		var raw net.Conn
		var err error
		if i == 0 {
			dial := o.DialContext
			if dial == nil {
				d := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: -1, Count: -1}}
				dial = d.DialContext
			}
			raw, err = dial(ctx, "tcp", e.addr())
			if err != nil {
				return fail(fmt.Errorf("ssh %s: connect: %w", e, unwrapOp(err)))
			}
		} else {
			raw, err = l.clients[i-1].DialContext(ctx, "tcp", e.addr())
			if err != nil {
				return fail(fmt.Errorf("ssh %s: through %s: %w", e, c.hops[i-1], err))
			}
		}
		w := &wireConn{Conn: raw, quickAck: quickAcker(raw)}
		client, err := o.handshake(ctx, e, w)
		if err != nil {
			raw.Close()
			return fail(err)
		}
		l.clients = append(l.clients, client)
		l.wire = w
	}
	l.client = l.clients[len(l.clients)-1]
	l.since = time.Now()
	go l.watch()
	return l, nil
}

// unwrapOp drops net.OpError's "dial tcp ADDR:" prefix, which the message
// already names.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// handshake runs the SSH handshake and login over conn, giving up when ctx
// ends.
func (o *Options) handshake(ctx context.Context, e *endpoint, conn net.Conn) (*ssh.Client, error) {
	hk := &hostKeys{files: e.knownHosts, global: o.GlobalKnownHostsFiles, strict: e.strict}
	cr := o.credentials(e)
	defer cr.close()
	cfg := &ssh.ClientConfig{
		User:              e.user,
		Auth:              cr.methods,
		HostKeyCallback:   hk.callback,
		HostKeyAlgorithms: hk.algorithms(e.addr()),
		ClientVersion:     "SSH-2.0-portctl",
	}
	cs, err := ciphers(e.ciphers)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %v", e, err)
	}
	cfg.Ciphers = cs
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	c, chans, reqs, err := ssh.NewClientConn(conn, e.addr(), cfg)
	if err != nil {
		var he *HostKeyError
		switch {
		case errors.As(err, &he):
			return nil, fmt.Errorf("ssh %s: %w", e, he)
		case errors.Is(err, ErrKnownHosts):
			for inner := err; inner != nil; inner = errors.Unwrap(inner) {
				if strings.HasPrefix(inner.Error(), ErrKnownHosts.Error()) {
					err = inner // without x/crypto's "handshake failed"
					break
				}
			}
			return nil, fmt.Errorf("ssh %s: %w", e, err)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, cr.authError(e)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("ssh %s: handshake: %w", e, ctx.Err())
		}
		return nil, fmt.Errorf("ssh %s: %w", e, err)
	}
	return ssh.NewClient(c, chans, reqs), nil
}
