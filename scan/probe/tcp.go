package probe

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tcpProbe is one of this package's own TCP probes.
type tcpProbe struct {
	name  string
	ports []uint16 // where it goes first
	run   func(d *detector, c net.Conn) (Service, bool)
}

// tcpProbes are tried in this order, after the ones whose ports list the
// target's port.
var tcpProbes = []tcpProbe{
	{"http", []uint16{80, 81, 591, 3000, 5000, 5601, 8000, 8008, 8080, 8081, 8088, 8888, 9000, 9090, 9200}, (*detector).probeHTTP},
	{"tls", []uint16{261, 443, 465, 563, 636, 853, 989, 990, 992, 993, 994, 995, 2376, 4443, 5061, 5986, 6443, 8443, 9443, 10250}, (*detector).probeTLS},
	{"redis", []uint16{6379, 6380}, (*detector).probeRedis},
	{"postgres", []uint16{5432, 5433}, (*detector).probePostgres},
	{"memcached", []uint16{11211}, (*detector).probeMemcached},
	{"dns", []uint16{53, 5353}, (*detector).probeDNS},
	{"ldap", []uint16{389, 3268}, (*detector).probeLDAP},
	{"smb", []uint16{139, 445}, (*detector).probeSMB},
	{"rdp", []uint16{3389}, (*detector).probeRDP},
	{"mqtt", []uint16{1883}, (*detector).probeMQTT},
	{"amqp", []uint16{5672}, (*detector).probeAMQP},
	{"epmd", []uint16{4369}, (*detector).probeEPMD},
	{"socks", []uint16{1080}, (*detector).probeSOCKS},
	{"git", []uint16{9418}, (*detector).probeGit},
	{"xmpp", []uint16{5222, 5269}, (*detector).probeXMPP},
	{"irc", []uint16{194, 6665, 6666, 6667, 6668, 6669, 6697, 7000}, (*detector).probeIRC},
	{"cvs", []uint16{2401}, (*detector).probeCVS},
	{"beanstalkd", []uint16{11300}, (*detector).probeBeanstalkd},
	{"gearman", []uint16{4730}, (*detector).probeGearman},
	{"zabbix", []uint16{10050}, (*detector).probeZabbix},
	{"spamd", []uint16{783}, (*detector).probeSpamd},
	{"nut", []uint16{3493}, (*detector).probeUPSD},
	{"iperf3", []uint16{5201}, (*detector).probeIPerf3},
}

// speaksFirst lists ports where servers greet before being asked: detect
// waits a full Timeout for their greeting.
var speaksFirst = map[uint16]bool{21: true, 22: true, 23: true, 25: true, 110: true, 143: true,
	587: true, 873: true, 2222: true, 3306: true, 5900: true, 5901: true}

// portFirst returns probes with those meant for port (ports(p) lists it)
// first, each group in its own order.
func portFirst[P any](probes []P, port uint16, ports func(P) []uint16) []P {
	var first, rest []P
	for _, p := range probes {
		if slices.Contains(ports(p), port) {
			first = append(first, p)
		} else {
			rest = append(rest, p)
		}
	}
	return append(first, rest...)
}

// tcp identifies a TCP service: the greeting first, then the probes.
func (d *detector) tcp() Service {
	c, err := d.redial()
	if err != nil {
		return Service{}
	}
	wait := d.cfg.bannerWait()
	if speaksFirst[d.t.Addr.Port()] {
		wait = d.cfg.timeout()
	}
	banner, closed := d.readAnswer(c, wait, nil)
	var soft *Service // the greeting's softmatch in cfg.DB, for nmapProbes
	if len(banner) > 0 {
		d.saw(banner)
		if s, ok := matchBanner(banner); ok {
			s = d.follow(c, s)
			c.Close()
			return s
		}
		c.Close()
		c = nil
		if s, ok := d.nmapGreeting(banner); ok {
			if s.Confidence == 10 { // a hard match
				return s
			}
			soft = &s
		}
	} else if closed {
		d.closed++
		c.Close()
		c = nil
	}
	queue := portFirst(tcpProbes, d.t.Addr.Port(), func(p tcpProbe) []uint16 { return p.ports })
	tried := map[string]bool{}
	for len(queue) > 0 && d.more() {
		p := queue[0]
		queue = queue[1:]
		if tried[p.name] {
			continue
		}
		tried[p.name] = true
		if c == nil {
			if c, err = d.redial(); err != nil {
				break
			}
		}
		d.last = nil
		s, ok := p.run(d, c)
		c.Close()
		c = nil
		if ok {
			return d.withAlt(s)
		}
		if p.name == "http" && len(d.last) > 0 {
			// nmap's GetRequest lines (and the NULL probe's, which they
			// fall back on) know answers to GET that are not HTTP; they
			// are many, so they are tried only when needed (withAlt).
			d.getAnswer = d.last
		}
		// A server that greets late answers a probe with its greeting.
		if s, ok := matchBanner(d.last); ok {
			return s
		}
		// What a wrong probe drew may name the right one.
		if next := hint(d.last); next != "" && !tried[next] {
			i := slices.IndexFunc(queue, func(q tcpProbe) bool { return q.name == next })
			if i > 0 {
				q := queue[i]
				queue = slices.Insert(slices.Delete(queue, i, i+1), 0, q)
			}
		}
	}
	if c != nil {
		c.Close()
	}
	if alt, ok := d.altMatch(); ok {
		return alt
	}
	return d.nmapProbes(soft)
}

