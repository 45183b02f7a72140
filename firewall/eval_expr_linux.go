package firewall

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// rule evaluates one rule's expressions in order, as nft_do_chain does:
// a failed match ends the rule, a verdict ends it too.
func (w *walk) rule(r *Rule) ruleVerdict {
	r.quickOnce.Do(func() { r.quick = quickOf(r.Exprs) })
	if q := &r.quick; q.nfproto != 0 || q.l4proto != 0 || q.hasDport {
		nf := uint8(unix.NFPROTO_IPV4)
		if w.v6 {
			nf = unix.NFPROTO_IPV6
		}
		if q.nfproto != 0 && q.nfproto != nf || q.l4proto != 0 && q.l4proto != w.p.Proto ||
			q.hasDport && (w.p.DstPort < q.dportLo || w.p.DstPort > q.dportHi) {
			return ruleVerdict{kind: vNoMatch}
		}
	}
	// One register file per walk, cleared for each rule: a rule's own
	// would escape to the heap, an allocation per rule visited.
	rg := &w.rg
	*rg = regs{}
	w.pending = w.pending[:0]
	v := ruleVerdict{kind: vContinue}
	for _, x := range r.Exprs {
		if xv, stop := w.expr(r, rg, x); stop {
			v = xv
			break
		}
	}
	if len(w.pending) == 0 {
		return v
	}
	why := strings.Join(w.pending, ", ") + " (" + ruleName(r) + ")"
	if v.kind == vNoMatch {
		// A settled match failed after the unsettled ones: the rule fails
		// either way, but what it did in between (a mark set) happened
		// only if they held.
		if w.changed() && w.choose(why) {
			return v
		}
		w.restore()
		return v
	}
	// The rule holds only if its unsettled matches do: ask once, for all
	// of them, now that no settled match has failed.
	if !w.choose(why) {
		w.restore()
		return ruleVerdict{kind: vNoMatch}
	}
	return v
}

func (w *walk) changed() bool {
	s := w.saved
	return w.p != s.p || w.mark != s.mark || w.markKnown != s.markKnown || w.ctmark != s.ctmark || w.ctStatus != s.ctStatus || w.nat != s.nat || w.natDone != s.natDone
}

// quickOf reads what a rule's leading matches (meta nfproto, meta
// l4proto, th dport, as nft compiles them: a load, then an equality or a
// range) require. It stops at the first expression of any other kind, so
// that nothing with an effect comes before what it reads.
func quickOf(exprs []any) quickFilter {
	var q quickFilter
	what := map[uint32]string{}
	for _, x := range exprs {
		switch e := x.(type) {
		case *expr.Meta:
			if e.SourceRegister {
				return q
			}
			switch e.Key {
			case expr.MetaKeyNFPROTO:
				what[e.Register] = "nfproto"
			case expr.MetaKeyL4PROTO:
				what[e.Register] = "l4proto"
			default:
				delete(what, e.Register)
			}
		case *expr.Payload:
			if e.OperationType != expr.PayloadLoad {
				return q
			}
			if e.Base == expr.PayloadBaseTransportHeader && e.Offset == 2 && e.Len == 2 {
				what[e.DestRegister] = "dport"
			} else {
				delete(what, e.DestRegister)
			}
		case *expr.Cmp:
			if e.Op != expr.CmpOpEq {
				return q
			}
			switch what[e.Register] {
			case "nfproto":
				if len(e.Data) == 1 {
					q.nfproto = e.Data[0]
				}
			case "l4proto":
				if len(e.Data) == 1 {
					q.l4proto = e.Data[0]
				}
			case "dport":
				if len(e.Data) == 2 && !q.hasDport {
					p := binary.BigEndian.Uint16(e.Data)
					q.dportLo, q.dportHi, q.hasDport = p, p, true
				}
			default:
				return q
			}
		case *expr.Range:
			if e.Op != expr.CmpOpEq || what[e.Register] != "dport" || len(e.FromData) != 2 || len(e.ToData) != 2 || q.hasDport {
				return q
			}
			q.dportLo, q.dportHi, q.hasDport = binary.BigEndian.Uint16(e.FromData), binary.BigEndian.Uint16(e.ToData), true
		default:
			return q
		}
	}
	return q
}

