package reach

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"

	"github.com/portctl/portctl/firewall"
)

// The models below are built by hand: a host with eth0 on a LAN
// 192.168.1.0/24 (default route via 192.168.1.1), docker0 on
// 172.17.0.0/16, and rulesets written as nft(8) would load them.

var (
	hostAddr = netip.MustParseAddr("192.168.1.10")
	lanNet   = netip.MustParsePrefix("192.168.1.0/24")
)

func testHost() *firewall.Host {
	return &firewall.Host{
		Interfaces: []firewall.Interface{
			{Index: 1, Name: "lo", Type: 772, Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")}},
			{Index: 2, Name: "eth0", Type: 1, Addrs: []netip.Prefix{netip.MustParsePrefix("192.168.1.10/24")}},
			{Index: 3, Name: "docker0", Type: 1, Addrs: []netip.Prefix{netip.MustParsePrefix("172.17.0.1/16")}},
		},
		Routes: []firewall.Route{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Iface: "eth0", Gateway: netip.MustParseAddr("192.168.1.1"), Type: "unicast"},
			{Dst: lanNet, Iface: "eth0", Type: "unicast"},
			{Dst: netip.MustParsePrefix("172.17.0.0/16"), Iface: "docker0", Type: "unicast"},
			{Dst: netip.MustParsePrefix("192.168.1.10/32"), Iface: "eth0", Type: "local"},
			{Dst: netip.MustParsePrefix("127.0.0.0/8"), Iface: "lo", Type: "local"},
		},
		Forward4: true,
		RPFilter: map[string]int{"eth0": 2, "docker0": 2, "lo": 0},
	}
}

// rules builds a table of one family with base chains and their rules.
type chainSpec struct {
	name   string
	hook   firewall.HookNum
	typ    firewall.ChainType
	prio   int32
	policy firewall.Policy
	rules  [][]any
}

func table(fam firewall.Family, name string, chains ...chainSpec) *firewall.Table {
	t := &firewall.Table{Family: fam, Name: name, Source: firewall.NFTables}
	for _, cs := range chains {
		c := &firewall.Chain{Table: t, Name: cs.name, Hook: &firewall.Hook{Num: cs.hook, Priority: cs.prio, Type: cs.typ, Policy: cs.policy}}
		for i, ex := range cs.rules {
			c.Rules = append(c.Rules, &firewall.Rule{Chain: c, Handle: uint64(10 + i), Position: i + 1, Exprs: ex, Owner: firewall.Owner{Name: "hand"}})
		}
		t.Chains = append(t.Chains, c)
	}
	return t
}

func port(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }

// tcpDport is "meta l4proto tcp th dport P".
func tcpDport(p uint16) []any {
	return []any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port(p)},
	}
}

// saddr4 is "ip saddr PREFIX" in an inet table.
func saddr4(p netip.Prefix) []any {
	mask := net4Mask(p.Bits())
	return []any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{2}},
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Masked().Addr().AsSlice()},
	}
}

func net4Mask(bits int) []byte {
	m := make([]byte, 4)
	binary.BigEndian.PutUint32(m, ^uint32(0)<<(32-bits))
	return m
}

func verdict(k expr.VerdictKind) *expr.Verdict { return &expr.Verdict{Kind: k} }

func join(parts ...[]any) []any { return slices.Concat(parts...) }

var (
	accept = firewall.PolicyAccept
	drop   = firewall.PolicyDrop
)

func inputChain(policy firewall.Policy, rules ...[]any) chainSpec {
	return chainSpec{name: "input", hook: firewall.HookNum(1), typ: firewall.ChainTypeFilter, policy: policy, rules: rules}
}

// dbRuleset drops tcp 5432 except from 10.0.0.0/8 and the LAN.
func dbRuleset() *firewall.Ruleset {
	return &firewall.Ruleset{Tables: []*firewall.Table{table(firewall.FamilyINet, "filter",
		inputChain(accept,
			join(tcpDport(5432), saddr4(netip.MustParsePrefix("10.0.0.0/8")), []any{verdict(expr.VerdictAccept)}),
			join(tcpDport(5432), saddr4(lanNet), []any{verdict(expr.VerdictAccept)}),
			join(tcpDport(5432), []any{verdict(expr.VerdictDrop)}),
		))}}
}

func listener(addr string, v6only bool) Listener {
	return Listener{Proto: TCP, Local: netip.MustParseAddrPort(addr), V6Only: v6only, Holder: "db/42"}
}

