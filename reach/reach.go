package reach

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/portctl/portctl/firewall"
)

// Protocol numbers of the transport protocols reach knows.
const (
	TCP uint8 = 6
	UDP uint8 = 17
)

// ProtoName spells a protocol number as the tools do: "tcp", "udp".
func ProtoName(p uint8) string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprint(p)
}

// Listener is a socket that takes new peers: a listening TCP socket or an
// unconnected UDP one.
type Listener struct {
	Proto uint8          `json:"-"`
	Local netip.AddrPort `json:"local"`
	// V6Only is IPV6_V6ONLY on a socket bound to [::]: without it the
	// socket takes IPv4 clients too.
	V6Only bool `json:"v6only,omitempty"`
	// Device is the interface the socket is bound to (SO_BINDTODEVICE);
	// empty when it is bound to none.
	Device string `json:"device,omitempty"`
	// Holder names who holds the socket, for people: "postgres/812".
	Holder string `json:"holder,omitempty"`
}

// Source is where clients connect from: a class of clients, or an
// address or range the user gave.
type Source struct {
	// Name is the class ("internet", "lan", "loopback") or the range as
	// given.
	Name string `json:"name"`
	// Class is empty for a given address or range.
	Class firewall.Class `json:"class,omitempty"`
	From  []netip.Prefix `json:"from"`
}

// ClassSource is the source of class c on host h.
func ClassSource(c firewall.Class, h *firewall.Host) Source {
	return Source{Name: string(c), Class: c, From: firewall.ClassPrefixes(c, h)}
}

// SpreadClients is how many clients of each class, and family,
// SpreadSources spreads.
const SpreadClients = 8

// SpreadSources are the three classes on h, each as n clients spread over
// its address space (per family): what fw, audit and the dashboard use to
// say who may reach each of many ports, where covering every address would
// take too long on a large ruleset. A class whose clients fare differently
// comes out partial.
func SpreadSources(h *firewall.Host, n int) []Source {
	var out []Source
	for _, c := range firewall.Classes {
		out = append(out, Source{Name: string(c), Class: c, From: firewall.ClassSamples(c, h, n)})
	}
	return out
}

// SampleSources are the three classes on h, each reduced to one address
// of its range (and one of each family): a quick look, for many ports,
// at what the ruleset does to a typical client of each class.
func SampleSources(h *firewall.Host) []Source {
	var out []Source
	for _, c := range firewall.Classes {
		s := Source{Name: string(c), Class: c}
		seen := map[bool]bool{}
		for _, p := range firewall.ClassPrefixes(c, h) {
			a := p.Addr()
			if c == firewall.Loopback && a.Is4() {
				a = a.Next() // 127.0.0.1
			}
			if !seen[a.Is4()] {
				seen[a.Is4()] = true
				s.From = append(s.From, netip.PrefixFrom(a, a.BitLen()))
			}
		}
		out = append(out, s)
	}
	return out
}

// PrefixSource is the source of a given address or range.
func PrefixSource(name string, p netip.Prefix) Source {
	return Source{Name: name, From: []netip.Prefix{p.Masked()}}
}

// Input is the question: can the port be reached from each source?
type Input struct {
	Port  uint16
	Proto uint8 // TCP or UDP
	// Addr is the destination address asked about; invalid for whichever
	// address of this machine the socket takes.
	Addr netip.Addr
	// Iface is the interface packets arrive on; empty to follow the
	// routes back to each source.
	Iface     string
	Sources   []Source
	Listeners []Listener // this host's, any port: Analyze picks the port's
	Ruleset   *firewall.Ruleset
	Host      *firewall.Host
}

// Verdict is the answer for a source, or for part of it.
type Verdict string

const (
	Reachable   Verdict = "reachable"
	Unreachable Verdict = "unreachable"
	// Partial: reachable from part of the source's range only.
	Partial Verdict = "partial"
	// Unknown: some layer depends on something not known here.
	Unknown Verdict = "unknown"
)

// LayerVerdict is what one layer does to the packet.
type LayerVerdict string

