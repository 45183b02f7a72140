//go:build linux

package scan_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/scan"
)

// synNet is two network namespaces made for one test and joined by a veth
// pair, neither of them this process's own: the SYN engine runs in
// Scanner, the ports it probes are in Target. Raw packets never touch the
// host's interfaces.
type synNet struct {
	Scanner, Target string     // namespace names
	Addr4, Addr6    netip.Addr // Target's addresses on the veth pair
	Src4, Src6      netip.Addr // Scanner's
}

// newSynNet makes the namespaces, removed when the test ends. Target has
// an nftables input chain "inet t in" for rules. It skips the test without
// root or without ip and nft.
func newSynNet(t testing.TB) *synNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and raw sockets")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian packages iproute2 and nftables)", tool)
		}
	}
	id := rand.Uint32() & 0xffffff
	n := &synNet{
		Scanner: fmt.Sprintf("portctl-syn-%06x-s", id),
		Target:  fmt.Sprintf("portctl-syn-%06x-t", id),
		// Documentation prefixes: nothing routes them, and these
		// namespaces see nothing else anyway.
		Src4: netip.MustParseAddr("192.0.2.1"), Addr4: netip.MustParseAddr("192.0.2.2"),
		Src6: netip.MustParseAddr("2001:db8::1"), Addr6: netip.MustParseAddr("2001:db8::2"),
	}
	for _, ns := range []string{n.Scanner, n.Target} {
		testnet.Run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", ns, err, out)
			}
		})
		testnet.Run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		// No duplicate address detection: an interface's link-local
		// address would be tentative for a second or two, and IPv6 on it
		// not ready.
		for _, conf := range []string{"all", "default"} {
			setSysctl(t, ns, "net/ipv6/conf/"+conf+"/accept_dad", "0")
		}
	}
	testnet.Run(t, "ip", "link", "add", "name", "s0", "netns", n.Scanner, "type", "veth", "peer", "name", "t0", "netns", n.Target)
	for _, c := range []struct {
		ns, dev string
		a4, a6  netip.Addr
	}{{n.Scanner, "s0", n.Src4, n.Src6}, {n.Target, "t0", n.Addr4, n.Addr6}} {
		testnet.Run(t, "ip", "-n", c.ns, "addr", "add", c.a4.String()+"/24", "dev", c.dev)
		testnet.Run(t, "ip", "-n", c.ns, "addr", "add", c.a6.String()+"/64", "dev", c.dev, "nodad")
		testnet.Run(t, "ip", "-n", c.ns, "link", "set", c.dev, "up")
	}
	n.Nft(t, "add table inet t")
	n.Nft(t, "add chain inet t in { type filter hook input priority 0 ; }")
	n.waitReady(t)
	return n
}

