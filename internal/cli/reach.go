package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/containers"
	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/reach"
	"github.com/portctl/portctl/sockets"
)

// reachOptions are the flags and argument of `portctl reach`.
type reachOptions struct {
	Port    uint16
	Addr    netip.Addr // when the argument was ADDR:PORT; else invalid
	Proto   uint8
	From    []fromSpec // empty: every class
	Iface   string
	NetNS   string
	JSON    bool
	Trace   bool
	Timeout time.Duration // how long --trace waits
}

// fromSpec is one --from value: a class, or an address or range.
type fromSpec struct {
	Name   string
	Class  firewall.Class
	Prefix netip.Prefix
}

const fromAccepted = "want an address, a range such as 10.0.0.0/8, or loopback, lan or internet"

// parseFrom parses the --from values; each may hold several, split by
// commas.
func parseFrom(vals []string) ([]fromSpec, error) {
	var out []fromSpec
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			t := strings.TrimSpace(s)
			switch c := firewall.Class(strings.ToLower(t)); c {
			case firewall.Loopback, firewall.LAN, firewall.Internet:
				out = append(out, fromSpec{Name: string(c), Class: c})
				continue
			}
			if a, err := netip.ParseAddr(t); err == nil && a.Zone() == "" {
				a = a.Unmap()
				out = append(out, fromSpec{Name: a.String(), Prefix: netip.PrefixFrom(a, a.BitLen())})
				continue
			}
			if p, err := netip.ParsePrefix(t); err == nil {
				out = append(out, fromSpec{Name: p.Masked().String(), Prefix: p.Masked()})
				continue
			}
			return nil, usageErrorf("--from %q: %s", s, fromAccepted)
		}
	}
	return out, nil
}

// parseReachProto parses --proto for reach and firewall: one protocol.
func parseReachProto(s string) (uint8, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "tcp":
		return reach.TCP, nil
	case "udp":
		return reach.UDP, nil
	}
	return 0, usageErrorf("--proto %q: want tcp or udp", s)
}

func newReachCmd(streams *term.IO, runF func(context.Context, reachOptions) error) *cobra.Command {
	var (
		opts  reachOptions
		from  []string
		proto string
	)
	cmd := &cobra.Command{
		Use:   "reach PORT|ADDR:PORT",
		Short: "Can a port be reached from loopback, the LAN, the internet? What decides",
		Long: `Say whether a port of this machine can be reached, for each source asked
(the internet, the LAN and loopback by default), layer by layer: the route
back to the source, rp_filter, the firewall (nftables, iptables-nft and
legacy iptables tables, with Docker's NAT), and the listening socket's
bind address. It names the rule that decides, who wrote it (ufw,
firewalld, Docker, kube-proxy, portctl, by hand), and the fix to paste.

Reading the ruleset needs root or CAP_NET_ADMIN. Nothing is sent and
nothing changed: the answer comes from the kernel's rules. --trace
confirms it live: for its duration it adds two marking chains to
portctl's own table (inet portctl), makes a real connection from this
machine (and, for other sources, waits --timeout for clients outside),
and shows the rules the kernel's trace saw.

Exit status: 0 when reachable from every source asked, 1 when not (or
not certainly) from one of them, 3 when the ruleset cannot be read.`,
		Example: `  portctl reach 5432
  portctl reach 6379 --from internet
  portctl reach 192.0.2.10:443 --from 10.0.0.0/8 --json
  portctl reach 53 --proto udp --from lan
  portctl reach 8080 --netns web --trace`,
		Args: exactArgs(1, "a port, a service name or ADDR:PORT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Port, opts.Addr, err = parsePortArg(args[0]); err != nil {
				return err
			}
			if opts.Proto, err = parseReachProto(proto); err != nil {
				return err
			}
			if opts.From, err = parseFrom(from); err != nil {
				return err
			}
			if opts.Timeout <= 0 {
				return usageErrorf("--timeout %s: want a duration above zero, such as 2s", opts.Timeout)
			}
			if opts.NetNS, err = checkNetNS(opts.NetNS); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runReach(cmd.Context(), streams, opts)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&from, "from", nil, "the source: loopback, lan, internet, an address or a CIDR (repeat or join with commas; default the three classes)")
	f.StringVarP(&proto, "proto", "P", "tcp", "tcp or udp")
	f.StringVar(&opts.Iface, "iface", "", "the interface packets arrive on (default: the one the route back to each source leaves by)")
	f.StringVar(&opts.NetNS, "netns", "", "look in this network namespace (a name under /run/netns, or a path)")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	f.BoolVar(&opts.Trace, "trace", false, "confirm it live: connect from this machine and print the rules the kernel's trace shows")
	f.DurationVar(&opts.Timeout, "timeout", 2*time.Second, "how long --trace waits for the connection and the trace")
	return cmd
}

