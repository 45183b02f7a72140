package sshtun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Target is where a tunnel goes: an SSH server named as in
// ssh://[USER@]HOST[:PORT]. Host may be an alias of the user's ssh_config.
// User is empty and Port 0 when the target does not give them (the config,
// then the local user name and port 22, decide).
type Target struct {
	User string
	Host string
	Port uint16
}

// ErrTarget is wrapped by every error of ParseTarget.
var ErrTarget = errors.New("bad ssh target")

// TargetError is ParseTarget's error: the target given and what is wrong
// with it.
type TargetError struct {
	Target  string
	Problem string
}

func (e *TargetError) Error() string { return ErrTarget.Error() + " " + e.Detail() }

// Detail is the error without its "bad ssh target" prefix, for callers
// that name the target's place themselves (a flag, a rule).
func (e *TargetError) Detail() string { return fmt.Sprintf("%q: %s", e.Target, e.Problem) }

func (e *TargetError) Unwrap() error { return ErrTarget }

// ParseTarget parses ssh://[USER@]HOST[:PORT]. HOST is a name, an IPv4
// address or an IPv6 address in brackets; a trailing slash is allowed,
// a path, query, fragment or password is not. Its errors are
// *TargetError.
func ParseTarget(s string) (Target, error) {
	const scheme = "ssh://"
	if len(s) < len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		return Target{}, &TargetError{s, "want ssh://[USER@]HOST[:PORT]"}
	}
	rest := strings.TrimSuffix(s[len(scheme):], "/")
	if strings.ContainsAny(rest, "/?#") {
		return Target{}, &TargetError{s, "no path, query or fragment is accepted, want ssh://[USER@]HOST[:PORT]"}
	}
	t, err := parseHostSpec(rest)
	if err != nil {
		return Target{}, &TargetError{s, err.Error()}
	}
	return t, nil
}

// parseHostSpec parses [USER@]HOST[:PORT], the form of the authority of an
// ssh:// target and of each hop of ProxyJump.
func parseHostSpec(s string) (Target, error) {
	var t Target
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		t.User = s[:i]
		s = s[i+1:]
		if t.User == "" {
			return Target{}, errors.New("empty user name before @")
		}
		if strings.ContainsRune(t.User, ':') {
			return Target{}, errors.New("a password in the target is not accepted (use a key, ssh-agent or keyboard-interactive)")
		}
		if !validUser(t.User) {
			return Target{}, fmt.Errorf("user name %q has characters a login name cannot have", t.User)
		}
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Target{}, errors.New("missing ] after an IPv6 address")
		}
		host = s[1:end]
		after := s[end+1:]
		switch {
		case after == "":
		case after[0] == ':':
			port = after[1:]
			if port == "" {
				return Target{}, errors.New("empty port after :")
			}
		default:
			return Target{}, fmt.Errorf("unexpected %q after ]", after)
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return Target{}, fmt.Errorf("%q in brackets is not an IPv6 address", host)
		}
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
			if strings.ContainsRune(host, ':') {
				return Target{}, errors.New("an IPv6 address must be in brackets, as [2001:db8::1]:22")
			}
			if port == "" {
				return Target{}, errors.New("empty port after :")
			}
		}
		if host == "" {
			return Target{}, errors.New("no host")
		}
		if !validHostName(host) {
			return Target{}, fmt.Errorf("host %q: want a name (letters, digits, '-', '.', '_'), an IPv4 address or [IPv6]", host)
		}
	}
	t.Host = host
	if port != "" {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 || port[0] == '+' {
			return Target{}, fmt.Errorf("port %q: want a number 1-65535", port)
		}
		t.Port = uint16(p)
	}
	return t, nil
}

// validHostName accepts host names and IPv4 addresses: letters, digits,
// '-', '.', '_', not starting with '-' (which ssh would read as an option).
func validHostName(h string) bool {
	if h == "" || len(h) > 253 || h[0] == '-' {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// validUser accepts what a login name can hold: no control characters,
// spaces, '/', ':' or '@', not starting with '-'.
func validUser(u string) bool {
	if u == "" || len(u) > 256 || u[0] == '-' {
		return false
	}
	for _, r := range u {
		if r <= ' ' || r == 0x7f || r == '/' || r == ':' || r == '@' || r == '%' {
			return false
		}
	}
	return true
}

// String returns the target as ssh://[USER@]HOST[:PORT].
func (t Target) String() string {
	var b strings.Builder
	b.WriteString("ssh://")
	if t.User != "" {
		b.WriteString(t.User)
		b.WriteByte('@')
	}
	if strings.ContainsRune(t.Host, ':') {
		b.WriteString("[" + t.Host + "]")
	} else {
		b.WriteString(t.Host)
	}
	if t.Port != 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(int(t.Port)))
	}
	return b.String()
}

// hostPort joins a host and a port as "host:port", "[v6]:port".
func hostPort(host string, port uint16) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}
