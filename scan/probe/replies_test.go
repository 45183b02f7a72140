package probe

import (
	"os"
	"path/filepath"
	"testing"
)

// The files in testdata/replies are what real servers, started from their
// Debian bookworm packages by internal/servers, answered to this
// package's probes (or sent unasked, for greetings).
var replyTests = []struct {
	file                  string
	match                 func([]byte) (Service, bool)
	svc, product, version string
}{
	{"apache", matchHTTP, "http", "Apache httpd", "2.4.71"},
	{"lighttpd", matchHTTP, "http", "lighttpd", "1.4.69"},
	{"tomcat", matchHTTP, "http", "Apache Tomcat", "10.1.60"},
	{"gunicorn", matchHTTP, "http", "Gunicorn", ""},
	{"icecast", matchHTTP, "http", "Icecast streaming media server", "2.4.4"},
	{"influx", matchHTTP, "http", "InfluxDB", "1.6.7~rc0"},
	{"nodeexp", matchHTTP, "http", "Prometheus Node Exporter", ""},
	{"cups", matchHTTP, "ipp", "CUPS", "2.4.2"},
	{"squid", matchHTTP, "http-proxy", "Squid http proxy", "5.7"},
	{"tinyproxy", matchHTTP, "http-proxy", "tinyproxy", "1.11.1"},
	{"privoxy", matchHTTP, "http-proxy", "Privoxy http proxy", "3.0.34"},
	{"varnish", matchHTTP, "http", "Varnish http accelerator", "7.1"},
	{"haproxy", matchHTTP, "http", "HAProxy http proxy", ""},
	{"etcd", matchEtcdVersion, "http", "etcd", "3.4.23"},
	{"bind", func(b []byte) (Service, bool) { return matchDNS(b, false) }, "domain", "ISC BIND", "9.18.49"},
	{"unbound", func(b []byte) (Service, bool) { return matchDNS(b, false) }, "domain", "Unbound", "1.17.1"},
	{"nsd", func(b []byte) (Service, bool) { return matchDNS(b, false) }, "domain", "NSD", "4.6.1"},
	{"knot", func(b []byte) (Service, bool) { return matchDNS(b, false) }, "domain", "Knot DNS", "3.2.6"},
	{"pdns", func(b []byte) (Service, bool) { return matchDNS(b, false) }, "domain", "PowerDNS Authoritative Server", "4.7.3"},
	{"pdnsrec", func(b []byte) (Service, bool) { return matchDNS(b, false) }, "domain", "PowerDNS Recursor", "4.8.8"},
	{"ldap", matchLDAP, "ldap", "OpenLDAP", ""},
	{"mqtt", matchMQTT, "mqtt", "Mosquitto", "2.0.11"},
	{"nats", matchBanner, "nats", "NATS Server", "2.9.10"},
	{"beanstalkd", matchBeanstalkd, "beanstalkd", "beanstalkd", "1.12"},
	{"gearman", matchGearman, "gearman", "Gearman job server", "1.1.20"},
	{"irc", matchIRC, "irc", "ngIRCd", "26.1"},
	{"inspircd", matchIRC, "irc", "InspIRCd", "3"},
	{"xmpp", matchXMPP, "xmpp-client", "", ""},
	{"git", matchGit, "git", "git daemon", ""},
	{"svn", matchBanner, "svn", "Subversion", ""},
	{"cvs", matchCVS, "cvspserver", "CVS pserver", ""},
	{"rsync", matchBanner, "rsync", "", ""},
	{"samba", matchSMB, "microsoft-ds", "", ""},
	{"socks", matchSOCKS5, "socks5", "", ""},
	{"tftp", matchTFTP, "tftp", "", ""},
	{"zabbix", matchZabbix, "zabbix-agent", "Zabbix agent", "6.0.14"},
	{"munin", matchBanner, "munin", "Munin node", ""},
	{"ups", matchUPSD, "nut", "Network UPS Tools upsd", "2.8.0"},
	{"gpsd", matchBanner, "gpsd", "gpsd", "3.22"},
	{"mpd", matchBanner, "mpd", "Music Player Daemon", ""},
	{"spamd", matchSpamd, "spamassassin", "SpamAssassin spamd", ""},
	{"sentinel", matchRedis, "redis", "Redis key-value store", "7.0.15"},
	{"dropbear", matchBanner, "ssh", "Dropbear sshd", "2022.83"},
	{"vnc", matchBanner, "vnc", "", ""},
	{"iperf3", matchIPerf3, "iperf3", "iperf3", ""},
	{"stun", matchSTUN, "stun", "coturn", "4.6.1"},
	{"sip", matchSIP, "sip", "Kamailio SIP proxy", "5.6.3"},
	{"mumble", matchMumble, "mumble", "Mumble server", "1.3.4"},
	{"xrdp", matchRDP, "ms-wbt-server", "", ""},
	{"rabbitmq", matchAMQP, "amqp", "RabbitMQ", "3.10.8"},
	// epmd answered on port 12962, which its answer repeats.
	{"epmd", func(b []byte) (Service, bool) { return matchEPMD(b, 12962) }, "epmd", "Erlang Port Mapper Daemon", ""},
}

