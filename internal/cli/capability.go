package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"

	"github.com/portctl/portctl/firewall"
)

// capabilityError is a command's refusal for want of one Linux capability:
// its message names the capability and how to grant it. It wraps
// os.ErrPermission (and the refusal itself, when there is one).
type capabilityError struct {
	what string // what needs it: "-sS (SYN scan)", "guard"
	cap  string // the capability, as CAP_NET_RAW
	alt  string // a way that needs no privilege, or ""
	err  error  // the refusal, or nil
	// sudo, when not empty, is the command line to run as root instead
	// of granting cap: a capability no binary anyone may run should have.
	sudo string
}

// needCapability says that what needs capability cap (CAP_…); alt, when
// not empty, is the way without it ("or use -sT, which needs none").
func needCapability(what, cap, alt string, err error) error {
	return &capabilityError{what: what, cap: cap, alt: alt, err: err}
}

// needRoot says that what needs root or capability cap, and that only
// root should do it (sudo: the command line): cap on a binary would let
// anyone who runs it do so too.
func needRoot(what, cap, sudo string) error {
	return &capabilityError{what: what, cap: cap, sudo: sudo}
}

func (e *capabilityError) Error() string {
	if e.sudo != "" {
		return fmt.Sprintf("%s needs root or %s: run 'sudo %s' (%s on the binary would let anyone who runs it do the same)", e.what, e.cap, e.sudo, e.cap)
	}
	s := fmt.Sprintf("%s needs root or %s; %s", e.what, e.cap, grantAdvice(e.cap))
	if e.alt != "" {
		s += "; " + e.alt
	}
	return s
}

func (e *capabilityError) Unwrap() []error {
	if e.err == nil {
		return []error{os.ErrPermission}
	}
	return []error{os.ErrPermission, e.err}
}

// grantAdvice says how to give this binary capability cap: a file
// capability on the binary (for everyone who runs that file), or the
// unit's AmbientCapabilities= for a service. Elsewhere than Linux there
// are no capabilities: run as root (as administrator on Windows).
func grantAdvice(cap string) string {
	switch runtime.GOOS {
	case "linux":
	case "windows":
		return "run it as administrator"
	default:
		return "run it as root (sudo)"
	}
	if cap == "CAP_SYS_ADMIN" {
		return "run it with sudo (CAP_SYS_ADMIN on the binary would make it as good as root for anyone who runs it)"
	}
	return fmt.Sprintf("grant it with 'sudo setcap %s+ep %s' (then anyone who runs that file has it) or, in a systemd unit, AmbientCapabilities=%s",
		strings.ToLower(cap), executable(), cap)
}

// seeOtherUsers says how to see the processes of other users behind
// sockets: root (sudo and the command line cmd, "portctl who …"), or on
// Linux the two capabilities that let a process read another user's
// /proc/PID/fd, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH.
func seeOtherUsers(cmd string) string {
	if runtime.GOOS != "linux" {
		return "run as root (sudo " + cmd + ")"
	}
	return fmt.Sprintf("run as root (sudo %s) or grant CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH: 'sudo setcap cap_sys_ptrace,cap_dac_read_search+ep %s' or, in a systemd unit, AmbientCapabilities=CAP_SYS_PTRACE CAP_DAC_READ_SEARCH",
		cmd, executable())
}

// executable is the path of the running binary, for the setcap advice.
func executable() string {
	p, err := os.Executable()
	if err != nil {
		return "$(command -v portctl)"
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return p
}

// capabilityName finds a capability named in a message (the libraries say
// "needs root or CAP_NET_ADMIN").
var capabilityName = regexp.MustCompile(`\bCAP_[A-Z_]+\b`)

// capabilityOf says which capability a refusal err (an os.ErrPermission)
// wants, and whether its message already says that root or it is needed;
// "" when it cannot tell.
func capabilityOf(err error) (cap string, named bool) {
	if ce, ok := errors.AsType[*capabilityError](err); ok {
		return ce.cap, true
	}
	if errors.Is(err, firewall.ErrPermission) {
		return "CAP_NET_ADMIN", true
	}
	// Binding a port below net.ipv4.ip_unprivileged_port_start: the net
	// package's listen, or a bind(2) of one's own.
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "listen" && errors.Is(err, syscall.EACCES) {
		return "CAP_NET_BIND_SERVICE", false
	}
	if se, ok := errors.AsType[*os.SyscallError](err); ok && se.Syscall == "bind" && errors.Is(se.Err, syscall.EACCES) {
		return "CAP_NET_BIND_SERVICE", false
	}
	// Entering another network namespace (--netns): setns(2).
	if strings.Contains(err.Error(), "enter network namespace") {
		return "CAP_SYS_ADMIN", false
	}
	if m := capabilityName.FindString(err.Error()); m != "" {
		return m, true
	}
	return "", false
}

// permissionAdvice is what exitCode adds to a refusal's message: the
// capability it wants and how to grant it.
func permissionAdvice(err error) string {
	cap, named := capabilityOf(err)
	switch {
	case cap == "":
		return " (run as root, or grant the capability the command names)"
	case named:
		if _, ok := errors.AsType[*capabilityError](err); ok {
			return ""
		}
		return "; " + grantAdvice(cap)
	}
	return fmt.Sprintf("; it needs root or %s; %s", cap, grantAdvice(cap))
}
