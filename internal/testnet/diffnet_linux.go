//go:build linux

package testnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portctl/portctl/netns"
	"golang.org/x/sys/unix"
)

// DiffNet is a small network for differential tests of a packet filter:
// a server namespace (Server) where the ruleset under test lives, with
// TCP and UDP listeners on Ports over IPv4 and IPv6, bound to the wildcard
// addresses; a client namespace (Client) on a veth pair with it, holding
// source addresses of several classes; and a third namespace (Far) behind
// the server, reached through it by forwarding (for DNAT to another
// machine), with the same listeners. Probe sends one connection or
// datagram and says what became of it.
//
// The server's interfaces are "veth0" (to the client) and "fwd0" (to Far);
// ip_forward is on in the server only. IPv6 neighbours are static, so a
// ruleset that drops ICMPv6 does not break neighbour discovery and with it
// every IPv6 probe; ICMP rate limits are off in the server, so that every
// reject answers.
//
// A DiffNet is safe for concurrent Probes.
type DiffNet struct {
	Server, Client, Far string // namespaces, as ip netns names them
	// ServerAddr4 and ServerAddr6 are the server's addresses on veth0.
	ServerAddr4, ServerAddr6 netip.Addr
	// ExtraAddr4 is a second local address of the server, on its lo,
	// which the client reaches through veth0.
	ExtraAddr4 netip.Addr
	// FarAddr4 and FarAddr6 are Far's addresses, routed through the server.
	FarAddr4, FarAddr6 netip.Addr
	Sources            []DiffSource
	Ports              []uint16

	nextPort atomic.Uint32
	mu       sync.Mutex
	arrivals map[arrivalKey]*arrival
	legacy   bool // legacy iptables tables were loaded
}

// DiffSource is a client address probes are sent from.
type DiffSource struct {
	Name string // "lan4", "internet6", "loopback4", …
	Addr netip.Addr
	// Loopback marks a client inside the server itself: its packets walk
	// the output path, then arrive on lo.
	Loopback bool
	// Iface is the server's interface the packets arrive by.
	Iface string
}

// Outcome is what became of a probe.
type Outcome int

const (
	// Silent: nothing arrived and nothing answered (a drop).
	Silent Outcome = iota
	// Refused: an error came back (a TCP reset or an ICMP unreachable:
	// a reject) and nothing arrived.
	Refused
	// Arrived: the listener got the connection or the datagram.
	Arrived
)

func (o Outcome) String() string {
	return [...]string{"silent", "refused", "arrived"}[o]
}

// Arrival is where a probe landed.
type Arrival struct {
	NS    string         // the namespace whose listener got it
	Local netip.AddrPort // the listener's side of it, after any NAT
}

type arrivalKey struct {
	proto  uint8
	remote netip.AddrPort
}

type arrival struct {
	done chan struct{}
	at   Arrival
}

// DiffPorts are the ports DiffNet listens on unless told otherwise: the
// usual services, NetBIOS and SMB, databases, and a few high ports.
var DiffPorts = []uint16{22, 25, 53, 80, 137, 138, 139, 443, 445, 1000, 2222, 3306, 5432, 6379, 8080, 8081, 8443, 9000, 9100, 10250}

