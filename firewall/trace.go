package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// TraceFilter selects the packets Trace marks for the kernel's nftables
// trace. The zero value selects every IPv4 and IPv6 packet, which is
// rarely what is wanted: set at least DstPort.
type TraceFilter struct {
	// Proto is 6 (TCP) or 17 (UDP); zero traces both.
	Proto uint8
	// DstPort is the destination port the packet has when it arrives,
	// before any DNAT; zero for any port.
	DstPort uint16
	// Src, when valid, keeps only packets from this prefix.
	Src netip.Prefix
	// SYN keeps, for TCP, only the packets that open a connection (SYN
	// set, ACK clear): one traced packet per connection attempt, not one
	// per segment. UDP packets are all traced.
	SYN bool
}

// TraceEvent is one event of the kernel's nftables trace: what one traced
// packet met in one chain (what `nft monitor trace` prints as a line).
// The kernel sends the packet's headers with the first event of each base
// chain it walks; the other events carry only the packet's ID.
type TraceEvent struct {
	// ID groups the events of one packet. The kernel derives it from the
	// packet's buffer, so a later packet may reuse it (TraceDecisions
	// copes with that).
	ID     uint32 `json:"id"`
	Family Family `json:"-"`
	Table  string `json:"table"`
	Chain  string `json:"chain"`
	// Handle is the rule's handle; zero for a policy and for the implicit
	// return at the end of a regular chain.
	Handle uint64 `json:"handle,omitempty"`
	// Type is "rule" (a rule matched and gave Verdict: "continue" for a
	// rule without one, "return" for a return rule), "return" (the walk
	// reached the end of a chain: of a regular chain, it goes back to the
	// calling one; of a base chain, a "policy" event follows) or "policy"
	// (the end of a base chain: Verdict is its policy).
	Type string `json:"type"`
	// Verdict is "accept", "drop", "continue", "return", "jump CHAIN",
	// "goto CHAIN", "queue", "stolen", "repeat", "break".
	Verdict string `json:"verdict"`
	// Packet is set when the event carried the packet's headers; the
	// fields below it are then filled as far as they could be decoded.
	Packet           bool       `json:"packet,omitempty"`
	NFProto          uint8      `json:"-"` // NFPROTO_IPV4 2, NFPROTO_IPV6 10
	Proto            uint8      `json:"proto,omitempty"`
	Src              netip.Addr `json:"src,omitzero"`
	Dst              netip.Addr `json:"dst,omitzero"`
	SrcPort          uint16     `json:"sport,omitempty"`
	DstPort          uint16     `json:"dport,omitempty"`
	TCPFlags         uint8      `json:"tcp_flags,omitempty"`
	IIFIndex         int        `json:"-"`
	OIFIndex         int        `json:"-"`
	IIF              string     `json:"iif,omitempty"` // the name, as Trace resolves it
	OIF              string     `json:"oif,omitempty"`
	Mark             uint32     `json:"mark,omitempty"`
	HaveSrc, HaveDst bool       `json:"-"`
}

// String is the event as one line, close to nft monitor trace's.
func (e TraceEvent) String() string {
	s := fmt.Sprintf("trace id %08x %s %s %s", e.ID, FamilyName(e.Family), e.Table, e.Chain)
	if e.Packet {
		s += fmt.Sprintf(" packet: iif %q oif %q proto %d %s", e.IIF, e.OIF, e.Proto,
			netip.AddrPortFrom(e.Src, e.SrcPort).String()+" > "+netip.AddrPortFrom(e.Dst, e.DstPort).String())
	}
	switch {
	case e.Type == "policy":
		s += " policy " + e.Verdict
	case e.Handle != 0:
		s += " handle " + strconv.FormatUint(e.Handle, 10) + " (verdict " + e.Verdict + ")"
	default:
		s += " " + e.Type + " (verdict " + e.Verdict + ")"
	}
	return s
}