const (
	Pass  LayerVerdict = "pass"
	Block LayerVerdict = "block"
	// Depends: the layer's answer is not certain (Detail says on what).
	Depends LayerVerdict = "unknown"
	// Skip: the layer is not on the packet's way (no NAT; a socket in
	// another namespace after a DNAT).
	Skip LayerVerdict = "skip"
)

// Layer names, in the order a packet meets them.
const (
	LayerRoute    = "route"
	LayerRPFilter = "rp_filter"
	LayerFirewall = "firewall"
	LayerNAT      = "nat"
	LayerSocket   = "socket"
)

// Layer is one layer's verdict.
type Layer struct {
	Layer   string       `json:"layer"`
	Verdict LayerVerdict `json:"verdict"`
	Detail  string       `json:"detail"`
	// Short is the gist of Detail in a few words, for a table's cell.
	Short string `json:"short,omitempty"`
	// Rule is the deciding rule for the firewall layer, the NAT rule for
	// the NAT layer.
	Rule *firewall.Step `json:"rule,omitempty"`
}

// Piece is part of a source's range that every layer treats alike.
type Piece struct {
	From    []netip.Prefix `json:"from"`
	Verdict Verdict        `json:"verdict"`
	// To is the destination the packet was sent to, before NAT.
	To netip.AddrPort `json:"to"`
	// InIface is the interface the packet arrives on.
	InIface string  `json:"in_iface"`
	Layers  []Layer `json:"layers"`
	// Firewall is the ruleset's evaluation: the deciding rule, the rules
	// met on the way, the NAT.
	Firewall firewall.Result `json:"firewall"`
	// Bypass is set when a DNAT sends the packet round a rule of the
	// input path that would have dropped it (Docker publishing a port
	// that ufw denies): that rule.
	Bypass *firewall.Step `json:"bypass,omitempty"`
	// Fixes are the changes that let it in (or, for a bypass, keep it
	// out), layer by layer; Fix lists all their options.
	Fixes []FixStep `json:"fixes,omitempty"`
	Fix   []string  `json:"fix,omitempty"`
}

// Answer is the verdict for one source.
type Answer struct {
	Source  Source  `json:"source"`
	Verdict Verdict `json:"verdict"`
	// Pieces are the parts of the source's range, each with its layers;
	// one when the whole range is treated alike.
	Pieces []Piece `json:"pieces"`
	// Fixes are every piece's, joined by layer; Fix lists their options
	// once each.
	Fixes []FixStep `json:"fixes"`
	Fix   []string  `json:"fix"`
	// Note says why a source has no pieces (no address of its family).
	Note string `json:"note,omitempty"`
	// Notes say what else was left out: a family no socket takes.
	Notes []string `json:"notes,omitempty"`
}

// Analyze answers in for each of its sources, in their order.
func Analyze(in Input) []Answer {
	if in.Host == nil {
		in.Host = &firewall.Host{}
	}
	if in.Ruleset == nil {
		in.Ruleset = &firewall.Ruleset{}
	}
	if in.Proto == 0 {
		in.Proto = TCP
	}
	out := make([]Answer, 0, len(in.Sources))
	for _, src := range in.Sources {
		out = append(out, analyzeSource(in, src))
	}
	return out
}

// Overall is the verdict for every source together: reachable only when
// reachable from each.
func Overall(as []Answer) Verdict {
	if len(as) == 0 {
		return Unknown
	}
	v := Reachable
	for _, a := range as {
		switch a.Verdict {
		case Unreachable, Partial:
			return a.Verdict
		case Unknown:
			v = Unknown
		}
	}
	return v
}

