package probe

import (
	"bytes"
	"encoding/binary"
	"regexp"
	"strings"

	"github.com/portctl/portctl/registry"
)

// This file holds the matchers for what a server says before it is asked
// anything: SSH, SMTP, FTP, POP3, IMAP, MySQL, VNC, rsync and Telnet all
// speak first. Each takes the bytes received and reports a Service when
// they are that protocol's greeting.

// matchBanner identifies a greeting. It returns false when the bytes are
// no greeting it knows. Its Evidence is the greeting's first line.
func matchBanner(b []byte) (Service, bool) {
	for _, m := range bannerMatchers {
		if s, ok := m(b); ok {
			s.Probe = "banner"
			if s.Evidence == "" {
				s.Evidence = Escape(firstLine(b))
			}
			return s, true
		}
	}
	return Service{}, false
}

var bannerMatchers = []func([]byte) (Service, bool){
	matchSSH, matchMail, matchMySQL, matchVNC, matchRsync, matchTelnet, matchNATS, matchSVN, matchIRCGreeting, matchMunin, matchGPSD, matchMPD,
}

// matchIRCGreeting recognises the NOTICE an IRC server sends a client as
// it connects; detect then registers to learn the software (follow).
func matchIRCGreeting(b []byte) (Service, bool) {
	s, ok := matchIRC(b)
	if !ok || !bytes.Contains(b, []byte(" NOTICE ")) {
		return Service{}, false
	}
	return s, true
}

// matchSSH reads the identification string of RFC 4253 §4.2:
// "SSH-protoversion-softwareversion SP comments".
func matchSSH(b []byte) (Service, bool) {
	if !bytes.HasPrefix(b, []byte("SSH-")) {
		return Service{}, false
	}
	line := printable(firstLine(b))
	rest := line[len("SSH-"):]
	proto, soft, ok := strings.Cut(rest, "-")
	if !ok || proto == "" {
		return Service{}, false
	}
	s := Service{Name: "ssh", Confidence: 10}
	soft, comment, _ := strings.Cut(soft, " ")
	product, version := splitProduct(soft, "_")
	switch strings.ToLower(product) {
	case "openssh":
		product = "OpenSSH"
	case "dropbear":
		product = "Dropbear sshd"
	}
	s.Product, s.Version = product, version
	if os, build, ok := strings.Cut(comment, "-"); ok && os != "" {
		s.add("os", os)
		s.add("build", build)
	} else {
		s.add("comment", comment)
	}
	s.add("protocol", proto)
	return s, true
}