// reachResult is the JSON document `reach --json` prints. Its field names
// are a stable contract.
type reachResult struct {
	Port      uint16            `json:"port"`
	Protocol  string            `json:"protocol"`
	Address   string            `json:"address,omitempty"`
	NetNS     string            `json:"netns,omitempty"`
	Reachable bool              `json:"reachable"` // from every source asked
	Verdict   reach.Verdict     `json:"verdict"`
	Listeners []reach.Listener  `json:"listeners"`
	Answers   []reach.Answer    `json:"answers"`
	Unknown   []string          `json:"incomplete,omitempty"` // parts of the ruleset that could not be read
	Trace     *reachTraceResult `json:"trace,omitempty"`
}

// model is what reach and firewall need of a namespace: its ruleset, its
// host, its listeners.
type model struct {
	rs        *firewall.Ruleset
	host      *firewall.Host
	listeners []reach.Listener
}

// readModel reads the ruleset, the host and the listening sockets of a
// namespace. Errors reading the ruleset come back with the advice the
// user needs.
func readModel(ctx context.Context, netns string) (*model, error) {
	fopts := firewall.Options{NetNS: netns}
	rs, err := firewall.Read(ctx, fopts)
	if err != nil {
		return nil, firewallError(err)
	}
	host, err := firewall.ReadHost(fopts)
	if err != nil {
		return nil, firewallError(err)
	}
	attribute(ctx, rs, netns)
	t, err := sockets.List(ctx, sockets.Query{Protos: sockets.TCP | sockets.UDP, Families: sockets.AllFamilies,
		States: sockets.StatesOf(sockets.Listen), UDPStates: sockets.StatesOf(sockets.Close), Processes: true, NetNS: netns})
	if err != nil {
		return nil, err
	}
	return &model{rs: rs, host: host, listeners: listenersOf(t.Sockets, host)}, nil
}

// firewallError turns the firewall package's errors into one line with
// what to do.
func firewallError(err error) error {
	switch {
	case errors.Is(err, firewall.ErrUnsupported):
		return fmt.Errorf("firewall: not supported on this OS")
	case errors.Is(err, firewall.ErrPermission), errors.Is(err, os.ErrPermission):
		// The wrapped chain says the same thrice: one line with what to do.
		return needCapability("reading the firewall ruleset", "CAP_NET_ADMIN", "", nil)
	}
	return fmt.Errorf("cannot read the firewall ruleset: %w", err)
}

// listenersOf turns the socket table's listening sockets into reach's
// listeners, named by their holders.
func listenersOf(socks []sockets.Socket, host *firewall.Host) []reach.Listener {
	out := make([]reach.Listener, 0, len(socks))
	for _, s := range socks {
		if !s.Listening() {
			continue
		}
		l := reach.Listener{Proto: reach.TCP, Local: s.Local, V6Only: s.V6Only, Holder: processCell(s.Processes)}
		if s.Proto == sockets.UDP {
			l.Proto = reach.UDP
		}
		if l.Holder == "" || l.Holder == "-" {
			l.Holder = ""
		}
		// A link-local address carries its interface as the zone: the
		// socket takes packets from that link only.
		if z := s.Local.Addr().Zone(); z != "" {
			l.Device = ifaceName(host, z)
			l.Local = netip.AddrPortFrom(s.Local.Addr().WithZone(""), s.Local.Port())
		}
		out = append(out, l)
	}
	return out
}

