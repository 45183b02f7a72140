package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/reach"
)

// These tests load rules only inside namespaces they make (testnet), never
// in the host's own.

// reachJSON runs portctl reach … --json and decodes what it prints.
func reachJSON(t *testing.T, args ...string) (int, reachResult, string) {
	t.Helper()
	code, out, stderr := runCLI(t, append(append([]string{"reach"}, args...), "--json")...)
	var res reachResult
	if code == ExitOK || code == ExitNegative {
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("reach %q --json: %v\n%s", args, err, out)
		}
	}
	return code, res, stderr
}

func answerOf(res reachResult, source string) *reach.Answer {
	for i := range res.Answers {
		if res.Answers[i].Source.Name == source {
			return &res.Answers[i]
		}
	}
	return nil
}

func layerOf(p reach.Piece, name string) reach.Layer {
	for _, l := range p.Layers {
		if l.Layer == name {
			return l
		}
	}
	return reach.Layer{}
}

// brief writes an answer in a few lines for a test's failure: its
// verdict, and each piece's first prefixes and layers.
func brief(a *reach.Answer) string {
	if a == nil {
		return "no answer"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d pieces)", a.Verdict, len(a.Pieces))
	for i, p := range a.Pieces {
		if i == 3 {
			b.WriteString("\n  …")
			break
		}
		fmt.Fprintf(&b, "\n  from %s (%d prefixes): %s", p.From[0], len(p.From), p.Verdict)
		for _, l := range p.Layers {
			fmt.Fprintf(&b, "\n    %s %s: %s", l.Layer, l.Verdict, l.Detail)
		}
	}
	return b.String()
}

// internetClient asks reach about 6379 from one internet address, then
// from the whole class. The address is answered by one walk of the
// ruleset; the class may be unknown where the evaluator splits it into
// more pieces than it walks (Docker without its userland proxy masquerades
// by "addrtype --src-type LOCAL", which the evaluator answers one source
// at a time), but never wrong: never unreachable.
func internetClient(t *testing.T, ns string) reach.Answer {
	t.Helper()
	code, res, stderr := reachJSON(t, "6379", "--netns", ns, "--from", "1.2.3.4")
	a := answerOf(res, "1.2.3.4")
	if code != ExitOK || a == nil || a.Verdict != reach.Reachable {
		t.Fatalf("reach 6379 --from 1.2.3.4 = exit %d (%s), %s; want 0, reachable", code, stderr, brief(a))
	}
	_, res, _ = reachJSON(t, "6379", "--netns", ns, "--from", "internet")
	switch c := answerOf(res, "internet"); {
	case c == nil:
		t.Errorf("reach 6379 --from internet: no answer")
	case c.Verdict == reach.Unknown:
		t.Logf("reach 6379 --from internet: unknown for part of the class (%d pieces); from 1.2.3.4: reachable", len(c.Pieces))
	case c.Verdict != reach.Reachable:
		t.Errorf("reach 6379 --from internet: %s; want reachable (or unknown), never unreachable", brief(c))
	}
	return *a
}