// NewDiffNet builds the network and removes it when the test ends. server
// names an existing namespace to use as the server (one a container engine
// runs in, say), or is empty for a new one. ports are the ports to listen
// on (DiffPorts when nil); they must be below 20000, where probes take
// their source ports. It skips the test, saying why, without root, ip,
// nft or ss.
func NewDiffNet(t testing.TB, server string, ports []uint16) *DiffNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	for _, tool := range []string{"ip", "nft", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian packages iproute2 and nftables; test-deps.sh installs them)", tool)
		}
	}
	if ports == nil {
		ports = DiffPorts
	}
	id := rand.Uint32() & 0xffffff
	d := &DiffNet{
		Server:      server,
		Client:      fmt.Sprintf("pdiff-c-%06x", id),
		Far:         fmt.Sprintf("pdiff-f-%06x", id),
		ServerAddr4: netip.MustParseAddr("192.168.77.1"),
		ServerAddr6: netip.MustParseAddr("fd00:77::1"),
		ExtraAddr4:  netip.MustParseAddr("192.168.99.1"),
		FarAddr4:    netip.MustParseAddr("172.31.9.2"),
		FarAddr6:    netip.MustParseAddr("fd00:9::2"),
		Ports:       ports,
		arrivals:    map[arrivalKey]*arrival{},
	}
	for _, p := range ports {
		if p >= 20000 || p == 0 {
			t.Fatalf("NewDiffNet: port %d: want 1-19999", p)
		}
	}
	d.nextPort.Store(20000)
	names := []string{d.Client, d.Far}
	if server == "" {
		d.Server = fmt.Sprintf("pdiff-s-%06x", id)
		names = append(names, d.Server)
	}
	for _, n := range names {
		Run(t, "ip", "netns", "add", n)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", n).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", n, err, out)
			}
		})
	}
	S, C, F := d.Server, d.Client, d.Far
	const (
		macS, macC   = "02:00:00:77:00:01", "02:00:00:77:00:02"
		macSF, macF  = "02:00:00:09:00:01", "02:00:00:09:00:02"
		lanC, pubC   = "192.168.77.2", "198.51.100.7"
		lan2C, pub2C = "10.9.0.2", "203.0.113.9"
		lan6C, pub6C = "fd00:77::2", "2001:db8:1::7"
	)
	script := []string{
		"link add veth0 netns " + S + " address " + macS + " type veth peer name eth0 netns " + C + " address " + macC,
		"link add fwd0 netns " + S + " address " + macSF + " type veth peer name eth0 netns " + F + " address " + macF,
		"-n " + S + " link set lo up", "-n " + C + " link set lo up", "-n " + F + " link set lo up",
		"-n " + S + " addr add 192.168.77.1/24 dev veth0",
		"-n " + S + " addr add fd00:77::1/64 dev veth0 nodad",
		"-n " + S + " addr add 192.168.99.1/32 dev lo",
		"-n " + S + " addr add 172.31.9.1/24 dev fwd0",
		"-n " + S + " addr add fd00:9::1/64 dev fwd0 nodad",
		"-n " + S + " link set veth0 up", "-n " + S + " link set fwd0 up",
		"-n " + C + " addr add " + lanC + "/24 dev eth0",
		"-n " + C + " addr add " + lan2C + "/32 dev eth0",
		"-n " + C + " addr add " + pubC + "/32 dev eth0",
		"-n " + C + " addr add " + pub2C + "/32 dev eth0",
		"-n " + C + " addr add " + lan6C + "/64 dev eth0 nodad",
		"-n " + C + " addr add " + pub6C + "/128 dev eth0 nodad",
		"-n " + C + " link set eth0 up",
		"-n " + C + " route add default via 192.168.77.1",
		"-n " + C + " -6 route add default via fd00:77::1",
		"-n " + F + " addr add 172.31.9.2/24 dev eth0",
		"-n " + F + " addr add fd00:9::2/64 dev eth0 nodad",
		"-n " + F + " link set eth0 up",
		"-n " + F + " route add default via 172.31.9.1",
		"-n " + F + " -6 route add default via fd00:9::1",
		"-n " + S + " route add 10.9.0.0/16 via " + lanC,
		"-n " + S + " route add 198.51.100.0/24 via " + lanC,
		"-n " + S + " route add 203.0.113.0/24 via " + lanC,
		"-n " + S + " -6 route add 2001:db8:1::/48 via " + lan6C,
		"-n " + S + " neigh replace " + lanC + " lladdr " + macC + " dev veth0 nud permanent",
		"-n " + S + " neigh replace " + lan6C + " lladdr " + macC + " dev veth0 nud permanent",
		"-n " + C + " neigh replace 192.168.77.1 lladdr " + macS + " dev eth0 nud permanent",
		"-n " + C + " neigh replace fd00:77::1 lladdr " + macS + " dev eth0 nud permanent",
		"-n " + S + " neigh replace 172.31.9.2 lladdr " + macF + " dev fwd0 nud permanent",
		"-n " + S + " neigh replace fd00:9::2 lladdr " + macF + " dev fwd0 nud permanent",
		"-n " + F + " neigh replace 172.31.9.1 lladdr " + macSF + " dev eth0 nud permanent",
		"-n " + F + " neigh replace fd00:9::1 lladdr " + macSF + " dev eth0 nud permanent",
	}
	for _, line := range script {
		Run(t, "ip", strings.Fields(line)...)
	}
	// Forwarding in the server only, for DNAT to Far; no ICMP rate limits
	// there, so that every reject answers. The rate-limit knobs vary with
	// the kernel: a missing one is no error.
	var sysErr error
	In(t, S, func() {
		// /proc/sys/net opened from this thread is the namespace's.
		for _, kv := range [][2]string{{"ipv4/ip_forward", "1"}, {"ipv6/conf/all/forwarding", "1"},
			{"ipv4/icmp_ratelimit", "0"}, {"ipv6/icmp/ratelimit", "0"}, {"ipv4/icmp_msgs_per_sec", "1000000"}, {"ipv4/icmp_msgs_burst", "1000000"}} {
			err := os.WriteFile("/proc/sys/net/"+kv[0], []byte(kv[1]), 0)
			if err != nil && strings.Contains(kv[0], "forward") {
				sysErr = err
			}
		}
	})
	if sysErr != nil {
		t.Fatalf("forwarding on in %s: %v", S, sysErr)
	}
	d.Sources = []DiffSource{
		{Name: "lan4", Addr: netip.MustParseAddr(lanC), Iface: "veth0"},
		{Name: "lan4-routed", Addr: netip.MustParseAddr(lan2C), Iface: "veth0"},
		{Name: "internet4", Addr: netip.MustParseAddr(pubC), Iface: "veth0"},
		{Name: "internet4-b", Addr: netip.MustParseAddr(pub2C), Iface: "veth0"},
		{Name: "lan6", Addr: netip.MustParseAddr(lan6C), Iface: "veth0"},
		{Name: "internet6", Addr: netip.MustParseAddr(pub6C), Iface: "veth0"},
		{Name: "loopback4", Addr: d.ServerAddr4, Loopback: true, Iface: "lo"},
		{Name: "loopback6", Addr: d.ServerAddr6, Loopback: true, Iface: "lo"},
		{Name: "localhost4", Addr: netip.MustParseAddr("127.0.0.1"), Loopback: true, Iface: "lo"},
		{Name: "localhost6", Addr: netip.IPv6Loopback(), Loopback: true, Iface: "lo"},
	}
	for _, ns := range []string{S, F} {
		d.listen(t, ns)
	}
	return d
}

