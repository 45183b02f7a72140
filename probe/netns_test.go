package probe

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// testNet is a network namespace made for one test, joined to this one by
// a veth pair with a /30 of 10.0.0.0/8 that nothing here uses, and with
// an empty nftables input chain ("inet t in") that rules can be added to.
type testNet struct {
	ns   string
	peer netip.Addr // the namespace's address
}

// newTestNet makes the namespace and removes it when the test ends. It
// skips the test, saying why, without root or without ip and nft.
func newTestNet(t *testing.T) *testNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian packages iproute2 and nftables; .ci/run installs them)", tool)
		}
	}
	id := rand.Uint32() & 0xffffff
	n := &testNet{ns: fmt.Sprintf("portctl-test-%06x", id)}
	hostIf, peerIf := fmt.Sprintf("pt%06xa", id), fmt.Sprintf("pt%06xb", id)
	prefix := freeSubnet(t)
	hostAddr := prefix.Addr().Next()
	n.peer = hostAddr.Next()

	run(t, "ip", "netns", "add", n.ns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", hostIf).Run() // gone with the namespace already, as a rule
		if out, err := exec.Command("ip", "netns", "del", n.ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.ns, err, out)
		}
	})
	run(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", peerIf)
	run(t, "ip", "link", "set", peerIf, "netns", n.ns)
	run(t, "ip", "addr", "add", fmt.Sprintf("%s/30", hostAddr), "dev", hostIf)
	run(t, "ip", "link", "set", hostIf, "up")
	run(t, "ip", "-n", n.ns, "addr", "add", fmt.Sprintf("%s/30", n.peer), "dev", peerIf)
	run(t, "ip", "-n", n.ns, "link", "set", peerIf, "up")
	run(t, "ip", "-n", n.ns, "link", "set", "lo", "up")
	n.nft(t, "add table inet t")
	n.nft(t, "add chain inet t in { type filter hook input priority 0 ; }")
	return n
}

// nft runs an nft command inside the namespace.
func (n *testNet) nft(t *testing.T, cmd string) {
	t.Helper()
	run(t, "ip", append([]string{"netns", "exec", n.ns, "nft"}, strings.Fields(cmd)...)...)
}

// freeSubnet picks a /30 in 10.200.0.0/13 that overlaps no address or
// route of this namespace.
func freeSubnet(t *testing.T) netip.Prefix {
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
		a := netip.AddrFrom4([4]byte{10, byte(200 + r%8), byte(r >> 8), byte(r>>16) &^ 3})
		p := netip.PrefixFrom(a, 30)
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
	t.Skip("found no unused /30 in 10.200.0.0/13")
	return netip.Prefix{}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}
