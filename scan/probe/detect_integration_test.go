package probe_test

import (
	"context"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/servers"
	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan/probe"
)

// detect runs Detect against a server a test started, logging what it found.
func detect(t *testing.T, srv *servers.Server, cfg probe.Config) probe.Service {
	t.Helper()
	proto := registry.TCP
	if srv.Proto == "udp" {
		proto = registry.UDP
	}
	start := time.Now()
	s := probe.Detect(context.Background(), cfg, probe.Target{Addr: srv.Addr, Proto: proto})
	t.Logf("%s: %s %q %q %v (evidence %q, probe %s, %v)", srv, s.Name, s.Product, s.Version, s.Extra, s.Evidence, s.Probe, time.Since(start).Round(time.Millisecond))
	return s
}

func findingIDs(s probe.Service) []string {
	var ids []string
	for _, f := range s.Findings {
		ids = append(ids, f.ID)
	}
	return ids
}

// TestIntegrationDetect identifies each real server, started from its
// Debian package, by service, product and (where the server tells it) the
// version the package installed.
func TestIntegrationDetect(t *testing.T) {
	tests := []struct {
		name          string
		start         func(testing.TB) *servers.Server
		svc, product  string
		version       bool   // the server tells its version: it must be the package's
		extraKey, val string // a fact that must be found
		finding       string // a finding that must be made
		starttls      bool   // STARTTLS must be done, showing the server's certificate
	}{
		{name: "nginx", start: servers.Nginx, svc: "http", product: "nginx", version: true},
		{name: "openssh", start: servers.SSHD, svc: "ssh", product: "OpenSSH", version: true, extraKey: "os", val: "Debian"},
		{name: "exim", start: servers.SMTP, svc: "smtp", product: "Exim smtpd", version: true, extraKey: "starttls", val: "offered", starttls: true},
		{name: "vsftpd", start: servers.FTP, svc: "ftp", product: "vsftpd", version: true, finding: "plaintext-login"},
		{name: "dovecot imap", start: servers.IMAP, svc: "imap", product: "Dovecot", extraKey: "starttls", val: "offered", finding: "login-before-tls", starttls: true},
		{name: "dovecot pop3", start: servers.POP3, svc: "pop3", product: "Dovecot", extraKey: "starttls", val: "offered", finding: "login-before-tls", starttls: true},
		{name: "redis", start: servers.Redis, svc: "redis", product: "Redis key-value store", version: true, finding: "no-auth"},
		{name: "memcached", start: servers.Memcached, svc: "memcached", product: "Memcached", version: true, finding: "no-auth"},
		{name: "mariadb", start: servers.MariaDB, svc: "mysql", product: "MariaDB", version: true},
		{name: "postgresql", start: servers.Postgres, svc: "postgresql", product: "PostgreSQL DB"},
		{name: "dnsmasq udp", start: servers.DNS, svc: "domain", product: "dnsmasq", version: true},
		{name: "chrony", start: servers.NTP, svc: "ntp", extraKey: "stratum", val: "10"},
		{name: "snmpd", start: servers.SNMP, svc: "snmp", product: "net-snmp", version: true, finding: "default-community"},
		{name: "telnetd", start: servers.Telnet, svc: "telnet", finding: "plaintext-login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := tt.start(t)
			s := detect(t, srv, probe.Config{})
			if s.Name != tt.svc || s.Product != tt.product {
				t.Errorf("%s: detected %q product %q; want %q product %q", srv, s.Name, s.Product, tt.svc, tt.product)
			}
			if tt.version && s.Version != srv.Upstream {
				t.Errorf("%s: version %q; want %q, from package %s %s", srv, s.Version, srv.Upstream, srv.Package, srv.Version)
			}
			if tt.extraKey != "" && s.Get(tt.extraKey) != tt.val {
				t.Errorf("%s: %s = %q; want %q (extra %v)", srv, tt.extraKey, s.Get(tt.extraKey), tt.val, s.Extra)
			}
			if tt.finding != "" && !slices.Contains(findingIDs(s), tt.finding) {
				t.Errorf("%s: findings %v; want %s", srv, findingIDs(s), tt.finding)
			}
			if tt.starttls {
				if s.StartTLS == nil || s.StartTLS.Cert == nil || srv.Cert == nil || s.StartTLS.Cert.Subject != srv.Cert.Subject.String() {
					t.Errorf("%s: STARTTLS %+v; want the server's certificate", srv, s.StartTLS)
				}
			}
			if s.Evidence == "" || s.Confidence < 6 {
				t.Errorf("%s: evidence %q, confidence %d", srv, s.Evidence, s.Confidence)
			}
		})
	}
}

// TestIntegrationDetectDNSOverTCP asks dnsmasq on its TCP port.
func TestIntegrationDetectDNSOverTCP(t *testing.T) {
	srv := servers.DNS(t)
	tcp := *srv
	tcp.Proto = "tcp"
	s := detect(t, &tcp, probe.Config{})
	if s.Name != "domain" || s.Product != "dnsmasq" || s.Version != srv.Upstream {
		t.Errorf("DNS over TCP: %q %q %q; want domain dnsmasq %s", s.Name, s.Product, s.Version, srv.Upstream)
	}
}

