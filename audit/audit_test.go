package audit

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// proc is a process for synthetic tables.
func proc(pid int, name string, uid uint32, exe string, args ...string) *sockets.Process {
	user := "user" + strconv.Itoa(int(uid))
	if uid == 0 {
		user = "root"
	}
	if exe == "" {
		exe = "/usr/bin/" + name
	}
	return &sockets.Process{PID: pid, Name: name, UID: uid, User: user, Exe: exe, Cmdline: append([]string{exe}, args...)}
}

// listen is a TCP listener on addr ("0.0.0.0:6379") held by p (nil for
// none).
func listen(addr string, p *sockets.Process) sockets.Socket {
	s := sockets.Socket{Proto: sockets.TCP, State: sockets.Listen, Local: netip.MustParseAddrPort(addr),
		Remote: netip.AddrPortFrom(netip.IPv4Unspecified(), 0), Inode: 1000}
	if s.Local.Addr().Is6() {
		s.Remote = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	}
	s.UID = 1000
	if p != nil {
		s.Processes = []*sockets.Process{p}
		s.UID = p.UID
	}
	return s
}

// udp is an unconnected UDP socket on addr.
func udp(addr string, p *sockets.Process) sockets.Socket {
	s := listen(addr, p)
	s.Proto, s.State = sockets.UDP, sockets.Close
	return s
}

// conn is an established TCP connection from local to remote.
func conn(local, remote string) sockets.Socket {
	return sockets.Socket{Proto: sockets.TCP, State: sockets.Established,
		Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote)}
}

// linuxHost is a host with Linux's default settings.
var linuxHost = netconf.Host{
	Ephemeral: registry.Range{First: 32768, Last: 60999}, UnprivilegedStart: 1024,
	TCPTWReuse: 2, TCPSyncookies: 1,
}

// summary is a finding reduced to what most tests compare.
type summary struct {
	Rule     string
	Severity string
	Where    string // "tcp 0.0.0.0:6379" or the setting
}

func summarize(fs []Finding) []summary {
	out := []summary{}
	for _, f := range fs {
		s := summary{Rule: f.Rule, Severity: f.Severity.String(), Where: f.Setting}
		if f.Socket != nil {
			s.Where = f.Socket.Proto.String() + " " + f.Socket.Local.String()
		}
		out = append(out, s)
	}
	return out
}

