package cli

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/spf13/cobra"

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
			if opts.NetNS != "" && !strings.Contains(opts.NetNS, "/") {
				opts.NetNS = "/run/netns/" + opts.NetNS
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

// ephemeralGroup is one (source IP, destination IP, destination port, protocol).
type ephemeralGroup struct {
	Protocol    string  `json:"protocol"`
	Source      string  `json:"source"`
	Destination string  `json:"destination"`
	Sockets     int     `json:"sockets"`
	Share       float64 `json:"share_percent"`
}

// ephemeralResult is the JSON document `ephemeral --json` prints.
type ephemeralResult struct {
	Range       string                      `json:"range"`
	Size        int                         `json:"size"`
	Reserved    []string                    `json:"reserved"`
	Available   int                         `json:"available"`
	Default     bool                        `json:"range_is_os_default"`
	TCPTWReuse  int                         `json:"tcp_tw_reuse"`
	InRange     int                         `json:"sockets_in_range"`
	ByState     map[string]int              `json:"by_state"`
	Groups      []ephemeralGroup            `json:"groups"`
	Sockstat    map[string]map[string]int64 `json:"sockstat,omitempty"`
	WarnPercent float64                     `json:"warn_percent"`
	Exhausting  bool                        `json:"over_warn"`
	Advice      []string                    `json:"advice"`
}

type groupKey struct {
	proto    sockets.Proto
	src, dst netip.Addr
	dport    uint16
}

// ephemeralUsage computes the report from the host's settings and its
// sockets (pure: tested without a kernel).
func ephemeralUsage(host netconf.Host, socks []sockets.Socket, warn float64, top int) ephemeralResult {
	r := host.Ephemeral
	reservedIn := 0
	var reserved []string
	for _, rr := range host.Reserved {
		reserved = append(reserved, rr.String())
		lo, hi := max(rr.First, r.First), min(rr.Last, r.Last)
		if lo <= hi {
			reservedIn += int(hi) - int(lo) + 1
		}
	}
	res := ephemeralResult{
		Range: r.String(), Size: r.Len(), Reserved: reserved, Available: r.Len() - reservedIn,
		Default: host.EphemeralDefault, TCPTWReuse: host.TCPTWReuse,
		ByState: map[string]int{}, Groups: []ephemeralGroup{}, WarnPercent: warn,
	}
	if res.Reserved == nil {
		res.Reserved = []string{}
	}
	counts := map[groupKey]int{}
	for _, s := range socks {
		if !r.Contains(s.Local.Port()) || s.State == sockets.Listen {
			continue
		}
		res.InRange++
		key := s.State.Name()
		if s.Proto == sockets.UDP {
			key = "udp_" + key
		}
		res.ByState[key]++
		if s.Remote.Port() == 0 {
			continue // unconnected: does not consume a tuple
		}
		counts[groupKey{s.Proto, s.Local.Addr().Unmap(), s.Remote.Addr().Unmap(), s.Remote.Port()}]++
	}
	for k, n := range counts {
		res.Groups = append(res.Groups, ephemeralGroup{
			Protocol: k.proto.String(), Source: k.src.String(),
			Destination: netip.AddrPortFrom(k.dst, k.dport).String(),
			Sockets:     n, Share: 100 * float64(n) / float64(max(res.Available, 1)),
		})
	}
	slices.SortFunc(res.Groups, func(a, b ephemeralGroup) int {
		if a.Sockets != b.Sockets {
			return b.Sockets - a.Sockets
		}
		return cmp.Or(strings.Compare(a.Destination, b.Destination), strings.Compare(a.Source, b.Source), strings.Compare(a.Protocol, b.Protocol))
	})
	if len(res.Groups) > 0 && res.Groups[0].Share > warn {
		res.Exhausting = true
	}
	if len(res.Groups) > top {
		res.Groups = res.Groups[:top]
	}
	res.Advice = ephemeralAdvice(res)
	return res
}

func ephemeralAdvice(res ephemeralResult) []string {
	var adv []string
	if res.Exhausting {
		g := res.Groups[0]
		adv = append(adv, fmt.Sprintf("%s → %s uses %.1f%% of the %d usable source ports: new connections to it will fail with EADDRNOTAVAIL when it reaches 100%%", g.Source, g.Destination, g.Share, res.Available))
		adv = append(adv, "reuse connections (HTTP keep-alive, connection pools) instead of opening one per request")
		adv = append(adv, "spread the load over more destination addresses or ports, or more source addresses: each (source, destination, port) has its own budget")
	}
	if res.Size < 16384 {
		adv = append(adv, fmt.Sprintf("the range %s is narrow (%d ports): widen it with sysctl net.ipv4.ip_local_port_range=\"1024 65535\" (keep your servers' ports out of it, or list them in ip_local_reserved_ports)", res.Range, res.Size))
	}
	if tw := res.ByState["time_wait"]; tw > res.Available/4 && res.TCPTWReuse == 0 {
		adv = append(adv, fmt.Sprintf("%d sockets sit in TIME-WAIT: net.ipv4.tcp_tw_reuse=1 lets new outgoing connections reuse them safely", tw))
	}
	return adv
}

func runEphemeral(ctx context.Context, streams *term.IO, opts ephemeralOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	host, _ := netconf.Read()
	q := sockets.Query{Protos: sockets.TCP | sockets.UDP, Families: sockets.AllFamilies,
		States: sockets.AllStates &^ sockets.StatesOf(sockets.Listen), UDPStates: sockets.AllStates, NetNS: opts.NetNS}
	t, err := sockets.List(ctx, q)
	if err != nil {
		return err
	}
	res := ephemeralUsage(host, t.Sockets, opts.Warn, opts.Top)
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

func printEphemeral(streams *term.IO, res ephemeralResult) {
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
