//go:build linux

package firewall

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/internal/testnet"
)

// The differential tests: the kernel is the judge. Each ruleset is loaded
// into a server namespace; for many packets (ports × sources × TCP/UDP ×
// IPv4/IPv6) Evaluate's verdict on the ruleset Read back from the kernel
// must be what really happens to a real connection or datagram, and its
// deciding rule the one the kernel's own trace (nft monitor trace) ends
// on. Unknown is allowed and counted; a wrong answer fails.

// diffProbePorts are the ports probed unless a case names its own: each
// has a listener in the server and in the far namespace.
var diffProbePorts = []uint16{22, 53, 80, 137, 139, 443, 445, 2222, 5432, 6379, 8080, 8081}

const (
	probeTimeout = 250 * time.Millisecond // a drop costs this much
	retryTimeout = 1500 * time.Millisecond
	probeWorkers = 128
)

// diffCase is one ruleset of the corpus.
type diffCase struct {
	name string
	nft  string // loaded with nft -f after a flush; may be empty
	// load loads more (iptables-nft, legacy tables, a tool's rules) after
	// nft.
	load  func(t *testing.T, d *testnet.DiffNet)
	ports []uint16 // diffProbePorts when nil
	// tcpPorts are probed with TCP over IPv4 alone: ports where only such
	// a server listens (a published container's, a pod's behind a
	// NodePort).
	tcpPorts []uint16
	// extraDsts are more destinations, probed from every client source of
	// their family (Far's addresses for the forward path, the server's
	// address on lo).
	extraDsts func(d *testnet.DiffNet) []netip.Addr
	// after undoes what load did to the server beyond its ruleset.
	after func(t *testing.T, d *testnet.DiffNet)
	// legacy marks rulesets with legacy tables, which the trace cannot
	// see: the deciding rule is checked only where nftables decides.
	legacy bool
}

// diffCount is what one ruleset's (or all rulesets') packets showed.
type diffCount struct {
	packets, unknown, wrong int
	deciders                int // deciding rules checked against the trace
	pathDiffers             int // the rules matched on the way differ from the trace's (not a failure)
}

func (c *diffCount) add(o diffCount) {
	c.packets += o.packets
	c.unknown += o.unknown
	c.wrong += o.wrong
	c.deciders += o.deciders
	c.pathDiffers += o.pathDiffers
}

func (c diffCount) String() string {
	return fmt.Sprintf("%d packets, %d unknown, %d wrong (%d deciding rules checked against the kernel's trace, %d paths differ)",
		c.packets, c.unknown, c.wrong, c.deciders, c.pathDiffers)
}

// diffProbe is one packet of a ruleset's run.
type diffProbe struct {
	src     testnet.DiffSource
	proto   uint8
	dst     netip.AddrPort
	srcPort uint16
	pkt     Packet
	res     Result
	out     testnet.Outcome
	at      testnet.Arrival
}

func (p *diffProbe) String() string {
	return fmt.Sprintf("%s %s [%s]:%d -> %s (in %s)", p.src.Name, map[uint8]string{6: "tcp", 17: "udp"}[p.proto], p.src.Addr, p.srcPort, p.dst, p.src.Iface)
}

// evalSerial is Evaluate, serialised: the probes run concurrently, and the
// evaluator need not be safe for that.
var evalMu sync.Mutex

func evalSerial(rs *Ruleset, h *Host, p Packet) Result {
	evalMu.Lock()
	defer evalMu.Unlock()
	return Evaluate(rs, h, p)
}

