// Package netconf reads this host's port settings: the ephemeral (client)
// port range, the reserved ports, and the port below which binding needs
// privilege. Parsers of the Linux /proc/sys files take bytes and are pure;
// Read gathers the settings for the running OS.
package netconf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/portctl/portctl/registry"
)

// ErrNotImplemented is returned where the OS gives no way to read a setting.
var ErrNotImplemented = errors.New("netconf: not implemented on this OS")

// Host holds the port settings of one machine.
type Host struct {
	// Ephemeral is the range the OS picks client (source) ports from.
	Ephemeral registry.Range `json:"ephemeral_range"`
	// EphemeralDefault is true when Ephemeral is the OS's documented
	// default rather than a value read from the system.
	EphemeralDefault bool `json:"ephemeral_default,omitempty"`
	// Reserved are ports the OS never hands out as ephemeral ports
	// (Linux ip_local_reserved_ports).
	Reserved []registry.Range `json:"reserved,omitempty"`
	// UnprivilegedStart is the lowest port an unprivileged process may
	// bind: 0 means any port, 65536 none.
	UnprivilegedStart int `json:"unprivileged_port_start"`
	// PrivilegeHint names what grants binding below UnprivilegedStart.
	PrivilegeHint string `json:"-"`
	// TCPTWReuse is Linux's net.ipv4.tcp_tw_reuse (0 off, 1 on, 2 loopback
	// only), or -1 where unknown.
	TCPTWReuse int `json:"tcp_tw_reuse"`
	// TCPSyncookies is Linux's net.ipv4.tcp_syncookies (0 off, 1 when the
	// SYN backlog overflows, 2 always), or -1 where unknown.
	TCPSyncookies int `json:"tcp_syncookies"`
}

// Privileged reports whether binding port p needs privilege on this host.
func (h Host) Privileged(p uint16) bool { return p != 0 && int(p) < h.UnprivilegedStart }

// InEphemeral reports whether p lies in the ephemeral range.
func (h Host) InEphemeral(p uint16) bool { return h.Ephemeral.Contains(p) }

// IsReserved reports whether p is one of the reserved ports.
func (h Host) IsReserved(p uint16) bool {
	for _, r := range h.Reserved {
		if r.Contains(p) {
			return true
		}
	}
	return false
}

// EphemeralUsable is how many ports of the ephemeral range are not
// reserved: the client ports the kernel can pick from.
func (h Host) EphemeralUsable() int {
	n := h.Ephemeral.Len()
	for _, r := range h.Reserved {
		if lo, hi := max(r.First, h.Ephemeral.First), min(r.Last, h.Ephemeral.Last); lo <= hi {
			n -= int(hi) - int(lo) + 1
		}
	}
	return n
}

// ParsePortRange parses Linux's ip_local_port_range: two port numbers
// separated by white space, such as "32768\t60999\n".
func ParsePortRange(b []byte) (registry.Range, error) {
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return registry.Range{}, syntaxf("netconf: port range %q: want two numbers", clip(b))
	}
	first, err1 := registry.ParsePort(f[0])
	last, err2 := registry.ParsePort(f[1])
	if err1 != nil || err2 != nil || first > last {
		return registry.Range{}, syntaxf("netconf: port range %q: want two ports 0-65535, low first", clip(b))
	}
	return registry.Range{First: first, Last: last}, nil
}

// ParseReserved parses Linux's ip_local_reserved_ports: a comma-separated
// list of ports and ranges, such as "8080,9000-9010\n", or an empty line.
func ParseReserved(b []byte) ([]registry.Range, error) {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, nil
	}
	var out []registry.Range
	for _, part := range strings.Split(s, ",") {
		r, err := registry.ParseRange(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("netconf: reserved ports %q: %w", clip(b), err)
		}
		out = append(out, r)
	}
	return out, nil
}

// ParseUnprivilegedStart parses Linux's ip_unprivileged_port_start: 0 to
// 65536 (the kernel's maximum, meaning every port needs privilege).
func ParseUnprivilegedStart(b []byte) (int, error) {
	s := strings.TrimSpace(string(b))
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > 65536 {
		return 0, syntaxf("netconf: unprivileged port start %q: want a number 0-65536", clip(b))
	}
	return int(n), nil
}

// ParseSyncookies parses Linux's tcp_syncookies: 0, 1 or 2.
func ParseSyncookies(b []byte) (int, error) {
	switch s := strings.TrimSpace(string(b)); s {
	case "0", "1", "2":
		return int(s[0] - '0'), nil
	}
	return 0, syntaxf("netconf: tcp_syncookies %q: want 0, 1 or 2", clip(b))
}

func clip(b []byte) string {
	if len(b) > 40 {
		b = b[:40]
	}
	return strings.TrimSpace(string(b))
}

func syntaxf(format string, args ...any) error {
	return &registry.SyntaxError{Msg: fmt.Sprintf(format, args...)}
}
