package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/audit"
	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/guard/flood"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan"
	"github.com/portctl/portctl/sockets"
)

// auditOptions are the flags of `portctl audit`.
type auditOptions struct {
	Policy string            // policy file
	JSON   bool              // print JSON
	SARIF  string            // write SARIF to this file ("-": stdout)
	FailOn registry.Severity // from --fail-on; 0: the policy's, else medium
	NetNS  string
	Remote string // host to cross-check with a connect scan
	// RemoteTimeout is how long a connect attempt of --remote may take;
	// one retry follows a silent one.
	RemoteTimeout time.Duration
}

func newAuditCmd(streams *term.IO, runF func(context.Context, auditOptions) error) *cobra.Command {
	opts := auditOptions{RemoteTimeout: 2 * time.Second}
	var failOn string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Find what this machine exposes that it should not",
		Long: `Audit the listening sockets and the kernel's port settings: databases, caches
and brokers facing the network, risky services (Telnet, FTP, SMB, RDP, VNC,
the Docker API, X11, ...), debuggers, listeners on all interfaces where
loopback would do, root processes on unprivileged ports, programs whose
executable was deleted or replaced, unknown listeners, SYN cookies off, a
narrow ephemeral range, a lowered unprivileged port start. As root (reading
the firewall needs it, or CAP_NET_ADMIN), also what the kernel's ruleset
really lets in from the internet: listeners that are really exposed,
NetBIOS and SMB let in from outside (naming the rule), ports Docker
publishes past a ufw or firewalld deny.

A policy file (--policy, YAML) lists the listeners allowed, the ports that
may be reachable from the internet or the LAN (reach:), sets findings
aside with a reason, and changes severities: see 'Policy files' in the
README. --remote HOST connects from here to this machine's listening ports
at HOST: a listener a firewall keeps out is reported as such, and its
exposure findings are lowered to low.

Exit status: 1 when a finding at or above --fail-on remains (default: the
policy's fail_on, else medium); 2 for a bad flag or policy file (a missing
one included); 3 when the socket table cannot be read.`,
		Example: `  portctl audit
  portctl audit --policy audit-policy.yaml --sarif audit.sarif
  portctl audit --json --fail-on high
  portctl audit --remote 203.0.113.7`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if failOn != "" {
				sev, err := audit.ParseThreshold(failOn)
				if err != nil {
					return usageErrorf("--fail-on %s: want info, low, medium, high or never", failOn)
				}
				opts.FailOn = sev
			}
			if cmd.Flags().Changed("policy") && opts.Policy == "" {
				return usageErrorf("--policy is empty: want a policy file")
			}
			if cmd.Flags().Changed("remote") && strings.TrimSpace(opts.Remote) == "" {
				return usageErrorf("--remote is empty: want a host name or an IP address of this machine")
			}
			if opts.RemoteTimeout <= 0 {
				return usageErrorf("--remote-timeout %v: want a positive duration such as 500ms or 2s", opts.RemoteTimeout)
			}
			if opts.JSON && opts.SARIF == "-" {
				return usageErrorf("--json and --sarif - both write to stdout: write the SARIF to a file instead")
			}
			var err error
			if opts.NetNS, err = checkNetNS(opts.NetNS); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runAudit(cmd.Context(), streams, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Policy, "policy", "", "policy file (YAML): allowed listeners, exceptions, severities, fail_on")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	f.StringVar(&opts.SARIF, "sarif", "", "write the findings as SARIF 2.1.0 to this file (- for stdout, instead of the table)")
	f.StringVar(&failOn, "fail-on", "", "exit 1 when a finding of this severity or higher remains: info, low, medium, high or never")
	f.StringVar(&opts.NetNS, "netns", "", "audit this network namespace (a name under /run/netns, or a path)")
	f.StringVar(&opts.Remote, "remote", "", "also connect from here to the listening TCP ports at HOST, this machine's address as others see it")
	f.DurationVar(&opts.RemoteTimeout, "remote-timeout", opts.RemoteTimeout, "how long a --remote connection attempt may take (one retry follows a silent one)")
	return cmd
}

// auditJSON is the document `audit --json` prints: the report with the
// counts and the verdict.
type auditJSON struct {
	audit.Report
	Counts       map[string]int `json:"counts"`
	FailOn       string         `json:"fail_on"`
	Violations   int            `json:"violations"`
	Unattributed int            `json:"unattributed"`
}

