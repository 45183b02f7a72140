package probe

import (
	"bufio"
	"bytes"
	"encoding/asn1"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/portctl/portctl/registry"
)

// This file holds the matchers for answers to the probes that detect
// sends: each takes the bytes that came back and reports the Service they
// prove, or false.

var titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// matchHTTP reads an HTTP/1.x response to "GET /" (RFC 9112): status,
// Server, Location, Alt-Svc and, from the body, the page title.
func matchHTTP(b []byte) (Service, bool) {
	if !bytes.HasPrefix(b, []byte("HTTP/1.")) && !bytes.HasPrefix(b, []byte("HTTP/2")) {
		return Service{}, false
	}
	s := Service{Name: "http", Confidence: 10, Evidence: Escape(firstLine(b))}
	info := &HTTPInfo{}
	s.HTTP = info
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
	if err != nil {
		// A status line, at least: the protocol and the code.
		f := strings.Fields(printable(firstLine(b)))
		if len(f) >= 2 {
			info.Protocol = f[0]
			info.Status, _ = strconv.Atoi(f[1])
		}
		return s, true
	}
	defer resp.Body.Close()
	info.Protocol, info.Status = resp.Proto, resp.StatusCode
	info.Server = printable([]byte(resp.Header.Get("Server")))
	info.Location = printable([]byte(resp.Header.Get("Location")))
	for _, k := range []string{"Server", "Location", "Content-Type", "X-Powered-By", "Strict-Transport-Security", "Alt-Svc", "WWW-Authenticate"} {
		if v := resp.Header.Get(k); v != "" {
			info.Headers = append(info.Headers, Field{k, printable([]byte(v))})
		}
	}
	for _, alt := range strings.Split(resp.Header.Get("Alt-Svc"), ",") {
		if proto, _, ok := strings.Cut(strings.TrimSpace(alt), "="); ok && proto != "clear" {
			info.Alt = append(info.Alt, proto)
		}
	}
	body := b[bytes.Index(b, []byte("\r\n\r\n"))+4:]
	if m := titleRE.FindSubmatch(body); m != nil {
		t := strings.Join(strings.Fields(html.UnescapeString(string(m[1]))), " ")
		if len(t) > 120 {
			t = t[:120] + "…"
		}
		info.Title = printable([]byte(t))
	}
	s.Product, s.Version = serverProduct(info.Server)
	httpProduct(&s, resp.Header, body)
	if strings.Contains(info.Server, "(Debian)") {
		s.add("os", "Debian")
	} else if strings.Contains(info.Server, "(Ubuntu)") {
		s.add("os", "Ubuntu")
	}
	return s, true
}

// serverProducts renames the first token of a Server header to what
// people call the product.
var serverProducts = map[string]string{
	"apache":        "Apache httpd",
	"microsoft-iis": "Microsoft IIS httpd",
	"lighttpd":      "lighttpd",
	"nginx":         "nginx",
	"openresty":     "OpenResty",
	"caddy":         "Caddy",
	"envoy":         "Envoy",
	"jetty":         "Jetty",
	"squid":         "Squid http proxy",
	"tinyproxy":     "tinyproxy",
	"gunicorn":      "Gunicorn",
	"icecast":       "Icecast streaming media server",
	"cups":          "CUPS",
	"varnish":       "Varnish http accelerator",
}

// serverProduct splits a Server header ("nginx/1.22.1", "Apache/2.4.57
// (Debian)") into product and version.
func serverProduct(server string) (product, version string) {
	tok, rest, _ := strings.Cut(server, " ")
	product, version = splitProduct(tok, "/")
	if version == "" && rest != "" && rest[0] >= '0' && rest[0] <= '9' {
		version, _, _ = strings.Cut(rest, " ") // "Icecast 2.4.4"
	}
	if p, ok := serverProducts[strings.ToLower(product)]; ok {
		product = p
	}
	return product, version
}

