//go:build linux

package firewall

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// The expressions of google/nftables exist on Linux alone; elsewhere a
// rule is read from its text (owner_other.go).

// exprFacts adds what the rule's expressions say to f.
func exprFacts(r *Rule, f *facts) {
	var regs registers
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Meta:
			if !e.SourceRegister {
				regs.set(e.Register, regSource{meta: e.Key, bits: -1})
			}
		case *expr.Payload:
			if e.OperationType == expr.PayloadLoad {
				regs.set(e.DestRegister, regSource{payload: e, bits: -1})
			}
		case *expr.Bitwise:
			if s := regs.get(e.SourceRegister); s != nil {
				c := *s
				c.bits = maskBits(e.Mask)
				regs.set(e.DestRegister, c)
			}
		case *expr.Immediate:
			regs.set(e.Register, regSource{data: e.Data, bits: -1})
		case *expr.Cmp:
			f.cmp(regs.get(e.Register), e.Op, e.Data)
		case *expr.Range:
			if s := regs.get(e.Register); s != nil && isDport(s) && len(e.FromData) == 2 && len(e.ToData) == 2 && e.Op == expr.CmpOpEq {
				f.dports = append(f.dports, [2]uint16{binary.BigEndian.Uint16(e.FromData), binary.BigEndian.Uint16(e.ToData)})
			} else {
				f.other++
			}
		case *expr.Lookup:
			if s := regs.get(e.SourceRegister); s != nil && isDport(s) && !e.Invert && r.Chain != nil && r.Chain.Table != nil {
				if ports, ok := setPorts(r.Chain.Table, e); ok {
					f.dports = append(f.dports, ports...)
					continue
				}
			}
			f.other++
		case *expr.Verdict:
			f.verdict, f.target = verdictName(e.Kind), e.Chain
		case *expr.Reject:
			f.verdict = "reject"
		case *expr.Masq:
			f.verdict = "masquerade"
		case *expr.Redir:
			f.verdict = "redirect"
		case *expr.NAT:
			f.verdict = "snat"
			if e.Type == expr.NATTypeDestNAT {
				f.verdict = "dnat"
			}
			var a netip.Addr
			var port uint16
			if s := regs.get(e.RegAddrMin); e.RegAddrMin != 0 && s != nil && s.data != nil {
				a, _ = netip.AddrFromSlice(s.data)
			}
			if s := regs.get(e.RegProtoMin); e.RegProtoMin != 0 && s != nil && len(s.data) == 2 {
				port = binary.BigEndian.Uint16(s.data)
			}
			if a.IsValid() {
				f.natTo = netip.AddrPortFrom(a.Unmap(), port)
			}
		case *Xt:
			f.xt(e)
		case *expr.Counter, *expr.Log, *expr.Limit:
			// Neither a match nor a verdict that changes who wrote it.
			if _, ok := e.(*expr.Limit); ok {
				f.other++
			}
		default:
			f.other++
		}
	}
}

// regSource is what a register was loaded from.
type regSource struct {
	meta    expr.MetaKey
	payload *expr.Payload
	bits    int // of a prefix mask applied to it; -1 for none
	data    []byte
}

// registers are what the rule's expressions loaded into the registers so
// far, by number: NFT_REG_1 to _4 and NFT_REG32_00 to _15 are below 24.
type registers [24]struct {
	ok bool
	s  regSource
}

func (r *registers) get(n uint32) *regSource {
	if n >= uint32(len(r)) || !r[n].ok {
		return nil
	}
	return &r[n].s
}

func (r *registers) set(n uint32, s regSource) {
	if n < uint32(len(r)) {
		r[n].ok, r[n].s = true, s
	}
}

func verdictName(k expr.VerdictKind) string {
	switch k {
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictReturn:
		return "return"
	case expr.VerdictJump:
		return "jump"
	case expr.VerdictGoto:
		return "goto"
	}
	return "other"
}

func isDport(s *regSource) bool {
	return s.payload != nil && s.payload.Base == expr.PayloadBaseTransportHeader && s.payload.Offset == 2 && s.payload.Len == 2
}

// setPorts reads the ports of the set a lookup names, when it is a plain
// set of 2-byte keys.
func setPorts(t *Table, l *expr.Lookup) ([][2]uint16, bool) {
	for _, s := range t.Sets {
		if s.Name != l.SetName || s.IsMap || s.Concat {
			continue
		}
		// Owners and fixes need the few ports a tool's rule names; a
		// large set is a match like any other.
		if len(s.Elements) > 64 {
			return nil, false
		}
		var out [][2]uint16
		for i := 0; i < len(s.Elements); i++ {
			e := s.Elements[i]
			if len(e.Key) != 2 {
				return nil, false
			}
			if e.IntervalEnd {
				continue
			}
			lo := binary.BigEndian.Uint16(e.Key)
			hi := lo
			if len(e.KeyEnd) == 2 {
				hi = binary.BigEndian.Uint16(e.KeyEnd)
			} else if s.Interval && i+1 < len(s.Elements) && s.Elements[i+1].IntervalEnd && len(s.Elements[i+1].Key) == 2 {
				hi = binary.BigEndian.Uint16(s.Elements[i+1].Key) - 1
			}
			out = append(out, [2]uint16{lo, hi})
		}
		return out, len(out) > 0
	}
	return nil, false
}

