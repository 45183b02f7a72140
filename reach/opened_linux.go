package reach

import (
	"encoding/binary"
	"slices"

	"github.com/google/nftables/expr"

	"github.com/portctl/portctl/firewall"
)

// The rules' expressions are google/nftables/expr's types, which build on
// Linux alone; elsewhere no rule holds them (opened_other.go).

// ruleOpenings is what one rule opens; nil for a rule that neither
// accepts nor DNATs, or does not match on the destination port.
func ruleOpenings(t *firewall.Table, r *firewall.Rule) []Opening {
	dportReg := map[uint32]bool{}
	protoReg := map[uint32]bool{}
	var protos []uint8
	var ports [][2]uint16
	accept, dnat, negated, fromSome := false, false, false, false
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Payload:
			delete(dportReg, e.DestRegister)
			delete(protoReg, e.DestRegister)
			switch {
			case e.Base == expr.PayloadBaseTransportHeader && e.Offset == 2 && e.Len == 2:
				dportReg[e.DestRegister] = true
			case e.Base == expr.PayloadBaseNetworkHeader && e.Len == 1 && (e.Offset == 9 && t.Family == firewall.FamilyIPv4 || e.Offset == 6 && t.Family == firewall.FamilyIPv6):
				protoReg[e.DestRegister] = true
			case e.Base == expr.PayloadBaseNetworkHeader && (e.Offset == 12 && e.Len <= 4 || e.Offset == 8 && e.Len <= 16):
				fromSome = true // ip saddr, ip6 saddr
			}
		case *expr.Meta:
			if !e.SourceRegister {
				delete(dportReg, e.Register)
				delete(protoReg, e.Register)
				if e.Key == expr.MetaKeyL4PROTO {
					protoReg[e.Register] = true
				}
			}
		case *expr.Cmp:
			switch {
			case dportReg[e.Register] && len(e.Data) == 2:
				if e.Op != expr.CmpOpEq {
					negated = true
					continue
				}
				p := binary.BigEndian.Uint16(e.Data)
				ports = append(ports, [2]uint16{p, p})
			case protoReg[e.Register] && len(e.Data) >= 1 && e.Op == expr.CmpOpEq:
				protos = append(protos, e.Data[0])
			}
		case *expr.Range:
			if dportReg[e.Register] && len(e.FromData) == 2 && len(e.ToData) == 2 {
				if e.Op != expr.CmpOpEq {
					negated = true
					continue
				}
				ports = append(ports, [2]uint16{binary.BigEndian.Uint16(e.FromData), binary.BigEndian.Uint16(e.ToData)})
			}
		case *expr.Lookup:
			if dportReg[e.SourceRegister] {
				if e.Invert {
					negated = true
					continue
				}
				ports = append(ports, setPorts(t, e)...)
			}
		case *expr.Verdict:
			accept = e.Kind == expr.VerdictAccept
		case *expr.NAT:
			dnat = e.Type == expr.NATTypeDestNAT
		case *expr.Redir:
			dnat = true
		case *firewall.Xt:
			ps, pr, neg := xtPorts(e)
			ports, negated = append(ports, ps...), negated || neg
			if pr != 0 {
				protos = append(protos, pr)
			}
			if n, ok := e.Info.(*firewall.NATTarget); ok && e.Target && (n.Kind == "DNAT" || n.Kind == "REDIRECT") {
				dnat = true
			}
		}
	}
	if (!accept && !dnat) || negated || len(ports) == 0 {
		return nil
	}
	if len(protos) == 0 {
		protos = []uint8{TCP, UDP}
	}
	var out []Opening
	for _, pr := range protos {
		if pr != TCP && pr != UDP {
			continue
		}
		for _, p := range ports {
			if p[0] == 0 && p[1] == 65535 {
				continue // every port: not an opening of a port
			}
			out = append(out, Opening{Proto: pr, Ports: p, DNAT: dnat, FromSome: fromSome, Rule: r})
		}
	}
	return out
}

// setPorts reads the ports of the set a lookup names: a plain set of
// inet_service, or an interval set of them.
func setPorts(t *firewall.Table, l *expr.Lookup) [][2]uint16 {
	var s *firewall.Set
	for _, c := range t.Sets {
		if (l.SetName != "" && c.Name == l.SetName) || (l.SetName == "" && c.ID == l.SetID) {
			s = c
			break
		}
	}
	if s == nil || s.Concat || s.IsMap || s.KeyLen != 2 {
		return nil
	}
	var out [][2]uint16
	if !s.Interval {
		for _, e := range s.Elements {
			if len(e.Key) >= 2 {
				p := binary.BigEndian.Uint16(e.Key)
				out = append(out, [2]uint16{p, p})
			}
		}
		return out
	}
	// An interval set lists each range as its start and, flagged
	// IntervalEnd, the port after its end; or as Key and KeyEnd.
	els := slices.Clone(s.Elements)
	slices.SortStableFunc(els, func(a, b firewall.Element) int {
		return int(binary.BigEndian.Uint16(pad2(a.Key))) - int(binary.BigEndian.Uint16(pad2(b.Key)))
	})
	for i, e := range els {
		if e.IntervalEnd || len(e.Key) < 2 {
			continue
		}
		lo := binary.BigEndian.Uint16(e.Key)
		hi := uint16(65535)
		switch {
		case len(e.KeyEnd) >= 2:
			hi = binary.BigEndian.Uint16(e.KeyEnd)
		case i+1 < len(els) && els[i+1].IntervalEnd && len(els[i+1].Key) >= 2:
			hi = binary.BigEndian.Uint16(els[i+1].Key) - 1
		}
		if hi >= lo {
			out = append(out, [2]uint16{lo, hi})
		}
	}
	return out
}

func pad2(b []byte) []byte {
	if len(b) >= 2 {
		return b
	}
	return []byte{0, 0}
}
