package firewall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
)

// nftOut runs nft inside the namespace and returns what it printed.
func nftOut(t *testing.T, n *testnet.Namespace, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name, "nft"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nft %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// reachTCP says whether a TCP connection to addr opens within d.
func reachTCP(addr netip.AddrPort, d time.Duration) bool {
	c, err := net.DialTimeout("tcp", addr.String(), d)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// udpEcho starts a UDP echo server inside the namespace on addr until the
// test ends.
func udpEcho(t *testing.T, n *testnet.Namespace, addr netip.AddrPort) {
	t.Helper()
	var pc net.PacketConn
	var err error
	testnet.In(t, n.Name, func() { pc, err = net.ListenPacket("udp", addr.String()) })
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:k], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
}

// reachUDP says whether a datagram to addr is echoed within d.
func reachUDP(t *testing.T, addr netip.AddrPort, d time.Duration) bool {
	t.Helper()
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("ping")); err != nil {
		return false
	}
	buf := make([]byte, 16)
	k, err := c.Read(buf)
	return err == nil && string(buf[:k]) == "ping"
}

// loadOther loads a table of another owner into the namespace and
// returns how nft lists it.
func loadOther(t *testing.T, n *testnet.Namespace) string {
	t.Helper()
	n.Nft(t, "add rule inet t in tcp dport 9999 counter accept comment other-owner")
	n.Nft(t, "add chain inet t routed { type filter hook forward priority 0 ; policy drop ; }")
	n.Nft(t, "add set inet t s { type inet_service ; flags interval,timeout ; elements = { 7000-7010 timeout 1h } ; }")
	n.Nft(t, "add rule inet t in udp dport @s drop")
	return listOther(t, n)
}

// listOther lists the other owner's table without the set's countdown,
// which runs on by itself.
func listOther(t *testing.T, n *testnet.Namespace) string {
	t.Helper()
	out := nftOut(t, n, "-a", "list", "table", "inet", "t")
	if i := strings.Index(out, " expires "); i >= 0 {
		j := strings.IndexAny(out[i+9:], " ,}\n")
		out = out[:i] + out[i+9+j:]
	}
	return out
}