func analyzeSource(in Input, src Source) Answer {
	a := Answer{Source: src, Pieces: []Piece{}, Fix: []string{}, Fixes: []FixStep{}}
	loopback := src.Class == firewall.Loopback || (src.Class == "" && allLoopback(src.From))
	var skipped []string
	served := servedFamilies(in)
	for _, fam := range []int{4, 6} {
		if !served[fam] && served[10-fam] && !in.Addr.IsValid() {
			// Clients of this family use the other one: leave it out of
			// the verdict, and say so.
			if slices.ContainsFunc(src.From, func(p netip.Prefix) bool { return (fam == 4) == p.Addr().Unmap().Is4() }) {
				a.Notes = append(a.Notes, fmt.Sprintf("IPv%d clients left out: no socket takes IPv%d on %s port %d", fam, fam, ProtoName(in.Proto), in.Port))
			}
			continue
		}
		var from []netip.Prefix
		for _, p := range src.From {
			if (fam == 4) == p.Addr().Unmap().Is4() {
				from = append(from, p)
			}
		}
		if len(from) == 0 {
			continue
		}
		if in.Addr.IsValid() && (fam == 4) != in.Addr.Unmap().Is4() {
			continue
		}
		if loopback {
			a.Pieces = append(a.Pieces, analyzeGroup(in, src, from, "lo", fam, true)...)
			continue
		}
		groups := routeGroups(in, from)
		if len(groups) == 0 {
			skipped = append(skipped, fmt.Sprintf("IPv%d", fam))
		}
		for _, g := range groups {
			a.Pieces = append(a.Pieces, analyzeGroup(in, src, g.from, g.iface, fam, false)...)
		}
	}
	a.Pieces = mergePieces(a.Pieces)
	if len(a.Pieces) == 0 {
		// A class of clients with no address of this machine to connect
		// to reaches nothing here; a given address or range is another
		// matter (it may be this machine's own, or mistyped).
		a.Verdict = Unknown
		if src.Class != "" && !in.Addr.IsValid() {
			a.Verdict = Unreachable
		}
		a.Note = "no address of this machine in the source's address family"
		if len(skipped) > 0 {
			a.Note = "this machine has no " + strings.Join(skipped, " or ") + " address to reach"
		}
		if in.Addr.IsValid() {
			a.Note = fmt.Sprintf("the source has no address of %s's family", in.Addr)
		}
		return a
	}
	for _, p := range a.Pieces {
		a.Fixes = mergeFixes(a.Fixes, p.Fixes)
	}
	a.Fix = flatFixes(a.Fixes)
	a.Verdict = aggregate(a.Pieces)
	return a
}

// aggregate is the verdict for a source from its pieces' verdicts.
func aggregate(ps []Piece) Verdict {
	yes, no, unk := 0, 0, 0
	for _, p := range ps {
		switch p.Verdict {
		case Reachable:
			yes++
		case Unreachable:
			no++
		default:
			unk++
		}
	}
	switch {
	case len(ps) == 0 || unk > 0:
		return Unknown
	case no == 0:
		return Reachable
	case yes == 0:
		return Unreachable
	}
	return Partial
}

// servedFamilies says which address families (4, 6) the port's sockets
// take; both when none listens, so that the answer says so for each.
func servedFamilies(in Input) map[int]bool {
	out := map[int]bool{}
	listened := false
	for _, l := range in.Listeners {
		if l.Proto != in.Proto || l.Local.Port() != in.Port {
			continue
		}
		listened = true
		a := l.Local.Addr().Unmap()
		switch {
		case a.Is4():
			out[4] = true
		case a.IsUnspecified() && !l.V6Only:
			out[4], out[6] = true, true
		default:
			out[6] = true
		}
	}
	if !listened {
		out[4], out[6] = true, true
	}
	return out
}

func allLoopback(ps []netip.Prefix) bool {
	for _, p := range ps {
		if !p.Addr().Unmap().IsLoopback() {
			return false
		}
	}
	return len(ps) > 0
}

// routeGroup is part of a source range whose replies leave by one route.
type routeGroup struct {
	from  []netip.Prefix
	iface string // the interface packets from there arrive on
	route *firewall.Route
}