// Action is what the event did in the words of Step.Action, so that a
// trace and an evaluation compare directly: "policy drop", "accept",
// "jump X", "return" (a return rule, or the end of a regular chain),
// "continue". The kernel cannot tell a reject from a drop: both are
// "drop" here.
func (e TraceEvent) Action() string {
	switch e.Type {
	case "policy":
		return "policy " + e.Verdict
	case "return":
		return "return"
	}
	return e.Verdict
}

// The attributes of an NFT_MSG_TRACE message and the values they take,
// from the kernel's include/uapi/linux/netfilter/nf_tables.h and
// netfilter.h.
const (
	nftaTraceTable         = 1
	nftaTraceChain         = 2
	nftaTraceRuleHandle    = 3
	nftaTraceType          = 4
	nftaTraceVerdict       = 5
	nftaTraceID            = 6
	nftaTraceNetworkHeader = 8
	nftaTraceTransportHdr  = 9
	nftaTraceIIF           = 10
	nftaTraceOIF           = 12
	nftaTraceMark          = 14
	nftaTraceNFProto       = 15
	nftaTracePolicy        = 16
	nftaVerdictCode        = 1
	nftaVerdictChain       = 2
	nftTraceTypePolicy     = 1
	nftTraceTypeReturn     = 2
	nftTraceTypeRule       = 3
	traceNFProtoIPv4       = 2
	traceNFProtoIPv6       = 10
	traceNLATypeMask       = 0x3fff // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
	traceVerdictMask       = 0xff
	traceHdrLen            = 4

	traceTCPSYN, traceTCPACK = 0x02, 0x10
	l4TCP, l4UDP             = 6, 17
	l4SCTP, l4DCCP           = 132, 33
)

// errTraceShort is DecodeTrace's error for a message cut short.
var errTraceShort = errors.New("trace message: truncated")

// DecodeTrace decodes the payload of one NFT_MSG_TRACE netlink message
// (what follows the netlink header: the nfgenmsg header and the
// NFTA_TRACE_* attributes). Interface names are left empty: they are
// the namespace's to resolve.
func DecodeTrace(b []byte) (TraceEvent, error) {
	var e TraceEvent
	if len(b) < traceHdrLen {
		return e, errTraceShort
	}
	e.Family = Family(b[0])
	var typ uint32
	var haveType, haveVerdict bool
	var policy uint32
	var havePolicy bool
	var nh, th []byte
	err := traceAttrs(b[traceHdrLen:], func(t uint16, v []byte) error {
		switch t {
		case nftaTraceTable:
			e.Table = traceString(v)
		case nftaTraceChain:
			e.Chain = traceString(v)
		case nftaTraceRuleHandle:
			if len(v) != 8 {
				return fmt.Errorf("trace message: rule handle of %d bytes", len(v))
			}
			e.Handle = binary.BigEndian.Uint64(v)
		case nftaTraceType:
			if len(v) != 4 {
				return fmt.Errorf("trace message: type of %d bytes", len(v))
			}
			typ, haveType = binary.BigEndian.Uint32(v), true
		case nftaTraceVerdict:
			verdict, err := decodeTraceVerdict(v)
			if err != nil {
				return err
			}
			e.Verdict, haveVerdict = verdict, true
		case nftaTraceID:
			if len(v) != 4 {
				return fmt.Errorf("trace message: id of %d bytes", len(v))
			}
			e.ID = binary.BigEndian.Uint32(v)
		case nftaTraceNetworkHeader:
			nh, e.Packet = v, true
		case nftaTraceTransportHdr:
			th, e.Packet = v, true
		case nftaTraceIIF:
			if len(v) == 4 {
				e.IIFIndex = int(binary.BigEndian.Uint32(v))
			}
		case nftaTraceOIF:
			if len(v) == 4 {
				e.OIFIndex = int(binary.BigEndian.Uint32(v))
			}
		case nftaTraceMark:
			if len(v) == 4 {
				e.Mark = binary.BigEndian.Uint32(v)
			}
		case nftaTraceNFProto:
			if len(v) == 4 {
				e.NFProto = uint8(binary.BigEndian.Uint32(v))
			}
		case nftaTracePolicy:
			if len(v) != 4 {
				return fmt.Errorf("trace message: policy of %d bytes", len(v))
			}
			policy, havePolicy = binary.BigEndian.Uint32(v), true
		}
		return nil
	})
	if err != nil {
		return e, err
	}
	if !haveType {
		return e, errors.New("trace message: no type")
	}
	switch typ {
	case nftTraceTypeRule:
		e.Type = "rule"
		if e.Handle == 0 && e.Verdict == "continue" {
			// The walk reached the end of a chain without a verdict: the
			// kernel types this as a rule event (its verdict mask hides
			// NFT_CONTINUE from the check for a return) with no rule.
			e.Type = "return"
		}
	case nftTraceTypeReturn:
		e.Type = "return"
	case nftTraceTypePolicy:
		e.Type = "policy"
		if havePolicy {
			e.Verdict = traceVerdictName(int32(policy))
			haveVerdict = true
		}
	default:
		return e, fmt.Errorf("trace message: type %d", typ)
	}
	if !haveVerdict {
		return e, fmt.Errorf("trace message: %s event without a verdict", e.Type)
	}
	decodeTracePacket(&e, nh, th)
	return e, nil
}