// dial connects from this namespace to addr, and says whether it got in.
// It waits long enough for one retransmission of the SYN (at 1 s): on a
// busy machine the first may be lost while the neighbour is resolved.
func dial(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 1500*time.Millisecond)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// TestIntegrationReachNamespace: a namespace that drops 5432 except from
// 10.0.0.0/8 (its LAN, the veth to this side, is in 10.200.0.0/13): the
// internet and loopback are kept out by the drop rule, the LAN is let in,
// as a real connection from this side confirms; exit codes follow.
func TestIntegrationReachNamespace(t *testing.T) {
	n := testnet.NewNamespace(t)
	testnet.Run(t, "ip", "-n", n.Name, "route", "add", "default", "via", n.Host.String())
	n.Nft(t, `add rule inet t in tcp dport 5432 ip saddr 10.0.0.0/8 accept comment "db from 10/8"`)
	n.Nft(t, `add rule inet t in tcp dport 5432 drop comment "db closed"`)
	n.ListenAny(t, 5432)

	code, res, stderr := reachJSON(t, "5432", "--netns", n.Name)
	if code != ExitNegative {
		t.Fatalf("reach 5432 = exit %d (%s); want 1: not reachable from the internet", code, stderr)
	}
	want := map[string]reach.Verdict{"internet": reach.Unreachable, "lan": reach.Reachable, "loopback": reach.Unreachable}
	for src, v := range want {
		a := answerOf(res, src)
		if a == nil || a.Verdict != v {
			t.Errorf("from %s: %s; want %s", src, brief(a), v)
			continue
		}
		if len(a.Pieces) == 0 {
			t.Errorf("from %s: no pieces", src)
			continue
		}
		fw := layerOf(a.Pieces[0], reach.LayerFirewall)
		wantComment := map[reach.Verdict]string{reach.Unreachable: "db closed", reach.Reachable: "db from 10/8"}[v]
		if fw.Rule == nil || fw.Rule.Table != "t" || fw.Rule.Chain != "in" || fw.Rule.Comment != wantComment || fw.Rule.Owner.Name != "hand" || fw.Rule.Handle == 0 {
			t.Errorf("from %s: decided by %+v; want inet t in, %q, written by hand", src, fw.Rule, wantComment)
		}
	}
	if a := answerOf(res, "internet"); a != nil && !slices.ContainsFunc(a.Fix, func(f string) bool { return strings.Contains(f, "inet t in") }) {
		t.Errorf("internet fix %q; want an nft command on inet t in", a.Fix)
	}
	// The kernel agrees: this side is in 10.0.0.0/8.
	if !dial(fmt.Sprintf("%s:5432", n.Peer)) {
		t.Errorf("a connection from %s to %s:5432 failed, though reach says the LAN gets in", n.Host, n.Peer)
	}

	if code, _, stderr := reachJSON(t, "5432", "--netns", n.Name, "--from", "lan"); code != ExitOK {
		t.Errorf("reach 5432 --from lan = exit %d (%s); want 0", code, stderr)
	}
	if code, res, _ := reachJSON(t, "5432", "--netns", n.Name, "--from", n.Host.String()); code != ExitOK || res.Answers[0].Verdict != reach.Reachable {
		t.Errorf("reach 5432 --from %s = exit %d, %v; want 0, reachable", n.Host, code, res.Answers)
	}
	// A text run names the rule and its comment.
	code, out, _ := runCLI(t, "reach", "5432", "--netns", n.Name, "--from", "internet")
	if code != ExitNegative || !strings.Contains(out, `inet t in handle`) || !strings.Contains(out, `"db closed"`) || !strings.Contains(out, "to reach it:") {
		t.Errorf("reach 5432 --from internet = exit %d:\n%s\nwant exit 1, the rule with its comment, a fix", code, out)
	}

	// An interface the namespace does not have is a usage error that
	// names the ones it has.
	if code, _, stderr := runCLI(t, "reach", "5432", "--netns", n.Name, "--iface", "nosuch0"); code != ExitUsage || !strings.Contains(stderr, `--iface "nosuch0": no such interface here (want one of lo`) {
		t.Errorf("reach --iface nosuch0 = exit %d, %q; want 2 naming the interfaces", code, stderr)
	}

	// Nothing listening on 6000: the socket layer says so.
	code, res, _ = reachJSON(t, "6000", "--netns", n.Name, "--from", "lan")
	if a := answerOf(res, "lan"); code != ExitNegative || a == nil || len(a.Pieces) == 0 || layerOf(a.Pieces[0], reach.LayerSocket).Verdict != reach.Block {
		t.Errorf("reach 6000 (nothing listens) = exit %d, %s; want 1 and the socket layer blocking", code, brief(a))
	}
}

