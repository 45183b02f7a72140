package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/probe"
	"github.com/portctl/portctl/registry"
	svcprobe "github.com/portctl/portctl/scan/probe"
	"github.com/portctl/portctl/scan/probe/nmapdb"
)

// checkOptions are the flags and arguments of `portctl check`.
type checkOptions struct {
	Targets []string
	Timeout time.Duration
	Family  probe.Family
	All     bool // every address of a host name, not only the first
	JSON    bool
	Service bool   // identify what answers on open ports
	Probes  string // --probes: an nmap-service-probes file
}

// newCheckCmd builds `check`; runF, when not nil, replaces the real run.
func newCheckCmd(streams *term.IO, runF func(checkOptions) error) *cobra.Command {
	opts := checkOptions{Timeout: probe.DefaultTimeout}
	var ipv4, ipv6 bool
	cmd := &cobra.Command{
		Use:   "check HOST:PORT...",
		Short: "Try one TCP connection to each target: open, closed or filtered",
		Long: `Make one TCP connection attempt to each target, all in parallel, and say
whether the port is open (it accepted), closed (the host refused: nothing
listens there) or filtered (no answer in time, or the host or network is
unreachable; the reason column says which), with the time the answer took.

A target is HOST:PORT: a host name, an IPv4 address or an IPv6 address in
brackets, and a port number or a service name (localhost:ssh). A host name
is checked at the first address it resolves to; -4 or -6 choose the
family, --all checks every address.

With --service, each open port is then identified: service, product and
version, the TLS handshake and certificate (subject, SANs, issuer, expiry),
HTTP status, title and headers, and warnings (legacy TLS, expiring
certificates, plain-text logins, stores without authentication).

The exit code is 0 when every target is open and 1 when any is not.`,
		Example: `  portctl check localhost:5432
  portctl check db.internal:postgresql cache.internal:6379 --timeout 500ms
  portctl check '[::1]:22' --json
  portctl check example.net:443 --service`,
		Args: targetArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Targets = args
			fam, err := familyFlags(ipv4, ipv6)
			if err != nil {
				return err
			}
			opts.Family = fam
			if opts.Timeout <= 0 {
				return usageErrorf("--timeout %s: want a positive duration such as 2s or 500ms", opts.Timeout)
			}
			if opts.Probes != "" && !opts.Service {
				return usageErrorf("--probes is for service detection: add --service")
			}
			if runF != nil {
				return runF(opts)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runCheck(ctx, streams, opts)
		},
	}
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", opts.Timeout, "give up on a target after this long")
	cmd.Flags().BoolVarP(&ipv4, "ipv4", "4", false, "use IPv4 addresses only")
	cmd.Flags().BoolVarP(&ipv6, "ipv6", "6", false, "use IPv6 addresses only")
	cmd.Flags().BoolVarP(&opts.All, "all", "a", false, "check every address a host name resolves to")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&opts.Service, "service", false, "identify the service on each open port, in full detail")
	cmd.Flags().StringVar(&opts.Probes, "probes", "", "with --service, extra probes from FILE in nmap's service-probes format (default: nmap's, when installed)")
	return cmd
}

// targetArgs requires at least one HOST:PORT argument.
func targetArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usageErrorf("%s needs at least one target (want %s)", cmd.Name(), probe.TargetForm)
	}
	return nil
}

// familyFlags turns -4 and -6 into a family.
func familyFlags(ipv4, ipv6 bool) (probe.Family, error) {
	switch {
	case ipv4 && ipv6:
		return 0, usageErrorf("-4 and -6 exclude each other; give one, or neither for either family")
	case ipv4:
		return probe.IPv4, nil
	case ipv6:
		return probe.IPv6, nil
	}
	return probe.AnyFamily, nil
}

