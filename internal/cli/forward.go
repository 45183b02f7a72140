package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/forward"
	"github.com/portctl/portctl/forward/sshtun"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/scan"
)

// forwardOptions are the flags and arguments of `portctl forward`.
type forwardOptions struct {
	Rules          []string
	Remote         []string
	Via            string
	AcceptNew      bool
	SSHConfig      string
	Config         string
	MaxConns       int
	IdleTimeout    time.Duration
	ConnectTimeout time.Duration
	Allow, Deny    []string
	ProxyProtocol  int
	Balance        string
	HealthCheck    time.Duration
	Drain          time.Duration
	DataPath       string
	Stats          bool
	Check          bool
	JSON           bool
}

func newForwardCmd(streams *term.IO, runF func(context.Context, forwardOptions) error) *cobra.Command {
	var opts forwardOptions
	cmd := &cobra.Command{
		Use:   "forward RULE... [--via ssh://HOST] | --remote RULE --via ssh://HOST | --config FILE",
		Short: "Forward TCP and UDP ports to other addresses, also through SSH",
		Long: `Send what arrives on a local port to another address, until stopped.

A rule is [tcp/|udp/][LISTEN_ADDR:]LISTEN_PORT:HOST:PORT[,HOST:PORT...]:
8080:127.0.0.1:80, udp/5353:10.0.0.1:53, [::]:443:[2001:db8::1]:443,
127.0.0.1:9000:backend.internal:9000. Without LISTEN_ADDR the rule listens
on every interface. Several targets share the connections, in turn
(--balance roundrobin) or to the least busy (leastconn), skipping those a
--health-check finds down.

On Linux, TCP connections are relayed by epoll event loops, one per CPU,
with no goroutine per connection: short exchanges through a buffer, and a
flow that turns out bulk by splice(2), without a copy through user space
(--data-path goroutines: two goroutines per connection, as before). When
one side shuts down writing the other is told and the other direction
keeps flowing. UDP keeps a session per client, with any number of replies.

Through SSH, with --via ssh://[USER@]HOST[:PORT] (one connection per
server, shared by its rules, kept alive, reconnected with back-off; the
rules come back by themselves):
  127.0.0.1:5432:db.internal:5432 --via ssh://bastion
      like ssh -L: the target is reached, and resolved, from the server
      (without 127.0.0.1 the port would listen on every interface)
  --remote 8080:127.0.0.1:3000 --via ssh://devbox
      like ssh -R: the server listens (on its loopback without an
      address), and its connections come to the target from here
  socks5://127.0.0.1:1080 --via ssh://bastion
      like ssh -D: a SOCKS5 server whose clients' targets are reached
      from the server (socks5://PORT listens on 127.0.0.1)
~/.ssh/config (or --ssh-config FILE), ssh-agent, your keys and known_hosts
are used as ssh uses them; an unknown host key is refused unless
--accept-new. SSH carries TCP only. --via applies to the rules on the
command line; in a config file, give via: per rule or at the top.

--config FILE reads rules from YAML (see the README). SIGHUP, or a change
to the file, reloads it: unchanged listeners stay open and their
connections run on, new rules start, removed rules stop accepting and
drain. SIGTERM or Ctrl-C stops accepting and waits --drain for the
connections. Counters are logged on stderr at each reload and at the end;
'portctl forward --stats' shows those of every running forwarder.

'portctl forward --check RULE...' tests the forwarding machinery of each
rule on a free loopback port against a built-in backend (a sha256-checked
stream each way, a half-close exchange, a UDP round trip with an 8,000-byte
datagram and several replies), and whether the rule's own targets answer.`,
		Example: `  portctl forward 8080:127.0.0.1:80
  portctl forward udp/5353:10.0.0.1:53 --idle-timeout 30s
  portctl forward 443:10.0.0.1:443,10.0.0.2:443 --balance leastconn --health-check 5s
  portctl forward 127.0.0.1:5432:db.internal:5432 --via ssh://deploy@bastion
  portctl forward --remote 8080:127.0.0.1:3000 --via ssh://devbox
  portctl forward socks5://127.0.0.1:1080 --via ssh://bastion
  portctl forward --config forward.yaml
  portctl forward --stats
  portctl forward --check 8080:127.0.0.1:80`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Rules = args
			switch {
			case opts.Stats && (len(args) > 0 || opts.Config != "" || opts.Check):
				return usageErrorf("--stats takes no rule: it shows the running forwarders' counters")
			case opts.Stats:
			case len(args) == 0 && opts.Config == "" && len(opts.Remote) == 0:
				return usageErrorf("forward needs a RULE such as 8080:127.0.0.1:80, or --config FILE")
			case len(opts.Remote) > 0 && opts.Via == "":
				return usageErrorf("--remote %s needs --via ssh://[USER@]HOST[:PORT]: the SSH server that listens", opts.Remote[0])
			case opts.Check && opts.Config != "":
				return usageErrorf("--check takes rules on the command line, not --config")
			}
			if opts.ProxyProtocol != 0 && opts.ProxyProtocol != 1 && opts.ProxyProtocol != 2 {
				return usageErrorf("--proxy-protocol %d: want 1 or 2", opts.ProxyProtocol)
			}
			if opts.MaxConns < 0 || opts.IdleTimeout < 0 || opts.ConnectTimeout < 0 || opts.HealthCheck < 0 || opts.Drain < 0 {
				return usageErrorf("--max-conns, --idle-timeout, --connect-timeout, --health-check and --drain take positive values")
			}
			switch opts.DataPath {
			case "", string(forward.DataPathLoops), string(forward.DataPathGoroutines):
			default:
				return usageErrorf("--data-path %q: want loops or goroutines", opts.DataPath)
			}
			switch opts.Balance {
			case "", "roundrobin", "leastconn":
			default:
				return usageErrorf("--balance %q: want roundrobin or leastconn", opts.Balance)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runForward(cmd.Context(), streams, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Config, "config", "", "read rules from a YAML FILE (reloaded on SIGHUP or when it changes)")
	f.StringVar(&opts.Via, "via", "", "carry the command line's rules through SSH: ssh://[USER@]HOST[:PORT]")
	f.StringArrayVar(&opts.Remote, "remote", nil, "a remote forward, like ssh -R: [ADDR:]PORT:HOST:PORT, listened on by the --via server")
	f.BoolVar(&opts.AcceptNew, "accept-new", false, "add the key of an SSH server known_hosts does not know (a changed key is refused all the same)")
	f.StringVar(&opts.SSHConfig, "ssh-config", "", "read this ssh_config instead of ~/.ssh/config (none: no file)")
	f.IntVar(&opts.MaxConns, "max-conns", 0, "at most this many connections (UDP: sessions) per rule (0: no limit)")
	f.DurationVar(&opts.IdleTimeout, "idle-timeout", 0, "close a connection or UDP session idle this long (0: never; UDP: 60s)")
	f.DurationVar(&opts.ConnectTimeout, "connect-timeout", 0, "give up connecting to a target after this long (default 5s)")
	f.StringSliceVar(&opts.Allow, "allow", nil, "only accept clients in these CIDRs")
	f.StringSliceVar(&opts.Deny, "deny", nil, "refuse clients in these CIDRs")
	f.IntVar(&opts.ProxyProtocol, "proxy-protocol", 0, "send a PROXY protocol header of version 1 or 2 to the target")
	f.StringVar(&opts.Balance, "balance", "", "how targets share connections: roundrobin (default) or leastconn")
	f.DurationVar(&opts.HealthCheck, "health-check", 0, "check the targets with a TCP connect this often")
	f.DurationVar(&opts.Drain, "drain", 30*time.Second, "on SIGTERM, wait this long for connections to end")
	f.StringVar(&opts.DataPath, "data-path", "", "how TCP is relayed: loops (epoll event loops, Linux's default) or goroutines (two per connection)")
	f.BoolVar(&opts.Stats, "stats", false, "show the counters of the forwarders running on this machine")
	f.BoolVar(&opts.Check, "check", false, "test each rule's forwarding on a free port, and its targets")
	f.BoolVar(&opts.JSON, "json", false, "with --stats or --check: print JSON")
	return cmd
}

// forwardRules builds the rules of the command line and the config file.
func forwardRules(opts forwardOptions) ([]forward.Rule, error) {
	allow, err := forward.ParsePrefixes(opts.Allow)
	if err != nil {
		return nil, usageErrorf("--allow: %v", err)
	}
	deny, err := forward.ParsePrefixes(opts.Deny)
	if err != nil {
		return nil, usageErrorf("--deny: %v", err)
	}
	if opts.Via != "" {
		if _, err := sshtun.ParseTarget(opts.Via); err != nil {
			return nil, usageErrorf("--via %s", err.(*sshtun.TargetError).Detail())
		}
	}
	var rules []forward.Rule
	cmdline := append(append([]string{}, opts.Rules...), opts.Remote...)
	for i, s := range cmdline {
		parse := forward.ParseRule
		if i >= len(opts.Rules) {
			parse = forward.ParseRemoteRule
		}
		r, err := parse(s)
		if err != nil {
			return nil, usageErrorf("%v", strings.TrimPrefix(err.Error(), "forward: "))
		}
		r.Via = opts.Via
		r.MaxConns, r.IdleTimeout, r.ConnectTimeout = opts.MaxConns, opts.IdleTimeout, opts.ConnectTimeout
		r.Allow, r.Deny, r.HealthCheck = allow, deny, opts.HealthCheck
		r.Balance = forward.Balance(opts.Balance)
		if opts.ProxyProtocol != 0 {
			if r.Proto == forward.UDP {
				return nil, usageErrorf("--proxy-protocol is for TCP rules; %s is UDP", s)
			}
			r.ProxyProtocol = opts.ProxyProtocol
		}
		if err := r.Validate(); err != nil {
			return nil, usageErrorf("%v", strings.TrimPrefix(err.Error(), "forward: "))
		}
		rules = append(rules, r)
	}
	if opts.Config != "" {
		data, err := os.ReadFile(opts.Config)
		if err != nil {
			return nil, usageErrorf("--config %s: %v", opts.Config, errors.Unwrap(err))
		}
		fr, err := forward.ParseConfig(data)
		if err != nil {
			return nil, usageErrorf("--config %s: %v", opts.Config, strings.TrimPrefix(err.Error(), "forward: "))
		}
		if len(fr) == 0 && len(rules) == 0 {
			return nil, usageErrorf("--config %s has no rules", opts.Config)
		}
		rules = append(rules, fr...)
	}
	return rules, nil
}

func runForward(ctx context.Context, streams *term.IO, opts forwardOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if opts.Stats {
		return printForwardStats(ctx, streams, opts.JSON)
	}
	rules, err := forwardRules(opts)
	if err != nil {
		return err
	}
	// The SSH transport, when a rule needs it, or may after a reload.
	var ssh *sshtun.Manager
	if needed := usesSSH(rules); needed || opts.Config != "" {
		m, err := newSSHManager(streams, opts)
		switch {
		case err == nil:
			ssh = m
			defer ssh.Close()
		case needed:
			return err
		}
	}
	if opts.Check {
		return runForwardCheck(ctx, streams, rules, ssh, opts.JSON)
	}
	scan.RaiseFileLimit()
	var rt forwardRuntime
	rt.apply(rules, true)
	defer rt.restore()
	logf := func(format string, args ...any) {
		fmt.Fprintf(streams.Err, "%s portctl forward: %s\n", time.Now().Format(time.TimeOnly), fmt.Sprintf(format, args...))
	}
	f := forward.New(forward.Config{OnError: func(rule string, err error) { logf("%s: %v", rule, err) },
		DataPath: forward.DataPath(opts.DataPath), SSH: ssh})
	if err := f.Apply(rules); err != nil {
		f.Shutdown(context.Background())
		return err
	}
	if ssh != nil {
		// Like ssh: nothing is forwarded until the first login worked.
		if err := waitSSH(ctx, ssh, rules); err != nil {
			f.Shutdown(context.Background())
			return err
		}
		go logSSH(ctx, ssh, 250*time.Millisecond, logf)
	}
	logRules := func() {
		for _, r := range f.Rules() {
			a, _ := f.Addr(r.Key())
			logf("%s", ruleLine(r, a))
		}
	}
	logStats := func() {
		for _, s := range f.Stats() {
			logf("%s", statsLine(s, true))
		}
	}
	logRules()
	if stopStats, err := forward.PublishStats(f, forward.StatsDir()); err != nil {
		logf("no stats socket: %v", err)
	} else {
		defer stopStats()
	}

	// Ctrl-C and SIGTERM end ctx (Run); SIGHUP reloads.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var lastMod time.Time
	var watch <-chan time.Time // ticks only with a config file
	if opts.Config != "" {
		if fi, err := os.Stat(opts.Config); err == nil {
			lastMod = fi.ModTime()
		}
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		watch = t.C
	}
	reload := func(why string) {
		rules, err := forwardRules(opts)
		if err != nil {
			logf("not reloaded (%s): %v", why, err)
			return
		}
		logStats()
		rt.apply(rules, false)
		if err := f.Apply(rules); err != nil {
			logf("reloaded (%s), with errors: %v", why, err)
		} else {
			logf("reloaded (%s)", why)
		}
		logRules()
	}
	for {
		select {
		case <-hup:
			reload("SIGHUP")
		case <-watch:
			if fi, err := os.Stat(opts.Config); err == nil && !fi.ModTime().Equal(lastMod) {
				lastMod = fi.ModTime()
				reload(opts.Config + " changed")
			}
		case <-ctx.Done():
			shutdownForward(f, opts.Drain, logf)
			return nil
		}
	}
}

// ruleLine is a running rule on one log line: where it listens, where it
// goes, and through what.
func ruleLine(r forward.Rule, a netip.AddrPort) string {
	var line string
	switch r.Mode {
	case forward.ModeSOCKS:
		line = fmt.Sprintf("socks5 %s -> any target", a)
	case forward.ModeRemote:
		line = fmt.Sprintf("tcp %s on %s -> %s", a, r.Via, strings.Join(r.Backends, ", "))
	default:
		line = fmt.Sprintf("%s %s -> %s", r.Proto, a, strings.Join(r.Backends, ", "))
	}
	if r.Via != "" && r.Mode != forward.ModeRemote {
		line += " via " + r.Via
	}
	return line
}

// shutdownForward drains the forwarder for at most drain.
func shutdownForward(f *forward.Forwarder, drain time.Duration, logf func(string, ...any)) {
	logf("stopping: no new connections; waiting up to %v for the open ones", drain)
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err := f.Shutdown(ctx)
	for _, s := range f.Stats() { // the final counters, the drained connections' bytes included
		logf("%s", statsLine(s, false))
	}
	if err != nil {
		logf("closed the connections still open after %v", drain)
	}
}

// statsLine is a rule's counters on one log line, with the connections
// still active when asked.
func statsLine(s forward.Stats, active bool) string {
	conns := fmt.Sprintf("%d connections", s.Conns)
	if active {
		conns += fmt.Sprintf(" (%d active)", s.Active)
	}
	return fmt.Sprintf("%s: %s, %s in, %s out, %d refused, %d errors", s.Name, conns,
		humanBytes(s.BytesIn), humanBytes(s.BytesOut), s.Refused, s.Errors)
}

// humanBytes writes a byte count with a binary unit.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// printForwardStats asks every running forwarder for its counters.
func printForwardStats(ctx context.Context, streams *term.IO, asJSON bool) error {
	procs := forward.CollectStats(ctx, forward.StatsDir())
	if asJSON {
		return writeJSON(streams.Out, procs)
	}
	if len(procs) == 0 {
		return negativef("no portctl forward is running (none answers in %s)", forward.StatsDir())
	}
	st := streams.Style()
	t := term.NewTable("PID", "RULE", "LISTEN", "CONNS", "ACTIVE", "IN", "OUT", "REFUSED", "ERRORS", "TARGETS")
	for _, p := range procs {
		for _, r := range p.Rules {
			var targets []string
			for _, b := range r.Backends {
				state := ""
				if !b.Healthy {
					state = " " + st.Red("down")
				}
				targets = append(targets, b.Target+state)
			}
			listen := fmt.Sprintf("%s/%s", r.Proto, r.Listen)
			switch r.Mode {
			case forward.ModeRemote:
				listen = fmt.Sprintf("%s on %s", r.Listen, r.Via)
			case forward.ModeSOCKS:
				listen = "socks5/" + r.Listen.String()
				targets = []string{"the clients' choice"}
			}
			if r.Via != "" && r.Mode != forward.ModeRemote {
				targets = append(targets, "via "+r.Via)
			}
			t.Row(strconv.Itoa(p.PID), r.Name, listen, strconv.FormatUint(r.Conns, 10),
				strconv.FormatInt(r.Active, 10), humanBytes(r.BytesIn), humanBytes(r.BytesOut),
				strconv.FormatUint(r.Refused, 10), strconv.FormatUint(r.Errors, 10), strings.Join(targets, ", "))
		}
	}
	if err := t.Render(streams.Out, streams.Width(), st); err != nil {
		return err
	}
	if hosts := sshHostsTable(procs, st); hosts.Len() > 0 {
		fmt.Fprintln(streams.Out)
		return hosts.Render(streams.Out, streams.Width(), st)
	}
	return nil
}

// runForwardCheck tests each rule's options on a free loopback port
// against built-in backends.
func runForwardCheck(ctx context.Context, streams *term.IO, rules []forward.Rule, ssh *sshtun.Manager, asJSON bool) error {
	var results []forward.CheckResult
	failed := false
	for _, r := range rules {
		res := forward.Check(ctx, r, ssh)
		failed = failed || !res.Passed
		results = append(results, res)
	}
	if asJSON {
		if err := writeJSON(streams.Out, results); err != nil {
			return err
		}
	} else {
		st := streams.Style()
		for _, res := range results {
			verdict := st.Green("pass")
			if !res.Passed {
				verdict = st.Red("FAIL")
			}
			fmt.Fprintf(streams.Out, "%s  %s\n", verdict, res.Rule)
			for _, c := range res.Checks {
				fmt.Fprintf(streams.Out, "  ok    %s\n", c)
			}
			for _, c := range res.Failed {
				fmt.Fprintf(streams.Out, "  %s  %s\n", st.Red("fail"), c)
			}
			for _, c := range res.Targets {
				fmt.Fprintf(streams.Out, "  %s  %s\n", st.Yellow("warn"), c)
			}
		}
	}
	if failed {
		return negativef("a rule failed its check")
	}
	return nil
}
