//go:build !windows

package probe

import (
	"errors"
	"syscall"
)

// classifyErrno maps the connect(2) errors of Unix systems.
func classifyErrno(err error) (State, string, bool) {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return 0, "", false
	}
	switch errno {
	case syscall.ECONNREFUSED:
		return StateClosed, ReasonRefused, true
	case syscall.ECONNRESET, syscall.ECONNABORTED:
		return StateClosed, ReasonReset, true
	case syscall.ETIMEDOUT:
		return StateFiltered, ReasonTimeout, true
	case syscall.EHOSTUNREACH, syscall.EHOSTDOWN:
		return StateFiltered, ReasonHostUnreachable, true
	case syscall.ENETUNREACH, syscall.ENETDOWN:
		return StateFiltered, ReasonNetUnreachable, true
	case syscall.EPERM, syscall.EACCES:
		return StateFiltered, ReasonBlockedLocally, true
	}
	return 0, "", false
}
