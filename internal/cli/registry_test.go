package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/registry"
)

// fullCSV returns a complete registry in IANA's CSV layout, with one
// assignment the built-in data does not have, so a test can tell which copy
// answered.
func fullCSV(t *testing.T) []byte {
	t.Helper()
	as := append([]registry.Assignment{}, registry.Builtin().All()...)
	as = append(as, registry.Assignment{Port: 47999, Proto: registry.TCP, Name: "portctl-test-svc", Description: "Only in the fetched copy", Reference: "[RFC0000]"})
	var b bytes.Buffer
	if err := registry.WriteCSV(&b, as); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestIntegrationRegistryUpdateOverHTTP(t *testing.T) {
	good := fullCSV(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/good.csv", func(w http.ResponseWriter, r *http.Request) { w.Write(good) })
	mux.HandleFunc("/page.html", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<!doctype html><html><body>Not here</body></html>"))
	})
	mux.HandleFunc("/excerpt.csv", func(w http.ResponseWriter, r *http.Request) { w.Write(good[:2000]) })
	srv := httptest.NewServer(mux) // listens on 127.0.0.1:0
	t.Cleanup(srv.Close)

	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	cacheFile := filepath.Join(cache, "portctl", cacheFileName)

	run := func(args ...string) (int, string, string) {
		streams, out, errb := term.Test("")
		return Run(args, streams), out.String(), errb.String()
	}

	// Before the update, the built-in copy answers and lacks the test service.
	if code, _, _ := run("info", "portctl-test-svc"); code != ExitNegative {
		t.Fatalf("before update: exit %d; want %d", code, ExitNegative)
	}

	code, out, stderr := run("registry", "update", "--from", srv.URL+"/good.csv")
	if code != ExitOK {
		t.Fatalf("update: exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(out, "registry updated") {
		t.Errorf("update output %q", out)
	}
	saved, err := os.ReadFile(cacheFile)
	if err != nil || !bytes.Equal(saved, good) {
		t.Fatalf("cache file: err %v, %d bytes; want the %d fetched bytes", err, len(saved), len(good))
	}
	code, out, _ = run("info", "portctl-test-svc")
	if code != ExitOK || !strings.Contains(out, "47999") || !strings.Contains(out, "[RFC0000]") {
		t.Errorf("after update: exit %d, output %q; want 47999 from the cache", code, out)
	}
	// Aliases from the built-in sources still resolve.
	if code, out, _ = run("info", "www"); code != ExitOK || !strings.Contains(out, "80") {
		t.Errorf("after update, info www: exit %d %q", code, out)
	}

	// Files that are not the registry are refused; the cache stays as it was.
	for _, bad := range []string{"/page.html", "/excerpt.csv"} {
		code, _, stderr = run("registry", "update", "--from", srv.URL+bad)
		if code != ExitUsage || !strings.Contains(stderr, "not the IANA port registry") {
			t.Errorf("update from %s: exit %d, stderr %q; want %d and a refusal", bad, code, stderr, ExitUsage)
		}
		if now, _ := os.ReadFile(cacheFile); !bytes.Equal(now, good) {
			t.Errorf("update from %s changed the cache", bad)
		}
	}
	code, _, stderr = run("registry", "update", "--from", srv.URL+"/missing")
	if code != ExitFailure || !strings.Contains(stderr, "404") {
		t.Errorf("update from a 404: exit %d, stderr %q", code, stderr)
	}
	code, _, _ = run("registry", "update", "--from", "ftp://example.invalid/x.csv")
	if code != ExitUsage {
		t.Errorf("update from ftp://: exit %d; want %d", code, ExitUsage)
	}

	// Update from a file works too, and the sources listing names the cache.
	local := filepath.Join(t.TempDir(), "registry.csv")
	os.WriteFile(local, good, 0o644)
	if code, _, stderr = run("registry", "update", "--from", local); code != ExitOK {
		t.Errorf("update from file: exit %d %q", code, stderr)
	}
	if code, out, _ = run("registry", "sources"); code != ExitOK || !strings.Contains(out, "cached") {
		t.Errorf("registry sources after update: %d %q", code, out)
	}

	// A cache broken behind portctl's back is reported and passed over.
	os.WriteFile(cacheFile, []byte("garbage"), 0o644)
	code, _, stderr = run("info", "443")
	if code != ExitOK || !strings.Contains(stderr, "ignoring the cached registry") {
		t.Errorf("broken cache: exit %d, stderr %q", code, stderr)
	}
}
