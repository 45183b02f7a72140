package tarpit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The defaults of Options.
const (
	DefaultMaxConns = 1024
	DefaultInterval = 10 * time.Second
)

// maxLineLen bounds a line fragment, as endlessh's default does.
const maxLineLen = 32

// Options say where the tarpit listens and how it holds connections.
type Options struct {
	// Ports are the TCP ports to listen on; 0 asks the OS for a free one
	// (see Tarpit.Ports).
	Ports []uint16
	// Addr is the address to listen on; the zero Addr listens on every
	// address, IPv4 and IPv6.
	Addr netip.Addr
	// MaxConns bounds the connections held at once, over every port
	// (DefaultMaxConns when 0).
	MaxConns int
	// Interval is the time between two writes to a held connection
	// (DefaultInterval when 0).
	Interval time.Duration
	// NetNS is a network namespace file (such as /run/netns/NAME) to
	// listen in instead of this process's namespace (Linux only).
	NetNS string
}

// Event tells of a connection the tarpit took or let go.
type Event struct {
	Remote netip.AddrPort `json:"remote"`
	// Port is the tarpit's port the connection came to.
	Port uint16 `json:"port"`
	// Opened is true when the connection is taken, false when it ends.
	Opened bool `json:"opened"`
	// Refused is set, with Opened false, for a connection closed at once
	// because MaxConns connections were held.
	Refused bool `json:"refused,omitempty"`
	// Held is how long the connection was held, and Sent how many bytes it
	// was sent, when it ends.
	Held time.Duration `json:"held_ns,omitempty"`
	Sent int           `json:"sent,omitempty"`
}

// Tarpit is a running tarpit. It is safe for concurrent use.
type Tarpit struct {
	o      Options
	onConn func(Event)
	evMu   sync.Mutex // one onConn call at a time

	ports     []uint16
	listeners []net.Listener
	held      atomic.Int64
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Start listens on o.Ports and holds the connections that come until ctx
// is done or Close is called. onConn, when not nil, is told of each
// connection taken, let go or refused; it is called from the tarpit's
// goroutines, one call at a time, and should return soon. A port that
// cannot be listened on fails Start, and nothing is left listening.
func Start(ctx context.Context, o Options, onConn func(Event)) (*Tarpit, error) {
	if len(o.Ports) == 0 {
		return nil, errors.New("tarpit: no ports")
	}
	if o.MaxConns < 0 || o.Interval < 0 {
		return nil, fmt.Errorf("tarpit: max conns %d, interval %s: want 0 or more", o.MaxConns, o.Interval)
	}
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	ls, err := listen(o)
	if err != nil {
		return nil, err
	}
	inner, cancel := context.WithCancel(ctx)
	t := &Tarpit{o: o, onConn: onConn, listeners: ls, cancel: cancel, conns: map[net.Conn]struct{}{}}
	for _, l := range ls {
		t.ports = append(t.ports, uint16(l.Addr().(*net.TCPAddr).Port))
	}
	t.wg.Go(func() {
		<-inner.Done()
		for _, l := range t.listeners {
			l.Close()
		}
		t.mu.Lock()
		for c := range t.conns {
			c.Close()
		}
		t.mu.Unlock()
	})
	for i, l := range ls {
		t.wg.Go(func() { t.accept(inner, l, t.ports[i]) })
	}
	return t, nil
}

// listenAll listens on every port of o in this namespace; on an error it
// closes what it opened.
func listenAll(o Options) ([]net.Listener, error) {
	host := ""
	if o.Addr.IsValid() {
		host = o.Addr.String()
	}
	var ls []net.Listener
	for _, p := range o.Ports {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(int(p))))
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("tarpit: %w", err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// Ports returns the ports the tarpit listens on, in the order of
// Options.Ports, with those the OS picked for 0.
func (t *Tarpit) Ports() []uint16 { return append([]uint16(nil), t.ports...) }

// Held returns how many connections the tarpit holds now.
func (t *Tarpit) Held() int { return int(t.held.Load()) }

// Close stops listening, closes every held connection and waits for the
// tarpit's goroutines to end. It may be called more than once.
func (t *Tarpit) Close() error {
	t.cancel()
	t.wg.Wait()
	return nil
}

func (t *Tarpit) event(e Event) {
	if t.onConn == nil {
		return
	}
	t.evMu.Lock()
	defer t.evMu.Unlock()
	t.onConn(e)
}

// accept takes l's connections until ctx is done: it holds each while
// fewer than MaxConns are held, and closes it at once otherwise.
func (t *Tarpit) accept(ctx context.Context, l net.Listener, port uint16) {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, or a connection reset before it was
			// taken: wait a little, as net/http does, and go on.
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		remote := c.RemoteAddr().(*net.TCPAddr).AddrPort()
		remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
		if t.held.Add(1) > int64(t.o.MaxConns) {
			t.held.Add(-1)
			c.Close()
			t.event(Event{Remote: remote, Port: port, Refused: true})
			continue
		}
		t.mu.Lock()
		if ctx.Err() != nil { // the closer has run: it would not see c
			t.mu.Unlock()
			t.held.Add(-1)
			c.Close()
			return
		}
		t.conns[c] = struct{}{}
		t.mu.Unlock()
		t.event(Event{Remote: remote, Port: port, Opened: true})
		t.wg.Go(func() { t.hold(ctx, c, remote, port) })
	}
}

// hold writes a line fragment to c every Interval until a write fails or
// ctx is done.
func (t *Tarpit) hold(ctx context.Context, c net.Conn, remote netip.AddrPort, port uint16) {
	start, sent := time.Now(), 0
	tick := time.NewTicker(t.o.Interval)
	defer func() {
		tick.Stop()
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
		c.Close()
		t.held.Add(-1)
		t.event(Event{Remote: remote, Port: port, Held: time.Since(start), Sent: sent})
	}()
	buf := make([]byte, 0, maxLineLen+2)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// A client that reads nothing fills its window in the end: a write
		// that cannot finish within an interval gives it up.
		c.SetWriteDeadline(time.Now().Add(t.o.Interval))
		n, err := c.Write(line(buf[:0]))
		sent += n
		if err != nil {
			return
		}
	}
}

// line appends a random line fragment to b: 1 to 32 printable ASCII
// characters and CRLF, never starting with "SSH-", so that an SSH client
// takes it for a line before the server's version string.
func line(b []byte) []byte {
	n := 1 + rand.IntN(maxLineLen)
	for i := range n {
		c := byte(' ' + rand.IntN('~'-' '+1))
		if i == 0 && c == 'S' {
			c = 's'
		}
		b = append(b, c)
	}
	return append(b, '\r', '\n')
}