// redial connects for a probe. Detect is asked about open ports, so one
// that resets the connection or refuses it may be a server between two
// clients (iperf3 resets a second client, and stops listening while it
// resets after one, such as the port scan's): it is tried again, three
// times at most, 200 ms apart, within the budget.
func (d *detector) redial() (net.Conn, error) {
	c, err := d.dial("tcp")
	for try := 0; err != nil && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)) && try < 3; try++ {
		select {
		case <-d.ctx.Done():
			return nil, err
		case <-time.After(200 * time.Millisecond):
		}
		c, err = d.dial("tcp")
	}
	return c, err
}

// hint names the probe an answer to another probe suggests: a TLS alert
// (or nginx's complaint about plain HTTP), memcached's "ERROR" to an
// unknown command, a Redis error, an HTTP status line.
func hint(b []byte) string {
	switch {
	case looksTLS(b):
		return "tls"
	case bytes.HasPrefix(b, []byte("ERROR\r\n")):
		return "memcached"
	case bytes.HasPrefix(b, []byte("-ERR ")):
		return "redis"
	case bytes.HasPrefix(b, []byte("HTTP/1.")):
		return "http"
	case bytes.HasPrefix(b, []byte("UNKNOWN_COMMAND\r\n")):
		return "beanstalkd"
	case bytes.HasPrefix(b, []byte("ERR UNKNOWN_COMMAND ")):
		return "gearman"
	case bytes.HasPrefix(b, []byte("AMQP")):
		return "amqp"
	case bytes.Contains(b, []byte("<stream:stream")):
		return "xmpp"
	case bytes.HasPrefix(b, []byte("cvs [pserver aborted]")):
		return "cvs"
	case bytes.HasPrefix(b, []byte("SPAMD/")):
		return "spamd"
	case bytes.HasPrefix(b, []byte("ERR UNKNOWN-COMMAND\n")):
		return "nut"
	case len(b) == 1 && b[0] == 9:
		return "iperf3"
	}
	if _, ok := matchIRC(b); ok {
		return "irc"
	}
	return ""
}

// looksTLS reports whether an answer to plain text came from a TLS
// server: a TLS alert record, or nginx's "plain HTTP request was sent to
// HTTPS port".
func looksTLS(b []byte) bool {
	return len(b) >= 3 && b[0] == 0x15 && b[1] == 3 ||
		bytes.Contains(b, []byte("HTTP request was sent to HTTPS port"))
}

// httpRequest is "GET /" for host.
func httpRequest(host string) []byte {
	return []byte("GET / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: portctl\r\nAccept: */*\r\nConnection: close\r\n\r\n")
}

// hostHeader is the Host header for the target.
func (d *detector) hostHeader() string {
	if d.t.Host != "" {
		if d.t.Addr.Port() == 80 || d.t.Addr.Port() == 443 {
			return d.t.Host
		}
		return net.JoinHostPort(d.t.Host, strconv.Itoa(int(d.t.Addr.Port())))
	}
	return d.t.Addr.String()
}