func TestCheckRules(t *testing.T) {
	redis := proc(100, "redis-server", 112, "/usr/bin/redis-server", "*:6379")
	tests := []struct {
		name  string
		socks []sockets.Socket
		host  netconf.Host
		want  []summary
	}{
		{"nothing", nil, linuxHost, []summary{}},
		{"redis on all interfaces", []sockets.Socket{listen("0.0.0.0:6379", redis), listen("[::]:6379", redis)}, linuxHost,
			[]summary{{"network-database", "high", "tcp 0.0.0.0:6379"}}},
		{"redis on loopback", []sockets.Socket{listen("127.0.0.1:6379", redis), listen("[::1]:6379", redis)}, linuxHost,
			[]summary{}},
		{"redis by program on another port", []sockets.Socket{listen("0.0.0.0:7777", redis)}, linuxHost,
			[]summary{{"network-database", "high", "tcp 0.0.0.0:7777"}}},
		{"redis on a private address is one level lower", []sockets.Socket{listen("10.1.2.3:6379", redis)}, linuxHost,
			[]summary{{"network-database", "medium", "tcp 10.1.2.3:6379"}}},
		{"redis on a public address", []sockets.Socket{listen("203.0.113.7:6379", redis)}, linuxHost,
			[]summary{{"network-database", "high", "tcp 203.0.113.7:6379"}}},
		{"postgres is medium", []sockets.Socket{listen("0.0.0.0:5432", proc(200, "postgres", 113, ""))}, linuxHost,
			[]summary{{"network-database", "medium", "tcp 0.0.0.0:5432"}}},
		{"mysql by port behind docker-proxy", []sockets.Socket{listen("0.0.0.0:3306", &sockets.Process{PID: 300, Name: "docker-proxy", UID: 0,
			DockerProxy: &sockets.DockerProxy{Proto: "tcp", Host: netip.MustParseAddrPort("0.0.0.0:3306"), Container: netip.MustParseAddrPort("172.17.0.2:3306")}})}, linuxHost,
			[]summary{{"network-database", "medium", "tcp 0.0.0.0:3306"}}},
		{"memcached udp", []sockets.Socket{udp("0.0.0.0:11211", proc(400, "memcached", 114, ""))}, linuxHost,
			[]summary{{"network-database", "high", "udp 0.0.0.0:11211"}}},
		{"busybox telnetd", []sockets.Socket{listen("0.0.0.0:23", proc(500, "busybox", 0, "/usr/bin/busybox", "telnetd", "-F"))}, linuxHost,
			[]summary{{"risky-service", "high", "tcp 0.0.0.0:23"}}},
		{"telnetd by program on another port", []sockets.Socket{listen("0.0.0.0:2300", proc(501, "in.telnetd", 0, "/usr/sbin/in.telnetd"))}, linuxHost,
			[]summary{{"risky-service", "high", "tcp 0.0.0.0:2300"}, {"root-unprivileged-port", "low", "tcp 0.0.0.0:2300"}}},
		{"telnet on loopback is low", []sockets.Socket{listen("127.0.0.1:23", nil)}, linuxHost,
			[]summary{{"risky-service", "low", "tcp 127.0.0.1:23"}}},
		{"docker api", []sockets.Socket{listen("0.0.0.0:2375", proc(600, "dockerd", 0, ""))}, linuxHost,
			[]summary{{"risky-service", "high", "tcp 0.0.0.0:2375"}}},
		{"docker api on loopback", []sockets.Socket{listen("127.0.0.1:2375", proc(600, "dockerd", 0, ""))}, linuxHost,
			[]summary{{"risky-service", "medium", "tcp 127.0.0.1:2375"}}},
		{"dockerd swarm port is not the API", []sockets.Socket{listen("[::]:2377", proc(600, "dockerd", 0, ""))}, linuxHost,
			[]summary{{"all-interfaces", "low", "tcp [::]:2377"}}},
		{"smb, netbios, rdp, vnc, x11, ftp", []sockets.Socket{
			listen("0.0.0.0:445", proc(700, "smbd", 0, "")), listen("0.0.0.0:139", proc(700, "smbd", 0, "")),
			udp("0.0.0.0:137", proc(701, "nmbd", 0, "")), listen("0.0.0.0:3389", proc(702, "xrdp", 0, "")),
			listen("0.0.0.0:5900", proc(703, "x11vnc", 1000, "")), listen("0.0.0.0:6000", proc(704, "Xorg", 0, "")),
			listen("0.0.0.0:21", proc(705, "vsftpd", 0, "")),
		}, linuxHost, []summary{
			{"risky-service", "high", "tcp 0.0.0.0:3389"}, {"risky-service", "high", "tcp 0.0.0.0:5900"},
			{"risky-service", "high", "tcp 0.0.0.0:6000"}, {"risky-service", "medium", "tcp 0.0.0.0:21"},
			{"risky-service", "medium", "tcp 0.0.0.0:139"}, {"risky-service", "medium", "tcp 0.0.0.0:445"},
			{"risky-service", "medium", "udp 0.0.0.0:137"}, {"root-unprivileged-port", "low", "tcp 0.0.0.0:6000"},
		}},
		{"node inspector", []sockets.Socket{listen("0.0.0.0:9229", proc(800, "node", 1000, ""))}, linuxHost,
			[]summary{{"exposed-debugger", "high", "tcp 0.0.0.0:9229"}}},
		{"pprof", []sockets.Socket{listen("[::]:6060", proc(801, "myapp", 1000, ""))}, linuxHost,
			[]summary{{"exposed-debugger", "medium", "tcp [::]:6060"}}},
		{"dev server on all interfaces", []sockets.Socket{listen("0.0.0.0:5173", proc(900, "node", 1000, ""))}, linuxHost,
			[]summary{{"all-interfaces", "low", "tcp 0.0.0.0:5173"}}},
		{"all interfaces with a remote client is fine", []sockets.Socket{
			listen("0.0.0.0:8081", proc(901, "myapp", 1000, "")), conn("10.0.0.1:8081", "10.0.0.9:50000")}, linuxHost,
			[]summary{}},
		{"a loopback client does not count", []sockets.Socket{
			listen("0.0.0.0:8081", proc(901, "myapp", 1000, "")), conn("127.0.0.1:8081", "127.0.0.1:50000")}, linuxHost,
			[]summary{{"all-interfaces", "low", "tcp 0.0.0.0:8081"}}},
		{"public services are left alone", []sockets.Socket{
			listen("0.0.0.0:22", proc(1, "sshd", 0, "")), listen("0.0.0.0:443", proc(2, "nginx", 0, "")),
			udp("0.0.0.0:53", proc(3, "named", 53, "")), listen("0.0.0.0:8443", proc(4, "caddy", 33, "")),
			listen("0.0.0.0:2222", proc(5, "sshd", 0, "")),
		}, linuxHost, []summary{}},
		{"root on an unprivileged port", []sockets.Socket{listen("10.0.0.1:8080", proc(1000, "java", 0, ""))}, linuxHost,
			[]summary{{"root-unprivileged-port", "low", "tcp 10.0.0.1:8080"}}},
		{"root on loopback is info", []sockets.Socket{listen("127.0.0.1:8080", proc(1000, "java", 0, ""))}, linuxHost,
			[]summary{{"root-unprivileged-port", "info", "tcp 127.0.0.1:8080"}}},
		{"root below the unprivileged start", []sockets.Socket{listen("10.0.0.1:80", proc(1000, "java", 0, ""))}, linuxHost,
			[]summary{}},
		{"systemd socket activation", []sockets.Socket{listen("10.0.0.1:9999", &sockets.Process{PID: 1, Name: "systemd"})}, linuxHost,
			[]summary{}},
		{"deleted executable", []sockets.Socket{
			listen("127.0.0.1:8080", proc(1100, "myapp", 1000, "/opt/myapp (deleted)")),
			listen("127.0.0.1:8081", proc(1100, "myapp", 1000, "/opt/myapp (deleted)"))}, linuxHost,
			[]summary{{"deleted-executable", "medium", "tcp 127.0.0.1:8080"}}},
		{"unknown listener", []sockets.Socket{listen("10.0.0.1:47123", nil)}, linuxHost,
			[]summary{{"unknown-listener", "low", "tcp 10.0.0.1:47123"}}},
		{"unknown listener on all interfaces", []sockets.Socket{listen("0.0.0.0:47123", nil)}, linuxHost,
			[]summary{{"all-interfaces", "low", "tcp 0.0.0.0:47123"}, {"unknown-listener", "low", "tcp 0.0.0.0:47123"}}},
		{"a registered port is not unknown", []sockets.Socket{listen("10.0.0.1:8080", nil)}, linuxHost,
			[]summary{}},
		{"udp client sockets in the ephemeral range", []sockets.Socket{udp("0.0.0.0:41234", proc(1200, "chronyd", 0, ""))}, linuxHost,
			[]summary{}},
		{"syncookies off", nil, netconf.Host{Ephemeral: linuxHost.Ephemeral, UnprivilegedStart: 1024, TCPSyncookies: 0},
			[]summary{{"syncookies-off", "medium", "net.ipv4.tcp_syncookies"}}},
		{"narrow ephemeral range", nil, netconf.Host{Ephemeral: registry.Range{First: 50000, Last: 60000}, UnprivilegedStart: 1024, TCPSyncookies: 1},
			[]summary{{"narrow-ephemeral-range", "low", "net.ipv4.ip_local_port_range"}}},
		{"very narrow ephemeral range, reserved ports counted", nil, netconf.Host{Ephemeral: registry.Range{First: 50000, Last: 55000},
			Reserved: []registry.Range{{First: 50000, Last: 52000}}, UnprivilegedStart: 1024, TCPSyncookies: 1},
			[]summary{{"narrow-ephemeral-range", "medium", "net.ipv4.ip_local_port_range"}}},
		{"unprivileged port start lowered", nil, netconf.Host{Ephemeral: linuxHost.Ephemeral, UnprivilegedStart: 0, TCPSyncookies: -1},
			[]summary{{"unprivileged-port-start", "low", "net.ipv4.ip_unprivileged_port_start"}}},
		{"unknown host: no kernel rules", nil, netconf.Host{}, []summary{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Check(Input{Sockets: tt.socks, Host: tt.host, OS: "linux"}, nil)
			if diff := cmp.Diff(tt.want, summarize(rep.Findings)); diff != "" {
				t.Errorf("Check findings mismatch (-want +got):\n%s", diff)
				for _, f := range rep.Findings {
					t.Logf("%s %s: %s", f.Severity, f.Rule, f.Title)
				}
			}
			for _, f := range rep.Findings {
				if f.Title == "" || f.Why == "" || f.Fix == "" || f.Key == "" {
					t.Errorf("finding %s has an empty title, why, fix or key: %+v", f.Rule, f)
				}
			}
		})
	}
}