// matched turns a three-valued match into the rule's fate: stop with
// vNoMatch when it fails, go on when it holds; when it is unsettled, go
// on as if it held, and let rule decide once the rest is known.
func (w *walk) matched(r *Rule, t tri, what string) (ruleVerdict, bool) {
	if t == maybe {
		if len(w.pending) == 0 {
			w.save()
		}
		w.pending = append(w.pending, what)
		return ruleVerdict{}, false
	}
	if t == no {
		return ruleVerdict{kind: vNoMatch}, true
	}
	return ruleVerdict{}, false
}

// walkState is what a rule can change of the walk before it turns out not
// to hold.
type walkState struct {
	p                       Packet
	pb                      packetBytes
	mark, markKnown, ctmark uint32
	ctStatus                uint32
	nat                     *NAT
	natDone                 bool
	lo, hi                  netip.Addr
}

func (w *walk) save() {
	w.saved = walkState{w.p, w.pb, w.mark, w.markKnown, w.ctmark, w.ctStatus, w.nat, w.natDone, w.lo, w.hi}
}

func (w *walk) restore() {
	s := w.saved
	// The source range keeps its narrowing: the comparisons were made.
	w.p, w.pb, w.mark, w.markKnown, w.ctmark, w.ctStatus, w.nat, w.natDone = s.p, s.pb, s.mark, s.markKnown, s.ctmark, s.ctStatus, s.nat, s.natDone
}

func unknownVerdict(r *Rule, what string) (ruleVerdict, bool) {
	return ruleVerdict{kind: vUnknown, why: what + " (" + ruleName(r) + ")"}, true
}

