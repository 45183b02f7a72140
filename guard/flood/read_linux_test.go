package flood

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/netns"
)

// TestReadOwn reads this process's namespace: no privilege needed.
func TestReadOwn(t *testing.T) {
	st, err := Read(context.Background(), Options{})
	if err != nil {
		t.Fatalf("Read(own namespace) error = %v", err)
	}
	if st.Inode == 0 || st.NetNS == "" {
		t.Errorf("Read(own namespace) = inode %d, netns %q; want both set", st.Inode, st.NetNS)
	}
	if st.Settings.Somaxconn <= 0 || st.Settings.Syncookies < 0 || st.Settings.MaxSynBacklog <= 0 {
		t.Errorf("Read(own namespace).Settings = %+v; want all read", st.Settings)
	}
}

// pair is two network namespaces of a test's own joined by a veth pair
// and to nothing else: a target and an attacker.
type pair struct {
	target, attacker         string // ip netns names
	targetAddr, attackerAddr netip.Addr
}

func (p *pair) path() string { return "/run/netns/" + p.target }

// newPair makes the namespaces and removes them when the test ends. It
// skips without root or ip.
func newPair(t *testing.T) *pair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (Debian's iproute2; test-deps.sh installs it)")
	}
	id := rand.Uint32() & 0xffffff
	p := &pair{
		target:       fmt.Sprintf("pcflood-%06x-t", id),
		attacker:     fmt.Sprintf("pcflood-%06x-a", id),
		targetAddr:   netip.MustParseAddr("10.77.0.1"),
		attackerAddr: netip.MustParseAddr("10.77.0.2"),
	}
	for _, ns := range []string{p.target, p.attacker} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", ns, err, out)
			}
		})
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	// Made inside the target, its peer moved to the attacker: the pair
	// never touches this process's namespace.
	run(t, "ip", "-n", p.target, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", p.attacker)
	run(t, "ip", "-n", p.target, "addr", "add", p.targetAddr.String()+"/30", "dev", "veth0")
	run(t, "ip", "-n", p.attacker, "addr", "add", p.attackerAddr.String()+"/30", "dev", "veth1")
	run(t, "ip", "-n", p.target, "link", "set", "veth0", "up")
	run(t, "ip", "-n", p.attacker, "link", "set", "veth1", "up")
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// listenIn opens a TCP listener with the given backlog on addr:0 inside
// the namespace at path, never accepting, until the test ends.
func listenIn(t *testing.T, path string, addr netip.Addr, backlog int) netip.AddrPort {
	t.Helper()
	var (
		fd   = -1
		port int
		err  error
	)
	if derr := netns.Do(path, func() {
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return
		}
		if err = unix.Bind(fd, &unix.SockaddrInet4{Addr: addr.As4()}); err != nil {
			return
		}
		if err = unix.Listen(fd, backlog); err != nil {
			return
		}
		var sa unix.Sockaddr
		if sa, err = unix.Getsockname(fd); err == nil {
			port = sa.(*unix.SockaddrInet4).Port
		}
	}); derr != nil {
		t.Fatal(derr)
	}
	if fd >= 0 {
		t.Cleanup(func() { unix.Close(fd) })
	}
	if err != nil {
		t.Fatalf("listen in %s: %v", path, err)
	}
	return netip.AddrPortFrom(addr, uint16(port))
}

// connectIn starts n connections to dst from inside the namespace at path
// without waiting for them, and closes them when the test ends.
func connectIn(t *testing.T, path string, dst netip.AddrPort, n int) {
	t.Helper()
	var fds []int
	var err error
	if derr := netns.Do(path, func() {
		for range n {
			fd, e := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if e != nil {
				err = e
				return
			}
			fds = append(fds, fd)
			if e := unix.Connect(fd, &unix.SockaddrInet4{Addr: dst.Addr().As4(), Port: int(dst.Port())}); e != nil && !errors.Is(e, unix.EINPROGRESS) {
				err = e
				return
			}
		}
	}); derr != nil {
		t.Fatal(derr)
	}
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	if err != nil {
		t.Fatalf("connect in %s: %v", path, err)
	}
}

func findListener(st Status, ap netip.AddrPort) (Listener, bool) {
	i := slices.IndexFunc(st.Listeners, func(l Listener) bool { return l.Local == ap })
	if i < 0 {
		return Listener{}, false
	}
	return st.Listeners[i], true
}

