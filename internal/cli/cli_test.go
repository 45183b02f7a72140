package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/portctl/portctl/internal/term"
)

// runCLI runs portctl with args against test streams and an empty user
// cache, and returns the exit code and what was written.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	streams, out, errb := term.Test("")
	code = Run(args, streams)
	return code, out.String(), errb.String()
}

func TestExitCodesAndMessages(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  []string // substrings of stderr
	}{
		{"port too large", []string{"info", "70000"}, ExitUsage, []string{"70000", "0-65535"}},
		{"negative port", []string{"info", "-1"}, ExitUsage, []string{"-1", "0-65535"}},
		{"negative port after --", []string{"info", "--", "-1"}, ExitUsage, []string{"-1", "negative"}},
		{"backwards range", []string{"info", "80-20"}, ExitUsage, []string{"80-20", "A <= B"}},
		{"empty", []string{"info", ""}, ExitUsage, []string{"empty", "0-65535"}},
		{"garbage", []string{"info", "abc!?"}, ExitUsage, []string{"abc!?", "service name"}},
		{"range without end", []string{"info", "80-"}, ExitUsage, []string{"80-"}},
		{"bad protocol suffix", []string{"info", "53/icmp"}, ExitUsage, []string{"icmp", "tcp, udp"}},
		{"bad --proto", []string{"info", "53", "--proto", "xyz"}, ExitUsage, []string{"xyz"}},
		{"no argument", []string{"info"}, ExitUsage, []string{"info takes"}},
		{"two arguments", []string{"info", "1", "2"}, ExitUsage, []string{"got 2"}},
		{"unknown name", []string{"info", "htps"}, ExitNegative, []string{`no service named "htps"`, "https"}},
		{"unknown command", []string{"inf", "443"}, ExitUsage, []string{`unknown command "inf"`, `"info"`}},
		{"argument to a command that takes none", []string{"version", "extra"}, ExitUsage, []string{`portctl version takes no argument "extra"`}},
		{"unknown flag", []string{"info", "443", "--bogus"}, ExitUsage, []string{"--bogus"}},
		{"search nothing", []string{"search"}, ExitUsage, []string{"at least one word"}},
		{"search no match", []string{"search", "zzqqxxjj"}, ExitNegative, []string{"nothing matches"}},
		{"search bad limit", []string{"search", "ssh", "--limit", "-3"}, ExitUsage, []string{"-3"}},
		{"found", []string{"info", "443"}, ExitOK, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("portctl %q exit = %d; want %d (stderr %q)", tt.args, code, tt.wantCode, stderr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(stderr, want) {
					t.Errorf("portctl %q stderr = %q; want it to mention %q", tt.args, stderr, want)
				}
			}
			if tt.wantCode != ExitOK && strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 {
				t.Errorf("portctl %q stderr has several lines; want one: %q", tt.args, stderr)
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
				t.Errorf("portctl %q leaked a stack trace: %q", tt.args, stderr)
			}
		})
	}
}

func TestInfoJSON443(t *testing.T) {
	code, out, stderr := runCLI(t, "info", "443", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var res infoResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("info 443 --json is not valid JSON: %v\n%s", err, out)
	}
	if res.Kind != "port" || len(res.Ports) != 1 || res.Ports[0].Port != 443 {
		t.Fatalf("info 443 --json = %+v; want one port 443", res)
	}
	// Check the raw field names too: they are a contract.
	var raw map[string]any
	json.Unmarshal([]byte(out), &raw)
	port := raw["ports"].([]any)[0].(map[string]any)
	for _, field := range []string{"port", "class", "privileged", "ephemeral", "ephemeral_range", "assignments", "uses", "security_notes"} {
		if _, ok := port[field]; !ok {
			t.Errorf("info --json port object lacks field %q", field)
		}
	}
	got := map[string]bool{}
	for _, a := range port["assignments"].([]any) {
		m := a.(map[string]any)
		got[m["protocol"].(string)+"/"+m["name"].(string)] = true
	}
	for _, want := range []string{"tcp/https", "udp/https"} {
		if !got[want] {
			t.Errorf("info 443 --json assignments lack %s; have %v", want, got)
		}
	}
}