func classes(h *firewall.Host) []Source {
	return []Source{ClassSource(firewall.Internet, h), ClassSource(firewall.LAN, h), ClassSource(firewall.Loopback, h)}
}

func layer(p Piece, name string) Layer {
	for _, l := range p.Layers {
		if l.Layer == name {
			return l
		}
	}
	return Layer{}
}

func verdicts(as []Answer) map[string]Verdict {
	out := map[string]Verdict{}
	for _, a := range as {
		out[a.Source.Name] = a.Verdict
	}
	return out
}

func TestAnalyzeFirewall(t *testing.T) {
	h := testHost()
	in := Input{Port: 5432, Proto: TCP, Ruleset: dbRuleset(), Host: h,
		Listeners: []Listener{listener("0.0.0.0:5432", false)},
		Sources:   append(classes(h), PrefixSource("10.1.2.3", netip.MustParsePrefix("10.1.2.3/32")))}
	as := Analyze(in)
	// The LAN class holds docker0's 172.17.0.0/16 too, which the rules do not let in.
	want := map[string]Verdict{"internet": Unreachable, "lan": Partial, "loopback": Unreachable, "10.1.2.3": Reachable}
	if got := verdicts(as); !mapsEqual(got, want) {
		t.Fatalf("verdicts = %v; want %v", got, want)
	}
	inet := as[0]
	fw := layer(inet.Pieces[0], LayerFirewall)
	if fw.Verdict != Block || fw.Rule == nil || fw.Rule.Handle != 12 || fw.Rule.Table != "filter" || fw.Rule.Chain != "input" {
		t.Errorf("internet firewall layer = %+v; want block by inet filter input handle 12", fw)
	}
	if !strings.Contains(fw.Detail, "inet filter input handle 12") {
		t.Errorf("firewall detail %q does not name the rule", fw.Detail)
	}
	if !slices.ContainsFunc(inet.Fix, func(f string) bool { return strings.Contains(f, "nft delete rule inet filter input handle 12") }) {
		t.Errorf("internet fix = %q; want among them the nft command that removes handle 12", inet.Fix)
	}
	if Overall(as) != Unreachable {
		t.Errorf("Overall = %v; want unreachable", Overall(as))
	}
	lan := as[1]
	if l := layer(lan.Pieces[0], LayerFirewall); l.Rule == nil || l.Rule.Handle != 11 {
		t.Errorf("LAN decided by %+v; want the accept of handle 11", l.Rule)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestAnalyzePartial(t *testing.T) {
	h := testHost()
	in := Input{Port: 5432, Proto: TCP, Ruleset: dbRuleset(), Host: h,
		Listeners: []Listener{listener("0.0.0.0:5432", false)},
		Sources:   []Source{PrefixSource("10.0.0.0/7", netip.MustParsePrefix("10.0.0.0/7"))}}
	a := Analyze(in)[0]
	if a.Verdict != Partial {
		t.Fatalf("from 10.0.0.0/7 (half of it 10.0.0.0/8) = %v; want partial", a.Verdict)
	}
	var yes, no []netip.Prefix
	for _, p := range a.Pieces {
		if p.Verdict == Reachable {
			yes = append(yes, p.From...)
		} else {
			no = append(no, p.From...)
		}
	}
	if !slices.Equal(yes, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}) || !slices.Equal(no, []netip.Prefix{netip.MustParsePrefix("11.0.0.0/8")}) {
		t.Errorf("reachable from %v, not from %v; want 10.0.0.0/8 and 11.0.0.0/8", yes, no)
	}
}

func TestAnalyzeSocket(t *testing.T) {
	h := testHost()
	h.Interfaces[1].Addrs = append(h.Interfaces[1].Addrs, netip.MustParsePrefix("2001:db8::10/64"))
	h.Routes = append(h.Routes, firewall.Route{Dst: netip.MustParsePrefix("::/0"), Iface: "eth0", Gateway: netip.MustParseAddr("2001:db8::1"), Type: "unicast"},
		firewall.Route{Dst: netip.MustParsePrefix("2001:db8::/64"), Iface: "eth0", Type: "unicast"})
	tests := []struct {
		name      string
		listeners []Listener
		want      map[string]Verdict
		socket    string // in the internet's socket layer
		fix       string // in the internet's fix
	}{
		{"loopback bind", []Listener{listener("127.0.0.1:5432", false)},
			map[string]Verdict{"internet": Unreachable, "lan": Unreachable, "loopback": Reachable},
			"listens on 127.0.0.1:5432 only", "bind to 0.0.0.0 (or 192.168.1.10) instead of 127.0.0.1"},
		{"[::] takes IPv4 too", []Listener{listener("[::]:5432", false)},
			map[string]Verdict{"internet": Reachable, "lan": Reachable, "loopback": Reachable}, "db/42 on [::]:5432", ""},
		{"[::] with IPV6_V6ONLY", []Listener{listener("[::]:5432", true)},
			map[string]Verdict{"internet": Reachable, "lan": Reachable, "loopback": Reachable}, "db/42 on [::]:5432", ""},
		{"IPv4 only", []Listener{listener("0.0.0.0:5432", false)},
			map[string]Verdict{"internet": Reachable, "lan": Reachable, "loopback": Reachable}, "db/42 on 0.0.0.0:5432", ""},
		{"nothing listens", nil,
			map[string]Verdict{"internet": Unreachable, "lan": Unreachable, "loopback": Unreachable}, "nothing listens on tcp port 5432", ""},
		{"device bind", []Listener{{Proto: TCP, Local: netip.MustParseAddrPort("0.0.0.0:5432"), Device: "docker0"}},
			// The LAN's docker0 part arrives on docker0.
			map[string]Verdict{"internet": Unreachable, "lan": Partial, "loopback": Unreachable},
			"bound to device docker0 (SO_BINDTODEVICE)", "bind without SO_BINDTODEVICE"},
		{"another address", []Listener{listener("172.17.0.1:5432", false)},
			map[string]Verdict{"internet": Reachable, "lan": Reachable, "loopback": Reachable}, "on 172.17.0.1:5432", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := Analyze(Input{Port: 5432, Proto: TCP, Host: h, Listeners: tt.listeners, Sources: classes(h)})
			if got := verdicts(as); !mapsEqual(got, tt.want) {
				t.Errorf("verdicts = %v; want %v", got, tt.want)
			}
			if len(as[0].Pieces) == 0 {
				t.Fatalf("internet: no pieces (%s)", as[0].Note)
			}
			if s := layer(as[0].Pieces[0], LayerSocket); !strings.Contains(s.Detail, tt.socket) {
				t.Errorf("internet socket layer %q; want it to say %q", s.Detail, tt.socket)
			}
			if tt.fix != "" && !slices.ContainsFunc(as[0].Fix, func(f string) bool { return strings.Contains(f, tt.fix) }) {
				t.Errorf("internet fix %q; want %q", as[0].Fix, tt.fix)
			}
		})
	}
}

