//go:build !windows

package cli

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// signalProcess sends SIGTERM, or SIGKILL when kill is set.
func signalProcess(pid int, kill bool) error {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	err := syscall.Kill(pid, sig)
	if errors.Is(err, syscall.EPERM) {
		return os.ErrPermission
	}
	return err
}

// signalName names the signal signalProcess sends.
func signalName(kill bool) string {
	if kill {
		return "SIGKILL"
	}
	return "SIGTERM"
}

// processGone reports whether pid has exited (a zombie counts as exited:
// it holds no sockets any more).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		// With /proc mounted, a missing entry means the process is gone;
		// without it, kill(pid, 0) above said it lives.
		_, perr := os.Stat("/proc/self")
		return perr == nil
	}
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] == 'Z' || b[i+2] == 'X'
	}
	return false
}
