// Package service compares portctl's service detection with nmap -sV on
// the same real servers, started from their Debian packages, in one run:
// wall time, and how many services each identifies correctly (service and
// product). Run it through bench/service/run, which puts it in a network
// namespace of its own: nmap's UDP scan sends raw packets.
package service

import (
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/servers"
)

// want is what a correct identification says: the service name (a
// pattern: nmap and portctl name some services differently, "ipp" or
// "http" for CUPS) and a pattern the product must match (nil when the
// server names no product). version says the server tells its version,
// which a right answer then carries (see versionRight).
type want struct {
	srv     *servers.Server
	service *regexp.Regexp
	product *regexp.Regexp
	tls     bool
	version bool
}

// xmlRun is the part of nmap's XML both tools write that matters here.
type xmlRun struct {
	Hosts []struct {
		Ports []struct {
			Proto string `xml:"protocol,attr"`
			Port  int    `xml:"portid,attr"`
			State struct {
				State string `xml:"state,attr"`
			} `xml:"state"`
			Service struct {
				Name    string `xml:"name,attr"`
				Product string `xml:"product,attr"`
				Version string `xml:"version,attr"`
				Tunnel  string `xml:"tunnel,attr"`
				Method  string `xml:"method,attr"`
			} `xml:"service"`
		} `xml:"ports>port"`
	} `xml:"host"`
}

