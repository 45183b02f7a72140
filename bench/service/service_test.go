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

// want is what a correct identification says: the service name and a
// pattern the product must match ("" when the server names no product).
type want struct {
	srv     *servers.Server
	service string
	product *regexp.Regexp
	tls     bool
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
	wants := []want{
		{servers.Nginx(b), "http", re(`(?i)nginx`), false},
		{servers.NginxTLS(b, servers.TLSOptions{}), "http", re(`(?i)nginx`), true},
		{servers.SSHD(b), "ssh", re(`(?i)openssh`), false},
		{servers.SMTP(b), "smtp", re(`(?i)exim`), false},
		{servers.FTP(b), "ftp", re(`(?i)vsftpd`), false},
		{servers.IMAP(b), "imap", re(`(?i)dovecot`), false},
		{servers.POP3(b), "pop3", re(`(?i)dovecot`), false},
		{servers.Redis(b), "redis", re(`(?i)redis`), false},
		{servers.Memcached(b), "memcached", re(`(?i)memcache`), false},
		{servers.MariaDB(b), "mysql", re(`(?i)mariadb|mysql`), false},
		{servers.Postgres(b), "postgresql", re(`(?i)postgres`), false},
		{servers.Telnet(b), "telnet", nil, false},
		{&dnsTCP, "domain", re(`(?i)dnsmasq`), false},
		{dns, "domain", re(`(?i)dnsmasq`), false},
		{servers.NTP(b), "ntp", nil, false},
		{servers.SNMP(b), "snmp", re(`(?i)snmp`), false},
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
			n, lines := score(b, tool.name, out, wants)
			if i == 0 {
				right[tool.name] = n
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
	b.Logf("%d services; identified correctly: portctl %d, nmap %d", len(wants), right["portctl"], right["nmap"])
	b.Logf("median wall time of %d runs: portctl %v, nmap %v: ratio %.2fx", runs, pt.Round(time.Millisecond), nt.Round(time.Millisecond), pt.Seconds()/nt.Seconds())
	b.ReportMetric(float64(right["portctl"]), "portctl-right")
	b.ReportMetric(float64(right["nmap"]), "nmap-right")
	b.ReportMetric(pt.Seconds()/nt.Seconds(), "time-ratio")
}

// score counts the services of wants the XML tool wrote at path
// identifies right, and describes each.
func score(b *testing.B, tool, path string, wants []want) (int, []string) {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var run xmlRun
	if err := xml.Unmarshal(data, &run); err != nil {
		b.Fatalf("%s: %v", path, err)
	}
	n := 0
	var lines []string
	for _, w := range wants {
		got := "(not reported)"
		ok := false
		for _, h := range run.Hosts {
			for _, p := range h.Ports {
				if p.Port != int(w.srv.Addr.Port()) || p.Proto != w.srv.Proto {
					continue
				}
				s := p.Service
				got = fmt.Sprintf("%s %s: %s%s %q %q", p.State.State, s.Method, map[bool]string{true: "ssl/"}[s.Tunnel == "ssl"], s.Name, s.Product, s.Version)
				ok = p.State.State == "open" && s.Name == w.service && (w.product == nil || w.product.MatchString(s.Product)) &&
					(!w.tls || s.Tunnel == "ssl")
			}
		}
		mark := "MISS"
		if ok {
			n++
			mark = "ok  "
		}
		lines = append(lines, fmt.Sprintf("%-10s %-9s %s %s", w.srv.Name+"/"+w.srv.Proto, tool, mark, got))
	}
	return n, lines
}
