package guard

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
)

// events collects what Run emits.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) emit(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

// wait returns the first event that match selects, waiting up to limit.
func (e *events) wait(limit time.Duration, match func(Event) bool) (Event, bool) {
	deadline := time.Now().Add(limit)
	for {
		e.mu.Lock()
		i := slices.IndexFunc(e.all, match)
		var ev Event
		if i >= 0 {
			ev = e.all[i]
		}
		e.mu.Unlock()
		if i >= 0 {
			return ev, true
		}
		if time.Now().After(deadline) {
			return Event{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *events) from(src string) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Event
	for _, ev := range e.all {
		if ev.Source == src {
			out = append(out, ev)
		}
	}
	return out
}

// guardNet is a scanner and a target namespace with guard running in the
// target, listeners on 22, 23 and 80 there.
type guardNet struct {
	*testnet.Pair
	ev *events
}

func startGuard(t *testing.T, sources int, cfg Config) *guardNet {
	t.Helper()
	p := testnet.NewPair(t, sources)
	for _, a := range []netip.Addr{p.Target4, p.Target6} {
		for _, port := range []uint16{22, 23, 80} {
			testnet.ListenIn(t, p.Target, netip.AddrPortFrom(a, port))
		}
	}
	g := &guardNet{Pair: p, ev: &events{}}
	cfg.NetNS = "/run/netns/" + p.Target
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, g.ev.emit, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		// The rules are gone with guard.
		if out, _ := exec.Command("ip", "netns", "exec", p.Target, "nft", "list", "tables").Output(); strings.Contains(string(out), "portctl") {
			t.Errorf("portctl's table is left after guard stopped:\n%s", out)
		}
	})
	if _, ok := g.ev.wait(10*time.Second, func(e Event) bool { return e.Type == EventStart }); !ok {
		select {
		case err := <-done:
			t.Fatalf("Run: %v", err)
		default:
		}
		t.Fatal("no start event in 10s")
	}
	return g
}

func needTool(t *testing.T, tool, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("needs %s (Debian package %s; test-deps.sh installs it)", tool, pkg)
	}
}