// expr evaluates one expression; stop is true when the rule ends with v.
func (w *walk) expr(r *Rule, rg *regs, x any) (v ruleVerdict, stop bool) {
	switch e := x.(type) {
	case *expr.Verdict:
		return ruleVerdictOf(e.Kind, e.Chain), true
	case *expr.Immediate:
		if e.Register == 0 {
			return unknownVerdict(r, "an immediate verdict in data form")
		}
		if !rg.store(e.Register, e.Data) {
			return unknownVerdict(r, "an immediate to a bad register")
		}
	case *expr.Cmp:
		lo, _, ok := span(e.Register, uint32(len(e.Data)))
		if !ok {
			return unknownVerdict(r, "a comparison of a bad register")
		}
		w.narrowPoint(rg, lo, e.Data)
		return w.matched(r, cmpTri(rg, lo, e.Op, e.Data), "a comparison of a value the first packet does not fix")
	case *expr.Range:
		lo, _, ok := span(e.Register, uint32(len(e.FromData)))
		if !ok || len(e.FromData) != len(e.ToData) {
			return unknownVerdict(r, "a range of a bad register")
		}
		w.narrowRange(rg, lo, e.FromData, e.ToData)
		a, b := rg.compare(lo, e.FromData), rg.compare(lo, e.ToData)
		var in tri
		switch {
		case a == 2 || b == 2:
			in = maybe
		default:
			in = triOf(a >= 0 && b <= 0)
		}
		if e.Op == expr.CmpOpNeq {
			in = in.not()
		}
		return w.matched(r, in, "a range of a value the first packet does not fix")
	case *expr.Bitwise:
		lo, hi, ok := span(e.SourceRegister, e.Len)
		dlo, _, ok2 := span(e.DestRegister, e.Len)
		if !ok || !ok2 || len(e.Mask) < int(e.Len) || len(e.Xor) < int(e.Len) {
			return unknownVerdict(r, "a bitwise operation this package does not model")
		}
		var d, k, s, sm [64]byte
		for i := lo; i < hi; i++ {
			j := i - lo
			m, xo := e.Mask[j], e.Xor[j]
			d[j] = rg.data[i]&m ^ xo
			k[j] = rg.known[i] | ^m // bits masked away are known zeros
			s[j], sm[j] = rg.src[i], rg.srcMask[i]&m
			if rg.src[i] != 0 && xo != 0 {
				w.pin()
				s[j] = 0
			}
		}
		for j := 0; j < int(e.Len); j++ {
			rg.data[dlo+j], rg.known[dlo+j], rg.src[dlo+j], rg.srcMask[dlo+j] = d[j], k[j], s[j], sm[j]
		}
	case *expr.Byteorder:
		lo, hi, ok := span(e.SourceRegister, e.Len)
		dlo, _, ok2 := span(e.DestRegister, e.Len)
		if !ok || !ok2 || e.Size == 0 || e.Len%e.Size != 0 {
			return unknownVerdict(r, "a byte-order conversion this package does not model")
		}
		var d, k [64]byte
		n := int(e.Size)
		for i := lo; i < hi; i += n {
			for j := 0; j < n; j++ {
				// Registers hold host order: on the little-endian machines
				// this runs on, either conversion reverses each element.
				d[i-lo+j], k[i-lo+j] = rg.data[i+n-1-j], rg.known[i+n-1-j]
				if rg.src[i+j] != 0 {
					w.pin()
				}
			}
		}
		for j := 0; j < int(e.Len); j++ {
			rg.data[dlo+j], rg.known[dlo+j], rg.src[dlo+j], rg.srcMask[dlo+j] = d[j], k[j], 0, 0xff
		}
	case *expr.Payload:
		if e.OperationType != expr.PayloadLoad {
			return w.payloadWrite(r, e)
		}
		if !w.payload(rg, e) {
			return unknownVerdict(r, "a payload load into a bad register")
		}
	case *expr.Meta:
		return w.meta(r, rg, e)
	case *expr.Ct:
		return w.ct(r, rg, e)
	case *expr.Lookup:
		return w.lookup(r, rg, e)
	case *expr.Fib:
		return w.fib(r, rg, e)
	case *expr.Notrack:
		if !w.hasCt() {
			w.untracked = true
		}
	case *expr.Counter, *expr.Log, *expr.FlowOffload, *expr.CtHelper, *expr.CtTimeout, *expr.CtExpect, *expr.SecMark:
		// No say in the verdict.
	case *expr.Objref:
		switch e.Type {
		case unix.NFT_OBJECT_COUNTER, unix.NFT_OBJECT_CT_HELPER, unix.NFT_OBJECT_CT_TIMEOUT, unix.NFT_OBJECT_CT_EXPECT, unix.NFT_OBJECT_SECMARK:
		case unix.NFT_OBJECT_QUOTA:
			return w.matched(r, maybe, "quota "+e.Name)
		case unix.NFT_OBJECT_LIMIT:
			return w.matched(r, maybe, "limit "+e.Name)
		default:
			return unknownVerdict(r, fmt.Sprintf("a stateful object %q of type %d", e.Name, e.Type))
		}
	case *expr.Limit:
		return w.matched(r, maybe, "a rate limit")
	case *expr.Quota:
		return w.matched(r, maybe, "a quota")
	case *expr.Connlimit:
		return w.matched(r, maybe, "a connection-count limit")
	case *expr.Dynset:
		// Adding or updating the packet's key in a set: later lookups in
		// the same walk find it; a meter's limit decides; a plain add
		// does not match or fail.
		if e.Operation != 2 { // NFT_DYNSET_OP_ADD, _UPDATE
			w.addToSet(r, rg, e)
		}
		if len(e.Exprs) > 0 {
			return w.matched(r, maybe, "a per-key meter on set "+e.SetName)
		}
		if e.Operation == 2 { // NFT_DYNSET_OP_DELETE
			return w.matched(r, maybe, "a delete from set "+e.SetName)
		}
	case *expr.Reject:
		return ruleVerdict{kind: vReject}, true
	case *expr.NAT:
		return w.natExpr(r, rg, e)
	case *expr.Redir:
		return w.redirect(r, rg, e.RegisterProtoMin)
	case *expr.Masq:
		if w.hook != hookPostrouting {
			return unknownVerdict(r, "masquerade outside postrouting")
		}
		w.natDone = true
		return ruleVerdict{kind: vAccept, nat: "masquerade"}, true
	case *expr.Queue:
		return unknownVerdict(r, "a queue to a userspace program, which decides")
	case *Xt:
		return w.xt(r, rg, e)
	case *Opaque:
		return w.matched(r, maybe, "expression "+e.Name+", which this package does not model")
	case *expr.Numgen:
		// A choice among one (kube-proxy's with a single endpoint) is
		// no choice.
		if e.Modulus == 1 {
			if !rg.store(e.Register, u32(e.Offset)) {
				return unknownVerdict(r, "numgen into a bad register")
			}
			return ruleVerdict{}, false
		}
		rg.unknown(e.Register, 4)
	case *expr.Hash:
		if e.Modulus == 1 {
			if !rg.store(e.DestRegister, u32(e.Offset)) {
				return unknownVerdict(r, "hash into a bad register")
			}
			return ruleVerdict{}, false
		}
		rg.unknown(e.DestRegister, 4)
	default:
		// Exthdr, rt, socket, tproxy, synproxy, dup, fwd …:
		// values and side effects this package does not model.
		if reg, ok := destRegister(x); ok {
			rg.unknown(reg, 16)
			return ruleVerdict{}, false
		}
		return w.matched(r, maybe, fmt.Sprintf("expression %T, which this package does not model", x))
	}
	return ruleVerdict{}, false
}

