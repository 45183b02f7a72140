//go:build linux

package firewall

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// nla is one netlink attribute for building messages in tests.
type nla struct {
	typ  uint16
	data []byte
}

func marshalAttrs(as ...nla) []byte {
	var b []byte
	for _, a := range as {
		n := 4 + len(a.data)
		b = binary.NativeEndian.AppendUint16(b, uint16(n))
		b = binary.NativeEndian.AppendUint16(b, a.typ)
		b = append(b, a.data...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	return b
}

func str(s string) []byte  { return append([]byte(s), 0) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func nfmsg(fam Family, as ...nla) []byte {
	return append([]byte{byte(fam), 0, 0, 1}, marshalAttrs(as...)...)
}

// exprList marshals expressions as the kernel lists them in
// NFTA_RULE_EXPRESSIONS.
func exprList(t testing.TB, fam Family, es ...any) []byte {
	t.Helper()
	var list []nla
	for _, e := range es {
		var b []byte
		switch e := e.(type) {
		case expr.Any:
			var err error
			if b, err = expr.Marshal(byte(fam), e); err != nil {
				t.Fatalf("Marshal(%T): %v", e, err)
			}
		case []byte:
			b = e
		}
		list = append(list, nla{unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, b})
	}
	return marshalAttrs(list...)
}

// ruleMsg is an NFT_MSG_NEWRULE of table t, chain c.
func ruleMsg(fam Family, handle uint64, comment string, exprs []byte) []byte {
	as := []nla{{unix.NFTA_RULE_TABLE, str("t")}, {unix.NFTA_RULE_CHAIN, str("c")}, {unix.NFTA_RULE_HANDLE, be64(handle)},
		{unix.NLA_F_NESTED | unix.NFTA_RULE_EXPRESSIONS, exprs}}
	if comment != "" {
		as = append(as, nla{unix.NFTA_RULE_USERDATA, userdata.AppendString(nil, userdata.TypeComment, comment)})
	}
	return nfmsg(fam, as...)
}

// baseBuilder has table t with chain c and set s, for the decoders of
// rules and elements.
func baseBuilder(t testing.TB, fam Family) *builder {
	t.Helper()
	b := newBuilder()
	for _, err := range []error{
		b.addTable(nfmsg(fam, nla{unix.NFTA_TABLE_NAME, str("t")}, nla{unix.NFTA_TABLE_FLAGS, be32(0)})),
		b.addChain(nfmsg(fam, nla{unix.NFTA_CHAIN_TABLE, str("t")}, nla{unix.NFTA_CHAIN_NAME, str("c")},
			nla{unix.NLA_F_NESTED | unix.NFTA_CHAIN_HOOK, marshalAttrs(nla{unix.NFTA_HOOK_HOOKNUM, be32(1)}, nla{unix.NFTA_HOOK_PRIORITY, be32(0xffffff9c)})},
			nla{unix.NFTA_CHAIN_POLICY, be32(0)}, nla{unix.NFTA_CHAIN_TYPE, str("filter")})),
		b.addSet(nfmsg(fam, nla{unix.NFTA_SET_TABLE, str("t")}, nla{unix.NFTA_SET_NAME, str("s")},
			nla{unix.NFTA_SET_FLAGS, be32(unix.NFT_SET_MAP | unix.NFT_SET_INTERVAL)}, nla{unix.NFTA_SET_KEY_TYPE, be32(13)},
			nla{unix.NFTA_SET_KEY_LEN, be32(2)}, nla{unix.NFTA_SET_DATA_TYPE, be32(0xffffff00)})),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func TestDecodeRule(t *testing.T) {
	fam := FamilyINet
	verdictShort := marshalAttrs(nla{unix.NFTA_EXPR_NAME, str("immediate")}, nla{unix.NLA_F_NESTED | unix.NFTA_EXPR_DATA, marshalAttrs(
		nla{unix.NFTA_IMMEDIATE_DREG, be32(0)},
		nla{unix.NLA_F_NESTED | unix.NFTA_IMMEDIATE_DATA, marshalAttrs(nla{unix.NLA_F_NESTED | unix.NFTA_DATA_VERDICT, []byte{1, 2}})})})
	unknown := marshalAttrs(nla{unix.NFTA_EXPR_NAME, str("osf")}, nla{unix.NLA_F_NESTED | unix.NFTA_EXPR_DATA, marshalAttrs(nla{1, be32(1)})})
	badCmp := marshalAttrs(nla{unix.NFTA_EXPR_NAME, str("cmp")}, nla{unix.NLA_F_NESTED | unix.NFTA_EXPR_DATA, []byte{200, 0, 1, 0}})
	match := marshalAttrs(nla{unix.NFTA_EXPR_NAME, str("match")}, nla{unix.NLA_F_NESTED | unix.NFTA_EXPR_DATA, marshalAttrs(
		nla{unix.NFTA_MATCH_NAME, str("comment")}, nla{unix.NFTA_MATCH_REV, be32(0)}, nla{unix.NFTA_MATCH_INFO, make([]byte, 256)})})
	exprs := exprList(t, fam,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: "s", IsDestRegSet: true, DestRegister: 0},
		unknown, badCmp, verdictShort, match,
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictJump, Chain: "c"},
	)
	b := baseBuilder(t, fam)
	if err := b.addRule(ruleMsg(fam, 7, "hello", exprs)); err != nil {
		t.Fatal(err)
	}
	if err := b.addRule(ruleMsg(fam, 9, "", exprList(t, fam, &expr.Verdict{Kind: expr.VerdictAccept}))); err != nil {
		t.Fatal(err)
	}
	c := b.rs.Tables[0].Chains[0]
	if len(c.Rules) != 2 || c.Rules[0].Position != 1 || c.Rules[1].Position != 2 || c.Rules[0].Handle != 7 || c.Rules[0].Comment != "hello" {
		t.Fatalf("rules %+v", c.Rules)
	}
	if h := c.Hook; h == nil || h.Num != 1 || h.Priority != -100 || h.Policy != PolicyDrop || h.Type != "filter" {
		t.Errorf("hook %+v", h)
	}
	var got []string
	for _, e := range c.Rules[0].Exprs {
		switch e := e.(type) {
		case *Opaque:
			got = append(got, "opaque "+e.Name)
		case *expr.Verdict:
			got = append(got, fmt.Sprintf("verdict %d %s", e.Kind, e.Chain))
		case *Xt:
			got = append(got, "xt "+e.Name)
		default:
			got = append(got, fmt.Sprintf("%T", e))
		}
	}
	want := []string{"*expr.Meta", "*expr.Cmp", "*expr.Payload", "*expr.Lookup", "opaque osf", "opaque cmp",
		"verdict 0 ", "xt comment", "*expr.Counter", fmt.Sprintf("verdict %d c", expr.VerdictJump)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("DecodeExprs = %v; want %v", got, want)
	}
	if cmp := c.Rules[0].Exprs[1].(*expr.Cmp); !bytes.Equal(cmp.Data, []byte{6}) {
		t.Errorf("cmp data %x; want 06", cmp.Data)
	}
	if err := b.addRule(nfmsg(fam, nla{unix.NFTA_RULE_TABLE, str("t")}, nla{unix.NFTA_RULE_CHAIN, str("nope")})); err == nil {
		t.Error("a rule of a chain not listed: no error")
	}
}

// TestDecodeDynset: a dynset whose element expression google/nftables
// does not know would come out without it, matching more than the
// kernel's: it must be opaque instead.
func TestDecodeDynset(t *testing.T) {
	fam := FamilyINet
	dynset := func(inner []byte) []byte {
		return marshalAttrs(nla{unix.NFTA_EXPR_NAME, str("dynset")}, nla{unix.NLA_F_NESTED | unix.NFTA_EXPR_DATA, marshalAttrs(
			nla{unix.NFTA_DYNSET_SET_NAME, str("d")}, nla{unix.NFTA_DYNSET_OP, be32(1)}, nla{unix.NFTA_DYNSET_SREG_KEY, be32(1)},
			nla{unix.NLA_F_NESTED | unix.NFTA_DYNSET_EXPR, inner})})
	}
	limit, err := expr.Marshal(byte(fam), &expr.Limit{Type: expr.LimitTypePkts, Rate: 10, Unit: expr.LimitTimeSecond})
	if err != nil {
		t.Fatal(err)
	}
	unknown := marshalAttrs(nla{unix.NFTA_EXPR_NAME, str("last")}, nla{unix.NLA_F_NESTED | unix.NFTA_EXPR_DATA, marshalAttrs(nla{1, be32(1)})})
	es, err := DecodeExprs(fam, exprList(t, fam, dynset(limit), dynset(unknown)))
	if err != nil || len(es) != 2 {
		t.Fatalf("DecodeExprs = %v, %v", es, err)
	}
	if d, ok := es[0].(*expr.Dynset); !ok || len(d.Exprs) != 1 {
		t.Errorf("dynset with a limit: %#v", es[0])
	}
	if o, ok := es[1].(*Opaque); !ok || o.Name != "dynset" {
		t.Errorf("dynset with last: %#v; want opaque", es[1])
	}
}

func TestDecodeElements(t *testing.T) {
	fam := FamilyINet
	b := baseBuilder(t, fam)
	elem := func(as ...nla) nla { return nla{unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, marshalAttrs(as...)} }
	key := func(typ uint16, v []byte) nla {
		return nla{unix.NLA_F_NESTED | typ, marshalAttrs(nla{unix.NFTA_DATA_VALUE, v})}
	}
	verdict := nla{unix.NLA_F_NESTED | unix.NFTA_SET_ELEM_DATA, marshalAttrs(nla{unix.NLA_F_NESTED | unix.NFTA_DATA_VERDICT,
		marshalAttrs(nla{unix.NFTA_VERDICT_CODE, be32(uint32(0xfffffffd))}, nla{unix.NFTA_VERDICT_CHAIN, str("c")})})}
	msg := nfmsg(fam, nla{unix.NFTA_SET_ELEM_LIST_TABLE, str("t")}, nla{unix.NFTA_SET_ELEM_LIST_SET, str("s")},
		nla{unix.NLA_F_NESTED | unix.NFTA_SET_ELEM_LIST_ELEMENTS, marshalAttrs(
			elem(key(unix.NFTA_SET_ELEM_KEY, []byte{0, 22}), key(nftaSetElemKeyEnd, []byte{0, 23}), verdict, nla{unix.NFTA_SET_ELEM_EXPIRATION, be64(1500)}),
			elem(key(unix.NFTA_SET_ELEM_KEY, []byte{0, 24}), nla{unix.NFTA_SET_ELEM_FLAGS, be32(unix.NFT_SET_ELEM_INTERVAL_END)}),
		)})
	if err := b.addElems(msg); err != nil {
		t.Fatal(err)
	}
	s := b.rs.Tables[0].Sets[0]
	if !s.IsMap || !s.Interval || s.KeyType != "inet_service" || s.DataType != "verdict" || len(s.Elements) != 2 {
		t.Fatalf("set %+v", s)
	}
	e := s.Elements[0]
	if !bytes.Equal(e.Key, []byte{0, 22}) || !bytes.Equal(e.KeyEnd, []byte{0, 23}) || e.Verdict == nil ||
		e.Verdict.Kind != int64(expr.VerdictJump) || e.Verdict.Chain != "c" || e.Expires.Milliseconds() != 1500 {
		t.Errorf("element 1 %+v (verdict %+v)", e, e.Verdict)
	}
	if !s.Elements[1].IntervalEnd {
		t.Errorf("element 2 not an interval end")
	}
}

func TestDatatype(t *testing.T) {
	for _, c := range []struct {
		magic  uint32
		name   string
		concat bool
	}{
		{7, "ipv4_addr", false},
		{7<<6 | 13, "ipv4_addr . inet_service", true},
		{8<<12 | 12<<6 | 13, "ipv6_addr . inet_proto . inet_service", true},
		{0xffffff00, "verdict", false},
		{63, "type 63", false},
	} {
		dt, concat := datatype(c.magic)
		if dt != c.name || concat != c.concat {
			t.Errorf("datatype(%#x) = %q, %v; want %q, %v", c.magic, dt, concat, c.name, c.concat)
		}
	}
}

func TestDecodeHost(t *testing.T) {
	b := newHostBuilder()
	link := func(idx int32, typ uint16, name string) []byte {
		m := make([]byte, unix.SizeofIfInfomsg)
		binary.NativeEndian.PutUint16(m[2:], typ)
		binary.NativeEndian.PutUint32(m[4:], uint32(idx))
		return append(m, marshalAttrs(nla{unix.IFLA_IFNAME, str(name)}, nla{unix.IFLA_GROUP, binary.NativeEndian.AppendUint32(nil, 3)})...)
	}
	addr := func(idx uint32, bits byte, a []byte) []byte {
		m := []byte{unix.AF_INET, bits, 0, 0}
		m = binary.NativeEndian.AppendUint32(m, idx)
		return append(m, marshalAttrs(nla{unix.IFA_ADDRESS, a}, nla{unix.IFA_LOCAL, a})...)
	}
	route := func(table, typ byte, dst []byte, bits byte, oif uint32, gw []byte) []byte {
		m := []byte{unix.AF_INET, bits, 0, 0, table, 0, 0, typ, 0, 0, 0, 0}
		as := []nla{{unix.RTA_OIF, binary.NativeEndian.AppendUint32(nil, oif)}}
		if dst != nil {
			as = append(as, nla{unix.RTA_DST, dst})
		}
		if gw != nil {
			as = append(as, nla{unix.RTA_GATEWAY, gw})
		}
		return append(m, marshalAttrs(as...)...)
	}
	rule := func(prio uint32, table byte, extra ...nla) []byte {
		m := []byte{unix.AF_INET, 0, 0, 0, table, 0, 0, 1, 0, 0, 0, 0}
		as := append([]nla{{fraPriority, binary.NativeEndian.AppendUint32(nil, prio)}, {fraSuppressPrefixlen, binary.NativeEndian.AppendUint32(nil, 0xffffffff)}}, extra...)
		return append(m, marshalAttrs(as...)...)
	}
	steps := []error{
		b.addLink(link(1, 772, "lo")), b.addLink(link(2, 1, "eth0")),
		b.addAddr(addr(2, 24, []byte{192, 0, 2, 5})),
		b.addRoute(route(unix.RT_TABLE_MAIN, unix.RTN_UNICAST, nil, 0, 2, []byte{192, 0, 2, 1})),
		b.addRoute(route(unix.RT_TABLE_LOCAL, unix.RTN_LOCAL, []byte{192, 0, 2, 5}, 32, 2, nil)),
		b.addRoute(route(100, unix.RTN_UNICAST, []byte{10, 0, 0, 0}, 8, 2, nil)),
		b.addRule(rule(0, unix.RT_TABLE_LOCAL)), b.addRule(rule(32766, unix.RT_TABLE_MAIN)), b.addRule(rule(32767, 253)),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	h := b.host()
	if h.PolicyRouting {
		t.Error("PolicyRouting with the default rules")
	}
	if len(h.Interfaces) != 2 || h.Interfaces[1].Group != 3 || fmt.Sprint(h.Interfaces[1].Addrs) != "[192.0.2.5/24]" {
		t.Errorf("interfaces %+v", h.Interfaces)
	}
	if got := fmt.Sprint(h.Routes); got != "[{0.0.0.0/0 eth0 192.0.2.1 unicast} {192.0.2.5/32 eth0 invalid IP local}]" {
		t.Errorf("routes %s", got)
	}
	b.addRule(rule(100, 100, nla{unix.FRA_IIFNAME, str("eth0")}))
	if !b.host().PolicyRouting {
		t.Error("no PolicyRouting with an iif rule")
	}
}

// FuzzDecodeRule feeds any bytes to the decoder of NFT_MSG_NEWRULE and of
// expression lists: it must return, not panic.
func FuzzDecodeRule(f *testing.F) {
	fam := FamilyINet
	f.Add(ruleMsg(fam, 1, "c", exprList(f, fam,
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte("lo\x00")},
		&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{6, 0, 0, 0}, Xor: []byte{0, 0, 0, 0}},
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
		&expr.Limit{Type: expr.LimitTypePkts, Rate: 5, Unit: expr.LimitTimeSecond},
		&expr.Verdict{Kind: expr.VerdictGoto, Chain: "x"},
	)))
	f.Add(ruleMsg(fam, 2, "", []byte{8, 0, 1, 0, 'c', 'm', 'p', 0}))
	f.Add([]byte{1, 0, 0, 0, 4, 0, 1, 0})
	f.Fuzz(func(t *testing.T, msg []byte) {
		b := baseBuilder(t, fam)
		// The rule's own table and chain, so that rules captured from the
		// kernel (testdata/fuzz) get as far as their expressions.
		if fam, _, rest, err := nfgen(msg); err == nil {
			var table, chain string
			a := attrs{b: rest}
			for a.next() {
				switch a.typ {
				case unix.NFTA_RULE_TABLE:
					table = string(cstr(a.data))
				case unix.NFTA_RULE_CHAIN:
					chain = string(cstr(a.data))
				case unix.NFTA_RULE_EXPRESSIONS:
					_, _ = DecodeExprs(fam, a.data)
				}
			}
			_ = b.addTable(nfmsg(fam, nla{unix.NFTA_TABLE_NAME, str(table)}))
			_ = b.addChain(nfmsg(fam, nla{unix.NFTA_CHAIN_TABLE, str(table)}, nla{unix.NFTA_CHAIN_NAME, str(chain)}))
		}
		_ = b.addRule(msg)
	})
}

// FuzzDecodeObjects feeds any bytes to the decoders of tables, chains,
// sets, set elements and objects; the first byte picks which.
func FuzzDecodeObjects(f *testing.F) {
	fam := FamilyINet
	f.Add(append([]byte{0}, nfmsg(fam, nla{unix.NFTA_TABLE_NAME, str("u")}, nla{unix.NFTA_TABLE_FLAGS, be32(1)})...))
	f.Add(append([]byte{1}, nfmsg(fam, nla{unix.NFTA_CHAIN_TABLE, str("t")}, nla{unix.NFTA_CHAIN_NAME, str("d")},
		nla{unix.NLA_F_NESTED | unix.NFTA_CHAIN_HOOK, marshalAttrs(nla{unix.NFTA_HOOK_HOOKNUM, be32(0)}, nla{unix.NFTA_HOOK_PRIORITY, be32(0)},
			nla{unix.NLA_F_NESTED | nftaHookDevs, marshalAttrs(nla{nftaDeviceName, str("eth0")})})})...))
	f.Add(append([]byte{2}, nfmsg(fam, nla{unix.NFTA_SET_TABLE, str("t")}, nla{unix.NFTA_SET_NAME, str("p")}, nla{unix.NFTA_SET_KEY_TYPE, be32(7<<6 | 13)},
		nla{unix.NLA_F_NESTED | unix.NFTA_SET_DESC, marshalAttrs(nla{unix.NLA_F_NESTED | nftaSetDescConcat, marshalAttrs(
			nla{unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, marshalAttrs(nla{nftaSetFieldLen, be32(4)})},
			nla{unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, marshalAttrs(nla{nftaSetFieldLen, be32(2)})})})})...))
	f.Add(append([]byte{3}, nfmsg(fam, nla{unix.NFTA_SET_ELEM_LIST_TABLE, str("t")}, nla{unix.NFTA_SET_ELEM_LIST_SET, str("s")},
		nla{unix.NLA_F_NESTED | unix.NFTA_SET_ELEM_LIST_ELEMENTS, marshalAttrs(nla{unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, marshalAttrs(
			nla{unix.NLA_F_NESTED | unix.NFTA_SET_ELEM_KEY, marshalAttrs(nla{unix.NFTA_DATA_VALUE, []byte{0, 22}})},
			nla{unix.NLA_F_NESTED | unix.NFTA_SET_ELEM_DATA, marshalAttrs(nla{unix.NLA_F_NESTED | unix.NFTA_DATA_VERDICT, marshalAttrs(nla{unix.NFTA_VERDICT_CODE, be32(1)})})},
		)})})...))
	f.Add(append([]byte{4}, nfmsg(fam, nla{unix.NFTA_OBJ_TABLE, str("t")}, nla{unix.NFTA_OBJ_NAME, str("o")}, nla{unix.NFTA_OBJ_TYPE, be32(1)})...))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		b := baseBuilder(t, fam)
		msg := in[1:]
		// The elements' own table and set, as for FuzzDecodeRule.
		if fam, _, rest, err := nfgen(msg); err == nil && in[0]%5 == 3 {
			var table, set string
			a := attrs{b: rest}
			for a.next() {
				switch a.typ {
				case unix.NFTA_SET_ELEM_LIST_TABLE:
					table = string(cstr(a.data))
				case unix.NFTA_SET_ELEM_LIST_SET:
					set = string(cstr(a.data))
				}
			}
			_ = b.addTable(nfmsg(fam, nla{unix.NFTA_TABLE_NAME, str(table)}))
			_ = b.addSet(nfmsg(fam, nla{unix.NFTA_SET_TABLE, str(table)}, nla{unix.NFTA_SET_NAME, str(set)}))
		}
		switch in[0] % 5 {
		case 0:
			_ = b.addTable(msg)
		case 1:
			_ = b.addChain(msg)
		case 2:
			_ = b.addSet(msg)
		case 3:
			_ = b.addElems(msg)
		case 4:
			_ = b.addObject(msg)
		}
	})
}

