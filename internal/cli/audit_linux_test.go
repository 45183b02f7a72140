package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/servers"
	"github.com/portctl/portctl/internal/testnet"
)

// TestIntegrationAudit runs a real redis-server on 0.0.0.0:6379 and a real
// BusyBox telnetd on 0.0.0.0:23 in a network namespace of the test's, and
// audits that namespace: Redis is exposed and Telnet risky (exit 1); a
// policy that allows exactly those listeners and excepts what they trip
// passes (exit 0); and with an nftables drop rule on 23, --remote finds 23
// filtered and 6379 reachable.
func TestIntegrationAudit(t *testing.T) {
	requireRoot(t)
	n := testnet.NewNamespace(t)
	any4 := netip.IPv4Unspecified()
	redis := servers.RedisAt(t, servers.Place{NetNS: n.Name, Bind: any4, Port: 6379, Dial: n.Peer})
	telnet := servers.TelnetAt(t, servers.Place{NetNS: n.Name, Bind: any4, Port: 23, Dial: n.Peer})
	t.Logf("started %v and %v in %s", redis, telnet, n.Name)

	// No policy: both are findings, and the audit fails.
	code, out, stderr := runCLI(t, "audit", "--netns", n.Name, "--json")
	if code != ExitNegative {
		t.Fatalf("audit --netns %s --json exit %d; want 1 (stderr %q)\n%s", n.Name, code, stderr, out)
	}
	d := parseAuditJSON(t, out)
	found := map[string]bool{}
	for _, f := range d.Findings {
		switch {
		case f.Rule == "network-database" && f.Service == "Redis" && f.Severity == "high" && f.Socket.Local == "0.0.0.0:6379":
			if f.Process == nil || f.Process.Name != "redis-server" || f.Process.PID != redis.PID {
				t.Errorf("Redis finding's process = %+v; want redis-server, PID %d", f.Process, redis.PID)
			}
			found["redis"] = true
		case f.Rule == "risky-service" && f.Service == "Telnet" && f.Severity == "high" && f.Socket.Local == "0.0.0.0:23":
			if f.Process == nil || f.Process.Name != "busybox" || f.Process.PID != telnet.PID {
				t.Errorf("Telnet finding's process = %+v; want busybox, PID %d", f.Process, telnet.PID)
			}
			found["telnet"] = true
		}
	}
	if !found["redis"] || !found["telnet"] {
		t.Errorf("audit found redis exposed: %v, telnet risky: %v; want both\n%s", found["redis"], found["telnet"], out)
	}
	if d.FailOn != "medium" || d.Violations < 2 || d.Counts["high"] < 2 {
		t.Errorf("fail_on %q, violations %d, counts %v; want medium, 2 or more, 2 high or more", d.FailOn, d.Violations, d.Counts)
	}

	// A policy that matches the machine passes.
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	writeTestFile(t, policy, `# the test namespace: a Redis and a Telnet server, on purpose
fail_on: low
allow:
  - {port: 6379, proto: tcp, process: redis-server, address: 0.0.0.0}
  - {port: 23, proto: tcp, process: telnetd, address: 0.0.0.0}
except:
  - {rule: network-database, port: 6379, process: redis-server, reason: a test server in its own namespace}
  - {rule: risky-service, port: 23, process: telnetd, reason: a test server in its own namespace}
  - {rule: root-unprivileged-port, process: redis-server, reason: the test runs it as root}
`)
	code, out, stderr = runCLI(t, "audit", "--netns", n.Name, "--policy", policy, "--json")
	if code != ExitOK {
		t.Fatalf("audit with a matching policy exit %d; want 0 (stderr %q)\n%s", code, stderr, out)
	}
	d = parseAuditJSON(t, out)
	if len(d.Findings) != 0 || len(d.Excepted) != 3 || d.FailOn != "low" {
		t.Errorf("with the policy: %d findings, %d excepted, fail_on %q; want 0, 3, low\n%s", len(d.Findings), len(d.Excepted), d.FailOn, out)
	}

	// The same policy without the Telnet entry: not allowed.
	strict := filepath.Join(t.TempDir(), "strict.yaml")
	writeTestFile(t, strict, "allow:\n  - {port: 6379, process: redis-server}\nexcept:\n  - {rule: \"*\", port: 6379}\n  - {rule: risky-service, process: telnetd}\n")
	code, out, _ = runCLI(t, "audit", "--netns", n.Name, "--policy", strict, "--json")
	d = parseAuditJSON(t, out)
	if code != ExitNegative || len(d.Findings) != 1 || d.Findings[0].Rule != "not-allowed" || d.Findings[0].Socket.Local != "0.0.0.0:23" {
		t.Errorf("with telnetd left out of the allow list: exit %d, findings %+v; want 1 and one not-allowed for 0.0.0.0:23", code, d.Findings)
	}

	// --remote from here, with port 23 dropped in the namespace.
	n.Nft(t, "add rule inet t in tcp dport 23 drop")
	code, out, stderr = runCLI(t, "audit", "--netns", n.Name, "--remote", n.Peer.String(), "--remote-timeout", "300ms", "--json")
	if code != ExitNegative {
		t.Fatalf("audit --remote exit %d; want 1 (Redis is reachable) (stderr %q)", code, stderr)
	}
	d = parseAuditJSON(t, out)
	reach := map[string]string{}
	for _, l := range d.Listeners {
		if l.Reach != nil {
			reach[l.Socket.Local] = l.Reach.State
		}
	}
	if reach["0.0.0.0:6379"] != "reachable" || reach["0.0.0.0:23"] != "filtered" {
		t.Errorf("--remote reach = %v; want 0.0.0.0:6379 reachable, 0.0.0.0:23 filtered", reach)
	}
	for _, f := range d.Findings {
		switch f.Rule {
		case "risky-service":
			if f.Severity != "low" || f.Reach == nil || f.Reach.State != "filtered" || !strings.Contains(f.Title, "not reachable") {
				t.Errorf("Telnet finding behind the drop rule = %s, reach %+v, title %q; want low, filtered, \"not reachable\"", f.Severity, f.Reach, f.Title)
			}
		case "network-database":
			if f.Severity != "high" || f.Reach == nil || f.Reach.State != "reachable" {
				t.Errorf("Redis finding = %s, reach %+v; want high, reachable", f.Severity, f.Reach)
			}
		}
	}

	// The table says the same to a person, and the SARIF file is written.
	sarif := filepath.Join(t.TempDir(), "audit.sarif")
	code, out, _ = runCLI(t, "audit", "--netns", n.Name, "--remote", n.Peer.String(), "--remote-timeout", "300ms", "--sarif", sarif)
	t.Logf("audit table:\n%s", out)
	for _, want := range []string{"network-database", "risky-service", "0.0.0.0:6379", "redis-server/", "why", "fix",
		"Reachable at " + n.Peer.String(), "not reachable: filtered", "at or above medium"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit table does not mention %q:\n%s", want, out)
		}
	}
	if code != ExitNegative {
		t.Errorf("audit --sarif exit %d; want 1", code)
	}
	b, err := os.ReadFile(sarif)
	if err != nil {
		t.Fatal(err)
	}
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []struct {
				RuleID string `json:"ruleId"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b, &log); err != nil || log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) == 0 {
		t.Errorf("SARIF file = %v, %+v; want version 2.1.0 with results", err, log)
	}
}

// TestAuditDeletedExecutable starts a copy of the test binary as a
// listener, deletes the copy, and expects the audit to say so: the
// " (deleted)" that Linux appends to /proc/PID/exe reaches the rule.
func TestAuditDeletedExecutable(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "portctl-deleted-helper")
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, exe, string(b))
	if err := os.Chmod(exe, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd, port := startHelperExe(t, exe, "listen", "127.0.0.1:0")
	if err := os.Remove(exe); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "audit", "--json", "--fail-on", "never")
	if code != ExitOK {
		t.Fatalf("audit exit %d; want 0 (stderr %q)", code, stderr)
	}
	for _, f := range parseAuditJSON(t, out).Findings {
		if f.Rule == "deleted-executable" && f.Process != nil && f.Process.PID == cmd.Process.Pid {
			if f.Severity != "medium" || !strings.Contains(f.Title, "deleted or replaced") {
				t.Errorf("deleted-executable finding = %s %q; want medium, saying deleted or replaced", f.Severity, f.Title)
			}
			return
		}
	}
	t.Errorf("audit found no deleted-executable for PID %d listening on port %d:\n%s", cmd.Process.Pid, port, out)
}

// TestIntegrationAuditFirewall loads, in a namespace of the test's, an
// input chain that drops by default but lets 445/tcp and 137/udp in from
// anywhere, with listeners on both: audit flags NetBIOS and SMB let in
// from the internet naming each accepting rule (table, chain, handle,
// owner); a policy whose reach: allows only 22 from the internet flags
// both again; who says from where 445 can be reached.
func TestIntegrationAuditFirewall(t *testing.T) {
	requireRoot(t)
	n := testnet.NewNamespace(t)
	// A default route, so that the internet has a way back.
	testnet.Run(t, "ip", "-n", n.Name, "route", "add", "default", "via", n.Host.String())
	n.Nft(t, "add chain inet t in { type filter hook input priority 0 ; policy drop ; }")
	n.Nft(t, "add rule inet t in iif lo accept")
	n.Nft(t, `add rule inet t in tcp dport 445 accept comment "smb"`)
	n.Nft(t, `add rule inet t in udp dport 137 accept comment "netbios-ns"`)
	n.Nft(t, `add rule inet t in tcp dport 139 accept comment "netbios-ssn"`) // nothing listens on it
	handles := nftHandles(t, n.Name)
	testnet.ListenIn(t, n.Name, netip.MustParseAddrPort("0.0.0.0:445"))
	var udp net.PacketConn
	var err error
	testnet.In(t, n.Name, func() { udp, err = net.ListenPacket("udp4", "0.0.0.0:137") })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })

	code, out, stderr := runCLI(t, "audit", "--netns", n.Name, "--json")
	if code != ExitNegative {
		t.Fatalf("audit exit %d; want 1 (stderr %q)\n%s", code, stderr, out)
	}
	d := parseAuditJSON(t, out)
	found := map[string]bool{}
	for _, f := range d.Findings {
		if f.Rule != "netbios-from-outside" {
			continue
		}
		if f.Socket.Local == "" { // a port the firewall opens, with no listener
			if f.Port != 139 || f.Severity != "medium" || f.Firewall == nil || f.Firewall.Rule == nil || f.Firewall.Rule.Handle != handles["netbios-ssn"] {
				t.Errorf("the opened port's finding %+v (firewall %+v); want tcp/139, medium, by inet t in handle %d", f, f.Firewall, handles["netbios-ssn"])
			}
			found["139"] = true
			continue
		}
		port := f.Socket.Local[strings.LastIndexByte(f.Socket.Local, ':')+1:] // Go's 0.0.0.0 listener is [::]
		want := map[string]string{"445": "smb", "137": "netbios-ns"}[port]
		fw := f.Firewall
		if want == "" || f.Severity != "high" || fw == nil || fw.Class != "internet" || fw.Verdict != "accept" || fw.Rule == nil ||
			fw.Rule.Table != "t" || fw.Rule.Chain != "in" || fw.Rule.Handle != handles[want] || fw.Rule.Owner.Name != "hand" ||
			!strings.Contains(f.Title, fmt.Sprintf("inet t in handle %d", handles[want])) {
			t.Errorf("netbios-from-outside finding %+v (firewall %+v); want high, for 445 or 137, naming inet t in handle %d (hand)", f, fw, handles[want])
			continue
		}
		found[port] = true
	}
	if !found["445"] || !found["137"] || !found["139"] {
		t.Errorf("netbios-from-outside for 445: %v, for 137: %v, for 139 (no listener): %v; want all three\n%s", found["445"], found["137"], found["139"], out)
	}
	for _, l := range d.Listeners {
		if l.ReachableFrom != "internet" {
			t.Errorf("listener %s reachable from %q; want internet", l.Socket.Local, l.ReachableFrom)
		}
	}
	code, text, _ := runCLI(t, "audit", "--netns", n.Name)
	t.Logf("audit:\n%s", text)
	if code != ExitNegative || !strings.Contains(text, fmt.Sprintf(`SMB (tcp/445) is let in from the internet by inet t in handle %d "smb" (written by hand)`, handles["smb"])) {
		t.Errorf("audit's table (exit %d) does not name the rule that lets SMB in", code)
	}

	// reach: only 22 may be reachable from the internet.
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	writeTestFile(t, policy, "reach:\n  internet: [22]\nexcept:\n  - {rule: \"*\", port: [137, 139, 445], reason: only reach-not-allowed is looked at here}\n")
	code, out, _ = runCLI(t, "audit", "--netns", n.Name, "--policy", policy, "--json")
	d = parseAuditJSON(t, out)
	var bad []string
	for _, f := range d.Findings {
		if f.Rule == "reach-not-allowed" {
			bad = append(bad, f.Socket.Local)
		}
	}
	slices.Sort(bad)
	if code != ExitOK || len(bad) != 0 {
		t.Errorf("with every finding on 137 and 445 excepted: exit %d, reach-not-allowed %v; want 0 and none", code, bad)
	}
	writeTestFile(t, policy, "reach:\n  internet: [22]\n")
	_, out, _ = runCLI(t, "audit", "--netns", n.Name, "--policy", policy, "--json")
	d = parseAuditJSON(t, out)
	bad = nil
	for _, f := range d.Findings {
		if f.Rule == "reach-not-allowed" {
			bad = append(bad, f.Socket.Local)
		}
	}
	slices.Sort(bad)
	if !slices.Equal(bad, []string{"0.0.0.0:137", "[::]:445"}) {
		t.Errorf("reach: {internet: [22]}: reach-not-allowed for %v; want 137 and 445", bad)
	}

	// who says it too.
	code, out, _ = runCLI(t, "who", "445", "--netns", n.Name, "--json")
	var who struct {
		Reach []struct {
			Protocol      string `json:"protocol"`
			ReachableFrom string `json:"reachable_from"`
		} `json:"reach"`
	}
	if err := json.Unmarshal([]byte(out), &who); err != nil || code != ExitOK || len(who.Reach) != 1 || who.Reach[0].ReachableFrom != "internet" || who.Reach[0].Protocol != "tcp" {
		t.Errorf("who 445 --json: exit %d, reach %+v (%v); want tcp reachable from the internet\n%s", code, who.Reach, err, out)
	}
	_, text, _ = runCLI(t, "who", "445", "--netns", n.Name)
	if !strings.Contains(text, fmt.Sprintf(`reachable from the internet (tcp): firewall: inet t in handle %d "smb" (written by hand)`, handles["smb"])) {
		t.Errorf("who 445 does not say it is reachable from the internet, by the rule:\n%s", text)
	}
}

// nftHandles returns the handles of the rules of inet t in, by comment.
func nftHandles(t *testing.T, ns string) map[string]uint64 {
	t.Helper()
	b, err := exec.Command("ip", "netns", "exec", ns, "nft", "-j", "-a", "list", "chain", "inet", "t", "in").Output()
	if err != nil {
		t.Fatalf("nft -j list chain: %v", err)
	}
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Handle  uint64 `json:"handle"`
				Comment string `json:"comment"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, o := range doc.Nftables {
		if o.Rule != nil && o.Rule.Comment != "" {
			out[o.Rule.Comment] = o.Rule.Handle
		}
	}
	return out
}

