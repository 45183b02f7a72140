package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/forward"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/portmap"
	"github.com/portctl/portctl/statsock"
)

// writeJSONLine writes v as one line of JSON.
func writeJSONLine(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	w.Write(append(b, '\n'))
}

// mapOptions are the flags of `portctl map` and its subcommands.
type mapOptions struct {
	Gateway     netip.Addr
	IPv6        bool // asked over IPv6: pinholes to this host's IPv6 address
	JSON        bool
	Reflect     string // probe: a reflector to ask for the outside view
	Port        uint16 // add, rm: the internal port
	External    uint16
	Protos      []string // "tcp", "udp"
	Lease       time.Duration
	Protocol    portmap.Protocol // "" for auto
	Description string
	Once        bool
	Verify      string
}

func newMapCmd(streams *term.IO) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "map",
		Short: "Ask the router to forward a port here (PCP, NAT-PMP, UPnP IGD), keep it, prove it from outside",
		Long: `Ask the home or office router to forward a port to this host, through
whichever of PCP (RFC 6887), NAT-PMP (RFC 6886) and UPnP IGD (v1, v2) it
answers.

  map probe    which protocols the gateway answers, its external address, and
               whether another NAT lies beyond it (--reflect HOST:PORT compares
               the outside view of a portctl reflect)
  map add PORT map PORT and stay: renew at half the lease, map again when the
               router restarts, delete on Ctrl-C (--once: map and exit);
               --verify HOST:PORT asks a portctl reflect outside whether the
               port is reachable from there
  map ls       the router's mappings (UPnP), portctl's marked
  map rm PORT  delete a mapping

The gateway is the default route's unless --gateway is given. Over IPv6
(--ipv6, or a gateway given by its IPv6 address) there is no translation:
map add opens a pinhole in the router's firewall to this host's IPv6
address and PORT, through PCP or UPnP IGDv2's WANIPv6FirewallControl.`,
	}
	cmd.AddCommand(newMapProbeCmd(streams, nil), newMapAddCmd(streams, nil), newMapLsCmd(streams, nil), newMapRmCmd(streams, nil))
	return cmd
}

// gatewayFlag adds --gateway and --ipv6 and resolves them in the options.
func gatewayFlag(cmd *cobra.Command, opts *mapOptions) func() error {
	var gw string
	cmd.Flags().StringVar(&gw, "gateway", "", "the router to ask, by its IPv4 or IPv6 address (default: the default route's gateway)")
	cmd.Flags().BoolVarP(&opts.IPv6, "ipv6", "6", false, "over IPv6: IPv6 pinholes to this host, through PCP or IGDv2 (default gateway: the default IPv6 route's)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return func() error {
		if gw == "" {
			find, route := portmap.DefaultGateway, "default route"
			if opts.IPv6 {
				find, route = portmap.DefaultGateway6, "default IPv6 route"
			}
			a, err := find()
			if err != nil {
				return usageErrorf("no gateway found on the %s (%v): name the router with --gateway", route, err)
			}
			opts.Gateway = a
			return nil
		}
		a, err := netip.ParseAddr(gw)
		switch {
		case err != nil:
			return usageErrorf("--gateway %q: want the router's IPv4 or IPv6 address", gw)
		case opts.IPv6 && !a.Is6():
			return usageErrorf("--gateway %q with --ipv6: want the router's IPv6 address", gw)
		}
		opts.Gateway = a.Unmap()
		opts.IPv6 = opts.Gateway.Is6()
		return nil
	}
}

// unspecified is the internal address a request names for this host:
// the client fills in its address towards the router.
func (o mapOptions) unspecified() netip.Addr {
	if o.IPv6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

func newMapProbeCmd(streams *term.IO, runF func(context.Context, mapOptions) error) *cobra.Command {
	var opts mapOptions
	cmd := &cobra.Command{
		Use:     "probe",
		Short:   "Which of PCP, NAT-PMP and UPnP IGD the gateway answers, and its external address",
		Example: "  portctl map probe\n  portctl map probe --reflect 203.0.113.5:7654 --json",
		Args:    cobra.NoArgs,
	}
	resolve := gatewayFlag(cmd, &opts)
	cmd.Flags().StringVar(&opts.Reflect, "reflect", "", "also ask a portctl reflect at HOST:PORT which address it sees this host come from")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := resolve(); err != nil {
			return err
		}
		if runF != nil {
			return runF(cmd.Context(), opts)
		}
		return runMapProbe(cmd.Context(), streams, opts)
	}
	return cmd
}