// destRegister is the register an expression that only loads a value
// writes, for the loads this package cannot know the value of.
func destRegister(x any) (uint32, bool) {
	switch e := x.(type) {
	case *expr.Exthdr:
		if e.SourceRegister == 0 {
			return e.DestRegister, true
		}
	case *expr.Rt:
		return e.Register, true
	}
	return 0, false
}

func ruleVerdictOf(k expr.VerdictKind, chain string) ruleVerdict {
	switch k {
	case expr.VerdictAccept:
		return ruleVerdict{kind: vAccept}
	case expr.VerdictDrop:
		return ruleVerdict{kind: vDrop}
	case expr.VerdictJump:
		return ruleVerdict{kind: vJump, chain: chain}
	case expr.VerdictGoto:
		return ruleVerdict{kind: vGoto, chain: chain}
	case expr.VerdictReturn:
		return ruleVerdict{kind: vReturn}
	case expr.VerdictContinue:
		return ruleVerdict{kind: vContinue}
	case expr.VerdictBreak:
		return ruleVerdict{kind: vNoMatch}
	}
	return ruleVerdict{kind: vUnknown, why: fmt.Sprintf("verdict %d (queue or stolen), which a userspace program or another subsystem decides", k)}
}

func cmpTri(rg *regs, lo int, op expr.CmpOp, c []byte) tri {
	if op == expr.CmpOpEq || op == expr.CmpOpNeq {
		t := rg.equalKnown(lo, c)
		if op == expr.CmpOpNeq {
			t = t.not()
		}
		return t
	}
	d := rg.compare(lo, c)
	if d == 2 {
		return maybe
	}
	switch op {
	case expr.CmpOpLt:
		return triOf(d < 0)
	case expr.CmpOpLte:
		return triOf(d <= 0)
	case expr.CmpOpGt:
		return triOf(d > 0)
	case expr.CmpOpGte:
		return triOf(d >= 0)
	}
	return maybe
}

// payload loads header bytes into a register.
func (w *walk) payload(rg *regs, e *expr.Payload) bool {
	var src, known []byte
	srcOff := -1
	switch e.Base {
	case expr.PayloadBaseLLHeader:
		src, known = w.pb.ll, w.pb.llKnown
	case expr.PayloadBaseNetworkHeader:
		src, known, srcOff = w.pb.net, w.pb.netKnown, w.pb.srcOff
	case expr.PayloadBaseTransportHeader:
		src, known = w.pb.th, w.pb.thKnown
	}
	lo, hi, ok := span(e.DestRegister, e.Len)
	if !ok {
		return false
	}
	alen := 4
	if w.v6 {
		alen = 16
	}
	for i := lo; i < hi; i++ {
		rg.data[i], rg.known[i], rg.src[i], rg.srcMask[i] = 0, 0, 0, 0xff
	}
	// Stores are padded to 4 bytes with known zeros.
	padded := (int(e.Len) + 3) &^ 3
	if lo+padded <= 64 {
		for i := lo + int(e.Len); i < lo+padded; i++ {
			rg.data[i], rg.known[i], rg.src[i], rg.srcMask[i] = 0, 0xff, 0, 0xff
		}
	}
	for j := 0; j < int(e.Len); j++ {
		off := int(e.Offset) + j
		if off >= len(src) {
			continue // beyond the headers this package lays out: unknown
		}
		rg.data[lo+j], rg.known[lo+j] = src[off], known[off]
		if srcOff >= 0 && off >= srcOff && off < srcOff+alen {
			rg.src[lo+j] = byte(off - srcOff + 1)
		}
	}
	return true
}

