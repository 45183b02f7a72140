package firewall

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/nftables/expr"
)

// testRuleset is one inet table with an input base chain of the given
// policy holding rules made of exprs, and a regular chain "sub".
func testRuleset(policy Policy, rules ...[]any) *Ruleset {
	t := &Table{Family: FamilyINet, Name: "f", Source: NFTables}
	in := &Chain{Table: t, Name: "input", Hook: &Hook{Num: hookInput, Type: ChainTypeFilter, Policy: policy}}
	sub := &Chain{Table: t, Name: "sub"}
	for i, x := range rules {
		in.Rules = append(in.Rules, &Rule{Chain: in, Handle: uint64(i + 2), Position: i + 1, Exprs: x})
	}
	sub.Rules = []*Rule{{Chain: sub, Handle: 100, Position: 1, Exprs: []any{&expr.Verdict{Kind: expr.VerdictReturn}}}}
	t.Chains = []*Chain{in, sub}
	t.Sets = []*Set{{Table: t, Name: "s", KeyType: "inet_service", KeyLen: 2, Interval: true,
		Elements: []Element{{Key: []byte{0, 22}}, {Key: []byte{0, 23}, IntervalEnd: true}}}}
	return &Ruleset{Tables: []*Table{t}}
}

func testHost() *Host {
	return &Host{
		Interfaces: []Interface{{Index: 1, Name: "lo", Type: 772, Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
			{Index: 2, Name: "eth0", Type: 1, Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24")}}},
		Routes: []Route{{Dst: netip.MustParsePrefix("192.0.2.0/24"), Iface: "eth0", Type: "unicast"},
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Iface: "eth0", Type: "unicast", Gateway: netip.MustParseAddr("192.0.2.1")},
			{Dst: netip.MustParsePrefix("192.0.2.10/32"), Iface: "eth0", Type: "local"}},
	}
}

// tcpDport is "tcp dport PORT" as nft compiles it.
func tcpDport(port uint16) []any {
	return []any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(port >> 8), byte(port)}},
	}
}

func TestEvaluateUnsettledMatches(t *testing.T) {
	limit := &expr.Limit{Rate: 3, Unit: expr.LimitTimeMinute}
	pkt := Packet{Proto: 6, Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("192.0.2.10"), DstPort: 22, InIface: "eth0"}
	// A limited accept under a drop policy: it depends on the limit.
	rs := testRuleset(PolicyDrop, append(tcpDport(22), limit, &expr.Verdict{Kind: expr.VerdictAccept}))
	if r := Evaluate(rs, testHost(), pkt); r.Verdict != Unknown || len(r.DependsOn) == 0 {
		t.Errorf("limited accept: %s %v, want unknown naming the limit", r.Verdict, r.DependsOn)
	}
	// The same rule for another port cannot match: certain.
	rs = testRuleset(PolicyDrop, append(tcpDport(80), limit, &expr.Verdict{Kind: expr.VerdictAccept}))
	if r := Evaluate(rs, testHost(), pkt); r.Verdict != Drop {
		t.Errorf("limited accept of another port: %s %v, want drop", r.Verdict, r.DependsOn)
	}
	// An expression not modelled, before an accept the policy agrees with.
	rs = testRuleset(PolicyAccept, append(tcpDport(22), &Opaque{Name: "osf"}, &expr.Verdict{Kind: expr.VerdictAccept}))
	if r := Evaluate(rs, testHost(), pkt); r.Verdict != Accept {
		t.Errorf("opaque accept under accept policy: %s, want accept", r.Verdict)
	}
	rs = testRuleset(PolicyAccept, append(tcpDport(22), &Opaque{Name: "osf"}, &expr.Verdict{Kind: expr.VerdictDrop}))
	if r := Evaluate(rs, testHost(), pkt); r.Verdict != Unknown || len(r.DependsOn) == 0 {
		t.Errorf("opaque drop: %s %v, want unknown", r.Verdict, r.DependsOn)
	}
	// The client's source port is not known unless given.
	sport := []any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x03, 0xff}}, &expr.Verdict{Kind: expr.VerdictDrop}}
	rs = testRuleset(PolicyAccept, sport)
	if r := Evaluate(rs, testHost(), pkt); r.Verdict != Unknown {
		t.Errorf("sport drop, sport not given: %s, want unknown", r.Verdict)
	}
	pkt.SrcPort = 40000
	if r := Evaluate(rs, testHost(), pkt); r.Verdict != Accept {
		t.Errorf("sport drop, other sport: %s, want accept", r.Verdict)
	}
}

func TestEvaluateFromSplitsSources(t *testing.T) {
	// ip saddr 10.0.0.0/8 accept; policy drop.
	rule := []any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{2}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 0, 0, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{10, 0, 0, 0}},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}
	rs := testRuleset(PolicyDrop, rule)
	pkt := Packet{Proto: 6, Dst: netip.MustParseAddr("192.0.2.10"), DstPort: 5432, InIface: "eth0"}
	pieces := EvaluateFrom(rs, testHost(), pkt, []netip.Prefix{netip.MustParsePrefix("8.0.0.0/6")})
	var got []string
	for _, p := range pieces {
		for _, f := range p.From {
			got = append(got, f.String()+"="+string(p.Result.Verdict))
		}
	}
	want := []string{"8.0.0.0/7=drop", "11.0.0.0/8=drop", "10.0.0.0/8=accept"} // grouped by outcome
	if len(got) != len(want) {
		t.Fatalf("pieces %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pieces %v, want %v", got, want)
		}
	}
}