func runAudit(ctx context.Context, streams *term.IO, opts auditOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	pol, err := readPolicy(opts.Policy)
	if err != nil {
		return err
	}
	threshold := opts.FailOn
	if threshold == 0 && pol != nil {
		threshold = pol.FailOn
	}
	if threshold == 0 {
		threshold = registry.SevMedium
	}

	// Listeners with their processes, and every TCP connection so that
	// peers are known: only the listeners are attributed.
	q := sockets.Query{Protos: sockets.AllProtos, Families: sockets.AllFamilies,
		States: sockets.AllStates, UDPStates: sockets.StatesOf(sockets.Close),
		Processes: true, NetNS: opts.NetNS,
		AttributeIf: func(s *sockets.Socket) bool { return s.State == sockets.Listen || s.Proto == sockets.UDP },
	}
	t, err := sockets.List(ctx, q)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	host, err := netconf.ReadNetNS(opts.NetNS)
	if err != nil && !errors.Is(err, netconf.ErrNotImplemented) {
		fmt.Fprintf(streams.Err, "portctl: the kernel's port settings were not checked: %v\n", err)
		host = netconf.Host{}
	}

	in := audit.Input{Sockets: t.Sockets, Host: host, OS: runtime.GOOS}
	// The kernel's counters of overflowed queues and SYN floods.
	if signs, err := flood.Read(ctx, flood.Options{NetNS: opts.NetNS, SkipListeners: true}); err == nil {
		in.Flood = &signs.Counters
	} else if !errors.Is(err, flood.ErrNotImplemented) {
		fmt.Fprintf(streams.Err, "portctl: the kernel's TCP counters were not checked: %v\n", err)
	}
	// The firewall's verdicts, for the rules about what is really exposed.
	if rs, fh, err := readRuleset(ctx, opts.NetNS); err != nil {
		fmt.Fprintf(streams.Err, "portctl: the firewall was not checked (%s): the rules about what it lets in did not run\n", reachNote(err))
	} else {
		in.Firewall = audit.Reachability(rs, fh, t.Sockets)
		in.Firewall.Opened = audit.OpenedNetBIOS(rs, fh, t.Sockets)
	}
	if opts.Remote != "" {
		if in.Remote, err = remoteScan(ctx, opts.Remote, opts.RemoteTimeout, t.Sockets); err != nil {
			return err
		}
	}
	rep := audit.Check(in, pol)
	violations := rep.AtLeast(threshold)

	if opts.SARIF != "" {
		b, err := audit.SARIF(rep, version())
		if err != nil {
			return err
		}
		b = append(b, '\n')
		if opts.SARIF == "-" {
			if _, err := streams.Out.Write(b); err != nil {
				return err
			}
		} else if err := os.WriteFile(opts.SARIF, b, 0o644); err != nil {
			return fmt.Errorf("audit: write SARIF: %w", err)
		}
	}
	switch {
	case opts.JSON:
		counts, bySev := map[string]int{}, rep.Counts()
		for _, s := range registry.Severities {
			counts[s.String()] = bySev[s]
		}
		doc := auditJSON{Report: rep, Counts: counts, FailOn: audit.ThresholdName(threshold), Violations: violations, Unattributed: t.Unattributed}
		if err := writeJSON(streams.Out, doc); err != nil {
			return err
		}
	case opts.SARIF != "-":
		printAudit(streams, rep, threshold, violations)
	}
	if t.Unattributed > 0 {
		if runtime.GOOS != "windows" && os.Geteuid() != 0 {
			fmt.Fprintf(streams.Err, "portctl: no process found for %s: for the rules about programs, %s\n", plural(t.Unattributed, "socket"), seeOtherUsers("portctl audit"))
		} else {
			fmt.Fprintf(streams.Err, "portctl: no process found for %s (another PID namespace, or the kernel's)\n", plural(t.Unattributed, "socket"))
		}
	}
	if violations > 0 {
		return negativef("audit: %s at or above %s", plural(violations, "finding"), audit.ThresholdName(threshold))
	}
	return nil
}

// readRuleset reads the ruleset and the host of a namespace ("" for this
// one), with the owner of every rule named.
func readRuleset(ctx context.Context, netns string) (*firewall.Ruleset, *firewall.Host, error) {
	fopts := firewall.Options{NetNS: netns}
	rs, err := firewall.Read(ctx, fopts)
	if err != nil {
		return nil, nil, err
	}
	h, err := firewall.ReadHost(fopts)
	if err != nil {
		return nil, nil, err
	}
	attribute(ctx, rs, netns)
	return rs, h, nil
}

