package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/internal/testnet"
)

// Every scan these tests run on the host's own interfaces asks for -sT:
// raw packets (the SYN engine) are sent only inside namespaces the scan
// package's tests create.

func TestRewriteNmapArgs(t *testing.T) {
	got := rewriteNmapArgs([]string{"scan", "-sT", "-p-", "-n", "-Pn", "-oX", "out.xml", "-iL", "list", "10.0.0.1"})
	want := []string{"scan", "--connect", "--ports=-", "-n", "--no-ping", "--xml", "out.xml", "--input", "list", "10.0.0.1"}
	if !slices.Equal(got, want) {
		t.Errorf("rewriteNmapArgs = %q; want %q", got, want)
	}
	if got := rewriteNmapArgs([]string{"--no-color", "scan", "-sT", "--", "-sT"}); !slices.Equal(got, []string{"--no-color", "scan", "--connect", "--", "-sT"}) {
		t.Errorf("rewriteNmapArgs after a root flag = %q", got)
	}
	if got := rewriteNmapArgs([]string{"info", "-sT"}); !slices.Equal(got, []string{"info", "-sT"}) {
		t.Errorf("rewrote another command's arguments: %q", got)
	}
}

func TestScanFlagsLandInOptions(t *testing.T) {
	streams, _, _ := term.Test("")
	var got scanOptions
	cmd := newScanCmd(streams, func(_ context.Context, o scanOptions) error { got = o; return nil })
	cmd.SetArgs(rewriteNmapArgs([]string{"scan", "-sT", "-p-", "10.0.0.0/24", "--seed", "42", "--shard", "2/3", "--jsonl", "-oX", "x.xml", "--rate", "500"})[1:])
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Ports != "-" || !slices.Equal(got.Targets, []string{"10.0.0.0/24"}) || got.Seed != 42 || !got.SeedSet ||
		got.Shard != "2/3" || !got.JSONL || got.XMLFile != "x.xml" || got.Rate != 500 || !slices.Equal(got.Types, []string{"T"}) {
		t.Errorf("scan options = %+v", got)
	}
}

func TestScanBadSpecs(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"scan", "127.0.0.1", "-p", "70000"}, "70000"},
		{[]string{"scan", "127.0.0.1", "-p", "10-1"}, "10-1"},
		{[]string{"scan", "300.1.1.1/33"}, "300.1.1.1/33"},
		{[]string{"scan", "no-such-host.invalid", "-p", "80"}, "no-such-host.invalid"},
		{[]string{"scan", "127.0.0.1", "--shard", "4/3"}, "4/3"},
		{[]string{"scan"}, "needs targets"},
		{[]string{"scan", "127.0.0.1", "-sV", "--probes", "/nonexistent/probes"}, "--probes /nonexistent/probes"},
		{[]string{"scan", "127.0.0.1", "--probes", "/etc/hostname"}, "--probes"},
		{[]string{"scan", "127.0.0.1", "-sV", "--probes", "/etc/passwd"}, "no Probe line"},
		{[]string{"scan", "127.0.0.1", "--json", "--jsonl"}, "exclude"},
	} {
		code, _, stderr := runCLI(t, tt.args...)
		if code != ExitUsage || !strings.Contains(stderr, tt.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("portctl %q: exit %d, stderr %q; want %d and one line naming %q", tt.args, code, stderr, ExitUsage, tt.want)
		}
	}
}

// jsonlPorts parses --jsonl output into "addr:port state" lines.
func jsonlPorts(t *testing.T, out string) map[string]string {
	t.Helper()
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l struct {
			Type, Addr, State string
			Port              int
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("bad JSONL line %q: %v", sc.Text(), err)
		}
		if l.Type != "port" {
			continue
		}
		k := fmt.Sprintf("%s:%d", l.Addr, l.Port)
		if _, dup := got[k]; dup {
			t.Errorf("%s reported twice", k)
		}
		got[k] = l.State
	}
	return got
}