func TestTakes(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	tests := []struct {
		l    Listener
		dst  netip.Addr
		dev  string
		want bool
	}{
		{listener("0.0.0.0:1", false), v4, "eth0", true},
		{listener("0.0.0.0:1", false), v6, "eth0", false},
		{listener("[::]:1", false), v4, "eth0", true},
		{listener("[::]:1", true), v4, "eth0", false},
		{listener("[::]:1", true), v6, "eth0", true},
		{listener("192.0.2.1:1", false), v4, "eth0", true},
		{listener("192.0.2.2:1", false), v4, "eth0", false},
		{listener("[::ffff:192.0.2.1]:1", false), v4, "eth0", true},
		{Listener{Local: netip.MustParseAddrPort("0.0.0.0:1"), Device: "eth1"}, v4, "eth0", false},
		{Listener{Local: netip.MustParseAddrPort("0.0.0.0:1"), Device: "eth1"}, v4, "eth1", true},
	}
	for _, tt := range tests {
		if got := takes(tt.l, tt.dst, tt.dev); got != tt.want {
			t.Errorf("takes(%v v6only=%v dev=%q, %v on %s) = %v; want %v", tt.l.Local, tt.l.V6Only, tt.l.Device, tt.dst, tt.dev, got, tt.want)
		}
	}
}