// checkRuleset probes every packet of the loaded ruleset and compares.
// label names the ruleset in messages; text is its source, shown when a
// packet comes out wrong.
func checkRuleset(t *testing.T, d *testnet.DiffNet, label, text string, c diffCase) diffCount {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rs, err := Read(ctx, Options{NetNS: d.ServerPath()})
	if err != nil {
		t.Fatalf("%s: Read: %v", label, err)
	}
	host, err := ReadHost(Options{NetNS: d.ServerPath()})
	if err != nil {
		t.Fatalf("%s: ReadHost: %v", label, err)
	}
	ports := c.ports
	if ports == nil {
		ports = diffProbePorts
	}
	var extra []netip.Addr
	if c.extraDsts != nil {
		extra = c.extraDsts(d)
	}
	var probes []*diffProbe
	for _, src := range d.Sources {
		dsts := []netip.Addr{d.Dst(src)}
		if !src.Loopback {
			for _, a := range extra {
				if a.Is4() == src.Addr.Is4() {
					dsts = append(dsts, a)
				}
			}
		}
		for _, dst := range dsts {
			for _, proto := range []uint8{6, 17} {
				for _, port := range ports {
					probes = append(probes, &diffProbe{src: src, proto: proto, dst: netip.AddrPortFrom(dst, port)})
				}
			}
			for _, port := range c.tcpPorts {
				if !dst.Is4() || dst.IsLoopback() {
					break
				}
				probes = append(probes, &diffProbe{src: src, proto: 6, dst: netip.AddrPortFrom(dst, port)})
			}
		}
	}
	trace := d.StartTrace(t)
	run := func(p *diffProbe, timeout time.Duration) {
		p.srcPort = d.SourcePort(t)
		p.pkt = Packet{Proto: p.proto, Src: p.src.Addr, Dst: p.dst.Addr(), SrcPort: p.srcPort, DstPort: p.dst.Port(), InIface: p.src.Iface}
		p.res = evalSerial(rs, host, p.pkt)
		p.out, p.at = d.Probe(p.src, p.proto, p.dst, p.srcPort, timeout)
	}
	parallel(probes, func(p *diffProbe) { run(p, probeTimeout) })
	held(t, d, probes)
	// A disagreement is probed again, with a fresh connection and more
	// time, before it counts: a slow machine is not a wrong verdict.
	var again []*diffProbe
	for _, p := range probes {
		if p.res.Verdict != Unknown && !agrees(p, nil) {
			again = append(again, p)
		}
	}
	if len(again) > 0 {
		parallel(again, func(p *diffProbe) { run(p, retryTimeout) })
		held(t, d, again)
	}
	trace.Stop(t, d)

	hooks := baseHooks(rs)
	// judge compares p with the kernel: its problems, and whether its
	// deciding rule was checked against the kernel's trace.
	judge := func(p *diffProbe, events []testnet.TraceEvent) (problems []string, checked bool) {
		if p.src.Loopback && p.proto == 6 && p.out != testnet.Arrived && !c.legacy && deliveredLocally(hooks, events) {
			// A local client's SYN-ACK comes back in through input,
			// where the ruleset may reject it: the server then forgets
			// the half-open connection it held, and only the trace
			// shows that the SYN got through.
			p.out, p.at = testnet.Arrived, testnet.Arrival{NS: "?"}
		}
		if !agrees(p, events) {
			problems = append(problems, fmt.Sprintf("Evaluate says %s, the kernel: %s", p.res.Verdict, p.out))
		}
		if p.res.Verdict == Accept && p.out == testnet.Arrived {
			if msg := checkLanding(d, p); msg != "" {
				problems = append(problems, msg)
			}
		}
		if kd, ok := kernelDecider(events); ok && len(problems) == 0 && !unsettled(events) && !outsideNetfilter(p, kd) && !(c.legacy && p.res.Decider != nil && p.res.Decider.Source == Legacy) {
			if !c.legacy || p.res.Verdict != Accept {
				checked = true
				if !sameStep(p.res.Decider, kd) {
					problems = append(problems, fmt.Sprintf("deciding rule: Evaluate says %s, the kernel's trace ends on %s", stepString(p.res.Decider), eventString(kd)))
				}
			}
		}
		return problems, checked
	}
	type judged struct {
		problems []string
		checked  bool
		events   []testnet.TraceEvent
	}
	verdicts := map[*diffProbe]judged{}
	var retrace []*diffProbe
	for _, p := range probes {
		if p.res.Verdict == Unknown {
			continue
		}
		events := trace.Packet(p.proto, netip.AddrPortFrom(p.src.Addr, p.srcPort))
		problems, checked := judge(p, events)
		verdicts[p] = judged{problems, checked, events}
		if len(problems) > 0 && trace.Lost() {
			retrace = append(retrace, p)
		}
	}
	if len(retrace) > 0 {
		// The monitor lost events, so a trace may stop short of the
		// rule that decided: those packets are sent again under a
		// fresh trace before they count.
		t.Logf("%s: nft monitor lost events; %d packets traced again", label, len(retrace))
		trace = d.StartTrace(t)
		parallel(retrace, func(p *diffProbe) { run(p, retryTimeout) })
		held(t, d, retrace)
		trace.Stop(t, d)
		for _, p := range retrace {
			events := trace.Packet(p.proto, netip.AddrPortFrom(p.src.Addr, p.srcPort))
			problems, checked := judge(p, events)
			verdicts[p] = judged{problems, checked, events}
		}
	}

	var n diffCount
	shown := 0
	why := map[string]int{} // what the unknowns depend on
	for _, p := range probes {
		n.packets++
		if p.res.Verdict == Unknown {
			n.unknown++
			why[strings.Join(p.res.DependsOn, "; ")]++
			continue
		}
		j := verdicts[p]
		problems, events := j.problems, j.events
		if j.checked {
			n.deciders++
		}
		if len(problems) == 0 && len(events) > 0 && !c.legacy && !samePath(p.res.Steps, events) {
			n.pathDiffers++
			if n.pathDiffers == 1 {
				t.Logf("%s: %s: the rules matched on the way differ (not a failure):\nEvaluate:\n%s\nkernel trace:\n%s", label, p, stepsString(p.res), eventsString(events))
			}
		}
		if len(problems) > 0 {
			n.wrong++
			if shown < 8 {
				shown++
				t.Errorf("%s: %s: %s\nEvaluate: %s, decided by %s; steps:\n%s\nkernel trace:\n%s",
					label, p, strings.Join(problems, "; "), p.res.Verdict, stepString(p.res.Decider), stepsString(p.res), eventsString(events))
			}
		}
	}
	for w, k := range why {
		t.Logf("%s: %d unknown, depending on: %s", label, k, w)
	}
	if n.wrong > 0 {
		t.Logf("%s: the ruleset:\n%s", label, text)
		if shown < n.wrong {
			t.Logf("%s: %d more wrong packets not shown", label, n.wrong-shown)
		}
	}
	return n
}

// baseHooks maps the base chains of rs, as the trace names them ("inet f
// in"), to their hooks.
func baseHooks(rs *Ruleset) map[string]HookNum {
	hooks := map[string]HookNum{}
	for _, tb := range rs.Tables {
		for _, c := range tb.Chains {
			if c.Hook != nil && tb.Source != Legacy {
				hooks[FamilyName(tb.Family)+" "+tb.Name+" "+c.Name] = c.Hook.Num
			}
		}
	}
	return hooks
}

// deliveredLocally says whether the trace shows the packet let through
// the input hook: its last event is an accept (a rule's or a policy's) in
// a base chain on input, the last the kernel walks before the socket.
func deliveredLocally(hooks map[string]HookNum, events []testnet.TraceEvent) bool {
	base := ""
	for _, e := range events {
		if e.Kind == "packet" {
			base = e.Family + " " + e.Table + " " + e.Chain
		}
	}
	if h, ok := hooks[base]; len(events) == 0 || !ok || h != unix.NF_INET_LOCAL_IN {
		return false
	}
	last := events[len(events)-1]
	return (last.Kind == "policy" || last.Kind == "rule") && last.Verdict == "accept"
}

// outsideNetfilter says whether the packet's fate was settled outside the
// ruleset: Evaluate's deciding step belongs to no table (forwarding off,
// no route), or the kernel's trace ends on an accept while the packet
// went nowhere. The trace has no deciding rule to compare then.
func outsideNetfilter(p *diffProbe, kd testnet.TraceEvent) bool {
	if p.res.Decider != nil && p.res.Decider.Table == "" {
		return true
	}
	return p.res.Verdict != Accept && kd.Verdict == "accept"
}

// unsettledWords mark, in the trace's text of a rule, a match whose
// outcome Evaluate cannot know: a rate limit, a quota, a random number,
// or a packet field its Packet does not carry (length, TTL, DSCP, packet
// type, source port, conntrack mark, the local socket's owner, fragment
// offset).
var unsettledWords = []string{"limit rate", "quota", "numgen", "-m limit", "-m recent", "-m hashlimit", "meta length", " ttl ", "hoplimit",
	"dscp", "pkttype", "iiftype", "sport", "ct mark", "skuid", "skgid", "frag-off"}