// TestIntegrationDetectTLS checks the TLS details against nginx serving
// certificates the test made: modern, legacy, expired and soon expiring.
func TestIntegrationDetectTLS(t *testing.T) {
	now := time.Now()
	t.Run("modern", func(t *testing.T) {
		t.Parallel()
		srv := servers.NginxTLS(t, servers.TLSOptions{CommonName: "portctl.test", DNSNames: []string{"portctl.test", "www.portctl.test"},
			NotAfter: now.Add(90 * 24 * time.Hour)})
		s := detect(t, srv, probe.Config{})
		if s.TLS == nil {
			t.Fatalf("%s: no TLS found: %+v", srv, s)
		}
		c := s.TLS.Cert
		if s.Name != "http" || s.Product != "nginx" || s.Version != srv.Upstream {
			t.Errorf("inside TLS: %q %q %q; want http nginx %s", s.Name, s.Product, s.Version, srv.Upstream)
		}
		if s.TLS.Version != "TLS 1.3" || s.TLS.ALPN != "h2" || s.TLS.Cipher == "" {
			t.Errorf("TLS %+v; want TLS 1.3 with ALPN h2", s.TLS)
		}
		if c == nil || !strings.Contains(c.Subject, "CN=portctl.test") || !slices.Contains(c.SANs, "www.portctl.test") ||
			!c.SelfSigned || c.DaysLeft < 88 || c.DaysLeft > 90 {
			t.Errorf("certificate %+v", c)
		}
		if len(s.TLS.Legacy) != 0 || slices.Contains(findingIDs(s), "tls-legacy") {
			t.Errorf("legacy TLS reported on a server without it: %v %v", s.TLS.Legacy, findingIDs(s))
		}
		if !slices.Contains(findingIDs(s), "cert-self-signed") || slices.Contains(findingIDs(s), "cert-expiring") {
			t.Errorf("findings %v; want cert-self-signed only", findingIDs(s))
		}
	})
	t.Run("legacy", func(t *testing.T) {
		t.Parallel()
		srv := servers.NginxTLS(t, servers.TLSOptions{LegacyTLS: true})
		s := detect(t, srv, probe.Config{})
		if s.TLS == nil || !slices.Equal(s.TLS.Legacy, []string{"TLS 1.0", "TLS 1.1"}) || !slices.Contains(findingIDs(s), "tls-legacy") {
			t.Errorf("legacy: %+v, findings %v; want TLS 1.0 and 1.1 found", s.TLS, findingIDs(s))
		}
	})
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		srv := servers.NginxTLS(t, servers.TLSOptions{NotBefore: now.Add(-60 * 24 * time.Hour), NotAfter: now.Add(-36 * time.Hour)})
		s := detect(t, srv, probe.Config{})
		if s.TLS == nil || s.TLS.Cert == nil || s.TLS.Cert.DaysLeft != -2 || !slices.Contains(findingIDs(s), "cert-expired") {
			t.Errorf("expired: %+v, findings %v", s.TLS, findingIDs(s))
		}
	})
	t.Run("expiring", func(t *testing.T) {
		t.Parallel()
		srv := servers.NginxTLS(t, servers.TLSOptions{NotAfter: now.Add(10*24*time.Hour + time.Hour)})
		s := detect(t, srv, probe.Config{})
		if s.TLS == nil || s.TLS.Cert == nil || s.TLS.Cert.DaysLeft != 10 || !slices.Contains(findingIDs(s), "cert-expiring") {
			t.Errorf("expiring: %+v, findings %v", s.TLS, findingIDs(s))
		}
	})
}

// TestIntegrationDetectMisbehaving covers ports that send garbage, close at
// once or never answer: each is "unknown", with what it sent, within the
// time budget.
func TestIntegrationDetectMisbehaving(t *testing.T) {
	tests := []struct {
		name  string
		serve func(net.Conn)
		note  string
		evid  string
	}{
		{"garbage", func(c net.Conn) { c.Write([]byte("\x00\x01\xfe garbage \xff\r\n")); time.Sleep(time.Second) }, "answers not recognised", `\x00\x01\xfe garbage \xff\r\n`},
		{"closes at once", func(net.Conn) {}, "closes the connection without sending anything", ""},
		{"silent", func(c net.Conn) { io.Copy(io.Discard, c) }, "never answered", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := testnet.Serve(t, "127.0.0.1:0", tt.serve)
			budget := 3 * time.Second
			start := time.Now()
			s := probe.Detect(context.Background(), probe.Config{Timeout: 300 * time.Millisecond, Budget: budget},
				probe.Target{Addr: addr, Proto: registry.TCP})
			took := time.Since(start)
			if s.Name != probe.Unknown || !strings.HasPrefix(s.Get("note"), tt.note) || s.Evidence != tt.evid {
				t.Errorf("%s: %+v; want unknown, note %q, evidence %q", tt.name, s, tt.note, tt.evid)
			}
			if took > budget+2*time.Second { // the silent server holds on until Detect hangs up
				t.Errorf("%s: took %v, over the %v budget", tt.name, took, budget)
			}
		})
	}
}