// matchRedis reads the answers to "PING" then "INFO server" in the Redis
// serialization protocol (RESP): +PONG and a bulk string with
// redis_version, or an error such as -NOAUTH when a password is needed.
func matchRedis(b []byte) (Service, bool) {
	line := firstLine(b)
	s := Service{Name: "redis", Product: "Redis key-value store", Evidence: Escape(line)}
	switch {
	case bytes.Equal(line, []byte("+PONG")):
		s.Confidence = 9
		s.Findings = append(s.Findings, Finding{Severity: registry.SevHigh, ID: "no-auth",
			Message: "Redis answers without authentication: anyone who reaches the port can read and change its data"})
	case bytes.HasPrefix(line, []byte("-NOAUTH")) || bytes.HasPrefix(line, []byte("-DENIED")) ||
		bytes.HasPrefix(line, []byte("-WRONGPASS")):
		s.Confidence = 10
		s.add("auth", "required")
		return s, true
	default:
		return Service{}, false
	}
	for _, l := range strings.Split(string(b), "\r\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch k {
		case "redis_version":
			s.Version, s.Confidence = printable([]byte(v)), 10
			s.Evidence = Escape([]byte(l))
		case "valkey_version":
			s.Product, s.Version, s.Confidence = "Valkey", printable([]byte(v)), 10
			s.Evidence = Escape([]byte(l))
		case "redis_mode":
			s.add("mode", printable([]byte(v)))
		case "os":
			s.add("os", printable([]byte(v)))
		}
	}
	return s, true
}

// matchMemcached reads the answer to memcached's text command "version".
func matchMemcached(b []byte) (Service, bool) {
	line := firstLine(b)
	if !bytes.HasPrefix(line, []byte("VERSION ")) {
		return Service{}, false
	}
	s := Service{Name: "memcached", Product: "Memcached", Version: printable(line[len("VERSION "):]),
		Confidence: 10, Evidence: Escape(line)}
	s.Findings = append(s.Findings, Finding{Severity: registry.SevHigh, ID: "no-auth",
		Message: "memcached answers without authentication: anyone who reaches the port can read and change the cache"})
	return s, true
}

// postgresSSLRequest is the PostgreSQL SSLRequest message: a length of 8
// and the code 80877103. A server answers one byte: 'S' or 'N'.
var postgresSSLRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

// postgresStartup is a protocol 3.0 StartupMessage for user and database
// "portctl": the server asks for a password or says why not.
func postgresStartup() []byte {
	var body []byte
	body = binary.BigEndian.AppendUint32(body, 3<<16)
	for _, kv := range []string{"user", "portctl", "database", "portctl", "application_name", "portctl"} {
		body = append(body, kv...)
		body = append(body, 0)
	}
	body = append(body, 0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body)+4)), body...)
}

// matchPostgresSSL reads the answer to SSLRequest: exactly 'S' or 'N'.
func matchPostgresSSL(b []byte) (Service, bool) {
	if len(b) != 1 || (b[0] != 'S' && b[0] != 'N') {
		return Service{}, false
	}
	s := Service{Name: "postgresql", Product: "PostgreSQL DB", Confidence: 6, Evidence: Escape(b)}
	s.add("ssl", map[byte]string{'S': "offered", 'N': "not offered"}[b[0]])
	return s, true
}

// matchPostgres reads the answer to the StartupMessage: an Authentication
// request ('R') or an ErrorResponse ('E') with its SQLSTATE code.
func matchPostgres(b []byte) (Service, bool) {
	if len(b) < 9 {
		return Service{}, false
	}
	n := binary.BigEndian.Uint32(b[1:5])
	if n < 8 || n > 1<<16 {
		return Service{}, false
	}
	s := Service{Name: "postgresql", Product: "PostgreSQL DB", Confidence: 10}
	switch b[0] {
	case 'R':
		method := binary.BigEndian.Uint32(b[5:9])
		names := map[uint32]string{0: "none (trust)", 3: "password (clear text)", 5: "md5", 10: "SASL (SCRAM)"}
		name, ok := names[method]
		if !ok {
			return Service{}, false
		}
		s.add("auth", name)
		if method == 0 {
			s.Findings = append(s.Findings, Finding{Severity: registry.SevHigh, ID: "no-auth",
				Message: "PostgreSQL let a made-up user in without a password"})
		}
		s.Evidence = Escape(b[:9])
		return s, true
	case 'E':
		fields := b[5:min(len(b), 1+int(n))]
		var code, msg string
		for len(fields) > 1 {
			end := bytes.IndexByte(fields[1:], 0)
			if end < 0 {
				break
			}
			v := printable(fields[1 : 1+end])
			switch fields[0] {
			case 'C':
				code = v
			case 'M':
				msg = v
			}
			fields = fields[2+end:]
		}
		if len(code) != 5 {
			return Service{}, false
		}
		s.add("error", code+" "+msg)
		s.Evidence = Escape(b[:min(len(b), 1+int(n))])
		return s, true
	}
	return Service{}, false
}