// TestIntegrationReachTrace: --trace records the kernel's walk of a real
// loopback connection, and names the dropping rule.
func TestIntegrationReachTrace(t *testing.T) {
	n := testnet.NewNamespace(t)
	n.Nft(t, `add rule inet t in tcp dport 5432 drop comment "db closed"`)
	n.ListenAny(t, 5432)
	code, res, stderr := reachJSON(t, "5432", "--netns", n.Name, "--from", "loopback", "--trace", "--timeout", "500ms")
	if code != ExitNegative || res.Trace == nil {
		t.Fatalf("reach --trace = exit %d, trace %+v (%s); want 1 and a trace", code, res.Trace, stderr)
	}
	if !strings.HasPrefix(res.Trace.Outcome, "timed out") {
		t.Errorf("the loopback attempt: %q; want timed out (dropped)", res.Trace.Outcome)
	}
	if len(res.Trace.Packets) == 0 || res.Trace.Packets[0].Verdict != "drop" || res.Trace.Packets[0].Decider == nil || res.Trace.Packets[0].Decider.Comment != "db closed" {
		t.Errorf("traced packets %+v; want a drop by the rule \"db closed\"", res.Trace.Packets)
	}
	// The trace leaves nothing behind.
	out, _ := exec.Command("ip", "netns", "exec", n.Name, "nft", "list", "ruleset").CombinedOutput()
	if strings.Contains(string(out), "trace") {
		t.Errorf("the trace chains are still there:\n%s", out)
	}
}

