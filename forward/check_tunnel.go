package forward

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/portctl/portctl/forward/sshtun"
)

// checkTunnel checks a rule that goes through SSH: the login, the rule's
// targets as the SSH server reaches them (a remote rule's from here), and
// a sha256-checked stream each way through the tunnel to a built-in
// backend on this host. For a local rule or a SOCKS5 server, the backend
// is made reachable on the server by a remote forward of its loopback
// (127.0.0.1, a free port), so the stream crosses the tunnel twice; a
// remote rule listens on the server's loopback and the client connects to
// it through the tunnel. A server that refuses remote forwarding leaves
// the stream unsent, which is a warning, not a failure.
func checkTunnel(ctx context.Context, r Rule, ssh *sshtun.Manager, res *CheckResult, pass, fail func(string, ...any)) {
	if ssh == nil {
		fail("the rule goes via %s, but there is no SSH transport", r.Via)
		return
	}
	h, err := ssh.Host(r.Via)
	if err != nil {
		fail("%v", err)
		return
	}
	if err := h.Ready(ctx); err != nil {
		fail("%v", err)
		return
	}
	st := h.State()
	pass("logged in to %s as %s (keepalive round trip %v)", r.Via, st.Address, st.RTT.Round(time.Microsecond))
	warn := func(format string, args ...any) { res.Targets = append(res.Targets, fmt.Sprintf(format, args...)) }

	// The rule's own targets.
	for _, b := range r.Backends {
		var c net.Conn
		var err error
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		from := "from " + r.Via
		if r.Mode == ModeRemote {
			var d net.Dialer
			c, err = d.DialContext(dctx, "tcp", b)
			from = "from here"
		} else {
			c, err = h.Dial(dctx, "tcp", b)
		}
		cancel()
		if err != nil {
			warn("target %s does not accept connections %s: %v", b, from, err)
			continue
		}
		c.Close()
		pass("target %s accepts connections %s", b, from)
	}

	l, err := sumBackend()
	if err != nil {
		fail("backend: %v", err)
		return
	}
	defer l.Close()
	test := testRule(r)
	if r.Mode == ModeRemote {
		addr, stop, err := startChecked(test, []string{l.Addr().String()}, ssh)
		if err != nil {
			fail("listen on %s: %v", r.Via, err)
			return
		}
		defer stop()
		pass("%s listens for the rule (on %s, for the check)", r.Via, addr)
		checkStream(func() (net.Conn, error) {
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return h.Dial(dctx, "tcp", addr.String())
		}, pass, fail)
		return
	}
	// The built-in backend, as the server sees it.
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	bridge, err := h.Listen(lctx, "tcp", "127.0.0.1:0")
	cancel()
	if err != nil {
		warn("no stream was sent through the tunnel: it needs a remote forward of the server's loopback to a backend here, and %v", err)
		return
	}
	defer bridge.Close()
	go bridgeTo(bridge, l.Addr().String())
	checkThrough(test, bridge.Addr().String(), ssh, pass, fail)
}

// bridgeTo relays every connection ln accepts to addr, until ln closes.
func bridgeTo(ln net.Listener, addr string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			b, err := net.DialTimeout("tcp", addr, 3*time.Second)
			if err != nil {
				c.Close()
				return
			}
			sshtun.Relay(c, b)
		}()
	}
}

// dialSOCKS connects to the SOCKS5 server at proxy and asks it for
// target, an IPv4 address and port (RFC 1928: no authentication,
// CONNECT).
func dialSOCKS(proxy, target string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(target)
	if err != nil || !ap.Addr().Unmap().Is4() {
		return nil, fmt.Errorf("socks target %q: want IPv4:PORT", target)
	}
	c, err := net.DialTimeout("tcp", proxy, 3*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req := []byte{5, 1, 0, 5, 1, 0, 1}
	a4 := ap.Addr().Unmap().As4()
	req = append(req, a4[:]...)
	req = binary.BigEndian.AppendUint16(req, ap.Port())
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	var reply [2 + 10]byte // the method choice, then the reply with an IPv4 address
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("socks: %w", err)
	}
	if reply[0] != 5 || reply[1] != 0 || reply[3] != 0 {
		c.Close()
		return nil, fmt.Errorf("socks: the server refused: method %d, reply %d", reply[1], reply[3])
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
