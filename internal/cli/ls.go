package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/containers"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// lsOptions are the flags of `portctl ls`.
type lsOptions struct {
	All        bool
	TCP, UDP   bool
	MPTCP      bool
	IPv4, IPv6 bool
	Port       uint16
	RemotePort uint16
	States     []sockets.State
	PID        int
	Process    string
	NoProcs    bool
	NetNS      string
	AllNetNS   bool
	Watch      time.Duration // 0: once
	JSON       bool
}

func newLsCmd(streams *term.IO, runF func(context.Context, lsOptions) error) *cobra.Command {
	var (
		opts                lsOptions
		port, rport, states string
		watch               bool
		interval            time.Duration
	)
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "The socket table: who listens where, and connections with -a",
		Long: `List sockets with the process, user, systemd unit or container holding each,
and the service name of the port: like ss -tulnp, netstat -anop and lsof -i
in one. By default: listening TCP sockets and bound UDP sockets.

Without root, sockets of other users' processes show the uid the kernel
reports and '?' for the process; a line on stderr says how many.`,
		Example: `  portctl ls                 # what listens here
  portctl ls -a -t           # every TCP socket, connections included
  portctl ls -p 5432         # only port 5432 (filtered in the kernel)
  portctl ls --state time-wait
  portctl ls --process nginx --json
  portctl ls --all-netns     # containers' own listeners too
  portctl ls --watch`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if port != "" {
				if opts.Port, err = parseFilterPort("--port", port); err != nil {
					return err
				}
			}
			if rport != "" {
				if opts.RemotePort, err = parseFilterPort("--remote-port", rport); err != nil {
					return err
				}
			}
			if states != "" {
				for _, s := range strings.Split(states, ",") {
					st, err := sockets.ParseState(s)
					if err != nil {
						return usageErrorf("--state: %v", err)
					}
					opts.States = append(opts.States, st)
				}
			}
			if opts.PID < 0 {
				return usageErrorf("--pid %d: want a process ID", opts.PID)
			}
			if opts.NetNS, err = checkNetNS(opts.NetNS); err != nil {
				return err
			}
			if opts.AllNetNS && opts.NetNS != "" {
				return usageErrorf("--netns and --all-netns: give one (--all-netns lists every namespace)")
			}
			if watch {
				if interval < 100*time.Millisecond {
					return usageErrorf("--interval %s: want at least 100ms", interval)
				}
				opts.Watch = interval
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLs(cmd.Context(), streams, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.All, "all", "a", false, "every state, connections included (default: listening and bound)")
	f.BoolVarP(&opts.TCP, "tcp", "t", false, "TCP sockets (MPTCP listeners included)")
	f.BoolVarP(&opts.UDP, "udp", "u", false, "UDP sockets")
	f.BoolVar(&opts.MPTCP, "mptcp", false, "MPTCP sockets only")
	f.BoolVarP(&opts.IPv4, "ipv4", "4", false, "IPv4 only")
	f.BoolVarP(&opts.IPv6, "ipv6", "6", false, "IPv6 only")
	f.StringVarP(&port, "port", "p", "", "only sockets whose local port is PORT")
	f.StringVar(&rport, "remote-port", "", "only sockets whose remote port is PORT")
	f.StringVar(&states, "state", "", "only these states, comma-separated (listen, established, time-wait, …)")
	f.IntVar(&opts.PID, "pid", 0, "only sockets held by this process ID")
	f.StringVar(&opts.Process, "process", "", "only sockets held by processes whose name or command contains this")
	f.BoolVar(&opts.NoProcs, "no-procs", false, "skip process attribution (fastest; shows uids)")
	f.StringVar(&opts.NetNS, "netns", "", "list the sockets of this network namespace (a name under /run/netns, or a path)")
	f.BoolVar(&opts.AllNetNS, "all-netns", false, "list the sockets of every network namespace (containers' too), with a NETNS column")
	f.BoolVarP(&watch, "watch", "w", false, "refresh until interrupted")
	f.DurationVar(&interval, "interval", time.Second, "refresh interval for --watch")
	f.BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

// parseFilterPort parses a port flag: a number 1-65535 or a service name.
func parseFilterPort(flag, s string) (uint16, error) {
	if isDigits(strings.TrimSpace(s)) {
		p, err := registry.ParsePort(s)
		if err != nil || p == 0 {
			return 0, usageErrorf("%s %q: want a port 1-65535 or a service name", flag, s)
		}
		return p, nil
	}
	if as := registry.Builtin().Name(s, 0); len(as) > 0 && isServiceName(s) {
		return as[0].Port, nil
	}
	return 0, usageErrorf("%s %q: want a port 1-65535 or a service name", flag, s)
}

// query turns the options into a sockets.Query.
func (o lsOptions) query() sockets.Query {
	q := sockets.ListeningQuery()
	switch {
	case o.MPTCP:
		q.Protos = sockets.MPTCP
	case o.TCP && !o.UDP:
		q.Protos = sockets.TCP
	case o.UDP && !o.TCP:
		q.Protos = sockets.UDP
	}
	switch {
	case o.IPv4 && !o.IPv6:
		q.Families = sockets.IPv4
	case o.IPv6 && !o.IPv4:
		q.Families = sockets.IPv6
	}
	if o.All {
		q.States, q.UDPStates = sockets.AllStates, sockets.AllStates
	}
	if len(o.States) > 0 {
		q.States = sockets.StatesOf(o.States...)
		q.UDPStates = q.States
	}
	q.LocalPort, q.RemotePort = o.Port, o.RemotePort
	q.Processes = !o.NoProcs || o.PID != 0 || o.Process != ""
	q.AllHolders = o.PID != 0 || o.Process != ""
	q.NetNS = o.NetNS
	return q
}

// keep applies the filters the kernel cannot: process ID and name.
func (o lsOptions) keep(s sockets.Socket) bool {
	if o.PID == 0 && o.Process == "" {
		return true
	}
	for _, p := range s.Processes {
		if o.PID != 0 && p.PID != o.PID {
			continue
		}
		if o.Process != "" && !processMatches(p, o.Process) {
			continue
		}
		return true
	}
	return false
}

func processMatches(p *sockets.Process, name string) bool {
	name = strings.ToLower(name)
	if strings.Contains(strings.ToLower(p.Name), name) {
		return true
	}
	if p.Exe != "" && strings.Contains(strings.ToLower(filepath.Base(p.Exe)), name) {
		return true
	}
	return len(p.Cmdline) > 0 && strings.Contains(strings.ToLower(strings.Join(p.Cmdline, " ")), name)
}

// lsResult is the JSON document `ls --json` prints.
type lsResult struct {
	Sockets      []socketJSON `json:"sockets"`
	Unattributed int          `json:"unattributed"`
	// Namespaces, with --all-netns, describes each socket's netns.
	Namespaces []sockets.Namespace `json:"namespaces,omitempty"`
}

func runLs(ctx context.Context, streams *term.IO, opts lsOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	reg := loadRegistry(streams)
	q := opts.query()
	once := func() error {
		list := sockets.List
		if opts.AllNetNS {
			list = sockets.ListAll
		}
		t, err := list(ctx, q)
		if err != nil {
			return err
		}
		var engines *containers.Index
		if q.Processes || opts.AllNetNS {
			engines = nameContainers(ctx, streams, t)
		}
		socks := t.Sockets[:0]
		for _, s := range t.Sockets {
			if opts.keep(s) {
				socks = append(socks, s)
			}
		}
		order := sortSockets(socks, t.Namespaces)
		if opts.JSON {
			sorted := make([]sockets.Socket, len(order))
			for k, i := range order {
				sorted[k] = socks[i]
			}
			return writeJSON(streams.Out, lsResult{Sockets: socketsJSON(sorted, reg), Unattributed: t.Unattributed, Namespaces: t.Namespaces})
		}
		if len(socks) == 0 {
			fmt.Fprintln(streams.Err, "portctl: no sockets match")
		} else if err := renderSockets(streams, socks, order, reg, q.Processes, t.Namespaces, engines); err != nil {
			return err
		}
		attributionHint(streams, t.Unattributed)
		return nil
	}
	if opts.Watch == 0 {
		return once()
	}
	tick := time.NewTicker(opts.Watch)
	defer tick.Stop()
	for {
		if streams.IsTerminal() && !opts.JSON {
			fmt.Fprint(streams.Out, "\x1b[H\x1b[2J") // home, clear screen
			fmt.Fprintf(streams.Out, "%s  every %s  (Ctrl-C to stop)\n\n", time.Now().Format("15:04:05"), opts.Watch)
		} else if !opts.JSON {
			fmt.Fprintf(streams.Out, "-- %s\n", time.Now().Format(time.RFC3339))
		}
		if err := once(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
