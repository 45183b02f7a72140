package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/reach"
)

// firewallOptions are the flags of `portctl firewall`.
type firewallOptions struct {
	NetNS string
	JSON  bool
}

func newFirewallCmd(streams *term.IO, runF func(context.Context, firewallOptions) error) *cobra.Command {
	var opts firewallOptions
	cmd := &cobra.Command{
		Use:     "firewall",
		Aliases: []string{"fw"},
		Short:   "The firewall port by port: who may reach each listening port; block ports for a while",
		Long: `Show the ruleset port by port: for each listening port, who may reach it
(the internet, the LAN, loopback only, or nobody) and the rule or layer
that decides; then the ports the firewall opens (accepts or DNATs) where
nothing listens on this machine. Rules of every table count: nftables,
iptables-nft, legacy iptables, Docker's NAT.

block and unblock work in portctl's own nftables table (inet portctl)
and never touch another table's rules. allow explains why a port cannot
be opened from a separate table and prints the command of the rules'
owner that does it.

Reading the ruleset needs root or CAP_NET_ADMIN (exit 3 without).`,
		Example: `  portctl firewall
  portctl fw --json
  portctl fw block 8080 --for 5m
  portctl fw block 6000-6100 --from 203.0.113.0/24 --proto tcp
  portctl fw blocks
  portctl fw unblock 8080
  portctl fw allow 5432 --from 10.0.0.0/8`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.NetNS, err = checkNetNS(opts.NetNS); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runFirewall(cmd.Context(), streams, opts)
		},
	}
	cmd.Flags().StringVar(&opts.NetNS, "netns", "", "look in this network namespace (a name under /run/netns, or a path)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	cmd.AddCommand(newFwBlockCmd(streams, nil, false), newFwBlockCmd(streams, nil, true),
		newFwBlocksCmd(streams, nil), newFwAllowCmd(streams, nil))
	return cmd
}

// fwPort is one listening port in `firewall --json`.
type fwPort struct {
	Protocol  string           `json:"protocol"`
	Port      uint16           `json:"port"`
	Listeners []reach.Listener `json:"listeners"`
	reach.Summary
}

// fwOpening is a port range the firewall opens where nothing listens.
type fwOpening struct {
	Protocol string    `json:"protocol"`
	Ports    [2]uint16 `json:"ports"`
	// Rule is the rule that opens it (accepts or DNATs it).
	Rule firewall.Step `json:"rule"`
	DNAT bool          `json:"dnat,omitempty"`
	// To is where a DNAT sends it.
	To string `json:"to,omitempty"`
	// SomeSources is set when the rule matches the source too and lets
	// in none of the sample clients fw tries: it opens the port to some
	// sources only ('portctl reach PORT --from …' tells which).
	SomeSources bool `json:"some_sources,omitempty"`
	reach.Summary
}

// maxOpeningsEvaluated bounds how many opened ports fw evaluates, each
// from one sample client of each class: a ruleset that opens thousands of
// ports one by one would otherwise cost thousands of walks.
const maxOpeningsEvaluated = 12

// firewallResult is what `firewall --json` prints; its field names are a
// stable contract.
type firewallResult struct {
	NetNS  string      `json:"netns,omitempty"`
	Rules  int         `json:"rules"`
	Ports  []fwPort    `json:"ports"`
	Opened []fwOpening `json:"opened"`
	// OpenedMore counts the port ranges rules open beyond those
	// evaluated (see maxOpeningsEvaluated).
	OpenedMore int      `json:"opened_not_evaluated,omitempty"`
	Incomplete []string `json:"incomplete,omitempty"`
}

func runFirewall(ctx context.Context, streams *term.IO, opts firewallOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	m, err := readModel(ctx, opts.NetNS)
	if err != nil {
		return err
	}
	res := firewallView(m)
	res.NetNS = opts.NetNS
	if opts.JSON {
		return writeJSON(streams.Out, res)
	}
	printFirewall(streams, res)
	return nil
}

