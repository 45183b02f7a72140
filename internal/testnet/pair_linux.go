//go:build linux

package testnet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Pair is two network namespaces made for one test and linked only to each
// other by a veth pair: a scanner and a target. Raw-packet senders (nmap
// -sS, masscan, hping3) run in the scanner; nothing leaves the pair.
type Pair struct {
	Scanner, Target string // the namespaces, as ip netns names them
	// ScannerIf is the scanner's interface; TargetMAC the target's MAC on
	// the link (masscan wants its "router").
	ScannerIf string
	TargetMAC string
	// Target4 and Target6 are the target's addresses; Sources4 and
	// Sources6 the scanner's, one per scan that must be told apart.
	Target4, Target6   netip.Addr
	Sources4, Sources6 []netip.Addr
}

// NewPair makes the pair, with sources addresses of each family on the
// scanner's side, and removes it when the test ends. It skips the test,
// saying why, without root or without ip.
func NewPair(t testing.TB, sources int) *Pair {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (Debian package iproute2; test-deps.sh installs it)")
	}
	if sources < 1 || sources > 200 {
		t.Fatalf("NewPair(%d): want 1-200 sources", sources)
	}
	id := rand.Uint32() & 0xffffff
	p := &Pair{
		Scanner:   fmt.Sprintf("portctl-scan-%06x", id),
		Target:    fmt.Sprintf("portctl-tgt-%06x", id),
		ScannerIf: fmt.Sprintf("ps%06x", id),
	}
	targetIf := fmt.Sprintf("pt%06x", id)
	for _, ns := range []string{p.Scanner, p.Target} {
		Run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", ns, err, out)
			}
		})
	}
	Run(t, "ip", "-n", p.Scanner, "link", "add", p.ScannerIf, "type", "veth", "peer", "name", targetIf, "netns", p.Target)
	// The addresses are private to the pair: no route leads out of it.
	net4 := netip.AddrFrom4([4]byte{10, 77, byte(id), 0})
	net6 := netip.AddrFrom16([16]byte{0xfd, 0x70, 0x63, byte(id >> 16), byte(id >> 8), byte(id)})
	p.Target4, p.Target6 = net4.Next(), net6.Next()
	Run(t, "ip", "-n", p.Target, "addr", "add", p.Target4.String()+"/24", "dev", targetIf)
	Run(t, "ip", "-n", p.Target, "addr", "add", p.Target6.String()+"/64", "dev", targetIf, "nodad")
	a4, a6 := p.Target4, p.Target6
	for range sources {
		a4, a6 = a4.Next(), a6.Next()
		p.Sources4, p.Sources6 = append(p.Sources4, a4), append(p.Sources6, a6)
		Run(t, "ip", "-n", p.Scanner, "addr", "add", a4.String()+"/24", "dev", p.ScannerIf)
		Run(t, "ip", "-n", p.Scanner, "addr", "add", a6.String()+"/64", "dev", p.ScannerIf, "nodad")
	}
	for _, x := range []struct{ ns, dev string }{{p.Scanner, p.ScannerIf}, {p.Target, targetIf}, {p.Scanner, "lo"}, {p.Target, "lo"}} {
		Run(t, "ip", "-n", x.ns, "link", "set", x.dev, "up")
	}
	out, err := exec.Command("ip", "-n", p.Target, "-br", "link", "show", targetIf).Output()
	if err != nil {
		t.Fatalf("ip link show: %v", err)
	}
	var name, state string
	fmt.Sscan(string(out), &name, &state, &p.TargetMAC)
	return p
}

// Exec runs a command inside namespace ns (ExecIn).
func (p *Pair) Exec(t testing.TB, ns string, limit time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	return ExecIn(t, ns, limit, name, args...)
}

// ExecIn runs a command inside namespace ns for at most limit and returns
// its combined output; a timeout fails the test.
func ExecIn(t testing.TB, ns string, limit time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: still running after %s: %s", name, args, limit, out)
	}
	return string(out), err
}

// Connects says whether a TCP connection from src, in the scanner, to dst
// is made within timeout; it is closed at once.
func (p *Pair) Connects(t testing.TB, src netip.Addr, dst netip.AddrPort, timeout time.Duration) bool {
	t.Helper()
	return ConnectsFrom(t, p.Scanner, src, dst, timeout)
}

// ConnectsFrom says whether a TCP connection from namespace ns (from the
// address src, when valid) to dst is made within timeout; it is closed at
// once.
func ConnectsFrom(t testing.TB, ns string, src netip.Addr, dst netip.AddrPort, timeout time.Duration) bool {
	t.Helper()
	var c net.Conn
	var err error
	In(t, ns, func() {
		d := net.Dialer{Timeout: timeout}
		if src.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		}
		c, err = d.Dial("tcp", dst.String())
	})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// SourceFor makes the scanner's packets to dst leave from src until the
// test ends (for clients that cannot be told their source address).
func (p *Pair) SourceFor(t testing.TB, dst, src netip.Addr) {
	t.Helper()
	fam := "-4"
	if dst.Is6() {
		fam = "-6"
	}
	route := netip.PrefixFrom(dst, dst.BitLen()).String()
	Run(t, "ip", fam, "-n", p.Scanner, "route", "replace", route, "dev", p.ScannerIf, "src", src.String())
	t.Cleanup(func() { exec.Command("ip", fam, "-n", p.Scanner, "route", "del", route).Run() })
}

// OpenToOnly checks that dst takes connections from allowed and not from
// other, and no longer from allowed once closesIn has passed.
func (p *Pair) OpenToOnly(t testing.TB, allowed, other netip.Addr, dst netip.AddrPort, closesIn time.Duration) {
	t.Helper()
	start := time.Now()
	if !p.Connects(t, allowed, dst, time.Second) {
		t.Errorf("%s is not open to %s", dst, allowed)
	}
	if p.Connects(t, other, dst, 500*time.Millisecond) {
		t.Errorf("%s is open to %s too", dst, other)
	}
	time.Sleep(closesIn + 500*time.Millisecond - time.Since(start))
	if p.Connects(t, allowed, dst, 500*time.Millisecond) {
		t.Errorf("%s is still open to %s after %s", dst, allowed, closesIn)
	}
}
