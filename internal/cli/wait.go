package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/probe"
)

// waitOptions are the flags and arguments of `portctl wait`.
type waitOptions struct {
	Targets  []string
	Command  []string // to run once every target is ready; after "--"
	Timeout  time.Duration
	Interval time.Duration
	Family   probe.Family
	Quiet    bool
	JSON     bool // print the outcome per target as JSON (not with a command)
}

// waitTargetJSON is one target in `wait --json`.
type waitTargetJSON struct {
	Target    string  `json:"target"`
	Ready     bool    `json:"ready"`
	Address   string  `json:"address,omitempty"`
	ElapsedMS float64 `json:"elapsed_ms"`
	Attempts  int     `json:"attempts"`
	LastState string  `json:"last_state,omitempty"`
	Reason    string  `json:"reason,omitempty"`
}

// waitResult is the JSON document `wait --json` prints.
type waitResult struct {
	Ready   bool             `json:"ready"`
	Targets []waitTargetJSON `json:"targets"`
}

func waitJSON(results []probe.WaitResult) waitResult {
	out := waitResult{Ready: len(results) > 0, Targets: []waitTargetJSON{}}
	for _, r := range results {
		t := waitTargetJSON{Target: r.Target.String(), Ready: r.Ready, Attempts: r.Attempts,
			ElapsedMS: float64(r.Elapsed.Microseconds()) / 1000, LastState: r.Last.State.String(), Reason: r.Last.Reason}
		if r.Ready {
			t.Address, t.LastState, t.Reason = r.Addr.String(), "open", ""
		}
		out.Ready = out.Ready && r.Ready
		out.Targets = append(out.Targets, t)
	}
	return out
}

const defaultWaitTimeout = 30 * time.Second

// newWaitCmd builds `wait`; runF, when not nil, replaces the real run.
func newWaitCmd(streams *term.IO, runF func(waitOptions) error) *cobra.Command {
	opts := waitOptions{Timeout: defaultWaitTimeout, Interval: probe.DefaultInterval}
	var ipv4, ipv6 bool
	cmd := &cobra.Command{
		Use:   "wait HOST:PORT... [-- COMMAND [ARG...]]",
		Short: "Block until every target accepts a TCP connection, then run a command",
		Long: `Try to connect to every target, all in parallel, until each accepts a TCP
connection, pausing between attempts from --interval, doubling up to 2s.
A target is ready when any address its name resolves to accepts; names are
resolved again on every attempt. Progress goes to stderr unless -q.

When a command follows "--", it runs once every target is ready, with
portctl's stdin, stdout and stderr, and portctl exits with its exit code.

Exit codes: 0 when every target is ready (or the command's own code), 1
when --timeout passes first (0 waits forever), 130 when interrupted.`,
		Example: `  portctl wait localhost:5432
  portctl wait db:5432 cache:6379 --timeout 1m -- ./run-tests
  portctl wait -q localhost:8080 -- curl -s http://localhost:8080/health`,
		Args: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			switch {
			case dash == 0 || dash < 0 && len(args) == 0:
				return usageErrorf("wait needs at least one target before any command (want %s)", probe.TargetForm)
			case dash > 0 && dash == len(args):
				return usageErrorf("wait: nothing follows \"--\" (want -- COMMAND [ARG...], or no \"--\")")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Targets = args
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				opts.Targets, opts.Command = args[:dash], args[dash:]
			}
			fam, err := familyFlags(ipv4, ipv6)
			if err != nil {
				return err
			}
			opts.Family = fam
			if opts.JSON && len(opts.Command) > 0 {
				return usageErrorf("--json cannot be combined with a command after --: the command's output goes to stdout")
			}
			if opts.Timeout < 0 {
				return usageErrorf("--timeout %s: want a duration such as 30s or 2m, or 0 to wait forever", opts.Timeout)
			}
			if opts.Interval <= 0 {
				return usageErrorf("--interval %s: want a positive duration such as 100ms", opts.Interval)
			}
			if runF != nil {
				return runF(opts)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runWait(ctx, streams, opts)
		},
	}
	cmd.Flags().DurationVarP(&opts.Timeout, "timeout", "t", opts.Timeout, "give up after this long; 0 waits forever")
	cmd.Flags().DurationVar(&opts.Interval, "interval", opts.Interval, "pause after the first failed attempt; it doubles up to 2s")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print no progress")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print each target's outcome as JSON (not with -- CMD)")
	cmd.Flags().BoolVarP(&ipv4, "ipv4", "4", false, "use IPv4 addresses only")
	cmd.Flags().BoolVarP(&ipv6, "ipv6", "6", false, "use IPv6 addresses only")
	return cmd
}

