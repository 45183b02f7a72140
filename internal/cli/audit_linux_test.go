package cli

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