// TestIntegrationGuardScans: nmap's scans of every kind, masscan and
// hping3, IPv4 and IPv6, are each seen as a scan of the right kind from
// the right source; the normal traffic beside them is not.
func TestIntegrationGuardScans(t *testing.T) {
	needTool(t, "nmap", "nmap")
	g := startGuard(t, 16, Config{})
	t4, t6 := g.Target4.String(), g.Target6.String()
	type scan struct {
		name string
		kind Kind
		src  netip.Addr
		cmd  []string
	}
	nmap := func(src netip.Addr, args ...string) []string {
		cmd := []string{"nmap", "-n", "-Pn", "--max-retries", "0", "-S", src.String(), "-e", g.ScannerIf}
		if src.Is6() {
			cmd = append(cmd, "-6")
		}
		return append(cmd, args...)
	}
	s4, s6 := g.Sources4, g.Sources6
	scans := []scan{
		{"nmap -sS", KindSYN, s4[0], nmap(s4[0], "-sS", "-T4", "-p", "1-40,80", t4)},
		{"nmap -sT", KindSYN, s4[1], nmap(s4[1], "-sT", "-T4", "-p", "1-40,80", t4)},
		{"nmap -sF", KindFIN, s4[2], nmap(s4[2], "-sF", "-T4", "-p", "1-40", t4)},
		{"nmap -sN", KindNull, s4[3], nmap(s4[3], "-sN", "-T4", "-p", "1-40", t4)},
		{"nmap -sX", KindXmas, s4[4], nmap(s4[4], "-sX", "-T4", "-p", "1-40", t4)},
		{"nmap -sA", KindACK, s4[5], nmap(s4[5], "-sA", "-T4", "-p", "1-40", t4)},
		{"nmap -sU", KindUDP, s4[6], nmap(s4[6], "-sU", "-T5", "-p", "1-12", t4)},
		{"nmap -sM", KindMaimon, s4[7], nmap(s4[7], "-sM", "-T4", "-p", "1-40", t4)},
		{"nmap -6 -sS", KindSYN, s6[0], nmap(s6[0], "-sS", "-T4", "-p", "1-40,80", t6)},
		{"nmap -6 -sF", KindFIN, s6[1], nmap(s6[1], "-sF", "-T4", "-p", "1-40", t6)},
		{"nmap -sS -T5 all ports", KindSYN, s4[8], nmap(s4[8], "-sS", "-T5", "-p-", "--min-rate", "20000", t4)},
	}
	if _, err := exec.LookPath("hping3"); err == nil {
		scans = append(scans, scan{"hping3 --scan", KindSYN, s4[9],
			[]string{"hping3", "-q", "-S", "-a", s4[9].String(), "-I", g.ScannerIf, "--scan", "1-60", t4}})
	}
	if _, err := exec.LookPath("masscan"); err == nil {
		scans = append(scans, scan{"masscan --rate 1000", KindSYN, s4[10],
			[]string{"masscan", "-p1-200", "--rate", "1000", "--wait", "0", "--adapter", g.ScannerIf,
				"--adapter-ip", s4[10].String(), "--router-mac", g.TargetMAC, t4}})
	}
	for _, sc := range scans {
		t.Run(sc.name, func(t *testing.T) {
			start := time.Now()
			if out, err := g.Exec(t, g.Scanner, 2*time.Minute, sc.cmd[0], sc.cmd[1:]...); err != nil && sc.cmd[0] != "hping3" {
				t.Fatalf("%s: %v\n%s", strings.Join(sc.cmd, " "), err, out)
			}
			ev, ok := g.ev.wait(5*time.Second, func(e Event) bool { return e.Type == EventScan && e.Source == sc.src.String() })
			if !ok {
				t.Fatalf("no scan event for %s; its events: %+v", sc.src, g.ev.from(sc.src.String()))
			}
			if ev.Kind != sc.kind || ev.Spoofable != sc.kind.Spoofable() || len(ev.Ports) < 4 {
				t.Errorf("event %+v; want kind %s with the ports", ev, sc.kind)
			}
			if slices.Contains(ev.Ports, 22) && sc.kind == KindSYN {
				t.Errorf("event %+v lists open port 22 among the closed", ev)
			}
			t.Logf("%s: detected after %d probes, %s after the scan started", sc.name, ev.Probes, ev.Time.Sub(start).Round(time.Millisecond))
		})
	}

	// Normal traffic: a client connecting over and over to open ports, and
	// one retrying a closed port (a service restarting).
	t.Run("normal traffic", func(t *testing.T) {
		client, retry := s4[12], s4[13]
		for i := range 60 {
			port := uint16(80)
			if i%3 == 0 {
				port = 22
			}
			if !g.Connects(t, client, netip.AddrPortFrom(g.Target4, port), time.Second) {
				t.Fatalf("client connection %d to port %d failed", i, port)
			}
		}
		for range 10 {
			g.Connects(t, retry, netip.AddrPortFrom(g.Target4, 8080), 200*time.Millisecond)
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second)
		for _, src := range []netip.Addr{client, retry} {
			if evs := g.ev.from(src.String()); len(evs) > 0 {
				t.Errorf("normal traffic from %s: events %+v", src, evs)
			}
		}
	})
}

// TestIntegrationGuardBlock: a SYN scanner is blocked for the time given,
// and no one else is; a FIN scanner is reported, not blocked.
func TestIntegrationGuardBlock(t *testing.T) {
	needTool(t, "nmap", "nmap")
	g := startGuard(t, 4, Config{Block: 3 * time.Second})
	scanner, finner, other := g.Sources4[0], g.Sources4[1], g.Sources4[2]
	web := netip.AddrPortFrom(g.Target4, 80)
	for _, c := range []struct {
		src  netip.Addr
		args string
	}{{scanner, "-sS"}, {finner, "-sF"}} {
		if out, err := g.Exec(t, g.Scanner, time.Minute, "nmap", "-n", "-Pn", "--max-retries", "0", c.args, "-T4",
			"-S", c.src.String(), "-e", g.ScannerIf, "-p", "1-30", g.Target4.String()); err != nil {
			t.Fatalf("nmap: %v\n%s", err, out)
		}
	}
	if _, ok := g.ev.wait(5*time.Second, func(e Event) bool { return e.Type == EventBlock && e.Source == scanner.String() }); !ok {
		t.Fatalf("no block event for %s: %+v", scanner, g.ev.from(scanner.String()))
	}
	if g.Connects(t, scanner, web, 500*time.Millisecond) {
		t.Error("the blocked scanner still connects")
	}
	if !g.Connects(t, other, web, time.Second) {
		t.Error("another source is blocked too")
	}
	if !g.Connects(t, finner, web, time.Second) {
		t.Errorf("the FIN scanner is blocked: %+v", g.ev.from(finner.String()))
	}
	time.Sleep(3500 * time.Millisecond)
	if !g.Connects(t, scanner, web, time.Second) {
		t.Error("the block did not end after 3s")
	}
}