// unsettled says whether a rule the packet met in the kernel holds such a
// match: the kernel took one branch, Evaluate may have followed another
// to the same verdict (it is certain only when every branch agrees), and
// the deciding rules differ without either being wrong. The verdict is
// still checked.
func unsettled(events []testnet.TraceEvent) bool {
	for _, e := range events {
		if e.Kind != "rule" {
			continue
		}
		for _, w := range unsettledWords {
			if strings.Contains(e.Text, w) {
				return true
			}
		}
	}
	return false
}

// held marks the TCP probes whose SYN the server or Far holds half-open
// as arrived: the first packet got through, whatever became of the rest
// of the handshake (see testnet.DiffNet.Probe).
func held(t *testing.T, d *testnet.DiffNet, probes []*diffProbe) {
	h := d.HeldSYNs(t)
	for _, p := range probes {
		if at, ok := h[netip.AddrPortFrom(p.src.Addr, p.srcPort)]; ok && p.proto == 6 && p.out != testnet.Arrived {
			p.out, p.at = testnet.Arrived, at
		}
	}
}

// agrees says whether Evaluate's verdict is what the kernel did: accept
// arrives; drop is silent; reject is answered with an error. A reject's
// answer can be lost, though: a client on this machine gets it back
// through the input hook, which may drop it, and a TCP client still
// connecting takes an ICMP error that arrives while connect holds the
// socket as a soft error, and times out. A silent reject counts when the
// trace (nil before it is read) shows the kernel's deciding rule rejected.
func agrees(p *diffProbe, events []testnet.TraceEvent) bool {
	switch p.res.Verdict {
	case Accept:
		return p.out == testnet.Arrived
	case Drop:
		return p.out == testnet.Silent || (p.src.Loopback && p.out == testnet.Refused)
	case Reject:
		if p.out == testnet.Refused || (p.src.Loopback && p.out == testnet.Silent) {
			return true
		}
		kd, ok := kernelDecider(events)
		return p.out == testnet.Silent && ok && kd.Kind == "rule" && strings.Contains(strings.ToLower(kd.Text), "reject")
	}
	return true
}

// checkLanding compares where an accepted probe landed with where
// Evaluate says it goes: the forward path to Far or this machine, and the
// port after NAT.
func checkLanding(d *testnet.DiffNet, p *diffProbe) string {
	if p.at.NS == "?" {
		return ""
	}
	forward := p.at.NS == d.Far
	if (p.res.Path == "forward") != forward {
		return fmt.Sprintf("Evaluate's path is %q, but the probe landed in %s on %s", p.res.Path, p.at.NS, p.at.Local)
	}
	if p.res.To.IsValid() && p.res.To.Port() != p.at.Local.Port() {
		return fmt.Sprintf("Evaluate says it goes to %s, but it landed on %s (in %s)", p.res.To, p.at.Local, p.at.NS)
	}
	if p.proto == 6 && p.res.To.IsValid() && p.res.To.Addr().Unmap() != p.at.Local.Addr() {
		return fmt.Sprintf("Evaluate says it goes to %s, but it landed on %s (in %s)", p.res.To, p.at.Local, p.at.NS)
	}
	return ""
}

// kernelDecider reads the deciding step from the trace, as Evaluate
// defines it: for a packet the kernel dropped, the last rule that dropped
// or rejected it (a reject shows as drop) or the drop policy; for one it
// let through, the last rule that accepted it (a DNAT's verdict is
// accept; a MASQUERADE's or SNAT's is too, but it is not counted), else
// the last accept policy.
func kernelDecider(events []testnet.TraceEvent) (testnet.TraceEvent, bool) {
	var last testnet.TraceEvent
	found := false
	for i := len(events) - 1; i >= 0 && !found; i-- {
		e := events[i]
		if e.Kind == "policy" || e.Kind == "rule" && (e.Verdict == "accept" || e.Verdict == "drop") {
			last, found = e, true
		}
	}
	if !found || last.Verdict == "drop" {
		return last, found
	}
	for i := len(events) - 1; i >= 0; i-- {
		// A source rewrite on the way out (MASQUERADE, SNAT) is not
		// what let the packet in.
		if e := events[i]; e.Kind == "rule" && e.Verdict == "accept" && !sourceNAT(e.Text) {
			return e, true
		}
	}
	return last, true
}

// sourceNAT says whether a rule's trace text rewrites the source.
func sourceNAT(text string) bool {
	t := strings.ToLower(text)
	return strings.Contains(t, "masquerade") || strings.Contains(t, "snat")
}

// sameStep says whether Evaluate's deciding step is the trace's event.
func sameStep(s *Step, e testnet.TraceEvent) bool {
	if s == nil || FamilyName(s.Family) != e.Family || s.Table != e.Table || s.Chain != e.Chain {
		return false
	}
	if e.Kind == "policy" {
		return s.Rule == nil
	}
	return s.Rule != nil && s.Handle == e.Handle
}

