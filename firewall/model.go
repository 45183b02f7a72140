// Package firewall reads the kernel's packet-filter ruleset (nftables, the
// iptables-nft rules inside it, and legacy iptables tables) into one model,
// and evaluates, without sending anything, what that ruleset does to a
// packet on its way to a listening socket: which rule decides, which rules
// matched on the way, who wrote them, and where the answer is not certain,
// what it depends on.
//
// Reading (Read, ParseIptablesSave) is apart from evaluating (Evaluate):
// the model can be built by hand, from a file or from another machine.
package firewall

import (
	"net/netip"
	"sync"
	"time"
)

// Family is a table's family, numbered as nftables numbers them
// (NFPROTO_*). The model names its own types so that it builds, and can be
// filled and read, on every OS; only reading the kernel is Linux's.
type Family uint8

// The families.
const (
	FamilyUnspec Family = 0
	FamilyINet   Family = 1
	FamilyIPv4   Family = 2
	FamilyARP    Family = 3
	FamilyNetdev Family = 5
	FamilyBridge Family = 7
	FamilyIPv6   Family = 10
)

// HookNum is a base chain's hook, numbered as nftables numbers them: for
// ip, ip6 and inet 0 prerouting, 1 input, 2 forward, 3 output,
// 4 postrouting, 5 ingress; for netdev 0 ingress, 1 egress.
type HookNum uint32

// ChainType is a base chain's type: filter, nat or route.
type ChainType string

// The chain types.
const (
	ChainTypeFilter ChainType = "filter"
	ChainTypeNAT    ChainType = "nat"
	ChainTypeRoute  ChainType = "route"
)

// Policy is what a base chain does with a packet that reaches its end.
type Policy uint32

// The policies, numbered as the kernel numbers them (NF_DROP, NF_ACCEPT).
const (
	PolicyDrop   Policy = 0
	PolicyAccept Policy = 1
)

// ElementVerdict is a verdict map element's verdict: Kind as nftables
// numbers verdicts (NF_ACCEPT 1, NF_DROP 0, NFT_JUMP -3, NFT_GOTO -4,
// NFT_RETURN -5, NFT_CONTINUE -1, NFT_BREAK -2), Chain for jump and goto.
type ElementVerdict struct {
	Kind  int64
	Chain string
}

// Source says which kernel interface a table came from.
type Source string

const (
	// NFTables is a table of nf_tables, which nft(8) and iptables-nft show.
	NFTables Source = "nftables"
	// Legacy is a table of the older x_tables, which only
	// iptables-legacy-save shows and which still filters packets.
	Legacy Source = "iptables-legacy"
)

// Ruleset is every table the kernel of one network namespace evaluates.
type Ruleset struct {
	Tables []*Table
	// Incomplete names the parts that could not be read (a legacy table
	// with no iptables-legacy-save to read it); verdicts depend on them.
	Incomplete []string

	ctOnce   sync.Once
	ct4, ct6 bool // the ruleset turns conntrack on for IPv4, for IPv6
}

// Table is one nftables table, or one legacy table of one family.
type Table struct {
	Family Family
	Name   string
	Source Source
	// Dormant tables are loaded but evaluate nothing.
	Dormant bool
	Chains  []*Chain // in the order the kernel lists them
	Sets    []*Set   // named and anonymous
	// Objects are the named stateful objects rules refer to with objref,
	// by name: counters, quotas, limits.
	Objects map[string]ObjectKind

	setsOnce sync.Once
	setNames map[string]*Set // Sets by name, made on first use
	setIDs   map[uint32]*Set
	filled   map[*Set]bool // sets rules add to as packets pass
}

// ObjectKind is the type of a named stateful object (NFT_OBJECT_*).
type ObjectKind uint32

// Chain is a base chain, hooked into the packet path, or a regular chain,
// reached only by jump and goto.
type Chain struct {
	Table *Table
	Name  string
	Hook  *Hook // nil for a regular chain
	Rules []*Rule
}

// Hook is where and when a base chain runs.
type Hook struct {
	Num      HookNum // prerouting, input, forward, output, postrouting, ingress
	Priority int32
	Type     ChainType // filter, nat, route
	// Policy is what happens to a packet that reaches the chain's end:
	// accept (the default) or drop.
	Policy Policy
	// Devices are the devices a netdev (or inet ingress) chain is bound to.
	Devices []string
}

// Rule is one rule of a chain.
type Rule struct {
	Chain   *Chain
	Handle  uint64
	Comment string
	// Exprs are the rule's expressions in order: pointers to the types of
	// github.com/google/nftables/expr, or *Opaque for one this package
	// cannot decode. Counter values are left out of the comparison.
	Exprs []any
	// Position is the rule's 1-based place in its chain; legacy rules have
	// no handle and are named by it.
	Position int
	// Owner is who wrote the rule (see Owners); empty until attributed.
	Owner Owner
	// Text is the rule as its source spells it, where known (the
	// iptables-save line for a legacy rule).
	Text string

	quickOnce sync.Once
	quick     quickFilter // what the rule's first matches ask of protocol and port
}

// quickFilter is what a rule's leading matches require of the packet's
// family, protocol and destination port, read once, so that a walk can
// pass over a rule for another port without evaluating it.
type quickFilter struct {
	nfproto          uint8 // 0: any
	l4proto          uint8 // 0: any
	dportLo, dportHi uint16
	hasDport         bool
}