// TestIntegrationGuardKnock: Debian's knock client opens port 22 to its
// source alone, IPv4 and IPv6, for --open-for; the port is closed to
// everyone else; a full scan of every port never opens it.
func TestIntegrationGuardKnock(t *testing.T) {
	needTool(t, "knock", "knockd")
	rule, err := ParseKnock("tcp/7000,udp/8000,tcp/9000:22")
	if err != nil {
		t.Fatal(err)
	}
	tcpOnly, err := ParseKnock("tcp/7100,tcp/8100,tcp/9100:23")
	if err != nil {
		t.Fatal(err)
	}
	g := startGuard(t, 4, Config{Knocks: []KnockRule{rule, tcpOnly}, OpenFor: 3 * time.Second})
	for _, fam := range []struct {
		name            string
		target          netip.Addr
		knocker, others netip.Addr
		flag            string
	}{
		{"IPv4", g.Target4, g.Sources4[0], g.Sources4[1], ""},
		{"IPv6", g.Target6, g.Sources6[0], g.Sources6[1], "-6"},
	} {
		t.Run(fam.name, func(t *testing.T) {
			ssh := netip.AddrPortFrom(fam.target, 22)
			if g.Connects(t, fam.knocker, ssh, 500*time.Millisecond) {
				t.Fatal("port 22 is open before any knock")
			}
			// knock has no option for its source address: the route to the
			// target goes from the knocker's address for this while.
			g.SourceFor(t, fam.target, fam.knocker)
			args := []string{"-d", "100"}
			if fam.flag != "" {
				args = append(args, fam.flag)
			}
			args = append(args, fam.target.String(), "7000", "8000:udp", "9000")
			if out, err := g.Exec(t, g.Scanner, 30*time.Second, "knock", args...); err != nil {
				t.Fatalf("knock: %v\n%s", err, out)
			}
			if _, ok := g.ev.wait(5*time.Second, func(e Event) bool { return e.Type == EventKnock && e.Source == fam.knocker.String() }); !ok {
				t.Fatalf("no knock event: %+v", g.ev.from(fam.knocker.String()))
			}
			g.OpenToOnly(t, fam.knocker, fam.others, ssh, 3*time.Second)
		})
	}
	t.Run("20 full scans", func(t *testing.T) {
		needTool(t, "nmap", "nmap")
		// A scan of every TCP port, in nmap's random order, meets
		// 7100, 8100 and 9100 in that order one time in six: knockd would
		// then open the port. Here the ports between reset the sequence.
		src := g.Sources4[2]
		for i := range 20 {
			out, err := g.Exec(t, g.Scanner, 2*time.Minute, "nmap", "-n", "-Pn", "-sS", "-T5", "--max-retries", "0", "--min-rate", "50000",
				"-S", src.String(), "-e", g.ScannerIf, "-p-", g.Target4.String())
			if err != nil {
				t.Fatalf("nmap: %v\n%s", err, out)
			}
			if evs := g.ev.from(src.String()); slices.ContainsFunc(evs, func(e Event) bool { return e.Type == EventKnock }) {
				t.Fatalf("scan %d opened a port: %+v", i+1, evs)
			}
		}
		for _, port := range []uint16{22, 23} {
			if g.Connects(t, src, netip.AddrPortFrom(g.Target4, port), 500*time.Millisecond) {
				t.Errorf("port %d is open to the scanner", port)
			}
		}
	})
}

// TestIntegrationGuardLatePackets: packets of connections conntrack has
// forgotten (idle longer than its timeout, then talking again) come in as
// new and look like ACK probes; conntrack's destroy events tell guard they
// are late, so four such connections to four ports are no scan.
func TestIntegrationGuardLatePackets(t *testing.T) {
	g := startGuard(t, 2, Config{})
	testnet.Run(t, "ip", "netns", "exec", g.Target, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_timeout_established=2")
	var conns []net.Conn
	for port := uint16(5001); port <= 5004; port++ {
		var l net.Listener
		var err error
		testnet.In(t, g.Target, func() { l, err = net.Listen("tcp", netip.AddrPortFrom(g.Target4, port).String()) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { io.Copy(io.Discard, c); c.Close() }()
			}
		}()
		var c net.Conn
		testnet.In(t, g.Scanner, func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: g.Sources4[0].AsSlice()}, Timeout: time.Second}
			c, err = d.Dial("tcp", netip.AddrPortFrom(g.Target4, port).String())
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	time.Sleep(4 * time.Second) // conntrack forgets the idle connections
	for _, c := range conns {
		if _, err := c.Write([]byte("late\n")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	if evs := g.ev.from(g.Sources4[0].String()); len(evs) > 0 {
		t.Errorf("late packets of four connections: events %+v", evs)
	}
}