// TestIntegrationAuditDockerBypass: ufw denies 6379, a real dockerd in a
// namespace of the test's publishes it: audit reports the bypass, naming
// ufw's deny and Docker's rules, with the loopback publish (-p 127.0.0.1:6379:6379) as the fix.
func TestIntegrationAuditDockerBypass(t *testing.T) {
	e, _ := testnet.UFWDocker(t, testnet.DockerOptions{}, "deny 6379")
	n := e.NS
	testnet.Run(t, "ip", "-n", n.Name, "route", "add", "default", "via", n.Host.String())
	e.Run(t, "run", "-d", "--name", "cache", "-p", "6379:6379", e.Image, "busybox", "httpd", "-f", "-p", "6379", "-h", "/www")
	t.Setenv("DOCKER_HOST", e.Host)
	addr := fmt.Sprintf("%s:6379", n.Peer)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the published port %s never answered", addr)
		}
	}
	code, out, stderr := runCLI(t, "audit", "--netns", n.Name, "--json")
	if code != ExitNegative {
		t.Fatalf("audit exit %d; want 1 (stderr %q)\n%s", code, stderr, out)
	}
	var doc struct {
		Findings []struct {
			Rule, Severity, Title, Why, Fix string
			Socket                          struct{ Local string }
			Firewall                        *struct {
				Bypasses *struct {
					Chain string
					Owner struct{ Name string }
				}
				NAT *struct {
					Step struct{ Owner struct{ Name string } }
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	n6379 := 0
	for _, f := range doc.Findings {
		if f.Rule != "docker-bypass" {
			continue
		}
		n6379++
		fw := f.Firewall
		if !strings.HasSuffix(f.Socket.Local, ":6379") || f.Severity != "high" || fw == nil || fw.Bypasses == nil || fw.Bypasses.Owner.Name != "ufw" ||
			fw.NAT == nil || fw.NAT.Step.Owner.Name != "docker" || !strings.Contains(f.Fix, "-p 127.0.0.1:6379:6379") || !strings.Contains(f.Why, "ufw") {
			t.Errorf("docker-bypass finding %+v (firewall %+v); want 6379, high, bypassing ufw's deny by Docker's DNAT, fix 127.0.0.1:6379", f, fw)
		}
	}
	if n6379 != 1 {
		t.Errorf("%d docker-bypass findings; want 1\n%s", n6379, out)
	}
	_, text, _ := runCLI(t, "audit", "--netns", n.Name)
	t.Logf("audit:\n%s", text)
}
