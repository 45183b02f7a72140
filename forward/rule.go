package forward

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Proto is the transport a rule forwards.
type Proto string

// The protocols.
const (
	TCP Proto = "tcp"
	UDP Proto = "udp"
)

// Balance chooses a backend for each new connection or UDP session.
type Balance string

// The balancing methods.
const (
	RoundRobin Balance = "roundrobin"
	LeastConn  Balance = "leastconn"
)

// Rule is one forwarding: what to listen on and where to send it.
type Rule struct {
	// Name identifies the rule in logs and statistics; by default the
	// rule as written ("tcp/8080:127.0.0.1:80").
	Name  string
	Proto Proto
	// Listen is the local address; an unspecified address ("[::]:8080",
	// "0.0.0.0:8080") listens on every interface.
	Listen netip.AddrPort
	// Backends are "host:port" targets; host names are resolved when the
	// rule starts and again every 30 seconds.
	Backends []string
	Balance  Balance

	MaxConns       int            // TCP connections (UDP: sessions) at once; 0: no limit (UDP: 4,096)
	IdleTimeout    time.Duration  // close after this long without a byte either way; 0: none (UDP: 60 s)
	ConnectTimeout time.Duration  // to a backend; 0: 5 s
	Allow          []netip.Prefix // clients allowed; empty: all
	Deny           []netip.Prefix // clients refused, checked first
	// ProxyProtocol, 1 or 2, sends the PROXY protocol header of that
	// version to the backend before the client's bytes; 0 for none.
	ProxyProtocol int
	// HealthCheck, when not 0, checks every backend with a TCP connect
	// at that interval; a backend that fails is skipped until it passes.
	HealthCheck time.Duration
}

// Key names what a listener is bound to: rules with the same key are the
// same listener.
func (r Rule) Key() string { return string(r.Proto) + "/" + r.Listen.String() }

// String writes the rule as ParseRule reads it.
func (r Rule) String() string {
	return fmt.Sprintf("%s/%s:%s", r.Proto, r.Listen, strings.Join(r.Backends, ","))
}

func (r Rule) connectTimeout() time.Duration {
	if r.ConnectTimeout <= 0 {
		return 5 * time.Second
	}
	return r.ConnectTimeout
}

// ErrSyntax is wrapped by every error of ParseRule and ParseConfig.
var ErrSyntax = errors.New("forward: bad rule")

// ParseRule reads a rule as written on the command line:
//
//	[tcp/|udp/][LISTEN_ADDR:]LISTEN_PORT:HOST:PORT[,HOST:PORT…]
//
// IPv6 addresses are written in brackets: "[::]:443:[2001:db8::1]:443".
// Without LISTEN_ADDR the rule listens on every interface; listen port 0
// takes any free port (Forwarder.Addr tells which). Several backends are
// separated by commas.
func ParseRule(s string) (Rule, error) {
	r := Rule{Proto: TCP, Name: s}
	rest := s
	if p, after, ok := strings.Cut(rest, "/"); ok && (p == "tcp" || p == "udp") {
		r.Proto, rest = Proto(p), after
	} else if ok && !strings.Contains(p, ":") && !strings.Contains(p, "[") {
		return Rule{}, fmt.Errorf("%w %q: protocol %q; want tcp or udp", ErrSyntax, s, p)
	}
	// The listen part: "[v6]:port:", "v4:port:" or "port:".
	var listenAddr netip.Addr
	var portText string
	switch {
	case strings.HasPrefix(rest, "["):
		end := strings.Index(rest, "]:")
		if end < 0 {
			return Rule{}, fmt.Errorf("%w %q: an IPv6 listen address needs brackets and a port: [::]:8080:HOST:PORT", ErrSyntax, s)
		}
		a, err := netip.ParseAddr(rest[1:end])
		if err != nil || !a.Is6() {
			return Rule{}, fmt.Errorf("%w %q: listen address %q is not an IPv6 address", ErrSyntax, s, rest[1:end])
		}
		listenAddr = a
		portText, rest, _ = strings.Cut(rest[end+2:], ":")
	default:
		first, after, ok := strings.Cut(rest, ":")
		if !ok {
			return Rule{}, fmt.Errorf("%w %q: want LISTEN_PORT:HOST:PORT, such as 8080:127.0.0.1:80", ErrSyntax, s)
		}
		if _, err := strconv.ParseUint(first, 10, 16); err == nil {
			portText, rest = first, after
			listenAddr = netip.IPv6Unspecified()
		} else {
			a, err := netip.ParseAddr(first)
			if err != nil || !a.Is4() {
				return Rule{}, fmt.Errorf("%w %q: %q is neither a port nor an IPv4 listen address (IPv6 goes in brackets)", ErrSyntax, s, first)
			}
			listenAddr = a
			portText, rest, _ = strings.Cut(after, ":")
		}
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return Rule{}, fmt.Errorf("%w %q: listen port %q; want 1-65535 (0: any free port)", ErrSyntax, s, portText)
	}
	r.Listen = netip.AddrPortFrom(listenAddr, uint16(port))
	if rest == "" {
		return Rule{}, fmt.Errorf("%w %q: no target; want LISTEN_PORT:HOST:PORT", ErrSyntax, s)
	}
	for _, b := range strings.Split(rest, ",") {
		if err := checkBackend(b); err != nil {
			return Rule{}, fmt.Errorf("%w %q: %v", ErrSyntax, s, err)
		}
		r.Backends = append(r.Backends, b)
	}
	return r, nil
}

// checkBackend checks a "host:port" target.
func checkBackend(b string) error {
	host, port, err := splitHostPort(b)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("target %q has no host", b)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("target %q: port %q; want 1-65535", b, port)
	}
	if strings.ContainsAny(host, " /\\@") {
		return fmt.Errorf("target %q: %q is not a host name or address", b, host)
	}
	return nil
}

// splitHostPort splits "host:port" and "[v6]:port".
func splitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]:")
		if end < 0 {
			return "", "", fmt.Errorf("target %q: want [IPv6]:PORT", s)
		}
		if _, err := netip.ParseAddr(s[1:end]); err != nil {
			return "", "", fmt.Errorf("target %q: %q is not an IPv6 address", s, s[1:end])
		}
		return s[1:end], s[end+2:], nil
	}
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", "", fmt.Errorf("target %q: want HOST:PORT", s)
	}
	if strings.Contains(s[:i], ":") {
		return "", "", fmt.Errorf("target %q: an IPv6 address goes in brackets: [2001:db8::1]:443", s)
	}
	return s[:i], s[i+1:], nil
}

// allowed reports whether the rule accepts a client from addr.
func (r *Rule) allowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range r.Deny {
		if p.Contains(addr) {
			return false
		}
	}
	if len(r.Allow) == 0 {
		return true
	}
	for _, p := range r.Allow {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
