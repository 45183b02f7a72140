package scan_test

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/scan"
)

// listenPacketIn opens a UDP socket on addr inside namespace n: a locked
// thread enters the namespace, opens it and comes back.
func listenPacketIn(t *testing.T, n *testnet.Namespace, addr string) net.PacketConn {
	t.Helper()
	var c net.PacketConn
	var err error
	testnet.In(t, n.Name, func() { c, err = net.ListenPacket("udp", addr) })
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, n.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestIntegrationUDPFiltered scans a namespace where nftables drops one
// port, rejects others with ICMP errors, and a server answers on one.
func TestIntegrationUDPFiltered(t *testing.T) {
	n := testnet.NewNamespace(t)
	echo := listenPacketIn(t, n, netip.AddrPortFrom(n.Peer, 0).String())
	var wg sync.WaitGroup
	wg.Go(func() { serveEcho(echo, false) })
	t.Cleanup(func() { echo.Close(); wg.Wait() })
	open := echo.LocalAddr().(*net.UDPAddr).AddrPort().Port()

	n.Nft(t, "add rule inet t in udp dport 7001 drop")
	n.Nft(t, "add rule inet t in udp dport 7002 reject with icmp type admin-prohibited")
	n.Nft(t, "add rule inet t in udp dport 7003 reject with icmpx type port-unreachable")
	n.Nft(t, "add rule inet t in udp dport 7004 reject with icmp type host-unreachable")
	n.Nft(t, "add rule inet t in udp dport 7005 reject with icmp type net-unreachable")
	ports := []uint16{open, 7001, 7002, 7003, 7004, 7005, 7006}
	got := runUDP(t, scan.UDPConfig{Timeout: 300 * time.Millisecond, Retries: 1}, n.Peer, ports)
	checkUDP(t, got, map[uint16]udpWant{
		open: {scan.Open, scan.ReasonUDPResponse, 1},
		7001: {scan.OpenFiltered, scan.ReasonNoResponse, 2},
		7002: {scan.Filtered, scan.ReasonAdminProhibited, 1},
		7003: {scan.Closed, scan.ReasonPortUnreach, 1},
		7004: {scan.Filtered, scan.ReasonHostUnreach, 1},
		7005: {scan.Filtered, scan.ReasonNetUnreach, 1},
		7006: {scan.Closed, scan.ReasonPortUnreach, 1}, // the namespace's own kernel
	})
}

// TestIntegrationUDPOtherPort checks TFTP's way of answering, from a port
// of its own (RFC 1350 §4): a server on port 69 of a namespace that
// answers each request from a fresh socket reads open.
func TestIntegrationUDPOtherPort(t *testing.T) {
	n := testnet.NewNamespace(t)
	srv := listenPacketIn(t, n, netip.AddrPortFrom(n.Peer, 69).String())
	reply := listenPacketIn(t, n, netip.AddrPortFrom(n.Peer, 0).String())
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			_, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			// ERROR, code 1: file not found.
			reply.WriteTo(append([]byte{0, 5, 0, 1}, "File not found\x00"...), from)
		}
	})
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	got := runUDP(t, scan.UDPConfig{Timeout: 300 * time.Millisecond}, n.Peer, []uint16{69})
	checkUDP(t, got, map[uint16]udpWant{69: {scan.Open, scan.ReasonUDPResponse, 1}})

	// With nothing on the port, the ICMP error reaches the unconnected
	// socket too.
	srv.Close()
	wg.Wait()
	got = runUDP(t, scan.UDPConfig{Timeout: 300 * time.Millisecond}, n.Peer, []uint16{69})
	checkUDP(t, got, map[uint16]udpWant{69: {scan.Closed, scan.ReasonPortUnreach, 1}})
}

// startIn runs a server in namespace n until the test ends, skipping the
// test when the program is not installed.
func startIn(t *testing.T, n *testnet.Namespace, prog string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(prog); err != nil {
		t.Skipf("needs %s (test-deps.sh installs it)", prog)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name, prog}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", prog, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", prog, out.String())
		}
	})
}

// scanUntilOpen scans port until it reads open (the server may still be
// starting) or five seconds pass, and returns the last result.
func scanUntilOpen(t *testing.T, addr netip.Addr, port uint16) scan.Result {
	t.Helper()
	var r scan.Result
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		r = runUDP(t, scan.UDPConfig{Timeout: 500 * time.Millisecond}, addr, []uint16{port})[port]
		if r.State == scan.Open {
			break
		}
	}
	return r
}

// TestIntegrationUDPServers checks that real servers answer the payloads:
// dnsmasq on 53 and net-snmp's snmpd on 161 inside a namespace.
func TestIntegrationUDPServers(t *testing.T) {
	t.Run("dnsmasq", func(t *testing.T) {
		n := testnet.NewNamespace(t)
		startIn(t, n, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
			"--bind-interfaces", "--listen-address="+n.Peer.String(), "--port=53", "--pid-file=", "--user=root")
		if r := scanUntilOpen(t, n.Peer, 53); r.State != scan.Open || r.Reason != scan.ReasonUDPResponse {
			t.Errorf("dnsmasq on 53: %s/%s; want open/udp-response", r.State, r.Reason)
		}
	})
	t.Run("snmpd", func(t *testing.T) {
		n := testnet.NewNamespace(t)
		conf := filepath.Join(t.TempDir(), "snmpd.conf")
		if err := os.WriteFile(conf, []byte("rocommunity public\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		startIn(t, n, "snmpd", "-f", "-Lo", "-C", "-c", conf, "-p", filepath.Join(t.TempDir(), "pid"), "udp:"+n.Peer.String()+":161")
		if r := scanUntilOpen(t, n.Peer, 161); r.State != scan.Open || r.Reason != scan.ReasonUDPResponse {
			t.Errorf("snmpd on 161: %s/%s; want open/udp-response", r.State, r.Reason)
		}
	})
}