// TestIntegrationFloodStatus overflows a listener's accept queue, and
// floods another with SYNs from a second namespace, and reads the signs.
func TestIntegrationFloodStatus(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	run(t, "ip", "netns", "exec", p.target, "sysctl", "-q", "-w", "net.ipv4.tcp_syncookies=1")

	// A listener with backlog 1 that never accepts: the third of 8
	// connections finds its queue full (the kernel holds backlog+1).
	full := listenIn(t, p.path(), netip.MustParseAddr("127.0.0.1"), 1)
	connectIn(t, p.path(), full, 8)
	var st Status
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		if st, err = Read(ctx, Options{NetNS: p.path(), Processes: true}); err != nil {
			t.Fatal(err)
		}
		if l, ok := findListener(st, full); ok && l.Full() && st.Counters.ListenOverflows > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("after 8 connections to a listener with backlog 1: %+v", st.Counters)
	if st.Counters.ListenOverflows == 0 {
		t.Errorf("ListenOverflows = 0; want > 0")
	}
	if st.NetNS != p.target {
		t.Errorf("NetNS = %q; want %q", st.NetNS, p.target)
	}
	l, ok := findListener(st, full)
	if !ok {
		t.Fatalf("no listener %s in %+v", full, st.Listeners)
	}
	if !l.Full() || l.Backlog != 1 || l.Process == "" {
		t.Errorf("listener %s = %+v; want its queue full, backlog 1, a process", full, l)
	}
	adv := Advise(st, nil)
	i := slices.IndexFunc(adv, func(a Advice) bool { return a.Kind == QueueFull && a.Listener != nil && a.Listener.Local == full })
	if i < 0 {
		t.Fatalf("Advise() has no %s advice for %s: %+v", QueueFull, full, adv)
	}
	if want := fmt.Sprintf("raise the backlog of %s on :%d (listen backlog 1, net.core.somaxconn %d)", l.Process, full.Port(), st.Settings.Somaxconn); !strings.Contains(adv[i].Text, want) {
		t.Errorf("advice %q; want it to say %q", adv[i].Text, want)
	}
	t.Logf("advice: %s", adv[i].Text)

	// A SYN flood from the attacker, from random sources (whose SYN-ACKs
	// the attacker, no router, drops): the target's SYN queue overflows
	// and SYN cookies answer.
	if _, err := exec.LookPath("hping3"); err != nil {
		t.Skip("needs hping3 (test-deps.sh installs it)")
	}
	run(t, "ip", "-n", p.target, "route", "add", "default", "via", p.attackerAddr.String())
	run(t, "ip", "netns", "exec", p.target, "sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.veth0.rp_filter=0")
	victim := listenIn(t, p.path(), netip.IPv4Unspecified(), 16)
	before := st
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(fctx, "ip", "netns", "exec", p.attacker,
		"timeout", "2", "hping3", "-q", "-S", "--flood", "--rand-source", "-p", fmt.Sprint(victim.Port()), p.targetAddr.String())
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 124) { // 124: timeout ended it
		t.Fatalf("hping3: %v: %s", err, out)
	}
	if st, err = Read(ctx, Options{NetNS: p.path()}); err != nil {
		t.Fatal(err)
	}
	d := st.Counters.Sub(before.Counters)
	t.Logf("after 2 s of hping3 --flood: %+v", d)
	if d.SyncookiesSent == 0 {
		t.Errorf("SyncookiesSent rose by 0; want > 0 (counters %+v)", st.Counters)
	}
	adv = Advise(st, &before)
	if !slices.ContainsFunc(adv, func(a Advice) bool {
		return a.Kind == SyncookiesSent && strings.Contains(a.Text, "net.ipv4.tcp_syncookies=1")
	}) {
		t.Errorf("Advise() = %+v; want a %s advice naming net.ipv4.tcp_syncookies=1", adv, SyncookiesSent)
	}
	if l, ok := findListener(st, victim); !ok || l.Backlog != 16 {
		t.Errorf("listener %s = %+v (found %v); want backlog 16", victim, l, ok)
	}
}

// BenchmarkRead reads this process's namespace: the counters and
// settings alone (as /metrics does), and with the listeners.
func BenchmarkRead(b *testing.B) {
	for _, bc := range []struct {
		name string
		o    Options
	}{
		{"counters", Options{SkipListeners: true}},
		{"listeners", Options{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Read(context.Background(), bc.o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
