package cli

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/internal/testnet"
)

// TestIntegrationAuditDiagnosticLines audits a namespace with a listener
// no process holds, so that audit says so on stderr and then gives its
// verdict: two diagnostics, each a line of its own.
func TestIntegrationAuditDiagnosticLines(t *testing.T) {
	requireRoot(t)
	n := testnet.NewNamespace(t)
	// A fixed port is safe in the test's own namespace; 47123 is one no
	// registry names, on all interfaces: findings at low at least.
	unheldListener(t, n.Name, 47123)

	code, out, stderr := runCLI(t, "audit", "--netns", n.Name, "--fail-on", "low")
	if code != ExitNegative {
		t.Fatalf("audit --netns %s --fail-on low exit %d; want 1 (stderr %q)\n%s", n.Name, code, stderr, out)
	}
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if !strings.HasSuffix(stderr, "\n") || len(lines) != 2 ||
		lines[0] != "portctl: no process found for 1 socket (another PID namespace, or the kernel's)" ||
		!strings.HasPrefix(lines[1], "portctl: audit: ") || !strings.HasSuffix(lines[1], " at or above low") {
		t.Errorf("audit stderr = %q; want the unattributed socket and the verdict, each on a line of its own", stderr)
	}
	if c := strings.Count(stderr, "portctl: "); c != strings.Count(stderr, "\n") {
		t.Errorf("audit stderr has %d diagnostics on %d lines: %q", c, strings.Count(stderr, "\n"), stderr)
	}
}

// unheldListener leaves a TCP listener on 0.0.0.0:port in namespace ns
// that no process holds a descriptor of: it is in flight in an unread
// SCM_RIGHTS message on a socket pair, which is closed when the test ends.
// The kernel still lists it, and no /proc/PID/fd names it.
func unheldListener(t *testing.T, ns string, port int) {
	t.Helper()
	var lfd int
	var err error
	testnet.In(t, ns, func() {
		if lfd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return
		}
		if err = unix.Bind(lfd, &unix.SockaddrInet4{Port: port}); err == nil {
			err = unix.Listen(lfd, 1)
		}
	})
	if err != nil {
		t.Fatalf("listener on port %d in %s: %v", port, ns, err)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		unix.Close(lfd)
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(pair[0]); unix.Close(pair[1]) })
	err = unix.Sendmsg(pair[0], []byte{0}, unix.UnixRights(lfd), nil, 0)
	unix.Close(lfd)
	if err != nil {
		t.Fatalf("sending the listener's descriptor: %v", err)
	}
}
