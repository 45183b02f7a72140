package cli

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/containers"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/sockets"
)

// killOptions are the flags and argument of `portctl kill`.
type killOptions struct {
	Port    uint16
	Addr    netip.Addr
	Protos  sockets.Proto
	Timeout time.Duration
	Force   bool
	Yes     bool
	DryRun  bool
	NetNS   string // the namespace whose port it is; processes are signalled wherever they run
	JSON    bool
}

func newKillCmd(streams *term.IO, runF func(context.Context, killOptions) error) *cobra.Command {
	var (
		opts  = killOptions{Timeout: 5 * time.Second}
		proto string
	)
	cmd := &cobra.Command{
		Use:   "kill PORT|ADDR:PORT",
		Short: "Stop the processes listening on a port",
		Long: `Send SIGTERM to every process holding the port's listening socket (several
after a fork), wait for them to exit, and report whether the port is free.
SIGKILL follows only with --force. Asks first unless --yes. Never signals
PID 1 or portctl itself; where systemd socket activation, a systemd service
or a container holds the port, says which command frees it for good.`,
		Example: `  portctl kill 3000
  portctl kill 8080 --yes --timeout 10s --force
  portctl kill 5432 --dry-run`,
		Args: exactArgs(1, "a port, a service name or ADDR:PORT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Protos, err = parseSockProto(proto); err != nil {
				return err
			}
			if opts.Port, opts.Addr, err = parsePortArg(args[0]); err != nil {
				return err
			}
			if opts.Timeout <= 0 {
				return usageErrorf("--timeout %s: want a positive duration such as 5s", opts.Timeout)
			}
			if opts.NetNS, err = checkNetNS(opts.NetNS); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runKill(cmd.Context(), streams, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&proto, "proto", "P", "", "tcp or udp (default both)")
	f.DurationVar(&opts.Timeout, "timeout", opts.Timeout, "how long to wait for the processes to exit")
	f.BoolVarP(&opts.Force, "force", "f", false, "send SIGKILL to processes still running after --timeout")
	f.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	f.BoolVarP(&opts.DryRun, "dry-run", "n", false, "say what would be signalled, and do nothing")
	f.StringVar(&opts.NetNS, "netns", "", "the port of this network namespace (a name under /run/netns, or a path)")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

// killTarget is one process `kill` acts on, and what happened to it.
type killTarget struct {
	Process *sockets.Process `json:"process"`
	Action  string           `json:"action"` // signalled, refused, would-signal, not-found
	Signals []string         `json:"signals"`
	Exited  bool             `json:"exited"`
	Reason  string           `json:"reason,omitempty"`
}

// killResult is the JSON document `kill --json` prints.
type killResult struct {
	Port    uint16       `json:"port"`
	Targets []killTarget `json:"targets"`
	Freed   bool         `json:"freed"`
	DryRun  bool         `json:"dry_run"`
	Advice  []string     `json:"advice"`
}

func runKill(ctx context.Context, streams *term.IO, opts killOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	res, act, err := planKill(ctx, opts)
	if err != nil {
		return err
	}
	w, st := streams.Out, streams.Style()
	if !opts.JSON {
		for _, t := range res.Targets {
			line := fmt.Sprintf("%d %s", t.Process.PID, st.Bold(t.Process.Name))
			if len(t.Process.Cmdline) > 0 {
				line += st.Dim("  " + clip(strings.Join(t.Process.Cmdline, " "), 80))
			}
			switch t.Action {
			case "refused":
				line += "  " + st.Yellow("refused: "+t.Reason)
			case "would-signal":
				line += "  would get SIGTERM" + map[bool]string{true: ", then SIGKILL after " + opts.Timeout.String(), false: ""}[opts.Force]
			}
			fmt.Fprintf(w, "port %d held by %s\n", opts.Port, line)
		}
		for _, a := range res.Advice {
			fmt.Fprintf(w, "  %s %s\n", st.Dim("•"), a)
		}
	}
	if opts.DryRun || len(act) == 0 {
		if opts.JSON {
			writeJSON(w, res)
		}
		if len(act) == 0 && !opts.DryRun {
			return negativef("no process on port %d may be signalled", opts.Port)
		}
		return nil
	}
	if !opts.Yes {
		if !streams.IsInTerminal() {
			return usageErrorf("kill %d: asking for confirmation needs a terminal; pass --yes to proceed without asking", opts.Port)
		}
		fmt.Fprintf(streams.Err, "Send SIGTERM to %s? [y/N] ", plural(len(act), "process"))
		answer, _ := bufio.NewReader(streams.In).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return negativef("nothing signalled")
		}
	}
	start := time.Now()
	exited := executeKill(ctx, &res, act, opts)
	if opts.JSON {
		if err := writeJSON(w, res); err != nil {
			return err
		}
	} else {
		for _, i := range act {
			t := res.Targets[i]
			state := st.Green("exited")
			if !t.Exited {
				state = st.Red("still running")
			}
			if t.Reason != "" {
				state += " (" + t.Reason + ")"
			}
			fmt.Fprintf(w, "%s → %d %s: %s\n", strings.Join(t.Signals, ", then "), t.Process.PID, t.Process.Name, state)
		}
		if res.Freed {
			fmt.Fprintf(w, "port %d is free (%s)\n", opts.Port, time.Since(start).Round(time.Millisecond))
		}
	}
	return killVerdict(res, exited, opts)
}

// planKill finds the processes holding the port's listening sockets and
// decides what happens to each: the indexes of those to signal are
// returned. An error says why there is nothing to act on.
func planKill(ctx context.Context, opts killOptions) (killResult, []int, error) {
	rep, err := portUse(ctx, opts.Port, opts.Addr, opts.Protos, opts.NetNS)
	if err != nil {
		return killResult{}, nil, err
	}
	use := rep.use
	if len(use.Listeners)+len(use.Bound) == 0 {
		switch use.Verdict() {
		case sockets.VerdictClient:
			return killResult{}, nil, negativef("nothing listens on port %d: it is the source port of outgoing connections ('portctl who %d' shows them)", opts.Port, opts.Port)
		case sockets.VerdictTimeWait:
			return killResult{}, nil, negativef("nothing listens on port %d: only TIME-WAIT remnants, which expire in %s", opts.Port, use.LastExpiry().Round(time.Second))
		}
		return killResult{}, nil, negativef("nothing listens on port %d", opts.Port)
	}
	holders := use.Holders()
	if slices.ContainsFunc(holders, containers.Nameable) {
		cs, _ := containers.List(ctx, engines()) // without an engine, the advice names what /proc tells
		nameHolders(containers.NewIndex(cs), use)
	}
	if len(holders) == 0 {
		if os.Geteuid() != 0 {
			return killResult{}, nil, needRoot(fmt.Sprintf("port %d is held by another user's process: stopping it", opts.Port), "CAP_KILL", fmt.Sprintf("portctl kill %d", opts.Port))
		}
		return killResult{}, nil, negativef("port %d is held by a process not visible here (another PID namespace, or the kernel)", opts.Port)
	}
	res := killResult{Port: opts.Port, DryRun: opts.DryRun, Advice: stopAdvice(holders, opts.Port)}
	if res.Advice == nil {
		res.Advice = []string{}
	}
	var act []int
	for _, p := range holders {
		t := killTarget{Process: p, Signals: []string{}}
		switch {
		case p.PID == 1:
			t.Action, t.Reason = "refused", "PID 1 is the init system; stopping it would stop the machine"
		case p.PID == os.Getpid():
			t.Action, t.Reason = "refused", "that is portctl itself"
		case holdsForContainer(p):
			t.Action, t.Reason = "refused", engineRefusal(p)
		case opts.DryRun:
			t.Action = "would-signal"
		default:
			t.Action = "signal"
			act = append(act, len(res.Targets))
		}
		res.Targets = append(res.Targets, t)
	}
	return res, act, nil
}

// engineRefusal says why kill leaves a container engine's process alone,
// and what frees the port instead.
func engineRefusal(p *sockets.Process) string {
	if p.ContainerInfo != nil {
		return fmt.Sprintf("%s publishes the port for container %s; killing it would not free the port for good: %s", p.Name, p.ContainerInfo.Name, containerStop(*p.ContainerInfo))
	}
	return fmt.Sprintf("docker-proxy publishes the port for the container at %s; killing it would only break the published port: 'docker ps --filter publish=%d' names the container, and 'docker stop <container>' frees the port", p.DockerProxy.Container, p.DockerProxy.Host.Port())
}

// executeKill sends SIGTERM to the targets act names (SIGKILL after
// opts.Timeout with opts.Force), waits for them to exit, and records
// whether the port is free. It reports whether they all exited.
func executeKill(ctx context.Context, res *killResult, act []int, opts killOptions) bool {
	signal := func(i int, force bool) {
		t := &res.Targets[i]
		if err := signalProcess(t.Process.PID, force); err != nil && !processGone(t.Process.PID) {
			t.Reason = err.Error()
			return
		}
		t.Signals = append(t.Signals, signalName(force))
		t.Action = "signalled"
	}
	waitExit := func(d time.Duration) bool {
		deadline := time.Now().Add(d)
		for {
			all := true
			for _, i := range act {
				t := &res.Targets[i]
				t.Exited = t.Exited || processGone(t.Process.PID)
				all = all && t.Exited
			}
			if all || time.Now().After(deadline) || ctx.Err() != nil {
				return all
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	for _, i := range act {
		signal(i, false)
	}
	exited := waitExit(opts.Timeout)
	if !exited && opts.Force {
		for _, i := range act {
			if !res.Targets[i].Exited {
				signal(i, true)
			}
		}
		exited = waitExit(3 * time.Second)
	}
	// A killed multithreaded process shows as a zombie while its other
	// threads, which share its files, finish exiting: give the sockets a
	// moment to close.
	for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		after, err := portUse(ctx, opts.Port, opts.Addr, opts.Protos, opts.NetNS)
		res.Freed = err == nil && len(after.use.Listeners)+len(after.use.Bound) == 0
		if res.Freed || !exited || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
	}
	return exited
}

// killVerdict is the error a kill ends with, nil when the port is free.
func killVerdict(res killResult, exited bool, opts killOptions) error {
	switch {
	case !exited && !opts.Force:
		return negativef("still running after %s; --force sends SIGKILL", opts.Timeout)
	case !exited:
		return negativef("some holders of port %d survived SIGKILL", opts.Port)
	case !res.Freed:
		return negativef("the holders exited but port %d is still held ('portctl who %d' says by what)", opts.Port, opts.Port)
	}
	return nil
}

// clip shortens s to n runes with an ellipsis.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