// payloadWrite is a rule that rewrites header bytes: harmless unless it
// rewrites what later rules look at.
func (w *walk) payloadWrite(r *Rule, e *expr.Payload) (ruleVerdict, bool) {
	if e.Base == expr.PayloadBaseNetworkHeader && (w.v6 && e.Offset < 7 || !w.v6 && (e.Offset == 1 || e.Offset == 8 && e.Len == 1)) {
		return ruleVerdict{}, false // DSCP, ECN, TTL, hop limit, traffic class
	}
	return unknownVerdict(r, "a rule that rewrites the packet's headers")
}

func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func (w *walk) iface(name string) (Interface, bool) {
	for _, i := range w.h.Interfaces {
		if i.Name == name {
			return i, true
		}
	}
	return Interface{}, false
}

func u32(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}

func u16(v uint16) []byte {
	b := make([]byte, 2)
	binary.NativeEndian.PutUint16(b, v)
	return b
}

// meta loads (or sets) packet metadata.
func (w *walk) meta(r *Rule, rg *regs, e *expr.Meta) (ruleVerdict, bool) {
	if e.SourceRegister {
		switch e.Key {
		case expr.MetaKeyMARK:
			lo, _, ok := span(e.Register, 4)
			if !ok {
				return unknownVerdict(r, "a mark set from a bad register")
			}
			w.mark = binary.NativeEndian.Uint32(rg.data[lo:])
			w.markKnown = binary.NativeEndian.Uint32(rg.known[lo:])
		case expr.MetaKeyNFTRACE, expr.MetaKeyPRIORITY, expr.MetaKeySECMARK, expr.MetaKeyPKTTYPE:
		default:
			return unknownVerdict(r, fmt.Sprintf("meta %d set, which this package does not model", e.Key))
		}
		return ruleVerdict{}, false
	}
	reg := e.Register
	store := func(b []byte) (ruleVerdict, bool) {
		if !rg.store(reg, b) {
			return unknownVerdict(r, "meta into a bad register")
		}
		return ruleVerdict{}, false
	}
	in := w.iif
	if w.local && (w.hook == hookOutput || w.hook == hookPostrouting) {
		in = "" // a packet this machine sends has no input device yet
	}
	out := ""
	if w.hook == hookForward || w.hook == hookPostrouting || w.hook == hookOutput {
		out = w.oif
	}
	switch e.Key {
	case expr.MetaKeyPROTOCOL:
		b := make([]byte, 2)
		binary.BigEndian.PutUint16(b, 0x0800)
		if w.v6 {
			binary.BigEndian.PutUint16(b, 0x86dd)
		}
		return store(b)
	case expr.MetaKeyNFPROTO:
		if w.v6 {
			return store([]byte{unix.NFPROTO_IPV6})
		}
		return store([]byte{unix.NFPROTO_IPV4})
	case expr.MetaKeyL4PROTO:
		return store([]byte{w.p.Proto})
	case expr.MetaKeyMARK:
		if !rg.storeKnown(reg, u32(w.mark), u32(w.markKnown)) {
			return unknownVerdict(r, "meta into a bad register")
		}
		return ruleVerdict{}, false
	case expr.MetaKeyIIFNAME:
		return store(ifname(in))
	case expr.MetaKeyOIFNAME:
		return store(ifname(out))
	case expr.MetaKeyIIF, expr.MetaKeyOIF, expr.MetaKeyIIFTYPE, expr.MetaKeyOIFTYPE, expr.MetaKeyIIFGROUP, expr.MetaKeyOIFGROUP:
		name := in
		if e.Key == expr.MetaKeyOIF || e.Key == expr.MetaKeyOIFTYPE || e.Key == expr.MetaKeyOIFGROUP {
			name = out
		}
		if name == "" && (e.Key == expr.MetaKeyIIF || e.Key == expr.MetaKeyOIF) {
			return store(u32(0)) // no device: index 0
		}
		i, ok := w.iface(name)
		if !ok {
			rg.unknown(reg, 4)
			return ruleVerdict{}, false
		}
		switch e.Key {
		case expr.MetaKeyIIFTYPE, expr.MetaKeyOIFTYPE:
			return store(u16(i.Type))
		case expr.MetaKeyIIFGROUP, expr.MetaKeyOIFGROUP:
			return store(u32(i.Group))
		}
		return store(u32(uint32(i.Index)))
	case expr.MetaKeyPKTTYPE:
		return store([]byte{unix.PACKET_HOST})
	case expr.MetaKeySKUID, expr.MetaKeySKGID:
		if !w.local || w.hook != hookOutput && w.hook != hookPostrouting {
			// No socket is attached to a new inbound connection's packet:
			// the match fails.
			return ruleVerdict{kind: vNoMatch}, true
		}
		rg.unknown(reg, 4)
	case 33: // NFT_META_SDIF
		return store(u32(0))
	case 34: // NFT_META_SDIFNAME
		return store(ifname(""))
	default:
		// len, priority, cpu, random, time, cgroup, secmark, kinds …
		rg.unknown(reg, 16)
	}
	return ruleVerdict{}, false
}

