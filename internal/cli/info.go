package cli

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/port"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// infoOptions are the flags and argument of `portctl info`.
type infoOptions struct {
	Query string
	Proto registry.Protocol // 0: every protocol
	JSON  bool
	Here  bool // look up who holds the port on this machine
}

// newInfoCmd builds `info`. runF, when not nil, replaces the real run (tests
// use it to see the parsed options).
func newInfoCmd(streams *term.IO, runF func(infoOptions) error) *cobra.Command {
	var (
		opts  infoOptions
		proto string
	)
	cmd := &cobra.Command{
		Use:   "info PORT|NAME|RANGE",
		Short: "Everything about a port: IANA assignments, de facto uses, security notes",
		Long: `Show what a port is: its RFC 6335 range class, whether binding it needs
privilege on this machine, whether it lies in this machine's ephemeral range,
every IANA assignment for every protocol, what it is used for in practice and
the security notes about it.

The argument is a port (443), a service name (https, imaps), a range (20-25),
each optionally with a protocol suffix (53/udp, https/tcp).`,
		Example: `  portctl info 443
  portctl info imaps
  portctl info 5432 --json
  portctl info 6000-6010 --proto tcp`,
		Args: exactArgs(1, "a port, a range or a service name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Query = args[0]
			if proto != "" {
				p, err := registry.ParseProtocol(proto)
				if err != nil {
					return usageErrorf("--proto %q: want tcp, udp, sctp or dccp", proto)
				}
				opts.Proto = p
			}
			if runF != nil {
				return runF(opts)
			}
			host, _ := netconf.Read() // the documented defaults stand in for what cannot be read
			opts.Here = true
			return runInfo(cmd.Context(), streams, loadRegistry(streams), host, opts)
		},
	}
	cmd.Flags().StringVarP(&proto, "proto", "P", "", "only this protocol: tcp, udp, sctp or dccp")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

// exactArgs is cobra.ExactArgs with a message that says what is wanted.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s takes %s (got %d arguments); see 'portctl %s --help'", cmd.Name(), what, len(args), cmd.Name())
		}
		return nil
	}
}

// portInfo is everything `info` knows about one port. Its JSON field names
// are a stable contract.
type portInfo struct {
	port.Info
	// Here is who holds the port on this machine now; absent for ranges
	// and where the socket table cannot be read.
	Here *hereJSON `json:"here,omitempty"`
}

// hereJSON is the part of `info` that says who listens on a port now.
type hereJSON struct {
	Verdict   sockets.Verdict    `json:"verdict"` // listening, or free (of listeners)
	Listeners []socketJSON       `json:"listeners"`
	Holders   []*sockets.Process `json:"holders"`
}

// describeHere fills in who holds the port now. The kernel filters by port,
// so a free port costs one netlink round trip and no /proc scan.
func describeHere(ctx context.Context, reg *registry.Registry, pi *portInfo, proto registry.Protocol) {
	protos := sockets.TCP | sockets.UDP
	switch {
	case proto == registry.TCP:
		protos = sockets.TCP
	case proto == registry.UDP:
		protos = sockets.UDP
	case proto != 0:
		return // sctp and dccp sockets are not listed
	}
	if pi.Port == 0 {
		return
	}
	// Listeners only: the kernel keeps them in a small table of their own,
	// where dumping connections would walk every socket of the machine.
	t, err := sockets.List(ctx, sockets.Query{Protos: protos, Families: sockets.AllFamilies,
		States: sockets.StatesOf(sockets.Listen), UDPStates: sockets.StatesOf(sockets.Close),
		LocalPort: pi.Port, Processes: true, AllHolders: true})
	if err != nil {
		return
	}
	if protos&sockets.TCP == 0 {
		t.Sockets = slices.DeleteFunc(t.Sockets, func(s sockets.Socket) bool { return s.Proto != sockets.UDP })
	}
	use := sockets.ClassifyPort(t.Sockets, pi.Port)
	h := &hereJSON{Verdict: use.Verdict(), Listeners: socketsJSON(use.Listeners, reg), Holders: use.Holders()}
	if h.Holders == nil {
		h.Holders = []*sockets.Process{}
	}
	pi.Here = h
}

