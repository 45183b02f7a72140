package probe

import (
	"encoding/asn1"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// The replies here are written by hand from each protocol's specification
// and the greetings the Debian packages send.

func TestMatchBanner(t *testing.T) {
	tests := []struct {
		name, in              string
		svc, product, version string
		extraKey, extraValue  string
		finding               string
	}{
		{"openssh", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", "ssh", "OpenSSH", "9.2p1", "os", "Debian", ""},
		{"dropbear", "SSH-2.0-dropbear_2022.83\r\n", "ssh", "Dropbear sshd", "2022.83", "protocol", "2.0", ""},
		{"exim", "220 mail.example ESMTP Exim 4.96 Sun, 22 Nov 2026 18:00:00 +0000\r\n", "smtp", "Exim smtpd", "4.96", "", "", ""},
		{"postfix", "220 mx.example ESMTP Postfix (Debian/GNU)\r\n", "smtp", "Postfix smtpd", "", "os", "Debian", ""},
		{"vsftpd", "220 (vsFTPd 3.0.3)\r\n", "ftp", "vsftpd", "3.0.3", "", "", ""},
		{"proftpd", "220 ProFTPD 1.3.8 Server (Debian) [::ffff:127.0.0.1]\r\n", "ftp", "ProFTPD", "1.3.8", "os", "Debian", ""},
		{"bare 220", "220 welcome\r\n", "smtp-or-ftp", "", "", "", "", ""},
		{"dovecot pop3", "+OK Dovecot (Debian) ready.\r\n", "pop3", "Dovecot", "", "os", "Debian", ""},
		{"dovecot imap", "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r\n", "imap", "Dovecot", "", "os", "Debian", ""},
		{"vnc", "RFB 003.008\n", "vnc", "", "", "protocol", "3.8", ""},
		{"rsync", "@RSYNCD: 31.0\n", "rsync", "", "", "protocol", "31.0", ""},
		{"telnet", "\xff\xfd\x18\xff\xfd\x20", "telnet", "", "", "", "", "plaintext-login"},
		{"mariadb", mysqlGreeting("5.5.5-10.11.6-MariaDB-0+deb12u1"), "mysql", "MariaDB", "10.11.6", "build", "0+deb12u1", ""},
		{"mysql", mysqlGreeting("8.0.36"), "mysql", "MySQL", "8.0.36", "", "", ""},
		{"mysql refusing", "\x45\x00\x00\x00\xff\x6a\x04Host '10.0.0.9' is not allowed to connect to this MariaDB server", "mysql", "", "", "refused", "Host '10.0.0.9' is not allowed to connect to this MariaDB server", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := matchBanner([]byte(tt.in))
			if !ok {
				t.Fatalf("matchBanner(%q) matched nothing", tt.in)
			}
			if s.Name != tt.svc || s.Product != tt.product || s.Version != tt.version {
				t.Errorf("matchBanner(%q) = %q %q %q; want %q %q %q", tt.in, s.Name, s.Product, s.Version, tt.svc, tt.product, tt.version)
			}
			if tt.extraKey != "" && s.Get(tt.extraKey) != tt.extraValue {
				t.Errorf("matchBanner(%q): %s = %q; want %q (extra %v)", tt.in, tt.extraKey, s.Get(tt.extraKey), tt.extraValue, s.Extra)
			}
			if tt.finding != "" && !hasFinding(s, tt.finding) {
				t.Errorf("matchBanner(%q): findings %v; want %s", tt.in, s.Findings, tt.finding)
			}
			if s.Evidence == "" {
				t.Errorf("matchBanner(%q): no evidence", tt.in)
			}
		})
	}
	for _, in := range []string{"", "hello\r\n", "HTTP/1.1 200 OK\r\n", "\x00\x00\x00\x00\x0a", "SSH-", "RFB 3.8\n"} {
		if s, ok := matchBanner([]byte(in)); ok {
			t.Errorf("matchBanner(%q) = %+v; want no match", in, s)
		}
	}
}

func mysqlGreeting(version string) string {
	body := append([]byte{0x0a}, version...)
	body = append(body, 0, 1, 0, 0, 0)
	body = append(body, "abcdefgh\x00"...)
	return string([]byte{byte(len(body)), 0, 0, 0}) + string(body)
}

func hasFinding(s Service, id string) bool {
	for _, f := range s.Findings {
		if f.ID == id {
			return true
		}
	}
	return false
}

func TestMatchHTTP(t *testing.T) {
	in := "HTTP/1.1 301 Moved Permanently\r\nServer: nginx/1.22.1\r\nLocation: https://example.net/\r\nAlt-Svc: h3=\":443\"; ma=86400\r\nContent-Length: 60\r\n\r\n<html><head><title>301 Moved\n  Permanently</title></head></html>"
	s, ok := matchHTTP([]byte(in))
	if !ok {
		t.Fatal("no match")
	}
	h := s.HTTP
	if s.Name != "http" || s.Product != "nginx" || s.Version != "1.22.1" || h.Status != 301 ||
		h.Location != "https://example.net/" || h.Title != "301 Moved Permanently" || len(h.Alt) != 1 || h.Alt[0] != "h3" {
		t.Errorf("matchHTTP = %+v %+v", s, h)
	}
	s, _ = matchHTTP([]byte("HTTP/1.1 200 OK\r\nServer: Apache/2.4.62 (Debian)\r\n\r\n"))
	if s.Product != "Apache httpd" || s.Version != "2.4.62" || s.Get("os") != "Debian" {
		t.Errorf("apache: %+v", s)
	}
	if _, ok := matchHTTP([]byte("HTTX/1.1 200")); ok {
		t.Error("matched a non-HTTP answer")
	}
}

func TestMatchAnswers(t *testing.T) {
	t.Run("redis open", func(t *testing.T) {
		s, ok := matchRedis([]byte("+PONG\r\n$100\r\n# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\nos:Linux 6.1.0 x86_64\r\n\r\n"))
		if !ok || s.Version != "7.0.15" || !hasFinding(s, "no-auth") {
			t.Errorf("matchRedis = %+v, %v", s, ok)
		}
	})
	t.Run("redis auth", func(t *testing.T) {
		s, ok := matchRedis([]byte("-NOAUTH Authentication required.\r\n-NOAUTH Authentication required.\r\n"))
		if !ok || s.Get("auth") != "required" || hasFinding(s, "no-auth") {
			t.Errorf("matchRedis = %+v, %v", s, ok)
		}
	})
	t.Run("memcached", func(t *testing.T) {
		s, ok := matchMemcached([]byte("VERSION 1.6.18\r\n"))
		if !ok || s.Version != "1.6.18" {
			t.Errorf("matchMemcached = %+v, %v", s, ok)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		if s, ok := matchPostgresSSL([]byte("N")); !ok || s.Get("ssl") != "not offered" {
			t.Errorf("matchPostgresSSL = %+v, %v", s, ok)
		}
		body := []byte("SFATAL\x00VFATAL\x00C28000\x00Mrole \"portctl\" does not exist\x00\x00")
		msg := append([]byte{'E'}, binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))...)
		msg = append(msg, body...)
		if s, ok := matchPostgres(msg); !ok || !strings.HasPrefix(s.Get("error"), "28000 role") {
			t.Errorf("matchPostgres = %+v, %v", s, ok)
		}
		if s, ok := matchPostgres([]byte("R\x00\x00\x00\x0c\x00\x00\x00\x0aSCRAM")); !ok || s.Get("auth") != "SASL (SCRAM)" {
			t.Errorf("matchPostgres(SASL) = %+v, %v", s, ok)
		}
	})
	t.Run("ntp", func(t *testing.T) {
		b := make([]byte, 48)
		b[0], b[1] = 0<<6|4<<3|4, 2
		copy(b[12:], []byte{192, 0, 2, 1})
		s, ok := matchNTP(b)
		if !ok || s.Get("stratum") != "2" || s.Get("refid") != "192.0.2.1" {
			t.Errorf("matchNTP = %+v, %v", s, ok)
		}
		ctl := append([]byte{0x16, 0x82, 0, 1, 0, 0, 0, 0, 0, 0, 0, 40}, `version="ntpd ntpsec-1.2.2 2023-05-25T10:14:26Z", leap=00`...)
		if !matchNTPControl(&s, ctl) || s.Product != "NTPsec" || s.Version != "1.2.2" {
			t.Errorf("matchNTPControl = %+v", s)
		}
	})
	t.Run("snmp", func(t *testing.T) {
		pdu, _ := asn1.MarshalWithParams(snmpPDU{RequestID: probeID, VarBinds: []snmpVarBind{
			{oidSysDescr, asn1.RawValue{Tag: asn1.TagOctetString, Bytes: []byte("Linux h 6.1.0 x86_64")}},
			{oidSysObjectID, oidRaw(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 8072, 3, 2, 10})},
			{oidVersionTag, asn1.RawValue{Tag: asn1.TagOctetString, Bytes: []byte("5.9.3")}},
		}}, "tag:2")
		b, _ := asn1.Marshal(snmpMessage{Version: 1, Community: []byte("public"), PDU: asn1.RawValue{FullBytes: pdu}})
		s, ok := matchSNMP(b)
		if !ok || s.Product != "net-snmp" || s.Version != "5.9.3" || s.Get("sysDescr") != "Linux h 6.1.0 x86_64" {
			t.Errorf("matchSNMP = %+v, %v", s, ok)
		}
		if _, ok := matchSNMP(snmpGet()); ok {
			t.Error("matchSNMP took our own request for an answer")
		}
	})
	t.Run("quic", func(t *testing.T) {
		b := []byte{0x80, 0, 0, 0, 0, 8}
		b = append(b, "probe\x70\x63\x00"...)
		b = append(b, 8)
		b = append(b, "portctl\x00"...)
		b = append(b, 0, 0, 0, 1, 0x6b, 0x33, 0x43, 0xcf)
		s, ok := matchQUIC(b)
		if !ok || s.Get("versions") != "1, 2" {
			t.Errorf("matchQUIC = %+v, %v", s, ok)
		}
	})
}

