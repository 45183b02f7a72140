package firewall

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/google/nftables/xt"
)

// xt evaluates an iptables match or target.
func (w *walk) xt(r *Rule, rg *regs, e *Xt) (ruleVerdict, bool) {
	if e.Target {
		return w.xtTarget(r, e)
	}
	what := "iptables match " + e.Name
	switch info := e.Info.(type) {
	case *xt.Comment:
		return ruleVerdict{}, false
	case *xt.Tcp:
		if w.p.Proto != 6 {
			return ruleVerdict{kind: vNoMatch}, true
		}
		t := w.portIn(false, info.SrcPorts, info.InvFlags&0x01 != 0)
		t = and(t, w.portIn(true, info.DstPorts, info.InvFlags&0x02 != 0))
		if info.FlagsMask != 0 {
			// A SYN: the flags the client chooses (ECE, CWR) are unknown.
			const flags, known = 0x02, 0x3f
			f := triOf(flags&info.FlagsMask == info.FlagsCmp)
			if info.FlagsMask&^known != 0 {
				if (flags&info.FlagsMask^info.FlagsCmp)&known != 0 {
					f = no
				} else {
					f = maybe
				}
			}
			if info.InvFlags&0x04 != 0 {
				f = f.not()
			}
			t = and(t, f)
		}
		if info.Option != 0 {
			t = and(t, maybe)
		}
		return w.matched(r, t, what)
	case *xt.Udp:
		if w.p.Proto != 17 {
			return ruleVerdict{kind: vNoMatch}, true
		}
		t := w.portIn(false, info.SrcPorts, info.InvFlags&0x01 != 0)
		t = and(t, w.portIn(true, info.DstPorts, info.InvFlags&0x02 != 0))
		return w.matched(r, t, what)
	case *Multiport:
		if w.p.Proto != 6 && w.p.Proto != 17 {
			return ruleVerdict{kind: vNoMatch}, true
		}
		in := func(port uint16) bool {
			for _, pr := range info.Ranges {
				if pr[0] <= port && port <= pr[1] {
					return true
				}
			}
			return false
		}
		var t tri
		switch {
		case info.Src && info.Dst:
			t = triOf(in(w.p.DstPort))
			if t == no {
				if w.p.SrcPort == 0 {
					t = maybe
				} else {
					t = triOf(in(w.p.SrcPort))
				}
			}
		case info.Dst:
			t = triOf(in(w.p.DstPort))
		default:
			if w.p.SrcPort == 0 {
				t = maybe
			} else {
				t = triOf(in(w.p.SrcPort))
			}
		}
		if info.Invert {
			t = t.not()
		}
		return w.matched(r, t, what)
	case *XtState:
		st := uint32(8) // XT_STATE_BIT(IP_CT_NEW)
		if !w.hasCt() {
			st = 1 // XT_STATE_INVALID
			if w.untracked {
				st = 64 // XT_STATE_UNTRACKED
			}
		}
		t := triOf(info.Mask&st != 0)
		if info.Invert {
			t = t.not()
		}
		return w.matched(r, t, what)
	case *xt.ConntrackMtinfo1:
		return w.matched(r, w.conntrack(&info.ConntrackMtinfoBase, uint16(info.StateMask), uint16(info.StatusMask), [4]uint16{}), what)
	case *xt.ConntrackMtinfo2:
		return w.matched(r, w.conntrack(&info.ConntrackMtinfoBase, info.StateMask, info.StatusMask, [4]uint16{}), what)
	case *xt.ConntrackMtinfo3:
		hi := [4]uint16{info.OrigSrcPortHigh, info.OrigDstPortHigh, info.ReplSrcPortHigh, info.ReplDstPortHigh}
		return w.matched(r, w.conntrack(&info.ConntrackMtinfoBase, info.StateMask, info.StatusMask, hi), what)
	case *xt.AddrType:
		t := w.addrType(info.Source, info.Dest, info.InvertSource, info.InvertDest, false, false)
		return w.matched(r, t, what)
	case *xt.AddrTypeV1:
		f := info.Flags
		t := w.addrType(info.Source, info.Dest, f&1 != 0, f&2 != 0, f&4 != 0, f&8 != 0)
		return w.matched(r, t, what)
	case *XtMark:
		t := triOf((w.mark&info.Mask == info.Value) != info.Invert)
		if w.markKnown&info.Mask != info.Mask {
			t = maybe
		}
		return w.matched(r, t, what)
	}
	return w.matched(r, maybe, what+", which this package does not model")
}

