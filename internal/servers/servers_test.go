//go:build linux

package servers

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"syscall"
	"testing"
	"time"
)

// up starts a server with f and logs how long it took.
func up(t *testing.T, f func(testing.TB) *Server) *Server {
	t.Helper()
	began := time.Now()
	s := f(t)
	t.Logf("%s (package %s %s, PID %d) up in %v", s, s.Package, s.Version, s.PID, time.Since(began).Round(time.Millisecond))
	if s.Upstream == "" || !strings.Contains(s.Version, s.Upstream) {
		t.Errorf("%s: Version %q, Upstream %q", s.Name, s.Version, s.Upstream)
	}
	return s
}

// conn connects to s over TCP with a deadline for the whole exchange.
func conn(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.Addr.String(), 2*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// readLine reads one line from r without its line ending.
func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (so far %q)", err, line)
	}
	return strings.TrimRight(line, "\r\n")
}

func TestIntegrationNginx(t *testing.T) {
	t.Parallel()
	s := up(t, Nginx)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + s.Addr.String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.Header.Get("Server"), "nginx/"+s.Upstream; got != want {
		t.Errorf("Server header %q; want %q", got, want)
	}
	if want := "<title>" + PageTitle + "</title>"; !strings.Contains(string(body), want) {
		t.Errorf("page %q lacks %q", body, want)
	}
}

func TestIntegrationNginxTLS(t *testing.T) {
	t.Parallel()
	handshake := func(t *testing.T, s *Server, cfg *tls.Config) (tls.ConnectionState, error) {
		t.Helper()
		cfg.InsecureSkipVerify = true
		c := tls.Client(conn(t, s), cfg)
		err := c.Handshake()
		return c.ConnectionState(), err
	}
	t.Run("modern", func(t *testing.T) {
		t.Parallel()
		notAfter := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
		s := up(t, func(t testing.TB) *Server {
			return NginxTLS(t, TLSOptions{CommonName: "portctl.test", DNSNames: []string{"portctl.test", "www.portctl.test"}, NotAfter: notAfter})
		})
		cs, err := handshake(t, s, &tls.Config{NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		if cs.NegotiatedProtocol != "h2" || cs.Version != tls.VersionTLS13 {
			t.Errorf("negotiated %q over %s; want h2 over TLS 1.3", cs.NegotiatedProtocol, tls.VersionName(cs.Version))
		}
		cert := cs.PeerCertificates[0]
		if !cert.Equal(s.Cert) || cert.Subject.CommonName != "portctl.test" || !cert.NotAfter.Equal(notAfter) ||
			strings.Join(cert.DNSNames, ",") != "portctl.test,www.portctl.test" {
			t.Errorf("certificate CN %q, SANs %q, not after %v; want portctl.test, [portctl.test www.portctl.test], %v and Server.Cert",
				cert.Subject.CommonName, cert.DNSNames, cert.NotAfter, notAfter)
		}
		for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
			if _, err := handshake(t, s, &tls.Config{MinVersion: v, MaxVersion: v}); err == nil {
				t.Errorf("%s accepted; want TLS 1.2 and 1.3 only", tls.VersionName(v))
			}
		}
		// A verified HTTP/2 request, trusting the certificate.
		roots := x509.NewCertPool()
		roots.AddCert(s.Cert)
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: "www.portctl.test"},
			ForceAttemptHTTP2: true,
		}}
		defer client.CloseIdleConnections()
		resp, err := client.Get("https://" + s.Addr.String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.Header.Get("Server") != "nginx/"+s.Upstream {
			t.Errorf("%s, Server %q; want HTTP/2 and nginx/%s", resp.Proto, resp.Header.Get("Server"), s.Upstream)
		}
	})
	t.Run("legacy", func(t *testing.T) {
		t.Parallel()
		s := up(t, func(t testing.TB) *Server { return NginxTLS(t, TLSOptions{LegacyTLS: true}) })
		for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13} {
			if cs, err := handshake(t, s, &tls.Config{MinVersion: v, MaxVersion: v}); err != nil {
				t.Errorf("%s: %v", tls.VersionName(v), err)
			} else if cs.PeerCertificates[0].Subject.CommonName != "localhost" {
				t.Errorf("%s: CN %q; want localhost", tls.VersionName(v), cs.PeerCertificates[0].Subject.CommonName)
			}
		}
	})
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		s := up(t, func(t testing.TB) *Server {
			return NginxTLS(t, TLSOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
		})
		roots := x509.NewCertPool()
		roots.AddCert(s.Cert)
		c := tls.Client(conn(t, s), &tls.Config{RootCAs: roots, ServerName: "localhost"})
		var invalid x509.CertificateInvalidError
		if err := c.Handshake(); !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
			t.Errorf("verified handshake: %v; want an expired certificate", err)
		}
	})
}