func oidRaw(o asn1.ObjectIdentifier) asn1.RawValue {
	b, _ := asn1.Marshal(o)
	var r asn1.RawValue
	asn1.Unmarshal(b, &r)
	return r
}

func TestDaysUntil(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		t    time.Time
		want int
	}{
		{now.Add(48 * time.Hour), 2},
		{now.Add(47 * time.Hour), 1},
		{now.Add(-time.Hour), -1},
		{now.Add(-24 * time.Hour), -1},
		{now.Add(-25 * time.Hour), -2},
	} {
		if got := daysUntil(now, tt.t); got != tt.want {
			t.Errorf("daysUntil(now, %v) = %d; want %d", tt.t, got, tt.want)
		}
	}
}

func TestEscape(t *testing.T) {
	if got, want := Escape([]byte("a\r\n\x00\xff\\")), `a\r\n\x00\xff\\`; got != want {
		t.Errorf("Escape = %q; want %q", got, want)
	}
	if got := Escape(make([]byte, 300)); !strings.HasSuffix(got, "…") || len(got) != 256*4+len("…") {
		t.Errorf("Escape(300 zero bytes) = %d bytes", len(got))
	}
}

// FuzzMatchers feeds arbitrary bytes to every matcher: none may panic.
func FuzzMatchers(f *testing.F) {
	for _, s := range []string{"SSH-2.0-OpenSSH_9.2p1\r\n", "220 (vsFTPd 3.0.3)\r\n", "+OK\r\n", "* OK\r\n",
		mysqlGreeting("10.11.6-MariaDB"), "RFB 003.008\n", "HTTP/1.1 200 OK\r\n\r\n<title>x</title>",
		"+PONG\r\n", "VERSION 1\r\n", "N", "E\x00\x00\x00\x08C\x00\x00", "\x80\x00\x00\x00\x00\x08probepc\x00"} {
		f.Add([]byte(s))
	}
	f.Add(snmpGet())
	f.Add(dnsVersionBind())
	for _, tt := range replyTests {
		f.Add(readReply(f, tt.file))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		matchBanner(b)
		matchHTTP(b)
		matchRedis(b)
		matchMemcached(b)
		matchPostgresSSL(b)
		matchPostgres(b)
		matchDNS(b, false)
		matchDNS(b, true)
		matchNTP(b)
		var s Service
		matchNTPControl(&s, b)
		matchSNMP(b)
		matchQUIC(b)
		for _, tt := range replyTests {
			tt.match(b)
		}
		matchAMQP(b)
		mqttDone(b)
		ldapComplete(b)
		ircDone(b)
		hint(b)
		Escape(b)
	})
}