func TestInfoText(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"info", "3000"}, []string{"remoteware-cl", "hbci", "Node", "React", "Grafana"}},
		{[]string{"info", "5000"}, []string{"AirPlay", "Flask"}},
		{[]string{"info", "imaps"}, []string{"993", "imaps"}},
		{[]string{"info", "IMAPS"}, []string{"993"}},
		{[]string{"info", "137"}, []string{"Security", "HIGH", "NetBIOS"}},
		{[]string{"info", "23"}, []string{"telnet", "Security"}},
		{[]string{"info", "80"}, []string{"needs root or CAP_NET_BIND_SERVICE",
			"RFC 9110; assignee IESG, contact IETF Chair; modified 2021-10-01", "note: Defined TXT keys"}},
		{[]string{"info", "106"}, []string{"unauthorized use reported: Known Unauthorized Use on 106"}},
		{[]string{"info", "53/udp"}, []string{"udp", "domain"}},
		{[]string{"info", "6010", "--proto", "tcp"}, []string{"x11", "range 6000-6063"}},
		{[]string{"info", "20-25"}, []string{"ftp-data", "ftp", "ssh", "telnet", "smtp", "Ports 20-25"}},
		{[]string{"info", "www"}, []string{"80", "http"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, stderr := runCLI(t, tt.args...)
			if code != ExitOK {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("portctl %q output lacks %q:\n%s", tt.args, w, out)
				}
			}
			if strings.Contains(out, "\x1b[") {
				t.Errorf("portctl %q wrote colour to a non-terminal", tt.args)
			}
		})
	}
}

func TestInfoRangeJSONOnlyKnownPorts(t *testing.T) {
	_, out, _ := runCLI(t, "info", "20-25", "--json")
	var res infoResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Kind != "range" {
		t.Errorf("kind = %q; want range", res.Kind)
	}
	for _, p := range res.Ports {
		if p.Port < 20 || p.Port > 25 {
			t.Errorf("port %d outside 20-25", p.Port)
		}
	}
	if len(res.Ports) < 5 {
		t.Errorf("got %d ports in 20-25; want at least 5", len(res.Ports))
	}
}

func TestSearchJSONRanksPostgresFirst(t *testing.T) {
	code, out, stderr := runCLI(t, "search", "postgres", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var res searchResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Results) == 0 || res.Results[0].Port != 5432 {
		t.Fatalf("search postgres first result = %+v; want 5432", res.Results)
	}
}

func TestColourOnTerminalOnly(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	streams, out, _ := term.Test("")
	streams.SetTerminal(true, true, 120)
	if code := Run([]string{"info", "445"}, streams); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out.String(), "\x1b[") {
		t.Errorf("no colour on a colour terminal")
	}
	if !strings.Contains(out.String(), "HIGH") {
		t.Errorf("severity must be written as a word, not only a colour")
	}
	streams, out, _ = term.Test("")
	streams.SetTerminal(true, true, 120)
	Run([]string{"info", "445", "--no-color"}, streams)
	if strings.Contains(out.String(), "\x1b[") {
		t.Errorf("--no-color still coloured the output")
	}
}

func TestVersionAndCompletion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"version", "--json"}} {
		code, out, _ := runCLI(t, args...)
		if code != ExitOK || !strings.Contains(out, "portctl") && !strings.Contains(out, "version") {
			t.Errorf("portctl %q = %d %q", args, code, out)
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, stderr := runCLI(t, "completion", shell)
		if code != ExitOK || len(out) < 100 {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, code, len(out), stderr)
		}
	}
}

func TestFlagsLandInOptions(t *testing.T) {
	streams, _, _ := term.Test("")
	var got infoOptions
	cmd := newInfoCmd(streams, func(o infoOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"ssh", "--proto", "udp", "--json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	want := infoOptions{Query: "ssh", Proto: 2, JSON: true}
	if got != want {
		t.Errorf("info options = %+v; want %+v", got, want)
	}

	var gs searchOptions
	scmd := newSearchCmd(streams, func(o searchOptions) error { gs = o; return nil })
	scmd.SetArgs([]string{"remote", "desktop", "-n", "3"})
	if err := scmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if want := (searchOptions{Words: "remote desktop", Limit: 3}); gs != want {
		t.Errorf("search options = %+v; want %+v", gs, want)
	}
}