// Dst is the server's address a probe from src goes to: its own loopback
// address for a source on lo, else the server's veth0 address of src's
// family.
func (d *DiffNet) Dst(src DiffSource) netip.Addr {
	switch {
	case src.Addr.IsLoopback():
		return src.Addr
	case src.Addr.Is4():
		return d.ServerAddr4
	}
	return d.ServerAddr6
}

// SetForwarding turns forwarding (net.ipv4.ip_forward and
// net.ipv6.conf.all.forwarding) on or off in the server, and back on when
// the test ends.
func (d *DiffNet) SetForwarding(t testing.TB, on bool) {
	t.Helper()
	v := "0"
	if on {
		v = "1"
	}
	set := func(v string) (err error) {
		In(t, d.Server, func() {
			for _, k := range []string{"ipv4/ip_forward", "ipv6/conf/all/forwarding"} {
				if e := os.WriteFile("/proc/sys/net/"+k, []byte(v), 0); e != nil {
					err = e
				}
			}
		})
		return err
	}
	if err := set(v); err != nil {
		t.Fatalf("forwarding %s in %s: %v", v, d.Server, err)
	}
	if !on {
		t.Cleanup(func() { set("1") })
	}
}

// SetRPFilter sets the server's reverse-path filter
// (net.ipv4.conf.{all,veth0}.rp_filter: 0 off, 1 strict, 2 loose).
func (d *DiffNet) SetRPFilter(t testing.TB, mode int) {
	t.Helper()
	var err error
	In(t, d.Server, func() {
		for _, k := range []string{"all", "veth0"} {
			if e := os.WriteFile("/proc/sys/net/ipv4/conf/"+k+"/rp_filter", []byte(strconv.Itoa(mode)), 0); e != nil {
				err = e
			}
		}
	})
	if err != nil {
		t.Fatalf("rp_filter %d in %s: %v", mode, d.Server, err)
	}
}