// probeResult is what `map probe --json` prints.
type probeResult struct {
	portmap.ProbeReport
	// Outside is the address a reflector saw this host come from.
	Outside netip.Addr `json:"outside,omitzero"`
	// ReflectError says why the reflector could not be asked.
	ReflectError string `json:"reflect_error,omitempty"`
}

func runMapProbe(ctx context.Context, streams *term.IO, opts mapOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	res := probeResult{ProbeReport: portmap.Probe(ctx, portmap.ProbeOptions{Gateway: opts.Gateway})}
	if opts.Reflect != "" {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ans, err := portmap.Reflect(rctx, opts.Reflect, "tcp", 1, netip.Addr{})
		cancel()
		if err != nil {
			res.ReflectError = err.Error()
		} else {
			res.Outside = ans.Seen.Addr()
			switch {
			case res.External.IsValid() && res.Outside != res.External && res.DoubleNAT == "":
				res.DoubleNAT = fmt.Sprintf("double NAT: the router says its external address is %s, but %s sees this host come from %s",
					res.External, opts.Reflect, res.Outside)
			case res.NoPublicAddress:
				res.DoubleNAT = fmt.Sprintf("double NAT: the router has no public address, but %s sees this host come from %s: another NAT beyond the router has it",
					opts.Reflect, res.Outside)
			}
		}
	}
	if opts.JSON {
		if err := writeJSON(streams.Out, res); err != nil {
			return err
		}
	} else {
		w := streams.Out
		fmt.Fprintf(w, "Gateway %s\n", res.Gateway)
		t := term.NewTable("PROTOCOL", "ANSWERS", "EXTERNAL", "TIME", "DETAIL")
		for _, p := range res.Protocols {
			ans, ext, detail := "no", "", p.Error
			if p.Refused {
				ans = "refuses"
			} else if p.Answered {
				ans, detail = "yes", p.Service
				if p.Epoch != 0 {
					detail = "epoch " + strconv.FormatUint(uint64(p.Epoch), 10)
				}
			}
			if p.External.IsValid() && !p.External.IsUnspecified() {
				ext = p.External.String()
			} else if p.Answered && !p.Refused {
				ext = "none"
			}
			detail = strings.TrimPrefix(detail, string(p.Protocol)+": ")
			t.Row(string(p.Protocol), ans, ext, fmt.Sprintf("%.1fms", float64(p.Latency)/float64(time.Millisecond)), detail)
		}
		t.Render(w, streams.Width(), streams.Style())
		if res.Outside.IsValid() {
			fmt.Fprintf(w, "Seen from outside (%s) as %s\n", opts.Reflect, res.Outside)
		}
		if res.ReflectError != "" {
			fmt.Fprintf(w, "Reflector: %s\n", res.ReflectError)
		}
		if res.DoubleNAT != "" {
			fmt.Fprintf(w, "%s\n", res.DoubleNAT)
		}
	}
	if res.Client("") == nil {
		for _, p := range res.Protocols {
			if p.Refused {
				return negativef("the gateway %s refuses every protocol it answers", opts.Gateway)
			}
		}
		return negativef("the gateway %s answers none of PCP, NAT-PMP and UPnP IGD", opts.Gateway)
	}
	return nil
}

// mapFlags adds the flags add and rm share.
func mapFlags(cmd *cobra.Command, opts *mapOptions) func(args []string) error {
	var proto, protocol string
	cmd.Flags().StringVar(&proto, "proto", "tcp", "tcp, udp or both")
	cmd.Flags().StringVar(&protocol, "protocol", "auto", "auto, pcp, natpmp or upnp")
	cmd.Flags().Uint16Var(&opts.External, "external", 0, "the external port to ask for (default: the same as PORT)")
	return func(args []string) error {
		p, err := strconv.ParseUint(args[0], 10, 16)
		if err != nil || p == 0 {
			return usageErrorf("port %q: want a port from 1 to 65535", args[0])
		}
		opts.Port = uint16(p)
		if opts.External == 0 {
			opts.External = opts.Port
		}
		switch proto {
		case "tcp", "udp":
			opts.Protos = []string{proto}
		case "both":
			opts.Protos = []string{"tcp", "udp"}
		default:
			return usageErrorf("--proto %q: want tcp, udp or both", proto)
		}
		switch portmap.Protocol(protocol) {
		case portmap.PCP, portmap.NATPMP, portmap.UPnP:
			opts.Protocol = portmap.Protocol(protocol)
		case "auto":
		default:
			return usageErrorf("--protocol %q: want auto, pcp, natpmp or upnp", protocol)
		}
		return nil
	}
}

