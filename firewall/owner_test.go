package firewall

import (
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/google/nftables/expr"
)

// The rules files are ufw 0.36's own (Debian 12), written by
// "ufw allow 22/tcp", "deny 6379", "limit ssh", "allow from 10.0.0.0/8 to
// any port 5432 proto tcp", "allow 'WWW Full'", "allow in on lo to any
// port 9000 proto udp comment 'metrics, local'", "deny out to
// 203.0.113.0/24 port 25 proto tcp", "route allow in on eth0 out on eth1
// to 192.168.1.10 port 80 proto tcp", "reject from 2001:db8::/32 to any
// port 8000:8100 proto tcp", "allow log 53", "allow from 192.0.2.1 port
// 1234 to any port 4321 proto udp".
func readUFWTestdata(t testing.TB) (v4, v6 string) {
	t.Helper()
	a, err := os.ReadFile("testdata/ufw/user.rules")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/ufw/user6.rules")
	if err != nil {
		t.Fatal(err)
	}
	return string(a), string(b)
}

func TestParseUFWRules(t *testing.T) {
	v4, v6 := readUFWTestdata(t)
	rules := ParseUFWRules(v4)
	type brief struct {
		Tuple, Spec string
		Lines       int
		V6          bool
	}
	var got []brief
	for _, r := range rules {
		got = append(got, brief{r.Tuple, r.Spec(), len(r.Lines), r.V6})
	}
	want := []brief{
		{"limit tcp 22 0.0.0.0/0 any 0.0.0.0/0 in", "limit 22/tcp", 3, false},
		{"deny any 6379 0.0.0.0/0 any 0.0.0.0/0 in", "deny 6379", 2, false},
		{"allow tcp 5432 0.0.0.0/0 any 10.0.0.0/8 in", "allow from 10.0.0.0/8 to any port 5432 proto tcp", 1, false},
		{"allow tcp 80,443 0.0.0.0/0 any 0.0.0.0/0 WWW%20Full - in", "allow 'WWW Full'", 1, false},
		{"allow udp 9000 0.0.0.0/0 any 0.0.0.0/0 in_lo", "allow in on lo from any to any port 9000 proto udp", 1, false},
		{"deny tcp 25 203.0.113.0/24 any 0.0.0.0/0 out", "deny out from any to 203.0.113.0/24 port 25 proto tcp", 1, false},
		{"route:allow tcp 80 192.168.1.10 any 0.0.0.0/0 in_eth0!out_eth1", "route allow in on eth0 out on eth1 from any to 192.168.1.10 port 80 proto tcp", 1, false},
		{"allow_log any 53 0.0.0.0/0 any 0.0.0.0/0 in", "allow log 53", 8, false},
		{"allow udp 4321 0.0.0.0/0 1234 192.0.2.1 in", "allow from 192.0.2.1 port 1234 to any port 4321 proto udp", 1, false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseUFWRules(user.rules) =\n%+v\nwant\n%+v", got, want)
	}
	if rules[4].Comment != "metrics, local" || rules[4].IfaceIn != "lo" {
		t.Errorf("rule 5: comment %q, in %q; want \"metrics, local\", lo", rules[4].Comment, rules[4].IfaceIn)
	}
	if r := rules[6]; !r.Route || r.IfaceIn != "eth0" || r.IfaceOut != "eth1" {
		t.Errorf("route rule = %+v; want route in eth0 out eth1", r)
	}
	if rules[3].DApp != "WWW Full" {
		t.Errorf("app rule DApp = %q; want %q", rules[3].DApp, "WWW Full")
	}
	six := ParseUFWRules(v6)
	if len(six) != 6 || !six[0].V6 || six[4].Spec() != "reject from 2001:db8::/32 to any port 8000:8100 proto tcp" {
		t.Errorf("ParseUFWRules(user6.rules) = %d rules, first V6 %v, fifth %q", len(six), six[0].V6, six[4].Spec())
	}
}

func TestParseUFWTupleMalformed(t *testing.T) {
	for _, s := range []string{
		"", "allow tcp 22", "frobnicate tcp 22 0.0.0.0/0 any 0.0.0.0/0 in",
		"allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 sideways",
		"allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 a b c d",
	} {
		if r, ok := ParseUFWTuple(s); ok {
			t.Errorf("ParseUFWTuple(%q) = %+v, true; want false", s, r)
		}
	}
	// The old format without a direction is read as "in", as ufw does.
	if r, ok := ParseUFWTuple("allow tcp 22 0.0.0.0/0 any 0.0.0.0/0"); !ok || r.Direction != "in" {
		t.Errorf("ParseUFWTuple(6 fields) = %+v, %v; want direction in", r, ok)
	}
}

func FuzzParseUFWRules(f *testing.F) {
	v4, v6 := readUFWTestdata(f)
	f.Add(v4)
	f.Add(v6)
	f.Add("### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n")
	f.Add("### tuple ### route:deny_log-all udp 1:2 ::/0 any ::/0 a%20b - out_eth0 comment=zz\n-A ufw6-user-forward \"x\n")
	f.Fuzz(func(t *testing.T, text string) {
		for _, r := range ParseUFWRules(text) {
			// A tuple read back reads the same.
			again, ok := ParseUFWTuple(r.Tuple)
			if !ok {
				t.Fatalf("ParseUFWTuple(%q) of a tuple ParseUFWRules read: not ok", r.Tuple)
			}
			again.Comment, again.Lines, again.V6 = r.Comment, r.Lines, r.V6
			if !reflect.DeepEqual(again, r) {
				t.Fatalf("tuple %q read again = %+v; want %+v", r.Tuple, again, r)
			}
			_ = r.Spec()
			for _, l := range r.Lines {
				parseXtArgs(l).facts()
			}
		}
	})
}

// ipt makes a rule from an iptables-save line, as a legacy table's rule
// is: the line, no expressions.
func ipt(c *Chain, line string) *Rule {
	r := &Rule{Chain: c, Text: line, Position: len(c.Rules) + 1}
	c.Rules = append(c.Rules, r)
	return r
}

func newTable(rs *Ruleset, fam Family, name string, src Source) *Table {
	t := &Table{Family: fam, Name: name, Source: src}
	rs.Tables = append(rs.Tables, t)
	return t
}

func newChain(t *Table, name string) *Chain {
	c := &Chain{Table: t, Name: name}
	t.Chains = append(t.Chains, c)
	return c
}

func TestAttribute(t *testing.T) {
	rs := &Ruleset{}
	filter := newTable(rs, FamilyIPv4, "filter", Legacy)
	input := newChain(filter, "INPUT")
	input.Hook = &Hook{Num: HookNum(1), Policy: PolicyDrop}
	toUFW := ipt(input, "-A INPUT -j ufw-before-input")
	handIn := ipt(input, "-A INPUT -p tcp --dport 8443 -j ACCEPT")
	before := newChain(filter, "ufw-before-input")
	lo := ipt(before, "-A ufw-before-input -i lo -j ACCEPT")
	user := newChain(filter, "ufw-user-input")
	limSet := ipt(user, "-A ufw-user-input -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --set")
	ipt(user, "-A ufw-user-input -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --update --seconds 30 --hitcount 6 -j ufw-user-limit")
	ipt(user, "-A ufw-user-input -p tcp -m tcp --dport 22 -j ufw-user-limit-accept")
	denyTCP := ipt(user, "-A ufw-user-input -p tcp -m tcp --dport 6379 -j DROP")
	denyUDP := ipt(user, "-A ufw-user-input -p udp -m udp --dport 6379 -j DROP")
	pg := ipt(user, "-A ufw-user-input -s 10.0.0.0/8 -p tcp -m tcp --dport 5432 -j ACCEPT")
	forward := newChain(filter, "FORWARD")
	dUser := ipt(forward, "-A FORWARD -j DOCKER-USER")
	dEst := ipt(forward, "-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
	dockerUser := newChain(filter, "DOCKER-USER")
	handDU := ipt(dockerUser, "-A DOCKER-USER -s 192.0.2.0/24 -j DROP")
	dRet := ipt(dockerUser, "-A DOCKER-USER -j RETURN")
	dockerF := newChain(filter, "DOCKER")
	dAcc := ipt(dockerF, "-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 6379 -j ACCEPT")

	nat := newTable(rs, FamilyIPv4, "nat", Legacy)
	post := newChain(nat, "POSTROUTING")
	masq := ipt(post, "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE")
	hairpin := ipt(post, "-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 6379 -j MASQUERADE")
	handMasq := ipt(post, "-A POSTROUTING -s 192.168.50.0/24 -o eth0 -j MASQUERADE")
	dnatC := newChain(nat, "DOCKER")
	dnat := ipt(dnatC, "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 6379 -j DNAT --to-destination 172.17.0.2:6379")
	pre := newChain(nat, "PREROUTING")
	kube := ipt(pre, `-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`)
	nodeports := newChain(nat, "KUBE-NODEPORTS")
	np := ipt(nodeports, `-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 -j KUBE-EXT-ULMVA6XW`)

	fwd := newTable(rs, FamilyINet, "firewalld", NFTables)
	zoneAllow := newChain(fwd, "filter_IN_public_allow")
	zr := &Rule{Chain: zoneAllow, Exprs: []any{&expr.Verdict{Kind: expr.VerdictAccept}}}
	zoneAllow.Rules = append(zoneAllow.Rules, zr)
	zones := newChain(fwd, "filter_INPUT_ZONES")
	zg := &Rule{Chain: zones, Exprs: []any{&expr.Verdict{Kind: expr.VerdictGoto, Chain: "filter_IN_internal"}}}
	zones.Rules = append(zones.Rules, zg)
	pol := newChain(fwd, "filter_IN_policy_allow-host-ipv6_allow")
	pr := &Rule{Chain: pol}
	pol.Rules = append(pol.Rules, pr)

	kp := newTable(rs, FamilyIPv4, "kube-proxy", NFTables)
	svc := newChain(kp, "service-ULMVA6XW-default/web/tcp/http")
	sr := &Rule{Chain: svc}
	svc.Rules = append(svc.Rules, sr)
	own := newTable(rs, FamilyINet, "portctl", NFTables)
	oc := newChain(own, "block")
	or := &Rule{Chain: oc, Comment: "fw block 8080"}
	oc.Rules = append(oc.Rules, or)
	hand := newTable(rs, FamilyINet, "filter", NFTables)
	hc := newChain(hand, "input")
	hr := &Rule{Chain: hc, Handle: 12}
	hc.Rules = append(hc.Rules, hr)

	v4, _ := readUFWTestdata(t)
	Attribute(rs, OwnerHints{
		UFW: ParseUFWRules(v4), UFWRead: true,
		Containers: map[netip.AddrPort]string{netip.MustParseAddrPort("172.17.0.2:0"): "redis"},
	})
	for _, c := range []struct {
		name string
		r    *Rule
		want Owner
	}{
		{"INPUT's jump to ufw", toUFW, Owner{"ufw", "jump ufw-before-input"}},
		{"a hand rule in INPUT", handIn, Owner{"hand", ""}},
		{"ufw's before.rules", lo, Owner{"ufw", "ufw-before-input"}},
		{"limit's first line", limSet, Owner{"ufw", "limit tcp 22 0.0.0.0/0 any 0.0.0.0/0 in"}},
		{"deny 6379 tcp", denyTCP, Owner{"ufw", "deny any 6379 0.0.0.0/0 any 0.0.0.0/0 in"}},
		{"deny 6379 udp", denyUDP, Owner{"ufw", "deny any 6379 0.0.0.0/0 any 0.0.0.0/0 in"}},
		{"allow from 10/8", pg, Owner{"ufw", "allow tcp 5432 0.0.0.0/0 any 10.0.0.0/8 in"}},
		{"FORWARD's jump to DOCKER-USER", dUser, Owner{"docker", "jump DOCKER-USER"}},
		{"FORWARD's docker0 rule", dEst, Owner{"docker", "FORWARD"}},
		{"a hand rule in DOCKER-USER", handDU, Owner{"hand", "in DOCKER-USER"}},
		{"DOCKER-USER's RETURN", dRet, Owner{"docker", "DOCKER-USER"}},
		{"DOCKER's accept", dAcc, Owner{"docker", "lets tcp 6379 through to redis (172.17.0.2:6379)"}},
		{"Docker's MASQUERADE", masq, Owner{"docker", "POSTROUTING"}},
		{"Docker's hairpin MASQUERADE", hairpin, Owner{"docker", "POSTROUTING"}},
		{"a hand MASQUERADE", handMasq, Owner{"hand", ""}},
		{"Docker's DNAT", dnat, Owner{"docker", "publishes tcp 6379 to redis (172.17.0.2:6379)"}},
		{"PREROUTING's jump to KUBE-SERVICES", kube, Owner{"kube-proxy", "jump KUBE-SERVICES"}},
		{"a NodePort", np, Owner{"kube-proxy", "default/web:http"}},
		{"firewalld's zone", zr, Owner{"firewalld", "public"}},
		{"firewalld's dispatch", zg, Owner{"firewalld", "internal"}},
		{"firewalld's policy", pr, Owner{"firewalld", "policy allow-host-ipv6"}},
		{"kube-proxy's nft chain", sr, Owner{"kube-proxy", "default/web"}},
		{"portctl", or, Owner{"portctl", "fw block 8080"}},
		{"hand nft", hr, Owner{"hand", ""}},
	} {
		if c.r.Owner != c.want {
			t.Errorf("%s: Owner = %+v; want %+v", c.name, c.r.Owner, c.want)
		}
	}
	if o := ChainOwner(input); o.Name != "ufw" {
		t.Errorf("ChainOwner(INPUT) = %+v; want ufw", o)
	}
	if o := ChainOwner(forward); o.Name != "docker" {
		t.Errorf("ChainOwner(FORWARD) = %+v; want docker", o)
	}
}

// A rule someone added to ufw's chain with iptables is in neither rules
// file: it is theirs, not ufw's, once the files were read.
func TestAttributeUFWOutsider(t *testing.T) {
	rs := &Ruleset{}
	filter := newTable(rs, FamilyIPv4, "filter", Legacy)
	user := newChain(filter, "ufw-user-input")
	a := ipt(user, "-A ufw-user-input -s 10.0.0.0/8 -p tcp -m tcp --dport 5432 -j ACCEPT")
	b := ipt(user, "-A ufw-user-input -p tcp -m tcp --dport 7777 -j ACCEPT")
	rules := ParseUFWRules("### tuple ### allow tcp 5432 0.0.0.0/0 any 10.0.0.0/8 in\n-A ufw-user-input -p tcp --dport 5432 -s 10.0.0.0/8 -j ACCEPT\n")
	Attribute(rs, OwnerHints{UFW: rules, UFWRead: true})
	if a.Owner.Name != "ufw" || b.Owner.Name != "hand" || !strings.Contains(b.Owner.Detail, "ufw-user-input") {
		t.Errorf("owners = %+v, %+v; want ufw, hand in ufw-user-input", a.Owner, b.Owner)
	}
	Attribute(rs, OwnerHints{})
	if b.Owner != (Owner{"ufw", "ufw-user-input"}) {
		t.Errorf("without the files: %+v; want ufw's chain", b.Owner)
	}
}

// The facts of an nftables rule come from its expressions: the
// registers, the payload offsets, the NAT's registers.
func TestFactsOfExprs(t *testing.T) {
	tbl := &Table{Family: FamilyIPv4, Name: "nat"}
	c := &Chain{Table: tbl, Name: "DOCKER"}
	r := &Rule{Chain: c, Exprs: []any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte("docker0\x00")},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 0, 0, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{10, 0, 0, 0}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x18, 0xeb}},
		&expr.Counter{},
		&expr.Immediate{Register: 1, Data: []byte{172, 17, 0, 2}},
		&expr.Immediate{Register: 2, Data: []byte{0x18, 0xeb}},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: 2, RegAddrMin: 1, RegProtoMin: 2},
	}}
	f := factsOf(r)
	want := facts{proto: 6, dports: [][2]uint16{{6379, 6379}}, src: netip.MustParsePrefix("10.0.0.0/8"),
		iif: "docker0", iifNeg: true, verdict: "dnat", natTo: netip.MustParseAddrPort("172.17.0.2:6379"), ipv: 4}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("factsOf = %+v; want %+v", f, want)
	}
}

