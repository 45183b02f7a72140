package sshtun

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
)

// SOCKS5 is a SOCKS version 5 server (RFC 1928), CONNECT only and without
// authentication, that opens each connection with Dial: through an SSH
// host, Host.Dial, it is ssh -D. Host names are resolved by Dial (by the
// SSH server), as curl --socks5-hostname expects. It is safe for
// concurrent use.
type SOCKS5 struct {
	// Dial opens the connection a client asks for.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// HandshakeTimeout bounds the client's greeting and request; zero
	// means 10 s.
	HandshakeTimeout time.Duration
}

// SOCKS reply codes (RFC 1928 section 6).
const (
	socksSucceeded          = 0x00
	socksGeneralFailure     = 0x01
	socksNotAllowed         = 0x02
	socksHostUnreachable    = 0x04
	socksConnRefused        = 0x05
	socksCommandUnsupported = 0x07
	socksAddrUnsupported    = 0x08
)

// Serve accepts SOCKS clients on ln until it is closed or ctx ends, then
// closes the connections still open and returns.
func (s *SOCKS5) Serve(ctx context.Context, ln net.Listener) error {
	return serve(ctx, ln, func(ctx context.Context, c net.Conn) { s.ServeConn(ctx, c) })
}

// ServeConn serves one SOCKS client and closes c. The error says why the
// request failed, or how the relay ended.
func (s *SOCKS5) ServeConn(ctx context.Context, c net.Conn) error {
	defer c.Close()
	timeout := s.HandshakeTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	c.SetDeadline(time.Now().Add(timeout))
	if err := socksGreeting(c); err != nil {
		return err
	}
	addr, code, err := readSOCKSRequest(c)
	if err != nil {
		if code != 0 {
			c.Write(socksReply(code))
		}
		return err
	}
	c.SetDeadline(time.Time{})
	dctx, cancel := context.WithTimeout(ctx, timeout)
	r, err := s.Dial(dctx, "tcp", addr)
	cancel()
	if err != nil {
		c.Write(socksReply(socksErrorCode(err)))
		return fmt.Errorf("socks: connect %s: %w", addr, err)
	}
	if _, err := c.Write(socksReply(socksSucceeded)); err != nil {
		r.Close()
		return err
	}
	_, _, err = Relay(c, r)
	return err
}

// socksGreeting reads the client's methods and picks "no authentication".
func socksGreeting(c io.ReadWriter) error {
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fmt.Errorf("socks: greeting: %w", err)
	}
	if hdr[0] != 5 {
		return fmt.Errorf("socks: version %d, want 5", hdr[0])
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return fmt.Errorf("socks: greeting: %w", err)
	}
	for _, m := range methods {
		if m == 0 {
			_, err := c.Write([]byte{5, 0})
			return err
		}
	}
	c.Write([]byte{5, 0xff})
	return errors.New("socks: the client offers no method without authentication")
}

// readSOCKSRequest reads a request and returns the address to CONNECT to
// as host:port; on error, the reply code to send (0: none).
func readSOCKSRequest(r io.Reader) (addr string, code byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return "", 0, fmt.Errorf("socks: request: %w", err)
	}
	if hdr[0] != 5 {
		return "", socksGeneralFailure, fmt.Errorf("socks: request version %d, want 5", hdr[0])
	}
	var host string
	switch hdr[3] {
	case 1:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", 0, fmt.Errorf("socks: request: %w", err)
		}
		host = netip.AddrFrom4(b).String()
	case 4:
		var b [16]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return "", 0, fmt.Errorf("socks: request: %w", err)
		}
		host = netip.AddrFrom16(b).String()
	case 3:
		var n [1]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return "", 0, fmt.Errorf("socks: request: %w", err)
		}
		b := make([]byte, n[0])
		if _, err := io.ReadFull(r, b); err != nil {
			return "", 0, fmt.Errorf("socks: request: %w", err)
		}
		if n[0] == 0 || !validHostName(string(b)) {
			return "", socksHostUnreachable, fmt.Errorf("socks: host name %q is not a host name", b)
		}
		host = string(b)
	default:
		return "", socksAddrUnsupported, fmt.Errorf("socks: address type %d unsupported", hdr[3])
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return "", 0, fmt.Errorf("socks: request: %w", err)
	}
	if hdr[1] != 1 {
		return "", socksCommandUnsupported, fmt.Errorf("socks: command %d unsupported (only CONNECT)", hdr[1])
	}
	return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(p[:])))), 0, nil
}

// socksReply is a reply with a zero bound address.
func socksReply(code byte) []byte {
	return []byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0}
}

// socksErrorCode maps a Dial error to a reply code: the SSH server's
// refusal reason where there is one.
func socksErrorCode(err error) byte {
	var oe *ssh.OpenChannelError
	if errors.As(err, &oe) {
		switch oe.Reason {
		case ssh.Prohibited:
			return socksNotAllowed
		case ssh.ConnectionFailed:
			return socksConnRefused
		}
		return socksGeneralFailure
	}
	if errors.Is(err, ErrLinkDown) {
		return socksHostUnreachable
	}
	return socksGeneralFailure
}