// ifaceName names the interface of index idx (a zone as sockets writes
// it), or returns idx when it is not known.
func ifaceName(h *firewall.Host, idx string) string {
	for _, ifc := range h.Interfaces {
		if fmt.Sprint(ifc.Index) == idx {
			return ifc.Name
		}
	}
	return idx
}

// sourcesOf builds the sources to ask from the --from values.
func sourcesOf(from []fromSpec, host *firewall.Host) []reach.Source {
	if len(from) == 0 {
		from = []fromSpec{{Name: "internet", Class: firewall.Internet}, {Name: "lan", Class: firewall.LAN}, {Name: "loopback", Class: firewall.Loopback}}
	}
	var out []reach.Source
	for _, f := range from {
		if f.Class != "" {
			out = append(out, reach.ClassSource(f.Class, host))
		} else {
			out = append(out, reach.PrefixSource(f.Name, f.Prefix))
		}
	}
	return out
}

func runReach(ctx context.Context, streams *term.IO, opts reachOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	m, err := readModel(ctx, opts.NetNS)
	if err != nil {
		return err
	}
	if opts.Iface != "" && !slices.ContainsFunc(m.host.Interfaces, func(i firewall.Interface) bool { return i.Name == opts.Iface }) {
		var names []string
		for _, i := range m.host.Interfaces {
			names = append(names, i.Name)
		}
		return usageErrorf("--iface %q: no such interface here (want one of %s)", opts.Iface, strings.Join(names, ", "))
	}
	in := reach.Input{Port: opts.Port, Proto: opts.Proto, Addr: opts.Addr, Iface: opts.Iface,
		Sources: sourcesOf(opts.From, m.host), Listeners: m.listeners, Ruleset: m.rs, Host: m.host}
	answers := reach.Analyze(in)
	res := reachResult{Port: opts.Port, Protocol: reach.ProtoName(opts.Proto), NetNS: opts.NetNS,
		Verdict: reach.Overall(answers), Answers: answers, Unknown: m.rs.Incomplete, Listeners: []reach.Listener{}}
	res.Reachable = res.Verdict == reach.Reachable
	if opts.Addr.IsValid() {
		res.Address = opts.Addr.String()
	}
	for _, l := range m.listeners {
		if l.Proto == opts.Proto && l.Local.Port() == opts.Port {
			res.Listeners = append(res.Listeners, l)
		}
	}
	if opts.Trace {
		tr, err := runReachTrace(ctx, streams, opts, in, answers)
		if err != nil {
			return err
		}
		res.Trace = tr
	}
	if opts.JSON {
		if err := writeJSON(streams.Out, res); err != nil {
			return err
		}
	} else {
		printReach(streams, res)
	}
	if !res.Reachable {
		return negativef("")
	}
	return nil
}

// verdictText colours a verdict for people; the word carries the meaning.
func verdictText(st term.Style, v reach.Verdict) string {
	switch v {
	case reach.Reachable:
		return st.Green("reachable")
	case reach.Unreachable:
		return st.Red("not reachable")
	case reach.Partial:
		return st.Yellow("reachable from part of it")
	}
	return st.Yellow("unknown")
}

// layerText is a layer's verdict for people.
func layerText(st term.Style, v reach.LayerVerdict) string {
	switch v {
	case reach.Pass:
		return st.Green("ok")
	case reach.Block:
		return st.Red("blocks")
	case reach.Skip:
		return st.Dim("—")
	}
	return st.Yellow("unknown")
}

