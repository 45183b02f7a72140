package probe

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

// classifyErrno maps the Winsock errors of connect.
func classifyErrno(err error) (State, string, bool) {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return 0, "", false
	}
	switch errno {
	case windows.WSAECONNREFUSED:
		return StateClosed, ReasonRefused, true
	case windows.WSAECONNRESET, windows.WSAECONNABORTED:
		return StateClosed, ReasonReset, true
	case windows.WSAETIMEDOUT:
		return StateFiltered, ReasonTimeout, true
	case windows.WSAEHOSTUNREACH, windows.WSAEHOSTDOWN:
		return StateFiltered, ReasonHostUnreachable, true
	case windows.WSAENETUNREACH, windows.WSAENETDOWN:
		return StateFiltered, ReasonNetUnreachable, true
	case windows.WSAEACCES:
		return StateFiltered, ReasonBlockedLocally, true
	}
	return 0, "", false
}