// FuzzDecodeHost feeds any bytes to the rtnetlink decoders of links,
// addresses, routes and rules; the first byte picks which.
func FuzzDecodeHost(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 3, 0, 'l', 'o', 0})
	f.Add([]byte{1, 2, 24, 0, 0, 2, 0, 0, 0, 8, 0, 2, 0, 192, 0, 2, 5})
	f.Add([]byte{2, 2, 24, 0, 0, 254, 0, 0, 1, 0, 0, 0, 0, 8, 0, 1, 0, 10, 0, 0, 0, 20, 0, 9, 0, 12, 0, 0, 0, 2, 0, 0, 0, 8, 0, 5, 0, 1, 2, 3, 4})
	f.Add([]byte{3, 2, 0, 0, 0, 255, 0, 0, 1, 0, 0, 0, 0, 8, 0, 6, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		b := newHostBuilder()
		_ = b.addLink(link0)
		msg := in[1:]
		switch in[0] % 4 {
		case 0:
			_ = b.addLink(msg)
		case 1:
			_ = b.addAddr(msg)
		case 2:
			_ = b.addRoute(msg)
		case 3:
			_ = b.addRule(msg)
		}
		_ = b.host()
	})
}

// link0 is an RTM_NEWLINK of interface 2, so that addresses and routes
// have an interface to go to.
var link0 = append([]byte{0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 9, 0, 3, 0, 'e', 't', 'h', '0', 0, 0, 0, 0)