// ServerNS is the server namespace, for the corpus loaders (UFW,
// Firewalld, KubeProxyShaped).
func (d *DiffNet) ServerNS() *Namespace {
	return &Namespace{Name: d.Server, Peer: d.ServerAddr4, Host: netip.MustParseAddr("192.168.77.2")}
}

// ServerPath is the server namespace's file, for reading its ruleset.
func (d *DiffNet) ServerPath() string { return "/run/netns/" + d.Server }

// Exec runs a command inside a namespace of d and fails the test when it
// fails; stdin, when not empty, is its input. It returns the output.
func (d *DiffNet) Exec(t testing.TB, ns, stdin string, args ...string) string {
	t.Helper()
	out, err := d.exec(ns, stdin, args...)
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
	return out
}

func (d *DiffNet) exec(ns, stdin string, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// LoadNft replaces the server's nftables ruleset with text, as nft -f
// reads it, and fails the test, with the text, when nft refuses it.
func (d *DiffNet) LoadNft(t testing.TB, text string) {
	t.Helper()
	if out, err := d.exec(d.Server, "flush ruleset\n"+text, "nft", "-f", "-"); err != nil {
		t.Fatalf("nft -f in %s: %v\n%s\nruleset:\n%s", d.Server, err, out, numbered(text))
	}
}

// LoadLegacy loads legacy iptables tables into the server with
// iptables-legacy-restore (v4) and ip6tables-legacy-restore (v6), either
// of which may be empty, on top of what is loaded. It skips the test
// without them.
func (d *DiffNet) LoadLegacy(t testing.TB, v4, v6 string) {
	t.Helper()
	for _, l := range []struct{ tool, text string }{{"iptables-legacy-restore", v4}, {"ip6tables-legacy-restore", v6}} {
		if l.text == "" {
			continue
		}
		if _, err := exec.LookPath(l.tool); err != nil {
			t.Skipf("needs %s (Debian package iptables)", l.tool)
		}
		d.mu.Lock()
		d.legacy = true
		d.mu.Unlock()
		if out, err := d.exec(d.Server, l.text, l.tool); err != nil {
			t.Fatalf("%s in %s: %v\n%s\ninput:\n%s", l.tool, d.Server, err, out, numbered(l.text))
		}
	}
}

// Flush empties the server's ruleset: nftables, and the legacy iptables
// tables when LoadLegacy loaded some.
func (d *DiffNet) Flush(t testing.TB) {
	t.Helper()
	d.Exec(t, d.Server, "", "nft", "flush", "ruleset")
	d.mu.Lock()
	legacy := d.legacy
	d.mu.Unlock()
	if !legacy {
		return
	}
	for _, tool := range []string{"iptables-legacy", "ip6tables-legacy"} {
		for _, table := range []string{"filter", "nat", "mangle", "raw"} {
			d.exec(d.Server, "", tool, "-t", table, "-F")
			d.exec(d.Server, "", tool, "-t", table, "-X")
		}
		for _, chain := range []string{"INPUT", "FORWARD", "OUTPUT"} {
			d.exec(d.Server, "", tool, "-t", "filter", "-P", chain, "ACCEPT")
		}
	}
}

func numbered(text string) string {
	var b strings.Builder
	for i, line := range strings.Split(text, "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, line)
	}
	return b.String()
}

// listen opens TCP and UDP listeners on every port of d, over IPv4 and
// IPv6 (IPV6_V6ONLY, so each family has its own), in namespace ns, and
// records what arrives until the test ends.
func (d *DiffNet) listen(t testing.TB, ns string) {
	t.Helper()
	var tcps []net.Listener
	var udps []net.PacketConn
	var err error
	In(t, ns, func() {
		for _, p := range d.Ports {
			for _, nw := range []string{"tcp4", "tcp6"} {
				var l net.Listener
				if l, err = net.Listen(nw, ":"+strconv.Itoa(int(p))); err != nil {
					return
				}
				tcps = append(tcps, l)
			}
			for _, nw := range []string{"udp4", "udp6"} {
				var c net.PacketConn
				if c, err = net.ListenPacket(nw, ":"+strconv.Itoa(int(p))); err != nil {
					return
				}
				udps = append(udps, c)
			}
		}
	})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		for _, l := range tcps {
			l.Close()
		}
		for _, c := range udps {
			c.Close()
		}
		wg.Wait()
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", ns, err)
	}
	for _, l := range tcps {
		wg.Go(func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				d.arrived(6, c.RemoteAddr().(*net.TCPAddr).AddrPort(), Arrival{NS: ns, Local: c.LocalAddr().(*net.TCPAddr).AddrPort()})
				c.Close()
			}
		})
	}
	for _, c := range udps {
		local := c.LocalAddr().(*net.UDPAddr).AddrPort()
		wg.Go(func() {
			buf := make([]byte, 64)
			for {
				_, from, err := c.(*net.UDPConn).ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				// A wildcard listener does not know which of its addresses
				// the datagram was sent to; the port is what NAT changes.
				d.arrived(17, from, Arrival{NS: ns, Local: local})
			}
		})
	}
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func (d *DiffNet) slot(k arrivalKey) *arrival {
	d.mu.Lock()
	defer d.mu.Unlock()
	a := d.arrivals[k]
	if a == nil {
		a = &arrival{done: make(chan struct{})}
		d.arrivals[k] = a
	}
	return a
}

