package firewall

import (
	"cmp"
	"fmt"
	"golang.org/x/sys/unix"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables/expr"
)

// The hooks of the inet path, as nftables numbers them.
const (
	hookPrerouting  = HookNum(0)
	hookInput       = HookNum(1)
	hookForward     = HookNum(2)
	hookOutput      = HookNum(3)
	hookPostrouting = HookNum(4)
	hookIngress     = HookNum(5) // inet ingress; netdev's is 0
)

// The priorities at which the kernel runs every nat chain of a hook, as
// one group: nf_nat registers a single hook per family and point (at
// NF_IP_PRI_NAT_DST for destination NAT, NF_IP_PRI_NAT_SRC for source
// NAT) and walks the nat chains inside it in their own priority order.
const (
	natDstPriority = -100
	natSrcPriority = 100
)

// maxRuns bounds how many ways through the ruleset one evaluation tries
// when it meets matches it cannot settle.
const maxRuns = 64

// evaluate also returns the range of source addresses, around p.Src, for
// which every comparison on the way answers alike: the whole range gets
// the same result.
func evaluate(rs *Ruleset, h *Host, p Packet) (Result, scope) {
	if h == nil {
		h = &Host{}
	}
	lo, hi := familyBounds(p.Src)
	var conds []memberCond
	var choices []bool
	var first *walk
	var results []*walk
	for run := 0; ; run++ {
		w := newWalk(rs, h, p, choices)
		w.run()
		if w.lo.Compare(lo) > 0 {
			lo = w.lo
		}
		if w.hi.Compare(hi) < 0 {
			hi = w.hi
		}
		conds = append(conds, w.conds...)
		if first == nil {
			first = w
		}
		results = append(results, w)
		// The next way: flip the last choice taken "no" to "yes", and
		// drop the choices after it.
		choices = w.choices
		i := len(choices) - 1
		for i >= 0 && choices[i] {
			i--
		}
		if i < 0 {
			break
		}
		if run+1 >= maxRuns {
			first.depends = append(first.depends, fmt.Sprintf("more than %d ways through the ruleset", maxRuns))
			return first.result(Unknown), scope{lo, hi, conds}
		}
		choices = append(slices.Clone(choices[:i]), true)
	}
	v := first.verdict
	for _, w := range results[1:] {
		if w.verdict != v {
			v = Unknown
			break
		}
	}
	if v == Unknown {
		var deps []string
		for _, w := range results {
			deps = append(deps, w.depends...)
		}
		first.depends = uniq(deps)
	} else {
		first.depends = nil
	}
	return first.result(v), scope{lo, hi, conds}
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// walk is one way of one packet through the hooks.
type walk struct {
	rs *Ruleset
	h  *Host
	p  Packet // the packet as it stands: its destination changes with NAT
	pb packetBytes
	v6 bool

	choices []bool
	pos     int

	iif, oif  string
	hook      HookNum
	mark      uint32
	markKnown uint32
	ctmark    uint32
	ctStatus  uint32 // conntrack status bits as far as known
	origDst   netip.AddrPort
	natDone   bool // a nat rule ran in this hook's nat group
	local     bool // the packet was sent by this machine (loopback client)

	steps   []Step
	depends []string
	nat     *NAT
	verdict Verdict
	path    string

	lo, hi netip.Addr // the source range the comparisons so far hold for

	prio      int32 // the priority of the base chain being walked
	untracked bool  // a notrack before conntrack took the packet out of it
	ctSeen    int8  // whether conntrack has seen the packet at prio -200: 0 not asked, 1 yes, 2 no

	rg    regs                // the registers of the rule being evaluated
	added map[*Set]*addedKeys // keys the packet added to sets on its way
	conds []memberCond        // source addresses in or out of sets, beside [lo, hi]

	pending []string  // the current rule's unsettled matches
	saved   walkState // the walk as it was before the first of them
}

func newWalk(rs *Ruleset, h *Host, p Packet, choices []bool) *walk {
	w := &walk{rs: rs, h: h, p: p, v6: p.Src.Is6() && !p.Src.Is4In6(), choices: choices}
	w.lo, w.hi = familyBounds(p.Src)
	w.origDst = netip.AddrPortFrom(p.Dst, p.DstPort)
	w.markKnown = 0xffffffff
	w.iif = p.InIface
	w.local = p.InIface == "lo" || (p.InIface == "" && p.Src.IsLoopback())
	if w.local {
		w.iif = "lo"
	}
	w.rebuild()
	return w
}

func (w *walk) rebuild() { w.pb = buildPacket(w.p, w.p.Dst, w.p.DstPort) }

// choose is a decision the ruleset alone does not settle: the first time
// through it answers no, and Evaluate tries yes on a later run.
func (w *walk) choose(why string) bool {
	w.depends = append(w.depends, why)
	if w.pos < len(w.choices) {
		c := w.choices[w.pos]
		w.pos++
		return c
	}
	w.choices = append(w.choices, false)
	w.pos++
	return false
}

func (w *walk) result(v Verdict) Result {
	r := Result{Verdict: v, Steps: w.steps, DependsOn: w.depends, NAT: w.nat, Path: w.path,
		To: netip.AddrPortFrom(w.p.Dst, w.p.DstPort), OutIface: w.oif}
	if r.Steps == nil {
		r.Steps = []Step{}
	}
	if v == Unknown {
		return r
	}
	r.Decider = w.decider(v)
	return r
}

// decider is the step that settled v: for a drop or reject the last step
// (the rule or policy that dropped); for accept the last accepting rule,
// else the last policy, else nothing (no chain on the way).
func (w *walk) decider(v Verdict) *Step {
	if len(w.steps) == 0 {
		return nil
	}
	if v != Accept {
		for i := len(w.steps) - 1; i >= 0; i-- {
			a := w.steps[i].Action
			if a == "drop" || a == "reject" || a == "policy drop" {
				s := w.steps[i]
				return &s
			}
		}
		return nil
	}
	for i := len(w.steps) - 1; i >= 0; i-- {
		if w.steps[i].Action == "accept" || strings.HasPrefix(w.steps[i].Action, "dnat") || strings.HasPrefix(w.steps[i].Action, "redirect") {
			s := w.steps[i]
			return &s
		}
	}
	for i := len(w.steps) - 1; i >= 0; i-- {
		if w.steps[i].Action == "policy accept" {
			s := w.steps[i]
			return &s
		}
	}
	return nil
}

// outcome of one base chain, or of a hook.
type outcome int8

const (
	passed outcome = iota
	dropped
	rejected
	undecided // the walk cannot go on: a verdict this package cannot know
)

// ends says whether a base chain's outcome ends the packet's walk, and
// with which verdict: a drop, a reject, or one that cannot be known.
func (o outcome) ends() (Verdict, bool) {
	switch o {
	case dropped:
		return Drop, true
	case rejected:
		return Reject, true
	case undecided:
		return Unknown, true
	}
	return "", false
}

// run walks the packet through every hook on its way in.
func (w *walk) run() {
	if len(w.rs.Incomplete) > 0 {
		w.depends = append(w.depends, w.rs.Incomplete...)
		w.verdict = Unknown
		return
	}
	w.verdict = w.travel()
}

func (w *walk) travel() Verdict {
	if w.local {
		// A client on this machine: its packet leaves through output and
		// postrouting, then comes back in over lo through prerouting and
		// input. Conntrack settles its NAT on the way out, so the nat
		// chains of the way in are not walked.
		w.oif = "lo"
		if v, done := w.hookWalk(hookOutput, true); done {
			return v
		}
		w.ctStatus |= ctConfirmed
		if !w.isLocal(w.p.Dst) {
			w.path = "output"
			// Sent elsewhere after an output DNAT: this package follows
			// only what stays on the machine.
			w.depends = append(w.depends, "a DNAT in output sends it to "+w.p.Dst.String())
			return Unknown
		}
		if v, done := w.hookWalk(hookPostrouting, true); done {
			return v
		}
		w.oif = ""
		if v, done := w.hookWalk(hookPrerouting, false); done {
			return v
		}
		w.path = "input"
		if v, done := w.hookWalk(hookInput, false); done {
			return v
		}
		return Accept
	}
	if v, done := w.ingress(); done {
		return v
	}
	if v, done := w.hookWalk(hookPrerouting, true); done {
		return v
	}
	// The route decision.
	if w.isLocal(w.p.Dst) {
		if w.rpDrops() {
			w.path = "input"
			w.steps = append(w.steps, Step{Hook: "routing", Action: "drop", Comment: "rp_filter: the reply to " + w.p.Src.String() + " would not leave by " + w.iif})
			return Drop
		}
		w.path = "input"
		if v, done := w.hookWalk(hookInput, true); done {
			return v
		}
		return Accept
	}
	rt, ok := w.route(w.p.Dst)
	if !ok || rt.Type != "unicast" {
		w.path = "none"
		w.steps = append(w.steps, Step{Hook: "routing", Action: "drop", Comment: "no route to " + w.p.Dst.String()})
		return Drop
	}
	fwd, name := w.h.Forward4, "net.ipv4.ip_forward"
	if w.v6 {
		fwd, name = w.h.Forward6, "net.ipv6.conf.all.forwarding"
	}
	if !fwd {
		w.path = "forward"
		w.steps = append(w.steps, Step{Hook: "routing", Action: "drop", Comment: name + " is 0: this machine does not forward"})
		return Drop
	}
	if w.rpDrops() {
		w.path = "forward"
		w.steps = append(w.steps, Step{Hook: "routing", Action: "drop", Comment: "rp_filter: the reply to " + w.p.Src.String() + " would not leave by " + w.iif})
		return Drop
	}
	w.path = "forward"
	w.oif = rt.Iface
	if v, done := w.hookWalk(hookForward, true); done {
		return v
	}
	if v, done := w.hookWalk(hookPostrouting, true); done {
		return v
	}
	return Accept
}

// ingress walks the netdev ingress chains bound to the input device, and
// inet ingress chains.
func (w *walk) ingress() (Verdict, bool) {
	var chains []*Chain
	for _, t := range w.rs.Tables {
		if t.Dormant {
			continue
		}
		for _, c := range t.Chains {
			if c.Hook == nil || !slices.Contains(c.Hook.Devices, w.iif) {
				continue
			}
			if t.Family == FamilyNetdev && c.Hook.Num == 0 ||
				t.Family == FamilyINet && c.Hook.Num == hookIngress {
				chains = append(chains, c)
			}
		}
	}
	slices.Reverse(chains) // the later made runs first among equals, as in hookWalk
	slices.SortStableFunc(chains, func(a, b *Chain) int { return cmp.Compare(a.Hook.Priority, b.Hook.Priority) })
	w.hook = hookIngress
	for _, c := range chains {
		if v, ended := w.chain(c, "ingress").ends(); ended {
			return v, true
		}
	}
	return "", false
}

// applies says whether a table of family f sees this packet.
func (w *walk) applies(f Family) bool {
	switch f {
	case FamilyINet:
		return true
	case FamilyIPv4:
		return !w.v6
	case FamilyIPv6:
		return w.v6
	}
	return false
}

// hookEntry is one thing on a hook: a base chain, or the nat group.
type hookEntry struct {
	prio  int32
	chain *Chain
	nat   []*Chain
	seq   int // the order it was registered in
}

func hookName(h HookNum) string {
	return [...]string{"prerouting", "input", "forward", "output", "postrouting", "ingress"}[h]
}

// hookWalk walks the base chains of one hook; done is true when the
// packet's fate is settled there (dropped, rejected or unknown).
func (w *walk) hookWalk(hook HookNum, withNAT bool) (Verdict, bool) {
	w.hook = hook
	var entries []hookEntry
	var nat []*Chain
	// seq is each base chain's place in the order the chains were made;
	// nf_nat's hooks are registered, for all points of a family at once,
	// when its first nat chain (of any hook) is made.
	seq, natSeq := 0, -1
	for _, t := range w.rs.Tables {
		if t.Dormant || !w.applies(t.Family) {
			continue
		}
		for _, c := range t.Chains {
			if c.Hook == nil {
				continue
			}
			seq++
			if c.Hook.Type == ChainTypeNAT && natSeq < 0 {
				natSeq = seq
			}
			if c.Hook.Num != hook {
				continue
			}
			if c.Hook.Type == ChainTypeNAT {
				nat = append(nat, c)
				continue
			}
			entries = append(entries, hookEntry{prio: c.Hook.Priority, chain: c, seq: seq})
		}
	}
	// Conntrack runs in a namespace only once a rule needs it; without it
	// nf_nat sees no connection and walks no nat chain.
	if withNAT && len(nat) > 0 && w.tracked() {
		// Inside nf_nat's hook too, of equal priorities the chain made
		// later runs first.
		slices.Reverse(nat)
		slices.SortStableFunc(nat, func(a, b *Chain) int { return cmp.Compare(a.Hook.Priority, b.Hook.Priority) })
		prio := int32(natSrcPriority)
		if hook == hookPrerouting || hook == hookOutput {
			prio = natDstPriority
		}
		entries = append(entries, hookEntry{prio: prio, nat: nat, seq: natSeq})
	}
	// The kernel puts a newly registered hook before those of the same
	// priority: of two base chains with equal priorities, the one made
	// later runs first. Between a legacy table and nftables that order is
	// not known, and both are tried.
	slices.SortStableFunc(entries, func(a, b hookEntry) int {
		if c := cmp.Compare(a.prio, b.prio); c != 0 {
			return c
		}
		return cmp.Compare(b.seq, a.seq)
	})
	for i := 0; i+1 < len(entries); i++ {
		a, b := entries[i], entries[i+1]
		if a.prio == b.prio && a.chain != nil && b.chain != nil && a.chain.Table.Source != b.chain.Table.Source &&
			w.choose(fmt.Sprintf("the order of base chains %s and %s, both at priority %d", chainName(a.chain), chainName(b.chain), a.prio)) {
			entries[i], entries[i+1] = b, a
		}
	}
	name := hookName(hook)
	for _, e := range entries {
		chains := e.nat
		if e.chain != nil {
			chains = []*Chain{e.chain}
		}
		w.natDone = false
		for _, c := range chains {
			if v, ended := w.chain(c, name).ends(); ended {
				return v, true
			}
			if e.nat != nil && w.natDone {
				break // the connection's NAT is set up: later nat chains are skipped
			}
		}
	}
	return "", false
}

// tracked says whether conntrack follows the packet at all: something in
// the ruleset needs it for the packet's family, and no notrack took the
// packet out.
func (w *walk) tracked() bool {
	c4, c6 := w.rs.conntrack()
	on := c4
	if w.v6 {
		on = c6
	}
	return on && !w.untracked
}

// hasCt says whether the packet has a conntrack entry where the walk is:
// conntrack attaches it at priority -200 of prerouting and output (a
// packet coming back over lo brings its own). Before that, ct state says
// invalid and other ct keys match nothing.
func (w *walk) hasCt() bool {
	if !w.tracked() {
		return false
	}
	switch {
	case w.hook == hookIngress || w.hook == hookPrerouting && w.prio < -200 && !w.local || w.hook == hookOutput && w.prio < -200:
		return false
	case (w.hook == hookPrerouting && !w.local || w.hook == hookOutput) && w.prio == -200:
		// Same priority as conntrack: the order the hooks were
		// registered in decides.
		if w.ctSeen == 0 {
			w.ctSeen = 2
			if w.choose("whether conntrack has seen the packet at priority -200") {
				w.ctSeen = 1
			}
		}
		return w.ctSeen == 1
	}
	return true
}

// The conntrack status bits this package knows for a first packet.
const (
	ctConfirmed = 1 << 3
	ctSrcNAT    = 1 << 4
	ctDstNAT    = 1 << 5
)

type frame struct {
	c *Chain
	i int
}

// maxDepth is nf_tables' jump stack depth.
const maxDepth = 16

// chain walks one base chain with its jumps and gotos.
func (w *walk) chain(base *Chain, hook string) outcome {
	w.prio = base.Hook.Priority
	if base.Hook.Type == ChainTypeNAT {
		w.prio = 0 // nat chains run inside nf_nat's hook, after conntrack
	}
	var stack []frame
	c, i := base, 0
	for {
		if i >= len(c.Rules) {
			if len(stack) > 0 {
				f := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				c, i = f.c, f.i
				continue
			}
			return w.policy(base, hook)
		}
		r := c.Rules[i]
		i++
		v := w.rule(r)
		if v.kind == vNoMatch {
			continue
		}
		w.steps = append(w.steps, w.step(r, hook, v.action()))
		switch v.kind {
		case vContinue:
		case vAccept:
			return passed
		case vDrop:
			return dropped
		case vReject:
			return rejected
		case vUnknown:
			w.depends = append(w.depends, v.why)
			return undecided
		case vJump, vGoto:
			next := chainNamed(c.Table, v.chain)
			if next == nil {
				w.depends = append(w.depends, "a jump to chain "+v.chain+" that was not read")
				return undecided
			}
			if v.kind == vJump {
				if len(stack) >= maxDepth {
					w.depends = append(w.depends, "jumps nested deeper than the kernel allows")
					return undecided
				}
				stack = append(stack, frame{c, i})
			}
			c, i = next, 0
		case vReturn:
			if len(stack) == 0 {
				return w.policy(base, hook)
			}
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			c, i = f.c, f.i
		}
	}
}

func (w *walk) policy(c *Chain, hook string) outcome {
	s, out := w.step(nil, hook, "policy accept").in(c), passed
	if c.Hook.Policy == PolicyDrop {
		s.Action, out = "policy drop", dropped
	}
	s.Owner = ChainOwner(c)
	w.steps = append(w.steps, s)
	return out
}

func chainName(c *Chain) string {
	return FamilyName(c.Table.Family) + " " + c.Table.Name + " " + c.Name
}

func chainNamed(t *Table, name string) *Chain {
	for _, c := range t.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (w *walk) step(r *Rule, hook, action string) Step {
	s := Step{Hook: hook, Action: action}
	if r != nil {
		s = s.in(r.Chain)
		s.Rule, s.Handle, s.Position, s.Comment, s.Owner, s.Text = r, r.Handle, r.Position, r.Comment, r.Owner, r.Text
	}
	return s
}

func (s Step) in(c *Chain) Step {
	s.Chain = c.Name
	if c.Table != nil {
		s.Family, s.Table, s.Source = c.Table.Family, c.Table.Name, c.Table.Source
	}
	return s
}

func (w *walk) route(dst netip.Addr) (Route, bool) { return w.h.route(dst) }

func (w *walk) isLocal(dst netip.Addr) bool { return w.h.isLocal(dst) }

// rpDrops says whether IPv4 reverse-path filtering drops the packet.
func (w *walk) rpDrops() bool {
	if w.v6 || w.iif == "" || w.iif == "lo" {
		return false
	}
	mode := w.h.RPFilter[w.iif]
	if mode == 0 {
		return false
	}
	r, ok := w.route(w.p.Src)
	if !ok || r.Type != "unicast" && r.Type != "local" {
		return true
	}
	return mode == 1 && r.Iface != w.iif
}

func familyBounds(a netip.Addr) (netip.Addr, netip.Addr) {
	if a.Is4() {
		return netip.IPv4Unspecified(), netip.AddrFrom4([4]byte{255, 255, 255, 255})
	}
	var ff [16]byte
	for i := range ff {
		ff[i] = 0xff
	}
	return netip.IPv6Unspecified(), netip.AddrFrom16(ff)
}

// verdictKind is what a rule did.
type verdictKind int8

const (
	vNoMatch  verdictKind = iota // a match failed: on to the next rule
	vContinue                    // matched without a verdict (counter, log, mark)
	vAccept
	vDrop
	vReject
	vJump
	vGoto
	vReturn
	vUnknown // a verdict this package cannot know (queue, an unknown target)
)

type ruleVerdict struct {
	kind  verdictKind
	chain string
	why   string
	nat   string // "dnat to …" for a rule whose verdict came from NAT
}

func (v ruleVerdict) action() string {
	if v.nat != "" {
		return v.nat
	}
	switch v.kind {
	case vContinue:
		return "continue"
	case vAccept:
		return "accept"
	case vDrop:
		return "drop"
	case vReject:
		return "reject"
	case vJump:
		return "jump " + v.chain
	case vGoto:
		return "goto " + v.chain
	case vReturn:
		return "return"
	case vUnknown:
		return "unknown: " + v.why
	}
	return "no match"
}

// ruleName names a rule for DependsOn.
func ruleName(r *Rule) string {
	t := r.Chain.Table
	if t.Source == Legacy {
		return fmt.Sprintf("%s %s rule %d of %s (iptables-legacy)", FamilyName(t.Family), t.Name, r.Position, r.Chain.Name)
	}
	return fmt.Sprintf("%s %s %s handle %d", FamilyName(t.Family), t.Name, r.Chain.Name, r.Handle)
}

var _ = expr.VerdictAccept

// conntrack says, for IPv4 and IPv6, whether something in the ruleset
// makes the kernel track connections in this namespace: it turns
// conntrack on for a family when a rule of that family (or of inet) first
// needs it — a ct match or statement, NAT, a conntrack or state match, an
// iptables NAT or CT target.
func (rs *Ruleset) conntrack() (v4, v6 bool) {
	rs.ctOnce.Do(func() {
		for _, t := range rs.Tables {
			need := false
			for _, c := range t.Chains {
				for _, r := range c.Rules {
					for _, x := range r.Exprs {
						if needsConntrack(x) {
							need = true
						}
					}
				}
			}
			if !need {
				continue
			}
			switch t.Family {
			case FamilyIPv4:
				rs.ct4 = true
			case FamilyIPv6:
				rs.ct6 = true
			case FamilyINet:
				rs.ct4, rs.ct6 = true, true
			}
		}
	})
	return rs.ct4, rs.ct6
}

func needsConntrack(x any) bool {
	switch e := x.(type) {
	case *expr.Ct, *expr.NAT, *expr.Masq, *expr.Redir, *expr.Connlimit, *expr.CtHelper, *expr.CtTimeout, *expr.CtExpect, *expr.FlowOffload:
		return true
	case *expr.Objref:
		return e.Type == unix.NFT_OBJECT_CT_HELPER || e.Type == unix.NFT_OBJECT_CT_TIMEOUT || e.Type == unix.NFT_OBJECT_CT_EXPECT
	case *Xt:
		switch e.Name {
		case "conntrack", "state", "connmark", "connbytes", "connlabel", "connlimit", "helper", "cluster",
			"DNAT", "SNAT", "MASQUERADE", "REDIRECT", "NETMAP", "CT", "CONNMARK", "NOTRACK":
			return true
		}
	}
	return false
}
