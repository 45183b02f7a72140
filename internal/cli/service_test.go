package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portctl/portctl/internal/servers"
)

// TestIntegrationScanService runs `portctl scan -sV` against real servers
// and checks every output: the table's VERSION column and findings, the
// JSONL "detected" object, nmap XML's <service> (valid against nmap's DTD)
// and the grepable version field.
func TestIntegrationScanService(t *testing.T) {
	web, redis, ssh := servers.Nginx(t), servers.Redis(t), servers.SSHD(t)
	ports := fmt.Sprintf("%d,%d,%d", web.Addr.Port(), redis.Addr.Port(), ssh.Addr.Port())
	dir := t.TempDir()
	xmlFile, grepFile := filepath.Join(dir, "scan.xml"), filepath.Join(dir, "scan.gnmap")
	code, out, errOut := runCLI(t, "scan", "-sT", "-sV", "-p", ports, "127.0.0.1", "-oX", xmlFile, "-oG", grepFile)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"VERSION", "nginx " + web.Upstream, "Redis key-value store " + redis.Upstream,
		"OpenSSH " + ssh.Upstream, "no-auth: Redis answers without authentication"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	xml, err := os.ReadFile(xmlFile)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`<service name="http" product="nginx" version="%s" method="probed" conf="10"`, web.Upstream)
	if !strings.Contains(string(xml), want) {
		t.Errorf("XML lacks %s:\n%s", want, xml)
	}
	if _, err := exec.LookPath("xmllint"); err == nil {
		if out, err := exec.Command("xmllint", "--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd", xmlFile).CombinedOutput(); err != nil {
			t.Errorf("xmllint: %v\n%s", err, out)
		}
	}
	grep, err := os.ReadFile(grepFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d/open/tcp//ssh//OpenSSH %s (", ssh.Addr.Port(), ssh.Upstream); !strings.Contains(string(grep), want) {
		t.Errorf("grepable lacks %q:\n%s", want, grep)
	}

	code, out, errOut = runCLI(t, "scan", "-sT", "-sV", "-p", ports, "127.0.0.1", "--jsonl")
	if code != 0 {
		t.Fatalf("--jsonl: exit %d: %s", code, errOut)
	}
	found := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			Type     string `json:"type"`
			Port     uint16 `json:"port"`
			Detected *struct {
				Name, Product, Version string
			} `json:"detected"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if r.Type == "port" && r.Port == redis.Addr.Port() && r.Detected != nil &&
			r.Detected.Name == "redis" && r.Detected.Version == redis.Upstream {
			found++
		}
	}
	if found != 1 {
		t.Errorf("--jsonl: redis detected %d times:\n%s", found, out)
	}
}

// TestIntegrationCheckService checks `check --service` on TLS nginx: the
// certificate and the findings in the detail.
func TestIntegrationCheckService(t *testing.T) {
	srv := servers.NginxTLS(t, servers.TLSOptions{LegacyTLS: true})
	code, out, errOut := runCLI(t, "check", srv.Addr.String(), "--service")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"ssl/http", "nginx " + srv.Upstream, "subject", "CN=localhost", "self-signed", "days left",
		"MEDIUM tls-legacy", "TLS 1.0 and TLS 1.1 accepted"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
