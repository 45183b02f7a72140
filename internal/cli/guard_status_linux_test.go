package cli

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/netns"
)

// overflowedListener makes a namespace of the test's own holding a
// listener on 127.0.0.1 with backlog 1 that never accepts and was sent 8
// connections, and returns the namespace's name and the listener.
func overflowedListener(t *testing.T) (string, netip.AddrPort) {
	t.Helper()
	requireRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (Debian's iproute2; test-deps.sh installs it)")
	}
	name := fmt.Sprintf("pcguardst-%06x", rand.Uint32()&0xffffff)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	var (
		fds []int
		sa  = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
		err error
	)
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	if derr := netns.Do("/run/netns/"+name, func() {
		l, e := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if e != nil {
			err = e
			return
		}
		fds = append(fds, l)
		if err = unix.Bind(l, sa); err != nil {
			return
		}
		if err = unix.Listen(l, 1); err != nil {
			return
		}
		got, e := unix.Getsockname(l)
		if e != nil {
			err = e
			return
		}
		sa.Port = got.(*unix.SockaddrInet4).Port
		for range 8 {
			c, e := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if e != nil {
				err = e
				return
			}
			fds = append(fds, c)
			if e := unix.Connect(c, sa); e != nil && !errors.Is(e, unix.EINPROGRESS) {
				err = e
				return
			}
		}
	}); derr != nil {
		t.Fatal(derr)
	}
	if err != nil {
		t.Fatalf("listener with backlog 1 in %s: %v", name, err)
	}
	time.Sleep(100 * time.Millisecond) // the handshakes run in softirq
	return name, netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
}

// TestIntegrationGuardStatusOverflow: guard --status and audit, in a
// namespace where a listener's accept queue overflowed, name the listener
// and the overflows.
func TestIntegrationGuardStatusOverflow(t *testing.T) {
	name, l := overflowedListener(t)

	streams, out, _ := term.Test("")
	if err := runGuardStatus(context.Background(), streams, "/run/netns/"+name, false); err != nil {
		t.Fatalf("runGuardStatus(%s) error = %v", name, err)
	}
	for _, want := range []string{
		"SYN-flood signs in network namespace " + name,
		fmt.Sprintf("%s  cli.test/", l),
		"full",
		fmt.Sprintf("raise the backlog of cli.test on :%d (listen backlog 1, net.core.somaxconn", l.Port()),
		"turned away since the namespace was made by a full accept queue (ListenOverflows)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("runGuardStatus(%s) output lacks %q:\n%s", name, want, out)
		}
	}

	_, js, stderr := runCLI(t, "audit", "--netns", name, "--json", "--fail-on", "never")
	d := parseAuditJSON(t, js)
	found := map[string]bool{}
	for _, f := range d.Findings {
		switch {
		case f.Rule == "accept-queue-full" && f.Socket.Local == l.String() && f.Severity == "medium":
			found[f.Rule] = true
		case f.Rule == "listen-overflows" && f.Severity == "low":
			found[f.Rule] = true
		}
	}
	if !found["accept-queue-full"] || !found["listen-overflows"] {
		t.Errorf("audit --netns %s found %v; want accept-queue-full for %s and listen-overflows (stderr %q)\n%s", name, found, l, stderr, js)
	}
}