func runWait(ctx context.Context, streams *term.IO, opts waitOptions) error {
	targets, err := parseTargets(streams, opts.Targets, opts.Family)
	if err != nil {
		return err
	}
	if len(opts.Command) > 0 {
		// Fail before waiting, not after, when the command cannot run.
		if _, err := exec.LookPath(opts.Command[0]); err != nil {
			return &statusError{code: 127, msg: fmt.Sprintf("cannot run %q: %v", opts.Command[0], unwrapExec(err))}
		}
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	cfg := probe.WaitConfig{Config: probe.Config{Family: opts.Family}, Interval: opts.Interval}
	if !opts.Quiet {
		cfg.Progress = waitProgress(streams)
	}
	results, err := probe.Wait(ctx, targets, cfg)
	if opts.JSON && results != nil {
		if werr := writeJSON(streams.Out, waitJSON(results)); werr != nil {
			return werr
		}
	}
	if err != nil {
		var pending []string
		for _, r := range results {
			if !r.Ready {
				pending = append(pending, fmt.Sprintf("%s (%s)", r.Target, r.Last.Reason))
			}
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return negativef("timed out after %s; not ready: %s", opts.Timeout, strings.Join(pending, ", "))
		}
		if errors.Is(err, context.Canceled) {
			return interrupted("waiting", pending)
		}
		return err
	}
	if len(opts.Command) == 0 {
		return nil
	}
	return runChild(streams, opts.Command)
}

// waitProgress returns the reporter that writes progress to stderr: a
// line when a target first fails or fails for a new reason, and one when it
// is ready. Wait serialises the calls.
func waitProgress(streams *term.IO) func(probe.Progress) {
	last := map[string]string{} // target -> last reason printed
	return func(p probe.Progress) {
		name := p.Target.String()
		if p.Result.State == probe.StateOpen {
			fmt.Fprintf(streams.Err, "%s ready after %s\n", name, fmtDuration(p.Elapsed))
			return
		}
		if last[name] != p.Result.Reason {
			last[name] = p.Result.Reason
			fmt.Fprintf(streams.Err, "waiting for %s (%s)…\n", name, p.Result.Reason)
		}
	}
}

// runChild runs argv with the streams passed through and returns its exit
// code as a statusError (nil for 0). portctl stays until the child ends:
// Ctrl-C reaches the child from the terminal (so it is not sent a second
// time, as go run does), and SIGTERM, which is sent to portctl alone, is
// passed on to it.
func runChild(streams *term.IO, argv []string) error {
	c := exec.Command(argv[0], argv[1:]...)
	c.Stdin, c.Stdout, c.Stderr = streams.In, streams.Out, streams.Err
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := c.Start(); err != nil {
		return &statusError{code: 127, msg: fmt.Sprintf("cannot run %q: %v", argv[0], unwrapExec(err))}
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGTERM {
				_ = c.Process.Signal(s) // not possible on every OS
			}
		case err := <-done:
			return childStatus(argv[0], err)
		}
	}
}

// childStatus turns the end of a child into portctl's exit code: its own
// code, or 128+N when signal N killed it, as shells report it.
func childStatus(name string, err error) error {
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("run %s: %w", name, err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return &statusError{code: 128 + int(ws.Signal())}
	}
	return &statusError{code: ee.ExitCode()}
}

// unwrapExec drops the "exec: " wrapping from a LookPath or Start error.
func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}