// waitReady waits until connections from Scanner reach Target over both
// IPv4 and IPv6: a fresh link takes a moment before IPv6 forwards.
func (n *synNet) waitReady(t testing.TB) {
	t.Helper()
	for _, addr := range []netip.Addr{n.Addr4, n.Addr6} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			var err error
			testnet.In(t, n.Scanner, func() {
				var c net.Conn
				// Port 9: nothing listens, so a reset says the path works.
				c, err = net.DialTimeout("tcp", netip.AddrPortFrom(addr, 9).String(), 200*time.Millisecond)
				if err == nil {
					c.Close()
				}
			})
			if err == nil || errors.Is(err, unix.ECONNREFUSED) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no path from %s to %v: %v", n.Scanner, addr, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// setSysctl writes a sysctl of namespace ns (as /proc/sys names it).
func setSysctl(t testing.TB, ns, key, value string) {
	t.Helper()
	var err error
	testnet.In(t, ns, func() {
		// /proc/sys/net is the namespace of the thread that opens it.
		err = os.WriteFile("/proc/sys/"+key, []byte(value), 0o644)
	})
	if err != nil {
		t.Fatalf("sysctl %s in %s: %v", key, ns, err)
	}
}

// Nft runs an nft command in the target namespace.
func (n *synNet) Nft(t testing.TB, cmd string) {
	t.Helper()
	testnet.Run(t, "ip", append([]string{"netns", "exec", n.Target, "nft"}, strings.Fields(cmd)...)...)
}

// listenIn opens TCP listeners in namespace ns on addr, on the given ports
// (0 for one the kernel picks), accepting until the test ends, and returns
// their ports.
func listenIn(t testing.TB, ns string, addr netip.Addr, ports ...uint16) []uint16 {
	t.Helper()
	var got []uint16
	for _, p := range ports {
		got = append(got, testnet.ListenIn(t, ns, netip.AddrPortFrom(addr, p)).Port())
	}
	return got
}

// runSYN runs the SYN engine inside namespace ns over the ports of addr
// and returns one result per port, failing on duplicates or gaps.
func runSYN(t testing.TB, ns string, cfg scan.SynConfig, addr netip.Addr, ports []uint16) map[uint16]scan.Result {
	t.Helper()
	return runEngine(t, addr, ports, func(ctx context.Context, next func() (scan.Probe, bool), emit func(scan.Result)) error {
		var err error
		testnet.In(t, ns, func() { err = scan.SYN(ctx, cfg, next, emit) })
		return err
	})
}

type synWant struct {
	st     scan.State
	reason scan.Reason
}

// TestIntegrationSYNStates scans a namespace with listeners, closed ports,
// a port nftables drops and one it rejects with ICMP admin-prohibited,
// over IPv4 and IPv6.
func TestIntegrationSYNStates(t *testing.T) {
	n := newSynNet(t)
	n.Nft(t, "add rule inet t in tcp dport 7001 drop")
	n.Nft(t, "add rule inet t in meta nfproto ipv4 tcp dport 7002 reject with icmp type admin-prohibited")
	n.Nft(t, "add rule inet t in meta nfproto ipv6 tcp dport 7002 reject with icmpv6 type admin-prohibited")
	n.Nft(t, "add rule inet t in meta nfproto ipv4 tcp dport 7003 reject with icmp type host-unreachable")
	n.Nft(t, "add rule inet t in meta nfproto ipv6 tcp dport 7003 reject with icmpv6 type addr-unreachable")
	n.Nft(t, "add rule inet t in tcp dport 7004 reject with tcp reset")
	for _, addr := range []netip.Addr{n.Addr4, n.Addr6} {
		t.Run(addr.String(), func(t *testing.T) {
			open := listenIn(t, n.Target, addr, 0, 0)
			ports := []uint16{open[0], 7001, 7002, 7003, 7004, 7005, open[1]}
			got := runSYN(t, n.Scanner, scan.SynConfig{Timeout: 300 * time.Millisecond, Retries: 1}, addr, ports)
			want := map[uint16]synWant{
				open[0]: {scan.Open, scan.ReasonSynAck},
				open[1]: {scan.Open, scan.ReasonSynAck},
				7001:    {scan.Filtered, scan.ReasonNoResponse},
				7002:    {scan.Filtered, scan.ReasonAdminProhibited},
				7003:    {scan.Filtered, scan.ReasonHostUnreach},
				7004:    {scan.Closed, scan.ReasonReset},
				7005:    {scan.Closed, scan.ReasonReset},
			}
			for p, w := range want {
				r := got[p]
				if r.State != w.st || r.Reason != w.reason {
					t.Errorf("port %d: %s/%s; want %s/%s", p, r.State, r.Reason, w.st, w.reason)
				}
				if r.Addr != addr {
					t.Errorf("port %d: address %v; want %v", p, r.Addr, addr)
				}
			}
			// The host answers other ports, so silence on this one may be
			// loss: it gets the extra retries too (1 + 1 + 4 tries).
			if r := got[7001]; r.Tries != 6 {
				t.Errorf("dropped port on an answering host tried %d times; want 6 (one retry and four extra)", r.Tries)
			}
			if r := got[open[0]]; r.Tries != 1 || r.RTT <= 0 {
				t.Errorf("open port: tries %d, RTT %v; want 1 try and a round trip", r.Tries, r.RTT)
			}
		})
	}
}

// TestIntegrationSYNExact scans a few hundred ports with listeners at
// random among them: exactly the listeners are open, everything else
// closed, over IPv4, IPv6 and loopback.
func TestIntegrationSYNExact(t *testing.T) {
	n := newSynNet(t)
	for _, tc := range []struct {
		name       string
		ns         string
		addr, bind netip.Addr
	}{
		{"veth4", n.Scanner, n.Addr4, n.Addr4},
		{"veth6", n.Scanner, n.Addr6, n.Addr6},
		{"loopback4", n.Target, netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1")},
		{"loopback6", n.Target, netip.MustParseAddr("::1"), netip.MustParseAddr("::1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ports []uint16
			base := uint16(20000 + rand.IntN(20000))
			for p := base; p < base+400; p++ {
				ports = append(ports, p)
			}
			wantOpen := listenIn(t, n.Target, tc.bind, ports[3], ports[77], ports[200], ports[201], ports[399])
			got := runSYN(t, tc.ns, scan.SynConfig{}, tc.addr, ports)
			var gotOpen []uint16
			for _, p := range ports {
				switch r := got[p]; r.State {
				case scan.Open:
					gotOpen = append(gotOpen, p)
				case scan.Closed:
				default:
					t.Errorf("port %d: %s/%s; want open or closed", p, r.State, r.Reason)
				}
			}
			if !slices.Equal(gotOpen, wantOpen) {
				t.Errorf("open ports %v; want %v", gotOpen, wantOpen)
			}
		})
	}
}

// TestIntegrationSYNLoss scans through 20 % random loss each way: retries
// must still find every open port and call nothing else open.
func TestIntegrationSYNLoss(t *testing.T) {
	n := newSynNet(t)
	n.Nft(t, "add rule inet t in numgen random mod 100 < 20 drop")
	n.Nft(t, "add chain inet t out { type filter hook output priority 0 ; }")
	n.Nft(t, "add rule inet t out numgen random mod 100 < 20 drop")
	var ports []uint16
	for p := uint16(30000); p < 30300; p++ {
		ports = append(ports, p)
	}
	wantOpen := listenIn(t, n.Target, n.Addr4, 30010, 30100, 30299)
	got := runSYN(t, n.Scanner, scan.SynConfig{Retries: 6, Timeout: 200 * time.Millisecond}, n.Addr4, ports)
	var gotOpen []uint16
	for _, p := range ports {
		if got[p].State == scan.Open {
			gotOpen = append(gotOpen, p)
		}
	}
	if !slices.Equal(gotOpen, wantOpen) {
		t.Errorf("open ports %v; want %v", gotOpen, wantOpen)
	}
}

// TestIntegrationSYNPermission runs the engine without CAP_NET_RAW (in a
// child with the capability dropped from its bounding set) and expects
// the permission error.
func TestIntegrationSYNPermission(t *testing.T) {
	if os.Getenv("PORTCTL_SYN_NOPRIV") == "1" {
		err := scan.SYN(context.Background(), scan.SynConfig{}, func() (scan.Probe, bool) { return scan.Probe{}, false }, func(scan.Result) {})
		if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "SYN scan needs root or CAP_NET_RAW; use -sT") {
			t.Fatalf("SYN without CAP_NET_RAW: %v; want os.ErrPermission with advice", err)
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to drop a capability")
	}
	for _, tool := range []string{"unshare", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (util-linux)", tool)
		}
	}
	// In a network namespace of its own, in case the capability stays.
	cmd := exec.Command("unshare", "--net", "setpriv", "--bounding-set", "-net_raw", "--inh-caps", "-net_raw", os.Args[0], "-test.run", "^TestIntegrationSYNPermission$", "-test.v")
	cmd.Env = append(os.Environ(), "PORTCTL_SYN_NOPRIV=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// TestIntegrationSYNAllPorts scans all 65,535 ports of 127.0.0.1 inside a
// fresh namespace with a few listeners: exactly those are open.
func TestIntegrationSYNAllPorts(t *testing.T) {
	if testing.Short() {
		t.Skip("scans 65,535 ports")
	}
	n := newSynNet(t)
	lo := netip.MustParseAddr("127.0.0.1")
	wantOpen := listenIn(t, n.Target, lo, 0, 0, 0, 0, 0)
	slices.Sort(wantOpen)
	ports := make([]uint16, 0, 65535)
	for p := 1; p <= 65535; p++ {
		ports = append(ports, uint16(p))
	}
	rand.Shuffle(len(ports), func(i, j int) { ports[i], ports[j] = ports[j], ports[i] })
	start := time.Now()
	got := runSYN(t, n.Target, scan.SynConfig{}, lo, ports)
	t.Logf("65,535 ports in %v", time.Since(start))
	var gotOpen []uint16
	for p := 1; p <= 65535; p++ {
		switch r := got[uint16(p)]; r.State {
		case scan.Open:
			gotOpen = append(gotOpen, uint16(p))
		case scan.Closed:
		default:
			t.Errorf("port %d: %s/%s; want open or closed", p, r.State, r.Reason)
		}
	}
	if !slices.Equal(gotOpen, wantOpen) {
		t.Errorf("open ports %v; want %v", gotOpen, wantOpen)
	}
}

// BenchmarkSYNAllPorts scans all ports of 127.0.0.1 in a fresh namespace
// with the SYN engine and, side by side, with nmap -sS when it is
// installed.
func BenchmarkSYNAllPorts(b *testing.B) {
	n := newSynNet(b)
	lo := netip.MustParseAddr("127.0.0.1")
	listenIn(b, n.Target, lo, 0, 0, 0, 0, 0)
	ports := make([]uint16, 0, 65535)
	for p := 1; p <= 65535; p++ {
		ports = append(ports, uint16(p))
	}
	rand.Shuffle(len(ports), func(i, j int) { ports[i], ports[j] = ports[j], ports[i] })
	b.Run("portctl", func(b *testing.B) {
		for b.Loop() {
			runSYN(b, n.Target, scan.SynConfig{}, lo, ports)
		}
	})
	b.Run("nmap", func(b *testing.B) {
		if _, err := exec.LookPath("nmap"); err != nil {
			b.Skip("needs nmap")
		}
		for b.Loop() {
			if out, err := exec.Command("ip", "netns", "exec", n.Target, "nmap", "-sS", "-p-", "-n", "-Pn", "127.0.0.1").CombinedOutput(); err != nil {
				b.Fatalf("nmap: %v\n%s", err, out)
			}
		}
	})
}

// TestIntegrationSYNRate checks that Rate caps the probes sent per second.
func TestIntegrationSYNRate(t *testing.T) {
	n := newSynNet(t)
	var ports []uint16
	for p := uint16(30000); p < 30600; p++ {
		ports = append(ports, p)
	}
	start := time.Now()
	got := runSYN(t, n.Scanner, scan.SynConfig{Rate: 2000}, n.Addr4, ports)
	// 600 probes at 2,000 a second: 0.3 s, less a 5 ms burst.
	if d := time.Since(start); d < 280*time.Millisecond || d > 2*time.Second {
		t.Errorf("600 probes at 2000/s took %v; want about 300ms", d)
	}
	for _, p := range ports {
		if r := got[p]; r.State != scan.Closed {
			t.Errorf("port %d: %s/%s; want closed", p, r.State, r.Reason)
		}
	}
}

// TestIntegrationSYNBottleneck scans 64 hosts through a slow link (a tbf
// bottleneck both ways) that also drops 2 % of the packets each way, with
// four hosts filtered entirely, using the engine's defaults: the rate must
// adapt to what the link drains, and retries must make up for the loss,
// so that every open port is found, none is invented, and the filtered
// hosts read filtered.
func TestIntegrationSYNBottleneck(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds through a slow link")
	}
	n := newSynNet(t)
	var hosts []netip.Addr
	for i := range 64 {
		h := netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i)})
		hosts = append(hosts, h)
		testnet.Run(t, "ip", "-n", n.Target, "addr", "add", h.String()+"/32", "dev", "lo")
	}
	testnet.Run(t, "ip", "-n", n.Scanner, "route", "add", "198.51.100.0/24", "via", n.Addr4.String())
	for _, c := range []struct{ ns, dev string }{{n.Scanner, "s0"}, {n.Target, "t0"}} {
		testnet.Run(t, "ip", "netns", "exec", c.ns, "tc", "qdisc", "add", "dev", c.dev, "root", "tbf", "rate", "4mbit", "burst", "16kbit", "latency", "50ms")
	}
	filtered := map[netip.Addr]bool{hosts[3]: true, hosts[17]: true, hosts[40]: true, hosts[63]: true}
	for h := range filtered {
		n.Nft(t, "add rule inet t in ip daddr "+h.String()+" drop")
	}
	n.Nft(t, "add rule inet t in numgen random mod 100 < 2 drop")
	n.Nft(t, "add chain inet t out { type filter hook output priority 0 ; }")
	n.Nft(t, "add rule inet t out numgen random mod 100 < 2 drop")
	open := map[uint16]bool{}
	for _, p := range listenIn(t, n.Target, netip.IPv4Unspecified(), 20022, 20080, 20443) {
		open[p] = true
	}
	var probes []scan.Probe
	for _, h := range hosts {
		for p := uint16(20000); p < 20150; p++ {
			probes = append(probes, scan.Probe{Addr: h, Port: p})
		}
	}
	rand.Shuffle(len(probes), func(i, j int) { probes[i], probes[j] = probes[j], probes[i] })
	next := func() (scan.Probe, bool) {
		if len(probes) == 0 {
			return scan.Probe{}, false
		}
		p := probes[0]
		probes = probes[1:]
		return p, true
	}
	want := len(probes)
	got := map[netip.AddrPort]scan.Result{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	var err error
	testnet.In(t, n.Scanner, func() {
		err = scan.SYN(ctx, scan.SynConfig{}, next, func(r scan.Result) {
			ap := netip.AddrPortFrom(r.Addr, r.Port)
			if _, dup := got[ap]; dup {
				t.Errorf("%v reported twice", ap)
			}
			got[ap] = r
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d probes through the bottleneck in %v", want, time.Since(start))
	if len(got) != want {
		t.Fatalf("%d results; want %d", len(got), want)
	}
	for ap, r := range got {
		switch {
		case filtered[ap.Addr()]:
			if r.State != scan.Filtered {
				t.Errorf("%v on a filtered host reported %s/%s", ap, r.State, r.Reason)
			}
		case open[ap.Port()]:
			if r.State != scan.Open {
				t.Errorf("%v open but reported %s/%s after %d tries", ap, r.State, r.Reason, r.Tries)
			}
		case r.State == scan.Open:
			t.Errorf("%v invented open (%s)", ap, r.Reason)
		}
	}
}