// samePath says whether the nftables rules Evaluate met on the way are the
// ones the trace shows, in order.
func samePath(steps []Step, events []testnet.TraceEvent) bool {
	var a, b []string
	for _, s := range steps {
		if s.Rule != nil && s.Source != Legacy {
			a = append(a, fmt.Sprintf("%s %s %s #%d", FamilyName(s.Family), s.Table, s.Chain, s.Handle))
		}
	}
	for _, e := range events {
		if e.Kind == "rule" {
			b = append(b, fmt.Sprintf("%s %s %s #%d", e.Family, e.Table, e.Chain, e.Handle))
		}
	}
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

func stepString(s *Step) string {
	if s == nil {
		return "nothing"
	}
	where := fmt.Sprintf("%s %s %s", FamilyName(s.Family), s.Table, s.Chain)
	if s.Source == Legacy {
		where = fmt.Sprintf("legacy %s %s %s", FamilyName(s.Family), s.Table, s.Chain)
	}
	if s.Rule == nil {
		return where + ": " + s.Action
	}
	return fmt.Sprintf("%s handle %d (position %d): %s [%s]", where, s.Handle, s.Position, s.Action, s.Text)
}

func stepsString(r Result) string {
	var b strings.Builder
	for i := range r.Steps {
		fmt.Fprintf(&b, "  %s\n", stepString(&r.Steps[i]))
	}
	if r.NAT != nil {
		fmt.Fprintf(&b, "  NAT %s -> %s\n", r.NAT.From, r.NAT.To)
	}
	fmt.Fprintf(&b, "  path %s, to %s", r.Path, r.To)
	if len(r.DependsOn) > 0 {
		fmt.Fprintf(&b, ", depends on %s", strings.Join(r.DependsOn, "; "))
	}
	return b.String()
}

func eventString(e testnet.TraceEvent) string {
	if e.Kind == "rule" {
		return fmt.Sprintf("%s %s %s handle %d: %s (verdict %s)", e.Family, e.Table, e.Chain, e.Handle, e.Text, e.Verdict)
	}
	return fmt.Sprintf("%s %s %s: %s %s", e.Family, e.Table, e.Chain, e.Kind, e.Verdict)
}

func eventsString(events []testnet.TraceEvent) string {
	if len(events) == 0 {
		return "  (none: the trace saw nothing of this packet)"
	}
	var b strings.Builder
	for _, e := range events {
		if e.Kind == "packet" {
			fmt.Fprintf(&b, "  %s %s %s: packet\n", e.Family, e.Table, e.Chain)
			continue
		}
		fmt.Fprintf(&b, "  %s\n", eventString(e))
	}
	return strings.TrimRight(b.String(), "\n")
}

// parallel runs fn on every item, probeWorkers at a time.
func parallel[T any](items []T, fn func(T)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, probeWorkers)
	for _, it := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(it)
		})
	}
	wg.Wait()
}

// grandTotal adds up every ruleset the differential tests checked, for
// TestIntegrationDifferentialTotal.
var grandTotal struct {
	sync.Mutex
	n        diffCount
	rulesets int
}

func addTotal(n diffCount) {
	grandTotal.Lock()
	grandTotal.n.add(n)
	grandTotal.rulesets++
	grandTotal.Unlock()
}

// runCases loads each case in turn into d's server and checks it, and
// reports the figures per case and in total under title.
func runCases(t *testing.T, d *testnet.DiffNet, title string, cases []diffCase) diffCount {
	t.Helper()
	var total diffCount
	for _, c := range cases {
		start := time.Now()
		d.Flush(t)
		if c.nft != "" {
			d.LoadNft(t, c.nft)
		}
		if c.load != nil {
			c.load(t, d)
		}
		text := c.nft
		if text == "" {
			text = iptablesText[c.name]
		}
		n := checkRuleset(t, d, title+" "+c.name, text, c)
		if c.after != nil {
			c.after(t, d)
		}
		t.Logf("%s %s: %s in %s", title, c.name, n, time.Since(start).Round(time.Millisecond))
		fmt.Printf("differential: %s %s: %s\n", title, c.name, n)
		total.add(n)
		addTotal(n)
	}
	if len(cases) > 1 {
		t.Logf("%s, total: %s", title, total)
		fmt.Printf("differential: %s total: %s\n", title, total)
	}
	return total
}

func TestIntegrationDifferentialCorpus(t *testing.T) {
	d := testnet.NewDiffNet(t, "", nil)
	runCases(t, d, "corpus", nftCorpus)
}

