package audit

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Policy
	}{
		{"empty", "", &Policy{}},
		{"comments only", "# nothing yet\n", &Policy{}},
		{"null document", "---\n", &Policy{}},
		{"empty allow list allows nothing", "allow: []\n", &Policy{Allow: []Allow{}}},
		{"everything", `version: 1
fail_on: high
allow:
  - port: 22
    proto: tcp
    process: sshd
    comment: SSH for the admins
  - port: [80, "443", 8000-8100]
    process: [nginx, "python3*"]
    address: [0.0.0.0, "::", 10.0.0.0/8]
    user: [www-data, 33]
  - address: loopback
except:
  - rule: network-database
    port: 6379
    reason: the VPC firewall keeps it in
  - rule: syncookies-off
  - rule: "*"
    process: busybox
severity:
  root-unprivileged-port: info
  all-interfaces: medium
`, &Policy{
			FailOn: registry.SevHigh,
			Allow: []Allow{
				{Match: Match{Ports: []registry.Range{{First: 22, Last: 22}}, Proto: sockets.TCP, Processes: []string{"sshd"}}, Comment: "SSH for the admins", Line: 4},
				{Match: Match{Ports: []registry.Range{{First: 80, Last: 80}, {First: 443, Last: 443}, {First: 8000, Last: 8100}},
					Processes: []string{"nginx", "python3*"}, Addresses: []string{"0.0.0.0", "::", "10.0.0.0/8"}, Users: []string{"www-data", "33"}}, Line: 8},
				{Match: Match{Addresses: []string{"loopback"}}, Line: 12},
			},
			Except: []Exception{
				{Rule: "network-database", Match: Match{Ports: []registry.Range{{First: 6379, Last: 6379}}}, Reason: "the VPC firewall keeps it in", Line: 14},
				{Rule: "syncookies-off", Line: 17},
				{Rule: "*", Match: Match{Processes: []string{"busybox"}}, Line: 18},
			},
			Severity: map[string]registry.Severity{"root-unprivileged-port": registry.SevInfo, "all-interfaces": registry.SevMedium},
		}},
		{"fail_on never", "fail_on: never\n", &Policy{FailOn: Never}},
		{"flow style", "{allow: [{port: 22}], except: [{rule: not-allowed, address: private}]}", &Policy{
			Allow:  []Allow{{Match: Match{Ports: []registry.Range{{First: 22, Last: 22}}}, Line: 1}},
			Except: []Exception{{Rule: "not-allowed", Match: Match{Addresses: []string{"private"}}, Line: 1}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePolicy([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParsePolicy(%q) error: %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePolicy(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantLine int
		want     []string // substrings of the message
	}{
		{"unknown top key", "version: 1\ncolour: red\n", 2, []string{`unknown key "colour"`, "allow, except"}},
		{"unknown allow key", "allow:\n  - port: 22\n    program: sshd\n", 3, []string{`unknown key "program"`, "an allow entry", "process"}},
		{"unknown except key", "except:\n  - rule: risky-service\n    ports: 23\n", 3, []string{`unknown key "ports"`, "an except entry"}},
		{"repeated key", "allow:\n  - port: 22\n    port: 23\n", 3, []string{`key "port" given twice`, "line 2"}},
		{"bad port", "allow:\n  - port: 70000\n", 2, []string{`port "70000"`, "0-65535"}},
		{"backwards range", "allow:\n  - port: 90-80\n", 2, []string{`port "90-80"`, "A-B"}},
		{"port is a float", "allow:\n  - port: 22.5\n", 2, []string{`port "22.5"`}},
		{"port is a mapping", "allow:\n  - port: {a: 1}\n", 2, []string{"port", "a mapping"}},
		{"empty port list", "allow:\n  - port: []\n", 2, []string{"empty list"}},
		{"bad proto", "allow:\n  - port: 22\n    proto: sctp\n", 3, []string{`proto "sctp"`, "tcp or udp"}},
		{"bad address", "allow:\n  - address: localhost\n", 2, []string{`address "localhost"`, "loopback", "CIDR"}},
		{"bad pattern", "allow:\n  - process: \"[\"\n", 2, []string{`process "["`, "pattern"}},
		{"allow everything", "allow:\n  - comment: all of it\n", 2, []string{"every listener"}},
		{"allow is a mapping", "allow:\n  port: 22\n", 2, []string{"allow: want a list"}},
		{"allow with no value", "allow:\n", 1, []string{"allow has no value"}},
		{"except without rule", "except:\n  - port: 22\n", 2, []string{"no rule"}},
		{"unknown rule", "except:\n  - rule: redis\n", 2, []string{`rule "redis"`, "network-database"}},
		{"kernel rule with a port", "except:\n  - rule: syncookies-off\n    port: 22\n", 2, []string{"kernel setting"}},
		{"star alone", "except:\n  - rule: \"*\"\n", 2, []string{"every finding"}},
		{"bad fail_on", "fail_on: extreme\n", 1, []string{`"extreme"`, "info, low, medium, high or never"}},
		{"bad version", "version: 2\n", 1, []string{`version "2"`, "version 1"}},
		{"severity of unknown rule", "severity:\n  redis: high\n", 2, []string{`unknown rule "redis"`}},
		{"bad severity", "severity:\n  all-interfaces: off\n", 2, []string{`"off"`, "exception"}},
		{"not a mapping", "- 1\n- 2\n", 1, []string{"want a mapping", "a list"}},
		{"a scalar", "hello\n", 1, []string{"want a mapping"}},
		{"two documents", "allow: []\n---\nallow: []\n", 3, []string{"second YAML document"}},
		{"alias", "a: &x 1\n", 1, []string{`unknown key "a"`}},
		{"alias value", "version: &v 1\nfail_on: *v\n", 2, []string{"aliases"}},
		{"syntax error", "allow:\n  - port: 22\n  bad\n", 3, []string{"not valid YAML"}},
		{"tab indentation", "allow:\n\t- port: 22\n", 2, []string{"not valid YAML"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tt.in))
			if err == nil {
				t.Fatalf("ParsePolicy(%q) = %+v, nil; want an error", tt.in, p)
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("ParsePolicy(%q) error %v is not a *PolicyError", tt.in, err)
			}
			if pe.Line != tt.wantLine {
				t.Errorf("ParsePolicy(%q) error %q at line %d; want line %d", tt.in, err, pe.Line, tt.wantLine)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParsePolicy(%q) error %q; want it to mention %q", tt.in, err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("ParsePolicy(%q) error %q has several lines", tt.in, err)
			}
		})
	}
	if _, err := ParsePolicy(make([]byte, MaxPolicySize+1)); err == nil {
		t.Errorf("ParsePolicy(a file over MaxPolicySize) error = nil")
	}
}

// TestExamplePolicy parses the policy the README shows.
func TestExamplePolicy(t *testing.T) {
	b, err := os.ReadFile("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		t.Fatalf("ParsePolicy(testdata/policy.yaml): %v", err)
	}
	if len(p.Allow) == 0 || len(p.Except) == 0 || p.FailOn != registry.SevMedium || p.Reach == nil || len(p.Reach.Classes["internet"]) != 3 {
		t.Errorf("ParsePolicy(testdata/policy.yaml) = %+v; want allow and except entries, fail_on medium, reach for the internet", p)
	}
}

func TestPolicyAllow(t *testing.T) {
	sshd := proc(10, "sshd", 0, "/usr/sbin/sshd")
	nginx := proc(20, "nginx", 33, "/usr/sbin/nginx")
	app := proc(30, "python3.11", 1000, "/usr/bin/python3.11", "app.py")
	socks := []sockets.Socket{
		listen("0.0.0.0:22", sshd), listen("[::]:22", sshd),
		listen("0.0.0.0:443", nginx), listen("[::]:443", nginx),
		listen("127.0.0.1:8000", app),
		listen("10.0.0.5:9100", proc(40, "node_exporter", 65534, "")),
		udp("0.0.0.0:5353", proc(50, "avahi-daemon", 105, "")),
	}
	tests := []struct {
		name   string
		policy string
		want   []string // where the not-allowed findings are
	}{
		{"all allowed", `allow:
  - {port: 22, process: sshd, user: root}
  - {port: 443, proto: tcp, process: nginx, address: [0.0.0.0, "::"]}
  - {address: loopback}
  - {port: 9100, address: 10.0.0.0/8}
  - {port: 5353, proto: udp}
`, []string{}},
		{"allow none", "allow: []\n", []string{"tcp 0.0.0.0:22", "tcp 0.0.0.0:443", "tcp 127.0.0.1:8000", "tcp 10.0.0.5:9100", "udp 0.0.0.0:5353"}},
		{"wrong process", `allow:
  - {port: 22, process: dropbear}
  - {process: ["nginx", "python3*", "node_*", "avahi*"]}
`, []string{"tcp 0.0.0.0:22"}},
		{"an address of two", `allow:
  - {port: [22, 443], address: 0.0.0.0}
  - {port: [8000, 9100, 5353]}
`, []string{"tcp [::]:22", "tcp [::]:443"}},
		{"wrong proto and user", `allow:
  - {port: 5353, proto: tcp}
  - {port: [22, 443], user: [www-data, "0"]}
  - {port: [8000, 9100]}
`, []string{"tcp 0.0.0.0:443", "udp 0.0.0.0:5353"}},
		{"private", `allow:
  - {address: private}
  - {port: [22, 443, 5353]}
`, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tt.policy))
			if err != nil {
				t.Fatal(err)
			}
			rep := Check(Input{Sockets: socks}, p)
			got := []string{}
			for _, f := range rep.Findings {
				if f.Rule == RuleNotAllowed {
					got = append(got, f.Socket.Proto.String()+" "+f.Socket.Local.String())
				}
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("not-allowed findings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPolicyExceptAndSeverity(t *testing.T) {
	redis := proc(101, "redis-server", 0, "")
	telnetd := proc(102, "busybox", 0, "/bin/busybox", "telnetd", "-F")
	socks := []sockets.Socket{listen("0.0.0.0:6379", redis), listen("[::]:6379", redis), listen("0.0.0.0:23", telnetd)}
	host := linuxHost
	host.TCPSyncookies = 0
	tests := []struct {
		name         string
		policy       string
		want         []summary
		wantExcepted []string // rules
	}{
		{"no policy", "", []summary{
			{"network-database", "high", "tcp 0.0.0.0:6379"}, {"risky-service", "high", "tcp 0.0.0.0:23"},
			{"syncookies-off", "medium", "net.ipv4.tcp_syncookies"}, {"root-unprivileged-port", "low", "tcp 0.0.0.0:6379"},
		}, []string{}},
		{"except by rule and port", `except:
  - {rule: network-database, port: 6379, reason: firewalled}
  - {rule: syncookies-off}
`, []summary{{"risky-service", "high", "tcp 0.0.0.0:23"}, {"root-unprivileged-port", "low", "tcp 0.0.0.0:6379"}},
			[]string{"network-database", "syncookies-off"}},
		{"except by busybox applet name", `except:
  - {rule: risky-service, process: telnetd}
  - {rule: "*", process: redis-server}
`, []summary{{"syncookies-off", "medium", "net.ipv4.tcp_syncookies"}},
			[]string{"network-database", "risky-service", "root-unprivileged-port"}},
		{"an exception for another port does not apply", `except:
  - {rule: network-database, port: 6380}
  - {rule: risky-service, address: loopback}
  - {rule: network-database, address: 0.0.0.0}
`, []summary{
			{"network-database", "high", "tcp 0.0.0.0:6379"}, {"risky-service", "high", "tcp 0.0.0.0:23"},
			{"syncookies-off", "medium", "net.ipv4.tcp_syncookies"}, {"root-unprivileged-port", "low", "tcp 0.0.0.0:6379"},
		}, []string{}},
		{"every address matches", `except:
  - {rule: network-database, address: [0.0.0.0, "::"]}
`, []summary{
			{"risky-service", "high", "tcp 0.0.0.0:23"}, {"syncookies-off", "medium", "net.ipv4.tcp_syncookies"},
			{"root-unprivileged-port", "low", "tcp 0.0.0.0:6379"},
		}, []string{"network-database"}},
		{"severity override", `severity:
  risky-service: low
  syncookies-off: high
`, []summary{
			{"network-database", "high", "tcp 0.0.0.0:6379"}, {"syncookies-off", "high", "net.ipv4.tcp_syncookies"},
			{"risky-service", "low", "tcp 0.0.0.0:23"}, {"root-unprivileged-port", "low", "tcp 0.0.0.0:6379"},
		}, []string{}},
		{"allowed is not excepted", `allow:
  - {port: [23, 6379]}
`, []summary{
			{"network-database", "high", "tcp 0.0.0.0:6379"}, {"risky-service", "high", "tcp 0.0.0.0:23"},
			{"syncookies-off", "medium", "net.ipv4.tcp_syncookies"}, {"root-unprivileged-port", "low", "tcp 0.0.0.0:6379"},
		}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tt.policy))
			if err != nil {
				t.Fatal(err)
			}
			rep := Check(Input{Sockets: socks, Host: host, OS: "linux"}, p)
			if diff := cmp.Diff(tt.want, summarize(rep.Findings)); diff != "" {
				t.Errorf("findings mismatch (-want +got):\n%s", diff)
			}
			excepted := []string{}
			for _, e := range rep.Excepted {
				excepted = append(excepted, e.Rule)
				if e.Line == 0 {
					t.Errorf("excepted %s carries no exception line", e.Rule)
				}
			}
			if diff := cmp.Diff(tt.wantExcepted, excepted); diff != "" {
				t.Errorf("excepted mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPolicyThreshold: fail_on against a report's findings.
func TestPolicyThreshold(t *testing.T) {
	socks := []sockets.Socket{listen("0.0.0.0:5432", proc(1, "postgres", 100, "")), listen("0.0.0.0:47000", proc(2, "x", 100, ""))}
	rep := Check(Input{Sockets: socks}, nil) // medium network-database, low all-interfaces
	for _, tt := range []struct {
		failOn string
		want   int
	}{{"info", 2}, {"low", 2}, {"medium", 1}, {"high", 0}, {"never", 0}} {
		p, err := ParsePolicy([]byte("fail_on: " + tt.failOn))
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.AtLeast(p.FailOn); got != tt.want {
			t.Errorf("fail_on %s: %d violations; want %d", tt.failOn, got, tt.want)
		}
	}
}

func TestMatchAddress(t *testing.T) {
	tests := []struct {
		spec, addr string
		want       bool
	}{
		{"any", "0.0.0.0", true},
		{"loopback", "127.0.0.53", true},
		{"loopback", "::1", true},
		{"loopback", "::ffff:127.0.0.1", true},
		{"loopback", "0.0.0.0", false},
		{"private", "10.1.2.3", true},
		{"private", "fe80::1", true},
		{"private", "100.100.1.1", true},
		{"private", "127.0.0.1", true},
		{"private", "8.8.8.8", false},
		{"private", "::", false},
		{"0.0.0.0", "0.0.0.0", true},
		{"0.0.0.0", "::", false},
		{"::", "::", true},
		{"10.0.0.0/8", "10.9.9.9", true},
		{"10.0.0.0/8", "::ffff:10.9.9.9", true},
		{"10.0.0.0/8", "0.0.0.0", false},
		{"0.0.0.0/0", "0.0.0.0", true},
		{"2001:db8::/32", "2001:db8::5", true},
		{"::ffff:10.0.0.0/104", "10.1.1.1", true},
		{"bogus", "10.1.1.1", false},
	}
	for _, tt := range tests {
		if got := matchAddress(tt.spec, netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("matchAddress(%q, %s) = %v; want %v", tt.spec, tt.addr, got, tt.want)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		"", "allow: []", "version: 1\nfail_on: high\n",
		"allow:\n  - port: [22, 8000-8100]\n    proto: tcp\n    process: [sshd, \"py*\"]\n    address: [loopback, 10.0.0.0/8]\n    user: root\n",
		"except:\n  - rule: network-database\n    port: 6379\n    reason: x\n",
		"severity:\n  all-interfaces: info\n", "reach:\n  internet: [22, 443]\n  lan: []\n", "reach: {lan: 1-1024}", "a: &x [1]\nb: *x\n", "- 1", "{allow: [{port: 22}]}", "allow:\n\t- x",
	} {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile("testdata/policy.yaml"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Errorf("ParsePolicy(%q) error %v is not a *PolicyError", b, err)
			}
			return
		}
		for _, a := range p.Allow {
			if a.isZero() {
				t.Errorf("ParsePolicy(%q) accepted an allow entry that allows everything", b)
			}
			checkMatch(t, b, a.Match)
		}
		for _, x := range p.Except {
			if x.Rule != "*" && ruleIndex(x.Rule) < 0 {
				t.Errorf("ParsePolicy(%q) accepted unknown rule %q", b, x.Rule)
			}
			checkMatch(t, b, x.Match)
		}
		// A parsed policy can be used, with the firewall's verdicts too.
		Check(Input{Sockets: []sockets.Socket{listen("0.0.0.0:22", proc(1, "sshd", 0, "")), udp("[::]:53", nil)}, Host: linuxHost, OS: "linux",
			Firewall: &Firewall{Ports: []PortReach{admitted(sockets.TCP, 22, firewall.Accept, firewall.Accept, nil)}}}, p)
	})
}

func checkMatch(t *testing.T, b []byte, m Match) {
	t.Helper()
	for _, r := range m.Ports {
		if r.First > r.Last {
			t.Errorf("ParsePolicy(%q) accepted the backwards range %v", b, r)
		}
	}
	for _, a := range m.Addresses {
		if !validAddress(a) {
			t.Errorf("ParsePolicy(%q) accepted the address %q", b, a)
		}
	}
}
