//go:build linux

package testnet

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Namespace is a network namespace made for one test, joined to this one by
// a veth pair with a /30 of 10.0.0.0/8 that nothing here uses, and with
// an empty nftables input chain ("inet t in") that rules can be added to.
type Namespace struct {
	Name string     // the namespace, as ip netns names it
	Peer netip.Addr // the namespace's address on the veth pair
	Host netip.Addr // this side's address on the veth pair
}

// NewNamespace makes the namespace and removes it when the test ends. It
// skips the test, saying why, without root or without ip and nft.
func NewNamespace(t testing.TB) *Namespace {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian packages iproute2 and nftables; test-deps.sh installs them)", tool)
		}
	}
	id := rand.Uint32() & 0xffffff
	n := &Namespace{Name: fmt.Sprintf("portctl-test-%06x", id)}
	hostIf, peerIf := fmt.Sprintf("pt%06xa", id), fmt.Sprintf("pt%06xb", id)
	prefix := freeSubnet(t)
	hostAddr := prefix.Addr().Next()
	n.Peer, n.Host = hostAddr.Next(), hostAddr

	Run(t, "ip", "netns", "add", n.Name)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", hostIf).Run() // gone with the namespace already, as a rule
		if out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.Name, err, out)
		}
	})
	Run(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", peerIf)
	Run(t, "ip", "link", "set", peerIf, "netns", n.Name)
	Run(t, "ip", "addr", "add", fmt.Sprintf("%s/30", hostAddr), "dev", hostIf)
	Run(t, "ip", "link", "set", hostIf, "up")
	Run(t, "ip", "-n", n.Name, "addr", "add", fmt.Sprintf("%s/30", n.Peer), "dev", peerIf)
	Run(t, "ip", "-n", n.Name, "link", "set", peerIf, "up")
	Run(t, "ip", "-n", n.Name, "link", "set", "lo", "up")
	n.Nft(t, "add table inet t")
	n.Nft(t, "add chain inet t in { type filter hook input priority 0 ; }")
	return n
}

// Nft runs an nft command inside the namespace.
func (n *Namespace) Nft(t testing.TB, cmd string) {
	t.Helper()
	Run(t, "ip", append([]string{"netns", "exec", n.Name, "nft"}, strings.Fields(cmd)...)...)
}

// freeSubnet picks a /30 in 10.200.0.0/13 that overlaps no address or
// route of this namespace.
func freeSubnet(t testing.TB) netip.Prefix { return freePrefix(t, 30) }

// freePrefix picks a prefix of the given length (24 to 30) in
// 10.200.0.0/13 that overlaps no address or route of this namespace.
func freePrefix(t testing.TB, bits int) netip.Prefix {
	t.Helper()
	out, err := exec.Command("sh", "-c", "ip -o addr show; ip route show table all").Output()
	if err != nil {
		t.Fatalf("listing addresses and routes: %v", err)
	}
	var used []netip.Prefix
	for _, f := range strings.Fields(string(out)) {
		if p, err := netip.ParsePrefix(f); err == nil {
			used = append(used, p.Masked())
		} else if a, err := netip.ParseAddr(f); err == nil {
			used = append(used, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	for range 100 {
		r := rand.Uint32()
		a := netip.AddrFrom4([4]byte{10, byte(200 + r%8), byte(r >> 8), byte(r >> 16)})
		p, _ := a.Prefix(bits)
		clash := false
		for _, u := range used {
			if u.Overlaps(p) && u.Bits() > 0 {
				clash = true
			}
		}
		if !clash {
			return p
		}
	}
	t.Skipf("found no unused /%d in 10.200.0.0/13", bits)
	return netip.Prefix{}
}

// Run runs a command and fails the test when it fails.
func Run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// AddHosts gives the namespace count more addresses (at most 254), on its
// loopback interface in a /24 of 10.200.0.0/13 that nothing here uses, and
// routes that /24 to it from this side. It returns the /24 and the
// addresses.
func (n *Namespace) AddHosts(t testing.TB, count int) (netip.Prefix, []netip.Addr) {
	t.Helper()
	if count < 1 || count > 254 {
		t.Fatalf("AddHosts(%d): want 1-254", count)
	}
	p := freePrefix(t, 24)
	var addrs []netip.Addr
	a := p.Addr()
	for i := 0; i < count; i++ {
		a = a.Next()
		Run(t, "ip", "-n", n.Name, "addr", "add", a.String()+"/32", "dev", "lo")
		addrs = append(addrs, a)
	}
	Run(t, "ip", "route", "add", p.String(), "via", n.Peer.String())
	t.Cleanup(func() { exec.Command("ip", "route", "del", p.String()).Run() })
	return p, addrs
}

// ListenAny opens a TCP listener inside the namespace on every address
// (0.0.0.0) and the given port, until the test ends.
func (n *Namespace) ListenAny(t testing.TB, port uint16) {
	t.Helper()
	saved := n.Peer
	n.Peer = netip.IPv4Unspecified()
	defer func() { n.Peer = saved }()
	n.Listen(t, port)
}

// isolatedEnv marks the child process Isolated starts.
const isolatedEnv = "PORTCTL_TEST_ISOLATED"

// logged matches a line that t.Log wrote: "    file_test.go:12: text".
var logged = regexp.MustCompile(`^\s+\S+_test\.go:\d+: `)

// Isolated runs the calling test again, alone, in a child process of the
// test binary inside a network namespace of its own, where nothing else
// listens on loopback: for tests that look at every port of 127.0.0.1,
// which servers other packages' tests start and stop would otherwise
// disturb. It returns true in the parent, which should then return (the
// child's result is the test's), and false in the child, which runs the
// test's body. It skips, saying why, without root or ip.
func Isolated(t *testing.T) bool {
	t.Helper()
	if os.Getenv(isolatedEnv) == t.Name() {
		return false
	}
	n := NewNamespace(t)
	cmd := exec.Command("ip", "netns", "exec", n.Name, os.Args[0],
		"-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), isolatedEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in namespace %s: %v\n%s", t.Name(), n.Name, err, out)
	}
	// Pass on what the child logged (its figures, its artifacts).
	for _, line := range strings.Split(string(out), "\n") {
		if logged.MatchString(line) {
			t.Log(strings.TrimSpace(line))
		}
	}
	return true
}