// nftCorpus are hand-written nftables rulesets, each aimed at a piece of
// the semantics.
var nftCorpus = []diffCase{
	{name: "empty"},
	{name: "priorities", nft: `
# Three tables on input: an accept in the first base chain does not stop
# the next; a drop anywhere ends the walk; a reject answers.
table inet early {
	chain in {
		type filter hook input priority -10; policy accept;
		tcp dport { 80, 443 } accept
		udp dport 53 drop
	}
}
table ip late {
	chain in {
		type filter hook input priority 10; policy accept;
		ip saddr 198.51.100.0/24 tcp dport 80 drop
		tcp dport 22 reject with tcp reset
		udp dport 137-139 reject
		meta l4proto udp udp dport 8080 reject with icmp type admin-prohibited
	}
}
table ip6 late6 {
	chain in {
		type filter hook input priority 10; policy drop;
		iif "lo" accept
		tcp dport { 22, 443 } accept
		ip6 saddr fd00::/8 accept
		ip6 saddr 2001:db8::/32 udp dport 5432 reject with icmpv6 type admin-prohibited
	}
}
`},
	{name: "same-priority", nft: `
# Two base chains at the same priority in one table, and a policy drop
# after an accept elsewhere.
table inet a {
	chain one {
		type filter hook input priority 0; policy accept;
		tcp dport 6379 accept
		udp dport 6379 drop
	}
	chain two {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		iif lo accept
		tcp dport { 22, 80, 443 } accept
		udp dport 53 accept
	}
}
`},
	{name: "jump-goto-return", nft: `
table inet f {
	chain in {
		type filter hook input priority 0; policy drop;
		iifname "lo" accept
		ct state established,related accept
		ip saddr 192.168.77.0/24 jump lan
		ip6 saddr fd00::/8 jump lan
		tcp dport 80 goto web
		udp dport 53 accept
		tcp dport 8080 jump web
		tcp dport 8080 accept
	}
	chain lan {
		tcp dport 22 accept
		udp dport 137-139 return
		meta l4proto udp accept
		tcp dport 5432 drop
		jump deeper
	}
	chain deeper {
		tcp dport 445 reject
		tcp dport 6379 return
		tcp dport 1-1024 accept
	}
	chain web {
		ip saddr 203.0.113.0/24 drop
		ip6 saddr 2001:db8::/32 return
		accept
	}
}
`},
	{name: "sets-maps", nft: `
table inet f {
	set allowed_ports {
		type inet_service
		elements = { 22, 443 }
	}
	set blocked4 {
		type ipv4_addr
		flags interval
		elements = { 198.51.100.0/25, 10.9.0.0/16 }
	}
	set blocked6 {
		type ipv6_addr
		flags interval
		elements = { 2001:db8::/32 }
	}
	set pairs {
		type ipv4_addr . inet_service
		elements = { 192.168.77.2 . 5432, 203.0.113.9 . 6379, 192.168.77.1 . 8081 }
	}
	set netports {
		type ipv4_addr . inet_service
		flags interval
		elements = { 203.0.113.0/24 . 8000-8100, 192.168.0.0/16 . 130-140 }
	}
	map portv {
		type inet_service : verdict
		elements = { 8080 : accept, 8081 : drop, 139 : jump smb, 445 : goto smb }
	}
	chain smb {
		ip saddr 192.168.0.0/16 accept
		ip6 saddr fd00::/8 accept
		reject
	}
	chain in {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		ip saddr @blocked4 drop
		ip6 saddr @blocked6 reject
		tcp dport @allowed_ports accept
		ip saddr . tcp dport @pairs accept
		ip saddr . udp dport @netports accept
		th dport vmap @portv
		udp dport { 53, 137-138 } accept
		meta l4proto tcp tcp dport 1000-10000 counter accept
		iif lo tcp dport vmap { 22 : accept, 80 : drop, 443 : goto smb }
	}
}
`},
	{name: "fib-iifname-ct", ports: []uint16{22, 53, 80, 137, 443, 2222, 8080, 8081}, extraDsts: func(d *testnet.DiffNet) []netip.Addr { return []netip.Addr{d.ExtraAddr4} }, nft: `
table inet f {
	chain pre {
		type filter hook prerouting priority -150; policy accept;
		fib daddr type local tcp dport 8080 accept
		fib daddr type local udp dport 8081 drop
		fib daddr . iif type != local ip daddr 192.168.99.1 udp dport 2222 drop
	}
	chain in {
		type filter hook input priority 0; policy accept;
		iifname "veth*" tcp dport 22 drop
		iifname != "lo" udp dport 53 reject
		meta iifname "lo" accept
		ip daddr 192.168.99.1 tcp dport 80 drop
		ct state new tcp dport 443 ip saddr 198.51.100.0/24 drop
		ct state established tcp dport 443 drop
		ct state != new udp dport 137 drop
		ct state invalid drop
		th dport 8081 ip saddr 10.0.0.0/8 reject
		fib saddr type local tcp dport 2222 drop
	}
}
`},
	{name: "families", nft: `
# An inet table and ip and ip6 tables on one hook, policies in each.
table ip four {
	chain in {
		type filter hook input priority 5; policy accept;
		ip saddr 10.9.0.0/16 tcp dport { 22, 5432 } drop
		ip protocol udp udp dport 445 drop
	}
}
table ip6 six {
	chain in {
		type filter hook input priority -5; policy accept;
		ip6 nexthdr tcp tcp dport 5432 drop
		ip6 saddr 2001:db8:1::/48 udp dport 53 drop
	}
}
table inet both {
	chain in {
		type filter hook input priority 0; policy drop;
		iif lo accept
		ct state established,related accept
		meta nfproto ipv4 tcp dport 80 accept
		meta nfproto ipv6 udp dport 53 accept
		tcp dport { 22, 443, 5432, 6379 } accept
		udp dport { 53, 137, 445 } accept
	}
}
`},
	{name: "nat-redirect-forward", ports: []uint16{22, 53, 80, 2222, 5432, 6379, 8080, 8081, 9000}, extraDsts: func(d *testnet.DiffNet) []netip.Addr { return []netip.Addr{d.FarAddr4, d.FarAddr6} }, nft: `
# Redirect to another local port, DNAT to the far namespace (forward
# path), and a forward chain that lets some of it through.
table ip nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 8080 redirect to :8081
		udp dport 8080 redirect to :8081
		tcp dport 2222 dnat to 172.31.9.2:22
		udp dport 2222 dnat to 172.31.9.2:53
		ip saddr 198.51.100.0/24 tcp dport 9000 dnat to 172.31.9.2:5432
	}
	chain out {
		type nat hook output priority -100; policy accept;
		tcp dport 6379 redirect to :8081
	}
}
table ip6 nat {
	chain pre {
		type nat hook prerouting priority -100; policy accept;
		tcp dport 8080 redirect to :8081
		tcp dport 2222 dnat to [fd00:9::2]:22
	}
}
table inet f {
	chain in {
		type filter hook input priority 0; policy accept;
		ip saddr 198.51.100.0/24 tcp dport 8081 drop
		tcp dport 6379 ct original proto-dst 6379 drop
	}
	chain fw {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		ip daddr 172.31.9.2 tcp dport 22 accept
		ip6 daddr fd00:9::2 tcp dport 22 accept
		ip daddr 172.31.9.2 udp dport 53 ip saddr 192.168.0.0/16 accept
		ip daddr 172.31.9.2 tcp dport 5432 accept
		ip daddr 172.31.9.2 tcp dport 80 reject
		ip6 daddr fd00:9::2 udp dport 53 accept
	}
}
`},
	{name: "nat-priority", ports: []uint16{22, 80, 8080, 8081, 9000, 9100}, nft: `
# A nat chain at priority -199 and a filter chain at -150 on prerouting:
# does the filter chain see the packet before or after the DNAT? The
# kernel runs nat chains from the nat hook (-100), whatever their own
# priority, among themselves in priority order; the test tells. (A nat
# chain at -200 or before, at or ahead of conntrack, the kernel refuses
# with EOPNOTSUPP.)
table ip t {
	chain natpre {
		type nat hook prerouting priority -199; policy accept;
		tcp dport 9000 dnat to 192.168.77.1:9100
		udp dport 9000 dnat to 192.168.77.1:9100
	}
	chain filt {
		type filter hook prerouting priority -150; policy accept;
		tcp dport 9100 drop
		udp dport 9000 drop
	}
	chain natpre2 {
		type nat hook prerouting priority -50; policy accept;
		tcp dport 8080 dnat to 192.168.77.1:8081
	}
	chain filt2 {
		type filter hook prerouting priority -75; policy accept;
		tcp dport 8081 drop
	}
}
`},
	{name: "ct-before-conntrack", nft: `
# Conntrack looks the packet up at priority -200: a chain before it sees
# no connection yet. What does ct state say there?
table inet raw {
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		ct state new tcp dport 22 drop
		ct state invalid tcp dport 80 drop
		ct state untracked udp dport 53 drop
		ct state != established udp dport 137 drop
	}
	chain out {
		type filter hook output priority -300; policy accept;
		ct state new tcp dport 443 drop
	}
	chain after {
		type filter hook prerouting priority -150; policy accept;
		ct state new tcp dport 445 drop
		ct state invalid udp dport 445 drop
	}
}
`},
	{name: "nat-input-chain", nft: `
# NAT chains on input (for SNAT) with verdicts: which packets do they see?
table ip n {
	chain in {
		type nat hook input priority 100; policy accept;
		tcp dport 5432 drop
		udp dport 53 drop
	}
	chain in2 {
		type nat hook input priority -100; policy accept;
		tcp dport 6379 drop
	}
}
table ip6 n6 {
	chain pre {
		type nat hook prerouting priority -100; policy accept;
		tcp dport 8080 redirect to :8081
	}
	chain in {
		type nat hook input priority 100; policy accept;
		tcp dport 5432 drop
	}
}
`},
	{name: "nat-same-priority", ports: []uint16{22, 53, 80, 443, 2222, 8080, 9000}, nft: `
# NAT chains at one priority, and a filter chain at the nat hook's own
# priority (-100): among equals the kernel runs the chain registered
# last first (nf_hook_entries_grow puts a new hook before those of its
# priority), and the nat hook itself is registered with the first nat
# chain.
table ip n {
	chain a {
		type nat hook prerouting priority -100; policy accept;
		tcp dport 2222 redirect to :22
		udp dport 8080 redirect to :53
	}
	chain b {
		type nat hook prerouting priority -100; policy accept;
		tcp dport 2222 redirect to :80
		tcp dport 9000 redirect to :443
	}
	chain f {
		type filter hook prerouting priority -100; policy accept;
		tcp dport 80 drop
	}
}
table ip6 n6 {
	chain a {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 2222 redirect to :22
	}
	chain b {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 2222 redirect to :443
		udp dport 9000 redirect to :53
	}
}
`},
	{name: "ingress-dynamic-sets", nft: `
# netdev and inet ingress chains (before prerouting, on veth0 alone), a
# dormant table, and a set rules fill while the packet passes (the
# packet that adds its address then matches it).
table netdev edge {
	chain in {
		type filter hook ingress device "veth0" priority 0; policy accept;
		ip saddr 203.0.113.0/24 tcp dport 22 drop
		ip6 saddr 2001:db8::/32 udp dport 53 drop
	}
}
table inet early {
	chain in {
		type filter hook ingress device "veth0" priority -10; policy accept;
		tcp dport 445 drop
	}
}
table ip asleep {
	flags dormant
	chain in {
		type filter hook input priority 0; policy drop;
	}
}
table inet f {
	set seen4 {
		type ipv4_addr
		flags dynamic
		size 1024
	}
	set seen6 {
		type ipv6_addr
		flags dynamic,timeout
		timeout 1h
	}
	chain in {
		type filter hook input priority 0; policy accept;
		tcp dport 5432 add @seen4 { ip saddr }
		ip saddr @seen4 tcp dport 5432 drop
		udp dport 137 update @seen6 { ip6 saddr }
		ip6 saddr @seen6 udp dport 137 reject
		udp dport 139 ip saddr @seen4 drop
	}
}
`},
	{name: "dnat-forwarding-off", ports: []uint16{22, 53, 80, 2222}, extraDsts: func(d *testnet.DiffNet) []netip.Addr { return []netip.Addr{d.FarAddr4, d.FarAddr6} },
		load:  func(t *testing.T, d *testnet.DiffNet) { d.SetForwarding(t, false) },
		after: func(t *testing.T, d *testnet.DiffNet) { d.SetForwarding(t, true) }, nft: `
# A DNAT to another machine while the server does not forward: nothing
# gets there, whatever the forward chain says.
table ip nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 2222 dnat to 172.31.9.2:22
		udp dport 2222 dnat to 172.31.9.2:53
	}
}
table inet f {
	chain fw {
		type filter hook forward priority 0; policy accept;
	}
}
`},
	{name: "rp-filter", ports: []uint16{22, 53, 80},
		// The server's route back to 203.0.113.0/24 leads out fwd0, not
		// veth0 where those clients' packets come in: strict
		// reverse-path filtering drops them, after prerouting.
		load: func(t *testing.T, d *testnet.DiffNet) {
			d.Exec(t, d.Server, "", "ip", "route", "replace", "203.0.113.0/24", "via", "172.31.9.2")
			d.SetRPFilter(t, 1)
		},
		after: func(t *testing.T, d *testnet.DiffNet) {
			d.SetRPFilter(t, 0)
			d.Exec(t, d.Server, "", "ip", "route", "replace", "203.0.113.0/24", "via", "192.168.77.2")
		}, nft: `
table inet f {
	chain pre {
		type filter hook prerouting priority -150; policy accept;
		tcp dport 80 counter
	}
	chain in {
		type filter hook input priority 0; policy accept;
		udp dport 53 drop
	}
}
`},
	{name: "ipv6-heavy", nft: `
table ip6 f {
	set trusted {
		type ipv6_addr
		flags interval
		elements = { fd00:77::/64, ::1/128 }
	}
	map svc {
		type inet_service : verdict
		elements = { 22 : jump ssh, 80 : accept, 443 : accept }
	}
	chain ssh {
		ip6 saddr @trusted accept
		reject with tcp reset
	}
	chain in {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		meta l4proto ipv6-icmp accept
		tcp dport vmap @svc
		ip6 saddr . udp dport { fd00:77::2 . 53, 2001:db8:1::7 . 137 } accept
		ip6 saddr @trusted udp dport 5432-6379 accept
	}
}
`},
}