func printReach(streams *term.IO, res reachResult) {
	w, st := streams.Out, streams.Style()
	target := fmt.Sprintf("Port %d/%s", res.Port, res.Protocol)
	if res.Address != "" {
		target = fmt.Sprintf("%s/%s", netip.AddrPortFrom(netip.MustParseAddr(res.Address), res.Port), res.Protocol)
	}
	fmt.Fprintf(w, "%s", st.Bold(target))
	if res.NetNS != "" {
		fmt.Fprintf(w, " in network namespace %s", strings.TrimPrefix(res.NetNS, "/run/netns/"))
	}
	switch len(res.Listeners) {
	case 0:
		fmt.Fprintf(w, ": nothing listens on it here.\n")
	default:
		var ls []string
		for _, l := range res.Listeners {
			if l.Holder != "" {
				ls = append(ls, l.Holder+" listens on "+l.Local.String())
			} else {
				ls = append(ls, "a socket listens on "+l.Local.String()+" (its process is not visible here)")
			}
		}
		fmt.Fprintf(w, ": %s.\n", strings.Join(ls, "; "))
	}
	for _, a := range res.Answers {
		fmt.Fprintln(w)
		name := a.Source.Name
		if a.Source.Class != "" {
			name = "from the " + map[firewall.Class]string{firewall.Internet: "internet", firewall.LAN: "LAN", firewall.Loopback: "loopback (this machine)"}[a.Source.Class]
		} else {
			name = "from " + name
		}
		fmt.Fprintf(w, "%s: %s\n", st.Bold(name), verdictText(st, a.Verdict))
		if a.Note != "" {
			fmt.Fprintf(w, "  %s\n", a.Note)
		}
		for _, n := range a.Notes {
			fmt.Fprintf(w, "  %s\n", st.Dim(n))
		}
		groups := pieceGroups(a.Pieces)
		for _, g := range groups {
			p := g[0]
			if len(a.Pieces) > 1 || a.Source.Class == firewall.LAN {
				var from []netip.Prefix
				for _, q := range g {
					from = append(from, q.From...)
				}
				fmt.Fprintf(w, "  %s %s: %s\n", st.Dim("from"), prefixList(from), verdictText(st, p.Verdict))
			}
			t := term.NewTable().Indent("    ")
			to := fmt.Sprintf("%s, arriving on %s", p.To, p.InIface)
			if len(g) > 1 {
				to += fmt.Sprintf(" (and %d more ranges alike, each by its own interface: --json lists them)", len(g)-1)
			}
			t.Row(st.Dim("to"), "", to)
			for _, l := range p.Layers {
				t.Row(l.Layer, layerText(st, l.Verdict), l.Detail)
			}
			if p.Bypass != nil {
				t.Row(st.Bold("bypass"), st.Red("!"), "the DNAT sends it round "+reach.StepString(*p.Bypass)+
					", which drops it on the input path: that deny does not protect this port")
			}
			t.Render(w, streams.Width(), st)
		}
		printFixes(streams, a.Fixes)
	}
	if len(res.Unknown) > 0 {
		fmt.Fprintf(w, "\n%s could not be read: the verdicts depend on them.\n", strings.Join(res.Unknown, ", "))
	}
	if res.Trace != nil {
		printReachTrace(streams, res.Trace)
	}
}