// routeGroups splits from by the route back to each part: packets from a
// part arrive on the interface its replies leave by (or on in.Iface).
func routeGroups(in Input, from []netip.Prefix) []routeGroup {
	var parts []netip.Prefix
	for _, p := range from {
		var inside []netip.Prefix
		for _, r := range in.Host.Routes {
			if r.Dst.Bits() > p.Bits() && p.Overlaps(r.Dst) && r.Dst.Addr().Is4() == p.Addr().Is4() {
				inside = append(inside, r.Dst)
			}
		}
		if len(inside) > maxSplit {
			parts = append(parts, p) // a full routing table: one route decides for the whole range
			continue
		}
		parts = append(parts, splitBy(p, inside)...)
	}
	var gs []routeGroup
	for _, p := range parts {
		r := lookupRoute(in.Host.Routes, p.Addr())
		iface := in.Iface
		if iface == "" && r != nil {
			iface = r.Iface
		}
		i := slices.IndexFunc(gs, func(g routeGroup) bool { return g.route == r && g.iface == iface })
		if i < 0 {
			gs = append(gs, routeGroup{iface: iface, route: r})
			i = len(gs) - 1
		}
		gs[i].from = append(gs[i].from, p)
	}
	return gs
}

// maxSplit bounds how many routes inside one source range split it.
const maxSplit = 256

// splitBy splits p into prefixes none of which strictly holds one of subs.
func splitBy(p netip.Prefix, subs []netip.Prefix) []netip.Prefix {
	inside := false
	for _, s := range subs {
		if s.Bits() > p.Bits() && p.Contains(s.Addr()) {
			inside = true
			break
		}
	}
	if !inside || p.Bits() >= p.Addr().BitLen() {
		return []netip.Prefix{p}
	}
	lo, hi := halves(p)
	return append(splitBy(lo, subs), splitBy(hi, subs)...)
}

// halves splits p into its two halves.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	bits := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), bits).Masked()
	b := lo.Addr().AsSlice()
	b[(bits-1)/8] |= 0x80 >> ((bits - 1) % 8)
	a, _ := netip.AddrFromSlice(b)
	return lo, netip.PrefixFrom(a, bits)
}

// lookupRoute finds the route a packet to a takes: the longest prefix of
// the unicast and unreachable kinds; nil when none leads there.
func lookupRoute(rs []firewall.Route, a netip.Addr) *firewall.Route {
	a = a.Unmap()
	var best *firewall.Route
	for i := range rs {
		r := &rs[i]
		switch r.Type {
		case "local", "broadcast", "multicast", "anycast":
			continue
		}
		if r.Dst.Addr().Is4() != a.Is4() || !r.Dst.Contains(a) {
			continue
		}
		if best == nil || r.Dst.Bits() > best.Dst.Bits() {
			best = r
		}
	}
	return best
}

// analyzeGroup evaluates the packets from one route group and builds a
// piece for each part the firewall treats alike.
func analyzeGroup(in Input, source Source, from []netip.Prefix, iface string, fam int, loopback bool) []Piece {
	dst, ok := destination(in, iface, fam, loopback)
	if !ok {
		return nil
	}
	pkt := firewall.Packet{Proto: in.Proto, Src: from[0].Addr(), Dst: dst.Addr(), SrcPort: 40000, DstPort: dst.Port(), InIface: iface}
	var out []Piece
	fps := firewall.EvaluateFrom(in.Ruleset, in.Host, pkt, from)
	if len(from) > 1 && len(from) <= maxRetry && slices.ContainsFunc(fps, overBudget) {
		// The evaluator gave up splitting the whole: one prefix at a time
		// each gets its whole budget of pieces, and mergePieces joins
		// what comes out alike. Not for the internet's hundred prefixes:
		// that would cost a hundred times the walks for an answer that is
		// rarely better.
		fps = fps[:0]
		for _, f := range from {
			fps = append(fps, firewall.EvaluateFrom(in.Ruleset, in.Host, pkt, []netip.Prefix{f})...)
		}
	}
	for _, fp := range fps {
		p := Piece{From: fp.From, To: dst, InIface: iface, Firewall: fp.Result}
		src := pkt.Src
		if len(fp.From) > 0 {
			src = fp.From[0].Addr()
		}
		if !loopback {
			p.Layers = append(p.Layers, routeLayer(in, src, dst, fp.Result), rpFilterLayer(in, src, iface))
		}
		p.Layers = append(p.Layers, firewallLayer(fp.Result), natLayer(in, fp.Result), socketLayer(in, dst, iface, loopback, fp.Result))
		if routingDrop(fp.Result) && !slices.ContainsFunc(p.Layers, func(l Layer) bool { return l.Verdict == Block }) {
			// The evaluator's route decision drops what reach's own
			// layers let through: its word stands, as a route layer.
			p.Layers = append(p.Layers, Layer{Layer: LayerRoute, Verdict: Block, Detail: fp.Result.Decider.Comment, Short: "route decision"})
		}
		if fp.Result.NAT != nil && fp.Result.Path == "forward" && fp.Result.Verdict == firewall.Accept {
			p.Bypass = bypass(in, firewall.Packet{Proto: pkt.Proto, Src: src, Dst: dst.Addr(), SrcPort: pkt.SrcPort, DstPort: dst.Port(), InIface: iface})
		}
		p.Verdict = pieceVerdict(p.Layers)
		p.Fixes = fixes(in, source, p, src)
		if len(p.Fixes) > 0 {
			p.Fix = flatFixes(p.Fixes)
		}
		out = append(out, p)
	}
	return out
}