// The generated rulesets checked against the kernel: seeds diff.seed to
// diff.seed+diff.seeds-1. A failure names its seed; genRuleset(seed)
// makes the ruleset again, and
//
//	go test -run DifferentialGenerated -diff.seed=SEED -diff.seeds=1
//
// checks it alone.
var (
	genFirstSeed = flag.Uint64("diff.seed", 1, "first seed of the generated rulesets")
	genSeeds     = flag.Int("diff.seeds", 30, "how many generated rulesets to check")
)

func TestIntegrationDifferentialGenerated(t *testing.T) {
	d := testnet.NewDiffNet(t, "", nil)
	var cases []diffCase
	for i := range uint64(*genSeeds) {
		seed := *genFirstSeed + i
		c := diffCase{
			name:  fmt.Sprintf("seed %d", seed),
			nft:   genRuleset(seed),
			ports: []uint16{22, 53, 80, 137, 443, 2222, 5432, 8080, 8081},
		}
		switch {
		case strings.Contains(c.nft, "hook forward"):
			// Through the server to the far namespace, too.
			c.extraDsts = func(d *testnet.DiffNet) []netip.Addr { return []netip.Addr{d.FarAddr4, d.FarAddr6} }
		case seed%3 == 0:
			// The server's second address, on its lo.
			c.extraDsts = func(d *testnet.DiffNet) []netip.Addr { return []netip.Addr{d.ExtraAddr4} }
		}
		cases = append(cases, c)
	}
	runCases(t, d, "generated", cases)
}