func TestIntegrationSSHD(t *testing.T) {
	t.Parallel()
	s := up(t, SSHD)
	if line := readLine(t, bufio.NewReader(conn(t, s))); !strings.HasPrefix(line, "SSH-2.0-OpenSSH_"+s.Upstream+" ") {
		t.Errorf("banner %q; want SSH-2.0-OpenSSH_%s …", line, s.Upstream)
	}
}

func TestIntegrationSMTP(t *testing.T) {
	t.Parallel()
	s := up(t, SMTP)
	c := conn(t, s)
	tc := textproto.NewConn(c)
	_, greeting, err := tc.ReadResponse(220)
	if err != nil {
		t.Fatal(err)
	}
	if want := "ESMTP Exim " + s.Upstream + " "; !strings.Contains(greeting, want) {
		t.Errorf("greeting %q lacks %q", greeting, want)
	}
	if err := tc.PrintfLine("EHLO client.test"); err != nil {
		t.Fatal(err)
	}
	_, ehlo, err := tc.ReadResponse(250)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ehlo, "\nSTARTTLS") {
		t.Fatalf("EHLO answer %q lacks STARTTLS", ehlo)
	}
	if err := tc.PrintfLine("STARTTLS"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tc.ReadResponse(220); err != nil {
		t.Fatal(err)
	}
	tlsc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	if err := tlsc.Handshake(); err != nil {
		t.Fatalf("STARTTLS handshake: %v", err)
	}
	if !tlsc.ConnectionState().PeerCertificates[0].Equal(s.Cert) {
		t.Error("STARTTLS certificate is not Server.Cert")
	}
}

func TestIntegrationFTP(t *testing.T) {
	t.Parallel()
	s := up(t, FTP)
	if line, want := readLine(t, bufio.NewReader(conn(t, s))), "220 (vsFTPd "+s.Upstream+")"; line != want {
		t.Errorf("greeting %q; want %q", line, want)
	}
}

func TestIntegrationIMAP(t *testing.T) {
	t.Parallel()
	s := up(t, IMAP)
	c := conn(t, s)
	r := bufio.NewReader(c)
	greeting := readLine(t, r)
	for _, want := range []string{"Dovecot", "STARTTLS", "AUTH=PLAIN"} {
		if !strings.Contains(greeting, want) {
			t.Errorf("greeting %q lacks %q", greeting, want)
		}
	}
	if strings.Contains(greeting, "LOGINDISABLED") {
		t.Errorf("greeting %q: plaintext login disabled", greeting)
	}
	fmt.Fprintf(c, "a LOGIN someone anything\r\n")
	for {
		line := readLine(t, r)
		if strings.HasPrefix(line, "a ") {
			if !strings.HasPrefix(line, "a OK") {
				t.Errorf("LOGIN: %q; want a OK", line)
			}
			break
		}
	}
}

func TestIntegrationPOP3(t *testing.T) {
	t.Parallel()
	s := up(t, POP3)
	c := conn(t, s)
	r := bufio.NewReader(c)
	if line := readLine(t, r); !strings.HasPrefix(line, "+OK Dovecot") {
		t.Errorf("greeting %q; want +OK Dovecot…", line)
	}
	fmt.Fprintf(c, "CAPA\r\n")
	var capa []string
	for line := readLine(t, r); line != "."; line = readLine(t, r) {
		capa = append(capa, line)
	}
	for _, want := range []string{"STLS", "USER", "SASL PLAIN LOGIN"} {
		if !strings.Contains(strings.Join(capa, "\n")+"\n", "\n"+want+"\n") {
			t.Errorf("CAPA %q lacks %q", capa, want)
		}
	}
	fmt.Fprintf(c, "USER someone\r\nPASS anything\r\n")
	if a, b := readLine(t, r), readLine(t, r); !strings.HasPrefix(a, "+OK") || !strings.HasPrefix(b, "+OK") {
		t.Errorf("USER, PASS: %q, %q; want +OK twice", a, b)
	}
}

func TestIntegrationRedis(t *testing.T) {
	t.Parallel()
	s := up(t, Redis)
	c := conn(t, s)
	fmt.Fprintf(c, "INFO server\r\n")
	r := bufio.NewReader(c)
	var n int
	if line := readLine(t, r); len(line) < 2 || line[0] != '$' {
		t.Fatalf("INFO: %q; want a bulk string", line)
	} else if _, err := fmt.Sscan(line[1:], &n); err != nil {
		t.Fatal(err)
	}
	info := make([]byte, n)
	if _, err := io.ReadFull(r, info); err != nil {
		t.Fatal(err)
	}
	if want := "\r\nredis_version:" + s.Upstream + "\r\n"; !strings.Contains(string(info), want) {
		t.Errorf("INFO server lacks %q:\n%s", want, info)
	}
}