func (d *DiffNet) arrived(proto uint8, remote netip.AddrPort, at Arrival) {
	at.Local = unmap(at.Local)
	a := d.slot(arrivalKey{proto, unmap(remote)})
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-a.done:
	default:
		a.at = at
		close(a.done)
	}
}

// wait waits up to timeout for a probe from remote to arrive.
func (d *DiffNet) wait(proto uint8, remote netip.AddrPort, timeout time.Duration) (Arrival, bool) {
	a := d.slot(arrivalKey{proto, remote})
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-a.done:
		d.mu.Lock()
		defer d.mu.Unlock()
		return a.at, true
	case <-t.C:
		return Arrival{}, false
	}
}

// SourcePort hands out a source port no probe of d used before, so that
// every probe is a new connection to conntrack and its trace and arrival
// can be told apart. When they run out (after 45000 probes) it marks the
// test failed and starts again from the first: it may be called from any
// goroutine, so it does not stop the test.
func (d *DiffNet) SourcePort(t testing.TB) uint16 {
	t.Helper()
	p := d.nextPort.Add(1)
	if p > 65000 {
		t.Errorf("DiffNet: out of source ports (more than 45000 probes): probes may now be taken for each other")
		p = 20001 + p%45000
	}
	return uint16(p)
}

// Probe sends one TCP connection attempt (proto 6) or one UDP datagram
// (17) from src, source port srcPort (from SourcePort), to dst, and waits
// at most timeout for it to arrive or be answered with an error. A TCP
// connection that completes arrived; a datagram arrived when a listener
// read it.
//
// A TCP SYN can also reach the listener while the connection does not
// complete: the ruleset drops the SYN-ACK on its way back (a local
// client's comes back in through input; a forwarded one passes forward
// again), or rejects the client's ACK with an ICMP error that reaches the
// client's socket before connect returns. The server then holds the
// connection half-open: HeldSYNs finds those.
func (d *DiffNet) Probe(src DiffSource, proto uint8, dst netip.AddrPort, srcPort uint16, timeout time.Duration) (Outcome, Arrival) {
	ns := d.Client
	if src.Loopback {
		ns = d.Server
	}
	local := netip.AddrPortFrom(src.Addr, srcPort)
	switch proto {
	case 6:
		out := d.probeTCP(ns, local, dst, timeout)
		if out != Arrived {
			return out, Arrival{}
		}
		// The connection completed; the listener may take a moment to
		// accept it. A listener not d's (a container's) records nothing.
		at, ok := d.wait(6, local, 300*time.Millisecond)
		if !ok {
			at = Arrival{NS: "?"}
		}
		return Arrived, at
	case 17:
		return d.probeUDP(ns, local, dst, timeout)
	}
	return Silent, Arrival{}
}