// parseTargets parses every argument as HOST:PORT and resolves service
// names, so that bad input is a usage error before any connection is
// made. The registry is loaded only when a service name needs it.
func parseTargets(streams *term.IO, args []string, fam probe.Family) ([]probe.Target, error) {
	var reg *registry.Registry
	out := make([]probe.Target, 0, len(args))
	for _, a := range args {
		t, err := probe.ParseTarget(a)
		if err != nil {
			return nil, err
		}
		if t.Service != "" {
			if reg == nil {
				reg = loadRegistry(streams)
			}
			if t, err = t.Resolved(reg); err != nil {
				return nil, err
			}
		}
		if ip, ok := t.Addr(); ok {
			if fam == probe.IPv4 && !ip.Is4() {
				return nil, usageErrorf("target %q is an IPv6 address but -4 asks for IPv4", a)
			}
			if fam == probe.IPv6 && !ip.Is6() {
				return nil, usageErrorf("target %q is an IPv4 address but -6 asks for IPv6", a)
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// checkResult is one line of `check --json`. Field names are a stable
// contract.
type checkResult struct {
	Target    string      `json:"target"`
	Host      string      `json:"host"`
	Port      uint16      `json:"port"`
	Service   string      `json:"service"`
	Address   string      `json:"address"` // empty when the host did not resolve
	State     probe.State `json:"state"`
	Reason    string      `json:"reason"` // empty when open
	LatencyMS float64     `json:"latency_ms"`
	// Detected is what --service found on an open port.
	Detected *svcprobe.Service `json:"detected,omitempty"`
}

// checkDoc is the JSON document `check --json` prints.
type checkDoc struct {
	TimeoutMS int64         `json:"timeout_ms"`
	Results   []checkResult `json:"results"`
}

func runCheck(ctx context.Context, streams *term.IO, opts checkOptions) error {
	targets, err := parseTargets(streams, opts.Targets, opts.Family)
	if err != nil {
		return err
	}
	var db *nmapdb.DB
	if opts.Service {
		if db, err = loadProbeDB(opts.Probes); err != nil {
			return err
		}
	}
	cfg := probe.Config{Timeout: opts.Timeout, Family: opts.Family, AllAddresses: opts.All}
	results, err := probe.Check(ctx, targets, cfg)
	if err != nil {
		return interrupted("checking", nil)
	}
	var detected []*svcprobe.Service
	if opts.Service {
		detected = detectOpen(ctx, results, svcprobe.Config{DB: db})
		if ctx.Err() != nil {
			return interrupted("identifying services", nil)
		}
	}
	doc := checkDoc{TimeoutMS: opts.Timeout.Milliseconds(), Results: make([]checkResult, 0, len(results))}
	var notOpen []string
	for i, r := range results {
		cr := checkResult{
			Target: r.Target.String(), Host: r.Target.Host, Port: r.Target.Port, Service: r.Target.Service,
			State: r.State, Reason: r.Reason, LatencyMS: millis(r.Latency),
		}
		if r.Addr.IsValid() {
			cr.Address = r.Addr.String()
		}
		if detected != nil {
			cr.Detected = detected[i]
		}
		doc.Results = append(doc.Results, cr)
		if r.State != probe.StateOpen {
			notOpen = append(notOpen, fmt.Sprintf("%s (%s)", cr.Target, r.Reason))
		}
	}
	if opts.JSON {
		if err := writeJSON(streams.Out, doc); err != nil {
			return err
		}
	} else if err := printCheck(streams, doc); err != nil {
		return err
	}
	if len(notOpen) > 0 {
		return negativef("not open: %s", strings.Join(notOpen, ", "))
	}
	return nil
}

func printCheck(streams *term.IO, doc checkDoc) error {
	st := streams.Style()
	t := term.NewTable("TARGET", "ADDRESS", "STATE", "LATENCY", "REASON")
	for _, r := range doc.Results {
		addr, lat, reason := r.Address, fmtDuration(time.Duration(r.LatencyMS*float64(time.Millisecond))), r.Reason
		if addr == "" {
			addr, lat = "-", "-"
		}
		if reason == "" {
			reason = "-"
		}
		t.Row(r.Target, addr, stateLabel(st, r.State), lat, reason)
	}
	if err := t.Render(streams.Out, streams.Width(), st); err != nil {
		return err
	}
	for _, r := range doc.Results {
		if r.Detected != nil {
			fmt.Fprintf(streams.Out, "\n%s\n", st.Bold(r.Target+" ("+r.Address+")"))
			printServiceDetail(streams.Out, st, r.Detected)
		}
	}
	return nil
}

// detectOpen identifies the service of each open result, all at once,
// returning one entry per result (nil for those not open).
func detectOpen(ctx context.Context, results []probe.Result, cfg svcprobe.Config) []*svcprobe.Service {
	out := make([]*svcprobe.Service, len(results))
	var wg sync.WaitGroup
	for i, r := range results {
		if r.State != probe.StateOpen {
			continue
		}
		host := r.Target.Host // a name for SNI and Host, never an address
		if _, isAddr := r.Target.Addr(); isAddr {
			host = ""
		}
		wg.Go(func() {
			s := svcprobe.Detect(ctx, cfg, svcprobe.Target{Addr: r.Addr, Proto: registry.TCP, Host: host})
			out[i] = &s
		})
	}
	wg.Wait()
	return out
}

// stateLabel writes a state as a word, coloured when colour is on.
func stateLabel(st term.Style, s probe.State) string {
	switch s {
	case probe.StateOpen:
		return st.Green(s.String())
	case probe.StateClosed:
		return st.Red(s.String())
	case probe.StateFiltered:
		return st.Yellow(s.String())
	}
	return s.String()
}

// millis returns d in milliseconds, to the microsecond.
func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// fmtDuration writes d with three significant digits at most: 412µs,
// 1.23ms, 45.6ms, 1.2s, 2m5s.
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < 10*time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// interrupted is the error of a command stopped by Ctrl-C or SIGTERM: exit
// code 130, as shells give a process stopped by SIGINT.
func interrupted(doing string, pending []string) error {
	msg := "interrupted while " + doing
	if len(pending) > 0 {
		msg += "; not ready: " + strings.Join(pending, ", ")
	}
	return &statusError{code: 130, msg: msg}
}