func TestScanFindsListenersExactly(t *testing.T) {
	open := []uint16{testnet.Listen(t, "127.0.0.1:0").Port(), testnet.Listen(t, "127.0.0.1:0").Port()}
	closed := testnet.ClosedPort(t, "127.0.0.1").Port()
	spec := fmt.Sprintf("%d,%d,%d", open[0], closed, open[1])
	code, out, stderr := runCLI(t, "scan", "-sT", "127.0.0.1", "-p", spec, "--jsonl")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := jsonlPorts(t, out)
	want := map[string]string{
		fmt.Sprintf("127.0.0.1:%d", open[0]): "open",
		fmt.Sprintf("127.0.0.1:%d", open[1]): "open",
		fmt.Sprintf("127.0.0.1:%d", closed):  "closed",
	}
	if !maps2Equal(got, want) {
		t.Errorf("scan = %v; want %v", got, want)
	}
	code, out, _ = runCLI(t, "scan", "-sT", "127.0.0.1", "-p", spec)
	if code != ExitOK || !strings.Contains(out, fmt.Sprintf("%d/tcp", open[0])) || !strings.Contains(out, "2 open ports") {
		t.Errorf("scan table:\n%s", out)
	}
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestScanShardsAreDisjointAndComplete(t *testing.T) {
	l := testnet.Listen(t, "127.0.0.1:0")
	spec := fmt.Sprintf("1-300,%d", l.Port())
	_, out, _ := runCLI(t, "scan", "-sT", "127.0.0.1", "-p", spec, "--seed", "7", "--jsonl")
	whole := jsonlPorts(t, out)
	union := map[string]string{}
	for k := 1; k <= 3; k++ {
		code, out, stderr := runCLI(t, "scan", "-sT", "127.0.0.1", "-p", spec, "--seed", "7", "--shard", fmt.Sprintf("%d/3", k), "--jsonl")
		if code != ExitOK {
			t.Fatalf("shard %d/3: exit %d %s", k, code, stderr)
		}
		for p, st := range jsonlPorts(t, out) {
			if _, dup := union[p]; dup {
				t.Errorf("%s in two shards", p)
			}
			union[p] = st
		}
	}
	if !maps2Equal(union, whole) || len(whole) != 301 {
		t.Errorf("union of shards has %d ports, the whole scan %d; want equal, 301", len(union), len(whole))
	}
}

func TestScanResume(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", dir)
	resume := filepath.Join(dir, "scan.resume")
	// A slow scan (a rate cap) interrupted part way.
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	streams, out1, _ := term.Test("")
	opts := scanOptions{Types: []string{"T"}, Targets: []string{"127.0.0.1"}, Ports: "1-2000", Rate: 2000, Retries: 1, JSONL: true, Resume: resume, Seed: 3, SeedSet: true}
	err := runScan(ctx, streams, opts)
	if err == nil {
		t.Fatal("the interrupted scan finished; make it slower")
	}
	if _, err := os.Stat(resume); err != nil {
		t.Fatalf("no resume file after the interruption: %v", err)
	}
	first := jsonlPorts(t, out1.String())
	// Continue.
	streams, out2, _ := term.Test("")
	if err := runScan(context.Background(), streams, scanOptions{Types: []string{"T"}, Resume: resume, JSONL: true, Rate: 0, Retries: 1}); err != nil {
		t.Fatalf("resumed scan: %v", err)
	}
	second := jsonlPorts(t, out2.String())
	all := map[string]string{}
	for k, v := range first {
		all[k] = v
	}
	for k, v := range second {
		all[k] = v
	}
	if len(all) != 2000 {
		t.Errorf("first %d + resumed %d ports cover %d of 2000", len(first), len(second), len(all))
	}
	if len(first)+len(second)-len(all) > 1100 {
		t.Errorf("%d ports scanned twice", len(first)+len(second)-len(all))
	}
	if _, err := os.Stat(resume); !os.IsNotExist(err) {
		t.Errorf("the resume file remains after the scan completed")
	}
}

func TestIntegrationScanXMLValidates(t *testing.T) {
	dtd := "/usr/share/nmap/nmap.dtd"
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Skip("needs xmllint (libxml2-utils; test-deps.sh installs it)")
	}
	if _, err := os.Stat(dtd); err != nil {
		t.Skip("needs nmap's DTD (package nmap; test-deps.sh installs it)")
	}
	l := testnet.Listen(t, "127.0.0.1:0")
	x := filepath.Join(t.TempDir(), "out.xml")
	code, _, stderr := runCLI(t, "scan", "-sT", "127.0.0.1", "-p", fmt.Sprintf("1-100,%d", l.Port()), "-oX", x)
	if code != ExitOK {
		t.Fatalf("exit %d %s", code, stderr)
	}
	if out, err := exec.Command("xmllint", "--noout", "--dtdvalid", dtd, x).CombinedOutput(); err != nil {
		t.Errorf("xmllint: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(x)
	if !strings.Contains(string(data), fmt.Sprintf(`portid="%d"`, l.Port())) {
		t.Errorf("the XML lacks the open port %d", l.Port())
	}
}
