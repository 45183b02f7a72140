package audit

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/reach"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// step is a rule of a hand-made ruleset, as the evaluator reports it.
func step(chain string, handle uint64, owner, action string) *firewall.Step {
	return &firewall.Step{Table: "filter", Chain: chain, Source: firewall.NFTables, Handle: handle, Action: action,
		Owner: firewall.Owner{Name: owner}, Rule: &firewall.Rule{Handle: handle}}
}

// admitted is a PortReach with one verdict for the internet and the LAN
// (decided by rule) and accept for loopback.
func admitted(proto sockets.Proto, port uint16, internet, lan firewall.Verdict, rule *firewall.Step) PortReach {
	exp := reach.LoopbackOnly
	switch {
	case internet == firewall.Accept:
		exp = reach.FromInternet
	case internet == firewall.Unknown:
		exp = reach.NotKnown
	case lan == firewall.Accept:
		exp = reach.FromLAN
	}
	return PortReach{Proto: proto, Port: port, Exposure: exp, From: []Admission{
		{From: firewall.Internet, Verdict: internet, Layer: "firewall", Rule: rule},
		{From: firewall.LAN, Verdict: lan, Layer: "firewall", Rule: rule},
		{From: firewall.Loopback, Verdict: firewall.Accept, Layer: "firewall"},
	}}
}

func TestFirewallRules(t *testing.T) {
	open := step("input", 7, "hand", "accept")
	deny := step("input", 9, "ufw", "drop")
	docker := admitted(sockets.TCP, 6380, firewall.Accept, firewall.Accept, step("DOCKER", 21, "docker", "accept"))
	docker.From[0].NAT = &firewall.NAT{Step: *step("DOCKER", 20, "docker", "dnat to 172.17.0.2:6379"), To: netip.MustParseAddrPort("172.17.0.2:6379")}
	docker.From[0].Path = "forward"
	docker.From[0].Bypasses = step("ufw-user-input", 12, "ufw", "drop")
	in := Input{
		Sockets: []sockets.Socket{
			listen("0.0.0.0:445", proc(10, "smbd", 0, "")),
			udp("0.0.0.0:137", proc(11, "nmbd", 0, "")),
			listen("0.0.0.0:6379", proc(12, "redis-server", 100, "")),
			listen("0.0.0.0:22", proc(13, "sshd", 0, "")),
			listen("0.0.0.0:5432", proc(14, "postgres", 100, "")),
			listen("0.0.0.0:6380", proc(15, "docker-proxy", 0, "")),
			listen("127.0.0.1:9229", proc(16, "node", 100, "")),
		},
		Host: linuxHost, OS: "linux",
		Firewall: &Firewall{Ports: []PortReach{
			admitted(sockets.TCP, 22, firewall.Accept, firewall.Accept, open),
			admitted(sockets.TCP, 445, firewall.Accept, firewall.Accept, open),
			admitted(sockets.TCP, 5432, firewall.Drop, firewall.Drop, deny),
			admitted(sockets.TCP, 6379, firewall.Accept, firewall.Accept, open),
			docker,
			admitted(sockets.TCP, 9229, firewall.Accept, firewall.Accept, open),
			admitted(sockets.UDP, 137, firewall.Accept, firewall.Accept, open),
		}},
	}
	rep := Check(in, nil)
	got := map[string][]string{}
	for _, f := range rep.Findings {
		got[f.Rule] = append(got[f.Rule], f.Socket.Local.String()+" "+f.Severity.String())
	}
	want := map[string][]string{
		RuleNetBIOSFromOutside: {"0.0.0.0:445 high", "0.0.0.0:137 high"},
		RuleInternetExposed:    {"0.0.0.0:6379 high"},
		RuleDockerBypass:       {"0.0.0.0:6380 high"},
	}
	for _, rule := range []string{RuleNetBIOSFromOutside, RuleInternetExposed, RuleDockerBypass} {
		slices.Sort(got[rule])
		slices.Sort(want[rule])
		if diff := cmp.Diff(want[rule], got[rule]); diff != "" {
			t.Errorf("%s findings (-want +got):\n%s", rule, diff)
		}
	}
	for _, f := range rep.Findings {
		switch {
		case f.Rule == RuleNetBIOSFromOutside:
			if f.Firewall == nil || f.Firewall.Rule != open || !strings.Contains(f.Title, "filter input handle 7") {
				t.Errorf("NetBIOS finding %q does not name the rule that lets it in (firewall %+v)", f.Title, f.Firewall)
			}
		case f.Rule == RuleDockerBypass:
			if !strings.Contains(f.Why, "ufw-user-input handle 12") || !strings.Contains(f.Fix, "-p 127.0.0.1:6380:6379") {
				t.Errorf("bypass finding: why %q, fix %q; want the ufw deny named and the loopback publish", f.Why, f.Fix)
			}
		case f.Rule == RuleNetworkDatabase && f.Socket.Local.Port() == 5432:
			if f.Severity != registry.SevLow || !strings.Contains(f.Why, "ufw") {
				t.Errorf("PostgreSQL behind a drop: %s, %q; want low, naming the rule", f.Severity, f.Why)
			}
		}
	}
	// Summaries of the listeners.
	sum := map[uint16]string{}
	for _, l := range rep.Listeners {
		sum[l.Socket.Local.Port()] = l.ReachableFrom
	}
	if sum[22] != FromInternet || sum[5432] != FromLoopback {
		t.Errorf("reachable_from = %v; want 22 internet, 5432 loopback", sum)
	}

	// reach: in the policy: only 22 may be reachable from the internet.
	pol, err := ParsePolicy([]byte("reach:\n  internet: [22, 443]\n"))
	if err != nil {
		t.Fatal(err)
	}
	rep = Check(in, pol)
	var bad []string
	for _, f := range rep.Findings {
		if f.Rule == RuleReachNotAllowed {
			bad = append(bad, f.Socket.Local.String())
		}
	}
	slices.Sort(bad)
	// 9229 listens on loopback only: the socket keeps the internet out.
	if diff := cmp.Diff([]string{"0.0.0.0:137", "0.0.0.0:445", "0.0.0.0:6379", "0.0.0.0:6380"}, bad); diff != "" {
		t.Errorf("reach-not-allowed (-want +got):\n%s", diff)
	}

	// 139 opened by the firewall with nothing listening: medium, and an
	// exception by port sets it aside.
	in.Firewall.Opened = []PortReach{admitted(sockets.TCP, 139, firewall.Accept, firewall.Accept, open)}
	in.Firewall.Opened[0].Protocol = "tcp"
	var opened *Finding
	rep = Check(in, nil)
	for i, f := range rep.Findings {
		if f.Rule == RuleNetBIOSFromOutside && f.Socket == nil {
			opened = &rep.Findings[i]
		}
	}
	if opened == nil || opened.Port != 139 || opened.Protocol != "tcp" || opened.Severity != registry.SevMedium ||
		!strings.Contains(opened.Title, "filter input handle 7") || !strings.Contains(opened.Title, "nothing listens") {
		t.Errorf("the opened NetBIOS port's finding = %+v; want tcp/139, medium, naming the rule", opened)
	}
	pol, err = ParsePolicy([]byte("except:\n  - {rule: netbios-from-outside, port: 139, proto: tcp, reason: a lab}\n"))
	if err != nil {
		t.Fatal(err)
	}
	rep = Check(in, pol)
	if len(rep.Excepted) != 1 || rep.Excepted[0].Port != 139 {
		t.Errorf("excepted = %+v; want the opened 139 set aside by port", rep.Excepted)
	}
	in.Firewall.Opened = nil

	// Without the ruleset, no firewall rule runs.
	in.Firewall = nil
	for _, f := range Check(in, pol).Findings {
		if slices.Contains([]string{RuleNetBIOSFromOutside, RuleInternetExposed, RuleDockerBypass, RuleReachNotAllowed}, f.Rule) {
			t.Errorf("without the ruleset: %s finding %q", f.Rule, f.Title)
		}
	}
}