func readReply(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "replies", name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMatchReplies(t *testing.T) {
	for _, tt := range replyTests {
		t.Run(tt.file, func(t *testing.T) {
			b := readReply(t, tt.file)
			s, ok := tt.match(b)
			if !ok {
				t.Fatalf("%s: no match for %q", tt.file, Escape(b))
			}
			if s.Name != tt.svc || s.Product != tt.product || s.Version != tt.version {
				t.Errorf("%s = %q %q %q; want %q %q %q", tt.file, s.Name, s.Product, s.Version, tt.svc, tt.product, tt.version)
			}
			if s.Evidence == "" && tt.file != "mumble" {
				t.Errorf("%s: no evidence", tt.file)
			}
		})
	}
	// No matcher takes another protocol's answer for its own.
	for _, tt := range replyTests {
		b := readReply(t, tt.file)
		for _, other := range replyTests {
			if other.svc == tt.svc {
				continue
			}
			if s, ok := other.match(b); ok && s.Name == other.svc && other.svc != "http" && !(tt.svc == "ipp" || tt.svc == "http-proxy") {
				t.Errorf("the %s matcher takes %s's reply: %s %q", other.file, tt.file, s.Name, s.Product)
			}
		}
	}
}

// TestHint sends a port's next probe by what a wrong one drew.
func TestHint(t *testing.T) {
	for in, want := range map[string]string{
		"UNKNOWN_COMMAND\r\nUNKNOWN_COMMAND\r\n":                   "beanstalkd",
		"ERR UNKNOWN_COMMAND Unknown+server+commandGET\r\n":        "gearman",
		"ERROR :\"Oops, HTTP request received? This is IRC!\"\r\n": "irc",
		"AMQP\x00\x00\x09\x01":                                     "amqp",
		"SPAMD/1.0 76 Bad header line: GET / HTTP/1.1\r\n":         "spamd",
		"ERR INVALID-ARGUMENT\nERR UNKNOWN-COMMAND\n":              "",
		"ERR UNKNOWN-COMMAND\nERR UNKNOWN-COMMAND\n":               "nut",
		"\t": "iperf3",
		"cvs [pserver aborted]: bad auth protocol start: GET / HTTP/1.1\n":                           "cvs",
		"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' id=''>": "xmpp",
	} {
		if got := hint([]byte(in)); got != want {
			t.Errorf("hint(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestMatchEPMD(t *testing.T) {
	b := append([]byte{0, 0, 0x11, 0x11}, "name rabbit at port 25672\n"...)
	s, ok := matchEPMD(b, 4369)
	if !ok || s.Get("nodes") != "rabbit:25672" || s.Confidence != 10 {
		t.Errorf("matchEPMD(%q, 4369) = %+v, %v; want node rabbit:25672", b, s, ok)
	}
	if _, ok := matchEPMD(b, 4370); ok {
		t.Errorf("matchEPMD(%q, 4370) matched: the port it names is another", b)
	}
}