func (d *detector) probeHTTP(c net.Conn) (Service, bool) {
	b := d.exchange(c, httpRequest(d.hostHeader()), nil)
	if looksTLS(b) {
		return Service{}, false // TLS is tried next
	}
	s, ok := matchHTTP(b)
	if !ok {
		// iperf3 takes the request's first 37 bytes for its cookie and
		// answers its next state, one byte; a busy one is as good as
		// gone for the next probe, so the byte has to do.
		if s, ok := matchIPerf3(b); ok {
			s.Probe, s.Confidence = "http", 7
			return s, true
		}
		return s, false
	}
	s.Probe = "http"
	if s.Product != "" {
		return s, true
	}
	// A forward proxy answers a request for a path with an error of its
	// own; asked for a URL of a name no one resolves (RFC 6761 .invalid),
	// it says who it is. A Go server's bare 404 may be etcd's, which
	// names itself at /version.
	var follow []byte
	switch {
	case s.HTTP.Server == "" && s.HTTP.Status >= 400 && !bytes.Contains(b, []byte("404 page not found")):
		follow = []byte("GET http://portctl.invalid/ HTTP/1.1\r\nHost: portctl.invalid\r\nUser-Agent: portctl\r\nConnection: close\r\n\r\n")
	case s.HTTP.Status == 404 && bytes.HasSuffix(b, []byte("\r\n\r\n404 page not found\n")):
		follow = []byte("GET /version HTTP/1.1\r\nHost: " + d.hostHeader() + "\r\nUser-Agent: portctl\r\nConnection: close\r\n\r\n")
	}
	if follow != nil && d.more() {
		if c2, err := d.dial("tcp"); err == nil {
			b2 := d.exchange(c2, follow, nil)
			c2.Close()
			if s2, ok := matchHTTP(b2); ok && s2.Product != "" {
				s2.Probe = "http-proxy"
				return s2, true
			} else if ok {
				if s2, ok := matchEtcdVersion(b2); ok {
					return s2, true
				}
			}
		}
	}
	return d.nmapAnswer(s, "GetRequest", b), true
}

func (d *detector) probeRedis(c net.Conn) (Service, bool) {
	return d.ask(c, "redis", []byte("PING\r\nINFO server\r\n"), func(b []byte) bool {
		return bytes.HasPrefix(b, []byte("-")) && bytes.Count(b, []byte("\r\n")) >= 2 ||
			bytes.Contains(b, []byte("redis_version:")) && bytes.HasSuffix(b, []byte("\r\n"))
	}, matchRedis)
}

func (d *detector) probeMemcached(c net.Conn) (Service, bool) {
	return d.ask(c, "memcached", []byte("version\r\n"), func(b []byte) bool { return bytes.HasSuffix(b, []byte("\r\n")) }, matchMemcached)
}

func (d *detector) probeDNS(c net.Conn) (Service, bool) {
	q := dnsVersionBind()
	req := append([]byte{byte(len(q) >> 8), byte(len(q))}, q...)
	b := d.exchange(c, req, func(b []byte) bool { return len(b) >= 2 && len(b) >= 2+int(b[0])<<8|int(b[1]) })
	s, ok := matchDNS(b, true)
	if ok {
		s.Probe = "dns-version-bind"
	}
	return s, ok
}

// probePostgres sends SSLRequest; whether the answer is 'S' or 'N', a
// StartupMessage on a fresh connection then makes sure.
func (d *detector) probePostgres(c net.Conn) (Service, bool) {
	b := d.exchange(c, postgresSSLRequest, func(b []byte) bool { return len(b) >= 1 })
	s, ok := matchPostgresSSL(b)
	if !ok {
		return Service{}, false
	}
	s.Probe = "postgres-ssl"
	if !d.more() {
		return s, true
	}
	c2, err := d.dial("tcp")
	if err != nil {
		return s, true
	}
	defer c2.Close()
	b = d.exchange(c2, postgresStartup(), func(b []byte) bool {
		return len(b) >= 5 && len(b) >= 1+int(b[1])<<24|int(b[2])<<16|int(b[3])<<8|int(b[4])
	})
	if s2, ok := matchPostgres(b); ok {
		s2.Probe = "postgres-startup"
		s2.Extra = append(s.Extra, s2.Extra...)
		return s2, true
	}
	return s, true
}