// HeldSYNs returns the TCP connections the server and Far namespaces hold
// half-open (SYN_RECV), by the client's address and port: their SYN
// reached a listener. Such entries last a minute or so, while the server
// sends its SYN-ACK again; SourcePort's ports are never reused, so an old
// one is not taken for a new probe.
func (d *DiffNet) HeldSYNs(t testing.TB) map[netip.AddrPort]Arrival {
	t.Helper()
	held := map[netip.AddrPort]Arrival{}
	for _, ns := range []string{d.Server, d.Far} {
		out := d.Exec(t, ns, "", "ss", "-Htn", "state", "syn-recv")
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 4 {
				continue
			}
			local, err1 := netip.ParseAddrPort(f[2])
			peer, err2 := netip.ParseAddrPort(f[3])
			if err1 == nil && err2 == nil {
				held[unmap(peer)] = Arrival{NS: ns, Local: unmap(local)}
			}
		}
	}
	return held
}

func (d *DiffNet) probeTCP(ns string, local, dst netip.AddrPort, timeout time.Duration) Outcome {
	out := Silent
	err := netns.Do("/run/netns/"+ns, func() {
		dl := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local), Timeout: timeout}
		c, err := dl.Dial("tcp", dst.String())
		switch {
		case err == nil:
			c.Close()
			out = Arrived
		case errors.Is(err, syscall.EPERM), errors.Is(err, os.ErrDeadlineExceeded):
			// EPERM: the output hook dropped a local client's SYN.
			out = Silent
		default:
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				out = Silent
			} else {
				out = Refused
			}
		}
	})
	if err != nil {
		return Silent
	}
	return out
}

func (d *DiffNet) probeUDP(ns string, local, dst netip.AddrPort, timeout time.Duration) (Outcome, Arrival) {
	var c *net.UDPConn
	var err error
	netns.Do("/run/netns/"+ns, func() {
		dl := net.Dialer{LocalAddr: net.UDPAddrFromAddrPort(local), Control: func(network, address string, rc syscall.RawConn) error {
			// Every ICMP error, not only the "hard" ones, is reported
			// to the socket.
			rc.Control(func(fd uintptr) {
				if dst.Addr().Is4() {
					unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
				} else {
					unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
				}
			})
			return nil
		}}
		var nc net.Conn
		if nc, err = dl.Dial("udp", dst.String()); err == nil {
			c = nc.(*net.UDPConn)
		}
	})
	if err != nil || c == nil {
		return Silent, Arrival{}
	}
	defer c.Close()
	if _, err := c.Write([]byte("portctl diff probe")); err != nil {
		if errors.Is(err, syscall.EPERM) {
			return Silent, Arrival{}
		}
		return Refused, Arrival{}
	}
	refused := make(chan struct{})
	go func() {
		c.SetReadDeadline(time.Now().Add(timeout))
		buf := make([]byte, 64)
		if _, err := c.Read(buf); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			close(refused)
		}
	}()
	if at, ok := d.wait(17, local, timeout); ok {
		return Arrived, at
	}
	select {
	case <-refused:
		return Refused, Arrival{}
	default:
	}
	return Silent, Arrival{}
}

// TraceEvent is one line of the kernel's nftables trace (nft monitor
// trace) for a packet: a rule that matched, a chain's policy, or a
// chain's end.
type TraceEvent struct {
	ID                   string
	Family, Table, Chain string
	Kind                 string // "packet", "rule", "policy", "verdict"
	Handle               uint64 // for a rule
	Verdict              string // "accept", "drop", "continue", "jump X", …
	Text                 string // the rule, or the packet's fields
}

// Trace records the kernel's nftables trace in the server while probes
// run: it adds a table of its own (TraceTable) that sets nftrace on every
// packet at prerouting and output, and runs nft monitor trace. Add it
// after reading the ruleset under test, so the reader does not see it.
type Trace struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []TraceEvent
	passes map[traceKey][]*tracePass // made from events by the first Packet
	lost   bool                      // the monitor said the kernel dropped events
	done   chan struct{}
	ready  chan struct{}
}

// monitorLost is what nft monitor prints when its socket overflowed and
// the kernel dropped events.
const monitorLost = "We lost some netlink events"

// lostWatch watches the monitor's stderr for monitorLost.
type lostWatch struct{ tr *Trace }