// infoResult is the JSON document `info --json` prints.
type infoResult struct {
	Query string     `json:"query"`
	Kind  string     `json:"kind"` // port, range or name
	Ports []portInfo `json:"ports"`
}

func describePort(reg *registry.Registry, host netconf.Host, p uint16, proto registry.Protocol) portInfo {
	return portInfo{Info: port.Describe(reg, host, p, proto)}
}

func runInfo(ctx context.Context, streams *term.IO, reg *registry.Registry, host netconf.Host, opts infoOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	q, err := parseQuery(opts.Query)
	if err != nil {
		return err
	}
	proto := opts.Proto
	if q.Proto != 0 {
		if proto != 0 && proto&q.Proto == 0 {
			return usageErrorf("%q asks for %s but --proto asks for %s", opts.Query, q.Proto, proto)
		}
		proto = q.Proto
	}
	res := infoResult{Query: opts.Query, Kind: q.Kind.String(), Ports: []portInfo{}}
	switch q.Kind {
	case queryPort:
		res.Ports = append(res.Ports, describePort(reg, host, q.Range.First, proto))
	case queryRange:
		for p := int(q.Range.First); p <= int(q.Range.Last); p++ {
			pi := describePort(reg, host, uint16(p), proto)
			if len(pi.Assignments) > 0 || slices.ContainsFunc(pi.Uses, isNarrow) {
				res.Ports = append(res.Ports, pi)
			}
		}
	case queryName:
		as := reg.Name(q.Name, proto)
		if len(as) == 0 {
			msg := fmt.Sprintf("no service named %q", q.Name)
			if proto != 0 {
				msg += " for " + proto.String()
			}
			if sug := reg.Suggest(q.Name, 5); len(sug) > 0 {
				msg += "; closest: " + strings.Join(sug, ", ")
			}
			return negativef("%s", msg)
		}
		var ports []uint16
		for _, a := range as {
			if !slices.Contains(ports, a.Port) {
				ports = append(ports, a.Port)
			}
		}
		for _, p := range ports {
			res.Ports = append(res.Ports, describePort(reg, host, p, proto))
		}
	}
	if opts.Here && q.Kind != queryRange {
		for i := range res.Ports {
			describeHere(ctx, reg, &res.Ports[i], proto)
		}
	}
	if opts.JSON {
		return writeJSON(streams.Out, res)
	}
	if q.Kind == queryRange {
		return printRange(streams, q.Range, host, res.Ports)
	}
	w := streams.Out
	st := streams.Style()
	if q.Kind == queryName {
		as := reg.Name(q.Name, proto)
		var at []string
		for _, a := range as {
			at = append(at, fmt.Sprintf("%s/%s", a.Range(), a.Proto))
		}
		// A name and an alias can both be on one port (nicname, and whois
		// with the alias nicname, on 43/tcp): the port is named once.
		at = slices.Compact(at)
		fmt.Fprintf(w, "%s %s %s\n\n", st.Bold(q.Name), st.Dim("→"), strings.Join(at, ", "))
	}
	for i, pi := range res.Ports {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := printPort(streams, host, pi); err != nil {
			return err
		}
	}
	return nil
}

