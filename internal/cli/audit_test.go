package cli

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/audit"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

func TestAuditFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want auditOptions
	}{
		{"defaults", nil, auditOptions{RemoteTimeout: 2 * time.Second}},
		{"everything", []string{"--policy", "p.yaml", "--json", "--sarif", "out.sarif", "--fail-on", "high",
			"--netns", "/proc/self/ns/net", "--remote", "db1", "--remote-timeout", "500ms"},
			auditOptions{Policy: "p.yaml", JSON: true, SARIF: "out.sarif", FailOn: registry.SevHigh,
				NetNS: "/proc/self/ns/net", Remote: "db1", RemoteTimeout: 500 * time.Millisecond}},
		{"never fail, namespace path", []string{"--fail-on", "never", "--netns", "/proc/1/ns/net", "--sarif", "-"},
			auditOptions{FailOn: audit.Never, NetNS: "/proc/1/ns/net", SARIF: "-", RemoteTimeout: 2 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			streams, _, _ := term.Test("")
			var got auditOptions
			cmd := newAuditCmd(streams, func(_ context.Context, o auditOptions) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			if err := cmd.Execute(); err != nil {
				t.Fatalf("audit %q: %v", tt.args, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("audit %q options mismatch (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

func TestAuditBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeTestFile(t, bad, "allow:\n  - port: 22\ncolour: red\n")
	badPort := filepath.Join(dir, "port.yaml")
	writeTestFile(t, badPort, "allow:\n  - port: 99999\n")
	tests := []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{"bad --fail-on", []string{"audit", "--fail-on", "extreme"}, []string{"--fail-on extreme", "info, low, medium, high or never"}},
		{"missing policy file", []string{"audit", "--policy", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml", "no such file"}},
		{"empty --policy", []string{"audit", "--policy", ""}, []string{"--policy is empty"}},
		{"unknown key in the policy", []string{"audit", "--policy", bad}, []string{"bad.yaml", "line 3", `unknown key "colour"`, "allow, except"}},
		{"bad port in the policy", []string{"audit", "--policy", badPort}, []string{"port.yaml", "line 2", `port "99999"`, "0-65535"}},
		{"an argument", []string{"audit", "everything"}, []string{"audit takes no argument"}},
		{"json and sarif on stdout", []string{"audit", "--json", "--sarif", "-"}, []string{"--json and --sarif -"}},
		{"empty --remote", []string{"audit", "--remote", ""}, []string{"--remote is empty"}},
		{"bad --remote-timeout", []string{"audit", "--remote-timeout", "0s"}, []string{"--remote-timeout 0s"}},
		{"unknown flag", []string{"audit", "--policies", "x"}, []string{"--policies"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != ExitUsage {
				t.Errorf("portctl %q exit = %d; want 2 (stderr %q)", tt.args, code, stderr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(stderr, want) {
					t.Errorf("portctl %q stderr = %q; want it to mention %q", tt.args, stderr, want)
				}
			}
			if strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 {
				t.Errorf("portctl %q stderr has several lines; want one: %q", tt.args, stderr)
			}
		})
	}
}

// TestAuditPrint renders a synthetic report as a person sees it.
func TestAuditPrint(t *testing.T) {
	redis := &sockets.Process{PID: 42, Name: "redis-server", User: "redis", UID: 112}
	ls := func(addr string) sockets.Socket {
		return sockets.Socket{Proto: sockets.TCP, State: sockets.Listen, Local: netip.MustParseAddrPort(addr), Inode: 1, UID: 112, Processes: []*sockets.Process{redis}}
	}
	pol, err := audit.ParsePolicy([]byte("except:\n  - {rule: syncookies-off, reason: a lab machine}\n"))
	if err != nil {
		t.Fatal(err)
	}
	pol.File = "lab.yaml"
	rep := audit.Check(audit.Input{
		Sockets: []sockets.Socket{ls("0.0.0.0:6379"), ls("[::]:6379")},
		Host:    netconf.Host{Ephemeral: registry.Range{First: 60000, Last: 61000}, UnprivilegedStart: 1024, TCPSyncookies: 0},
		OS:      "linux",
	}, pol)
	streams, out, _ := term.Test("")
	printAudit(streams, rep, registry.SevMedium, rep.AtLeast(registry.SevMedium))
	got := out.String()
	for _, want := range []string{
		"Audit of 1 listener", "2 findings (1 high, 1 medium)", "policy lab.yaml: 1 finding set aside",
		"SEVERITY", "RULE", "WHERE", "PROCESS", "FINDING",
		"high", "network-database", "tcp 0.0.0.0:6379", "redis-server/42", "Redis listens on all interfaces",
		"(also [::]:6379), redis-server (PID 42, user redis)", "why", "fix", "bind 127.0.0.1",
		"narrow-ephemeral-range", "net.ipv4.ip_local_port_range = 60000-61000",
		"Set aside by the policy", "syncookies-off", "a lab machine",
		"2 findings at or above medium (--fail-on)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("printAudit output does not contain %q:\n%s", want, got)
		}
	}
}

// TestAuditRunsHere audits this machine (whatever listens here) and checks
// the exit code agrees with the JSON verdict.
func TestAuditRunsHere(t *testing.T) {
	code, out, stderr := runCLI(t, "audit", "--json", "--fail-on", "never")
	if code != ExitOK {
		t.Fatalf("audit --fail-on never exit %d; want 0 (stderr %q)", code, stderr)
	}
	d := parseAuditJSON(t, out)
	if d.FailOn != "never" || d.Violations != 0 {
		t.Errorf("fail_on %q, violations %d; want never, 0", d.FailOn, d.Violations)
	}
	code, out, _ = runCLI(t, "audit", "--json", "--fail-on", "info")
	d = parseAuditJSON(t, out)
	if (code == ExitNegative) != (d.Violations > 0) || (code != ExitOK && code != ExitNegative) {
		t.Errorf("audit --fail-on info exit %d with %d violations; want 1 exactly when there are some", code, d.Violations)
	}
}

// auditDoc is the part of `audit --json` the tests read.
type auditDoc struct {
	Findings []struct {
		Rule     string `json:"rule"`
		Severity string `json:"severity"`
		Title    string `json:"title"`
		Service  string `json:"service"`
		Port     int    `json:"port"`
		Socket   struct {
			Local string `json:"local"`
		} `json:"socket"`
		Process *struct {
			PID  int    `json:"pid"`
			Name string `json:"name"`
		} `json:"process"`
		Reach *struct {
			State string `json:"state"`
		} `json:"reach"`
		Firewall *struct {
			Class   string `json:"class"`
			Verdict string `json:"verdict"`
			Rule    *struct {
				Table  string `json:"table"`
				Chain  string `json:"chain"`
				Handle uint64 `json:"handle"`
				Owner  struct {
					Name string `json:"name"`
				} `json:"owner"`
			} `json:"rule"`
		} `json:"firewall"`
	} `json:"findings"`
	Excepted []struct {
		Rule string `json:"rule"`
	} `json:"excepted"`
	Listeners []struct {
		Socket struct {
			Local string `json:"local"`
		} `json:"socket"`
		Reach *struct {
			State  string `json:"state"`
			Reason string `json:"reason"`
		} `json:"reach"`
		ReachableFrom string `json:"reachable_from"`
	} `json:"listeners"`
	Counts     map[string]int `json:"counts"`
	FailOn     string         `json:"fail_on"`
	Violations int            `json:"violations"`
}

func parseAuditJSON(t *testing.T, out string) auditDoc {
	t.Helper()
	var d auditDoc
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("audit --json output is not JSON: %v\n%s", err, out)
	}
	return d
}

func writeTestFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