// decodeTracePacket fills the addresses and ports from the headers the kernel
// copied: the network header (its first 40 bytes at most) and the
// transport header (its first 20 at most).
func decodeTracePacket(e *TraceEvent, nh, th []byte) {
	switch {
	case len(nh) >= 20 && nh[0]>>4 == 4:
		e.Proto = nh[9]
		e.Src, e.HaveSrc = netip.AddrFrom4([4]byte(nh[12:16])), true
		e.Dst, e.HaveDst = netip.AddrFrom4([4]byte(nh[16:20])), true
	case len(nh) >= 40 && nh[0]>>4 == 6:
		// The next header may be an extension header: the kernel's
		// transport header is then what follows them, and its protocol is
		// not known from here. TCP and UDP behind extension headers are
		// rare enough to leave the protocol unknown.
		e.Proto = nh[6]
		e.Src, e.HaveSrc = netip.AddrFrom16([16]byte(nh[8:24])), true
		e.Dst, e.HaveDst = netip.AddrFrom16([16]byte(nh[24:40])), true
	}
	switch e.Proto {
	case l4TCP, l4UDP, l4SCTP, l4DCCP, 136: // 136 UDP-Lite
		if len(th) >= 4 {
			e.SrcPort = binary.BigEndian.Uint16(th[0:2])
			e.DstPort = binary.BigEndian.Uint16(th[2:4])
		}
		if e.Proto == l4TCP && len(th) >= 14 {
			e.TCPFlags = th[13]
		}
	}
}

// decodeTraceVerdict decodes a nested NFTA_VERDICT_* attribute.
func decodeTraceVerdict(b []byte) (string, error) {
	var code int32
	var haveCode bool
	var chain string
	err := traceAttrs(b, func(t uint16, v []byte) error {
		switch t {
		case nftaVerdictCode:
			if len(v) != 4 {
				return fmt.Errorf("trace message: verdict code of %d bytes", len(v))
			}
			code, haveCode = int32(binary.BigEndian.Uint32(v)), true
		case nftaVerdictChain:
			chain = traceString(v)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if !haveCode {
		return "", errors.New("trace message: verdict without a code")
	}
	v := traceVerdictName(code)
	if chain != "" && (v == "jump" || v == "goto") {
		v += " " + chain
	}
	return v, nil
}

// traceVerdictName names a verdict code as nft(8) does. NF_DROP and NF_QUEUE
// carry an errno or a queue number in their upper bits.
func traceVerdictName(code int32) string {
	switch code {
	case -1:
		return "continue"
	case -2:
		return "break"
	case -3:
		return "jump"
	case -4:
		return "goto"
	case -5:
		return "return"
	}
	switch uint32(code) & traceVerdictMask {
	case 0:
		return "drop"
	case 1:
		return "accept"
	case 2:
		return "stolen"
	case 3:
		return "queue"
	case 4:
		return "repeat"
	}
	return "verdict " + strconv.Itoa(int(code))
}

// traceAttrs calls fn for each netlink attribute of b, with the type
// stripped of its flags, and fails on an attribute that does not fit.
func traceAttrs(b []byte, fn func(t uint16, v []byte) error) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return errTraceShort
		}
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		t := binary.NativeEndian.Uint16(b[2:4]) & traceNLATypeMask
		if l < 4 || l > len(b) {
			return fmt.Errorf("trace message: attribute %d of length %d in %d bytes", t, l, len(b))
		}
		if err := fn(t, b[4:l]); err != nil {
			return err
		}
		l = (l + 3) &^ 3
		if l > len(b) {
			l = len(b)
		}
		b = b[l:]
	}
	return nil
}