// genIptablesSeeds are the generated iptables rulesets checked, seeds 1
// to diff.iptables-seeds: odd seeds loaded with iptables-nft-restore,
// even ones with iptables-legacy-restore (which the trace cannot see:
// their deciding rules are not compared).
var genIptablesSeeds = flag.Int("diff.iptables-seeds", 12, "how many generated iptables rulesets to check")

func TestIntegrationDifferentialGeneratedIptables(t *testing.T) {
	// Two networks: legacy tables, once loaded, stay in the namespace
	// (empty after a flush), and the nft seeds should not meet them.
	byBackend := map[bool][]diffCase{}
	for seed := range uint64(*genIptablesSeeds) {
		seed++
		v4, v6 := genIptables(seed, false), genIptables(seed, true)
		c := diffCase{name: fmt.Sprintf("seed %d", seed), ports: []uint16{22, 53, 80, 137, 443, 2222, 5432, 8080, 8081},
			extraDsts: func(d *testnet.DiffNet) []netip.Addr { return []netip.Addr{d.FarAddr4, d.FarAddr6} }}
		legacy := seed%2 == 0
		if legacy {
			c.name += " (iptables-legacy)"
			c.legacy = true
			c.load = func(t *testing.T, d *testnet.DiffNet) { d.LoadLegacy(t, v4, v6) }
		} else {
			c.name += " (iptables-nft)"
			c.load = func(t *testing.T, d *testnet.DiffNet) {
				d.Exec(t, d.Server, v4, "iptables-nft-restore")
				d.Exec(t, d.Server, v6, "ip6tables-nft-restore")
			}
		}
		iptablesText[c.name] = v4 + v6
		byBackend[legacy] = append(byBackend[legacy], c)
	}
	runCases(t, testnet.NewDiffNet(t, "", nil), "generated-iptables-nft", byBackend[false])
	runCases(t, testnet.NewDiffNet(t, "", nil), "generated-iptables-legacy", byBackend[true])
}

// iptablesText is the iptables-restore input of the generated iptables
// cases, by name, for their failure messages.
var iptablesText = map[string]string{}

// TestIntegrationGenRulesetLoads: every ruleset the generator makes is
// one nft accepts (checked with nft -c, inside a namespace of the test's
// own).
func TestIntegrationGenRulesetLoads(t *testing.T) {
	n := testnet.NewNamespace(t)
	for seed := range uint64(300) {
		text := genRuleset(seed + 1)
		cmd := exec.Command("ip", "netns", "exec", n.Name, "nft", "-c", "-f", "-")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("genRuleset(%d) does not load: %v\n%s\n%s", seed+1, err, out, text)
		}
	}
	for seed := range uint64(100) {
		for _, v6 := range []bool{false, true} {
			text := genIptables(seed+1, v6)
			tool := map[bool]string{false: "iptables-nft-restore", true: "ip6tables-nft-restore"}[v6]
			cmd := exec.Command("ip", "netns", "exec", n.Name, tool, "--test")
			cmd.Stdin = strings.NewReader(text)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("genIptables(%d, %v) does not load: %v\n%s\n%s", seed+1, v6, err, out, text)
			}
		}
	}
}

// iptablesCorpus are rulesets iptables writes: iptables-nft's (xt
// matches inside nftables) and legacy x_tables, alone and beside
// nftables tables.
var iptablesCorpus = []diffCase{
	{name: "iptables-nft", load: func(t *testing.T, d *testnet.DiffNet) {
		d.Exec(t, d.Server, `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:SERVICES - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -m conntrack --ctstate INVALID -j DROP
-A INPUT -s 198.51.100.0/25 -j REJECT --reject-with icmp-port-unreachable
-A INPUT -p tcp -m multiport --dports 22,80,443 -m conntrack --ctstate NEW -m comment --comment "web and ssh" -j ACCEPT
-A INPUT -p udp -m addrtype --dst-type LOCAL -m udp --dport 53 -j ACCEPT
-A INPUT -s 192.168.0.0/16 -j SERVICES
-A INPUT -p tcp -m tcp --dport 6379 -j REJECT --reject-with tcp-reset
-A SERVICES -p tcp -m multiport --dports 5432,8080:8081 -j ACCEPT
-A SERVICES -p udp -m multiport --dports 137:139 -m state --state NEW -j ACCEPT
-A SERVICES -p tcp --dport 445 -j DROP
-A SERVICES -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 2222 -j REDIRECT --to-ports 22
-A PREROUTING -s 203.0.113.0/24 -p udp -m udp --dport 8080 -j DNAT --to-destination 192.168.77.1:8081
COMMIT
`, "iptables-nft-restore")
		d.Exec(t, d.Server, `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m multiport ! --dports 22,443,2222 -m conntrack --ctstate NEW -j DROP
-A INPUT -s 2001:db8::/32 -p udp -j REJECT --reject-with icmp6-adm-prohibited
COMMIT
`, "ip6tables-nft-restore")
	}},
	{name: "iptables-legacy", legacy: true, load: func(t *testing.T, d *testnet.DiffNet) {
		d.LoadLegacy(t, `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:LAN - [0:0]
-A INPUT -p tcp -m tcp --dport 5432 -j DROP
-A INPUT -s 203.0.113.0/24 -p udp -j REJECT --reject-with icmp-port-unreachable
-A INPUT -s 192.168.77.0/24 -j LAN
-A INPUT -p tcp -m multiport --dports 137:139,445 -j REJECT --reject-with tcp-reset
-A LAN -p udp -m udp --dport 53 -j DROP
-A LAN -p tcp -m tcp --dport 445 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 8080 -j REDIRECT --to-ports 22
COMMIT
`, `*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p ipv6-icmp -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -s fd00::/8 -p udp -j ACCEPT
COMMIT
`)
	}, nft: `
# nftables beside the legacy tables: both filter; a drop in either ends it.
table inet f {
	chain in {
		type filter hook input priority 0; policy accept;
		tcp dport 22 ip saddr 198.51.100.0/24 drop
		udp dport 137-139 drop
		tcp dport 445 ip saddr 192.168.77.2 reject with tcp reset
	}
}
`},
}

