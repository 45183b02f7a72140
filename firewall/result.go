package firewall

import (
	"net/netip"
)

// Packet is the first packet of a connection (a TCP SYN) or the first
// datagram, as it arrives: conntrack state new.
type Packet struct {
	Proto            uint8 // 6 TCP, 17 UDP
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	// InIface is the interface it arrives on; "lo" (or empty with a
	// loopback source) for a client on this machine, whose packet first
	// walks the output path.
	InIface string
}

// Verdict is what the ruleset does to a packet.
type Verdict string

const (
	// Accept: the packet passes every hook on its way to the socket (or,
	// after a DNAT elsewhere, out of the forward path).
	Accept Verdict = "accept"
	Drop   Verdict = "drop"
	Reject Verdict = "reject"
	// Unknown: the outcome depends on something the ruleset alone does
	// not settle (Result.DependsOn says what).
	Unknown Verdict = "unknown"
)

// Result is the evaluation of one packet.
type Result struct {
	Verdict Verdict `json:"verdict"`
	// Decider is the step that settled the verdict: the dropping or
	// rejecting rule, a drop policy, or for accept the last rule on the
	// way that accepted (a DNAT or redirect included, a source NAT not),
	// else the last accept policy. Nil for unknown.
	Decider *Step `json:"decider,omitempty"`
	// Steps are the rules that matched on the way, in the order the kernel
	// would meet them, and the policies applied.
	Steps []Step `json:"steps"`
	// DependsOn names, for an unknown verdict, what it depends on: an
	// expression not modelled, a rate limit, a quota, a legacy table that
	// could not be read.
	DependsOn []string `json:"depends_on,omitempty"`
	// NAT is set when a DNAT or redirect changed the destination.
	NAT *NAT `json:"nat,omitempty"`
	// Path is "input" when the packet is delivered to this machine,
	// "forward" when it is routed on (to a container, say), "none" when
	// no route leads anywhere.
	Path string `json:"path"`
	// To is the destination after NAT.
	To netip.AddrPort `json:"to"`
	// OutIface is the interface a forwarded packet leaves by.
	OutIface string `json:"out_iface,omitempty"`
}

// NAT is a destination rewrite the packet met.
type NAT struct {
	From netip.AddrPort `json:"from"`
	To   netip.AddrPort `json:"to"`
	Step Step           `json:"step"`
}

// Step is one rule that matched, or a chain's policy applied.
type Step struct {
	Family Family `json:"-"`
	Table  string `json:"table"`
	Chain  string `json:"chain"`
	Hook   string `json:"hook,omitempty"` // the base chain's hook the walk is in
	Source Source `json:"source"`
	// Rule is nil for a policy.
	Rule *Rule `json:"-"`
	// Handle is the rule's nftables handle (zero for a legacy rule, which
	// has Position).
	Handle   uint64 `json:"handle,omitempty"`
	Position int    `json:"position,omitempty"`
	Comment  string `json:"comment,omitempty"`
	Owner    Owner  `json:"owner"`
	// Action is what the rule did: "accept", "drop", "reject", "jump X",
	// "goto X", "return", "dnat to ADDR:PORT", "policy drop", "continue"
	// (a rule that matched without a verdict: counter, log, mark).
	Action string `json:"action"`
	// Text is the rule as its source spells it, where known.
	Text string `json:"text,omitempty"`
}

// FamilyName is the table family as nft(8) spells it.
func FamilyName(f Family) string {
	switch f {
	case FamilyINet:
		return "inet"
	case FamilyIPv4:
		return "ip"
	case FamilyIPv6:
		return "ip6"
	case FamilyARP:
		return "arp"
	case FamilyNetdev:
		return "netdev"
	case FamilyBridge:
		return "bridge"
	}
	return "unspec"
}