// TestIntegrationFwBlockFor: fw block 8080 --for 5s drops connections to
// the port, then stops dropping by itself; the namespace's other table is
// untouched.
func TestIntegrationFwBlockFor(t *testing.T) {
	n := testnet.NewNamespace(t)
	n.Nft(t, `add rule inet t in tcp dport 9 drop comment "someone else's"`)
	n.ListenAny(t, 8080)
	addr := fmt.Sprintf("%s:8080", n.Peer)
	other := func() string {
		out, err := exec.Command("ip", "netns", "exec", n.Name, "nft", "list", "table", "inet", "t").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list table inet t: %v: %s", err, out)
		}
		return string(out)
	}
	before := other()
	if !dial(addr) {
		t.Fatalf("%s does not answer before the block", addr)
	}
	start := time.Now()
	code, out, stderr := runCLI(t, "fw", "block", "8080", "--for", "5s", "--netns", n.Name)
	if code != ExitOK || !strings.Contains(out, "Blocked 8080") {
		t.Fatalf("fw block 8080 --for 5s = exit %d, %q %q", code, out, stderr)
	}
	if dial(addr) {
		t.Errorf("%s still answers right after the block", addr)
	}
	code, out, _ = runCLI(t, "fw", "blocks", "--netns", n.Name, "--json")
	if code != ExitOK || !strings.Contains(out, `"ports": [`) || !strings.Contains(out, "8080") {
		t.Errorf("fw blocks = exit %d:\n%s\nwant the 8080 block", code, out)
	}
	// reach names portctl's own rule.
	_, res, _ := reachJSON(t, "8080", "--netns", n.Name, "--from", "lan")
	if a := answerOf(res, "lan"); a == nil || len(a.Pieces) == 0 || layerOf(a.Pieces[0], reach.LayerFirewall).Rule == nil ||
		layerOf(a.Pieces[0], reach.LayerFirewall).Rule.Owner.Name != "portctl" {
		t.Errorf("reach 8080 during the block: %s; want the firewall layer blocked by portctl's rule", brief(a))
	}
	// The kernel lifts it by itself.
	time.Sleep(time.Until(start.Add(5500 * time.Millisecond)))
	deadline := time.Now().Add(3 * time.Second)
	for !dial(addr) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still blocked %s after fw block --for 5s", addr, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("fw block 8080 --for 5s: dropped, then let through again %s after the block", time.Since(start).Round(10*time.Millisecond))
	if after := other(); after != before {
		t.Errorf("table inet t changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Unblocking what is no longer blocked is a negative answer.
	if code, _, stderr := runCLI(t, "fw", "unblock", "8080", "--netns", n.Name); code != ExitNegative {
		t.Errorf("fw unblock 8080 after expiry = exit %d (%s); want 1", code, stderr)
	}
	// block, then unblock by hand.
	if code, _, stderr := runCLI(t, "fw", "block", "8080", "--proto", "tcp", "--netns", n.Name); code != ExitOK {
		t.Fatalf("fw block 8080 = exit %d (%s)", code, stderr)
	}
	if dial(addr) {
		t.Errorf("%s answers while blocked", addr)
	}
	if code, _, stderr := runCLI(t, "fw", "unblock", "8080", "--proto", "tcp", "--netns", n.Name); code != ExitOK {
		t.Fatalf("fw unblock 8080 = exit %d (%s)", code, stderr)
	}
	if !dial(addr) {
		t.Errorf("%s does not answer after fw unblock", addr)
	}
}

// TestIntegrationFirewallView: fw lists the listening ports with who may
// reach them, and a port the rules open where nothing listens.
func TestIntegrationFirewallView(t *testing.T) {
	n := testnet.NewNamespace(t)
	testnet.Run(t, "ip", "-n", n.Name, "route", "add", "default", "via", n.Host.String())
	n.Nft(t, `add rule inet t in tcp dport 22 accept comment "ssh"`)
	n.Nft(t, `add rule inet t in tcp dport 2222 accept comment "nothing here"`)
	n.Nft(t, `add rule inet t in tcp dport 5432 ip saddr 10.0.0.0/8 accept`)
	n.Nft(t, `add rule inet t in tcp dport 5432 drop`)
	n.ListenAny(t, 5432)
	n.ListenAny(t, 22)
	testnet.ListenIn(t, n.Name, netip.MustParseAddrPort("127.0.0.1:6379"))
	code, out, stderr := runCLI(t, "fw", "--netns", n.Name, "--json")
	if code != ExitOK {
		t.Fatalf("fw --json = exit %d (%s)", code, stderr)
	}
	var res firewallResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("fw --json: %v\n%s", err, out)
	}
	got := map[uint16]reach.Exposure{}
	for _, p := range res.Ports {
		got[p.Port] = p.Exposure
	}
	want := map[uint16]reach.Exposure{22: reach.FromInternet, 5432: reach.FromLAN, 6379: reach.LoopbackOnly}
	for p, e := range want {
		if got[p] != e {
			t.Errorf("fw: port %d reachable from %q; want %q (all: %v)", p, got[p], e, got)
		}
	}
	if !slices.ContainsFunc(res.Opened, func(o fwOpening) bool { return o.Ports == [2]uint16{2222, 2222} && o.Rule.Comment == "nothing here" }) {
		t.Errorf("fw opened = %+v; want 2222 opened by the rule \"nothing here\"", res.Opened)
	}
	if slices.ContainsFunc(res.Opened, func(o fwOpening) bool { return o.Ports[0] == 22 || o.Ports[0] == 5432 }) {
		t.Errorf("fw opened = %+v; 22 and 5432 have listeners", res.Opened)
	}
	code, out, _ = runCLI(t, "firewall", "--netns", n.Name)
	for _, s := range []string{"REACHABLE FROM", "5432/tcp", "LAN", "loopback only", "Opened by the firewall", "2222/tcp"} {
		if !strings.Contains(out, s) {
			t.Errorf("firewall (text) lacks %q:\n%s", s, out)
		}
	}
	// fw allow: the explanation and the owner's command.
	code, out, _ = runCLI(t, "fw", "allow", "5432", "--netns", n.Name)
	if code != ExitNegative || !strings.Contains(out, "opens nothing itself") || !strings.Contains(out, "inet t in") {
		t.Errorf("fw allow 5432 = exit %d:\n%s\nwant 1, why, and the nft command", code, out)
	}
}