// pieceGroups groups pieces whose layers give the same verdicts, with the
// same deciding rule: ranges that differ only by the interface they
// arrive on read as one in the text.
func pieceGroups(ps []reach.Piece) [][]reach.Piece {
	key := func(p reach.Piece) string {
		var b strings.Builder
		fmt.Fprintf(&b, "%s|%v|", p.Verdict, p.Bypass != nil)
		for _, l := range p.Layers {
			fmt.Fprintf(&b, "%s=%s", l.Layer, l.Verdict)
			if l.Rule != nil {
				fmt.Fprintf(&b, "@%s/%s/%s/%d", l.Rule.Table, l.Rule.Chain, l.Rule.Action, l.Rule.Handle)
			}
			if l.Layer == reach.LayerSocket || l.Layer == reach.LayerFirewall {
				b.WriteString(":" + l.Short + ":" + l.Detail)
			}
			b.WriteString("|")
		}
		return b.String()
	}
	var out [][]reach.Piece
	idx := map[string]int{}
	for _, p := range ps {
		k := key(p)
		if i, ok := idx[k]; ok {
			out[i] = append(out[i], p)
			continue
		}
		idx[k] = len(out)
		out = append(out, []reach.Piece{p})
	}
	return out
}

// printFixes writes what to change, layer by layer: every step is needed,
// any one option of a step does it. What lets the port in and what keeps
// it closed as a deny intends (a DNAT that goes round it) are apart.
func printFixes(streams *term.IO, steps []reach.FixStep) {
	var open, closed []reach.FixStep
	for _, s := range steps {
		if s.Close {
			closed = append(closed, s)
		} else {
			open = append(open, s)
		}
	}
	printFixSteps(streams, "to reach it", open)
	printFixSteps(streams, "to keep it closed, as the deny it goes round intends", closed)
}

func printFixSteps(streams *term.IO, head string, steps []reach.FixStep) {
	w, st := streams.Out, streams.Style()
	if len(steps) == 0 {
		return
	}
	if len(steps) > 1 {
		head += ", change each"
	}
	fmt.Fprintf(w, "  %s:\n", st.Cyan(head))
	for _, s := range steps {
		for i, o := range s.Options {
			label := s.Layer + ":"
			if i > 0 {
				label = "or:"
			}
			fmt.Fprintf(w, "    %-10s %s\n", label, o)
		}
	}
}

// prefixList writes prefixes for people, shortening long lists.
func prefixList(ps []netip.Prefix) string {
	var s []string
	for i, p := range ps {
		if i == 4 {
			s = append(s, fmt.Sprintf("and %d more", len(ps)-4))
			break
		}
		if p.IsSingleIP() {
			s = append(s, p.Addr().String())
		} else {
			s = append(s, p.String())
		}
	}
	return strings.Join(s, ", ")
}

// attribute names who wrote each rule, with what the rules alone do not
// tell: ufw's rules files, and the containers' names from their engines
// (silently without: the owners stay named by their chains).
func attribute(ctx context.Context, rs *firewall.Ruleset, netns string) {
	var h firewall.OwnerHints
	// ufw's files here describe this namespace's rules only: another
	// namespace's ufw keeps its own.
	for _, f := range []string{"/etc/ufw/user.rules", "/etc/ufw/user6.rules"} {
		if b, err := os.ReadFile(f); err == nil && netns == "" {
			h.UFW = append(h.UFW, firewall.ParseUFWRules(string(b))...)
			h.UFWRead = true
		}
	}
	if cs, err := containers.List(ctx, engines()); err == nil {
		h.Containers = map[netip.AddrPort]string{}
		for _, c := range cs {
			for _, a := range c.Addrs {
				h.Containers[netip.AddrPortFrom(a, 0)] = c.Name
				for _, p := range c.Ports {
					h.Containers[netip.AddrPortFrom(a, p.Container)] = c.Name
				}
			}
		}
	}
	firewall.Attribute(rs, h)
}

// reachTraceResult is what --trace saw.
type reachTraceResult struct {
	// Attempt is the client connection --trace made, from loopback.
	Attempt string `json:"attempt,omitempty"`
	// Outcome is what became of it: connected, refused, timed out, sent.
	Outcome string `json:"outcome,omitempty"`
	// Packets are the traced packets, each with the kernel's verdict and
	// the rules it met.
	Packets []tracePacket `json:"packets"`
	// Note says what the trace could not do by itself.
	Note string `json:"note,omitempty"`
}