func (w lostWatch) Write(b []byte) (int, error) {
	if strings.Contains(string(b), monitorLost) {
		w.tr.mu.Lock()
		w.tr.lost = true
		w.tr.mu.Unlock()
	}
	return len(b), nil
}

// Lost says whether the monitor missed events: a packet's trace may then
// stop short. Call it after Stop.
func (tr *Trace) Lost() bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.lost
}

// TraceTable is the table Trace adds.
const TraceTable = "portctl_difftrace"

// StartTrace starts tracing in the server and waits until the monitor
// sees packets. Stop ends it.
func (d *DiffNet) StartTrace(t testing.TB) *Trace {
	t.Helper()
	d.Exec(t, d.Server, `table inet `+TraceTable+` {
	chain pre { type filter hook prerouting priority -1000; meta nftrace set 1; }
	chain out { type filter hook output priority -1000; meta nftrace set 1; }
}
`, "nft", "-f", "-")
	ctx, cancel := context.WithCancel(context.Background())
	tr := &Trace{done: make(chan struct{}), ready: make(chan struct{})}
	tr.cmd = exec.CommandContext(ctx, "ip", "netns", "exec", d.Server, "nft", "-a", "monitor", "trace")
	stdout, err := tr.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	tr.cmd.Stderr = lostWatch{tr}
	if err := tr.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-tr.done })
	go func() {
		defer close(tr.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		readyOnce := sync.OnceFunc(func() { close(tr.ready) })
		for sc.Scan() {
			if strings.Contains(sc.Text(), monitorLost) {
				tr.mu.Lock()
				tr.lost = true
				tr.mu.Unlock()
			}
			if e, ok := parseTraceLine(sc.Text()); ok {
				tr.mu.Lock()
				tr.events = append(tr.events, e)
				tr.mu.Unlock()
				readyOnce()
			}
		}
		tr.cmd.Wait()
	}()
	// The monitor subscribes a moment after it starts: a packet traced
	// before would be missed. Send datagrams until one shows.
	deadline := time.Now().Add(10 * time.Second)
	for {
		src := d.Sources[0]
		d.Probe(src, 17, netip.AddrPortFrom(d.ServerAddr4, d.Ports[0]), d.SourcePort(t), 20*time.Millisecond)
		select {
		case <-tr.ready:
			return tr
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("nft monitor trace showed nothing in 10s")
		}
	}
}