func TestAnalyzeRoute(t *testing.T) {
	h := testHost()
	h.Routes = slices.DeleteFunc(h.Routes, func(r firewall.Route) bool { return r.Dst.Bits() == 0 })
	l := []Listener{listener("0.0.0.0:80", false)}
	as := Analyze(Input{Port: 80, Proto: TCP, Host: h, Listeners: l, Sources: classes(h)})
	if got := verdicts(as); got["internet"] == Reachable || got["lan"] != Reachable || got["loopback"] != Reachable {
		t.Fatalf("without a default route: %v; want the internet not reachable, the LAN and loopback reachable", got)
	}
	// A given source with no route back.
	as = Analyze(Input{Port: 80, Proto: TCP, Host: h, Listeners: l, Sources: []Source{PrefixSource("198.51.100.7", netip.MustParsePrefix("198.51.100.7/32"))}})
	if as[0].Verdict != Unreachable {
		t.Fatalf("from 198.51.100.7 without a route back = %v; want unreachable", as[0].Verdict)
	}
	if r := layer(as[0].Pieces[0], LayerRoute); r.Verdict != Block || !strings.Contains(r.Detail, "no route back to 198.51.100.7") {
		t.Errorf("route layer = %+v; want a block that names the missing route back", r)
	}

	// Strict rp_filter with packets arriving on another interface than
	// the route back.
	h = testHost()
	h.RPFilter["docker0"] = 1
	as = Analyze(Input{Port: 80, Proto: TCP, Host: h, Listeners: l, Iface: "docker0", Sources: []Source{PrefixSource("203.0.113.5", netip.MustParsePrefix("203.0.113.5/32"))}})
	if rp := layer(as[0].Pieces[0], LayerRPFilter); as[0].Verdict != Unreachable || rp.Verdict != Block {
		t.Errorf("strict rp_filter on docker0, route back by eth0: %v, rp_filter %+v; want unreachable, blocked by rp_filter", as[0].Verdict, rp)
	}
	if !slices.ContainsFunc(as[0].Fix, func(f string) bool { return strings.Contains(f, "net.ipv4.conf.docker0.rp_filter=2") }) {
		t.Errorf("fix %q; want the loose rp_filter sysctl", as[0].Fix)
	}
	// Loose rp_filter: any route back does.
	h.RPFilter["docker0"] = 2
	as = Analyze(Input{Port: 80, Proto: TCP, Host: h, Listeners: l, Iface: "docker0", Sources: []Source{PrefixSource("203.0.113.5", netip.MustParsePrefix("203.0.113.5/32"))}})
	if as[0].Verdict != Reachable {
		t.Errorf("loose rp_filter: %v; want reachable", as[0].Verdict)
	}
}

// dockerRuleset is Docker's published 6379 to 172.17.0.2 with a ufw-like
// deny of 6379 on the input path: the DNAT sends the packet round it.
func dockerRuleset() *firewall.Ruleset {
	dnat := join(
		[]any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte("docker0\x00")}},
		tcpDport(6379),
		[]any{
			&expr.Immediate{Register: 1, Data: netip.MustParseAddr("172.17.0.2").AsSlice()},
			&expr.Immediate{Register: 2, Data: port(6379)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(firewall.FamilyIPv4), RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		})
	nat := table(firewall.FamilyIPv4, "nat",
		chainSpec{name: "PREROUTING", hook: firewall.HookNum(0), typ: firewall.ChainTypeNAT, prio: -100, policy: accept, rules: [][]any{dnat}})
	nat.Chains[0].Rules[0].Owner = firewall.Owner{Name: "docker", Detail: "container redis"}
	filter := table(firewall.FamilyIPv4, "filter",
		chainSpec{name: "INPUT", hook: firewall.HookNum(1), typ: firewall.ChainTypeFilter, policy: accept,
			rules: [][]any{join(tcpDport(6379), []any{verdict(expr.VerdictDrop)})}},
		chainSpec{name: "FORWARD", hook: firewall.HookNum(2), typ: firewall.ChainTypeFilter, policy: accept})
	filter.Chains[0].Rules[0].Owner = firewall.Owner{Name: "ufw", Detail: "deny 6379/tcp"}
	return &firewall.Ruleset{Tables: []*firewall.Table{nat, filter}}
}