// ct loads what conntrack knows of the connection: a new one, in its
// original direction.
func (w *walk) ct(r *Rule, rg *regs, e *expr.Ct) (ruleVerdict, bool) {
	if e.SourceRegister {
		if !w.hasCt() {
			return ruleVerdict{}, false // nothing to set it on
		}
		switch e.Key {
		case expr.CtKeyMARK:
			lo, _, ok := span(e.Register, 4)
			if !ok {
				return unknownVerdict(r, "a ct mark set from a bad register")
			}
			w.ctmark = binary.NativeEndian.Uint32(rg.data[lo:])
		case expr.CtKeyZONE, expr.CtKeyEVENTMASK, expr.CtKeyHELPER, expr.CtKeySECMARK, expr.CtKeyLABELS:
		default:
			return unknownVerdict(r, fmt.Sprintf("ct %d set, which this package does not model", e.Key))
		}
		return ruleVerdict{}, false
	}
	reg := e.Register
	store := func(b []byte, known []byte) (ruleVerdict, bool) {
		if !rg.storeKnown(reg, b, known) {
			return unknownVerdict(r, "ct into a bad register")
		}
		return ruleVerdict{}, false
	}
	if !w.hasCt() {
		if e.Key != expr.CtKeySTATE {
			return ruleVerdict{kind: vNoMatch}, true
		}
		if w.untracked {
			return store(u32(64), nil) // NF_CT_STATE_UNTRACKED_BIT
		}
		return store(u32(1), nil) // NF_CT_STATE_INVALID_BIT
	}
	orig := e.Direction == 0
	switch e.Key {
	case expr.CtKeySTATE:
		return store(u32(8), nil) // NF_CT_STATE_BIT(IP_CT_NEW)
	case expr.CtKeyDIRECTION:
		return store([]byte{0}, nil)
	case expr.CtKeySTATUS:
		// The bits a first packet settles; the *_DONE bits and the
		// helpers' are left unknown.
		known := uint32(1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<4 | 1<<5)
		return store(u32(w.ctStatus), u32(known))
	case expr.CtKeyMARK:
		return store(u32(w.ctmark), nil)
	case expr.CtKeyL3PROTOCOL:
		if w.v6 {
			return store([]byte{unix.NFPROTO_IPV6}, nil)
		}
		return store([]byte{unix.NFPROTO_IPV4}, nil)
	case expr.CtKeyPROTOCOL:
		return store([]byte{w.p.Proto}, nil)
	case expr.CtKeySRC, expr.CtKeyDST, unix.NFT_CT_SRC_IP, unix.NFT_CT_DST_IP, unix.NFT_CT_SRC_IP6, unix.NFT_CT_DST_IP6:
		src := e.Key == expr.CtKeySRC || e.Key == unix.NFT_CT_SRC_IP || e.Key == unix.NFT_CT_SRC_IP6
		if !orig {
			rg.unknown(reg, 16)
			return ruleVerdict{}, false
		}
		a := w.origDst.Addr()
		if src {
			a = w.p.Src
			w.pin()
		}
		return store(a.AsSlice(), nil)
	case expr.CtKeyPROTOSRC, expr.CtKeyPROTODST:
		if !orig {
			rg.unknown(reg, 4)
			return ruleVerdict{}, false
		}
		b := make([]byte, 2)
		if e.Key == expr.CtKeyPROTODST {
			binary.BigEndian.PutUint16(b, w.origDst.Port())
			return store(b, nil)
		}
		if w.p.SrcPort == 0 {
			rg.unknown(reg, 4)
			return ruleVerdict{}, false
		}
		binary.BigEndian.PutUint16(b, w.p.SrcPort)
		return store(b, nil)
	case expr.CtKeyZONE:
		return store(u16(0), nil)
	}
	rg.unknown(reg, 16)
	return ruleVerdict{}, false
}