// firewallView sorts the model port by port.
func firewallView(m *model) firewallResult {
	res := firewallResult{Ports: []fwPort{}, Opened: []fwOpening{}, Incomplete: m.rs.Incomplete}
	for _, t := range m.rs.Tables {
		for _, c := range t.Chains {
			res.Rules += len(c.Rules)
		}
	}
	classes := func(port uint16, proto uint8) []reach.Answer {
		return reach.Analyze(reach.Input{Port: port, Proto: proto, Sources: reach.SpreadSources(m.host, reach.SpreadClients),
			Listeners: m.listeners, Ruleset: m.rs, Host: m.host})
	}
	type key struct {
		proto uint8
		port  uint16
	}
	byPort := map[key][]reach.Listener{}
	var keys []key
	for _, l := range m.listeners {
		k := key{l.Proto, l.Local.Port()}
		if _, ok := byPort[k]; !ok {
			keys = append(keys, k)
		}
		byPort[k] = append(byPort[k], l)
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(a.port, b.port)) })
	for _, k := range keys {
		res.Ports = append(res.Ports, fwPort{Protocol: reach.ProtoName(k.proto), Port: k.port, Listeners: byPort[k],
			Summary: reach.Summarize(classes(k.port, k.proto), false)})
	}
	// The openings are many in a large ruleset: each is looked at from one
	// typical address of each class, and at most maxOpeningsEvaluated
	// of them.
	// Loopback is left out: every port is open to it but for a DNAT
	// that only a local client meets, which is rare.
	var samples []reach.Source
	for _, src := range reach.SampleSources(m.host) {
		if src.Class != firewall.Loopback {
			samples = append(samples, src)
		}
	}
	evaluated := 0
	for _, o := range reach.Openings(m.rs) {
		listened := false
		for p := uint32(o.Ports[0]); p <= uint32(o.Ports[1]); p++ {
			if _, ok := byPort[key{o.Proto, uint16(p)}]; ok {
				listened = true
				break
			}
		}
		if listened && o.Ports[0] == o.Ports[1] {
			continue
		}
		if evaluated >= maxOpeningsEvaluated {
			res.OpenedMore++
			continue
		}
		evaluated++
		as := reach.Analyze(reach.Input{Port: o.Ports[0], Proto: o.Proto, Sources: samples, Listeners: m.listeners, Ruleset: m.rs, Host: m.host})
		sum := reach.Summarize(as, true)
		some := false
		switch {
		case (sum.Exposure == reach.Nobody || sum.Exposure == reach.LoopbackOnly) && o.FromSome:
			// The rule lets some sources in, none of the samples: say so
			// rather than guess which.
			some = true
		case sum.Exposure == reach.Nobody || (sum.Exposure == reach.LoopbackOnly && !o.DNAT):
			continue // another rule drops it, or loopback, which every port is open to
		}
		op := fwOpening{Protocol: reach.ProtoName(o.Proto), Ports: o.Ports, DNAT: o.DNAT, Summary: sum,
			Rule: ruleStep(o), SomeSources: some}
		for _, a := range as {
			for _, p := range a.Pieces {
				if p.Firewall.NAT != nil && op.To == "" {
					op.To = p.Firewall.NAT.To.String()
				}
			}
		}
		res.Opened = append(res.Opened, op)
	}
	return res
}

// ruleStep names an opening's rule as a step of an evaluation does.
func ruleStep(o reach.Opening) firewall.Step {
	r := o.Rule
	s := firewall.Step{Table: o.Table, Chain: o.Chain, Rule: r, Handle: r.Handle, Position: r.Position,
		Comment: r.Comment, Owner: r.Owner, Text: r.Text, Action: "accept"}
	if o.DNAT {
		s.Action = "dnat"
	}
	if r.Chain != nil && r.Chain.Table != nil {
		s.Family, s.Source = r.Chain.Table.Family, r.Chain.Table.Source
	}
	return s
}

func exposureText(st term.Style, s reach.Summary) string {
	var t string
	switch s.Exposure {
	case reach.FromInternet:
		t = st.Red("internet")
	case reach.FromLAN:
		t = st.Yellow("LAN")
	case reach.LoopbackOnly:
		t = st.Green("loopback only")
	case reach.Nobody:
		t = st.Green("nobody")
	default:
		t = st.Yellow("unknown")
	}
	if s.Partial {
		t += " (part)"
	}
	return t
}