func TestPortReachSummary(t *testing.T) {
	for _, tt := range []struct {
		name string
		pr   *PortReach
		want string
	}{
		{"nil", nil, FromUnknown},
		{"internet", ptr(admitted(sockets.TCP, 1, firewall.Accept, firewall.Accept, nil)), FromInternet},
		{"lan", ptr(admitted(sockets.TCP, 1, firewall.Drop, firewall.Accept, nil)), FromLAN},
		{"loopback", ptr(admitted(sockets.TCP, 1, firewall.Reject, firewall.Drop, nil)), FromLoopback},
		{"unknown internet", ptr(admitted(sockets.TCP, 1, firewall.Unknown, firewall.Accept, nil)), FromUnknown},
		{"not summed up", &PortReach{}, FromUnknown},
	} {
		if got := tt.pr.Summary(); got != tt.want {
			t.Errorf("%s: Summary() = %q; want %q", tt.name, got, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestParseReachPolicy(t *testing.T) {
	pol, err := ParsePolicy([]byte("reach:\n  internet: [22, 443, 8000-8100]\n  lan: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[firewall.Class][]registry.Range{
		firewall.Internet: {{First: 22, Last: 22}, {First: 443, Last: 443}, {First: 8000, Last: 8100}},
		firewall.LAN:      {},
	}
	if diff := cmp.Diff(want, pol.Reach.Classes); diff != "" {
		t.Errorf("reach (-want +got):\n%s", diff)
	}
	for _, tt := range []struct{ in, want string }{
		{"reach: [22]", "line 1: reach: want a mapping"},
		{"reach:\n  internet: [99999]", `line 2: reach: internet: port "99999"`},
		{"reach:\n  wan: [22]", `line 2: unknown key "wan" in reach (want internet, lan)`},
		{"reach:\n  internet: {a: 1}", "line 2: reach: internet: want a value or a list"},
		{"reach:\n  internet: 22\n  internet: 80", `key "internet" given twice`},
	} {
		_, err := ParsePolicy([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParsePolicy(%q) = %v; want an error with %q", tt.in, err, tt.want)
		}
	}
}