// fib answers routing questions as nft_fib does, from the host's routes.
func (w *walk) fib(r *Rule, rg *regs, e *expr.Fib) (ruleVerdict, bool) {
	if w.h.PolicyRouting || e.FlagMARK && w.mark != 0 {
		if e.ResultADDRTYPE && e.FlagDADDR && !e.FlagIIF && !e.FlagOIF {
			// Local addresses live in the local table, which comes first
			// whatever the policy rules say.
		} else {
			rg.unknown(e.Register, 4)
			return ruleVerdict{}, false
		}
	}
	addr := w.p.Dst
	if e.FlagSADDR {
		addr = w.p.Src
		w.narrowByRoutes()
	}
	// Prerouting packets over lo and from this machine are not looked up:
	// the kernel answers with the input device.
	skip := w.iif == "lo" && (w.hook == hookPrerouting || w.hook == hookInput)
	var oif string
	var typ uint32
	rt, found := w.route(addr)
	if found {
		oif = rt.Iface
		typ = rtnType(rt.Type)
	} else {
		typ = unix.RTN_UNREACHABLE
	}
	if w.isLocal(addr) {
		typ = unix.RTN_LOCAL
	}
	if addr.IsMulticast() {
		typ = unix.RTN_MULTICAST
	}
	if e.ResultADDRTYPE {
		if e.FlagIIF || e.FlagOIF {
			if typ != unix.RTN_LOCAL || skip {
				if !rg.store(e.Register, u32(typ)) {
					return unknownVerdict(r, "fib into a bad register")
				}
				return ruleVerdict{}, false
			}
			rg.unknown(e.Register, 4)
			return ruleVerdict{}, false
		}
		if !rg.store(e.Register, u32(typ)) {
			return unknownVerdict(r, "fib into a bad register")
		}
		return ruleVerdict{}, false
	}
	// The output interface of the route (oif, oifname, present).
	if skip {
		oif = w.iif
	} else {
		if typ == unix.RTN_LOCAL && e.FlagDADDR {
			// The kernel answers a local address with the device that holds it.
			oif = ""
			for _, i := range w.h.Interfaces {
				for _, a := range i.Addrs {
					if a.Addr() == addr {
						oif = i.Name
					}
				}
			}
			if addr.IsLoopback() {
				oif = "lo"
			}
		}
		if !found || rt.Type != "unicast" && rt.Type != "local" {
			oif = ""
		}
		if e.FlagIIF && oif != w.iif {
			oif = ""
		}
	}
	var b []byte
	switch {
	case e.FlagPRESENT:
		b = []byte{0}
		if oif != "" {
			b[0] = 1
		}
	case e.ResultOIFNAME:
		b = ifname(oif)
	default:
		idx := uint32(0)
		if oif != "" {
			i, ok := w.iface(oif)
			if !ok {
				rg.unknown(e.Register, 4)
				return ruleVerdict{}, false
			}
			idx = uint32(i.Index)
		}
		b = u32(idx)
	}
	if !rg.store(e.Register, b) {
		return unknownVerdict(r, "fib into a bad register")
	}
	return ruleVerdict{}, false
}

func rtnType(t string) uint32 {
	switch t {
	case "local":
		return unix.RTN_LOCAL
	case "broadcast":
		return unix.RTN_BROADCAST
	case "blackhole":
		return unix.RTN_BLACKHOLE
	case "unreachable":
		return unix.RTN_UNREACHABLE
	case "prohibit":
		return unix.RTN_PROHIBIT
	case "multicast":
		return unix.RTN_MULTICAST
	}
	return unix.RTN_UNICAST
}