// printPort writes the human form of one port's information.
func printPort(streams *term.IO, host netconf.Host, pi portInfo) error {
	w, st, width := streams.Out, streams.Style(), streams.Width()
	fmt.Fprintf(w, "%s %s\n", st.Bold(fmt.Sprintf("Port %d", pi.Port)), st.Dim(pi.Class.Long()))
	facts := term.NewTable().Indent("  ")
	switch {
	case pi.Port == 0:
		facts.Row("binding", "port 0 asks the OS for any free ephemeral port")
	case pi.Privileged:
		facts.Row("binding", fmt.Sprintf("needs %s here (unprivileged ports start at %d)", host.PrivilegeHint, pi.UnprivilegedStart))
	default:
		facts.Row("binding", "any user may bind it here")
	}
	eph := fmt.Sprintf("no (this machine's ephemeral range is %s)", pi.EphemeralRange)
	if pi.Ephemeral {
		eph = fmt.Sprintf("yes: inside %s, so the OS may hand it to outgoing connections", pi.EphemeralRange)
	}
	if host.EphemeralDefault {
		eph += " [OS default]"
	}
	facts.Row("ephemeral", eph)
	if pi.Reserved {
		facts.Row("reserved", "yes: listed in ip_local_reserved_ports, never used as an ephemeral port")
	}
	if err := facts.Render(w, width, st); err != nil {
		return err
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, st.Bold("IANA registry"))
	if len(pi.Assignments) == 0 {
		fmt.Fprintln(w, "  unassigned")
	} else {
		t := term.NewTable("PROTO", "NAME", "DESCRIPTION").Indent("  ")
		for _, g := range mergeProtocols(pi.Assignments) {
			desc := g.Description
			if g.Last > g.Port {
				desc += st.Dim(fmt.Sprintf(" (range %s)", g.Range()))
			}
			name := g.Name
			if name == "" {
				name = "-"
			}
			if len(g.Aliases) > 0 {
				name += st.Dim(" (" + strings.Join(g.Aliases, ", ") + ")")
			}
			t.Row(g.Proto.String(), name, desc)
			for _, line := range assignmentDetail(g) {
				t.Row("", "", st.Dim(line))
			}
		}
		if err := t.Render(w, width, st); err != nil {
			return err
		}
	}
	if pi.Here != nil {
		fmt.Fprintf(w, "\n%s\n", st.Bold("On this machine"))
		switch pi.Here.Verdict {
		case sockets.VerdictFree:
			fmt.Fprintf(w, "  nothing listens on it ('portctl who %d' also looks at connections)\n", pi.Port)
		case sockets.VerdictListening:
			t := term.NewTable().Indent("  ")
			for _, l := range pi.Here.Listeners {
				who := processCell(l.Processes)
				if who == "" {
					who = "(process not visible)"
				}
				t.Row(l.Protocol, fmt.Sprintf("%s %s", strings.ToUpper(l.State), netip.AddrPortFrom(netip.MustParseAddr(l.LocalAddress), l.LocalPort)), who)
			}
			if err := t.Render(w, width, st); err != nil {
				return err
			}
		default:
			fmt.Fprintf(w, "  busy (%s): 'portctl who %d' explains\n", strings.ReplaceAll(string(pi.Here.Verdict), "_", "-"), pi.Port)
		}
	}
	uses := term.NewTable().Indent("  ")
	for _, u := range pi.Uses {
		uses.Row(u.Protos.String(), string(u.Category), u.Text)
	}
	notes := term.NewTable().Indent("  ")
	for _, n := range pi.SecurityNotes {
		notes.Row(severityLabel(st, n.Severity), n.Protos.String(), n.Text)
	}
	for _, sec := range []struct {
		title string
		t     *term.Table
	}{{"In practice", uses}, {"Security", notes}} {
		if sec.t.Len() == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", st.Bold(sec.title))
		if err := sec.t.Render(w, width, st); err != nil {
			return err
		}
	}
	return nil
}

// severityLabel writes the severity as a word, coloured when colour is on.
func severityLabel(st term.Style, s registry.Severity) string {
	word := strings.ToUpper(s.String())
	switch s {
	case registry.SevHigh:
		return st.Red(word)
	case registry.SevMedium:
		return st.Yellow(word)
	}
	return word
}

// maxNoteLen is how much of IANA's notes on an assignment `info PORT`
// shows; a few run to a page. --json has them whole.
const maxNoteLen = 200

// assignmentDetail returns the lines `info PORT` shows under an assignment:
// its references, assignee, contact and dates on one line, then IANA's
// notes and any unauthorized use reported, each on its own.
func assignmentDetail(a registry.Assignment) []string {
	var facts []string
	if refs := registry.References(a.Reference); len(refs) > 0 {
		facts = append(facts, strings.Join(refs, ", "))
	}
	assignee, contact := strings.Join(registry.People(a.Assignee), ", "), strings.Join(registry.People(a.Contact), ", ")
	var who []string
	if assignee != "" {
		who = append(who, "assignee "+assignee)
	}
	if contact != "" && contact != assignee {
		who = append(who, "contact "+contact)
	}
	if len(who) > 0 {
		facts = append(facts, strings.Join(who, ", "))
	}
	var when []string
	if a.Registered != "" {
		when = append(when, "registered "+a.Registered)
	}
	if a.Modified != "" {
		when = append(when, "modified "+a.Modified)
	}
	if len(when) > 0 {
		facts = append(facts, strings.Join(when, ", "))
	}
	var lines []string
	if len(facts) > 0 {
		lines = append(lines, strings.Join(facts, "; "))
	}
	if a.UnauthorizedUse != "" {
		lines = append(lines, "unauthorized use reported: "+a.UnauthorizedUse)
	}
	if a.Notes != "" {
		lines = append(lines, "note: "+clipWords(a.Notes, maxNoteLen))
	}
	return lines
}

