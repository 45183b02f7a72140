package forward

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/portctl/portctl/forward/sshtun"
)

// CheckResult is the outcome of Check for one rule.
type CheckResult struct {
	Rule    string   `json:"rule"`
	Passed  bool     `json:"passed"`
	Checks  []string `json:"checks"`
	Failed  []string `json:"failed,omitempty"`
	Targets []string `json:"targets,omitempty"` // the rule's own targets that did not answer
}

// Check tests a rule: whether its own targets accept connections (TCP),
// and, on a free loopback port with the rule's options against built-in
// backends, the forwarding itself: for TCP 64 MiB to the backend checked
// by sha256, a half-close exchange (the backend answers after the client
// shut down writing) and 16 MiB back; for UDP an 8,000-byte datagram
// that must come back whole, and a second reply to it. It does not touch
// the rule's own listen address, so it runs beside a forwarder in use.
//
// A rule through SSH is driven through its tunnel, with ssh (see
// checkTunnel); a SOCKS5 rule through a SOCKS5 request.
func Check(ctx context.Context, r Rule, ssh *sshtun.Manager) CheckResult {
	res := CheckResult{Rule: r.Name}
	pass := func(format string, args ...any) { res.Checks = append(res.Checks, fmt.Sprintf(format, args...)) }
	fail := func(format string, args ...any) { res.Failed = append(res.Failed, fmt.Sprintf(format, args...)) }
	if r.Via != "" {
		checkTunnel(ctx, r, ssh, &res, pass, fail)
		res.Passed = len(res.Failed) == 0
		return res
	}
	// The rule's own targets.
	d := net.Dialer{Timeout: 3 * time.Second}
	for _, b := range r.Backends {
		if r.Proto == UDP {
			break // UDP has no connection to try
		}
		c, err := d.DialContext(ctx, "tcp", b)
		if err != nil {
			res.Targets = append(res.Targets, fmt.Sprintf("target %s does not accept connections: %v", b, err))
			continue
		}
		c.Close()
		pass("target %s accepts connections", b)
	}
	// The machinery, on loopback, against a built-in backend.
	test := testRule(r)
	if r.Proto == UDP {
		checkUDP(test, pass, fail)
	} else if l, err := sumBackend(); err != nil {
		fail("backend: %v", err)
	} else {
		defer l.Close()
		checkThrough(test, l.Addr().String(), nil, pass, fail)
	}
	res.Passed = len(res.Failed) == 0
	return res
}

// testRule is r as a check runs it: on a free loopback port, without the
// client filters, limit and PROXY header that would stand in the
// check's way.
func testRule(r Rule) Rule {
	r.Name = "check"
	r.Listen = netip.AddrPortFrom(loopback, 0)
	r.Allow, r.Deny, r.ProxyProtocol, r.MaxConns = nil, nil, 0, 0
	return r
}

// checkThrough runs the TCP rule test alone, with ssh, toward target (a
// SOCKS5 rule's client asks for it), and drives checkStream through it.
func checkThrough(test Rule, target string, ssh *sshtun.Manager, pass, fail func(string, ...any)) {
	backends := []string{target}
	if test.Mode == ModeSOCKS {
		backends = nil
	}
	addr, stop, err := startChecked(test, backends, ssh)
	if err != nil {
		fail("listen: %v", err)
		return
	}
	defer stop()
	dial := func() (net.Conn, error) { return net.DialTimeout("tcp", addr.String(), 3*time.Second) }
	if test.Mode == ModeSOCKS {
		dial = func() (net.Conn, error) { return dialSOCKS(addr.String(), target) }
	}
	checkStream(dial, pass, fail)
}

// sumBackend listens on a free loopback port for checkStream's clients:
// it reads to the client's half-close, answers with the sha256 of what
// came, then sends 16 MiB of its own and closes.
func sumBackend() (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				// Read to the end (the client's half-close), then answer
				// with the sha256 of what came and a stream of its own.
				h := sha256.New()
				io.Copy(h, c)
				time.Sleep(200 * time.Millisecond)
				c.Write(h.Sum(nil))
				io.CopyN(c, rand.Reader, 16<<20)
			}()
		}
	}()
	return l, nil
}

// checkStream drives a sumBackend through a connection dial opens: 64
// MiB there checked by sha256, the answer after a half-close, 16 MiB back.
func checkStream(dial func() (net.Conn, error), pass, fail func(string, ...any)) {
	c, err := dial()
	if err != nil {
		fail("connect through the forwarder: %v", err)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	const size = 64 << 20
	start := time.Now()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(c, h), rand.Reader, size); err != nil {
		fail("send 64 MiB: %v", err)
		return
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		fail("half-close: %v", err)
		return
	}
	sum := make([]byte, 32)
	if _, err := io.ReadFull(c, sum); err != nil {
		fail("half-close: no answer after shutting down writing: %v", err)
		return
	}
	if !bytes.Equal(sum, h.Sum(nil)) {
		fail("integrity: the backend's sha256 of the 64 MiB differs")
		return
	}
	pass("64 MiB to the backend, sha256 equal (%.0f MiB/s)", 64/time.Since(start).Seconds())
	pass("half-close: the answer came after the client shut down writing")
	n, err := io.Copy(io.Discard, c)
	if err != nil || n != 16<<20 {
		fail("16 MiB from the backend: %d bytes, %v", n, err)
		return
	}
	pass("16 MiB from the backend, then its close")
}

func checkUDP(r Rule, pass, fail func(string, ...any)) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fail("backend: %v", err)
		return
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			sum := sha256.Sum256(buf[:n])
			pc.WriteToUDPAddrPort(buf[:n], from)
			pc.WriteToUDPAddrPort(sum[:], from)
		}
	}()
	addr, stop, err := startChecked(r, []string{pc.LocalAddr().String()}, nil)
	if err != nil {
		fail("listen: %v", err)
		return
	}
	defer stop()
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		fail("socket: %v", err)
		return
	}
	defer c.Close()
	msg := make([]byte, 8000)
	rand.Read(msg)
	c.Write(msg)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], msg) {
		fail("an 8,000-byte datagram: %d bytes back, %v", n, err)
		return
	}
	pass("an 8,000-byte datagram came back whole")
	n, err = c.Read(buf)
	sum := sha256.Sum256(msg)
	if err != nil || !bytes.Equal(buf[:n], sum[:]) {
		fail("a second reply to the same datagram: %v", err)
		return
	}
	pass("a second reply to the same datagram reached the client")
}

// startChecked runs r alone toward backends, and returns where it
// listens and how to stop it.
func startChecked(r Rule, backends []string, ssh *sshtun.Manager) (netip.AddrPort, func(), error) {
	r.Backends = backends
	f := New(Config{SSH: ssh})
	if err := f.Apply([]Rule{r}); err != nil {
		return netip.AddrPort{}, nil, err
	}
	addr, _ := f.Addr(r.Key())
	return addr, func() { f.Shutdown(context.Background()) }, nil
}