// follow asks a greeting's server the one more question that settles
// the protocol and its security: EHLO for SMTP, FEAT for FTP, CAPA for
// POP3, CAPABILITY for IMAP.
func (d *detector) follow(c net.Conn, s Service) Service {
	lines := func(b []byte) bool { return bytes.HasSuffix(b, []byte("\r\n")) }
	switch s.Name {
	case "smtp", "smtp-or-ftp":
		b := d.exchange(c, []byte("EHLO portctl.invalid\r\n"), func(b []byte) bool {
			return lastLine(b, "250 ") || bytes.HasPrefix(b, []byte("5")) && lines(b)
		})
		if bytes.HasPrefix(b, []byte("250")) {
			s.Name = "smtp"
			ext := strings.ToUpper(string(b))
			tls := strings.Contains(ext, "STARTTLS")
			if tls {
				s.add("starttls", "offered")
			}
			if auth := ehloAuth(ext); auth != "" {
				s.add("auth", auth)
				if !tls {
					s.Findings = append(s.Findings, plaintextLogin("SMTP AUTH"))
				}
			}
			if tls && d.startTLS(c, &s, "STARTTLS\r\n", "220") {
				return s
			}
		} else if s.Name == "smtp-or-ftp" && len(b) > 0 {
			s.Name = "ftp"
		}
		c.Write([]byte("QUIT\r\n"))
	case "pop3":
		b := d.exchange(c, []byte("CAPA\r\n"), func(b []byte) bool {
			return bytes.HasSuffix(b, []byte("\r\n.\r\n")) || bytes.HasPrefix(b, []byte("-ERR")) && lines(b)
		})
		if caps := bytes.ToUpper(b); bytes.Contains(caps, []byte("\r\nSTLS\r\n")) {
			s.add("starttls", "offered")
			if bytes.Contains(caps, []byte("\r\nUSER\r\n")) {
				s.Findings = append(s.Findings, loginBeforeTLS("POP3"))
			}
			if d.startTLS(c, &s, "STLS\r\n", "+OK") {
				return s
			}
		} else {
			s.Findings = append(s.Findings, plaintextLogin("POP3"))
		}
		c.Write([]byte("QUIT\r\n"))
	case "munin":
		return d.muninFollow(c, s)
	case "irc":
		if s2, ok := d.ircRegister(c, true); ok && s2.Confidence >= s.Confidence {
			return s2
		}
		return s
	case "imap":
		caps := strings.ToUpper(string(firstLine(d.seen)))
		if !strings.Contains(caps, "CAPABILITY") {
			b := d.exchange(c, []byte("a1 CAPABILITY\r\n"), func(b []byte) bool { return bytes.Contains(b, []byte("a1 ")) && lines(b) })
			caps = strings.ToUpper(string(b))
		}
		switch {
		case strings.Contains(caps, "LOGINDISABLED"):
			s.add("login", "disabled before STARTTLS")
		case strings.Contains(caps, "STARTTLS"):
			s.add("starttls", "offered")
			s.Findings = append(s.Findings, loginBeforeTLS("IMAP"))
		default:
			s.Findings = append(s.Findings, plaintextLogin("IMAP"))
		}
		if strings.Contains(caps, "STARTTLS") && d.startTLS(c, &s, "a2 STARTTLS\r\n", "a2 OK") {
			return s
		}
		c.Write([]byte("a2 LOGOUT\r\n"))
	}
	if s.Name == "ftp" {
		b := d.exchange(c, []byte("FEAT\r\n"), func(b []byte) bool { return lastLine(b, "211 ") || bytes.HasPrefix(b, []byte("5")) && lines(b) })
		if bytes.Contains(bytes.ToUpper(b), []byte("AUTH TLS")) {
			s.add("auth-tls", "offered")
		} else {
			s.Findings = append(s.Findings, plaintextLogin("FTP"))
		}
		c.Write([]byte("QUIT\r\n"))
	}
	return s
}

// startTLS upgrades a mail connection with cmd, expecting a reply that
// starts with ok, and records the handshake and the certificate's
// findings in s.StartTLS. It reports whether the connection was upgraded
// (then no more plain text may be sent on it). Inside TLS already, it
// does nothing.
func (d *detector) startTLS(c net.Conn, s *Service, cmd, ok string) bool {
	if _, inTLS := c.(*tls.Conn); inTLS || !d.more() {
		return false
	}
	b := d.exchange(c, []byte(cmd), func(b []byte) bool { return bytes.HasSuffix(b, []byte("\r\n")) })
	if !bytes.HasPrefix(b, []byte(ok)) {
		return false
	}
	d.probes++
	tc, err := d.handshake(c, tls.VersionTLS10, tls.VersionTLS13, nil)
	if err != nil {
		return true
	}
	info := handshakeInfo(tc.ConnectionState(), d.cfg.Now())
	tc.Close()
	s.StartTLS = info
	s.Findings = append(s.Findings, tlsFindings(info)...)
	return true
}

// lastLine reports whether b ends with a complete line that starts with
// prefix (a multi-line SMTP or FTP reply's last line).
func lastLine(b []byte, prefix string) bool {
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		return false
	}
	body := b[:len(b)-2]
	i := bytes.LastIndexByte(body, '\n')
	return bytes.HasPrefix(body[i+1:], []byte(prefix))
}

// ehloAuth returns the mechanisms of an EHLO reply's AUTH line.
func ehloAuth(ext string) string {
	for _, l := range strings.Split(ext, "\r\n") {
		if len(l) > 9 && (strings.HasPrefix(l[4:], "AUTH ") || strings.HasPrefix(l[4:], "AUTH=")) {
			return strings.TrimSpace(l[9:])
		}
	}
	return ""
}
