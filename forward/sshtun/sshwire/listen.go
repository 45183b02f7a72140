package sshwire

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
)

// Remote forwards (RFC 4254, section 7.1): the server listens for us and
// opens a forwarded-tcpip channel for each connection it accepts.

// listener is a remote forward, as a net.Listener.
type listener struct {
	c     *Conn
	host  string // as requested
	port  uint32 // as bound
	addr  net.Addr
	conns chan *channel
	done  chan struct{}
}

// acceptQueue is how many forwarded connections may wait for Accept;
// beyond that the server is told to refuse them.
const acceptQueue = 128

// Listen asks the server to listen on addr ("host:port"; port 0 lets it
// pick) and returns the connections it forwards. network must be tcp,
// tcp4 or tcp6. The host is passed as given: the server resolves it.
func (c *Conn) Listen(network, addr string) (net.Listener, error) {
	w, host, port, err := tcpAddress("listen", network, addr)
	if err != nil {
		return nil, err
	}
	// The listener is registered before the request, so that no
	// connection forwarded right after the server's answer is refused;
	// with port 0 its port is filled in from the answer.
	ta := &net.TCPAddr{Port: int(port)}
	if ip := net.ParseIP(host); ip != nil {
		ta.IP = ip
	}
	l := &listener{c: c, host: host, port: port, addr: ta, conns: make(chan *channel, acceptQueue), done: make(chan struct{})}
	c.mu.Lock()
	if c.failed {
		c.mu.Unlock()
		return nil, c.lostErr()
	}
	c.fwds = append(c.fwds, l)
	c.mu.Unlock()
	ok, data, err := c.SendRequest("tcpip-forward", true, w)
	if err == nil && !ok {
		err = errors.New("ssh: tcpip-forward request denied by peer")
	}
	if err == nil && port == 0 {
		r := reader{b: data}
		bound := r.uint32()
		if r.err != nil || bound == 0 || bound > 65535 {
			err = fmt.Errorf("ssh: tcpip-forward: the server bound no port (%w)", errShort)
		}
		c.mu.Lock()
		l.port = bound
		l.addr = &net.TCPAddr{IP: ta.IP, Port: int(bound)}
		c.mu.Unlock()
	}
	if err != nil {
		c.unlisten(l)
		return nil, err
	}
	return l, nil
}

// unlisten forgets l; it reports whether l was still registered.
func (c *Conn) unlisten(l *listener) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.fwds, l)
	if i < 0 {
		return false
	}
	c.fwds = slices.Delete(c.fwds, i, i+1)
	return true
}

// handleOpen answers a channel the server opens: a connection to one of
// our remote forwards, or a refusal.
func (c *Conn) handleOpen(p []byte) error {
	r := reader{b: p[1:]}
	kind := r.string()
	remote, window, maxPacket := r.uint32(), r.uint32(), r.uint32()
	if r.err != nil {
		return fmt.Errorf("ssh: CHANNEL_OPEN: %w", r.err)
	}
	refuse := func(reason uint32, msg string) error {
		w := writer{msgOpenFailure}
		w.uint32(remote)
		w.uint32(reason)
		w.string(msg)
		w.string("")
		c.reply(w)
		return nil
	}
	if kind != "forwarded-tcpip" {
		return refuse(3, "unknown channel type "+strconv.Quote(kind)) // SSH_OPEN_UNKNOWN_CHANNEL_TYPE
	}
	host := r.string()
	port := r.uint32()
	origHost := r.string()
	origPort := r.uint32()
	if r.err != nil {
		return fmt.Errorf("ssh: forwarded-tcpip: %w", r.err)
	}
	c.mu.Lock()
	var l *listener
	for _, f := range c.fwds {
		if f.port == port && (l == nil || f.host == host) {
			l = f // the host as the server names it may differ from ours
		}
	}
	for _, f := range c.fwds {
		if l == nil && f.port == 0 && f.host == host { // asked for port 0, the answer still on its way
			l = f
		}
	}
	var laddr net.Addr
	if l != nil {
		laddr = l.addr
	}
	full := l != nil && len(l.conns) == cap(l.conns) // only this goroutine adds
	c.mu.Unlock()
	switch {
	case l == nil:
		return refuse(1, fmt.Sprintf("no forward for %s", net.JoinHostPort(host, strconv.Itoa(int(port))))) // SSH_OPEN_ADMINISTRATIVELY_PROHIBITED
	case full:
		return refuse(4, "too many connections waiting") // SSH_OPEN_RESOURCE_SHORTAGE
	}
	ch := c.newChannel()
	if ch == nil {
		return nil
	}
	ch.remote, ch.txWindow, ch.maxPacket = remote, window, max(1, min(maxPacket, maxData))
	ch.laddr = laddr
	ch.raddr = &net.TCPAddr{IP: net.ParseIP(origHost), Port: int(origPort)}
	// Confirmed before Accept can hand it out: its data must follow.
	w := writer{msgOpenConfirm}
	w.uint32(remote)
	w.uint32(ch.local)
	w.uint32(windowSize)
	w.uint32(maxData)
	c.reply(w)
	c.mu.Lock()
	if slices.Contains(c.fwds, l) {
		l.conns <- ch
		ch = nil
	}
	c.mu.Unlock()
	if ch != nil { // closed meanwhile
		ch.Close()
	}
	return nil
}

// Accept returns the next connection the server forwards.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case ch := <-l.conns:
		return ch, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.c.done:
		return nil, fmt.Errorf("ssh: listener: connection lost: %w", l.c.err)
	}
}

// Close cancels the forward on the server.
func (l *listener) Close() error {
	if !l.c.unlisten(l) {
		return nil
	}
	l.end()
	var w writer
	w.string(l.host)
	w.uint32(l.port)
	ok, _, err := l.c.SendRequest("cancel-tcpip-forward", true, w)
	if err == nil && !ok {
		err = errors.New("ssh: cancel-tcpip-forward request denied by peer")
	}
	return err
}

// end stops Accept and closes the connections still waiting for it.
func (l *listener) end() {
	close(l.done)
	for {
		select {
		case ch := <-l.conns:
			ch.Close()
		default:
			return
		}
	}
}

func (l *listener) Addr() net.Addr {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	return l.addr
}