// clipWords shortens s to at most n runes, at a space, with an ellipsis.
func clipWords(s string, n int) string {
	c := clip(s, n)
	if c == s {
		return s
	}
	c = strings.TrimSuffix(c, "…")
	if i := strings.LastIndexByte(c, ' '); i > 0 {
		c = c[:i]
	}
	return c + " …"
}

// rfcs returns the RFCs among an assignment's references, such as
// "RFC 959", for the compact `info A-B` list.
func rfcs(a registry.Assignment) []string {
	return slices.DeleteFunc(registry.References(a.Reference), func(r string) bool { return !strings.HasPrefix(r, "RFC ") })
}

// mergeProtocols folds assignments that differ only in protocol (and
// aliases, which it takes from the first) into one, with the protocols
// joined ("tcp/udp").
func mergeProtocols(as []registry.Assignment) []registry.Assignment {
	var out []registry.Assignment
	for _, a := range as {
		merged := false
		for i := range out {
			if o := &out[i]; sameButProtocol(*o, a) {
				o.Proto |= a.Proto
				merged = true
				break
			}
		}
		if !merged {
			out = append(out, a)
		}
	}
	return out
}

// sameButProtocol reports whether a and b differ at most in protocol and
// aliases.
func sameButProtocol(a, b registry.Assignment) bool {
	a.Proto, a.Aliases = b.Proto, nil
	b.Aliases = nil
	return reflect.DeepEqual(a, b)
}

// printRange writes the compact list `info A-B` prints.
func printRange(streams *term.IO, r registry.Range, host netconf.Host, ports []portInfo) error {
	w, st := streams.Out, streams.Style()
	classes := []string{}
	for _, c := range []registry.Class{registry.System, registry.User, registry.Dynamic} {
		cr := c.Range()
		if r.First <= cr.Last && r.Last >= cr.First {
			classes = append(classes, c.String())
		}
	}
	fmt.Fprintf(w, "%s %s\n", st.Bold(fmt.Sprintf("Ports %s", r)),
		st.Dim(fmt.Sprintf("%d ports, %d with an assignment or a known use; class %s; ephemeral range here %s",
			r.Len(), len(ports), strings.Join(classes, ", "), host.Ephemeral)))
	if len(ports) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	t := term.NewTable("PORT", "PROTO", "NAME", "DESCRIPTION")
	for _, pi := range ports {
		port := fmt.Sprint(pi.Port)
		for _, g := range mergeProtocols(pi.Assignments) {
			name := g.Name
			if name == "" {
				name = "-"
			}
			desc := g.Description
			if refs := rfcs(g); len(refs) > 0 {
				desc += " " + st.Dim("("+strings.Join(refs, ", ")+")")
			}
			t.Row(port, g.Proto.String(), name, desc)
			port = ""
		}
		for _, u := range pi.Uses {
			if !isNarrow(u) {
				continue // a wide range (ephemeral, NodePort) would repeat on every row
			}
			t.Row(port, u.Protos.String(), st.Dim("(in practice)"), u.Text)
			port = ""
		}
		if len(pi.SecurityNotes) > 0 {
			n := pi.SecurityNotes[0]
			t.Row(port, n.Protos.String(), severityLabel(st, n.Severity), n.Text)
		}
	}
	return t.Render(w, streams.Width(), st)
}

// isNarrow reports whether a use names a single port or a small range,
// rather than a wide one such as the ephemeral range that says little about
// each port in it.
func isNarrow(u registry.Use) bool { return int(u.Last)-int(u.Port) < 64 }
