package cli

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/servers"
)

func TestServeUsageErrors(t *testing.T) {
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"serve", "--listen", "0.0.0.0:9753"}, []string{"0.0.0.0:9753", "--token"}},
		{[]string{"serve", "--listen", ":9753"}, []string{":9753", "--token"}},
		{[]string{"serve", "--listen", "9753"}, []string{"9753", "ADDR:PORT"}},
		{[]string{"serve", "--listen", "127.0.0.1:http"}, []string{"http", "0 to 65535"}},
		{[]string{"serve", "--listen", "127.0.0.1:70000"}, []string{"70000", "0 to 65535"}},
		{[]string{"serve", "--listen", "example.com:80"}, []string{"example.com", "IP address"}},
		{[]string{"serve", "--token", "short"}, []string{"5 characters", "at least 16"}},
		{[]string{"serve", "--token", "0123456789abcdef", "--token-file", short}, []string{"one or the other"}},
		{[]string{"serve", "--token-file", "/nope/token"}, []string{"/nope/token"}},
		{[]string{"serve", "--token-file", short}, []string{"at least 16"}},
		{[]string{"serve", "--token-file", empty}, []string{"empty"}},
		{[]string{"serve", "--interval", "1ms"}, []string{"1ms", "100ms"}},
		{[]string{"serve", "--interval", "soon"}, []string{"soon"}},
		{[]string{"serve", "extra"}, []string{"extra"}},
		{[]string{"serve", "--netns", "portctl-no-such-ns"}, []string{`--netns "portctl-no-such-ns"`, "ip netns list"}},
		{[]string{"serve", "--tls-cert", short}, []string{"--tls-key", "both"}},
		{[]string{"serve", "--tls-cert", short, "--tls-key", empty}, []string{short}},
	} {
		code, _, stderr := runCLI(t, tt.args...)
		if code != ExitUsage || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("portctl %q: exit %d, stderr %q; want %d and one line", tt.args, code, stderr, ExitUsage)
		}
		for _, w := range tt.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("portctl %q: stderr %q lacks %q", tt.args, stderr, w)
			}
		}
	}
}

// TestIntegrationServeKill runs `portctl serve --allow-kill` as a user
// would, and stops a real listener through the API: the kill goes through
// the kill command's own logic.
func TestIntegrationServeKill(t *testing.T) {
	requireRoot(t)
	holder, port := startHelper(t, "listen", "127.0.0.1:0")
	const token = "serve-test-token-0123456789"
	base := startServe(t, "--listen", "127.0.0.1:0", "--token", token, "--allow-kill", "--interval", "200ms")
	call := func(method, path, body string, hdr map[string]string) (int, map[string]any) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v
	}
	if code, _ := call("GET", "/api/v1/session", "", map[string]string{"Authorization": ""}); code != 401 {
		t.Errorf("GET /api/v1/session without the token: %d; want 401", code)
	}
	code, sess := call("GET", "/api/v1/session", "", nil)
	csrf, _ := sess["csrf_token"].(string)
	if code != 200 || csrf == "" || sess["allow_kill"] != true {
		t.Fatalf("GET /api/v1/session: %d %v", code, sess)
	}
	p := strconv.Itoa(int(port))
	hdr := map[string]string{"Content-Type": "application/json", "X-CSRF-Token": csrf}
	if code, _ := call("POST", "/api/v1/ports/"+p+"/kill", `{"confirm":"1"}`, hdr); code != 400 {
		t.Errorf("kill with the wrong confirmation: %d; want 400", code)
	}
	if exited(holder, 0) {
		t.Fatal("the holder exited before the confirmed kill")
	}
	code, res := call("POST", "/api/v1/ports/"+p+"/kill", `{"confirm":"`+p+`"}`, hdr)
	if code != 200 || res["freed"] != true {
		t.Errorf("kill confirmed: %d %v; want 200 and freed", code, res)
	}
	if !exited(holder, 5*time.Second) {
		t.Errorf("the holder still runs after the kill")
	}
}

// startServe runs `portctl serve ARGS…` as a user would, and returns the
// dashboard's address as it printed it. SIGINT stops it when the test
// ends, and it must then exit 0 within 10 s.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--", "serve"}, args...)...)
	cmd.Env = append(os.Environ(), "PORTCTL_TEST_HELPER=portctl")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("portctl serve after SIGINT: %v; want exit 0", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("portctl serve did not stop within 10 s of SIGINT")
		}
	})
	line, _ := bufio.NewReader(stderr).ReadString('\n')
	m := regexp.MustCompile(`(https?://127\.0\.0\.1:\d+)/`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("portctl serve said %q; want the dashboard's address", line)
	}
	go io.Copy(io.Discard, stderr)
	return m[1]
}

// TestServeTLS serves HTTPS with a certificate from files: the token
// works over it, and plain HTTP is refused.
func TestServeTLS(t *testing.T) {
	certFile, keyFile := servers.KeyPairFiles(t, servers.TLSOptions{IPAddresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	const token = "tls-test-token-0123456789"
	base := startServe(t, "--listen", "127.0.0.1:0", "--token", token, "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("portctl serve with a certificate said %s; want https://", base)
	}
	pemBytes, _ := os.ReadFile(certFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, tt := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer " + token, 200}} {
		req, _ := http.NewRequest("GET", base+"/api/v1/session", nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET over TLS: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want || resp.TLS == nil {
			t.Errorf("GET %s/api/v1/session (auth %q): %d; want %d over TLS", base, tt.auth, resp.StatusCode, tt.want)
		}
	}
	resp, err := http.Get("http" + strings.TrimPrefix(base, "https") + "/api/v1/session")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("plain HTTP to the HTTPS dashboard: 200; want a refusal")
		}
	}
}