// reachNote says in a few words why the ruleset could not be read.
func reachNote(err error) string {
	switch {
	case errors.Is(err, firewall.ErrUnsupported):
		return "reading the firewall is not supported on this OS"
	case errors.Is(err, firewall.ErrPermission), errors.Is(err, os.ErrPermission):
		return "reading the ruleset needs root or CAP_NET_ADMIN"
	}
	return "the ruleset could not be read: " + err.Error()
}

// readPolicy reads and parses the policy file (nil for none). A missing
// file is a usage error, like a bad one; other read errors are failures.
func readPolicy(file string) (*audit.Policy, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, usageErrorf("--policy %s: no such file", file)
	case err != nil:
		return nil, fmt.Errorf("audit: read the policy: %w", err)
	}
	pol, err := audit.ParsePolicy(b)
	if err != nil {
		return nil, usageErrorf("--policy %s: %v", file, err)
	}
	pol.File = file
	return pol, nil
}

// remoteScan resolves host and connects from here to each listening TCP
// port that could be reached at it.
func remoteScan(ctx context.Context, host string, timeout time.Duration, socks []sockets.Socket) (*audit.Remote, error) {
	addr, err := resolveRemote(ctx, host)
	if err != nil {
		return nil, err
	}
	rem := &audit.Remote{Host: host, Addr: addr, Ports: map[uint16]audit.Reach{}}
	ports := audit.RemotePorts(socks, addr)
	i := 0
	next := func() (scan.Probe, bool) {
		if i == len(ports) {
			return scan.Probe{}, false
		}
		i++
		return scan.Probe{Addr: addr, Port: ports[i-1]}, true
	}
	err = scan.Connect(ctx, scan.ConnectConfig{Timeout: timeout, Retries: 1}, next, func(r scan.Result) {
		st := audit.Filtered
		switch r.State {
		case scan.Open:
			st = audit.Reachable
		case scan.Closed:
			st = audit.Closed
		}
		rem.Ports[r.Port] = audit.Reach{State: st, Reason: string(r.Reason)}
	})
	if err != nil {
		return nil, fmt.Errorf("audit: --remote %s: %w", host, err)
	}
	return rem, nil
}

// resolveRemote turns --remote into one address: itself when it is one,
// else the host name's first IPv4 address, or its first address.
func resolveRemote(ctx context.Context, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return a.Unmap(), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound, err == nil && len(addrs) == 0:
		return netip.Addr{}, usageErrorf("--remote %s: no such host (want a host name or an IP address of this machine)", host)
	case err != nil:
		return netip.Addr{}, fmt.Errorf("audit: --remote %s: %w", host, err)
	}
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	return addrs[0], nil
}

// findingWhere names a finding's listener or setting: "tcp 0.0.0.0:6379".
func findingWhere(f audit.Finding) string {
	if f.Socket == nil && f.Port != 0 {
		return fmt.Sprintf("%s/%d (firewall)", f.Protocol, f.Port)
	}
	if f.Socket == nil {
		return f.Setting + " = " + f.Value
	}
	return socketWhere(f.Socket)
}

// socketWhere names a listener as audit sees it (MPTCP is TCP): "tcp
// 0.0.0.0:6379".
func socketWhere(s *sockets.Socket) string {
	proto := "tcp"
	if s.Proto == sockets.UDP {
		proto = "udp"
	}
	return proto + " " + s.Local.String()
}

// processLabel names one holder as the socket table does: "nginx/1234".
func processLabel(p *sockets.Process) string {
	if p == nil {
		return ""
	}
	return processCell([]*sockets.Process{p})
}