func maskBits(mask []byte) int {
	n := 0
	for _, b := range mask {
		for i := 7; i >= 0; i-- {
			if b&(1<<i) == 0 {
				return n
			}
			n++
		}
	}
	return n
}

func (f *facts) cmp(s *regSource, op expr.CmpOp, data []byte) {
	if s == nil || (op != expr.CmpOpEq && op != expr.CmpOpNeq) {
		f.other++
		return
	}
	neg := op == expr.CmpOpNeq
	switch {
	case s.payload == nil && (s.meta == expr.MetaKeyIIFNAME || s.meta == expr.MetaKeyOIFNAME):
		name, _, terminated := strings.Cut(string(data), "\x00")
		if !terminated {
			name += "+" // iptables' wildcard: a prefix compare
		}
		if s.meta == expr.MetaKeyIIFNAME {
			f.iif, f.iifNeg = name, neg
		} else {
			f.oif, f.oifNeg = name, neg
		}
	case s.payload == nil && s.meta == expr.MetaKeyL4PROTO && len(data) == 1 && !neg:
		f.proto = data[0]
	case s.payload == nil && s.meta == expr.MetaKeyNFPROTO && len(data) == 1 && !neg:
		// An inet table's rule matching one family: its addresses are
		// that family's.
		switch data[0] {
		case 2:
			f.ipv = 4
		case 10:
			f.ipv = 6
		}
	case s.payload != nil && isDport(s) && len(data) == 2 && !neg:
		p := binary.BigEndian.Uint16(data)
		f.dports = append(f.dports, [2]uint16{p, p})
	case s.payload != nil && s.payload.Base == expr.PayloadBaseNetworkHeader && !neg:
		p := s.payload
		if p.Len == 1 && (p.Offset == 9 || p.Offset == 6) && len(data) == 1 {
			f.proto = data[0]
			return
		}
		// An address, or its first bytes: nft and iptables-nft load only
		// the bytes a prefix covers (ip saddr 10.0.0.0/8 loads one).
		var field int
		var src bool
		switch {
		case f.ipv == 4 && p.Offset == 12 && p.Len <= 4:
			field, src = 4, true
		case f.ipv == 4 && p.Offset == 16 && p.Len <= 4:
			field = 4
		case f.ipv == 6 && p.Offset == 8 && p.Len <= 16:
			field, src = 16, true
		case f.ipv == 6 && p.Offset == 24 && p.Len <= 16:
			field = 16
		}
		if field == 0 || len(data) != int(p.Len) {
			f.other++
			return
		}
		full := make([]byte, field)
		copy(full, data)
		a, _ := netip.AddrFromSlice(full)
		bits := int(p.Len) * 8
		if s.bits >= 0 && s.bits < bits {
			bits = s.bits
		}
		if src {
			f.src = netip.PrefixFrom(a, bits)
		} else {
			f.dst = netip.PrefixFrom(a, bits)
		}
	default:
		f.other++
	}
}

func (f *facts) xt(x *Xt) {
	switch info := x.Info.(type) {
	case *NATTarget:
		f.verdict = strings.ToLower(info.Kind)
		if info.Addr.IsValid() {
			f.natTo = netip.AddrPortFrom(info.Addr, info.Port)
		}
		return
	case *xt.Tcp:
		f.proto = 6
		if info.DstPorts != [2]uint16{0, 0xffff} {
			f.dports = append(f.dports, info.DstPorts)
		}
		return
	case *xt.Udp:
		f.proto = 17
		if info.DstPorts != [2]uint16{0, 0xffff} {
			f.dports = append(f.dports, info.DstPorts)
		}
		return
	case *Multiport:
		if info.Dst && !info.Src && !info.Invert {
			f.dports = append(f.dports, info.Ranges...)
			return
		}
	case *xt.Comment:
		return
	}
	if x.Target {
		switch x.Name {
		case "REJECT":
			f.verdict = "reject"
		case "MASQUERADE":
			f.verdict = "masquerade"
		case "DNAT":
			f.verdict = "dnat"
		case "SNAT":
			f.verdict = "snat"
		case "REDIRECT":
			f.verdict = "redirect"
		case "LOG", "NFLOG", "MARK", "CONNMARK":
		default:
			f.verdict = "other"
		}
		return
	}
	f.other++
}

// exprComment is the comment of the rule's iptables comment match.
func exprComment(r *Rule) string {
	for _, e := range r.Exprs {
		if x, ok := e.(*Xt); ok && x.Name == "comment" {
			if c, ok := x.Info.(*xt.Comment); ok {
				return string(*c)
			}
		}
	}
	return ""
}

// exprMasquerades says whether one of the rule's expressions masquerades.
func exprMasquerades(r *Rule) bool {
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Masq:
			return true
		case *Xt:
			if e.Target && e.Name == "MASQUERADE" {
				return true
			}
		}
	}
	return false
}