func BenchmarkServiceDetection(b *testing.B) {
	portctl := os.Getenv("PORTCTL")
	if portctl == "" {
		b.Skip("set PORTCTL to the portctl binary (bench/service/run does)")
	}
	if _, err := exec.LookPath("nmap"); err != nil {
		b.Skip("needs nmap")
	}
	re := regexp.MustCompile
	dns := servers.DNS(b)
	dnsTCP := *dns
	dnsTCP.Proto = "tcp"
	svc := func(name string) *regexp.Regexp { return re(`^(?:` + name + `)$`) }
	w := func(srv *servers.Server, service, product string, version bool) want {
		var p *regexp.Regexp
		if product != "" {
			p = re(`(?i)` + product)
		}
		return want{srv: srv, service: svc(service), product: p, version: version}
	}
	wants := []want{
		// The set the tests use (internal/servers).
		w(servers.Nginx(b), "http", "nginx", true),
		{srv: servers.NginxTLS(b, servers.TLSOptions{}), service: svc("http"), product: re(`(?i)nginx`), tls: true, version: true},
		w(servers.SSHD(b), "ssh", "openssh", true),
		w(servers.SMTP(b), "smtp", "exim", true),
		w(servers.FTP(b), "ftp", "vsftpd", true),
		w(servers.IMAP(b), "imap", "dovecot", false),
		w(servers.POP3(b), "pop3", "dovecot", false),
		w(servers.Redis(b), "redis", "redis", true),
		w(servers.Memcached(b), "memcached", "memcache", true),
		w(servers.MariaDB(b), "mysql", "mariadb|mysql", true),
		w(servers.Postgres(b), "postgresql", "postgres", false),
		w(servers.Telnet(b), "telnet", "", false),
		w(&dnsTCP, "domain", "dnsmasq", true),
		w(dns, "domain", "dnsmasq", true),
		w(servers.NTP(b), "ntp", "", false),
		w(servers.SNMP(b), "snmp", "snmp", true),
		// Directory, messaging, job queues, chat.
		w(servers.LDAP(b), "ldap", "openldap", false),
		w(servers.MQTT(b), "mqtt", "mosquitto", true),
		w(servers.NATS(b), "nats", "nats", true),
		w(servers.Beanstalkd(b), "beanstalkd", "beanstalk", true),
		w(servers.Gearman(b), "gearman", "gearman", true),
		w(servers.IRC(b), "irc", "ngircd", true),
		w(servers.InspIRCd(b), "irc", "inspircd", true),
		w(servers.XMPP(b), "xmpp-client|jabber|xmpp", "", false),
		w(servers.RabbitMQ(b), "amqp", "rabbitmq", true),
		w(servers.EPMD(b), "epmd", "erlang|epmd", false),
		// Web servers, proxies, caches.
		w(servers.Apache(b), "http", "apache", true),
		w(servers.Lighttpd(b), "http", "lighttpd", true),
		w(servers.Tomcat(b), "http", "tomcat", true),
		w(servers.Gunicorn(b), "http", "gunicorn", false),
		w(servers.Icecast(b), "http|icecast", "icecast", true),
		w(servers.Squid(b), "http-proxy|http", "squid", true),
		w(servers.Tinyproxy(b), "http-proxy|http", "tinyproxy", true),
		w(servers.Privoxy(b), "http-proxy|http", "privoxy", true),
		w(servers.HAProxy(b), "http", "haproxy", false),
		w(servers.Varnish(b), "http|http-proxy", "varnish", true),
		w(servers.SOCKS(b), "socks5", "", false),
		// File, print, version control.
		w(servers.GitDaemon(b), "git", "", false),
		w(servers.SVN(b), "svn|svnserve", "subversion", false),
		w(servers.CVS(b), "cvspserver", "", false),
		w(servers.Rsync(b), "rsync", "", false),
		w(servers.Samba(b), "netbios-ssn|microsoft-ds", "samba", false),
		w(servers.CUPS(b), "ipp|http", "cups", true),
		w(servers.TFTP(b), "tftp", "", false),
		// Databases and stores.
		w(servers.InfluxDB(b), "http", "influx", true),
		w(servers.Etcd(b), "http|etcd", "etcd", true),
		w(servers.RedisSentinel(b), "redis|redis-sentinel", "redis", true),
		// DNS.
		w(servers.BIND(b), "domain", "bind", true),
		w(servers.Unbound(b), "domain", "unbound", true),
		w(servers.NSD(b), "domain", "nsd", true),
		w(servers.Knot(b), "domain", "knot", true),
		w(servers.PowerDNS(b), "domain", "powerdns", true),
		w(servers.PowerDNSRecursor(b), "domain", "powerdns", true),
		// Monitoring agents.
		w(servers.ZabbixAgent(b), "zabbix-agent", "zabbix", true),
		w(servers.Munin(b), "munin", "munin", true),
		w(servers.NodeExporter(b), "http", "node.?exporter|prometheus", false),
		w(servers.UPS(b), "nut|ups|upsd", "network ups tools|nut", true),
		w(servers.GPSD(b), "gpsd|gpsd-ng", "gpsd", true),
		// Remote access, media, voice, the rest.
		w(servers.Dropbear(b), "ssh", "dropbear", true),
		w(servers.VNC(b), "vnc", "", false),
		// xrdp names no product: nmap's "Microsoft Terminal Service" is wrong.
		w(servers.RDP(b), "ms-wbt-server", "^$|xrdp", false),
		w(servers.Spamd(b), "spamassassin|spamd", "spamassassin|spamd", false),
		w(servers.IPerf3(b), "iperf3", "", false),
		w(servers.MPD(b), "mpd", "music player daemon|mpd", false),
		w(servers.STUN(b), "stun", "coturn", true),
		w(servers.SIP(b), "sip", "kamailio", true),
		w(servers.Mumble(b), "mumble", "mumble|murmur", true),
	}
	var tcp, udp []string
	for _, w := range wants {
		p := strconv.Itoa(int(w.srv.Addr.Port()))
		if w.srv.Proto == "udp" {
			udp = append(udp, p)
		} else {
			tcp = append(tcp, p)
		}
	}
	ports := "T:" + strings.Join(tcp, ",") + ",U:" + strings.Join(udp, ",")
	dir := b.TempDir()
	tools := []struct {
		name string
		args func(out string) []string
	}{
		{"portctl", func(out string) []string {
			return []string{portctl, "scan", "-sT", "-sU", "-sV", "-n", "-Pn", "-p", ports, "127.0.0.1", "-oX", out}
		}},
		{"nmap", func(out string) []string {
			return []string{"nmap", "-sT", "-sU", "-sV", "-n", "-Pn", "-p", ports, "127.0.0.1", "-oX", out}
		}},
	}
	runs := 3
	if v, err := strconv.Atoi(os.Getenv("BENCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	times := map[string][]time.Duration{}
	right := map[string]int{}
	versions := map[string]int{}
	var report []string
	b.ResetTimer()
	for i := range runs {
		for _, tool := range tools { // interleaved: the same conditions for both
			out := filepath.Join(dir, fmt.Sprintf("%s-%d.xml", tool.name, i))
			args := tool.args(out)
			start := time.Now()
			if o, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
				b.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, o)
			}
			times[tool.name] = append(times[tool.name], time.Since(start))
			n, v, lines := score(b, tool.name, out, wants)
			if i == 0 {
				right[tool.name], versions[tool.name] = n, v
				report = append(report, lines...)
			}
		}
	}
	b.StopTimer()
	sort.Strings(report)
	for _, l := range report {
		b.Log(l)
	}
	med := func(ds []time.Duration) time.Duration {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	pt, nt := med(times["portctl"]), med(times["nmap"])
	told := 0
	for _, w := range wants {
		if w.version {
			told++
		}
	}
	b.Logf("%d services; identified correctly: portctl %d, nmap %d", len(wants), right["portctl"], right["nmap"])
	b.Logf("%d of them tell their version; the right version: portctl %d, nmap %d", told, versions["portctl"], versions["nmap"])
	b.Logf("median wall time of %d runs: portctl %v, nmap %v: ratio %.2fx", runs, pt.Round(time.Millisecond), nt.Round(time.Millisecond), pt.Seconds()/nt.Seconds())
	b.ReportMetric(float64(right["portctl"]), "portctl-right")
	b.ReportMetric(float64(right["nmap"]), "nmap-right")
	b.ReportMetric(float64(versions["portctl"]), "portctl-versions")
	b.ReportMetric(float64(versions["nmap"]), "nmap-versions")
	b.ReportMetric(pt.Seconds()/nt.Seconds(), "time-ratio")
}

// score counts the services of wants the XML tool wrote at path
// identifies right, and of those that tell their version, how many it
// gives right (versionRight); and describes each.
func score(b *testing.B, tool, path string, wants []want) (right, versions int, lines []string) {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var run xmlRun
	if err := xml.Unmarshal(data, &run); err != nil {
		b.Fatalf("%s: %v", path, err)
	}
	for _, w := range wants {
		got := "(not reported)"
		ok, vok := false, false
		for _, h := range run.Hosts {
			for _, p := range h.Ports {
				if p.Port != int(w.srv.Addr.Port()) || p.Proto != w.srv.Proto {
					continue
				}
				s := p.Service
				got = fmt.Sprintf("%s %s: %s%s %q %q", p.State.State, s.Method, map[bool]string{true: "ssl/"}[s.Tunnel == "ssl"], s.Name, s.Product, s.Version)
				ok = p.State.State == "open" && w.service.MatchString(s.Name) && (w.product == nil || w.product.MatchString(s.Product)) &&
					(!w.tls || s.Tunnel == "ssl")
				vok = ok && w.version && versionRight(s.Version, w.srv.Upstream)
			}
		}
		mark := "MISS"
		if ok {
			right++
			mark = "ok  "
		}
		if w.version {
			if vok {
				versions++
				mark += " v"
			} else {
				mark += " -"
			}
		} else {
			mark += "  "
		}
		lines = append(lines, fmt.Sprintf("%-16s %-7s %s %s", w.srv.Name+"/"+w.srv.Proto, tool, mark, got))
	}
	return right, versions, lines
}

// versionRight reports whether a reported version fits the package's
// upstream version: one of its parts (split at spaces, '-', '+' and '~')
// and the upstream version are each other's prefix at a dot ("7.1" for
// 7.1.1, "3" for InspIRCd 3.15.0, "1.6.7~rc0" for 1.6.7, MariaDB's
// "5.5.5-10.11.19-MariaDB-0+deb12u1" for 10.11.19), so "4.6.2" is wrong
// for Samba 4.17.12.
func versionRight(got, upstream string) bool {
	if upstream == "" {
		return false
	}
	prefix := func(a, b string) bool { return a == b || strings.HasPrefix(b, a+".") }
	for _, g := range strings.FieldsFunc(got, func(r rune) bool { return strings.ContainsRune(" -+~", r) }) {
		if g[0] >= '0' && g[0] <= '9' && (prefix(g, upstream) || prefix(upstream, g)) {
			return true
		}
	}
	return false
}

func TestVersionRight(t *testing.T) {
	for _, tt := range []struct {
		got, upstream string
		want          bool
	}{
		{"7.1", "7.1.1", true},
		{"3", "3.15.0", true},
		{"1.6.7~rc0", "1.6.7", true},
		{"5.5.5-10.11.19-MariaDB-0+deb12u1", "10.11.19", true},
		{"9.2p1 Debian 2+deb12u10", "9.2p1", true},
		{"3.22 rev 3.22", "3.22", true},
		{"4.6.2", "4.17.12", false},
		{"2.2.X - 2.3.X", "2.5.13", false},
		{"1.1", "1.12", false},
		{"", "1.0", false},
	} {
		if got := versionRight(tt.got, tt.upstream); got != tt.want {
			t.Errorf("versionRight(%q, %q) = %v; want %v", tt.got, tt.upstream, got, tt.want)
		}
	}
}