func TestIntegrationBlockExpires(t *testing.T) {
	n := testnet.NewNamespace(t)
	opts := Options{NetNS: "/run/netns/" + n.Name}
	ctx := context.Background()
	before := loadOther(t, n)
	addr := n.Listen(t, 8080)
	if !reachTCP(addr, 2*time.Second) {
		t.Fatalf("%s is not reachable before any block", addr)
	}

	start := time.Now()
	if err := Block(ctx, opts, PortBlock{Ports: [2]uint16{8080, 8080}, For: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	t.Logf("portctl's table:\n%s", nftOut(t, n, "-a", "list", "table", "inet", OwnTable))
	if reachTCP(addr, 500*time.Millisecond) {
		t.Fatalf("%s is reachable right after Block 8080 --for 5s", addr)
	}
	bs, err := Blocks(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 || bs[0].Proto != "" || bs[0].Ports != [2]uint16{8080, 8080} || bs[0].For != 5*time.Second ||
		bs[0].Expires <= 0 || bs[0].Expires > 5*time.Second {
		t.Fatalf("Blocks() = %+v; want one block of 8080, both protocols, for 5s, expiring within 5s", bs)
	}

	// Nothing of ours runs from here on: the kernel alone lifts the block.
	var reopened time.Duration
	for time.Since(start) < 12*time.Second {
		if reachTCP(addr, 250*time.Millisecond) {
			reopened = time.Since(start)
			break
		}
	}
	if reopened == 0 {
		t.Fatalf("%s still blocked 12s after Block --for 5s", addr)
	}
	if reopened < 4500*time.Millisecond {
		t.Fatalf("%s reachable again after %v, before the 5s were up", addr, reopened)
	}
	t.Logf("blocked for 5s: dropped at once, reachable again after %.2fs with no call from portctl", reopened.Seconds())
	if bs, err := Blocks(ctx, opts); err != nil || len(bs) != 0 {
		t.Fatalf("Blocks() after expiry = %+v, %v; want none", bs, err)
	}
	if after := listOther(t, n); after != before {
		t.Fatalf("another owner's table changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestIntegrationBlockUDPFromUnblock(t *testing.T) {
	n := testnet.NewNamespace(t)
	opts := Options{NetNS: "/run/netns/" + n.Name}
	ctx := context.Background()
	before := loadOther(t, n)
	udp := netip.AddrPortFrom(n.Peer, 5353)
	udpEcho(t, n, udp)
	tcpA, tcpB := n.Listen(t, 8081), n.Listen(t, 8082)
	if !reachUDP(t, udp, 2*time.Second) || !reachTCP(tcpA, 2*time.Second) || !reachTCP(tcpB, 2*time.Second) {
		t.Fatal("not reachable before any block")
	}

	// UDP only: TCP on the same port is left alone.
	tcpSame := n.Listen(t, 5353)
	if err := Block(ctx, opts, PortBlock{Proto: "udp", Ports: [2]uint16{5300, 5400}}); err != nil {
		t.Fatal(err)
	}
	if reachUDP(t, udp, 500*time.Millisecond) {
		t.Errorf("udp %s answered through a udp block of 5300-5400", udp)
	}
	if !reachTCP(tcpSame, 2*time.Second) {
		t.Errorf("tcp %s blocked by a udp-only block", tcpSame)
	}

	// From a source: ours is blocked, another prefix's block does not hit us.
	mine := netip.PrefixFrom(n.Host, 32)
	if err := Block(ctx, opts, PortBlock{Proto: "tcp", Ports: [2]uint16{8081, 8081}, From: mine}); err != nil {
		t.Fatal(err)
	}
	if err := Block(ctx, opts, PortBlock{Proto: "tcp", Ports: [2]uint16{8082, 8082}, From: netip.MustParsePrefix("192.0.2.0/24")}); err != nil {
		t.Fatal(err)
	}
	if err := Block(ctx, opts, PortBlock{Proto: "tcp", Ports: [2]uint16{8082, 8082}, From: netip.MustParsePrefix("2001:db8::/32")}); err != nil {
		t.Fatal(err)
	}
	if reachTCP(tcpA, 500*time.Millisecond) {
		t.Errorf("%s reachable from %s through a block from %s", tcpA, n.Host, mine)
	}
	if !reachTCP(tcpB, 2*time.Second) {
		t.Errorf("%s blocked from %s by a block from 192.0.2.0/24", tcpB, n.Host)
	}
	t.Logf("portctl's table:\n%s", nftOut(t, n, "-a", "list", "table", "inet", OwnTable))

	// Overlaps are refused, naming the block in the way.
	err := Block(ctx, opts, PortBlock{Proto: "udp", Ports: [2]uint16{5353, 5353}})
	if err == nil || !strings.Contains(err.Error(), "5300-5400/udp") {
		t.Errorf("Block 5353/udp over 5300-5400/udp = %v; want an error naming 5300-5400/udp", err)
	}

	// The same block again starts its time again: here from for ever to an hour.
	if err := Block(ctx, opts, PortBlock{Proto: "udp", Ports: [2]uint16{5300, 5400}, For: time.Hour}); err != nil {
		t.Fatalf("Block of what is blocked, with another duration: %v", err)
	}
	if reachUDP(t, udp, 500*time.Millisecond) {
		t.Errorf("udp %s answered after the block was renewed", udp)
	}

	bs, err := Blocks(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"5300-5400/udp for 1h0m0s", "8081/tcp from " + mine.String(), "8082/tcp from 192.0.2.0/24", "8082/tcp from 2001:db8::/32"}
	var got []string
	for _, b := range bs {
		got = append(got, b.String())
		if b.For > 0 && (b.Expires <= b.For-time.Minute || b.Expires > b.For) {
			t.Errorf("block %s expires in %v", b, b.Expires)
		}
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Blocks() = %q; want %q", got, want)
	}

	// Unblock: a part of a range is refused; the whole range goes.
	if err := Unblock(ctx, opts, PortBlock{Proto: "udp", Ports: [2]uint16{5353, 5353}}); err == nil {
		t.Errorf("Unblock 5353/udp inside 5300-5400/udp succeeded; want it refused")
	}
	if err := Unblock(ctx, opts, PortBlock{Ports: [2]uint16{5000, 6000}}); err != nil {
		t.Fatal(err)
	}
	if !reachUDP(t, udp, 2*time.Second) {
		t.Errorf("udp %s still blocked after Unblock 5000-6000", udp)
	}
	if err := Unblock(ctx, opts, PortBlock{Ports: [2]uint16{5000, 6000}}); !errors.Is(err, ErrNotBlocked) {
		t.Errorf("Unblock of nothing = %v; want ErrNotBlocked", err)
	}
	if err := Unblock(ctx, opts, PortBlock{Ports: [2]uint16{8081, 8082}}); err != nil {
		t.Fatal(err)
	}
	if !reachTCP(tcpA, 2*time.Second) {
		t.Errorf("%s still blocked after Unblock 8081-8082", tcpA)
	}
	// Nothing blocked any more: the table is gone.
	if tables := nftOut(t, n, "list", "tables"); strings.Contains(tables, "inet "+OwnTable+"\n") {
		t.Errorf("table inet %s left behind with nothing in it:\n%s", OwnTable, tables)
	}
	if after := listOther(t, n); after != before {
		t.Fatalf("another owner's table changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// addIPv6 gives both ends of the namespace's veth pair an address of a
// /64 of fd00::/8 (no duplicate detection, so they work at once) and
// returns this side's and the namespace's.
func addIPv6(t *testing.T, n *testnet.Namespace) (host, peer netip.Addr) {
	t.Helper()
	dev := func(args ...string) string {
		out, err := exec.Command("ip", args...).Output()
		if err != nil {
			t.Fatalf("ip %s: %v", strings.Join(args, " "), err)
		}
		f := strings.Fields(string(out))
		if len(f) < 2 {
			t.Fatalf("ip %s: no device in %q", strings.Join(args, " "), out)
		}
		return strings.TrimSuffix(f[1], ":")
	}
	hostIf := dev("-o", "addr", "show", "to", n.Host.String())
	peerIf := dev("-n", n.Name, "-o", "addr", "show", "to", n.Peer.String())
	b := n.Peer.As4()
	pfx := fmt.Sprintf("fd%02x:%02x%02x:%02x00::", b[1], b[2], b[3], b[0])
	host, peer = netip.MustParseAddr(pfx+"1"), netip.MustParseAddr(pfx+"2")
	testnet.Run(t, "ip", "addr", "add", host.String()+"/64", "dev", hostIf, "nodad")
	testnet.Run(t, "ip", "-n", n.Name, "addr", "add", peer.String()+"/64", "dev", peerIf, "nodad")
	return host, peer
}

func TestIntegrationBlockIPv6From(t *testing.T) {
	n := testnet.NewNamespace(t)
	opts := Options{NetNS: "/run/netns/" + n.Name}
	ctx := context.Background()
	host, peer := addIPv6(t, n)
	addr := testnet.ListenIn(t, n.Name, netip.AddrPortFrom(peer, 8443))
	if !reachTCP(addr, 3*time.Second) {
		t.Fatalf("%s not reachable before any block", addr)
	}
	other := netip.MustParsePrefix("2001:db8::/32")
	if err := Block(ctx, opts, PortBlock{Proto: "tcp", Ports: [2]uint16{8443, 8443}, From: other}); err != nil {
		t.Fatal(err)
	}
	if !reachTCP(addr, 2*time.Second) {
		t.Errorf("%s blocked from %s by a block from %s", addr, host, other)
	}
	mine, _ := host.Prefix(64)
	if err := Block(ctx, opts, PortBlock{Proto: "tcp", Ports: [2]uint16{8443, 8443}, From: mine}); err != nil {
		t.Fatal(err)
	}
	if reachTCP(addr, 500*time.Millisecond) {
		t.Errorf("%s reachable from %s through a block from %s", addr, host, mine)
	}

	// The trace, filtered on the IPv6 source, names the block's rule.
	tr, err := StartTrace(ctx, opts, TraceFilter{Proto: 6, DstPort: 8443, SYN: true, Src: mine}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reachTCP(addr, 300*time.Millisecond)
	events, err := tr.Stop()
	if err != nil {
		t.Fatal(err)
	}
	h := ruleHandle(t, n, OwnTable, blockPreChain, "ip6 saddr")
	ds := TraceDecisions(events)
	if len(ds) == 0 || ds[0].Verdict != Drop || ds[0].Decider.Handle != h || ds[0].Events[0].Src != host {
		t.Errorf("trace decisions %+v; want a drop by %s handle %d of a packet from %s", ds, blockPreChain, h, host)
	}
	if err := Unblock(ctx, opts, PortBlock{Ports: [2]uint16{8443, 8443}, From: mine}); err != nil {
		t.Fatal(err)
	}
	if !reachTCP(addr, 2*time.Second) {
		t.Errorf("%s still blocked after Unblock from %s", addr, mine)
	}
	if bs, _ := Blocks(ctx, opts); len(bs) != 1 || bs[0].From != other {
		t.Errorf("Blocks() = %v; want only the block from %s left", bs, other)
	}
}

// TestIntegrationBlockBeforeDNAT: a port that a nat rule sends elsewhere
// (as Docker's DNAT sends a published port to a container) is blocked by
// the port the client asks for, because the block runs before
// destination NAT.
func TestIntegrationBlockBeforeDNAT(t *testing.T) {
	n := testnet.NewNamespace(t)
	opts := Options{NetNS: "/run/netns/" + n.Name}
	ctx := context.Background()
	n.Nft(t, "add table ip nat")
	n.Nft(t, "add chain ip nat pre { type nat hook prerouting priority dstnat ; }")
	n.Nft(t, "add rule ip nat pre tcp dport 8080 redirect to :9090")
	n.Listen(t, 9090)
	published := netip.AddrPortFrom(n.Peer, 8080)
	if !reachTCP(published, 2*time.Second) {
		t.Fatalf("%s (redirected to 9090) not reachable before any block", published)
	}
	if err := Block(ctx, opts, PortBlock{Proto: "tcp", Ports: [2]uint16{8080, 8080}}); err != nil {
		t.Fatal(err)
	}
	if reachTCP(published, 500*time.Millisecond) {
		t.Errorf("%s reachable through a block of 8080: the nat rule ran first", published)
	}
}
