package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
)

var sampleLine = regexp.MustCompile(`(?m)^(portctl_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$`)

// sum adds up the samples of a metric whose labels contain every one of
// match.
func sum(body, name string, match ...string) (float64, int) {
	var total float64
	n := 0
	for _, m := range sampleLine.FindAllStringSubmatch(body, -1) {
		if m[1] != name {
			continue
		}
		ok := true
		for _, l := range match {
			ok = ok && strings.Contains(m[2], l)
		}
		if ok {
			v, _ := strconv.ParseFloat(m[3], 64)
			total += v
			n++
		}
	}
	return total, n
}

// TestIntegrationMetrics checks /metrics against the namespace's real
// table, and with promtool's linter.
func TestIntegrationMetrics(t *testing.T) {
	if testnet.Isolated(t) {
		return
	}
	l, err := net.Listen("tcp", "0.0.0.0:6379")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", "127.0.0.1:6379")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A ruleset of this test's own namespace (Isolated's): 6379 dropped.
	nft(t, "add table inet m", "add chain inet m in { type filter hook input priority 0 ; }", "add rule inet m in tcp dport 6379 drop")
	s, _ := serveMachine(t, Options{Version: "test"})
	body := scrapeBody(t, s)
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"portctl_firewall_rules", []string{`family="inet"`, `table="m"`, `owner="hand"`}, 1},
		{"portctl_firewall_read_success", nil, 1},
		// The dashboard's own listener is on 127.0.0.1; 6379 is dropped.
		{"portctl_reachable_ports", []string{`source="lan"`}, 0},
		{"portctl_reachable_ports", []string{`source="loopback"`}, 1},
		{"portctl_listening_sockets", []string{`protocol="tcp"`, `port="6379"`, `scope="any"`}, 1},
		{"portctl_sockets", []string{`protocol="tcp"`, `state="listen"`}, 2}, // and the dashboard's own
		{"portctl_sockets", []string{`protocol="tcp"`, `state="established"`}, 2},
		{"portctl_ephemeral_destination_sockets", []string{`destination="127.0.0.1:6379"`}, 1},
		{"portctl_scrape_success", nil, 1},
		{"portctl_build_info", []string{`version="test"`}, 1},
	} {
		if got, n := sum(body, tt.name, tt.labels...); got != tt.want || n == 0 {
			t.Errorf("%s%v = %g (%d series); want %g\n%s", tt.name, tt.labels, got, n, tt.want, body)
		}
	}
	if _, n := sum(body, "portctl_audit_findings", `severity="high"`); n != 1 {
		t.Errorf("portctl_audit_findings{severity=\"high\"}: %d series; want 1 (every severity is exported)", n)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("needs promtool (Debian's prometheus package; test-deps.sh installs it)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestIntegrationMetricsManySockets renders /metrics on a machine (a
// namespace) holding over 40,000 sockets: the output stays small, and the
// render allocates little, because the table is walked, not kept.
func TestIntegrationMetricsManySockets(t *testing.T) {
	if testnet.Isolated(t) {
		return
	}
	// Three processes each hold 6,700 connections to themselves (both
	// ends), under the 20,000 files a process may open here.
	const perProc = 6700
	for i := 0; i < 3; i++ {
		helper(t, "", []string{"PORTCTL_WEB_HELPER=pairs", "PORTCTL_WEB_PAIRS=" + strconv.Itoa(perProc)})
	}
	// No sample during the measure: it counts the scrape's allocations only.
	s, _ := serveMachine(t, Options{Version: "test", Interval: time.Hour})
	scrapeBody(t, s) // warm up
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	body := scrapeBody(t, s)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	established, _ := sum(body, "portctl_sockets", `protocol="tcp"`, `state="established"`)
	t.Logf("/metrics with %.0f established sockets: %d bytes, %s, %.2f MB allocated", established, len(body), took, float64(alloc)/1e6)
	if established < 3*2*perProc {
		t.Fatalf("portctl_sockets{state=\"established\"} = %.0f; want at least %d", established, 3*2*perProc)
	}
	// What the dashboard's own sampling costs on such a machine (for the
	// record: the page's table, the audit and the ephemeral history).
	runtime.ReadMemStats(&before)
	start = time.Now()
	s.sample(context.Background())
	runtime.ReadMemStats(&after)
	t.Logf("one dashboard sample of the same table: %s, %.1f MB allocated", time.Since(start), float64(after.TotalAlloc-before.TotalAlloc)/1e6)
	if len(body) > 5<<20 {
		t.Errorf("/metrics is %d bytes; want under 5 MB", len(body))
	}
	if alloc > 5<<20 {
		t.Errorf("rendering /metrics allocated %.1f MB; want under 5 MB", float64(alloc)/1e6)
	}
}

// TestIntegrationPrometheus has a real Prometheus scrape `serve` (with a
// token, as off loopback) and reads the portctl_ series back from its
// query API.
func TestIntegrationPrometheus(t *testing.T) {
	if testnet.Isolated(t) {
		return
	}
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("needs Debian's prometheus package (test-deps.sh installs it)")
	}
	const token = "prometheus-test-token-0123456789"
	l, err := net.Listen("tcp", "0.0.0.0:6379")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	nft(t, "add table inet m", "add chain inet m in { type filter hook input priority 0 ; }", "add rule inet m in tcp dport 6379 accept")
	_, base := serveMachine(t, Options{Token: token, Version: "test"})
	target := strings.TrimPrefix(base, "http://")

	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: portctl
    authorization:
      credentials: %s
    static_configs:
      - targets: ['%s']
`, token, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	promAddr := pl.Addr().String()
	pl.Close()
	cmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	query := func(q string) []any {
		resp, err := http.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var ans struct {
			Status string
			Data   struct{ Result []any }
		}
		b, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(b, &ans) != nil || ans.Status != "success" {
			return nil
		}
		return ans.Data.Result
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	queries := []string{
		`up{job="portctl"} == 1`,
		`portctl_listening_sockets{protocol="tcp",port="6379",scope="any"} == 1`,
		`portctl_sockets{protocol="tcp",state="listen"}`,
		`portctl_audit_findings{severity="high"}`,
		`portctl_ephemeral_ports > 0`,
		`portctl_scrape_duration_seconds`,
		`portctl_firewall_rules{family="inet",table="m",owner="hand"} == 1`,
		`portctl_reachable_ports{source="lan"} >= 1`, // 6379, let in; no default route, so no internet
		`portctl_reachable_ports{source="internet"} == 0`,
		`portctl_reachable_ports{source="loopback"} >= 2`,
	}
	for _, q := range queries {
		for len(query(q)) == 0 {
			if ctx.Err() != nil {
				t.Fatalf("Prometheus's query API never answered %s in 60 s; its log:\n%s", q, log.String())
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	res := query(`count({__name__=~"portctl_.+"})`)
	t.Logf("Prometheus holds the portctl_ series: %v", res)
}

// nft runs nft commands in this test's namespace: the tests that call it
// run inside Isolated's namespace, never in the host's.
func nft(t *testing.T, cmds ...string) {
	t.Helper()
	if os.Getenv("PORTCTL_TEST_ISOLATED") == "" {
		t.Fatal("nft outside an Isolated test's namespace")
	}
	for _, c := range cmds {
		testnet.Run(t, "nft", strings.Fields(c)...)
	}
}