// Opaque is an expression the reader could not decode, or a legacy match
// or target the parser does not model. Any verdict that depends on a rule
// holding one is unknown and names it.
type Opaque struct {
	Name string // the expression's kernel name, or the iptables match/target
	Data []byte
}

// Set is a named or anonymous set or map.
type Set struct {
	Table     *Table
	Name      string
	ID        uint32
	Anonymous bool
	Interval  bool
	IsMap     bool
	// Concat is true when the key is a concatenation of fields; each field
	// is padded to a multiple of four bytes, as in the registers.
	Concat  bool
	Dynamic bool // rules may add elements while packets pass
	// KeyType and DataType name the key's and the data's types as nft
	// names them ("ipv4_addr . inet_service"), where known.
	KeyType  string
	DataType string
	KeyLen   uint32 // bytes
	// Fields are the byte lengths of a concatenation's fields, unpadded
	// (NFTA_SET_DESC_CONCAT); empty when the key is one field, or when
	// they can be told from KeyType.
	Fields   []uint32
	Elements []Element

	once sync.Once
	idx  *setIndex
}

// Element is one element of a set, a range of keys in an interval set, or
// a key and its value in a map.
type Element struct {
	Key []byte
	// KeyEnd is the inclusive end of the range for intervals given as
	// [Key, KeyEnd] (concatenations); for classic interval sets, elements
	// with IntervalEnd mark where the previous range ends (exclusive).
	KeyEnd      []byte
	IntervalEnd bool
	Val         []byte
	Verdict     *ElementVerdict
	// Expires is how long the element lives on, zero for ever.
	Expires time.Duration
}

// Owner names who wrote a rule.
type Owner struct {
	// Name is one of "ufw", "firewalld", "docker", "podman",
	// "kube-proxy", "portctl", "hand" (written by hand or by a tool not known here).
	Name string `json:"name"`
	// Detail says more: the ufw rule tuple, the firewalld zone, the
	// Docker chain or container.
	Detail string `json:"detail,omitempty"`
}

// Host is what the evaluator needs to know of the machine outside the
// ruleset: its interfaces and addresses, its routes and sysctls.
type Host struct {
	Interfaces []Interface
	// Routes of the main table; the evaluator picks the longest prefix.
	Routes []Route
	// Forwarding is net.ipv4.ip_forward and net.ipv6.conf.all.forwarding.
	Forward4, Forward6 bool
	// RPFilter is net.ipv4.conf.{all,IF}.rp_filter, the larger of the two
	// per interface name: 0 off, 1 strict, 2 loose.
	RPFilter map[string]int
	// PolicyRouting is true when ip rules beyond the three default ones
	// exist: routes then depend on more than the main table.
	PolicyRouting bool
}

// Interface is one network device.
type Interface struct {
	Index int
	Name  string
	Type  uint16 // ARPHRD_*: 1 ether, 772 loopback
	Group uint32
	Addrs []netip.Prefix
}

// Route is one route of the main table.
type Route struct {
	Dst     netip.Prefix
	Iface   string
	Gateway netip.Addr
	// Type is the route type: "unicast", "local", "broadcast",
	// "blackhole", "unreachable", "prohibit".
	Type string
}

// Xt is an iptables match or target: an xt compat expression of
// iptables-nft, or a -m or -j of a legacy rule, decoded. Rule.Exprs hold
// it in place of expr.Match and expr.Target.
type Xt struct {
	Target bool
	Name   string // as iptables names it: "tcp", "multiport", "DNAT", "REJECT"
	Rev    uint32
	// Info is the decoded payload: one of github.com/google/nftables/xt's
	// types (*xt.Tcp, *xt.Udp, *xt.ConntrackMtinfo1/2/3, *xt.AddrType,
	// *xt.AddrTypeV1, *xt.Comment) or this package's *Multiport,
	// *XtState, *XtMark, *NATTarget; nil when it is not decoded, and
	// then the evaluator treats the match as unknown (Data keeps it).
	Info any
	Data []byte
}

// Multiport is the multiport match: the port is one of Ranges.
type Multiport struct {
	Src, Dst bool // both set: --ports, either side
	Ranges   [][2]uint16
	Invert   bool
}

// XtState is the old state match: a mask of conntrack states
// (XT_STATE_BIT: invalid 1, established 2, related 4, new 8, untracked
// 1<<(IP_CT_NUMBER+1)).
type XtState struct {
	Mask   uint32
	Invert bool
}

// XtMark is the mark match (Target false) or the MARK target: the packet
// mark masked with Mask equals Value; the target sets
// mark = (mark &^ Mask) ^ Value.
type XtMark struct {
	Value, Mask uint32
	Invert      bool
}

// NATTarget is the DNAT, REDIRECT, SNAT or MASQUERADE target.
type NATTarget struct {
	Kind string // DNAT, REDIRECT, SNAT, MASQUERADE
	// Addr is the first address of the range, invalid when only the port
	// changes (and always for REDIRECT and MASQUERADE).
	Addr, AddrMax netip.Addr
	// Port is the first port of the range, zero when the port is kept.
	Port, PortMax uint16
}
