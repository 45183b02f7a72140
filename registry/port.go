package registry

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrSyntax is wrapped by every error about malformed input: a port, a
// range, a protocol or a registry file that cannot be parsed.
var ErrSyntax = errors.New("invalid syntax")

// Class is a port range class of RFC 6335 section 6.
type Class uint8

// The three classes of RFC 6335.
const (
	System  Class = iota + 1 // 0–1023, the well-known ports
	User                     // 1024–49151, the registered ports
	Dynamic                  // 49152–65535, the dynamic or private ports
)

// Classify returns the RFC 6335 class of port p.
func Classify(p uint16) Class {
	switch {
	case p <= 1023:
		return System
	case p <= 49151:
		return User
	}
	return Dynamic
}

// String returns "system", "user" or "dynamic".
func (c Class) String() string {
	switch c {
	case System:
		return "system"
	case User:
		return "user"
	case Dynamic:
		return "dynamic"
	}
	return "unknown"
}

// Long returns the class with its range and its other common name, such as
// "system (well-known) 0-1023".
func (c Class) Long() string {
	switch c {
	case System:
		return "system (well-known) 0-1023"
	case User:
		return "user (registered) 1024-49151"
	case Dynamic:
		return "dynamic (private) 49152-65535"
	}
	return "unknown"
}

// Range returns the first and last port of the class.
func (c Class) Range() Range {
	switch c {
	case System:
		return Range{0, 1023}
	case User:
		return Range{1024, 49151}
	}
	return Range{49152, 65535}
}

// MarshalText encodes the class as its String form.
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// Range is an inclusive range of ports. A single port p is Range{p, p}.
type Range struct {
	First, Last uint16
}

// Contains reports whether p lies in r.
func (r Range) Contains(p uint16) bool { return p >= r.First && p <= r.Last }

// Len returns the number of ports in r.
func (r Range) Len() int { return int(r.Last) - int(r.First) + 1 }

// String returns "first-last", or the single port.
func (r Range) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// ParsePort parses a decimal port number 0–65535. Surrounding space is
// ignored; signs, hexadecimal and other forms are refused.
func ParsePort(s string) (uint16, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, syntaxf("empty port (want a number 0-65535)")
	}
	if !digits(t) {
		return 0, syntaxf("port %q is not a number (want 0-65535)", s)
	}
	if n := len(t); n > 1 {
		t = strings.TrimLeft(t, "0")
		if t == "" {
			t = "0"
		}
	}
	if len(t) > 5 {
		return 0, syntaxf("port %s is out of range (want 0-65535)", t)
	}
	n, _ := strconv.Atoi(t) // at most 5 digits: cannot overflow
	if n > 65535 {
		return 0, syntaxf("port %s is out of range (want 0-65535)", t)
	}
	return uint16(n), nil
}

// ParseRange parses "A-B" (inclusive, A <= B) or a single port "A".
func ParseRange(s string) (Range, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		p, err := ParsePort(s)
		return Range{p, p}, err
	}
	if strings.TrimSpace(a) == "" {
		return Range{}, syntaxf("port %q is negative or has no start (want 0-65535 or A-B)", s)
	}
	first, err := ParsePort(a)
	if err != nil {
		return Range{}, syntaxf("range %q: first port %q is not 0-65535", s, a)
	}
	last, err := ParsePort(b)
	if err != nil {
		return Range{}, syntaxf("range %q: last port %q is not 0-65535", s, b)
	}
	if first > last {
		return Range{}, syntaxf("range %q runs backwards (want A-B with A <= B)", s)
	}
	return Range{first, last}, nil
}

// SyntaxError describes malformed input. It matches ErrSyntax with errors.Is.
type SyntaxError struct {
	Msg string
}

func (e *SyntaxError) Error() string { return e.Msg }

// Is reports whether target is ErrSyntax.
func (e *SyntaxError) Is(target error) bool { return target == ErrSyntax }

func syntaxf(format string, args ...any) error {
	return &SyntaxError{Msg: fmt.Sprintf(format, args...)}
}

// UnmarshalText decodes a class from its String form.
func (c *Class) UnmarshalText(b []byte) error {
	for _, k := range []Class{System, User, Dynamic} {
		if string(b) == k.String() {
			*c = k
			return nil
		}
	}
	return syntaxf("unknown port class %q (want system, user or dynamic)", b)
}