// TestIntegrationReachDockerBypass is the classic: ufw denies 6379, Docker
// publishes 6379 anyway. reach says it is reachable from the internet,
// decided by Docker's DNAT and forward rules, names ufw's deny it goes
// round, and gives the fix -p 127.0.0.1:…; a real connection gets in.
func TestIntegrationReachDockerBypass(t *testing.T) {
	e, _ := testnet.UFWDocker(t, testnet.DockerOptions{}, "deny 6379")
	n := e.NS
	testnet.Run(t, "ip", "-n", n.Name, "route", "add", "default", "via", n.Host.String())
	e.Run(t, "run", "-d", "--name", "cache", "-p", "6379:6379", e.Image, "busybox", "httpd", "-f", "-p", "6379", "-h", "/www")
	t.Setenv("DOCKER_HOST", e.Host)
	addr := fmt.Sprintf("%s:6379", n.Peer)
	deadline := time.Now().Add(10 * time.Second)
	for !dial(addr) {
		if time.Now().After(deadline) {
			t.Fatalf("the published port %s never answered", addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// As a newcomer runs it: every class.
	_, res, stderr := reachJSON(t, "6379", "--netns", n.Name)
	a := answerOf(res, "internet")
	if a == nil || a.Verdict != reach.Reachable {
		t.Fatalf("reach 6379 (%s): from the internet %s; want reachable", stderr, brief(a))
	}
	p := a.Pieces[0]
	nat := layerOf(p, reach.LayerNAT)
	if nat.Verdict != reach.Pass || nat.Rule == nil || nat.Rule.Owner.Name != "docker" {
		t.Errorf("NAT layer %+v; want Docker's DNAT", nat)
	}
	if fw := layerOf(p, reach.LayerFirewall); fw.Rule == nil || fw.Rule.Owner.Name != "docker" {
		t.Errorf("firewall layer %+v; want decided by Docker's forward rules", fw)
	}
	if p.Bypass == nil || p.Bypass.Owner.Name != "ufw" {
		t.Errorf("bypass %+v; want ufw's deny", p.Bypass)
	}
	if !slices.ContainsFunc(a.Fix, func(f string) bool { return strings.Contains(f, "-p 127.0.0.1:6379:6379") }) {
		t.Errorf("fix %q; want docker run -p 127.0.0.1:6379:6379", a.Fix)
	}
	if code, _, _ := reachJSON(t, "6379", "--netns", n.Name, "--from", "internet"); code != ExitOK {
		t.Errorf("reach 6379 --from internet = exit %d; want 0 (reachable)", code)
	}
	code, out, _ := runCLI(t, "reach", "6379", "--netns", n.Name)
	t.Logf("portctl reach 6379 --netns NS (exit %d):\n%s", code, out)
	for _, s := range []string{"reachable", "bypass", "ufw", "docker", "-p 127.0.0.1:6379:6379"} {
		if !strings.Contains(out, s) {
			t.Errorf("reach (text) lacks %q", s)
		}
	}

	// fw: the published port, reachable from the internet through
	// Docker's NAT.
	code, out, stderr = runCLI(t, "fw", "--netns", n.Name, "--json")
	var fw firewallResult
	if err := json.Unmarshal([]byte(out), &fw); code != ExitOK || err != nil {
		t.Fatalf("fw --json = exit %d (%s), %v", code, stderr, err)
	}
	i := slices.IndexFunc(fw.Ports, func(p fwPort) bool { return p.Port == 6379 && p.Protocol == "tcp" })
	if i < 0 || fw.Ports[i].Exposure != reach.FromInternet || fw.Ports[i].Decided == nil || fw.Ports[i].Decided.Layer != reach.LayerNAT {
		t.Errorf("fw: 6379 = %+v; want reachable from the internet, decided by Docker's DNAT", fw.Ports)
	}
	_, out, _ = runCLI(t, "fw", "--netns", n.Name)
	t.Logf("portctl fw --netns NS:\n%s", out)
}

// TestIntegrationReachDockerNoProxy: Docker without its userland proxy
// publishes 6379 with NAT rules alone (dockerd only holds the port):
// reach still finds it reachable from the internet through the DNAT, round
// ufw's deny, and fw says so.
func TestIntegrationReachDockerNoProxy(t *testing.T) {
	e, _ := testnet.UFWDocker(t, testnet.DockerOptions{NoUserlandProxy: true}, "deny 6379")
	n := e.NS
	testnet.Run(t, "ip", "-n", n.Name, "route", "add", "default", "via", n.Host.String())
	e.Run(t, "run", "-d", "--name", "cache", "-p", "6379:6379", e.Image, "busybox", "httpd", "-f", "-p", "6379", "-h", "/www")
	t.Setenv("DOCKER_HOST", e.Host)
	addr := fmt.Sprintf("%s:6379", n.Peer)
	deadline := time.Now().Add(10 * time.Second)
	for !dial(addr) {
		if time.Now().After(deadline) {
			t.Fatalf("the published port %s never answered", addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	a := internetClient(t, n.Name)
	if p := a.Pieces[0]; p.Bypass == nil || p.Bypass.Owner.Name != "ufw" || layerOf(p, reach.LayerNAT).Rule == nil {
		t.Errorf("bypass %+v, NAT %+v; want ufw's deny gone round by Docker's DNAT", p.Bypass, layerOf(p, reach.LayerNAT))
	}
	code, out, stderr := runCLI(t, "fw", "--netns", n.Name, "--json")
	var fw firewallResult
	if err := json.Unmarshal([]byte(out), &fw); code != ExitOK || err != nil {
		t.Fatalf("fw --json = exit %d (%s), %v", code, stderr, err)
	}
	// Reachable from the internet, or unknown as internetClient says why;
	// anything else is wrong.
	exposure := reach.Exposure("")
	for _, p := range fw.Ports {
		if p.Port == 6379 && p.Protocol == "tcp" {
			exposure = p.Exposure
		}
	}
	for _, o := range fw.Opened {
		if o.Ports == [2]uint16{6379, 6379} && o.Protocol == "tcp" && o.DNAT {
			exposure = o.Exposure
		}
	}
	switch exposure {
	case reach.FromInternet:
	case reach.NotKnown:
		t.Logf("fw: 6379 reachable from: unknown (the internet class, as above)")
	default:
		t.Errorf("fw: ports %+v, opened %+v; want 6379 reachable from the internet (or unknown)", fw.Ports, fw.Opened)
	}
	_, out, _ = runCLI(t, "fw", "--netns", n.Name)
	t.Logf("portctl fw --netns NS (Docker without userland proxy):\n%s", out)
}

// TestIntegrationReachDockerFirewalld: the same bypass behind firewalld,
// whose public zone rejects 6379: Docker's DNAT lets the internet in
// anyway, and reach names firewalld's reject it goes round.
func TestIntegrationReachDockerFirewalld(t *testing.T) {
	e, _ := testnet.FirewalldDocker(t, testnet.DockerOptions{NoUserlandProxy: true})
	n := e.NS
	testnet.Run(t, "ip", "-n", n.Name, "route", "add", "default", "via", n.Host.String())
	e.Run(t, "run", "-d", "--name", "cache", "-p", "6379:6379", e.Image, "busybox", "httpd", "-f", "-p", "6379", "-h", "/www")
	t.Setenv("DOCKER_HOST", e.Host)
	addr := fmt.Sprintf("%s:6379", n.Peer)
	deadline := time.Now().Add(10 * time.Second)
	for !dial(addr) {
		if time.Now().After(deadline) {
			t.Fatalf("the published port %s never answered", addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	a := internetClient(t, n.Name)
	if p := a.Pieces[0]; p.Bypass == nil || p.Bypass.Owner.Name != "firewalld" {
		t.Errorf("bypass %+v; want firewalld's reject", p.Bypass)
	}
	if !slices.ContainsFunc(a.Fix, func(f string) bool { return strings.Contains(f, "-p 127.0.0.1:6379:6379") }) {
		t.Errorf("fix %q; want docker run -p 127.0.0.1:6379:6379", a.Fix)
	}
	_, out, _ := runCLI(t, "reach", "6379", "--netns", n.Name, "--from", "internet")
	t.Logf("portctl reach 6379 --from internet behind firewalld:\n%s", out)
}
