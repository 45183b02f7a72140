package servers

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TelnetIssue is the text the telnet server shows before its login
// prompt.
const TelnetIssue = "portctl test telnet server"

// Telnet starts BusyBox's telnetd in the foreground (busybox telnetd -F).
// It opens with telnet option negotiation (IAC …), then shows TelnetIssue
// and /bin/login's prompt. Debian's busybox package has no telnetd
// applet; busybox-static, which replaces it, does. It needs root for
// login.
func Telnet(t testing.TB) *Server {
	t.Helper()
	return TelnetAt(t, Place{})
}

// TelnetAt starts BusyBox's telnetd as Telnet does, where at says.
func TelnetAt(t testing.TB, at Place) *Server {
	t.Helper()
	return start(t, spec{
		name: "telnetd", pkg: "busybox-static", bin: "busybox", proto: "tcp", at: &at,
		root: "telnetd runs login, which needs root",
		setup: func(dir string) {
			bin, _ := lookPath("busybox")
			if out, _ := exec.Command(bin, "--list").Output(); !strings.Contains(string(out), "\ntelnetd\n") {
				t.Skip("needs busybox-static (installed by test-deps.sh): this busybox has no telnetd applet")
			}
			writeFile(t, filepath.Join(dir, "issue"), TelnetIssue+"\n", 0o644)
		},
		args: func(dir string, port uint16) []string {
			return []string{"telnetd", "-F", "-b", at.bind().String(), "-p", fmt.Sprint(port),
				"-f", filepath.Join(dir, "issue"), "-l", "/bin/login"}
		},
	})
}