// maxRetry bounds how many prefixes are evaluated one at a time when
// the evaluator runs out of pieces for them together.
const maxRetry = 16

// overBudget says whether the evaluator stopped splitting a range into
// pieces: its last piece is unknown for that reason alone.
func overBudget(p firewall.Piece) bool {
	return p.Result.Verdict == firewall.Unknown && slices.ContainsFunc(p.Result.DependsOn, func(d string) bool { return strings.Contains(d, "pieces") })
}

func pieceVerdict(ls []Layer) Verdict {
	v := Reachable
	for _, l := range ls {
		switch l.Verdict {
		case Block:
			return Unreachable
		case Depends:
			v = Unknown
		}
	}
	return v
}

// destination picks the address a client of the source would connect
// to: the one asked, else an address of this machine a listener takes
// (loopback first for a local client, the arrival interface's first
// for others), else the first of them.
func destination(in Input, iface string, fam int, loopback bool) (netip.AddrPort, bool) {
	if in.Addr.IsValid() {
		return netip.AddrPortFrom(in.Addr.Unmap(), in.Port), true
	}
	var cands []netip.Addr
	if loopback {
		if fam == 4 {
			cands = append(cands, netip.MustParseAddr("127.0.0.1"))
		} else {
			cands = append(cands, netip.IPv6Loopback())
		}
	}
	addrsOf := func(match func(firewall.Interface) bool) {
		for _, ifc := range in.Host.Interfaces {
			if !match(ifc) {
				continue
			}
			for _, p := range ifc.Addrs {
				a := p.Addr()
				if (fam == 4) == a.Is4() && !a.IsLoopback() && !slices.Contains(cands, a) && !(a.Is6() && a.IsLinkLocalUnicast()) {
					cands = append(cands, a)
				}
			}
		}
	}
	if !loopback {
		addrsOf(func(ifc firewall.Interface) bool { return ifc.Name == iface })
	}
	addrsOf(func(ifc firewall.Interface) bool { return ifc.Name != iface && ifc.Name != "lo" })
	if len(cands) == 0 {
		return netip.AddrPort{}, false
	}
	for _, a := range cands {
		for _, l := range in.Listeners {
			if l.Proto == in.Proto && l.Local.Port() == in.Port && takes(l, a, deviceOf(iface, loopback)) {
				return netip.AddrPortFrom(a, in.Port), true
			}
		}
	}
	return netip.AddrPortFrom(cands[0], in.Port), true
}

func deviceOf(iface string, loopback bool) string {
	if loopback {
		return "lo"
	}
	return iface
}

// takes reports whether listener l takes a packet for dst arriving on
// device dev.
func takes(l Listener, dst netip.Addr, dev string) bool {
	if l.Device != "" && l.Device != dev {
		return false
	}
	la, dst := l.Local.Addr().Unmap(), dst.Unmap()
	switch {
	case la == dst:
		return true
	case la.IsUnspecified() && la.Is4():
		return dst.Is4()
	case la.IsUnspecified():
		return dst.Is6() || !l.V6Only
	}
	return false
}

