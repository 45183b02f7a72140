package forward

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/portctl/portctl/forward/sshtun"
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

// Mode is what a rule does with the connections it accepts.
type Mode string

// The modes. Through SSH (Rule.Via) they are ssh -L, -R and -D.
const (
	// ModeForward sends each connection to one of the backends, through
	// Via when it is set (ssh -L).
	ModeForward Mode = ""
	// ModeRemote listens on the SSH server Via names, and sends what it
	// accepts there to the backends, from here (ssh -R).
	ModeRemote Mode = "remote"
	// ModeSOCKS is a SOCKS5 server: each client names its target, which is
	// reached through Via (ssh -D), or from here without it. It has no
	// backends.
	ModeSOCKS Mode = "socks5"
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
	// Mode is ModeForward unless the rule is a remote forward or a SOCKS5
	// server.
	Mode Mode
	// Via, "ssh://[USER@]HOST[:PORT]", carries the rule's connections
	// through that SSH server (Config.SSH connects to it): the backends
	// are reached from it, and are resolved by it. Empty: direct. TCP only.
	Via string

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

// Tunnelled reports whether the rule's connections run on the goroutine
// path of SSH tunnels and SOCKS5 (through an SSH server or not) rather than
// the event loops.
func (r Rule) Tunnelled() bool {
	return r.Via != "" || r.Mode != ModeForward
}

// Key names what a listener is bound to: rules with the same key are the
// same listener. A remote rule's listener is on its SSH server.
func (r Rule) Key() string {
	if r.Mode == ModeRemote {
		return "remote/" + r.Via + "/" + r.Listen.String()
	}
	return string(r.Proto) + "/" + r.Listen.String()
}

// String writes the rule as ParseRule (ParseRemoteRule for a remote rule)
// reads it, with " via ssh://..." after it when it goes through SSH.
func (r Rule) String() string {
	var s string
	switch r.Mode {
	case ModeSOCKS:
		s = "socks5://" + r.Listen.String()
	case ModeRemote:
		s = fmt.Sprintf("remote/%s:%s", r.Listen, strings.Join(r.Backends, ","))
	default:
		s = fmt.Sprintf("%s/%s:%s", r.Proto, r.Listen, strings.Join(r.Backends, ","))
	}
	if r.Via != "" {
		s += " via " + r.Via
	}
	return s
}

// Validate checks what ParseRule cannot see alone: the combination of a
// rule's mode, protocol, SSH server and options. Apply calls it; errors
// wrap ErrSyntax and name the rule.
func (r Rule) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrSyntax, r.Name, fmt.Sprintf(format, args...))
	}
	if r.Via != "" {
		if _, err := sshtun.ParseTarget(r.Via); err != nil {
			return bad("%s", err.(*sshtun.TargetError).Detail())
		}
		if r.Proto == UDP {
			return bad("SSH carries TCP only: a UDP rule cannot go via %s", r.Via)
		}
		if r.HealthCheck > 0 && r.Mode == ModeForward {
			return bad("health checks are not made through SSH: the targets are reached from %s", r.Via)
		}
	}
	switch r.Mode {
	case ModeForward:
	case ModeRemote:
		if r.Via == "" {
			return bad("a remote rule listens on an SSH server: give it via ssh://[USER@]HOST[:PORT]")
		}
	case ModeSOCKS:
		if r.Proto != TCP {
			return bad("a SOCKS5 server is TCP")
		}
		if len(r.Backends) > 0 {
			return bad("a SOCKS5 server has no targets: its clients name them")
		}
		if r.ProxyProtocol != 0 || r.HealthCheck > 0 {
			return bad("proxy_protocol and health_check are not for a SOCKS5 server")
		}
		return nil
	default:
		return bad("mode %q; want remote, socks5 or none", r.Mode)
	}
	if len(r.Backends) == 0 {
		return bad("no target")
	}
	return nil
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
//
// "socks5://[LISTEN_ADDR:]LISTEN_PORT" is a SOCKS5 server (ModeSOCKS);
// without LISTEN_ADDR it listens on 127.0.0.1 only, as ssh -D does: an
// open proxy on every interface must be asked for.
func ParseRule(s string) (Rule, error) {
	if rest, ok := cutPrefixFold(s, "socks5://"); ok {
		return parseSOCKS(s, rest)
	}
	return parseRule(s, netip.IPv6Unspecified())
}

// ParseRemoteRule reads a remote forward's rule (ModeRemote, ssh -R):
//
//	[LISTEN_ADDR:]LISTEN_PORT:HOST:PORT[,HOST:PORT…]
//
// LISTEN_ADDR is on the SSH server; without it the server listens on its
// loopback address, as for ssh -R (sshd's GatewayPorts decides whether
// another address is granted). The targets are reached from here. The
// rule still needs Via.
func ParseRemoteRule(s string) (Rule, error) {
	text := strings.TrimPrefix(s, "tcp/")
	if strings.HasPrefix(text, "udp/") {
		return Rule{}, fmt.Errorf("%w %q: SSH carries TCP only: a remote forward cannot be UDP", ErrSyntax, s)
	}
	r, err := parseRule(text, loopback)
	if err != nil {
		return Rule{}, err
	}
	r.Name, r.Mode = "remote/"+text, ModeRemote
	return r, nil
}

// loopback is 127.0.0.1: where SOCKS5 servers and remote rules listen
// without an address, and where checks run.
var loopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// cutPrefixFold is strings.CutPrefix, ignoring case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// parseSOCKS reads the [ADDR:]PORT of a socks5:// rule s.
func parseSOCKS(s, rest string) (Rule, error) {
	r := Rule{Proto: TCP, Name: s, Mode: ModeSOCKS}
	rest = strings.TrimSuffix(rest, "/")
	if p, err := strconv.ParseUint(rest, 10, 16); err == nil {
		r.Listen = netip.AddrPortFrom(loopback, uint16(p))
		return r, nil
	}
	ap, err := netip.ParseAddrPort(rest)
	if err != nil {
		return Rule{}, fmt.Errorf("%w %q: want socks5://[LISTEN_ADDR:]LISTEN_PORT, such as socks5://127.0.0.1:1080", ErrSyntax, s)
	}
	r.Listen = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return r, nil
}

// parseRule reads a forwarding rule; defaultListen is the listen address
// when the rule gives only a port.
func parseRule(s string, defaultListen netip.Addr) (Rule, error) {
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
			listenAddr = defaultListen
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
