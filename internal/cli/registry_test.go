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
	as = append(as, registry.Assignment{Port: 47999, Proto: registry.TCP, Name: "portctl-test-svc", Description: "Only in the fetched copy",
		Reference: "[RFC0000]", Assignee: "[Test_Person]", Contact: "[Test_Person]", Registered: "2099-01-02", Notes: "Fetched, not built in"})
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
	if !strings.Contains(out, "registry updated") || !strings.Contains(out, "newest entry 2099-01-02") {
		t.Errorf("update output %q; want it to say so, with the newest date in the file", out)
	}
	saved, err := os.ReadFile(cacheFile)
	if err != nil || !bytes.Equal(saved, good) {
		t.Fatalf("cache file: err %v, %d bytes; want the %d fetched bytes", err, len(saved), len(good))
	}
	// The cached copy answers, with IANA's columns.
	code, out, _ = run("info", "portctl-test-svc")
	for _, want := range []string{"47999", "RFC 0000; assignee Test Person; registered 2099-01-02", "note: Fetched, not built in"} {
		if code != ExitOK || !strings.Contains(out, want) {
			t.Errorf("after update: exit %d, output %q; want %q from the cache", code, out, want)
		}
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
	if code, out, _ = run("registry", "sources"); code != ExitOK || !strings.Contains(out, "cached") || !strings.Contains(out, "2099-01-02, fetched") {
		t.Errorf("registry sources after update: %d %q", code, out)
	}

	// A cache broken behind portctl's back is reported and passed over.
	os.WriteFile(cacheFile, []byte("garbage"), 0o644)
	code, _, stderr = run("info", "443")
	if code != ExitOK || !strings.Contains(stderr, "ignoring the cached registry") {
		t.Errorf("broken cache: exit %d, stderr %q", code, stderr)
	}
}

// TestRegistryUpdateFromIANAFile updates from IANA's own file, the one the
// built-in data is generated from, and reads IANA's columns back from the
// cache.
func TestRegistryUpdateFromIANAFile(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	from := filepath.Join("..", "..", "registry", "sources", "iana", "service-names-port-numbers.csv")
	streams, out, errb := term.Test("")
	if code := Run([]string{"registry", "update", "--from", from}, streams); code != ExitOK {
		t.Fatalf("registry update --from %s: exit %d, stderr %q", from, code, errb)
	}
	if !strings.Contains(out.String(), "newest entry 2025-03-28") {
		t.Errorf("registry update output %q; want the file's newest date, 2025-03-28", out)
	}
	reg := loadRegistry(streams)
	if srcs := reg.Sources(); !strings.Contains(srcs[0].Name, "cached") || !strings.HasPrefix(srcs[0].Version, "2025-03-28, fetched ") {
		t.Errorf("Sources()[0] = %+v; want the cached copy of 2025-03-28 first", srcs[0])
	}
	as := reg.Port(80, registry.TCP)
	if len(as) == 0 || as[0].Name != "http" || as[0].Reference != "[RFC9110]" || as[0].Assignee != "[IESG]" || as[0].Modified != "2021-10-01" {
		t.Errorf("Port(80, tcp) from the cache = %+v; want http with IANA's reference, assignee and date", as)
	}
}