// dnsProducts recognise the answers to version.bind of common servers.
var dnsProducts = []struct {
	re      *regexp.Regexp
	product string
}{
	{regexp.MustCompile(`^dnsmasq-([0-9][0-9.]*)`), "dnsmasq"},
	{regexp.MustCompile(`^unbound ([0-9][0-9.]*)`), "Unbound"},
	{regexp.MustCompile(`^([0-9]+\.[0-9]+\.[0-9]+)`), "ISC BIND"},
	{regexp.MustCompile(`^PowerDNS Recursor ([0-9][0-9.]*)`), "PowerDNS Recursor"},
	{regexp.MustCompile(`^PowerDNS Authoritative Server ([0-9][0-9.]*)`), "PowerDNS Authoritative Server"},
	{regexp.MustCompile(`^Knot DNS ([0-9][0-9.]*)`), "Knot DNS"},
	{regexp.MustCompile(`^CoreDNS-([0-9][0-9.]*)`), "CoreDNS"},
	{regexp.MustCompile(`^NSD ([0-9][0-9.]*)`), "NSD"},
}

// matchDNS reads the answer to the version.bind CHAOS TXT query (with TCP's
// two-byte length prefix when tcp is set). Any well-formed answer to our
// query is DNS; a TXT answer may name the product.
func matchDNS(b []byte, tcp bool) (Service, bool) {
	if tcp {
		if len(b) < 2 || int(binary.BigEndian.Uint16(b)) > len(b)-2 {
			return Service{}, false
		}
		b = b[2 : 2+int(binary.BigEndian.Uint16(b))]
	}
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil || !h.Response || h.ID != probeID {
		return Service{}, false
	}
	q, err := p.Question()
	if err != nil || q.Name.String() != "version.bind." {
		return Service{}, false
	}
	p.SkipAllQuestions()
	s := Service{Name: "domain", Confidence: 10, Evidence: Escape(b[:min(len(b), 12)])}
	if h.RCode != dnsmessage.RCodeSuccess {
		s.add("version.bind", strings.ToLower(strings.TrimPrefix(h.RCode.String(), "RCode")))
		return s, true
	}
	for {
		rh, err := p.AnswerHeader()
		if err != nil {
			break
		}
		if rh.Type != dnsmessage.TypeTXT {
			if p.SkipAnswer() != nil {
				break // a record it cannot skip would be read again and again
			}
			continue
		}
		txt, err := p.TXTResource()
		if err != nil || len(txt.TXT) == 0 {
			break
		}
		v := printable([]byte(strings.Join(txt.TXT, "")))
		s.Evidence = Escape([]byte(v))
		for _, d := range dnsProducts {
			if m := d.re.FindStringSubmatch(v); m != nil {
				s.Product, s.Version = d.product, m[1]
				break
			}
		}
		if s.Product == "" {
			s.add("version.bind", v)
		}
		break
	}
	return s, true
}

// matchNTP reads an NTP server's answer (mode 4) to a client request
// (RFC 5905 §7.3): version, stratum and reference ID.
func matchNTP(b []byte) (Service, bool) {
	if len(b) < 48 || b[0]&7 != 4 || (b[0]>>3)&7 == 0 {
		return Service{}, false
	}
	s := Service{Name: "ntp", Confidence: 9, Evidence: Escape(b[:4])}
	s.add("protocol", "v"+strconv.Itoa(int(b[0]>>3&7)))
	stratum := b[1]
	s.add("stratum", strconv.Itoa(int(stratum)))
	ref := b[12:16]
	switch {
	case stratum <= 1:
		s.add("refid", printable(ref))
	case stratum < 16:
		s.add("refid", fmt.Sprintf("%d.%d.%d.%d", ref[0], ref[1], ref[2], ref[3]))
	}
	return s, true
}

// ntpReadVar is an NTP mode 6 (control) READVAR request for the system
// variables, to which ntpd and NTPsec answer with their version.
var ntpReadVar = []byte{0<<6 | 2<<3 | 6, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}

var ntpVersionRE = regexp.MustCompile(`version="(ntpd|ntpsec|NTPsec)[ -]?(?:ntpsec-)?([0-9][^ "@]*)`)

// matchNTPControl reads the answer to ntpReadVar, adding the product to s.
func matchNTPControl(s *Service, b []byte) bool {
	if len(b) < 12 || b[0]&7 != 6 || b[1]&0x80 == 0 {
		return false
	}
	m := ntpVersionRE.FindSubmatch(b[12:])
	if m == nil {
		return false
	}
	s.Product, s.Version = "ntpd", string(m[2])
	if bytes.EqualFold(m[1], []byte("ntpsec")) || bytes.Contains(b, []byte("ntpsec")) {
		s.Product = "NTPsec"
	}
	s.Confidence = 10
	return true
}

