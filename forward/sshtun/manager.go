package sshtun

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by the Manager's and Host's methods after Close.
var ErrClosed = errors.New("ssh tunnel closed")

// ErrTCPOnly is returned for networks other than TCP: SSH carries TCP
// streams only.
var ErrTCPOnly = errors.New("ssh carries TCP only")

// ErrLinkDown is wrapped when the SSH link to a host stayed down for the
// whole connect timeout.
var ErrLinkDown = errors.New("ssh link down")

// Manager keeps one SSH connection per host for every tunnel through it,
// and reconnects lost ones. It is safe for concurrent use.
type Manager struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	hosts  map[string]*Host
	closed bool
	wg     sync.WaitGroup
}

// NewManager returns a Manager; it connects to nothing until Host is
// called.
func NewManager(opts Options) *Manager {
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{opts: opts, ctx: ctx, cancel: cancel, hosts: map[string]*Host{}}
}

// Host returns the host a target (ssh://[USER@]HOST[:PORT]) resolves to,
// connecting to it in the background the first time: targets that resolve
// to the same user, address and jump hosts share a Host and its SSH
// connection. The error is about the target or the config, never the
// network (see Host.State and Host.Dial).
func (m *Manager) Host(target string) (*Host, error) {
	t, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	c, err := m.opts.resolve(t)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	k := c.key()
	if h := m.hosts[k]; h != nil {
		return h, nil
	}
	h := &Host{
		m: m, chain: c, name: t.String(),
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		changed:   make(chan struct{}),
		listeners: map[*remoteListener]struct{}{},
		state:     StateConnecting,
		since:     time.Now(),
	}
	h.ctx, h.cancel = context.WithCancel(m.ctx)
	m.hosts[k] = h
	m.wg.Go(h.run)
	return h, nil
}

// Dial connects to addr from the far end of target's SSH connection (see
// Host.Dial).
func (m *Manager) Dial(ctx context.Context, target, network, addr string) (net.Conn, error) {
	h, err := m.Host(target)
	if err != nil {
		return nil, err
	}
	return h.Dial(ctx, network, addr)
}

// CloseHost closes the connection of the host target resolves to, its
// remote forwards and tunnelled connections, and forgets it; the next
// Host call for it starts afresh. For a forwarder whose last rule through
// a host went away.
func (m *Manager) CloseHost(target string) error {
	t, err := ParseTarget(target)
	if err != nil {
		return err
	}
	c, err := m.opts.resolve(t)
	if err != nil {
		return err
	}
	m.mu.Lock()
	h := m.hosts[c.key()]
	delete(m.hosts, c.key())
	m.mu.Unlock()
	if h != nil {
		h.shutdown()
		<-h.done
	}
	return nil
}

// States returns every host's state, sorted by name.
func (m *Manager) States() []HostState {
	m.mu.Lock()
	hosts := make([]*Host, 0, len(m.hosts))
	for _, h := range m.hosts {
		hosts = append(hosts, h)
	}
	m.mu.Unlock()
	out := make([]HostState, len(hosts))
	for i, h := range hosts {
		out[i] = h.State()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out
}

// Close closes every SSH connection, the listeners of remote forwards and
// the tunnelled connections, and waits for the reconnect loops to end.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	hosts := m.hosts
	m.hosts = map[string]*Host{}
	m.mu.Unlock()
	m.cancel()
	for _, h := range hosts {
		h.shutdown()
	}
	m.wg.Wait()
	return nil
}

// State is where a host's SSH connection is.
type State uint8

// The states of a host's connection.
const (
	StateConnecting   State = iota // the first attempt has not ended yet
	StateConnected                 // logged in
	StateReconnecting              // lost, or an attempt failed: retrying with back-off
	StateClosed                    // closed by CloseHost or the Manager's Close
)

// MarshalText gives the state's name, for JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// String returns the state's name: connecting, connected, reconnecting, closed.
func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", s)
}