// TestCheckUnprivilegedStartOtherOS: macOS and Windows let anyone bind
// any port by design.
func TestCheckUnprivilegedStartOtherOS(t *testing.T) {
	h := netconf.Host{Ephemeral: registry.Range{First: 49152, Last: 65535}, TCPSyncookies: -1}
	for _, goos := range []string{"darwin", "windows"} {
		rep := Check(Input{Host: h, OS: goos}, nil)
		if len(rep.Findings) != 0 {
			t.Errorf("Check(OS %s, start 0) = %v; want no finding", goos, summarize(rep.Findings))
		}
	}
}

func TestCheckFindingDetails(t *testing.T) {
	redis := proc(100, "redis-server", 0, "/usr/bin/redis-server", "*:6379")
	rep := Check(Input{Sockets: []sockets.Socket{listen("[::]:6379", redis), listen("0.0.0.0:6379", redis)}, Host: linuxHost, OS: "linux"}, nil)
	if len(rep.Findings) != 2 {
		t.Fatalf("Check(root redis on 0.0.0.0 and ::) = %v; want network-database and root-unprivileged-port", summarize(rep.Findings))
	}
	f := rep.Findings[0]
	if f.Rule != RuleNetworkDatabase || f.Service != "Redis" || f.Process != redis || f.Key != "network-database:tcp/6379/redis-server" {
		t.Errorf("first finding = rule %q service %q process %v key %q; want network-database, Redis, the redis process, network-database:tcp/6379/redis-server", f.Rule, f.Service, f.Process, f.Key)
	}
	wantAddrs := []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:6379"), netip.MustParseAddrPort("[::]:6379")}
	if diff := cmp.Diff(wantAddrs, f.Addresses, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("finding addresses mismatch (-want +got):\n%s", diff)
	}
	if !strings.Contains(f.Title, "all interfaces") || !strings.Contains(f.Fix, "127.0.0.1") {
		t.Errorf("finding title %q / fix %q: want \"all interfaces\" and 127.0.0.1", f.Title, f.Fix)
	}
	if len(rep.Listeners) != 1 || rep.Listeners[0].Exposure != "all" || len(rep.Listeners[0].Addresses) != 2 {
		t.Errorf("Listeners = %+v; want one, exposure all, two addresses", rep.Listeners)
	}
	// JSON: snake_case fields, severities as words.
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"rule":"network-database"`, `"severity":"high"`, `"key":`, `"socket":{`, `"process":{`, `"addresses":["0.0.0.0:6379","[::]:6379"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("json.Marshal(finding) = %s; want it to contain %s", b, want)
		}
	}
	counts := rep.Counts()
	if counts[registry.SevHigh] != 1 || counts[registry.SevLow] != 1 || len(counts) != 2 {
		t.Errorf("Counts() = %v; want high 1, low 1", counts)
	}
	for _, tt := range []struct {
		threshold registry.Severity
		want      int
	}{{registry.SevInfo, 2}, {registry.SevLow, 2}, {registry.SevMedium, 1}, {registry.SevHigh, 1}, {Never, 0}} {
		if got := rep.AtLeast(tt.threshold); got != tt.want {
			t.Errorf("AtLeast(%s) = %d; want %d", ThresholdName(tt.threshold), got, tt.want)
		}
	}
}

// TestCheckDeterministic: the order of the table does not change the
// report.
func TestCheckDeterministic(t *testing.T) {
	socks := []sockets.Socket{
		listen("0.0.0.0:6379", proc(1, "redis-server", 0, "")), listen("0.0.0.0:23", nil), listen("0.0.0.0:47000", nil),
		udp("0.0.0.0:137", nil), listen("0.0.0.0:11211", proc(2, "memcached", 5, "")), listen("[::]:5432", proc(3, "postgres", 6, "")),
		listen("127.0.0.1:9000", proc(4, "x (deleted)", 7, "/x (deleted)")), listen("0.0.0.0:3000", proc(5, "node", 8, "")),
	}
	host := linuxHost
	host.TCPSyncookies = 0
	want := Check(Input{Sockets: socks, Host: host, OS: "linux"}, nil)
	for i := range 20 {
		shuffled := append([]sockets.Socket(nil), socks...)
		for j := range shuffled {
			k := (j*7 + i*3) % len(shuffled)
			shuffled[j], shuffled[k] = shuffled[k], shuffled[j]
		}
		got := Check(Input{Sockets: shuffled, Host: host, OS: "linux"}, nil)
		if diff := cmp.Diff(summarize(want.Findings), summarize(got.Findings)); diff != "" {
			t.Fatalf("Check of a shuffled table differs (-want +got):\n%s", diff)
		}
	}
	for i := 1; i < len(want.Findings); i++ {
		if want.Findings[i].Severity > want.Findings[i-1].Severity {
			t.Errorf("findings not sorted most severe first: %v", summarize(want.Findings))
		}
	}
}

func TestCheckRemote(t *testing.T) {
	socks := []sockets.Socket{
		listen("0.0.0.0:6379", proc(1, "redis-server", 5, "")),
		listen("0.0.0.0:23", proc(2, "in.telnetd", 5, "")),
		listen("[::]:9229", proc(3, "node", 5, "")), // dual-stack: reachable over IPv4
		func() sockets.Socket { s := listen("[::]:5432", proc(4, "postgres", 5, "")); s.V6Only = true; return s }(),
		listen("127.0.0.1:11211", proc(5, "memcached", 5, "")),
	}
	addr := netip.MustParseAddr("192.0.2.10")
	if got, want := RemotePorts(socks, addr), []uint16{23, 6379, 9229}; !cmp.Equal(got, want) {
		t.Errorf("RemotePorts(…, %s) = %v; want %v (not the v6-only nor the loopback listener)", addr, got, want)
	}
	if got, want := RemotePorts(socks, netip.MustParseAddr("2001:db8::1")), []uint16{5432, 9229}; !cmp.Equal(got, want) {
		t.Errorf("RemotePorts(…, 2001:db8::1) = %v; want %v", got, want)
	}
	rem := &Remote{Host: "db1.example", Addr: addr, Ports: map[uint16]Reach{
		6379: {State: Reachable, Reason: "syn-ack"},
		23:   {State: Filtered, Reason: "no-response"},
		9229: {State: Closed, Reason: "conn-refused"},
	}}
	rep := Check(Input{Sockets: socks, Host: linuxHost, OS: "linux", Remote: rem}, nil)
	got := map[string]Finding{}
	for _, f := range rep.Findings {
		got[f.Service] = f
	}
	if f := got["Redis"]; f.Severity != registry.SevHigh || f.Reach == nil || f.Reach.State != Reachable || !strings.Contains(f.Why, "reachable") {
		t.Errorf("reachable Redis finding = %s, reach %v, why %q; want high, reachable, saying so", f.Severity, f.Reach, f.Why)
	}
	if f := got["Telnet"]; f.Severity != registry.SevLow || f.Reach == nil || f.Reach.State != Filtered ||
		!strings.Contains(f.Title, "not reachable at db1.example: filtered") || !strings.Contains(f.Why, "lowered to low") {
		t.Errorf("filtered Telnet finding = %s, reach %v, title %q; want low, filtered, saying so", f.Severity, f.Reach, f.Title)
	}
	if f := got["Node.js inspector"]; f.Severity != registry.SevLow || f.Reach.State != Closed {
		t.Errorf("closed inspector finding = %s, reach %v; want low, closed", f.Severity, f.Reach)
	}
	if f := got["PostgreSQL"]; f.Reach != nil || f.Severity != registry.SevMedium {
		t.Errorf("v6-only PostgreSQL finding = %s, reach %v; want medium and not scanned", f.Severity, f.Reach)
	}
	reached := 0
	for _, l := range rep.Listeners {
		if l.Reach != nil {
			reached++
		}
	}
	if reached != 3 {
		t.Errorf("%d listeners carry a reach result; want 3", reached)
	}
}

func TestProgramNames(t *testing.T) {
	tests := []struct {
		p    *sockets.Process
		want []string
	}{
		{nil, nil},
		{&sockets.Process{Name: "redis-server", Exe: "/usr/bin/redis-check-rdb", Cmdline: []string{"/usr/bin/redis-server *:6379"}},
			[]string{"redis-server", "redis-check-rdb"}},
		{&sockets.Process{Name: "busybox", Exe: "/usr/bin/busybox", Cmdline: []string{"busybox", "telnetd", "-F"}},
			[]string{"busybox", "telnetd"}},
		{&sockets.Process{Name: "x", Exe: "/opt/app (deleted)"}, []string{"x", "app"}},
	}
	for _, tt := range tests {
		if got := programNames(tt.p); !cmp.Equal(got, tt.want) {
			t.Errorf("programNames(%+v) = %q; want %q", tt.p, got, tt.want)
		}
	}
}

func TestParseThreshold(t *testing.T) {
	for _, s := range []string{"info", "low", "medium", "high", "never"} {
		sev, err := ParseThreshold(s)
		if err != nil || ThresholdName(sev) != s {
			t.Errorf("ParseThreshold(%q) = %v, %v; want it back", s, sev, err)
		}
	}
	for _, s := range []string{"", "extreme", "HIGH", "critical"} {
		if _, err := ParseThreshold(s); err == nil || !strings.Contains(err.Error(), "want info, low, medium, high or never") {
			t.Errorf("ParseThreshold(%q) error = %v; want one listing the severities", s, err)
		}
	}
}

// TestRulesCatalog: every rule has its texts; IDs are unique.
func TestRulesCatalog(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rules() {
		if seen[r.ID] || r.Name == "" || r.Short == "" || r.Full == "" || r.Help == "" || r.Severity == 0 {
			t.Errorf("rule %+v: repeated ID or missing text", r)
		}
		seen[r.ID] = true
	}
	for _, s := range catalog {
		if s.kind != kindPublic && (s.why == "" || s.fix == "" || s.sev == 0) {
			t.Errorf("service %q: missing why, fix or severity", s.name)
		}
	}
}

// TestNoIO keeps the package free of I/O: it imports neither os nor net.
func TestNoIO(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			switch p, _ := strconv.Unquote(imp.Path.Value); {
			case p == "os", p == "net", strings.HasPrefix(p, "os/"), strings.HasPrefix(p, "net/") && p != "net/netip", p == "syscall", p == "io/ioutil":
				t.Errorf("%s imports %s: the audit package does no I/O", name, p)
			}
		}
	}
}
