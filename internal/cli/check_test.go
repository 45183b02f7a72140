package cli

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/probe"
)

// probeListen and probeClosedPort are the shared loopback helpers.
var (
	probeListen     = testnet.Listen
	probeClosedPort = testnet.ClosedPort
)

func TestCheckFlagsLandInOptions(t *testing.T) {
	tests := []struct {
		args []string
		want checkOptions
	}{
		{[]string{"localhost:22"}, checkOptions{Targets: []string{"localhost:22"}, Timeout: 2 * time.Second}},
		{[]string{"a:1", "[::1]:2", "--timeout", "500ms", "-6", "--all", "--json"},
			checkOptions{Targets: []string{"a:1", "[::1]:2"}, Timeout: 500 * time.Millisecond, Family: probe.IPv6, All: true, JSON: true}},
		{[]string{"-4", "a:ssh"}, checkOptions{Targets: []string{"a:ssh"}, Timeout: 2 * time.Second, Family: probe.IPv4}},
	}
	for _, tt := range tests {
		streams, _, _ := term.Test("")
		var got checkOptions
		cmd := newCheckCmd(streams, func(o checkOptions) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("check %q: %v", tt.args, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("check %q options (-want +got):\n%s", tt.args, diff)
		}
	}
}

func TestCheckUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{"no port", []string{"check", "host"}, []string{`"host"`, "HOST:PORT"}},
		{"port too large", []string{"check", "host:70000"}, []string{"70000", "HOST:PORT"}},
		{"no host", []string{"check", ":80"}, []string{`":80"`, "HOST:PORT"}},
		{"open bracket", []string{"check", "[::1"}, []string{`"[::1"`, "HOST:PORT"}},
		{"empty", []string{"check", ""}, []string{"empty", "HOST:PORT"}},
		{"IPv6 without brackets", []string{"check", "::1:22"}, []string{"::1:22", "[::1]:22"}},
		{"one bad among good", []string{"check", "127.0.0.1:1", "x:y:z"}, []string{"x:y:z"}},
		{"no target", []string{"check"}, []string{"at least one target", "HOST:PORT"}},
		{"unknown service", []string{"check", "127.0.0.1:no-such-service-x"}, []string{"no-such-service-x", "HOST:PORT"}},
		{"zero timeout", []string{"check", "127.0.0.1:1", "--timeout", "0"}, []string{"--timeout"}},
		{"bad timeout", []string{"check", "127.0.0.1:1", "--timeout", "soon"}, []string{"soon"}},
		{"both families", []string{"check", "127.0.0.1:1", "-4", "-6"}, []string{"-4 and -6"}},
		{"IPv6 literal with -4", []string{"check", "[::1]:1", "-4"}, []string{"[::1]:1", "-4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != ExitUsage {
				t.Errorf("portctl %q exit = %d; want %d (stderr %q)", tt.args, code, ExitUsage, stderr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("portctl %q stderr = %q; want it to mention %q", tt.args, stderr, w)
				}
			}
			if strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 || stdout != "" {
				t.Errorf("portctl %q: stdout %q, stderr %q; want one line on stderr only", tt.args, stdout, stderr)
			}
		})
	}
}

func TestCheckRun(t *testing.T) {
	open4 := probeListen(t, "127.0.0.1:0")
	open6 := probeListen(t, "[::1]:0")
	closed := probeClosedPort(t, "127.0.0.1")

	code, out, stderr := runCLI(t, "check", open4.String(), open6.String(), "--json")
	if code != ExitOK || stderr != "" {
		t.Errorf("check of two open ports: exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	var doc checkDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("check --json is not JSON: %v\n%s", err, out)
	}
	if len(doc.Results) != 2 || doc.TimeoutMS != 2000 {
		t.Fatalf("check --json = %+v; want 2 results and timeout_ms 2000", doc)
	}
	for i, ap := range []netip.AddrPort{open4, open6} {
		r := doc.Results[i]
		if r.Target != ap.String() || r.Address != ap.String() || r.State != probe.StateOpen || r.Reason != "" || r.Port != ap.Port() {
			t.Errorf("result %d = %+v; want open at %v", i, r, ap)
		}
		if r.LatencyMS <= 0 || r.LatencyMS > 1000 {
			t.Errorf("result %d latency_ms = %v; want a positive time under a second", i, r.LatencyMS)
		}
	}
	// The field names are a contract.
	var raw map[string][]map[string]any
	json.Unmarshal([]byte(out), &raw)
	for _, f := range []string{"target", "host", "port", "service", "address", "state", "reason", "latency_ms"} {
		if _, ok := raw["results"][0][f]; !ok {
			t.Errorf("check --json result lacks field %q", f)
		}
	}

	code, out, stderr = runCLI(t, "check", open4.String(), closed.String())
	if code != ExitNegative {
		t.Errorf("check with a closed port: exit %d; want %d", code, ExitNegative)
	}
	for _, w := range []string{"TARGET", "ADDRESS", "STATE", "LATENCY", "REASON", "open", "closed", "connection refused", closed.String()} {
		if !strings.Contains(out, w) {
			t.Errorf("check table lacks %q:\n%s", w, out)
		}
	}
	if !strings.Contains(stderr, "not open: "+closed.String()) || strings.Contains(stderr, open4.String()) {
		t.Errorf("check stderr = %q; want it to name the closed target only", stderr)
	}
}

func TestCheckServiceNamePort(t *testing.T) {
	// Whether or not sshd runs here, the name becomes port 22.
	code, out, stderr := runCLI(t, "check", "127.0.0.1:ssh", "--json", "--timeout", "1s")
	if code != ExitOK && code != ExitNegative {
		t.Fatalf("check 127.0.0.1:ssh: exit %d, stderr %q", code, stderr)
	}
	var doc checkDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	r := doc.Results[0]
	if r.Target != "127.0.0.1:ssh" || r.Port != 22 || r.Service != "ssh" || r.Address != "127.0.0.1:22" {
		t.Errorf("check 127.0.0.1:ssh = %+v; want port 22 at 127.0.0.1:22", r)
	}
}

func TestFmtDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{412 * time.Microsecond, "412µs"},
		{1234567 * time.Nanosecond, "1.23ms"},
		{45678 * time.Microsecond, "45.7ms"},
		{1234 * time.Millisecond, "1.2s"},
		{125 * time.Second, "2m5s"},
	}
	for _, tt := range tests {
		if got := fmtDuration(tt.d); got != tt.want {
			t.Errorf("fmtDuration(%v) = %q; want %q", tt.d, got, tt.want)
		}
	}
}