func and(a, b tri) tri {
	switch {
	case a == no || b == no:
		return no
	case a == maybe || b == maybe:
		return maybe
	}
	return yes
}

// portIn is a port range match of the tcp and udp matches.
func (w *walk) portIn(dst bool, pr [2]uint16, invert bool) tri {
	if pr[0] == 0 && pr[1] == 0xffff && !invert {
		return yes
	}
	port := w.p.DstPort
	if !dst {
		if w.p.SrcPort == 0 {
			return maybe
		}
		port = w.p.SrcPort
	}
	return triOf((pr[0] <= port && port <= pr[1]) != invert)
}

// The conntrack match's flags (XT_CONNTRACK_*).
const (
	ctmState      = 1 << 0
	ctmProto      = 1 << 1
	ctmOrigSrc    = 1 << 2
	ctmOrigDst    = 1 << 3
	ctmReplSrc    = 1 << 4
	ctmReplDst    = 1 << 5
	ctmStatus     = 1 << 6
	ctmExpires    = 1 << 7
	ctmOrigSrcPt  = 1 << 8
	ctmOrigDstPt  = 1 << 9
	ctmReplSrcPt  = 1 << 10
	ctmReplDstPt  = 1 << 11
	ctmDirection  = 1 << 12
	ctmStateAlias = 1 << 13
)

func (w *walk) conntrack(b *xt.ConntrackMtinfoBase, state, status uint16, portHigh [4]uint16) tri {
	t := yes
	inv := func(flag uint16, x tri) tri {
		if b.InvertFlags&flag != 0 {
			return x.not()
		}
		return x
	}
	f := b.MatchFlags
	if !w.hasCt() {
		// Without a connection only the state can match: invalid, or
		// untracked after a notrack.
		if f&ctmState == 0 {
			return no
		}
		st := uint16(1)
		if w.untracked {
			st = 1 << 8
		}
		return inv(ctmState, triOf(st&state != 0))
	}
	if f&ctmState != 0 {
		// The first packet of a connection is new; after a DNAT it is also
		// in the DNAT pseudo-state.
		st := uint16(8)
		if w.nat != nil {
			st |= 1 << 7 // XT_CONNTRACK_STATE_DNAT
		}
		t = and(t, inv(ctmState, triOf(st&state != 0)))
	}
	if f&ctmProto != 0 {
		t = and(t, inv(ctmProto, triOf(uint16(w.p.Proto) == b.L4Proto)))
	}
	if f&ctmOrigSrc != 0 {
		w.pin()
		t = and(t, inv(ctmOrigSrc, maskedEq(w.p.Src, b.OrigSrcAddr, b.OrigSrcMask)))
	}
	if f&ctmOrigDst != 0 {
		t = and(t, inv(ctmOrigDst, maskedEq(w.origDst.Addr(), b.OrigDstAddr, b.OrigDstMask)))
	}
	if f&ctmReplSrc != 0 {
		// The reply comes from where the packet now goes.
		t = and(t, inv(ctmReplSrc, maskedEq(w.p.Dst, b.ReplSrcAddr, b.ReplSrcMask)))
	}
	if f&ctmReplDst != 0 {
		w.pin()
		t = and(t, inv(ctmReplDst, maskedEq(w.p.Src, b.ReplDstAddr, b.ReplDstMask)))
	}
	portMatch := func(flag uint16, port uint16, known bool, lo, hi uint16) {
		if f&flag == 0 {
			return
		}
		if hi == 0 {
			hi = lo
		}
		x := maybe
		if known {
			x = triOf(lo <= port && port <= hi)
		}
		t = and(t, inv(flag, x))
	}
	// XtFromMatch hands over every revision's ports in host order.
	portMatch(ctmOrigSrcPt, w.p.SrcPort, w.p.SrcPort != 0, b.OrigSrcPort, portHigh[0])
	portMatch(ctmOrigDstPt, w.origDst.Port(), true, b.OrigDstPort, portHigh[1])
	portMatch(ctmReplSrcPt, w.p.DstPort, true, b.ReplSrcPort, portHigh[2])
	portMatch(ctmReplDstPt, w.p.SrcPort, w.p.SrcPort != 0, b.ReplDstPort, portHigh[3])
	if f&ctmStatus != 0 {
		known := uint16(1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5)
		st := uint16(w.ctStatus)
		x := triOf(st&status != 0)
		if x == no && status&^known != 0 {
			x = maybe
		}
		t = and(t, inv(ctmStatus, x))
	}
	if f&ctmExpires != 0 {
		t = and(t, maybe)
	}
	if f&ctmDirection != 0 {
		// --ctdir ORIGINAL is the flag without its inversion: the first
		// packet's direction.
		t = and(t, triOf(b.InvertFlags&ctmDirection == 0))
	}
	return t
}

