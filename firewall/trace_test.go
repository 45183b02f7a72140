package firewall

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// nla encodes one netlink attribute, padded to four bytes.
func tnla(typ uint16, v []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func tbe32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func tbe64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func tcstr(s string) []byte { return append([]byte(s), 0) }

// traceMsg is an NFT_MSG_TRACE payload: the nfgenmsg header of a table
// family, then the attributes.
func traceMsg(family byte, attrs ...[]byte) []byte {
	b := []byte{family, 0, 0, 0}
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

// verdictAttr is a nested NFTA_TRACE_VERDICT.
func verdictAttr(code int32, chain string) []byte {
	v := tnla(nftaVerdictCode, tbe32(uint32(code)))
	if chain != "" {
		v = append(v, tnla(nftaVerdictChain, tcstr(chain))...)
	}
	return tnla(nftaTraceVerdict|0x8000, v) // NLA_F_NESTED, as the kernel sets it
}

// A SYN from 10.0.0.1:40000 to 10.0.0.2:8080, as the kernel copies the
// headers: 20 bytes of IPv4 header, 20 of TCP header.
var (
	synIPv4 = []byte{0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	synTCP  = []byte{0x9c, 0x40, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 0, 0xa0, 0x02, 0xff, 0xff, 0, 0, 0, 0}
	// A UDP datagram from [2001:db8::1]:5353 to [2001:db8::2]:53.
	udpIPv6 = append(append([]byte{0x60, 0, 0, 0, 0, 8, 17, 64},
		netip.MustParseAddr("2001:db8::1").AsSlice()...), netip.MustParseAddr("2001:db8::2").AsSlice()...)
	udpHdr = []byte{0x14, 0xe9, 0, 53, 0, 8, 0, 0}
)

// traceSeeds are messages as the kernel sends them, for the tests and
// the fuzzer's corpus.
func traceSeeds() map[string][]byte {
	return map[string][]byte{
		"jump with packet": traceMsg(1,
			tnla(nftaTraceID, tbe32(0xbac24694)), tnla(nftaTraceType, tbe32(nftTraceTypeRule)),
			tnla(nftaTraceTable, tcstr("t")), tnla(nftaTraceChain, tcstr("in")),
			tnla(nftaTraceRuleHandle, tbe64(4)), verdictAttr(-3, "check"),
			tnla(nftaTraceNFProto, tbe32(2)), tnla(nftaTraceIIF, tbe32(7)), tnla(11, []byte{1, 0}),
			tnla(nftaTraceNetworkHeader, synIPv4), tnla(nftaTraceTransportHdr, synTCP)),
		"accept": traceMsg(1,
			tnla(nftaTraceID, tbe32(0xbac24694)), tnla(nftaTraceType, tbe32(nftTraceTypeRule)),
			tnla(nftaTraceTable, tcstr("t")), tnla(nftaTraceChain, tcstr("check")),
			tnla(nftaTraceRuleHandle, tbe64(7)), verdictAttr(1, "")),
		"policy drop": traceMsg(1,
			tnla(nftaTraceID, tbe32(0x513942b4)), tnla(nftaTraceType, tbe32(nftTraceTypePolicy)),
			tnla(nftaTraceTable, tcstr("f")), tnla(nftaTraceChain, tcstr("in2")), tnla(nftaTracePolicy, tbe32(0))),
		"end of chain": traceMsg(1,
			tnla(nftaTraceID, tbe32(0x513942b4)), tnla(nftaTraceType, tbe32(nftTraceTypeRule)),
			tnla(nftaTraceTable, tcstr("t")), tnla(nftaTraceChain, tcstr("in")), verdictAttr(-1, "")),
		"udp6 return type": traceMsg(10,
			tnla(nftaTraceID, tbe32(9)), tnla(nftaTraceType, tbe32(nftTraceTypeReturn)),
			tnla(nftaTraceTable, tcstr("x")), tnla(nftaTraceChain, tcstr("c")), verdictAttr(-5, ""),
			tnla(nftaTraceMark, tbe32(0x42)), tnla(nftaTraceOIF, tbe32(3)),
			tnla(nftaTraceNetworkHeader, udpIPv6), tnla(nftaTraceTransportHdr, udpHdr)),
		"drop with errno": traceMsg(2,
			tnla(nftaTraceID, tbe32(1)), tnla(nftaTraceType, tbe32(nftTraceTypeRule)),
			tnla(nftaTraceTable, tcstr("filter")), tnla(nftaTraceChain, tcstr("INPUT")),
			tnla(nftaTraceRuleHandle, tbe64(12)), verdictAttr(int32(1<<16), "")),
	}
}

func TestDecodeTrace(t *testing.T) {
	seeds := traceSeeds()
	for name, want := range map[string]TraceEvent{
		"jump with packet": {ID: 0xbac24694, Family: 1, Table: "t", Chain: "in", Handle: 4, Type: "rule",
			Verdict: "jump check", Packet: true, NFProto: 2, Proto: 6,
			Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), SrcPort: 40000, DstPort: 8080,
			TCPFlags: 0x02, IIFIndex: 7, HaveSrc: true, HaveDst: true},
		"accept":       {ID: 0xbac24694, Family: 1, Table: "t", Chain: "check", Handle: 7, Type: "rule", Verdict: "accept"},
		"policy drop":  {ID: 0x513942b4, Family: 1, Table: "f", Chain: "in2", Type: "policy", Verdict: "drop"},
		"end of chain": {ID: 0x513942b4, Family: 1, Table: "t", Chain: "in", Type: "return", Verdict: "continue"},
		"udp6 return type": {ID: 9, Family: 10, Table: "x", Chain: "c", Type: "return", Verdict: "return",
			Packet: true, Proto: 17, Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2"),
			SrcPort: 5353, DstPort: 53, OIFIndex: 3, Mark: 0x42, HaveSrc: true, HaveDst: true},
		"drop with errno": {ID: 1, Family: 2, Table: "filter", Chain: "INPUT", Handle: 12, Type: "rule", Verdict: "drop"},
	} {
		got, err := DecodeTrace(seeds[name])
		if err != nil {
			t.Errorf("DecodeTrace(%s): %v", name, err)
			continue
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
			t.Errorf("DecodeTrace(%s) (-want +got):\n%s", name, diff)
		}
	}
}

func TestTraceEventAction(t *testing.T) {
	for _, tc := range []struct {
		e    TraceEvent
		want string
	}{
		{TraceEvent{Type: "policy", Verdict: "drop"}, "policy drop"},
		{TraceEvent{Type: "return", Verdict: "continue"}, "return"},
		{TraceEvent{Type: "rule", Verdict: "jump x", Handle: 3}, "jump x"},
		{TraceEvent{Type: "rule", Verdict: "continue", Handle: 3}, "continue"},
	} {
		if got := tc.e.Action(); got != tc.want {
			t.Errorf("%+v.Action() = %q; want %q", tc.e, got, tc.want)
		}
	}
}

func TestDecodeTraceBad(t *testing.T) {
	ok := traceSeeds()["accept"]
	for name, b := range map[string][]byte{
		"empty":                nil,
		"header only, no type": {1, 0, 0, 0},
		"cut in an attribute":  ok[:len(ok)-3],
		"attribute too long":   traceMsg(1, []byte{0xff, 0, 4, 0}),
		"attribute too short":  traceMsg(1, []byte{2, 0, 4, 0}),
		"no verdict":           traceMsg(1, tnla(nftaTraceType, tbe32(nftTraceTypeRule))),
		"unknown type":         traceMsg(1, tnla(nftaTraceType, tbe32(9)), verdictAttr(1, "")),
		"short handle": traceMsg(1, tnla(nftaTraceType, tbe32(nftTraceTypeRule)),
			tnla(nftaTraceRuleHandle, tbe32(4)), verdictAttr(1, "")),
		"verdict without code": traceMsg(1, tnla(nftaTraceType, tbe32(nftTraceTypeRule)),
			tnla(nftaTraceVerdict, tnla(nftaVerdictChain, tcstr("x")))),
	} {
		if e, err := DecodeTrace(b); err == nil {
			t.Errorf("DecodeTrace(%s) = %+v; want an error", name, e)
		}
	}
}

// ev is a shorthand for an event of TraceDecisions' tests.
func tev(id uint32, chain string, handle uint64, typ, verdict string) TraceEvent {
	return TraceEvent{ID: id, Table: "t", Chain: chain, Handle: handle, Type: typ, Verdict: verdict}
}

func TestTraceDecisions(t *testing.T) {
	pkt := func(e TraceEvent, sport uint16) TraceEvent {
		e.Packet, e.Proto, e.SrcPort, e.DstPort = true, 6, sport, 80
		e.Src, e.Dst = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
		return e
	}
	type decision struct {
		ID      uint32
		Verdict Verdict
		Decider string // chain/handle/verdict
		Events  int
	}
	for _, tc := range []struct {
		name   string
		events []TraceEvent
		want   []decision
	}{
		{"accept goes on to the next base chain, whose accept decides", []TraceEvent{
			pkt(tev(1, "a", 2, "rule", "jump c"), 1000), tev(1, "c", 5, "rule", "accept"),
			pkt(tev(1, "b", 0, "return", "continue"), 1000), tev(1, "b", 0, "policy", "accept"),
		}, []decision{{1, Accept, "b/0/accept", 4}}},
		{"a drop after an accept decides", []TraceEvent{
			tev(1, "a", 3, "rule", "accept"), tev(1, "b", 0, "policy", "drop"),
		}, []decision{{1, Drop, "b/0/drop", 2}}},
		{"interleaved packets", []TraceEvent{
			tev(1, "a", 3, "rule", "accept"), tev(2, "a", 4, "rule", "drop"), tev(1, "b", 9, "rule", "continue"),
		}, []decision{{1, Accept, "a/3/accept", 2}, {2, Drop, "a/4/drop", 1}}},
		{"an ID reused after a drop starts a new packet", []TraceEvent{
			tev(1, "a", 4, "rule", "drop"), tev(1, "a", 3, "rule", "accept"),
		}, []decision{{1, Drop, "a/4/drop", 1}, {1, Accept, "a/3/accept", 1}}},
		{"an ID reused by another connection starts a new packet", []TraceEvent{
			pkt(tev(1, "a", 3, "rule", "accept"), 1000), pkt(tev(1, "a", 3, "rule", "accept"), 1001),
		}, []decision{{1, Accept, "a/3/accept", 1}, {1, Accept, "a/3/accept", 1}}},
		{"queued is unknown", []TraceEvent{
			tev(1, "a", 3, "rule", "queue"),
		}, []decision{{1, Unknown, "a/3/queue", 1}}},
		{"no verdict seen", []TraceEvent{
			tev(1, "a", 3, "rule", "continue"),
		}, []decision{{1, Unknown, "", 1}}},
	} {
		var got []decision
		for _, d := range TraceDecisions(tc.events) {
			s := ""
			if d.Decider != nil {
				s = d.Decider.Chain + "/" + strconv.FormatUint(d.Decider.Handle, 10) + "/" + d.Decider.Verdict
			}
			got = append(got, decision{d.ID, d.Verdict, s, len(d.Events)})
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: TraceDecisions (-want +got):\n%s", tc.name, diff)
		}
	}
}

// FuzzDecodeTrace feeds the trace decoder what a kernel, or something
// pretending to be one, might send.
func FuzzDecodeTrace(f *testing.F) {
	for _, b := range traceSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeTrace(b)
		if err != nil {
			return
		}
		switch e.Type {
		case "rule", "return", "policy":
		default:
			t.Fatalf("DecodeTrace(%x).Type = %q", b, e.Type)
		}
		if e.Verdict == "" {
			t.Fatalf("DecodeTrace(%x) has no verdict", b)
		}
		_ = e.String()
		ds := TraceDecisions([]TraceEvent{e, e})
		if len(ds) == 0 {
			t.Fatalf("TraceDecisions lost the events of %x", b)
		}
	})
}