// nft loads only the bytes a prefix needs: ip saddr 10.0.0.0/8 is a
// one-byte load, and must split sources by the prefix, not pin them.
func TestEvaluateFromPartialLoad(t *testing.T) {
	rule := append([]any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{2}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{10}},
	}, append(tcpDport(5432), &expr.Verdict{Kind: expr.VerdictAccept})...)
	rs := testRuleset(PolicyDrop, rule)
	for _, c := range []struct {
		port uint16
		want []string
	}{
		{5432, []string{"8.0.0.0/7=drop", "11.0.0.0/8=drop", "10.0.0.0/8=accept"}},
		{6379, []string{"8.0.0.0/6=drop"}},
	} {
		pkt := Packet{Proto: 6, Dst: netip.MustParseAddr("192.0.2.10"), DstPort: c.port, InIface: "eth0"}
		var got []string
		for _, p := range EvaluateFrom(rs, testHost(), pkt, []netip.Prefix{netip.MustParsePrefix("8.0.0.0/6")}) {
			for _, f := range p.From {
				got = append(got, f.String()+"="+string(p.Result.Verdict))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("port %d: pieces %v, want %v", c.port, got, c.want)
		}
	}
}

// A lookup of the source address in a set splits sources into members and
// the rest, two pieces however many elements the set has.
func TestEvaluateFromSetMembership(t *testing.T) {
	rs := testRuleset(PolicyAccept, []any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{2}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: "block"},
		&expr.Verdict{Kind: expr.VerdictDrop},
	})
	tb := rs.Tables[0]
	block := &Set{Table: tb, Name: "block", KeyType: "ipv4_addr", KeyLen: 4, Interval: true}
	for i := 0; i < 1000; i++ {
		a := netip.AddrFrom4([4]byte{8, byte(i >> 8), byte(i), 0})
		block.Elements = append(block.Elements, Element{Key: a.AsSlice()}, Element{Key: netip.AddrFrom4([4]byte{8, byte(i >> 8), byte(i), 128}).AsSlice(), IntervalEnd: true})
	}
	tb.Sets = append(tb.Sets, block)
	pkt := Packet{Proto: 6, Dst: netip.MustParseAddr("192.0.2.10"), DstPort: 22, InIface: "eth0"}
	pieces := EvaluateFrom(rs, testHost(), pkt, []netip.Prefix{netip.MustParsePrefix("8.0.0.0/8")})
	if len(pieces) != 2 {
		t.Fatalf("%d pieces, want 2 (members and the rest)", len(pieces))
	}
	for _, p := range pieces {
		n := len(p.From) + p.More
		switch p.Result.Verdict {
		case Drop:
			if n != 1000 {
				t.Errorf("dropped: %d prefixes, want the set's 1000", n)
			}
		case Accept:
			if n < 1000 {
				t.Errorf("accepted: %d prefixes, want the gaps between the set's 1000", n)
			}
		default:
			t.Errorf("verdict %s", p.Result.Verdict)
		}
	}
}

func TestPublicLeavesOutSpecialRanges(t *testing.T) {
	pub := public()
	for _, a := range []string{"10.1.2.3", "192.168.1.1", "127.0.0.1", "fd00::1", "2001:db8::1", "100.64.0.1"} {
		for _, p := range pub {
			if p.Contains(netip.MustParseAddr(a)) {
				t.Errorf("%s is in the public range %s", a, p)
			}
		}
	}
	found := false
	for _, p := range pub {
		if p.Contains(netip.MustParseAddr("8.8.8.8")) {
			found = true
		}
	}
	if !found {
		t.Error("8.8.8.8 is not public")
	}
}

// FuzzEvaluate decodes a rule's expressions from arbitrary bytes and
// evaluates packets through it: the evaluator must never panic nor loop.
func FuzzEvaluate(f *testing.F) {
	for _, x := range [][]any{tcpDport(22), {&expr.Lookup{SourceRegister: 1, SetName: "s"}}} {
		var b []byte
		for _, e := range x {
			if e, ok := e.(expr.Any); ok {
				m, err := expr.Marshal(byte(FamilyINet), e)
				if err == nil {
					b = append(b, m...)
				}
			}
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		exprs, _ := DecodeExprs(FamilyINet, b)
		rs := testRuleset(PolicyAccept, exprs, []any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "sub"}})
		for _, src := range []string{"198.18.0.1", "127.0.0.1", "2001:db8::1"} {
			s := netip.MustParseAddr(src)
			dst := netip.MustParseAddr("192.0.2.10")
			if s.Is6() {
				dst = netip.MustParseAddr("2001:db8::10")
			}
			Evaluate(rs, testHost(), Packet{Proto: 6, Src: s, Dst: dst, DstPort: 22})
		}
	})
}