func routeLayer(in Input, src netip.Addr, dst netip.AddrPort, res firewall.Result) Layer {
	l := Layer{Layer: LayerRoute, Verdict: Pass}
	r := lookupRoute(in.Host.Routes, src)
	switch {
	case r == nil:
		return Layer{Layer: LayerRoute, Verdict: Block, Detail: fmt.Sprintf("no route back to %s: replies cannot leave", src), Short: "no route back"}
	case r.Type != "" && r.Type != "unicast":
		return Layer{Layer: LayerRoute, Verdict: Block, Detail: fmt.Sprintf("the route back to %s is %s %s: replies cannot leave", src, r.Type, r.Dst), Short: r.Type + " route back"}
	case r.Gateway.IsValid():
		l.Detail = fmt.Sprintf("replies leave by %s via %s", r.Iface, r.Gateway)
	default:
		l.Detail = fmt.Sprintf("replies leave by %s (%s)", r.Iface, r.Dst)
	}
	switch {
	case dst.Addr().Unmap().IsLoopback():
		// Linux drops a packet from outside to 127.0.0.0/8 or ::1 as a
		// martian (net.ipv4.conf.*.route_localnet is 0 by default).
		return Layer{Layer: LayerRoute, Verdict: Block, Detail: fmt.Sprintf("packets from outside to %s are dropped as martians: loopback addresses are for this machine's own clients", dst.Addr()),
			Short: "loopback address"}
	case res.Path == "none":
		return Layer{Layer: LayerRoute, Verdict: Block, Detail: fmt.Sprintf("no route leads to %s", res.To.Addr()), Short: "no route to " + res.To.Addr().String()}
	case res.NAT == nil && !isLocal(in.Host, dst.Addr()) && res.Path != "input":
		return Layer{Layer: LayerRoute, Verdict: Block, Detail: fmt.Sprintf("%s is not an address of this machine", dst.Addr()), Short: "not an address here"}
	}
	if in.Host.PolicyRouting {
		l.Verdict = Depends
		l.Detail += "; ip rules beyond the default ones may route otherwise"
	}
	return l
}

// isLocal reports whether a is an address of one of h's interfaces, or
// has a local route.
func isLocal(h *firewall.Host, a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() {
		return true
	}
	for _, ifc := range h.Interfaces {
		for _, p := range ifc.Addrs {
			if p.Addr() == a {
				return true
			}
		}
	}
	for _, r := range h.Routes {
		if r.Type == "local" && r.Dst.Contains(a) {
			return true
		}
	}
	return false
}

func rpFilterLayer(in Input, src netip.Addr, iface string) Layer {
	l := Layer{Layer: LayerRPFilter, Verdict: Pass}
	if src.Is6() {
		l.Verdict, l.Detail = Skip, "IPv6 has no rp_filter"
		return l
	}
	mode := in.Host.RPFilter[iface]
	r := lookupRoute(in.Host.Routes, src)
	switch mode {
	case 0:
		l.Detail = fmt.Sprintf("off on %s", iface)
	case 1:
		if r == nil || r.Iface != iface || (r.Type != "" && r.Type != "unicast") {
			out := "no route"
			if r != nil {
				out = "the route by " + r.Iface
			}
			l.Verdict = Block
			l.Detail = fmt.Sprintf("strict (1) on %s: replies to %s would take %s, not %s, so the kernel drops the packet", iface, src, out, iface)
			l.Short = "strict rp_filter on " + iface
		} else {
			l.Detail = fmt.Sprintf("strict (1) on %s: replies leave by the same interface", iface)
		}
	default:
		if r == nil || (r.Type != "" && r.Type != "unicast") {
			l.Verdict = Block
			l.Detail = fmt.Sprintf("loose (2) on %s: no route back to %s, so the kernel drops the packet", iface, src)
			l.Short = "no route back"
		} else {
			l.Detail = fmt.Sprintf("loose (2) on %s: a route back exists", iface)
		}
	}
	return l
}