func newMapAddCmd(streams *term.IO, runF func(context.Context, mapOptions) error) *cobra.Command {
	opts := mapOptions{Lease: 2 * time.Hour}
	cmd := &cobra.Command{
		Use:   "add PORT",
		Short: "Map PORT at the router and keep it until Ctrl-C",
		Example: `  portctl map add 8080
  portctl map add 51413 --proto both --lease 1h
  portctl map add 22 --external 2222 --once
  portctl map add 8080 --verify 203.0.113.5:7654
  portctl map add 8080 --ipv6`,
		Args: cobra.ExactArgs(1),
	}
	resolve := gatewayFlag(cmd, &opts)
	parse := mapFlags(cmd, &opts)
	cmd.Flags().DurationVar(&opts.Lease, "lease", opts.Lease, "the lease to ask for (renewed at half)")
	cmd.Flags().StringVar(&opts.Description, "description", "", "the mapping's description in the router's table (UPnP)")
	cmd.Flags().BoolVar(&opts.Once, "once", false, "map, print and exit (the mapping lasts its lease)")
	cmd.Flags().StringVar(&opts.Verify, "verify", "", "ask a portctl reflect at HOST:PORT whether the port is reachable from there")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := parse(args); err != nil {
			return err
		}
		if opts.Lease < 0 {
			return usageErrorf("--lease %s: want a duration of 0 (permanent) or more", opts.Lease)
		}
		if err := resolve(); err != nil {
			return err
		}
		if opts.IPv6 && opts.External != opts.Port {
			return usageErrorf("--external %d: an IPv6 pinhole opens port %d itself (IPv6 has no translation)", opts.External, opts.Port)
		}
		if opts.Description == "" {
			host, _ := os.Hostname()
			opts.Description = fmt.Sprintf("portctl map %s:%d", host, opts.Port)
		}
		if runF != nil {
			return runF(cmd.Context(), opts)
		}
		return runMapAdd(cmd.Context(), streams, opts)
	}
	return cmd
}

// mapClient probes the gateway and returns the client of the protocol
// asked, or of the first that answers, and the probe's report.
func mapClient(ctx context.Context, opts mapOptions) (portmap.Client, portmap.ProbeReport, error) {
	rep := portmap.Probe(ctx, portmap.ProbeOptions{Gateway: opts.Gateway})
	if c := rep.Client(opts.Protocol); c != nil {
		return c, rep, nil
	}
	var why []string
	verb := "does not answer"
	for _, p := range rep.Protocols {
		if opts.Protocol == "" || p.Protocol == opts.Protocol {
			why = append(why, fmt.Sprintf("%s: %s", p.Protocol, strings.TrimPrefix(p.Error, string(p.Protocol)+": ")))
			if p.Refused {
				verb = "refuses"
			}
		}
	}
	err := fmt.Errorf("the gateway %s %s (%s)", opts.Gateway, verb, strings.Join(why, "; "))
	if rep.DoubleNAT != "" {
		err = fmt.Errorf("%w; %s", err, rep.DoubleNAT)
	}
	return nil, rep, err
}

