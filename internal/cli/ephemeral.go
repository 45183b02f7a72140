package cli

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/ephemeral"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// ephemeralOptions are the flags of `portctl ephemeral`.
type ephemeralOptions struct {
	Warn  float64 // percent of the range one destination may use before exit 1
	Top   int
	NetNS string
	JSON  bool
}

func newEphemeralCmd(streams *term.IO, runF func(context.Context, ephemeralOptions) error) *cobra.Command {
	opts := ephemeralOptions{Warn: 80, Top: 10}
	cmd := &cobra.Command{
		Use:   "ephemeral",
		Short: "Ephemeral (client) port usage, and the destinations closest to exhaustion",
		Long: `Show the OS's ephemeral port range and reserved ports, the sockets using the
range by state, and the (source IP, destination IP, destination port) groups
closest to exhaustion: each group can use at most the size of the range,
because every connection in it needs a distinct source port.

Exit status: 1 when a group uses more than --warn percent of the range.`,
		Example: `  portctl ephemeral
  portctl ephemeral --warn 50 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Warn <= 0 || opts.Warn > 100 {
				return usageErrorf("--warn %g: want a percentage above 0 and at most 100", opts.Warn)
			}
			if opts.Top < 1 {
				return usageErrorf("--top %d: want 1 or more", opts.Top)
			}
			var err error
			if opts.NetNS, err = checkNetNS(opts.NetNS); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runEphemeral(cmd.Context(), streams, opts)
		},
	}
	cmd.Flags().Float64Var(&opts.Warn, "warn", opts.Warn, "exit 1 when a destination uses more than this percentage of the range")
	cmd.Flags().IntVar(&opts.Top, "top", opts.Top, "show this many destinations")
	cmd.Flags().StringVar(&opts.NetNS, "netns", "", "look in this network namespace (a name under /run/netns, or a path)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

func runEphemeral(ctx context.Context, streams *term.IO, opts ephemeralOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	host, _ := netconf.ReadNetNS(opts.NetNS) // the documented defaults stand in for what cannot be read
	q := sockets.Query{Protos: sockets.TCP | sockets.UDP, Families: sockets.AllFamilies,
		States: sockets.AllStates &^ sockets.StatesOf(sockets.Listen), UDPStates: sockets.AllStates, NetNS: opts.NetNS}
	t, err := sockets.List(ctx, q)
	if err != nil {
		return err
	}
	res := ephemeral.Usage(host, t.Sockets, opts.Warn, opts.Top)
	if ss, err := sockets.ReadSockstat(); err == nil && opts.NetNS == "" {
		res.Sockstat = ss
	}
	if opts.JSON {
		if err := writeJSON(streams.Out, res); err != nil {
			return err
		}
	} else {
		printEphemeral(streams, res)
	}
	if res.Exhausting {
		return negativef("")
	}
	return nil
}

func printEphemeral(streams *term.IO, res ephemeral.Report) {
	w, st := streams.Out, streams.Style()
	def := ""
	if res.Default {
		def = " [OS default]"
	}
	fmt.Fprintf(w, "%s %s%s: %d ports, %d usable\n", st.Bold("Ephemeral range"), res.Range, def, res.Size, res.Available)
	if len(res.Reserved) > 0 {
		fmt.Fprintf(w, "  reserved: %s\n", strings.Join(res.Reserved, ", "))
	}
	if res.TCPTWReuse >= 0 {
		fmt.Fprintf(w, "  tcp_tw_reuse: %d %s\n", res.TCPTWReuse, st.Dim(map[int]string{0: "(off)", 1: "(on)", 2: "(loopback only)"}[res.TCPTWReuse]))
	}
	var states []string
	for k, n := range res.ByState {
		states = append(states, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(states)
	fmt.Fprintf(w, "\n%s %d", st.Bold("Sockets using the range:"), res.InRange)
	if len(states) > 0 {
		fmt.Fprintf(w, "  (%s)", strings.Join(states, ", "))
	}
	fmt.Fprintln(w)
	if tcp, ok := res.Sockstat["TCP"]; ok {
		fmt.Fprintf(w, "  kernel: TCP in use %d, orphaned %d, TIME-WAIT %d, allocated %d", tcp["inuse"], tcp["orphan"], tcp["tw"], tcp["alloc"])
		if udp, ok := res.Sockstat["UDP"]; ok {
			fmt.Fprintf(w, "; UDP in use %d", udp["inuse"])
		}
		fmt.Fprintln(w)
	}
	if len(res.Groups) > 0 {
		fmt.Fprintf(w, "\n%s (each may use at most %d source ports)\n", st.Bold("Busiest destinations"), res.Available)
		t := term.NewTable("PROTO", "SOURCE", "DESTINATION", "SOCKETS", "SHARE", "SERVICE").Indent("  ")
		reg := registry.Builtin()
		for _, g := range res.Groups {
			share := fmt.Sprintf("%.1f%%", g.Share)
			if g.Share > res.WarnPercent {
				share = st.Red(share + " over --warn")
			}
			svc := ""
			if ap, err := netip.ParseAddrPort(g.Destination); err == nil {
				if as := reg.Port(ap.Port(), registry.TCP); len(as) > 0 {
					svc = as[0].Name
				}
			}
			t.Row(g.Protocol, g.Source, g.Destination, fmt.Sprint(g.Sockets), share, svc)
		}
		t.Render(w, streams.Width(), st)
	}
	if len(res.Advice) > 0 {
		fmt.Fprintln(w)
		for _, a := range res.Advice {
			fmt.Fprintf(w, "  %s %s\n", st.Dim("•"), a)
		}
	}
}