// routingDrop says whether the evaluator dropped the packet at the route
// decision (no route, rp_filter, ip_forward off) rather than by a rule.
func routingDrop(res firewall.Result) bool {
	return res.Decider != nil && res.Decider.Hook == "routing" && res.Decider.Rule == nil && res.Decider.Table == ""
}

func firewallLayer(res firewall.Result) Layer {
	l := Layer{Layer: LayerFirewall, Rule: res.Decider}
	if routingDrop(res) {
		// No rule decided: the route, rp_filter and NAT layers say why;
		// the rules met before it let the packet on.
		return Layer{Layer: LayerFirewall, Verdict: Skip, Detail: "not reached: the kernel drops the packet at the route decision (" + res.Decider.Comment + ")",
			Short: "dropped at the route decision"}
	}
	switch res.Verdict {
	case firewall.Accept:
		l.Verdict = Pass
		l.Detail = "accepted"
		if res.Decider != nil {
			l.Detail += " by " + StepString(*res.Decider)
		}
		if len(res.Steps) == 0 && res.Decider == nil {
			l.Detail = "no rule stops it"
		}
	case firewall.Drop, firewall.Reject:
		l.Verdict = Block
		l.Detail = string(res.Verdict) + "ped"
		if res.Verdict == firewall.Reject {
			l.Detail = "rejected"
		}
		if res.Decider != nil {
			l.Detail += " by " + StepString(*res.Decider)
		}
	default:
		l.Verdict = Depends
		l.Detail = "depends on " + strings.Join(res.DependsOn, "; ")
		if len(res.DependsOn) == 0 {
			l.Detail = "not settled by the ruleset"
		}
	}
	return l
}

// StepString names a rule as nft(8) does, "inet filter input handle 12",
// with its comment and owner.
func StepString(s firewall.Step) string {
	var b strings.Builder
	fam := firewall.FamilyName(s.Family)
	if s.Source == firewall.Legacy {
		fam = "legacy " + fam
	}
	fmt.Fprintf(&b, "%s %s %s", fam, s.Table, s.Chain)
	switch {
	case s.Rule == nil && s.Handle == 0 && s.Position == 0:
		b.WriteString(" policy")
	case s.Handle != 0:
		fmt.Fprintf(&b, " handle %d", s.Handle)
	case s.Position != 0:
		fmt.Fprintf(&b, " rule %d", s.Position)
	}
	if s.Comment != "" {
		fmt.Fprintf(&b, " %q", s.Comment)
	}
	if o := OwnerString(s.Owner); o != "" {
		fmt.Fprintf(&b, " (%s)", o)
	}
	return b.String()
}

// OwnerString names a rule's owner: "ufw: allow 22/tcp", "by hand".
func OwnerString(o firewall.Owner) string {
	switch {
	case o.Name == "":
		return ""
	case o.Name == "hand":
		return "written by hand"
	case o.Detail != "":
		return o.Name + ": " + o.Detail
	}
	return o.Name
}

func natLayer(in Input, res firewall.Result) Layer {
	if res.NAT == nil {
		return Layer{Layer: LayerNAT, Verdict: Skip, Detail: "no NAT"}
	}
	n := res.NAT
	l := Layer{Layer: LayerNAT, Verdict: Pass, Rule: &n.Step,
		Detail: fmt.Sprintf("%s → %s by %s", n.From, n.To, StepString(n.Step)),
		Short:  fmt.Sprintf("DNAT to %s by %s", n.To, StepString(n.Step))}
	if res.Path == "forward" {
		on, name := in.Host.Forward4, "net.ipv4.ip_forward"
		if n.To.Addr().Is6() {
			on, name = in.Host.Forward6, "net.ipv6.conf.all.forwarding"
		}
		if !on {
			l.Verdict = Block
			l.Detail += fmt.Sprintf("; %s is 0, so the kernel does not forward it", name)
			l.Short = name + " is 0"
		} else {
			l.Detail += fmt.Sprintf("; forwarded (%s is 1)", name)
			if res.OutIface != "" {
				l.Detail += " out of " + res.OutIface
			}
		}
	}
	return l
}