func runMapAdd(ctx context.Context, streams *term.IO, opts mapOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	c, rep, err := mapClient(ctx, opts)
	if err != nil {
		return err
	}
	external := rep.External
	// explain adds the probe's double-NAT verdict to a refusal: the
	// likely reason the router maps nothing.
	explain := func(err error) error {
		if err != nil && rep.DoubleNAT != "" {
			return fmt.Errorf("%w; %s", err, rep.DoubleNAT)
		}
		return err
	}
	// complete fills in what the protocol's answer leaves out: NAT-PMP's
	// has the external port alone (the address is the one the router
	// reported), and NAT-PMP and PCP keep no description.
	complete := func(m portmap.Mapping) portmap.Mapping {
		if !m.External.Addr().IsValid() && external.IsValid() {
			m.External = netip.AddrPortFrom(external, m.External.Port())
		}
		if m.Description == "" {
			m.Description = opts.Description
		}
		return m
	}
	var mu sync.Mutex
	print := func(e portmap.KeepEvent) {
		mu.Lock()
		defer mu.Unlock()
		if opts.JSON {
			writeJSONLine(streams.Out, e)
			return
		}
		m := e.Mapping
		line := fmt.Sprintf("%s %s %s -> %s (%s, %s", e.Time.Local().Format("15:04:05"), e.Type, m.External, m.Internal, m.Proto, m.Protocol)
		if m.Lease > 0 {
			line += ", lease " + m.Lease.String()
		} else {
			line += ", permanent: deleted on exit"
		}
		line += ")"
		if e.Reason != "" {
			line += ": " + e.Reason
		}
		fmt.Fprintln(streams.Out, line)
	}
	req := func(proto string) portmap.Request {
		return portmap.Request{Proto: proto, Internal: netip.AddrPortFrom(opts.unspecified(), opts.Port),
			External: opts.External, Lease: opts.Lease, Description: opts.Description}
	}
	if opts.Once {
		for _, proto := range opts.Protos {
			m, err := c.Map(ctx, req(proto))
			if err != nil {
				return explain(err)
			}
			m = complete(m)
			print(portmap.KeepEvent{Time: time.Now(), Type: "mapped", Mapping: m})
			if err := verify(ctx, streams, opts, m); err != nil {
				return err
			}
		}
		return nil
	}
	// The mappings held are published for the dashboard (serve).
	var tracker portmap.Tracker
	gateway := opts.Gateway
	if igd, ok := c.(*portmap.IGD); ok {
		gateway = igd.Gateway()
	}
	stopPublish, perr := statsock.Publish(forward.StatsDir(), "map", func() any {
		return portmap.Keeper{PID: os.Getpid(), Gateway: gateway, Mappings: tracker.Mappings()}
	})
	if perr != nil {
		fmt.Fprintf(streams.Err, "portctl: the dashboard will not see these mappings: %v\n", perr)
	} else {
		defer stopPublish()
	}
	// A NAT-PMP or PCP router announces a restart: every mapping is
	// renewed then, not at half its lease.
	renew := make([]chan struct{}, len(opts.Protos))
	for i := range renew {
		renew[i] = make(chan struct{}, 1)
	}
	if c.Protocol() != portmap.UPnP {
		err := portmap.WatchAnnouncements(ctx, opts.Gateway, func(a portmap.Announcement) {
			for _, ch := range renew {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		})
		if err != nil {
			fmt.Fprintf(streams.Err, "portctl: a router restart will be noticed at the next renewal only: %v\n", err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(opts.Protos))
	for i, proto := range opts.Protos {
		wg.Go(func() {
			errs[i] = portmap.Keep(ctx, c, req(proto), portmap.KeepOptions{Renew: renew[i]}, func(e portmap.KeepEvent) {
				e.Mapping = complete(e.Mapping)
				tracker.Event(e)
				print(e)
				if e.Type == "mapped" {
					if err := verify(ctx, streams, opts, e.Mapping); err != nil {
						mu.Lock()
						fmt.Fprintf(streams.Err, "portctl: %v\n", err)
						mu.Unlock()
					}
				}
			})
		})
	}
	wg.Wait()
	return explain(errors.Join(errs...))
}

// verify asks the reflector, with --verify, whether m is reachable.
func verify(ctx context.Context, streams *term.IO, opts mapOptions, m portmap.Mapping) error {
	if opts.Verify == "" {
		return nil
	}
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ans, err := portmap.Reflect(vctx, opts.Verify, m.Proto, m.External.Port(), netip.Addr{})
	if err != nil {
		return err
	}
	if opts.JSON {
		writeJSONLine(streams.Out, ans)
	} else if ans.Reachable {
		fmt.Fprintf(streams.Out, "reachable from outside: %s connected to %s in %s\n", opts.Verify, ans.Tried, ans.RTT.Round(time.Millisecond))
	} else {
		fmt.Fprintf(streams.Out, "NOT reachable from outside: %s could not connect to %s: %s\n", opts.Verify, ans.Tried, ans.Error)
	}
	if !ans.Reachable {
		return negativef("")
	}
	return nil
}

func newMapLsCmd(streams *term.IO, runF func(context.Context, mapOptions) error) *cobra.Command {
	var opts mapOptions
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "The router's port mappings (UPnP IGD), portctl's marked",
		Args:  cobra.NoArgs,
	}
	resolve := gatewayFlag(cmd, &opts)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := resolve(); err != nil {
			return err
		}
		if runF != nil {
			return runF(cmd.Context(), opts)
		}
		return runMapLs(cmd.Context(), streams, opts)
	}
	return cmd
}

func runMapLs(ctx context.Context, streams *term.IO, opts mapOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	opts.Protocol = portmap.UPnP
	c, _, err := mapClient(ctx, opts)
	if err != nil {
		return fmt.Errorf("%w: only UPnP IGD lists a router's mappings", err)
	}
	ms, err := c.(*portmap.IGD).List(ctx)
	if err != nil {
		return err
	}
	// portctl's own: those a map add running here keeps (named by its
	// PID), and those whose description says portctl.
	key := func(m portmap.Mapping) string { return m.Proto + "/" + strconv.Itoa(int(m.External.Port())) }
	keeper := map[string]int{}
	for _, k := range statsock.Collect[portmap.Keeper](ctx, forward.StatsDir(), "map") {
		for _, m := range k.Mappings {
			keeper[key(m.Mapping)] = k.PID
		}
	}
	entries := make([]lsEntry, len(ms))
	for i, m := range ms {
		e := lsEntry{Mapping: m, KeptBy: keeper[key(m)]}
		e.Portctl = e.KeptBy != 0 || strings.HasPrefix(m.Description, "portctl")
		entries[i] = e
	}
	if opts.JSON {
		return writeJSON(streams.Out, entries)
	}
	t := term.NewTable("EXTERNAL", "INTERNAL", "PROTO", "LEASE", "DESCRIPTION", "")
	for _, e := range entries {
		lease, mine := "permanent", ""
		if e.Lease > 0 {
			lease = e.Lease.String()
		}
		switch {
		case e.KeptBy != 0:
			mine = "portctl (kept by PID " + strconv.Itoa(e.KeptBy) + ")"
		case e.Portctl:
			mine = "portctl"
		}
		t.Row(e.External.String(), e.Internal.String(), e.Proto, lease, e.Description, mine)
	}
	return t.Render(streams.Out, streams.Width(), streams.Style())
}

// lsEntry is a row of map ls: a mapping of the router's, and whether it
// is portctl's (kept by a map add running here, or so described).
type lsEntry struct {
	portmap.Mapping
	Portctl bool `json:"portctl"`
	KeptBy  int  `json:"kept_by,omitempty"`
}

func newMapRmCmd(streams *term.IO, runF func(context.Context, mapOptions) error) *cobra.Command {
	var opts mapOptions
	cmd := &cobra.Command{
		Use:     "rm PORT",
		Short:   "Delete a mapping of PORT (the internal port; --external for UPnP's external one)",
		Example: "  portctl map rm 8080\n  portctl map rm 8080 --proto both --protocol upnp",
		Args:    cobra.ExactArgs(1),
	}
	resolve := gatewayFlag(cmd, &opts)
	parse := mapFlags(cmd, &opts)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := parse(args); err != nil {
			return err
		}
		if err := resolve(); err != nil {
			return err
		}
		if opts.IPv6 {
			return usageErrorf("map rm over IPv6: a pinhole is closed by the map add that opened it (Ctrl-C), or ends with its lease")
		}
		if runF != nil {
			return runF(cmd.Context(), opts)
		}
		return runMapRm(cmd.Context(), streams, opts)
	}
	return cmd
}

func runMapRm(ctx context.Context, streams *term.IO, opts mapOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	c, _, err := mapClient(ctx, opts)
	if err != nil {
		return err
	}
	for _, proto := range opts.Protos {
		m := portmap.Mapping{Protocol: c.Protocol(), Proto: proto,
			Internal: netip.AddrPortFrom(opts.unspecified(), opts.Port),
			External: netip.AddrPortFrom(opts.unspecified(), opts.External)}
		if err := c.Unmap(ctx, m); err != nil {
			return err
		}
		if opts.JSON {
			writeJSONLine(streams.Out, struct {
				Deleted portmap.Mapping `json:"deleted"`
			}{m})
		} else {
			fmt.Fprintf(streams.Out, "deleted the %s mapping of port %d (%s)\n", proto, opts.Port, c.Protocol())
		}
	}
	return nil
}