func decidedText(s reach.Summary) string {
	d := s.Decided
	switch {
	case d == nil:
		return ""
	case d.Rule != nil && d.Layer == reach.LayerFirewall:
		return reach.StepString(*d.Rule)
	case d.Short != "":
		return d.Layer + ": " + d.Short
	}
	return d.Layer + ": " + d.Detail
}

func printFirewall(streams *term.IO, res firewallResult) {
	w, st := streams.Out, streams.Style()
	where := ""
	if res.NetNS != "" {
		where = " in network namespace " + strings.TrimPrefix(res.NetNS, "/run/netns/")
	}
	fmt.Fprintf(w, "%s%s: %s.\n", st.Bold("Listening ports"), where, plural(res.Rules, "firewall rule"))
	if len(res.Ports) == 0 {
		fmt.Fprintln(w, "  nothing listens.")
	} else {
		t := term.NewTable("PORT", "PROCESS", "ADDRESS", "REACHABLE FROM", "DECIDED BY").Indent("  ")
		for _, p := range res.Ports {
			var holders, addrs []string
			for _, l := range p.Listeners {
				if l.Holder != "" && !slices.Contains(holders, l.Holder) {
					holders = append(holders, l.Holder)
				}
				if a := l.Local.Addr().String(); !slices.Contains(addrs, a) {
					addrs = append(addrs, a)
				}
			}
			slices.Sort(holders)
			slices.Sort(addrs)
			who := strings.Join(holders, ",")
			if len(holders) > 1 {
				who = fmt.Sprintf("%s +%d", holders[0], len(holders)-1)
			}
			t.Row(fmt.Sprintf("%d/%s", p.Port, p.Protocol), who, strings.Join(addrs, ","), exposureText(st, p.Summary), decidedText(p.Summary))
		}
		t.Render(w, streams.Width(), st)
	}
	if len(res.Opened) > 0 {
		fmt.Fprintf(w, "\n%s\n", st.Bold("Opened by the firewall, nothing listens here"))
		t := term.NewTable("PORT", "OPENED BY", "REACHABLE FROM", "TO").Indent("  ")
		for _, o := range res.Opened {
			ports := strconv.Itoa(int(o.Ports[0]))
			if o.Ports[1] != o.Ports[0] {
				ports += "-" + strconv.Itoa(int(o.Ports[1]))
			}
			to := o.To
			if o.DNAT && to != "" {
				to = "→ " + to
			}
			reachable := exposureText(st, o.Summary)
			if o.SomeSources {
				reachable = st.Yellow("some sources")
			}
			t.Row(ports+"/"+o.Protocol, reach.StepString(o.Rule), reachable, to)
		}
		t.Render(w, streams.Width(), st)
	}
	if res.OpenedMore > 0 {
		more := plural(res.OpenedMore, "more port range")
		if len(res.Opened)+res.OpenedMore >= reach.MaxOpenings {
			more = fmt.Sprintf("%d or more port ranges", res.OpenedMore)
		}
		fmt.Fprintf(w, "  … and %s that rules open, not looked at ('portctl reach PORT' for one)\n", more)
	}
	if len(res.Incomplete) > 0 {
		fmt.Fprintf(w, "\n%s could not be read: the verdicts depend on them.\n", strings.Join(res.Incomplete, ", "))
	}
	fmt.Fprintf(w, "\n%s\n", st.Dim("'portctl reach PORT' shows every layer and the fix for one port."))
}

// fwBlockOptions are the flags and argument of `fw block` and `fw unblock`.
type fwBlockOptions struct {
	Block firewall.PortBlock
	NetNS string
	JSON  bool
}

// parsePortRange parses PORT or FIRST-LAST, 1-65535.
func parsePortRange(s string) ([2]uint16, error) {
	t := strings.TrimSpace(s)
	a, b, isRange := strings.Cut(t, "-")
	if !isRange {
		b = a
	}
	lo, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	hi, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	switch {
	case err1 != nil || err2 != nil:
		return [2]uint16{}, usageErrorf("%q: want a port 1-65535 or a range such as 6000-6100", s)
	case lo == 0:
		return [2]uint16{}, usageErrorf("%q: port 0 cannot be blocked (want 1-65535)", s)
	case hi < lo:
		return [2]uint16{}, usageErrorf("%q: the range ends before it starts (want FIRST-LAST, such as 6000-6100)", s)
	}
	return [2]uint16{uint16(lo), uint16(hi)}, nil
}