func maskedEq(a netip.Addr, want net.IP, mask net.IPMask) tri {
	b := a.AsSlice()
	if len(want) == 16 && len(b) == 4 {
		want = want.To4()
	}
	if len(want) != len(b) {
		return maybe
	}
	if len(mask) > len(b) {
		mask = mask[len(mask)-len(b):]
	}
	for i := range b {
		m := byte(0xff)
		if i < len(mask) {
			m = mask[i]
		}
		if b[i]&m != want[i]&m {
			return no
		}
	}
	return yes
}

// addrType is the addrtype match: types as bit masks of 1<<RTN_*.
func (w *walk) addrType(src, dst uint16, invSrc, invDst, ifaceIn, ifaceOut bool) tri {
	t := yes
	if ifaceOut {
		return maybe
	}
	typeOf := func(a netip.Addr) uint16 {
		switch {
		case a.IsMulticast():
			return 1 << 5
		case w.isLocal(a):
			if ifaceIn {
				// Only addresses of the input device count as local (for a
				// client on this machine, lo's).
				if i, ok := w.iface(w.iif); ok {
					for _, p := range i.Addrs {
						if p.Addr() == a || w.iif == "lo" && a.IsLoopback() {
							return 1 << 2
						}
					}
				}
				return 1 << 1
			}
			return 1 << 2
		}
		if r, ok := w.route(a); ok {
			return 1 << rtnType(r.Type)
		}
		return 1 << 7 // unreachable
	}
	if src != 0 {
		w.narrowByRoutes()
		t = and(t, triOf((typeOf(w.p.Src)&src != 0) != invSrc))
	}
	if dst != 0 {
		t = and(t, triOf((typeOf(w.p.Dst)&dst != 0) != invDst))
	}
	return t
}

// xtTarget is an iptables target.
func (w *walk) xtTarget(r *Rule, e *Xt) (ruleVerdict, bool) {
	switch e.Name {
	case "REJECT":
		return ruleVerdict{kind: vReject}, true
	case "DROP":
		return ruleVerdict{kind: vDrop}, true
	case "ACCEPT":
		return ruleVerdict{kind: vAccept}, true
	case "RETURN":
		return ruleVerdict{kind: vReturn}, true
	case "LOG", "NFLOG", "ULOG", "TRACE", "NOTRACK", "CT", "CHECKSUM", "TCPMSS", "CLASSIFY", "DSCP", "TOS", "TTL", "HL", "AUDIT", "IDLETIMER", "LED":
		return ruleVerdict{kind: vContinue}, true
	case "MARK":
		m, ok := e.Info.(*XtMark)
		if !ok {
			return unknownVerdict(r, "a MARK target not decoded")
		}
		w.mark = w.mark&^m.Mask ^ m.Value
		return ruleVerdict{kind: vContinue}, true
	case "CONNMARK":
		return unknownVerdict(r, "a CONNMARK target, which this package does not model")
	case "SNAT", "MASQUERADE":
		w.natDone = true
		return ruleVerdict{kind: vAccept, nat: "snat"}, true
	case "DNAT", "REDIRECT":
		n, ok := e.Info.(*NATTarget)
		if !ok {
			return unknownVerdict(r, "a "+e.Name+" target not decoded")
		}
		if n.PortMax != 0 && n.PortMax != n.Port {
			return unknownVerdict(r, "a "+e.Name+" to a range of ports")
		}
		if n.AddrMax.IsValid() && n.AddrMax != n.Addr {
			return unknownVerdict(r, "a "+e.Name+" to a range of addresses")
		}
		port := w.p.DstPort
		if n.Port != 0 {
			port = n.Port
		}
		if e.Name == "REDIRECT" {
			var rg regs
			if n.Port != 0 {
				rg.store(1, []byte{byte(n.Port >> 8), byte(n.Port)})
				return w.redirect(r, &rg, 1)
			}
			return w.redirect(r, &rg, 0)
		}
		to := w.p.Dst
		if n.Addr.IsValid() {
			to = n.Addr
		}
		return w.dnat(r, to, port, "dnat")
	}
	return unknownVerdict(r, fmt.Sprintf("iptables target %s, which this package does not model", e.Name))
}