// Stop waits for the last events to come in, ends the monitor and removes
// the trace table. The monitor may lag behind the kernel on a busy
// machine: a last datagram is sent and its trace waited for (at most 10
// s), since the kernel reports events in order.
func (tr *Trace) Stop(t testing.TB, d *DiffNet) {
	t.Helper()
	src := d.Sources[0]
	last := netip.AddrPortFrom(src.Addr, d.SourcePort(t))
	d.Probe(src, 17, netip.AddrPortFrom(d.ServerAddr4, d.Ports[0]), last.Port(), 10*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for seen := 0; ; {
		tr.mu.Lock()
		for _, e := range tr.events[seen:] {
			if e.Kind == "packet" && e.Table == TraceTable {
				if k, ok := firstPacket(e.Text); ok && k == (traceKey{17, last}) {
					deadline = time.Time{}
				}
			}
		}
		seen = len(tr.events)
		tr.mu.Unlock()
		if deadline.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Logf("trace: the monitor did not show the last datagram in 10s; events may be missing")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	tr.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-tr.done:
	case <-time.After(5 * time.Second):
		tr.cmd.Process.Kill()
		<-tr.done
	}
	d.exec(d.Server, "", "nft", "delete", "table", "inet", TraceTable)
}

// Packet returns the events of the first packet (for TCP the SYN) sent
// from src, in order: every pass it made through the hooks (a local
// client's packet passes output, then prerouting and input again on lo).
// Events of the trace table itself are left out. Call it after Stop.
func (tr *Trace) Packet(proto uint8, src netip.AddrPort) []TraceEvent {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.passes == nil {
		tr.index()
	}
	var out []TraceEvent
	first := ""
	for _, p := range tr.passes[traceKey{proto, src}] {
		// A retransmission starts again where the first pass started:
		// stop there.
		if first == "" {
			first = p.start
		} else if p.start == first {
			break
		}
		out = append(out, p.events...)
	}
	return out
}

type traceKey struct {
	proto uint8
	src   netip.AddrPort
}

// tracePass is one packet's way through the hooks of one pass (from the
// trace table's chain on): the kernel may give two packets of one flow
// the same trace id, so the id alone does not delimit a packet.
type tracePass struct {
	start  string // the trace table's chain: pre or out
	events []TraceEvent
}

// index sorts the events into passes by the packet's protocol and source,
// keeping only first packets (a TCP SYN).
func (tr *Trace) index() {
	tr.passes = map[traceKey][]*tracePass{}
	open := map[string]*tracePass{} // by trace id
	for _, e := range tr.events {
		if e.Kind == "packet" && e.Table == TraceTable {
			k, ok := firstPacket(e.Text)
			if !ok {
				delete(open, e.ID)
				continue
			}
			p := &tracePass{start: e.Chain}
			tr.passes[k] = append(tr.passes[k], p)
			open[e.ID] = p
			continue
		}
		if p := open[e.ID]; p != nil && e.Table != TraceTable {
			p.events = append(p.events, e)
		}
	}
}

// firstPacket reads a trace's packet fields: the protocol and source of a
// UDP datagram or a TCP SYN; ok is false for anything else.
func firstPacket(fields string) (traceKey, bool) {
	f := strings.Fields(fields)
	var saddr netip.Addr
	var k traceKey
	var port uint64
	syn := false
	for i := 0; i+2 < len(f); i++ {
		switch {
		case (f[i] == "ip" || f[i] == "ip6") && f[i+1] == "saddr":
			saddr, _ = netip.ParseAddr(f[i+2])
		case f[i] == "tcp" && f[i+1] == "sport":
			k.proto = 6
			port, _ = strconv.ParseUint(f[i+2], 10, 16)
		case f[i] == "udp" && f[i+1] == "sport":
			k.proto = 17
			port, _ = strconv.ParseUint(f[i+2], 10, 16)
		case f[i] == "tcp" && f[i+1] == "flags" && i+3 < len(f):
			syn = f[i+2] == "==" && f[i+3] == "syn"
		}
	}
	if !saddr.IsValid() || k.proto == 0 || k.proto == 6 && !syn {
		return traceKey{}, false
	}
	k.src = netip.AddrPortFrom(saddr, uint16(port))
	return k, true
}

// parseTraceLine reads one line of nft -a monitor trace:
//
//	trace id ID FAMILY TABLE CHAIN packet: FIELDS
//	trace id ID FAMILY TABLE CHAIN rule RULE # handle N (verdict V)
//	trace id ID FAMILY TABLE CHAIN policy V
//	trace id ID FAMILY TABLE CHAIN verdict V
func parseTraceLine(line string) (TraceEvent, bool) {
	f := strings.Fields(line)
	if len(f) < 7 || f[0] != "trace" || f[1] != "id" {
		return TraceEvent{}, false
	}
	e := TraceEvent{ID: f[2], Family: f[3], Table: f[4], Chain: f[5]}
	rest := strings.Join(f[6:], " ")
	switch {
	case strings.HasPrefix(rest, "packet: "):
		e.Kind, e.Text = "packet", strings.TrimPrefix(rest, "packet: ")
	case strings.HasPrefix(rest, "rule "):
		e.Kind = "rule"
		body := strings.TrimPrefix(rest, "rule ")
		if i := strings.LastIndex(body, " (verdict "); i >= 0 {
			e.Verdict = strings.TrimSuffix(body[i+len(" (verdict "):], ")")
			body = body[:i]
		}
		if i := strings.LastIndex(body, " # handle "); i >= 0 {
			e.Handle, _ = strconv.ParseUint(strings.TrimSpace(body[i+len(" # handle "):]), 10, 64)
			body = body[:i]
		}
		e.Text = body
	case strings.HasPrefix(rest, "policy "):
		e.Kind, e.Verdict = "policy", strings.TrimSpace(strings.TrimPrefix(rest, "policy "))
	case strings.HasPrefix(rest, "verdict "):
		e.Kind, e.Verdict = "verdict", strings.TrimSpace(strings.TrimPrefix(rest, "verdict "))
	default:
		return TraceEvent{}, false
	}
	return e, true
}