func newFwBlockCmd(streams *term.IO, runF func(context.Context, fwBlockOptions) error, unblock bool) *cobra.Command {
	var (
		opts        fwBlockOptions
		from, proto string
	)
	use, short := "block PORT|RANGE", "Drop packets to a port in portctl's own table, for a while or until unblock"
	if unblock {
		use, short = "unblock PORT|RANGE", "Remove a block portctl's own table holds"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.

Blocks live in portctl's own nftables table (inet portctl), as elements
of its sets: other tables' rules are never touched. A block drops new
and established packets to the port on this machine (a published Docker
port too: it drops before Docker's DNAT). With --for the kernel removes
it when the time is up, even if portctl is gone. Needs root or
CAP_NET_ADMIN.`,
		Args: subArgs(1, "a port or a range FIRST-LAST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Block.Ports, err = parsePortRange(args[0]); err != nil {
				return err
			}
			switch p := strings.ToLower(strings.TrimSpace(proto)); p {
			case "", "tcp", "udp":
				opts.Block.Proto = p
			default:
				return usageErrorf("--proto %q: want tcp or udp (default both)", proto)
			}
			if from != "" {
				fs, err := parseFrom([]string{from})
				if err != nil || len(fs) != 1 || fs[0].Class != "" {
					return usageErrorf("--from %q: want an address or a range such as 203.0.113.0/24", from)
				}
				opts.Block.From = fs[0].Prefix
			}
			if opts.Block.For < 0 || (opts.Block.For > 0 && opts.Block.For < time.Millisecond) {
				return usageErrorf("--for %s: want a duration of at least 1ms, such as 30s or 5m (none: until unblock)", opts.Block.For)
			}
			if opts.NetNS, err = checkNetNS(opts.NetNS); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runFwBlock(cmd.Context(), streams, opts, unblock)
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "only from this address or range (default every source)")
	f.StringVarP(&proto, "proto", "P", "", "tcp or udp (default both)")
	if !unblock {
		f.DurationVar(&opts.Block.For, "for", 0, "lift the block after this long, such as 30s or 5m (default: until unblock)")
	}
	f.StringVar(&opts.NetNS, "netns", "", "in this network namespace (a name under /run/netns, or a path)")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

func runFwBlock(ctx context.Context, streams *term.IO, opts fwBlockOptions, unblock bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	fopts := firewall.Options{NetNS: opts.NetNS}
	var err error
	if unblock {
		err = firewall.Unblock(ctx, fopts, opts.Block)
	} else {
		err = firewall.Block(ctx, fopts, opts.Block)
	}
	switch {
	case errors.Is(err, firewall.ErrNotBlocked):
		return negativef("%s is not blocked in table inet %s ('portctl fw blocks' lists what is)", opts.Block, firewall.OwnTable)
	case err != nil:
		return firewallWriteError(err)
	}
	if opts.JSON {
		return writeJSON(streams.Out, map[string]any{"blocked": !unblock, "block": opts.Block})
	}
	st := streams.Style()
	if unblock {
		fmt.Fprintf(streams.Out, "Unblocked %s.\n", opts.Block)
		return nil
	}
	until := "until 'portctl fw unblock " + blockArgs(opts.Block) + "'"
	if opts.Block.For > 0 {
		until = fmt.Sprintf("for %s (the kernel lifts it by itself)", opts.Block.For)
	}
	b := opts.Block
	b.For = 0
	proto := ""
	if b.Proto == "" {
		proto = " (tcp and udp)"
	}
	fmt.Fprintf(streams.Out, "%s %s%s in table inet %s, %s.\n", st.Red("Blocked"), b, proto, firewall.OwnTable, until)
	return nil
}

// blockArgs spells a block as fw block's arguments and flags.
func blockArgs(b firewall.PortBlock) string {
	s := strconv.Itoa(int(b.Ports[0]))
	if b.Ports[1] != b.Ports[0] {
		s += "-" + strconv.Itoa(int(b.Ports[1]))
	}
	if b.Proto != "" {
		s += " --proto " + b.Proto
	}
	if b.From.IsValid() {
		s += " --from " + b.From.String()
	}
	return s
}

// firewallWriteError gives a failed change of portctl's table its advice.
func firewallWriteError(err error) error {
	switch {
	case errors.Is(err, firewall.ErrUnsupported):
		return fmt.Errorf("firewall: not supported on this OS")
	case errors.Is(err, firewall.ErrPermission), errors.Is(err, os.ErrPermission):
		return needCapability("changing table inet "+firewall.OwnTable, "CAP_NET_ADMIN", "", nil)
	}
	return fmt.Errorf("table inet %s: %w", firewall.OwnTable, err)
}

func newFwBlocksCmd(streams *term.IO, runF func(context.Context, firewallOptions) error) *cobra.Command {
	var opts firewallOptions
	cmd := &cobra.Command{
		Use:     "blocks",
		Aliases: []string{"ls"},
		Short:   "List the blocks of portctl's own table, with the time they have left",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.NetNS, err = checkNetNS(opts.NetNS); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runFwBlocks(cmd.Context(), streams, opts)
		},
	}
	cmd.Flags().StringVar(&opts.NetNS, "netns", "", "in this network namespace (a name under /run/netns, or a path)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

func runFwBlocks(ctx context.Context, streams *term.IO, opts firewallOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	bs, err := firewall.Blocks(ctx, firewall.Options{NetNS: opts.NetNS})
	if err != nil {
		return firewallError(err)
	}
	if bs == nil {
		bs = []firewall.PortBlock{}
	}
	if opts.JSON {
		return writeJSON(streams.Out, map[string]any{"blocks": bs})
	}
	if len(bs) == 0 {
		fmt.Fprintf(streams.Out, "No blocks in table inet %s.\n", firewall.OwnTable)
		return nil
	}
	t := term.NewTable("PORTS", "PROTO", "FROM", "LEFT")
	for _, b := range bs {
		ports := strconv.Itoa(int(b.Ports[0]))
		if b.Ports[1] != b.Ports[0] {
			ports += "-" + strconv.Itoa(int(b.Ports[1]))
		}
		proto, from, left := cmp.Or(b.Proto, "tcp/udp"), "any", "until unblock"
		if b.From.IsValid() {
			from = b.From.String()
		}
		if b.Expires > 0 {
			left = b.Expires.Round(time.Second).String()
		}
		t.Row(ports, proto, from, left)
	}
	return t.Render(streams.Out, streams.Width(), streams.Style())
}

// fwAllowOptions are the flags and argument of `fw allow`.
type fwAllowOptions struct {
	Port  uint16
	Proto uint8
	From  []fromSpec
	NetNS string
	JSON  bool
}

func newFwAllowCmd(streams *term.IO, runF func(context.Context, fwAllowOptions) error) *cobra.Command {
	var (
		opts  fwAllowOptions
		from  []string
		proto string
	)
	cmd := &cobra.Command{
		Use:   "allow PORT",
		Short: "Say how to open a port: the command of the rules' owner (portctl cannot do it)",
		Long: `Say what lets a port in, in the terms of whoever wrote the rule that stops
it (ufw, firewalld, Docker, nftables by hand).

portctl does not open ports itself: an accept in its own table would not
overrule another table's drop, since every table's base chains see the
packet and a drop in any of them ends its way. Only the owner of the drop
can open the port.

Exit status: 0 when the port is already reachable from every source
asked, 1 when a command to paste was printed.`,
		Example: `  portctl fw allow 5432 --from 10.0.0.0/8
  portctl fw allow 53 --proto udp --from lan`,
		Args: subArgs(1, "a port"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			var addr netip.Addr
			if opts.Port, addr, err = parsePortArg(args[0]); err != nil {
				return err
			}
			if addr.IsValid() {
				return usageErrorf("%q: fw allow takes a port, not ADDR:PORT (want a port 1-65535)", args[0])
			}
			if opts.Proto, err = parseReachProto(proto); err != nil {
				return err
			}
			if opts.From, err = parseFrom(from); err != nil {
				return err
			}
			if opts.NetNS, err = checkNetNS(opts.NetNS); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runFwAllow(cmd.Context(), streams, opts)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&from, "from", nil, "the source to let in: an address, a CIDR, lan or internet (default internet)")
	f.StringVarP(&proto, "proto", "P", "tcp", "tcp or udp")
	f.StringVar(&opts.NetNS, "netns", "", "in this network namespace (a name under /run/netns, or a path)")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

// fwAllowResult is what `fw allow --json` prints.
type fwAllowResult struct {
	Port      uint16         `json:"port"`
	Protocol  string         `json:"protocol"`
	Reachable bool           `json:"reachable"`
	Why       string         `json:"why"`
	Fix       []string       `json:"fix"`
	Answers   []reach.Answer `json:"answers"`
}

const allowWhy = "an accept in portctl's own table would not overrule another table's drop (every table's chains see the packet, and a drop in any of them ends its way): only the owner of the rule that stops it can open the port"

func runFwAllow(ctx context.Context, streams *term.IO, opts fwAllowOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	m, err := readModel(ctx, opts.NetNS)
	if err != nil {
		return err
	}
	from := opts.From
	if len(from) == 0 {
		from = []fromSpec{{Name: "internet", Class: firewall.Internet}}
	}
	as := reach.Analyze(reach.Input{Port: opts.Port, Proto: opts.Proto, Sources: sourcesOf(from, m.host),
		Listeners: m.listeners, Ruleset: m.rs, Host: m.host})
	res := fwAllowResult{Port: opts.Port, Protocol: reach.ProtoName(opts.Proto), Why: allowWhy, Fix: []string{}, Answers: as}
	res.Reachable = reach.Overall(as) == reach.Reachable
	for _, a := range as {
		for _, f := range a.Fix {
			if !slices.Contains(res.Fix, f) {
				res.Fix = append(res.Fix, f)
			}
		}
	}
	if opts.JSON {
		if err := writeJSON(streams.Out, res); err != nil {
			return err
		}
	} else {
		w, st := streams.Out, streams.Style()
		target := fmt.Sprintf("%d/%s", opts.Port, res.Protocol)
		switch {
		case res.Reachable:
			fmt.Fprintf(w, "Port %s is already reachable from %s: nothing to open.\n", target, fromNames(as))
		case !firewallBlocks(as):
			fmt.Fprintf(w, "The firewall lets port %s in already: another layer stops it.\n", target)
		default:
			fmt.Fprintf(w, "%s: %s.\n", st.Bold("fw allow opens nothing itself"), allowWhy)
		}
		if !res.Reachable {
			for _, a := range as {
				if a.Verdict == reach.Reachable {
					continue
				}
				fmt.Fprintf(w, "\nPort %s from %s: %s\n", target, a.Source.Name, verdictText(st, a.Verdict))
				var seen []string
				for _, p := range a.Pieces {
					for _, l := range p.Layers {
						if (l.Verdict == reach.Block || l.Verdict == reach.Depends) && !slices.Contains(seen, l.Detail) {
							seen = append(seen, l.Detail)
							fmt.Fprintf(w, "  %s %s: %s\n", st.Dim("•"), l.Layer, l.Detail)
						}
					}
				}
				if len(a.Fixes) == 0 {
					fmt.Fprintf(w, "  no command is known for it: 'portctl reach %d' shows every layer\n", opts.Port)
				}
				printFixes(streams, a.Fixes)
			}
		}
	}
	if !res.Reachable {
		return negativef("")
	}
	return nil
}

// firewallBlocks says whether a rule stops the port for some source.
func firewallBlocks(as []reach.Answer) bool {
	for _, a := range as {
		for _, p := range a.Pieces {
			for _, l := range p.Layers {
				if l.Layer == reach.LayerFirewall && l.Verdict == reach.Block {
					return true
				}
			}
		}
	}
	return false
}

func fromNames(as []reach.Answer) string {
	var s []string
	for _, a := range as {
		s = append(s, a.Source.Name)
	}
	return strings.Join(s, ", ")
}

// subArgs is exactArgs for a subcommand: its help is named by its path.
func subArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %s (got %d arguments); see '%s --help'", cmd.Name(), what, len(args), cmd.CommandPath())
		}
		return nil
	}
}