// traceString is a NUL-terminated netlink string without its NUL.
func traceString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// TraceDecision is what the trace shows the kernel decided for one
// packet.
type TraceDecision struct {
	ID uint32 `json:"id"`
	// Verdict is Accept, Drop, or Unknown when the trace ends in neither
	// (a queue to user space, a stolen packet, or events missing).
	Verdict Verdict `json:"verdict"`
	// Decider is the event that settled it: the first drop (a rule's or
	// a policy's; reject shows as drop), else the last accept, which is
	// the accepting rule or policy of the last base chain the packet
	// walked. Nil when no event carried a verdict of either kind.
	Decider *TraceEvent `json:"decider,omitempty"`
	// Events are the packet's events in the order the kernel sent them.
	Events []TraceEvent `json:"events"`
}

// TraceDecisions groups events by packet and says, per packet, which
// event decided: a drop ends the walk at once, while an accept ends only
// its base chain, so the packet goes on to the next base chain of the
// hook and to the next hook, and the last accept seen is the one that let
// it through. The kernel's trace IDs come from the packet's buffer and a
// later packet can reuse one: a new group starts for an ID after its
// group ended in a drop, and when an event's headers name another
// connection (protocol, addresses, ports) than the group's. Groups are
// returned in the order their first events came.
func TraceDecisions(events []TraceEvent) []TraceDecision {
	var out []TraceDecision
	decider := []int{}       // per group, the index of its deciding event, or -1
	open := map[uint32]int{} // ID -> index in out of its open group
	for _, e := range events {
		i, ok := open[e.ID]
		if ok && e.Packet && out[i].Events[0].Packet && !traceSameFlow(out[i].Events[0], e) {
			ok = false
		}
		if !ok {
			out = append(out, TraceDecision{ID: e.ID, Verdict: Unknown})
			decider = append(decider, -1)
			i = len(out) - 1
			open[e.ID] = i
		}
		d := &out[i]
		d.Events = append(d.Events, e)
		switch e.Verdict {
		case "drop":
			d.Verdict, decider[i] = Drop, len(d.Events)-1
			delete(open, e.ID)
		case "accept":
			d.Verdict, decider[i] = Accept, len(d.Events)-1
		case "queue", "stolen":
			// Neither passes nor drops for certain here: a queued packet's
			// fate is user space's, a stolen one's the stealing module's.
			d.Verdict, decider[i] = Unknown, len(d.Events)-1
			delete(open, e.ID)
		}
	}
	for i := range out {
		if decider[i] >= 0 {
			out[i].Decider = &out[i].Events[decider[i]]
		}
	}
	return out
}

// traceSameFlow says whether two events with headers are of the same
// connection.
func traceSameFlow(a, b TraceEvent) bool {
	return a.Proto == b.Proto && a.Src == b.Src && a.Dst == b.Dst &&
		a.SrcPort == b.SrcPort && a.DstPort == b.DstPort
}

// ErrTraceOverrun is returned by Stop when the kernel dropped trace
// events because they came faster than they were read: the events
// returned miss some.
var ErrTraceOverrun = errors.New("trace: the kernel dropped events (socket buffer full)")