func TestAnalyzeDockerBypass(t *testing.T) {
	h := testHost()
	in := Input{Port: 6379, Proto: TCP, Ruleset: dockerRuleset(), Host: h, Sources: []Source{ClassSource(firewall.Internet, h)}}
	a := Analyze(in)[0]
	if a.Verdict != Reachable {
		t.Fatalf("internet = %v (%+v); want reachable through the DNAT", a.Verdict, a.Pieces)
	}
	p := a.Pieces[0]
	if n := layer(p, LayerNAT); n.Verdict != Pass || n.Rule == nil || n.Rule.Owner.Name != "docker" {
		t.Errorf("NAT layer = %+v; want the pass of Docker's DNAT", n)
	}
	if s := layer(p, LayerSocket); s.Verdict != Skip {
		t.Errorf("socket layer = %+v; want skip (the container's)", s)
	}
	if p.Bypass == nil || p.Bypass.Owner.Name != "ufw" || p.Bypass.Handle != 10 {
		t.Errorf("bypass = %+v; want ufw's drop, handle 10", p.Bypass)
	}
	if len(a.Fix) == 0 || !strings.Contains(a.Fix[0], "-p 127.0.0.1:6379:6379") {
		t.Errorf("fix = %q; want docker run -p 127.0.0.1:6379:6379", a.Fix)
	}
	sum := Summarize([]Answer{a}, false)
	if sum.Exposure != FromInternet || sum.Decided == nil || sum.Decided.Layer != LayerNAT {
		t.Errorf("Summarize = %+v; want the internet, decided by the NAT layer", sum)
	}

	// ip_forward off: the DNAT leads nowhere.
	h.Forward4 = false
	a = Analyze(in)[0]
	if n := layer(a.Pieces[0], LayerNAT); a.Verdict != Unreachable || n.Verdict != Block || !strings.Contains(n.Detail, "ip_forward is 0") {
		t.Errorf("ip_forward off: %v, NAT layer %+v; want unreachable, blocked at NAT", a.Verdict, n)
	}
	if !slices.Contains(a.Fix, "sysctl -w net.ipv4.ip_forward=1") {
		t.Errorf("fix %q; want the ip_forward sysctl", a.Fix)
	}
}

func TestSplitBy(t *testing.T) {
	got := splitBy(netip.MustParsePrefix("10.0.0.0/8"), []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")})
	want := []string{"10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/15", "10.4.0.0/14", "10.8.0.0/13", "10.16.0.0/12", "10.32.0.0/11", "10.64.0.0/10", "10.128.0.0/9"}
	var gs []string
	for _, p := range got {
		gs = append(gs, p.String())
	}
	if !slices.Equal(gs, want) {
		t.Errorf("splitBy(10.0.0.0/8, 10.1.0.0/16) = %v; want %v", gs, want)
	}
	lo, hi := halves(netip.MustParsePrefix("2001:db8::/32"))
	if lo.String() != "2001:db8::/33" || hi.String() != "2001:db8:8000::/33" {
		t.Errorf("halves(2001:db8::/32) = %v, %v", lo, hi)
	}
}

func TestOpenings(t *testing.T) {
	ports := &firewall.Set{Name: "web", KeyType: "inet_service", KeyLen: 2,
		Elements: []firewall.Element{{Key: port(80)}, {Key: port(443)}}}
	ranges := &firewall.Set{Name: "high", KeyType: "inet_service", KeyLen: 2, Interval: true,
		Elements: []firewall.Element{{Key: port(0), IntervalEnd: true}, {Key: port(6000)}, {Key: port(6101), IntervalEnd: true}}}
	lookup := func(set string) []any {
		return []any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, SetName: set},
		}
	}
	notSSH := []any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: port(22)},
		verdict(expr.VerdictAccept),
	}
	t1 := table(firewall.FamilyINet, "filter", inputChain(drop,
		join(tcpDport(22), []any{verdict(expr.VerdictAccept)}),
		join(lookup("web"), []any{verdict(expr.VerdictAccept)}),
		join(lookup("high"), []any{verdict(expr.VerdictAccept)}),
		notSSH,
		join(tcpDport(25), []any{verdict(expr.VerdictDrop)}),
		[]any{&firewall.Xt{Name: "udp", Info: &xt.Udp{DstPorts: [2]uint16{53, 53}}}, verdict(expr.VerdictAccept)},
		[]any{&firewall.Xt{Name: "multiport", Info: &firewall.Multiport{Dst: true, Ranges: [][2]uint16{{8000, 8010}}}}, verdict(expr.VerdictAccept)},
	))
	t1.Sets = []*firewall.Set{ports, ranges}
	var got []string
	for _, o := range Openings(&firewall.Ruleset{Tables: []*firewall.Table{t1}}) {
		got = append(got, ProtoName(o.Proto)+"/"+portsString(o.Ports))
	}
	want := []string{"tcp/22", "tcp/80", "tcp/443", "tcp/6000-6100", "udp/53", "tcp/8000-8010", "udp/8000-8010"}
	if !slices.Equal(got, want) {
		t.Errorf("Openings = %v; want %v", got, want)
	}
}