// SNMP object identifiers asked for.
var (
	oidSysDescr    = asn1.ObjectIdentifier{1, 3, 6, 1, 2, 1, 1, 1, 0}
	oidSysObjectID = asn1.ObjectIdentifier{1, 3, 6, 1, 2, 1, 1, 2, 0}
	oidVersionTag  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 2021, 100, 2, 0} // UCD-SNMP-MIB::versionTag
	oidNetSNMP     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 8072}
)

type snmpVarBind struct {
	Name  asn1.ObjectIdentifier
	Value asn1.RawValue
}

type snmpPDU struct {
	RequestID   int32
	ErrorStatus int
	ErrorIndex  int
	VarBinds    []snmpVarBind
}

type snmpMessage struct {
	Version   int
	Community []byte
	PDU       asn1.RawValue
}

// snmpGet is an SNMPv2c GetRequest (RFC 3416) with community "public" for
// sysDescr.0, sysObjectID.0 and Net-SNMP's versionTag.0.
func snmpGet() []byte {
	return snmpGetRequest(1, oidSysDescr, oidSysObjectID, oidVersionTag)
}

// snmpGetRequest is a GetRequest-PDU with community "public" for oids,
// in an SNMP message of version (0 for SNMPv1, 1 for SNMPv2c).
func snmpGetRequest(version int, oids ...asn1.ObjectIdentifier) []byte {
	var vbs []snmpVarBind
	for _, oid := range oids {
		vbs = append(vbs, snmpVarBind{oid, asn1.RawValue{Tag: asn1.TagNull}})
	}
	pdu, _ := asn1.MarshalWithParams(snmpPDU{RequestID: probeID, VarBinds: vbs}, "tag:0")
	b, _ := asn1.Marshal(snmpMessage{Version: version, Community: []byte("public"), PDU: asn1.RawValue{FullBytes: pdu}})
	return b
}

// matchSNMP reads the GetResponse to snmpGet.
func matchSNMP(b []byte) (Service, bool) {
	var m snmpMessage
	if rest, err := asn1.Unmarshal(b, &m); err != nil || len(rest) != 0 || m.Version != 1 {
		return Service{}, false
	}
	var pdu snmpPDU
	if _, err := asn1.UnmarshalWithParams(m.PDU.FullBytes, &pdu, "tag:2"); err != nil || pdu.RequestID != probeID {
		return Service{}, false
	}
	s := Service{Name: "snmp", Confidence: 10, Evidence: Escape(b[:min(len(b), 24)])}
	s.add("community", printable(m.Community))
	for _, vb := range pdu.VarBinds {
		switch {
		case vb.Name.Equal(oidSysDescr) && vb.Value.Tag == asn1.TagOctetString:
			s.add("sysDescr", printable(vb.Value.Bytes))
		case vb.Name.Equal(oidSysObjectID) && vb.Value.Tag == asn1.TagOID:
			var oid asn1.ObjectIdentifier
			if _, err := asn1.Unmarshal(vb.Value.FullBytes, &oid); err == nil {
				s.add("sysObjectID", oid.String())
				if len(oid) > len(oidNetSNMP) && oid[:len(oidNetSNMP)].Equal(oidNetSNMP) {
					s.Product = "net-snmp"
				}
			}
		case vb.Name.Equal(oidVersionTag) && vb.Value.Tag == asn1.TagOctetString:
			if s.Product == "net-snmp" {
				s.Version = printable(vb.Value.Bytes)
			}
		}
	}
	if printable(m.Community) == "public" {
		s.Findings = append(s.Findings, Finding{Severity: registry.SevMedium, ID: "default-community",
			Message: `SNMP answers the default community "public": anyone who reaches the port can read the device's data`})
	}
	return s, true
}

