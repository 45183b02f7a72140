//go:build linux

package testnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/netns"
)

// OverflowedListener makes a namespace of the test's own holding a
// listener on 127.0.0.1 with backlog 1 that never accepts and was sent 8
// connections, and returns the namespace's name and the listener.
func OverflowedListener(t testing.TB) (string, netip.AddrPort) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (Debian's iproute2; test-deps.sh installs it)")
	}
	name := fmt.Sprintf("portctl-ovf-%06x", rand.Uint32()&0xffffff)
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