// natExpr is a dnat (or snat) statement.
func (w *walk) natExpr(r *Rule, rg *regs, e *expr.NAT) (ruleVerdict, bool) {
	if e.Type == expr.NATTypeSourceNAT {
		w.natDone = true
		return ruleVerdict{kind: vAccept, nat: "snat"}, true
	}
	if w.hook != hookPrerouting && w.hook != hookOutput {
		return unknownVerdict(r, "a dnat outside prerouting and output")
	}
	to := w.p.Dst
	port := w.p.DstPort
	if e.RegAddrMin != 0 {
		n := uint32(4)
		if e.Family == unix.NFPROTO_IPV6 {
			n = 16
		}
		lo, _, ok := span(e.RegAddrMin, n)
		if !ok {
			return unknownVerdict(r, "a dnat from a bad register")
		}
		if rg.equalKnown(lo, rg.data[lo:lo+int(n)]) != yes {
			return unknownVerdict(r, "a dnat to an address the packet does not fix")
		}
		a, _ := netip.AddrFromSlice(rg.data[lo : lo+int(n)])
		if e.RegAddrMax != 0 && e.RegAddrMax != e.RegAddrMin {
			mlo, _, _ := span(e.RegAddrMax, n)
			if !bytes.Equal(rg.data[lo:lo+int(n)], rg.data[mlo:mlo+int(n)]) {
				return unknownVerdict(r, "a dnat to a range of addresses")
			}
		}
		if e.Prefix {
			return unknownVerdict(r, "a dnat to a prefix")
		}
		to = a
	}
	if e.RegProtoMin != 0 {
		p, ok := w.portFrom(rg, e.RegProtoMin, e.RegProtoMax)
		if !ok {
			return unknownVerdict(r, "a dnat to a range of ports")
		}
		port = p
	}
	return w.dnat(r, to, port, "dnat")
}

func (w *walk) portFrom(rg *regs, minReg, maxReg uint32) (uint16, bool) {
	lo, _, ok := span(minReg, 2)
	if !ok || rg.known[lo] != 0xff || rg.known[lo+1] != 0xff {
		return 0, false
	}
	p := binary.BigEndian.Uint16(rg.data[lo:])
	if maxReg != 0 && maxReg != minReg {
		hlo, _, ok := span(maxReg, 2)
		if !ok || binary.BigEndian.Uint16(rg.data[hlo:]) != p {
			return 0, false
		}
	}
	return p, true
}

// redirect sends the packet to this machine: to the primary address of the
// input device (127.0.0.1 or ::1 for a local client), on the given port.
func (w *walk) redirect(r *Rule, rg *regs, protoReg uint32) (ruleVerdict, bool) {
	port := w.p.DstPort
	if protoReg != 0 {
		p, ok := w.portFrom(rg, protoReg, 0)
		if !ok {
			return unknownVerdict(r, "a redirect to a range of ports")
		}
		port = p
	}
	var to netip.Addr
	if w.local {
		to = netip.MustParseAddr("127.0.0.1")
		if w.v6 {
			to = netip.IPv6Loopback()
		}
	} else if i, ok := w.iface(w.iif); ok {
		for _, a := range i.Addrs {
			if a.Addr().Is4() == !w.v6 && (!w.v6 || !a.Addr().IsLinkLocalUnicast()) {
				to = a.Addr()
				break
			}
		}
	}
	if !to.IsValid() {
		// The kernel drops what it cannot redirect.
		return ruleVerdict{kind: vDrop}, true
	}
	return w.dnat(r, to, port, "redirect")
}

func (w *walk) dnat(r *Rule, to netip.Addr, port uint16, kind string) (ruleVerdict, bool) {
	from := netip.AddrPortFrom(w.p.Dst, w.p.DstPort)
	dst := netip.AddrPortFrom(to, port)
	w.p.Dst, w.p.DstPort = to, port
	w.rebuild()
	w.natDone = true
	action := kind + " to " + dst.String()
	w.nat = &NAT{From: from, To: dst, Step: w.step(r, hookName(w.hook), action)}
	w.ctStatus |= ctDstNAT
	return ruleVerdict{kind: vAccept, nat: action}, true
}

// pin narrows the source range to the packet's own source address: the
// answer turned on it in a way this package does not follow.
func (w *walk) pin() { w.lo, w.hi = w.p.Src, w.p.Src }

var _ = FamilyINet