// tracePacket is one traced packet.
type tracePacket struct {
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	IIF     string `json:"iif,omitempty"`
	Verdict string `json:"verdict"`
	// Count is how many packets took this same way: a SYN and its
	// retransmissions.
	Count   int             `json:"count"`
	Decider *firewall.Step  `json:"decider,omitempty"`
	Rules   []firewall.Step `json:"rules"`
}

// runReachTrace records the kernel's nftables trace for the port while a
// client on this machine connects (over loopback, or to the address
// asked), and, when other sources are asked, while clients outside do,
// until the timeout.
func runReachTrace(ctx context.Context, streams *term.IO, opts reachOptions, in reach.Input, answers []reach.Answer) (*reachTraceResult, error) {
	fopts := firewall.Options{NetNS: opts.NetNS}
	tr, err := firewall.StartTrace(ctx, fopts, firewall.TraceFilter{Proto: opts.Proto, DstPort: opts.Port, SYN: true}, nil)
	if err != nil {
		if errors.Is(err, firewall.ErrUnsupported) {
			return nil, fmt.Errorf("--trace: not supported on this OS")
		}
		return nil, fmt.Errorf("--trace: %w", firewallWriteError(err))
	}
	res := &reachTraceResult{Packets: []tracePacket{}}
	local, outside := false, []string{}
	for _, s := range in.Sources {
		if s.Class == firewall.Loopback || (s.Class == "" && slices.ContainsFunc(s.From, func(p netip.Prefix) bool { return p.Addr().IsLoopback() })) {
			local = true
		} else {
			outside = append(outside, s.Name)
		}
	}
	if local || opts.Addr.IsValid() {
		dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), opts.Port)
		if opts.Addr.IsValid() {
			dst = netip.AddrPortFrom(opts.Addr, opts.Port)
		}
		res.Attempt = fmt.Sprintf("%s connection from this machine to %s", reach.ProtoName(opts.Proto), dst)
		res.Outcome = attempt(opts, dst)
	}
	if len(outside) > 0 {
		// Where a client outside would connect to: the address the
		// analysis sent its packets to.
		to := fmt.Sprintf("ADDR:%d", opts.Port)
	find:
		for _, a := range answers {
			for _, p := range a.Pieces {
				if p.InIface != "lo" && p.To.IsValid() {
					to = p.To.String()
					break find
				}
			}
		}
		res.Note = fmt.Sprintf("packets from %s must come from outside: the trace listened %s for them (connect from there meanwhile: 'portctl check %s')",
			strings.Join(outside, ", "), opts.Timeout, to)
		fmt.Fprintf(streams.Err, "portctl: tracing %s port %d for %s: connect from %s now ('portctl check %s' there)\n", reach.ProtoName(opts.Proto), opts.Port, opts.Timeout, strings.Join(outside, ", "), to)
		select {
		case <-time.After(opts.Timeout):
		case <-ctx.Done():
		}
	}
	events, err := tr.Stop()
	if err != nil && !errors.Is(err, firewall.ErrTraceOverrun) {
		return nil, fmt.Errorf("--trace: %w", err)
	}
	for _, d := range firewall.TraceDecisions(events) {
		p := tracePacket{Verdict: string(d.Verdict), Rules: []firewall.Step{}, Count: 1}
		for _, e := range d.Events {
			if e.Packet && p.From == "" {
				p.From = netip.AddrPortFrom(e.Src, e.SrcPort).String()
				p.To = netip.AddrPortFrom(e.Dst, e.DstPort).String()
				p.IIF = e.IIF
			}
			p.Rules = append(p.Rules, traceStep(in.Ruleset, e))
		}
		if d.Decider != nil {
			s := traceStep(in.Ruleset, *d.Decider)
			p.Decider = &s
		}
		if n := len(res.Packets); n > 0 && sameTrace(res.Packets[n-1], p) {
			res.Packets[n-1].Count++
			continue
		}
		res.Packets = append(res.Packets, p)
	}
	return res, nil
}