// matchQUIC reads a QUIC Version Negotiation packet (RFC 9000 §17.2.1)
// sent in answer to the long-header packet of quicVersionNegotiation: the
// connection IDs swapped, and the versions the server supports.
func matchQUIC(b []byte) (Service, bool) {
	if len(b) < 7 || b[0]&0x80 == 0 || binary.BigEndian.Uint32(b[1:5]) != 0 {
		return Service{}, false
	}
	i := 5
	dcid := int(b[i])
	i += 1 + dcid
	if i >= len(b) || string(b[6:6+dcid]) != quicSourceCID {
		return Service{}, false
	}
	scid := int(b[i])
	i += 1 + scid
	if i > len(b) || (len(b)-i)%4 != 0 || len(b) == i {
		return Service{}, false
	}
	var vs []string
	for ; i+4 <= len(b); i += 4 {
		v := binary.BigEndian.Uint32(b[i:])
		switch {
		case v == 1:
			vs = append(vs, "1")
		case v == 0x6b3343cf:
			vs = append(vs, "2")
		case v>>8 == 0xff0000:
			vs = append(vs, fmt.Sprintf("draft-%d", v&0xff))
		case v&0x0f0f0f0f == 0x0a0a0a0a:
			// reserved versions that force negotiation (greasing)
		default:
			vs = append(vs, fmt.Sprintf("0x%08x", v))
		}
	}
	s := Service{Name: "quic", Confidence: 10, Evidence: Escape(b[:min(len(b), 32)])}
	s.add("versions", strings.Join(vs, ", "))
	return s, true
}

// httpProxies are the products that are forward proxies: their service is
// http-proxy, as nmap names it.
var httpProxies = map[string]bool{"Squid http proxy": true, "tinyproxy": true, "Privoxy http proxy": true}

var (
	cupsTitleRE    = regexp.MustCompile(`CUPS v([0-9][0-9.a-z]*)`)
	varnishViaRE   = regexp.MustCompile(`\(Varnish/([0-9][0-9.]*)\)`)
	privoxyRE      = regexp.MustCompile(`This is <a href="https?://www\.privoxy\.org/">Privoxy</a> ([0-9][0-9.]*)`)
	tomcatRE       = regexp.MustCompile(`Apache Tomcat/([0-9][0-9.]*)`)
	nodeExporterRE = regexp.MustCompile(`(?i)<title>Node Exporter</title>`)
	prometheusVer  = regexp.MustCompile(`version=([0-9][0-9.]*)`)
)

// haproxy503 is HAProxy's built-in answer when no backend is up.
const haproxy503 = "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>"

// httpProduct names the product from what an answer says besides its
// Server header: headers and pages that only one product sends.
func httpProduct(s *Service, h http.Header, body []byte) {
	set := func(product, version string) {
		s.Product, s.Version = product, version
	}
	switch {
	case h.Get("X-Influxdb-Version") != "":
		set("InfluxDB", printable([]byte(h.Get("X-Influxdb-Version"))))
	case varnishViaRE.MatchString(h.Get("Via")):
		set("Varnish http accelerator", varnishViaRE.FindStringSubmatch(h.Get("Via"))[1])
	case s.Product == "CUPS":
		s.Name = "ipp"
		if m := cupsTitleRE.FindSubmatch(body); m != nil {
			s.Version = string(m[1])
		}
	case privoxyRE.Match(body):
		set("Privoxy http proxy", string(privoxyRE.FindSubmatch(body)[1]))
	case s.Product == "" && tomcatRE.Match(body):
		set("Apache Tomcat", string(tomcatRE.FindSubmatch(body)[1]))
	case s.Product == "" && bytes.HasPrefix(body, []byte(haproxy503)):
		set("HAProxy http proxy", "")
	case s.Product == "" && nodeExporterRE.Match(body):
		set("Prometheus Node Exporter", "")
		if m := prometheusVer.FindSubmatch(body); m != nil {
			s.Version = string(m[1])
		}
	}
	if httpProxies[s.Product] {
		s.Name = "http-proxy"
	}
}

// matchEtcdVersion reads etcd's answer to GET /version: a JSON object
// with etcdserver and etcdcluster.
func matchEtcdVersion(b []byte) (Service, bool) {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 || !bytes.HasPrefix(b, []byte("HTTP/1.1 200")) {
		return Service{}, false
	}
	var v struct {
		Server  string `json:"etcdserver"`
		Cluster string `json:"etcdcluster"`
	}
	if err := json.Unmarshal(b[i+4:], &v); err != nil || v.Server == "" {
		return Service{}, false
	}
	s := Service{Name: "http", Product: "etcd", Version: printable([]byte(v.Server)), Confidence: 10,
		Evidence: Escape(b[i+4:]), Probe: "http-etcd-version", HTTP: &HTTPInfo{Status: 200, Protocol: "HTTP/1.1"}}
	s.add("cluster", printable([]byte(v.Cluster)))
	return s, true
}