func printAudit(streams *term.IO, rep audit.Report, threshold registry.Severity, violations int) {
	w, st := streams.Out, streams.Style()
	counts := rep.Counts()
	var parts []string
	for _, s := range slices.Backward(registry.Severities) {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	head := fmt.Sprintf("%s %s and the kernel's port settings: ", st.Bold("Audit of"), plural(len(rep.Listeners), "listener"))
	if len(rep.Findings) == 0 {
		head += "no findings"
	} else {
		head += fmt.Sprintf("%s (%s)", plural(len(rep.Findings), "finding"), strings.Join(parts, ", "))
	}
	fmt.Fprintln(w, head)
	if rep.PolicyFile != "" {
		fmt.Fprintf(w, "  policy %s: %s set aside by its exceptions\n", rep.PolicyFile, plural(len(rep.Excepted), "finding"))
	}
	if len(rep.Findings) > 0 {
		fmt.Fprintln(w)
		t := term.NewTable("SEVERITY", "RULE", "WHERE", "PROCESS", "FINDING")
		for _, f := range rep.Findings {
			t.Row(severityLabel(st, f.Severity), f.Rule, findingWhere(f), processLabel(f.Process), f.Title)
		}
		t.Render(w, streams.Width(), st)
		for i, f := range rep.Findings {
			fmt.Fprintf(w, "\n%s %s %s\n", st.Bold(fmt.Sprintf("%d.", i+1)), severityLabel(st, f.Severity), st.Bold(f.Title))
			where := findingWhere(f)
			if len(f.Addresses) > 1 {
				var as []string
				for _, a := range f.Addresses {
					as = append(as, a.String())
				}
				where += " (also " + strings.Join(as[1:], ", ") + ")"
			}
			if p := f.Process; p != nil {
				where += fmt.Sprintf(", %s (PID %d", p.Name, p.PID)
				if p.User != "" {
					where += ", user " + p.User
				}
				where += ")"
			}
			fmt.Fprintf(w, "   %s %s\n", st.Dim(f.Rule+":"), where)
			d := term.NewTable().Indent("   ")
			d.Row(st.Dim("why"), f.Why)
			d.Row(st.Dim("fix"), f.Fix)
			d.Render(w, streams.Width(), st)
		}
	}
	if len(rep.Excepted) > 0 {
		fmt.Fprintf(w, "\n%s\n", st.Bold("Set aside by the policy"))
		t := term.NewTable("RULE", "WHERE", "PROCESS", "LINE", "REASON").Indent("  ")
		for _, e := range rep.Excepted {
			t.Row(e.Rule, findingWhere(e.Finding), processLabel(e.Process), fmt.Sprint(e.Line), e.Reason)
		}
		t.Render(w, streams.Width(), st)
	}
	printLetIn(streams, rep)
	if rep.Remote != nil {
		target := rep.Remote.Addr.String()
		if rep.Remote.Host != target {
			target = fmt.Sprintf("%s (%s)", rep.Remote.Host, target)
		}
		fmt.Fprintf(w, "\n%s %s, connecting from here\n", st.Bold("Reachable at"), target)
		t := term.NewTable("LISTENER", "PROCESS", "SERVICE", "REACH").Indent("  ")
		for _, l := range rep.Listeners {
			if l.Reach == nil {
				continue
			}
			reach := l.Reach.State.String()
			if l.Reach.State != audit.Reachable {
				reach = "not reachable: " + reach
			}
			t.Row(socketWhere(l.Socket), processLabel(l.Process), l.Service, fmt.Sprintf("%s (%s)", reach, l.Reach.Reason))
		}
		if t.Len() == 0 {
			fmt.Fprintln(w, "  no TCP listener beyond loopback to try")
		} else {
			t.Render(w, streams.Width(), st)
		}
	}
	fmt.Fprintln(w)
	if violations > 0 {
		fmt.Fprintf(w, "%s at or above %s (--fail-on)\n", plural(violations, "finding"), audit.ThresholdName(threshold))
	} else {
		fmt.Fprintf(w, "%s at or above %s\n", st.Green("No finding"), audit.ThresholdName(threshold))
	}
}

// printLetIn lists the listeners the firewall lets other hosts reach, and
// the rule that does.
func printLetIn(streams *term.IO, rep audit.Report) {
	w, st := streams.Out, streams.Style()
	t := term.NewTable("LISTENER", "PROCESS", "REACHABLE FROM", "DECIDED BY").Indent("  ")
	for _, l := range rep.Listeners {
		if l.Firewall == nil || (l.ReachableFrom != audit.FromInternet && l.ReachableFrom != audit.FromLAN && l.ReachableFrom != audit.FromUnknown) {
			continue
		}
		by := ""
		if d := l.Firewall.Decided; d != nil {
			by = d.Layer + ": " + d.Detail
		}
		t.Row(socketWhere(l.Socket), processLabel(l.Process), reachWords(st, l.ReachableFrom, l.Firewall.Partial), by)
	}
	if t.Len() == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s\n", st.Bold("Let in by the firewall from beyond this machine"))
	t.Render(w, streams.Width(), st)
}