func TestIntegrationDifferentialIptables(t *testing.T) {
	d := testnet.NewDiffNet(t, "", nil)
	runCases(t, d, "iptables", iptablesCorpus)
}

// checkDocker publishes two containers on the engine (6379 on every
// address, 8080 on 127.0.0.1 alone) and checks the ruleset Docker and
// the firewall beside it wrote, as they wrote it.
func checkDocker(t *testing.T, e *testnet.Engine, name string) {
	d := testnet.NewDiffNet(t, e.NS.Name, []uint16{22, 53, 80, 443, 5432})
	e.Run(t, "run", "-d", "--name", "db", "-p", "6379:80", e.Image, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www")
	e.Run(t, "run", "-d", "--name", "local", "-p", "127.0.0.1:8080:80", e.Image, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www")
	n := checkRuleset(t, d, "tools "+name, "(Docker's rules and the firewall's, as they wrote them)", diffCase{ports: []uint16{22, 53, 80, 443, 5432}, tcpPorts: []uint16{6379}})
	t.Logf("tools %s: %s", name, n)
	fmt.Printf("differential: tools %s: %s\n", name, n)
	addTotal(n)
}

// TestIntegrationDifferentialTools checks the rulesets real tools write:
// ufw, firewalld, kube-proxy's layouts and Docker behind ufw, each in a
// server namespace of its own, side by side: most of their time goes to
// starting the tools' daemons.
func TestIntegrationDifferentialTools(t *testing.T) {
	t.Run("ufw", func(t *testing.T) {
		t.Parallel()
		d := testnet.NewDiffNet(t, "", nil)
		runCases(t, d, "tools", []diffCase{{name: "ufw", load: func(t *testing.T, d *testnet.DiffNet) {
			testnet.UFW(t, d.ServerNS(), "allow 22/tcp", "deny 6379", "limit 2222/tcp", "allow from 10.9.0.0/16 to any port 5432 proto tcp",
				"allow 53/udp", "deny from 198.51.100.0/25", "allow 80,443/tcp", "allow from fd00:77::/64 to any port 8080", "reject 445/tcp", "allow 137:139/udp")
		}}})
	})
	t.Run("firewalld", func(t *testing.T) {
		t.Parallel()
		d := testnet.NewDiffNet(t, "", nil)
		runCases(t, d, "tools", []diffCase{{name: "firewalld", load: func(t *testing.T, d *testnet.DiffNet) {
			testnet.Firewalld(t, d.ServerNS(), "--zone=public --add-port=5432/tcp", "--zone=public --add-service=http", "--zone=public --add-service=dns",
				"--zone=trusted --add-source=10.9.0.0/16",
				`--zone=public --add-rich-rule='rule family=ipv4 source address=198.51.100.0/24 port port=6379 protocol=tcp accept'`,
				`--zone=public --add-rich-rule='rule family=ipv4 source address=203.0.113.0/24 port port=22 protocol=tcp reject'`,
				"--zone=public --add-forward-port=port=2222:proto=tcp:toport=22")
		}}})
	})
	t.Run("kube-proxy", func(t *testing.T) {
		t.Parallel()
		d := testnet.NewDiffNet(t, "", nil)
		var svc *testnet.KubeService
		runCases(t, d, "tools", []diffCase{{name: "kube-proxy-iptables", ports: []uint16{22, 80, 8080}, tcpPorts: []uint16{30080, 30081},
			load: func(t *testing.T, d *testnet.DiffNet) { svc = testnet.KubeProxyShaped(t, d.ServerNS()) }}})
		_ = svc
	})
	t.Run("kube-proxy-nft", func(t *testing.T) {
		t.Parallel()
		d := testnet.NewDiffNet(t, "", nil)
		runCases(t, d, "tools", []diffCase{{name: "kube-proxy-nftables", ports: []uint16{22, 80, 8080}, tcpPorts: []uint16{30080, 30081},
			load: func(t *testing.T, d *testnet.DiffNet) { testnet.KubeProxyNftShaped(t, d.ServerNS()) }}})
	})
	t.Run("docker-ufw", func(t *testing.T) {
		t.Parallel()
		e, _ := testnet.UFWDocker(t, testnet.DockerOptions{}, "deny 6379", "allow 22/tcp")
		checkDocker(t, e, "docker-ufw")
	})
	t.Run("docker-firewalld", func(t *testing.T) {
		t.Parallel()
		e, _ := testnet.FirewalldDocker(t, testnet.DockerOptions{NoUserlandProxy: true}, "--zone=public --add-service=ssh")
		checkDocker(t, e, "docker-firewalld")
	})
}

// TestIntegrationDifferentialTotal reports the figures of every ruleset
// the differential tests above checked in this run (it comes last in the
// file, and tests run in file order).
func TestIntegrationDifferentialTotal(t *testing.T) {
	grandTotal.Lock()
	defer grandTotal.Unlock()
	if grandTotal.rulesets == 0 {
		t.Log("no differential test ran before this one (run alone, or without root)")
		return
	}
	t.Logf("differential, all: %d rulesets, %s", grandTotal.rulesets, grandTotal.n)
	fmt.Printf("differential: all: %d rulesets, %s\n", grandTotal.rulesets, grandTotal.n)
}