// HostState is a snapshot of one host: its link and its counters.
type HostState struct {
	Target    string        `json:"target"`           // the target as first given, ssh://...
	Address   string        `json:"address"`          // user@host:port logged in to (after the config)
	Via       []string      `json:"via,omitempty"`    // jump hosts, in order
	State     State         `json:"state"`            //
	Since     time.Time     `json:"since"`            // when State began (for reconnecting: since when)
	LastError string        `json:"last_error"`       // the last connection error ("" if none yet)
	ErrorAt   time.Time     `json:"error_at"`         //
	RTT       time.Duration `json:"rtt_ns"`           // of the last keepalive
	Connects  uint64        `json:"connects"`         // successful logins
	Attempts  uint64        `json:"attempts"`         // connection attempts
	Conns     uint64        `json:"conns"`            // tunnelled connections opened (Dial, and accepted by remote listeners)
	Active    int64         `json:"active"`           // open now
	Failed    uint64        `json:"failed"`           // Dials that failed
	BytesOut  uint64        `json:"bytes_out"`        // written into the tunnel
	BytesIn   uint64        `json:"bytes_in"`         // read from the tunnel
	Listeners int           `json:"remote_listeners"` // remote forwards
}

// Host is one SSH server with the single connection every tunnel through
// it shares. It is safe for concurrent use.
type Host struct {
	m      *Manager
	chain  *chain
	name   string
	ctx    context.Context // ends with CloseHost or the Manager's Close
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns

	mu        sync.Mutex
	cur       *link
	changed   chan struct{} // closed and replaced at every state change
	state     State
	since     time.Time
	lastErr   error
	errAt     time.Time
	permanent bool // lastErr will not go away by retrying soon
	rtt       time.Duration
	closed    bool
	listeners map[*remoteListener]struct{}

	wake     chan struct{}
	connects atomic.Uint64
	attempts atomic.Uint64
	conns    atomic.Uint64
	active   atomic.Int64
	failed   atomic.Uint64
	bytesOut atomic.Uint64
	bytesIn  atomic.Uint64
}

// State returns a snapshot of the host's link and counters.
func (h *Host) State() HostState {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := HostState{
		Target: h.name, Address: h.chain.last().String(),
		State: h.state, Since: h.since, ErrorAt: h.errAt, RTT: h.rtt,
		Connects: h.connects.Load(), Attempts: h.attempts.Load(),
		Conns: h.conns.Load(), Active: h.active.Load(), Failed: h.failed.Load(),
		BytesOut: h.bytesOut.Load(), BytesIn: h.bytesIn.Load(),
		Listeners: len(h.listeners),
	}
	for _, e := range h.chain.hops[:len(h.chain.hops)-1] {
		s.Via = append(s.Via, e.String())
	}
	if h.lastErr != nil {
		s.LastError = h.lastErr.Error()
	}
	return s
}

