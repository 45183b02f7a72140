package probe

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/portctl/portctl/registry"
)

// TargetForm is the accepted form of a target, for messages.
const TargetForm = "HOST:PORT, such as localhost:5432 or [::1]:22"

// portForm is what a port may be, for messages.
const portForm = "HOST:PORT with a port 1-65535 or a service name such as ssh"

// Target is a TCP endpoint to probe: a host name or IP address and a port.
type Target struct {
	// Host is a host name or an IP literal, without brackets. An IPv6
	// literal may carry a zone ("fe80::1%eth0").
	Host string
	// Port is the port number; 0 while Service is not yet resolved.
	Port uint16
	// Service is the service name given in place of a number ("ssh"),
	// or empty.
	Service string
}

// String returns the target as it is written: HOST:PORT, with brackets
// around an IPv6 literal and the service name when one was given.
func (t Target) String() string {
	port := t.Service
	if port == "" {
		port = strconv.Itoa(int(t.Port))
	}
	return joinHostPort(t.Host, port)
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// Addr returns the host as an IP address when it is an IP literal.
func (t Target) Addr() (netip.Addr, bool) {
	a, err := netip.ParseAddr(t.Host)
	return a, err == nil
}

// Resolved returns t with Service looked up as a TCP service in reg (for
// example "ssh" becomes port 22). A target with a number is returned as it
// is. An unknown name is a *registry.SyntaxError.
func (t Target) Resolved(reg *registry.Registry) (Target, error) {
	if t.Service == "" || t.Port != 0 {
		return t, nil
	}
	for _, a := range reg.Name(t.Service, registry.TCP) {
		if a.Port != 0 {
			t.Port = a.Port
			return t, nil
		}
	}
	return t, syntaxf("target %q: no TCP service is named %q (want %s)", t.String(), t.Service, portForm)
}

// ParseTarget parses "HOST:PORT". HOST is a host name, an IPv4 address or
// an IPv6 address in brackets ("[::1]:22"); PORT is a number 1-65535 or a
// service name, left unresolved in Target.Service. Errors are
// *registry.SyntaxError values that name the input and the accepted form.
func ParseTarget(s string) (Target, error) {
	if s == "" {
		return Target{}, syntaxf("empty target (want %s)", TargetForm)
	}
	if strings.Contains(s, "://") {
		return Target{}, syntaxf("target %q is a URL (want %s)", s, TargetForm)
	}
	var host, port string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Target{}, syntaxf("target %q has no closing ']' (want %s)", s, TargetForm)
		}
		host, port = s[1:end], s[end+1:]
		if !strings.HasPrefix(port, ":") {
			return Target{}, syntaxf("target %q has no port after ']' (want %s)", s, TargetForm)
		}
		port = port[1:]
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return Target{}, syntaxf("target %q: %q in brackets is not an IPv6 address (want %s)", s, host, TargetForm)
		}
	} else {
		i := strings.LastIndexByte(s, ':')
		if i < 0 {
			return Target{}, syntaxf("target %q has no port (want %s)", s, TargetForm)
		}
		host, port = s[:i], s[i+1:]
		if strings.Contains(host, ":") {
			return Target{}, syntaxf("target %q: write an IPv6 address in brackets (want HOST:PORT, such as [::1]:22)", s)
		}
		if host == "" {
			return Target{}, syntaxf("target %q has no host (want %s)", s, TargetForm)
		}
		if _, err := netip.ParseAddr(host); err != nil && !isHostName(host) {
			return Target{}, syntaxf("target %q: %q is not a host name or IP address (names use letters, digits, '-', '_' and '.'; want %s)", s, host, TargetForm)
		}
	}
	t := Target{Host: host}
	switch {
	case port == "":
		return Target{}, syntaxf("target %q has no port (want %s)", s, TargetForm)
	case isDigits(port):
		p, err := registry.ParsePort(port)
		if err != nil {
			return Target{}, syntaxf("target %q: port %s is out of range (want %s)", s, port, portForm)
		}
		if p == 0 {
			return Target{}, syntaxf("target %q: port 0 cannot be connected to (want %s)", s, portForm)
		}
		t.Port = p
	case isServiceName(port):
		t.Service = port
	default:
		return Target{}, syntaxf("target %q: port %q is not a number or a service name (want %s)", s, port, portForm)
	}
	return t, nil
}

// isHostName reports whether s is shaped like a DNS host name: at most 253
// bytes of letters, digits, '-', '_' and dots, with no empty label other
// than a final dot, and no label starting or ending with '-'.
func isHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

// isServiceName reports whether s is shaped like a service name: a letter
// or digit, then up to 63 letters, digits and '.', '_', '+', '-', with at
// least one letter.
func isServiceName(s string) bool {
	if s == "" || len(s) > 64 || !isAlnum(s[0]) {
		return false
	}
	letter := false
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			letter = true
		case '0' <= c && c <= '9', strings.IndexByte("._+-", c) >= 0:
		default:
			return false
		}
	}
	return letter
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func syntaxf(format string, args ...any) error {
	return &registry.SyntaxError{Msg: fmt.Sprintf(format, args...)}
}
