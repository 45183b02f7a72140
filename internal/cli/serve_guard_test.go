package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/term"
)

func TestServeGuardEventsFlagLandsInOptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.jsonl") // not there yet: guard makes it
	streams, _, _ := term.Test("")
	var got serveOptions
	cmd := newServeCmd(streams, func(_ context.Context, o serveOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--guard-events", path})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("serve --guard-events %s: %v", path, err)
	}
	if got.GuardEvents != path {
		t.Errorf("serve --guard-events %s: GuardEvents = %q", path, got.GuardEvents)
	}

	dir := t.TempDir()
	code, _, stderr := runCLI(t, "serve", "--guard-events", dir)
	if code != ExitUsage || !strings.Contains(stderr, "directory") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Errorf("serve --guard-events DIR: exit %d, stderr %q; want %d, one line saying it is a directory", code, stderr, ExitUsage)
	}
	if _, out, _ := runCLI(t, "serve", "--help"); !strings.Contains(out, "--guard-events FILE") {
		t.Errorf("serve --help lacks a paragraph on --guard-events:\n%s", out)
	}
}

// TestServeGuardEvents runs `portctl serve --guard-events FILE` as a user
// would: an event written to the file after it started is in the API and
// in /metrics.
func TestServeGuardEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.jsonl")
	os.WriteFile(path, []byte(`{"time":"2026-12-07T12:00:00Z","type":"start"}`+"\n"), 0o600)
	const token = "serve-guard-token-0123456789"
	base := startServe(t, "--listen", "127.0.0.1:0", "--token", token, "--guard-events", path)
	get := func(path string) string {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2026-12-07T12:00:03Z","type":"scan","source":"10.9.0.2","kind":"syn","proto":"tcp","ports":[1,2,3,4],"probes":4,"failures":4}` + "\n")
	f.Close()
	var ans struct {
		Events []struct{ Type, Source, Kind string }
		Counts map[string]int
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := json.Unmarshal([]byte(get("/api/v1/guard")), &ans); err != nil {
			t.Fatal(err)
		}
		if len(ans.Events) == 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(ans.Events) != 2 || ans.Events[1].Type != "scan" || ans.Events[1].Source != "10.9.0.2" || ans.Counts["start"] != 1 || ans.Counts["scan"] != 1 {
		t.Fatalf("GET /api/v1/guard: %+v; want the start and the scan", ans)
	}
	metrics := get("/metrics")
	if !regexp.MustCompile(`(?m)^portctl_guard_events_total\{kind="syn",type="scan"\} 1$`).MatchString(metrics) {
		t.Errorf("/metrics lacks portctl_guard_events_total{kind=\"syn\",type=\"scan\"} 1:\n%s", metrics)
	}
}