// Ready waits for the end of the host's first connection attempt (each
// attempt is bounded by the connect timeout) and returns nil when it is
// logged in, else the attempt's error; the Host keeps trying after an
// error all the same. Later, it reports the state of the moment: nil when
// connected, the last error while reconnecting.
func (h *Host) Ready(ctx context.Context) error {
	for {
		h.mu.Lock()
		state, err, changed := h.state, h.lastErr, h.changed
		h.mu.Unlock()
		switch state {
		case StateConnected:
			return nil
		case StateReconnecting:
			return err
		case StateClosed:
			return ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// setLocked changes state and wakes the waiters; h.mu is held.
func (h *Host) setLocked(s State) {
	if h.state != s {
		h.state = s
		h.since = time.Now()
	}
	close(h.changed)
	h.changed = make(chan struct{})
}

// kick asks the reconnect loop to try now rather than after its back-off.
func (h *Host) kick() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run connects, watches the link and reconnects, until the Manager closes.
func (h *Host) run() {
	defer close(h.done)
	ctx := h.ctx
	var backoff time.Duration
	for ctx.Err() == nil {
		h.attempts.Add(1)
		start := time.Now()
		l, err := h.m.opts.connect(ctx, h.chain)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			permanent := errors.Is(err, ErrAuth) || errors.Is(err, ErrHostKeyChanged) || errors.Is(err, ErrHostKeyUnknown) || errors.Is(err, ErrKnownHosts)
			h.mu.Lock()
			h.lastErr, h.errAt, h.permanent = err, time.Now(), permanent
			h.setLocked(StateReconnecting)
			h.mu.Unlock()
			backoff = nextBackoff(backoff, permanent, h.m.opts.MaxBackoff)
			h.sleep(ctx, start, backoff, permanent)
			continue
		}
		h.connects.Add(1)
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			l.close(ErrClosed)
			break
		}
		h.cur = l
		h.permanent = false
		h.setLocked(StateConnected)
		for rl := range h.listeners {
			go rl.bind(l)
		}
		h.mu.Unlock()

		why := h.keepAlive(ctx, l)
		l.close(why)
		<-l.dead

		h.mu.Lock()
		h.cur = nil
		if ctx.Err() == nil {
			h.lastErr, h.errAt = fmt.Errorf("ssh %s: link lost: %w", h.chain.last(), why), time.Now()
			h.setLocked(StateReconnecting)
		}
		h.mu.Unlock()
		// A link that lived a while is tried again at once; one that
		// keeps dying soon after login (a server that closes, a path
		// that drops keepalives) is not reconnected in a tight loop.
		if time.Since(l.since) >= stableLink {
			backoff = 0
		} else {
			backoff = nextBackoff(backoff, false, h.m.opts.MaxBackoff)
			h.sleep(ctx, time.Now(), backoff, false)
		}
	}
	h.mu.Lock()
	h.setLocked(StateClosed)
	h.mu.Unlock()
}

// stableLink is how long a link must have lived for the back-off to
// start again from nothing when it is lost.
const stableLink = 10 * time.Second

// nextBackoff doubles the wait from minBackoff up to the cap: max for
// network errors, a minute after a refused login or host key.
func nextBackoff(d time.Duration, permanent bool, max time.Duration) time.Duration {
	if max <= 0 {
		max = defaultMaxBackoff
	}
	if permanent {
		max = maxAuthBackoff
	}
	d *= 2
	if d < minBackoff {
		d = minBackoff
	}
	return min(d, max)
}

// sleep waits out a back-off of d, jittered to between d/2 and d, counted
// from the start of the failed attempt. A Dial waiting for the link cuts
// the wait short after a network error (not after a refused login).
func (h *Host) sleep(ctx context.Context, start time.Time, d time.Duration, permanent bool) {
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(time.Until(start.Add(d)))
	defer t.Stop()
	// A kick already waiting counts: the waiter that sent it may have seen
	// this attempt fail and will not send another until the next one does.
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-h.wake:
			if !permanent {
				// Not sooner than minBackoff after the last attempt began.
				if w := time.Until(start.Add(minBackoff)); w > 0 {
					select {
					case <-time.After(w):
					case <-ctx.Done():
					}
				}
				return
			}
		}
	}
}

// keepAlive sends keepalive@openssh.com requests every interval and
// returns when the link ends, the Manager closes, or count requests in a
// row went unanswered for an interval each. Each answer updates the RTT.
func (h *Host) keepAlive(ctx context.Context, l *link) error {
	e := h.chain.last()
	t := time.NewTicker(e.aliveInterval)
	defer t.Stop()
	var missed int
	var pending atomic.Int32
	failed := make(chan error, 1)
	send := func() {
		pending.Add(1)
		go func() {
			defer pending.Add(-1)
			if err := h.ping(l); err != nil {
				select {
				case failed <- err:
				default:
				}
			}
		}()
	}
	send() // the first RTT at once
	for {
		select {
		case <-ctx.Done():
			return ErrClosed
		case <-l.dead:
			return l.err
		case err := <-failed:
			return fmt.Errorf("keepalive: %w", err)
		case <-t.C:
			if pending.Load() > 0 {
				missed++
				if missed >= e.aliveCount {
					return fmt.Errorf("no answer to %d keepalives in %s", missed, time.Duration(missed)*e.aliveInterval)
				}
				continue
			}
			missed = 0
			send()
		}
	}
}