// docker28 is the layout Docker 28 writes (iptables-save of a host with
// one container publishing 6379 on the default bridge, and a network on
// a bridge named by com.docker.network.bridge.name), and one rule of the
// administrator's.
const docker28 = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -d 172.17.0.2/32 ! -i docker0 -j DROP
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-BRIDGE - [0:0]
:DOCKER-CT - [0:0]
:DOCKER-FORWARD - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-FORWARD
-A FORWARD -i eth0 -o eth1 -p tcp -m tcp --dport 22 -j ACCEPT
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 6379 -j ACCEPT
-A DOCKER ! -i docker0 -o docker0 -j DROP
-A DOCKER ! -i mybr -o mybr -j DROP
-A DOCKER-BRIDGE -o docker0 -j DOCKER
-A DOCKER-BRIDGE -o mybr -j DOCKER
-A DOCKER-CT -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DOCKER-CT -o mybr -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DOCKER-FORWARD -j DOCKER-CT
-A DOCKER-FORWARD -j DOCKER-ISOLATION-STAGE-1
-A DOCKER-FORWARD -j DOCKER-BRIDGE
-A DOCKER-FORWARD -i docker0 -j ACCEPT
-A DOCKER-FORWARD -i mybr -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.18.0.0/16 ! -o mybr -j MASQUERADE
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -s 192.168.7.0/24 -o eth0 -j MASQUERADE
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 6379 -j DNAT --to-destination 172.17.0.2:6379
COMMIT
`

func TestAttributeDocker28(t *testing.T) {
	tables, err := ParseIptablesSave(FamilyIPv4, docker28)
	if err != nil {
		t.Fatal(err)
	}
	rs := &Ruleset{Tables: tables}
	Attribute(rs, OwnerHints{DockerBridges: []string{"mybr"}})
	hand := map[string]bool{
		"-A FORWARD -i eth0 -o eth1 -p tcp -m tcp --dport 22 -j ACCEPT": true,
		"-A POSTROUTING -s 192.168.7.0/24 -o eth0 -j MASQUERADE":        true,
	}
	n := 0
	for _, tb := range rs.Tables {
		for _, c := range tb.Chains {
			for _, r := range c.Rules {
				n++
				want := OwnerDocker
				if hand[r.Text] {
					want = OwnerHand
				}
				if r.Owner.Name != want {
					t.Errorf("%s %s: %q: owner %+v; want %s", tb.Name, c.Name, r.Text, r.Owner, want)
				}
				if c.Name == "DOCKER" && tb.Name == "nat" && r.Owner.Detail != "publishes tcp 6379 to 172.17.0.2:6379" {
					t.Errorf("the DNAT's detail = %q", r.Owner.Detail)
				}
			}
		}
	}
	if n != 24 {
		t.Errorf("%d rules; want 24", n)
	}
}

// BenchmarkAttribute attributes a ruleset of 10,000 rules, as portctl
// firewall does before it evaluates: ufw's tables, Docker's, and rules by
// hand with a port each.
func BenchmarkAttribute(b *testing.B) {
	rs := &Ruleset{}
	hand := newTable(rs, FamilyINet, "filter", NFTables)
	in := newChain(hand, "input")
	for i := 0; i < 10000; i++ {
		port := []byte{byte(i >> 8), byte(i)}
		in.Rules = append(in.Rules, &Rule{Chain: in, Handle: uint64(i + 1), Exprs: []any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}})
	}
	v4, _ := readUFWTestdata(b)
	h := OwnerHints{UFW: ParseUFWRules(v4), UFWRead: true}
	b.ReportAllocs()
	for b.Loop() {
		Attribute(rs, h)
	}
}