// sameTrace says whether two traced packets are of one connection and
// took the same way.
func sameTrace(a, b tracePacket) bool {
	if a.From != b.From || a.To != b.To || a.Verdict != b.Verdict || len(a.Rules) != len(b.Rules) {
		return false
	}
	for i := range a.Rules {
		if a.Rules[i].Table != b.Rules[i].Table || a.Rules[i].Chain != b.Rules[i].Chain || a.Rules[i].Handle != b.Rules[i].Handle || a.Rules[i].Action != b.Rules[i].Action {
			return false
		}
	}
	return true
}

// attempt makes one client attempt to dst and says what became of it.
func attempt(opts reachOptions, dst netip.AddrPort) string {
	network := "tcp"
	if opts.Proto == reach.UDP {
		network = "udp"
	}
	c, err := dialIn(opts.NetNS, network, dst.String(), opts.Timeout)
	switch {
	case err == nil && network == "udp":
		c.Write([]byte{0})
		c.Close()
		return "sent (UDP says nothing back unless the port is closed)"
	case err == nil:
		c.Close()
		return "connected"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused (nothing listens, or a reject rule)"
	case errors.Is(err, os.ErrDeadlineExceeded) || strings.Contains(err.Error(), "timeout"):
		return fmt.Sprintf("timed out after %s (a drop rule, or no route)", opts.Timeout)
	}
	return "failed: " + err.Error()
}

// traceStep names a trace event as a step, with the rule's comment and
// owner from the ruleset read before.
func traceStep(rs *firewall.Ruleset, e firewall.TraceEvent) firewall.Step {
	s := firewall.Step{Family: e.Family, Table: e.Table, Chain: e.Chain, Handle: e.Handle, Action: e.Verdict, Source: firewall.NFTables}
	if e.Type == "policy" {
		s.Action = "policy " + e.Verdict
	}
	if rs == nil || e.Handle == 0 {
		return s
	}
	for _, t := range rs.Tables {
		if t.Family != e.Family || t.Name != e.Table || t.Source != firewall.NFTables {
			continue
		}
		for _, c := range t.Chains {
			if c.Name != e.Chain {
				continue
			}
			for _, r := range c.Rules {
				if r.Handle == e.Handle {
					s.Rule, s.Comment, s.Owner, s.Position = r, r.Comment, r.Owner, r.Position
				}
			}
		}
	}
	return s
}

func printReachTrace(streams *term.IO, tr *reachTraceResult) {
	w, st := streams.Out, streams.Style()
	fmt.Fprintf(w, "\n%s\n", st.Bold("Trace (the kernel's own walk)"))
	if tr.Attempt != "" {
		fmt.Fprintf(w, "  %s: %s\n", tr.Attempt, tr.Outcome)
	}
	if tr.Note != "" {
		fmt.Fprintf(w, "  %s\n", tr.Note)
	}
	if len(tr.Packets) == 0 {
		fmt.Fprintln(w, "  no packet to the port was traced.")
	}
	for _, p := range tr.Packets {
		fmt.Fprintf(w, "  packet %s → %s", p.From, p.To)
		if p.IIF != "" {
			fmt.Fprintf(w, " in %s", p.IIF)
		}
		fmt.Fprintf(w, ": %s", p.Verdict)
		if p.Decider != nil {
			fmt.Fprintf(w, " by %s", reach.StepString(*p.Decider))
		}
		if p.Count > 1 {
			fmt.Fprintf(w, " (%d packets: the client sent it again)", p.Count)
		}
		fmt.Fprintln(w)
		for _, s := range p.Rules {
			fmt.Fprintf(w, "    %s %s\n", st.Dim(s.Action+":"), reach.StepString(s))
		}
	}
}