// ping sends one keepalive request and records its round trip; an error
// means the link is gone.
func (h *Host) ping(l *link) error {
	start := time.Now()
	// OpenSSH answers an unknown request with a failure: an answer all the
	// same.
	if _, _, err := l.client.SendRequest("keepalive@openssh.com", true, nil); err != nil {
		return err
	}
	rtt := time.Since(start)
	h.mu.Lock()
	h.rtt = rtt
	h.mu.Unlock()
	return nil
}

// errWaited is the cause of a wait's context that ran out of connect
// timeout (rather than being cancelled by the caller).
var errWaited = errors.New("connect timeout")

// waitContext bounds a wait for the link by the connect timeout.
func (h *Host) waitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, h.chain.last().connectTimeout, errWaited)
}

// link returns the live link, waiting for one while it is down until ctx
// ends (see waitContext); a refused login or host key fails at once.
func (h *Host) link(ctx context.Context) (*link, error) {
	start := time.Now()
	for {
		h.mu.Lock()
		l, changed, closed := h.cur, h.changed, h.closed
		lastErr, errAt, permanent := h.lastErr, h.errAt, h.permanent
		h.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case l != nil && !l.lost():
			select {
			case <-l.dead:
				// Gone, the loop has not noticed yet.
			default:
				return l, nil
			}
		case permanent && lastErr != nil && (errAt.After(start) || time.Since(errAt) < time.Second):
			return nil, lastErr
		}
		h.kick()
		// A lost link is replaced (cur set to nil, then a new one) with a
		// state change each: changed closes.
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, h.downError(ctx, start)
		}
	}
}

// downError explains a Dial or Listen that found no link before ctx
// ended.
func (h *Host) downError(ctx context.Context, start time.Time) error {
	h.mu.Lock()
	lastErr, since := h.lastErr, h.since
	h.mu.Unlock()
	waited := time.Since(start).Round(time.Millisecond)
	msg := fmt.Sprintf("%s: not connected after waiting %s (down since %s)", h.chain.last(), waited, since.Format("15:04:05"))
	if lastErr != nil {
		msg += ": " + lastErr.Error()
	}
	if context.Cause(ctx) == errWaited {
		return fmt.Errorf("%w: %s", ErrLinkDown, msg)
	}
	return fmt.Errorf("%w: %s: %w", ErrLinkDown, msg, ctx.Err())
}

// Dial connects to addr ("host:port", resolved by the SSH server) from the
// far end of the host's SSH connection, like ssh -L. While the link is
// down it waits up to the connect timeout (or until ctx ends) for it to
// come back. network must be tcp, tcp4 or tcp6.
//
// The connection supports CloseWrite (half-close) and deadlines (see
// conn.SetReadDeadline: a passed write deadline closes it). If the SSH
// link breaks, its Read returns an error wrapping io.ErrUnexpectedEOF,
// not io.EOF.
func (h *Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := checkNetwork(network); err != nil {
		return nil, err
	}
	wctx, cancel := h.waitContext(ctx)
	defer cancel()
	for {
		l, err := h.link(wctx)
		if err != nil {
			h.failed.Add(1)
			return nil, err
		}
		c, err := l.client.DialContext(wctx, network, addr)
		if err == nil {
			return h.wrap(c, l), nil
		}
		if l.lost() && wctx.Err() == nil {
			continue // the link broke under us: wait for the next one
		}
		h.failed.Add(1)
		if wctx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("ssh %s: dial %s: no answer within the connect timeout (%s)", h.chain.last(), addr, h.chain.last().connectTimeout)
		}
		return nil, fmt.Errorf("ssh %s: dial %s: %w", h.chain.last(), addr, err)
	}
}

func checkNetwork(network string) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return nil
	}
	return fmt.Errorf("%w: network %q (want tcp, tcp4 or tcp6)", ErrTCPOnly, network)
}

// shutdown ends the reconnect loop and closes the host's link and
// listeners.
func (h *Host) shutdown() {
	h.cancel()
	h.mu.Lock()
	h.closed = true
	l := h.cur
	ls := h.listeners
	h.listeners = map[*remoteListener]struct{}{}
	h.setLocked(h.state)
	h.mu.Unlock()
	for rl := range ls {
		rl.closeLocal()
	}
	if l != nil {
		l.close(ErrClosed)
	}
}
