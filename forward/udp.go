package forward

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// maxDatagram is the largest UDP payload: every datagram arrives whole.
const maxDatagram = 64 << 10

// Defaults for UDP rules.
const (
	defaultUDPSessions = 4096
	defaultUDPIdle     = 60 * time.Second
)

func listenUDP(addr netip.AddrPort) (*net.UDPConn, error) {
	network := "udp"
	if addr.Addr().Is4() {
		network = "udp4"
	}
	return net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
}

// udpTable is a UDP rule's sessions, one per client address, each with a
// socket connected to the backend chosen for it.
type udpTable struct {
	run      *running
	mu       sync.Mutex
	sessions map[netip.AddrPort]*udpSession
}

type udpSession struct {
	conn *net.UDPConn
	b    *backend
	last atomic.Int64 // unix nanoseconds of the last datagram either way
}

func newUDPTable(run *running) *udpTable {
	return &udpTable{run: run, sessions: map[netip.AddrPort]*udpSession{}}
}

// serveUDP reads client datagrams until the rule stops, then ends the
// sessions.
func (run *running) serveUDP() {
	t := run.udp
	buf := make([]byte, maxDatagram)
	for {
		n, client, err := run.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if run.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				t.closeAll()
				return
			}
			continue
		}
		client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
		s := t.session(client)
		if s == nil {
			continue
		}
		s.last.Store(time.Now().UnixNano())
		if _, err := s.conn.Write(buf[:n]); err != nil {
			run.fail(err)
			continue
		}
		run.c.bytesIn.Add(uint64(n))
	}
}

// session returns the client's session, opening one if the rule allows;
// nil when the datagram is refused.
func (t *udpTable) session(client netip.AddrPort) *udpSession {
	run := t.run
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.sessions[client]; s != nil {
		return s
	}
	b, r := run.admitUDP(client, len(t.sessions))
	if b == nil {
		return nil
	}
	c, err := net.Dial("udp", b.target())
	if err != nil {
		run.fail(err)
		return nil
	}
	s := &udpSession{conn: c.(*net.UDPConn), b: b}
	s.last.Store(time.Now().UnixNano())
	t.sessions[client] = s
	b.active.Add(1)
	run.c.conns.Add(1)
	run.c.active.Add(1)
	// Counted with the rule's connections (session runs inside serveUDP,
	// which is one of them), so draining waits for the sessions too.
	run.conns.Go(func() { t.replies(client, s, r) })
	return s
}

// replies sends the backend's datagrams back to the client, any number of
// them, until the session is idle for the rule's idle timeout.
func (t *udpTable) replies(client netip.AddrPort, s *udpSession, r *Rule) {
	run := t.run
	defer func() {
		t.mu.Lock()
		if t.sessions[client] == s {
			delete(t.sessions, client)
		}
		t.mu.Unlock()
		s.conn.Close()
		s.b.active.Add(-1)
		run.c.active.Add(-1)
	}()
	idle := r.IdleTimeout
	if idle <= 0 {
		idle = defaultUDPIdle
	}
	buf := make([]byte, maxDatagram)
	// The deadline is moved on when it passes, not at every datagram:
	// the session ends once idle since the last one either way.
	s.conn.SetReadDeadline(time.Unix(0, s.last.Load()).Add(idle))
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			timeout := errors.Is(err, os.ErrDeadlineExceeded)
			if last := time.Unix(0, s.last.Load()); timeout && time.Since(last) < idle {
				s.conn.SetReadDeadline(last.Add(idle))
				continue // a datagram came meanwhile
			}
			if !timeout && !errors.Is(err, net.ErrClosed) {
				run.fail(err) // an ICMP error: the backend port is closed
			}
			return
		}
		s.last.Store(time.Now().UnixNano())
		if _, err := run.pc.WriteToUDPAddrPort(buf[:n], client); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			run.fail(err)
			continue
		}
		run.c.bytesOut.Add(uint64(n))
	}
}

// closeAll ends every session; the rule's connections wait for them.
func (t *udpTable) closeAll() {
	t.mu.Lock()
	for _, s := range t.sessions {
		s.conn.Close()
	}
	t.mu.Unlock()
}

// admitUDP decides whether a new UDP session of client may open, with
// sessions open already: the rule's allow and deny lists and its session
// limit (a refusal is counted), then a backend. It returns nil when the
// session must not open; with the rule it decided by.
func (run *running) admitUDP(client netip.AddrPort, sessions int) (*backend, *Rule) {
	r := run.rule.Load()
	limit := r.MaxConns
	if limit <= 0 {
		limit = defaultUDPSessions
	}
	if !r.allowed(client.Addr()) || sessions >= limit {
		run.c.refused.Add(1)
		return nil, r
	}
	b := run.pool.pick()
	if b == nil {
		run.fail(errors.New("no backend available"))
	}
	return b, r
}