func TestIntegrationMemcached(t *testing.T) {
	t.Parallel()
	s := up(t, Memcached)
	if line, err := request(s.Addr, "version\r\n"); err != nil || line != "VERSION "+s.Upstream {
		t.Errorf("version: %q, %v; want VERSION %s", line, err, s.Upstream)
	}
}

func TestIntegrationMariaDB(t *testing.T) {
	t.Parallel()
	s := up(t, MariaDB)
	v, err := mysqlGreeting(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if want := s.Upstream + "-MariaDB"; !strings.Contains(v, want) {
		t.Errorf("handshake version %q lacks %q", v, want)
	}
}

func TestIntegrationPostgres(t *testing.T) {
	t.Parallel()
	s := up(t, Postgres)
	params, err := pgStartup(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if v := params["server_version"]; !strings.HasPrefix(v, s.Upstream+" ") && v != s.Upstream {
		t.Errorf("server_version %q; want %s…", v, s.Upstream)
	}
}

func TestIntegrationDNS(t *testing.T) {
	t.Parallel()
	s := up(t, DNS)
	for _, network := range []string{"udp", "tcp"} {
		if v, err := versionBind(network, s.Addr); err != nil || v != "dnsmasq-"+s.Upstream {
			t.Errorf("version.bind over %s: %q, %v; want dnsmasq-%s", network, v, err, s.Upstream)
		}
	}
}

func TestIntegrationNTP(t *testing.T) {
	t.Parallel()
	s := up(t, NTP)
	mode, stratum, err := ntpQuery(s.Addr)
	if err != nil || mode != 4 || stratum != 10 {
		t.Errorf("NTP reply mode %d, stratum %d, %v; want 4 (server), 10", mode, stratum, err)
	}
}

func TestIntegrationSNMP(t *testing.T) {
	t.Parallel()
	s := up(t, SNMP)
	reply, err := snmpGet(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	// A GetResponse PDU (0xa2) carrying the uname line.
	if !bytes.Contains(reply, []byte{'p', 'u', 'b', 'l', 'i', 'c', 0xa2}) || !bytes.Contains(reply, []byte("Linux")) {
		t.Errorf("reply %q; want a GetResponse with sysDescr Linux…", reply)
	}
}

func TestIntegrationTelnet(t *testing.T) {
	t.Parallel()
	s := up(t, Telnet)
	c := conn(t, s)
	var got []byte
	buf := make([]byte, 512)
	for !bytes.Contains(got, []byte(TelnetIssue)) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read: %v; got %q, want IAC… and %q", err, got, TelnetIssue)
		}
	}
	if got[0] != 0xff { // IAC: option negotiation first
		t.Errorf("first bytes %q; want IAC (0xff)", got)
	}
}

// TestIntegrationCleanup checks that a server is gone, with its port, once
// the test that started it ends.
func TestIntegrationCleanup(t *testing.T) {
	t.Parallel()
	var s *Server
	t.Run("start", func(t *testing.T) { s = up(t, Redis) })
	if s == nil {
		t.Skip("no server started")
	}
	if err := syscall.Kill(s.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("signal 0 to %s's PID %d: %v; want ESRCH", s, s.PID, err)
	}
	if c, err := net.DialTimeout("tcp", s.Addr.String(), time.Second); err == nil {
		c.Close()
		t.Errorf("%s still answers", s)
	}
}

// TestIntegrationStartRetries checks that start tries again on another
// port when the server exits complaining about its bind, as it does when
// the port it was given is taken meanwhile.
func TestIntegrationStartRetries(t *testing.T) {
	t.Parallel()
	var ports []uint16
	s := start(t, spec{
		name: "redis", pkg: "redis-server", bin: "redis-server", proto: "tcp",
		args: func(dir string, port uint16) []string {
			ports = append(ports, port)
			bind := "127.0.0.1"
			if len(ports) == 1 {
				bind = "192.0.2.1" // TEST-NET-1, on no interface here: bind fails
			}
			return []string{"--port", fmt.Sprint(port), "--bind", bind, "--save", "", "--dir", dir}
		},
		ready: ask("PING\r\n", "+PONG"),
	})
	if len(ports) != 2 || s.Addr.Port() != ports[1] {
		t.Errorf("started on %v after tries on ports %v; want the second of two", s.Addr, ports)
	}
}