func portsString(p [2]uint16) string {
	if p[0] == p[1] {
		return itoa(p[0])
	}
	return itoa(p[0]) + "-" + itoa(p[1])
}

func itoa(p uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[len("0.0.0.0:"):]
}

func TestSummarize(t *testing.T) {
	h := testHost()
	tests := []struct {
		name      string
		listeners []Listener
		rs        *firewall.Ruleset
		want      Exposure
		decided   string
	}{
		{"open", []Listener{listener("0.0.0.0:5432", false)}, nil, FromInternet, "firewall"},
		{"lan only", []Listener{listener("0.0.0.0:5432", false)}, dbRuleset(), FromLAN, "firewall"}, // partly: not docker0
		{"loopback only", []Listener{listener("127.0.0.1:5432", false)}, nil, LoopbackOnly, "socket"},
		{"nobody", nil, nil, Nobody, "socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := tt.rs
			if rs == nil {
				rs = &firewall.Ruleset{}
			}
			s := Summarize(Analyze(Input{Port: 5432, Proto: TCP, Host: h, Ruleset: rs, Listeners: tt.listeners, Sources: classes(h)}), false)
			if s.Exposure != tt.want || s.Decided == nil || s.Decided.Layer != tt.decided {
				t.Errorf("Summarize = %v decided by %+v; want %v decided by the %s layer", s.Exposure, s.Decided, tt.want, tt.decided)
			}
		})
	}
}

// TestAnalyzeLoopbackAddress: a loopback address asked from outside is a
// martian, whatever the socket and the rules.
func TestAnalyzeLoopbackAddress(t *testing.T) {
	h := testHost()
	as := Analyze(Input{Port: 80, Proto: TCP, Addr: netip.MustParseAddr("127.0.0.1"), Host: h,
		Listeners: []Listener{listener("127.0.0.1:80", false)},
		Sources:   []Source{PrefixSource("192.168.1.20", netip.MustParsePrefix("192.168.1.20/32")), ClassSource(firewall.Loopback, h)}})
	if as[0].Verdict != Unreachable || layer(as[0].Pieces[0], LayerRoute).Verdict != Block {
		t.Errorf("127.0.0.1:80 from 192.168.1.20: %v; want unreachable at the route layer", as[0].Verdict)
	}
	if as[1].Verdict != Reachable {
		t.Errorf("127.0.0.1:80 from loopback: %v; want reachable", as[1].Verdict)
	}
}

// TestSampleSources: one address of each class and family, loopback's
// being 127.0.0.1.
func TestSampleSources(t *testing.T) {
	got := map[string][]string{}
	for _, s := range SampleSources(testHost()) {
		for _, p := range s.From {
			if !p.IsSingleIP() {
				t.Errorf("%s sample %v is not one address", s.Name, p)
			}
			got[s.Name] = append(got[s.Name], p.Addr().String())
		}
	}
	if !slices.Contains(got["loopback"], "127.0.0.1") || !slices.Contains(got["loopback"], "::1") {
		t.Errorf("loopback samples %v; want 127.0.0.1 and ::1", got["loopback"])
	}
	if len(got["internet"]) != 2 || len(got["lan"]) != 1 {
		t.Errorf("samples %v; want two internet addresses (v4, v6) and one LAN address (the host has IPv4 only)", got)
	}
}

// TestSummarizeOpened: with the socket layer left out, a port the rules
// open where nothing listens counts as reachable from where they let it.
func TestSummarizeOpened(t *testing.T) {
	h := testHost()
	in := Input{Port: 5432, Proto: TCP, Ruleset: dbRuleset(), Host: h, Sources: classes(h)}
	as := Analyze(in)
	if s := Summarize(as, false); s.Exposure != Nobody {
		t.Errorf("with the socket layer: %v; want nobody (nothing listens)", s.Exposure)
	}
	if s := Summarize(as, true); s.Exposure != FromLAN || !s.Partial {
		t.Errorf("without the socket layer: %v (partial %v); want the LAN, partly", s.Exposure, s.Partial)
	}
}