// splitProduct splits "name<sep>version" where the version starts with a
// digit: "OpenSSH_9.2p1", "nginx/1.22.1".
func splitProduct(s, sep string) (product, version string) {
	if i := strings.Index(s, sep); i > 0 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// mailProducts name the software in SMTP, FTP, POP3 and IMAP greetings.
// The first group, when present, is the version.
var mailProducts = []struct {
	re      *regexp.Regexp
	product string
	service string // "" when the greeting's protocol decides
}{
	{regexp.MustCompile(`\bExim ([0-9][0-9.]*)`), "Exim smtpd", "smtp"},
	{regexp.MustCompile(`\bPostfix\b`), "Postfix smtpd", "smtp"},
	{regexp.MustCompile(`\bSendmail ([0-9][0-9.]*)`), "Sendmail", "smtp"},
	{regexp.MustCompile(`\bOpenSMTPD\b`), "OpenSMTPD", "smtp"},
	{regexp.MustCompile(`Microsoft ESMTP MAIL Service`), "Microsoft ESMTP", "smtp"},
	{regexp.MustCompile(`\bvsFTPd ([0-9][0-9.]*)`), "vsftpd", "ftp"},
	{regexp.MustCompile(`\bProFTPD(?: ([0-9][0-9.a-z]*))?`), "ProFTPD", "ftp"},
	{regexp.MustCompile(`\bPure-FTPd\b`), "Pure-FTPd", "ftp"},
	{regexp.MustCompile(`FileZilla Server(?: version)? ?([0-9][0-9.a-z]*)?`), "FileZilla ftpd", "ftp"},
	{regexp.MustCompile(`Microsoft FTP Service`), "Microsoft ftpd", "ftp"},
	{regexp.MustCompile(`\bDovecot\b`), "Dovecot", ""},
	{regexp.MustCompile(`\bCyrus\b.*?v([0-9][0-9.]*)`), "Cyrus", ""},
	{regexp.MustCompile(`\bCourier\b`), "Courier", ""},
}

// matchMail reads the greetings of SMTP and FTP ("220 …", RFC 5321 §4.2
// and RFC 959 §4.2), POP3 ("+OK …", RFC 1939 §4) and IMAP ("* OK …",
// RFC 9051 §7.1.1). A bare "220" is SMTP when it says ESMTP or SMTP, FTP
// when it says FTP, and otherwise "smtp-or-ftp" for the caller to settle
// (detect sends EHLO).
func matchMail(b []byte) (Service, bool) {
	line := firstLine(b)
	var s Service
	switch {
	case bytes.HasPrefix(line, []byte("220 ")) || bytes.HasPrefix(line, []byte("220-")):
		up := bytes.ToUpper(line)
		switch {
		case bytes.Contains(up, []byte("SMTP")):
			s.Name = "smtp"
		case bytes.Contains(up, []byte("FTP")):
			s.Name = "ftp"
		default:
			s.Name = "smtp-or-ftp"
		}
		s.Confidence = 8
	case bytes.HasPrefix(line, []byte("+OK")):
		s.Name, s.Confidence = "pop3", 8
	case bytes.HasPrefix(line, []byte("* OK")) || bytes.HasPrefix(line, []byte("* PREAUTH")):
		s.Name, s.Confidence = "imap", 9
	default:
		return Service{}, false
	}
	text := printable(line)
	for _, p := range mailProducts {
		m := p.re.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		if p.service != "" && s.Name == "smtp-or-ftp" {
			s.Name = p.service
		} else if p.service != "" && p.service != s.Name {
			continue
		}
		s.Product = p.product
		if len(m) > 1 {
			s.Version = m[1]
		}
		s.Confidence = 10
		break
	}
	if strings.Contains(text, "(Debian") {
		s.add("os", "Debian")
	} else if strings.Contains(text, "(Ubuntu") {
		s.add("os", "Ubuntu")
	}
	return s, true
}

// matchMySQL reads the initial handshake packet of the MySQL client/server
// protocol (protocol version 10): a 3-byte length, a sequence number 0,
// then 0x0a and the server version, NUL-terminated. An error packet
// (0xff, code, message) in its place is MySQL refusing this client.
func matchMySQL(b []byte) (Service, bool) {
	if len(b) < 5 || b[3] != 0 {
		return Service{}, false
	}
	n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
	if n < 2 || n > 1<<16 || len(b) < 4+min(n, 2) {
		return Service{}, false
	}
	body := b[4:min(len(b), 4+n)]
	switch body[0] {
	case 0x0a:
		end := bytes.IndexByte(body[1:], 0)
		if end < 1 || end > 64 {
			return Service{}, false
		}
		ver := string(body[1 : 1+end])
		if printable([]byte(ver)) != ver || ver[0] < '0' || ver[0] > '9' {
			return Service{}, false
		}
		s := Service{Name: "mysql", Product: "MySQL", Version: ver, Confidence: 10}
		// MariaDB announces "5.5.5-10.11.6-MariaDB-0+deb12u1": the
		// prefix keeps old clients working.
		v := strings.TrimPrefix(ver, "5.5.5-")
		if i := strings.Index(v, "-MariaDB"); i > 0 {
			s.Product, s.Version = "MariaDB", v[:i]
			s.add("build", strings.TrimPrefix(v[i+len("-MariaDB"):], "-"))
		} else if i := strings.IndexByte(v, '-'); i > 0 {
			s.Version = v[:i]
			s.add("build", v[i+1:])
		}
		s.Evidence = Escape(b[:min(len(b), 4+1+end+1)])
		return s, true
	case 0xff:
		if len(body) < 4 {
			return Service{}, false
		}
		code := binary.LittleEndian.Uint16(body[1:3])
		if code < 1000 || code > 5000 {
			return Service{}, false
		}
		s := Service{Name: "mysql", Confidence: 8}
		s.add("refused", printable(body[3:]))
		return s, true
	}
	return Service{}, false
}

// matchVNC reads the RFB ProtocolVersion message (RFC 6143 §7.1.1):
// "RFB 003.008\n".
func matchVNC(b []byte) (Service, bool) {
	if len(b) < 12 || !bytes.HasPrefix(b, []byte("RFB ")) || b[7] != '.' || b[11] != '\n' {
		return Service{}, false
	}
	s := Service{Name: "vnc", Confidence: 10}
	s.add("protocol", strings.TrimLeft(string(b[4:7]), "0")+"."+strings.TrimLeft(string(b[8:11]), "0"))
	return s, true
}

// matchRsync reads the rsync daemon greeting "@RSYNCD: 31.0".
func matchRsync(b []byte) (Service, bool) {
	if !bytes.HasPrefix(b, []byte("@RSYNCD: ")) {
		return Service{}, false
	}
	s := Service{Name: "rsync", Confidence: 10}
	s.add("protocol", printable(firstLine(b[len("@RSYNCD: "):])))
	return s, true
}

// matchTelnet recognises Telnet option negotiation (RFC 854): IAC followed
// by WILL, WONT, DO or DONT.
func matchTelnet(b []byte) (Service, bool) {
	if len(b) < 3 || b[0] != 0xff || b[1] < 251 || b[1] > 254 {
		return Service{}, false
	}
	s := Service{Name: "telnet", Confidence: 9, Evidence: Escape(b[:min(len(b), 24)])}
	s.Findings = append(s.Findings, plaintextLogin("Telnet"))
	return s, true
}

// plaintextLogin is the finding for a protocol that carries passwords in
// clear text.
func plaintextLogin(proto string) Finding {
	return Finding{Severity: registry.SevHigh, ID: "plaintext-login",
		Message: proto + " offers login without encryption: passwords cross the network readable"}
}

// loginBeforeTLS is the finding for a protocol that offers STARTTLS but
// also takes a password before it.
func loginBeforeTLS(proto string) Finding {
	return Finding{Severity: registry.SevMedium, ID: "login-before-tls",
		Message: proto + " offers STARTTLS but also accepts a login without it: a client that does not insist on TLS sends its password readable"}
}
