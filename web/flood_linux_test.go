package web

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/netns"
)

// TestIntegrationMetricsFlood serves a namespace of its own where a
// listener with backlog 1 that never accepts was sent 8 connections:
// /metrics counts the overflows for that namespace and the full queue.
func TestIntegrationMetricsFlood(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (Debian's iproute2; test-deps.sh installs it)")
	}
	name := fmt.Sprintf("pcfloodweb-%06x", rand.Uint32()&0xffffff)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	path := "/run/netns/" + name
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	var fds []int
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	var err error
	if derr := netns.Do(path, func() {
		l, e := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if e != nil {
			err = e
			return
		}
		fds = append(fds, l)
		lo := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
		if err = unix.Bind(l, lo); err != nil {
			return
		}
		if err = unix.Listen(l, 1); err != nil {
			return
		}
		sa, e := unix.Getsockname(l)
		if e != nil {
			err = e
			return
		}
		lo.Port = sa.(*unix.SockaddrInet4).Port
		for range 8 {
			c, e := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if e != nil {
				err = e
				return
			}
			fds = append(fds, c)
			if e := unix.Connect(c, lo); e != nil && !errors.Is(e, unix.EINPROGRESS) {
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

	s, _ := serveMachine(t, Options{Source: Machine{NetNS: path, StatsDir: t.TempDir()}, Version: "test", Interval: time.Hour})
	var body string
	for deadline := time.Now().Add(5 * time.Second); ; {
		body = scrapeBody(t, s)
		if v, _ := sum(body, "portctl_tcp_listen_overflows_total", `netns="`+name+`"`); v > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	netnsLabel := `netns="` + name + `"`
	for _, tt := range []struct {
		name   string
		labels []string
		min    float64
		max    float64
	}{
		{"portctl_tcp_listen_overflows_total", []string{netnsLabel}, 1, 8},
		{"portctl_tcp_listen_drops_total", []string{netnsLabel}, 1, 8},
		{"portctl_tcp_syncookies_sent_total", []string{netnsLabel}, 0, 0},
		{"portctl_tcp_syncookies_recv_total", []string{netnsLabel}, 0, 0},
		{"portctl_tcp_syncookies_failed_total", []string{netnsLabel}, 0, 0},
		{"portctl_tcp_req_q_full_drops_total", []string{netnsLabel}, 0, 0},
		{"portctl_tcp_req_q_full_do_cookies_total", []string{netnsLabel}, 0, 0},
		{"portctl_tcp_full_accept_queues", nil, 1, 1},
	} {
		if got, n := sum(body, tt.name, tt.labels...); n != 1 || got < tt.min || got > tt.max {
			t.Errorf("%s%v = %g (%d series); want one series from %g to %g", tt.name, tt.labels, got, n, tt.min, tt.max)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("needs promtool (Debian's prometheus package; test-deps.sh installs it)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