func socketLayer(in Input, dst netip.AddrPort, iface string, loopback bool, res firewall.Result) Layer {
	l := Layer{Layer: LayerSocket}
	to := dst
	if res.NAT != nil && res.To.IsValid() {
		to = res.To
	}
	if res.Path == "forward" {
		l.Verdict, l.Detail = Skip, fmt.Sprintf("forwarded to %s, another machine or namespace (a container): its socket is not seen from here", to)
		return l
	}
	var cands []Listener
	for _, s := range in.Listeners {
		if s.Proto == in.Proto && s.Local.Port() == to.Port() {
			cands = append(cands, s)
		}
	}
	if len(cands) == 0 {
		l.Verdict, l.Detail, l.Short = Block, fmt.Sprintf("nothing listens on %s port %d", ProtoName(in.Proto), to.Port()), "nothing listens"
		return l
	}
	dev := deviceOf(iface, loopback)
	for _, s := range cands {
		if takes(s, to.Addr(), dev) {
			l.Verdict, l.Detail = Pass, fmt.Sprintf("%s on %s", holder(s), listenString(s))
			return l
		}
	}
	l.Verdict = Block
	var why, short []string
	for _, s := range cands {
		la := s.Local.Addr().Unmap()
		switch {
		case s.Device != "" && s.Device != dev:
			why = append(why, fmt.Sprintf("%s on %s is bound to device %s (SO_BINDTODEVICE): it takes no packet arriving on %s", holder(s), listenString(s), s.Device, dev))
			short = append(short, "bound to device "+s.Device)
		case la.IsLoopback():
			why = append(why, fmt.Sprintf("%s listens on %s only: not reachable from outside this machine", holder(s), listenString(s)))
			short = append(short, "bound to "+la.String())
		case la.IsUnspecified() && la.Is6() && s.V6Only:
			why = append(why, fmt.Sprintf("%s listens on %s with IPV6_V6ONLY: it takes no IPv4 client", holder(s), listenString(s)))
			short = append(short, "[::] with IPV6_V6ONLY")
		case la.IsUnspecified():
			why = append(why, fmt.Sprintf("%s listens on %s: IPv%d only", holder(s), listenString(s), map[bool]int{true: 4, false: 6}[la.Is4()]))
			short = append(short, fmt.Sprintf("IPv%d only", map[bool]int{true: 4, false: 6}[la.Is4()]))
		default:
			why = append(why, fmt.Sprintf("%s listens on %s only, not on %s", holder(s), listenString(s), to.Addr()))
			short = append(short, "bound to "+la.String())
		}
	}
	l.Detail = strings.Join(why, "; ")
	slices.Sort(short)
	l.Short = strings.Join(slices.Compact(short), ", ")
	return l
}

func holder(l Listener) string {
	if l.Holder != "" {
		return l.Holder
	}
	return "a socket"
}

func listenString(l Listener) string {
	return l.Local.String()
}

// bypass evaluates pkt again as if no NAT chain existed: when the input
// path would then drop it, that rule is what the DNAT sends it round.
func bypass(in Input, pkt firewall.Packet) *firewall.Step {
	res := firewall.Evaluate(withoutNAT(in.Ruleset), in.Host, pkt)
	if (res.Verdict == firewall.Drop || res.Verdict == firewall.Reject) && res.Decider != nil && res.Path == "input" {
		return res.Decider
	}
	return nil
}

// withoutNAT is a shallow copy of rs without its NAT base chains.
func withoutNAT(rs *firewall.Ruleset) *firewall.Ruleset {
	out := &firewall.Ruleset{Incomplete: rs.Incomplete}
	for _, t := range rs.Tables {
		c := &firewall.Table{Family: t.Family, Name: t.Name, Source: t.Source, Dormant: t.Dormant, Sets: t.Sets, Objects: t.Objects}
		for _, ch := range t.Chains {
			if ch.Hook != nil && ch.Hook.Type == "nat" {
				continue
			}
			c.Chains = append(c.Chains, ch)
		}
		out.Tables = append(out.Tables, c)
	}
	return out
}
