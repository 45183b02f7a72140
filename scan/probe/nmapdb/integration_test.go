package nmapdb

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/registry"
)

// nmapFiles are where nmap packages install nmap-service-probes.
var nmapFiles = []string{
	"/usr/share/nmap/nmap-service-probes",
	"/usr/local/share/nmap/nmap-service-probes",
	"/opt/homebrew/share/nmap/nmap-service-probes",
}

// installedDB parses the installed nmap-service-probes, or skips.
func installedDB(tb testing.TB) (*DB, time.Duration) {
	tb.Helper()
	for _, name := range nmapFiles {
		if _, err := os.Stat(name); err != nil {
			continue
		}
		start := time.Now()
		db := parseFile(tb, name)
		return db, time.Since(start)
	}
	tb.Skipf("nmap is not installed: no nmap-service-probes in %s", strings.Join(nmapFiles, ", "))
	return nil, 0
}

// mysqlGreeting returns a MySQL protocol 10 handshake packet.
func mysqlGreeting(version string) []byte {
	var p []byte
	p = append(p, 0x0a)
	p = append(p, version...)
	p = append(p, 0)
	p = binary.LittleEndian.AppendUint32(p, 11) // connection id
	p = append(p, "abcdefgh\x00"...)            // auth data, filler
	p = append(p, 0xff, 0xff, 0xff, 0x02, 0x00, 0xff, 0xdf, 0x15)
	p = append(p, make([]byte, 10)...)
	p = append(p, "ijklmnopqrst\x00caching_sha2_password\x00"...)
	hdr := []byte{byte(len(p)), byte(len(p) >> 8), byte(len(p) >> 16), 0}
	return append(hdr, p...)
}

func TestIntegrationNmapServiceProbes(t *testing.T) {
	db, took := installedDB(t)
	matches, soft := 0, 0
	for _, p := range db.Probes {
		matches += len(p.Matches)
		for _, m := range p.Matches {
			if m.Soft {
				soft++
			}
		}
	}
	t.Logf("parsed %d probes, %d match lines (%d soft) in %v", len(db.Probes), matches, soft, took)
	if len(db.Probes) <= 100 || matches <= 5000 {
		t.Errorf("Parse found %d probes and %d match lines; want more than 100 and 5000", len(db.Probes), matches)
	}
	if db.ProbeFor(registry.TCP, NullProbe) == nil || db.Probe("GetRequest") == nil {
		t.Fatalf("no NULL or GetRequest probe")
	}
	if db.Exclude.TCP.String() == "" {
		t.Errorf("Exclude is empty; nmap's file excludes printer ports")
	}

	// Every pattern, compiled: how many the translation cannot carry over.
	start := time.Now()
	failed, badTemplates := 0, 0
	for _, p := range db.Probes {
		for _, m := range p.Matches {
			if err := m.Err(); err != nil {
				failed++
				t.Logf("does not compile: %v", err)
			}
			for _, tmpl := range append(m.templates[:], m.cpe...) {
				if tmpl.err != nil {
					badTemplates++
					t.Logf("line %d: template: %v", m.Line, tmpl.err)
				}
			}
		}
	}
	t.Logf("compiled %d patterns in %v: %d (%.2f%%) do not compile; %d templates do not parse",
		matches, time.Since(start), failed, 100*float64(failed)/float64(matches), badTemplates)
	if failed*100 >= matches {
		t.Errorf("%d of %d patterns do not compile; want under 1%%", failed, matches)
	}

	tests := []struct {
		name, probe string
		resp        []byte
		service     string
		product     string // a part of the product
		version     string // a prefix of the version
		soft        bool
	}{
		{"OpenSSH banner", "NULL", []byte("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"), "ssh", "OpenSSH", "9.2p1", false},
		{
			"nginx", "GetRequest",
			[]byte("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 06 May 2024 10:00:00 GMT\r\n" +
				"Content-Type: text/html\r\nContent-Length: 615\r\nConnection: close\r\n\r\n<!DOCTYPE html>\n<html>\n"),
			"http", "nginx", "1.22.1", false,
		},
		{"Redis answering HTTP", "GetRequest", []byte("-ERR wrong number of arguments for 'get' command\r\n"), "redis", "Redis", "", false},
		{
			"Redis INFO", "redis-server",
			[]byte("$3717\r\n# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\n"),
			"redis", "Redis", "7.0.15", false,
		},
		{"MySQL greeting", "NULL", mysqlGreeting("8.0.35"), "mysql", "MySQL", "8.0.35", false},
		{"ProFTPD banner", "NULL", []byte("220 ProFTPD 1.3.8 Server (Debian) [::ffff:192.0.2.7]\r\n"), "ftp", "ProFTPD", "1.3.8", false},
		{"FTP banner without a product", "NULL", []byte("220 ProFTPD Server (Debian) [::ffff:192.0.2.7]\r\n"), "ftp", "", "", true},
		{"Postfix banner", "NULL", []byte("220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n"), "smtp", "Postfix", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := db.ProbeFor(registry.TCP, tt.probe)
			if p == nil {
				t.Skipf("this nmap-service-probes has no TCP probe %s", tt.probe)
			}
			start := time.Now()
			got, ok := db.MatchAll(p, tt.resp)
			t.Logf("MatchAll(%s, %.40q) = %+v in %v", tt.probe, tt.resp, got, time.Since(start))
			if !ok || got.Service != tt.service || !strings.Contains(got.Product, tt.product) ||
				!strings.HasPrefix(got.Version, tt.version) || got.Soft != tt.soft {
				t.Errorf("MatchAll(%s, %q) = %q %q %q soft %v, %v; want service %q, product with %q, version starting %q, soft %v",
					tt.probe, tt.resp, got.Service, got.Product, got.Version, got.Soft, ok, tt.service, tt.product, tt.version, tt.soft)
			}
		})
	}
}
