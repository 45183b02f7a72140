package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/freeport"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/registry"
)

// freeOptions are the flags of `portctl free`.
type freeOptions struct {
	N     int
	Range *registry.Range // nil: the default range
	Near  uint16          // 0: random order
	Both  bool            // UDP too
	JSON  bool
}

// maxFree bounds -n: there are no more ports than this.
const maxFree = 65535

// newFreeCmd builds `free`; runF, when not nil, replaces the real run.
func newFreeCmd(streams *term.IO, runF func(freeOptions) error) *cobra.Command {
	opts := freeOptions{N: 1}
	var rangeFlag, nearFlag string
	cmd := &cobra.Command{
		Use:   "free [-n N] [--range A-B] [--near PORT] [--both]",
		Short: "Print ports that are free to listen on, for IPv4 and IPv6",
		Long: `Print ports that are free for TCP (and UDP with --both) on both IPv4 and IPv6,
one per line, proven by binding each one for a moment with SO_REUSEADDR off.

The ports come from 1024-65535, less this machine's ephemeral range (where
the OS picks the source ports of outgoing connections, so a port there can
be taken at any moment) and its reserved ports, in random order so that
parallel jobs rarely collide. --range searches the given range instead,
less only the reserved ports; --near returns the free ports closest to a
preferred one. A port can still be taken between 'free' and your bind:
bind it soon.

The exit code is 1 when fewer than N ports are free (those found are
printed).`,
		Example: `  PORT=$(portctl free)
  portctl free -n 3 --both
  portctl free --near 3000
  portctl free --range 8000-8100 --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("free takes no arguments (got %q); for ports close to one, use --near %s", args[0], args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.N < 1 || opts.N > maxFree {
				return usageErrorf("-n %d: want a number of ports 1-%d", opts.N, maxFree)
			}
			if rangeFlag != "" {
				r, err := registry.ParseRange(rangeFlag)
				if err != nil {
					return usageErrorf("--range %s: %v", rangeFlag, err)
				}
				if r.Last == 0 {
					return usageErrorf("--range %s: port 0 cannot be bound (want A-B with 1 <= A <= B <= 65535)", rangeFlag)
				}
				opts.Range = &r
			}
			if nearFlag != "" {
				p, err := registry.ParsePort(nearFlag)
				if err != nil || p == 0 {
					return usageErrorf("--near %s: want a port 1-65535", nearFlag)
				}
				if opts.Range != nil && !opts.Range.Contains(p) {
					return usageErrorf("--near %d is outside --range %s", p, opts.Range)
				}
				opts.Near = p
			}
			if runF != nil {
				return runF(opts)
			}
			host, _ := netconf.Read() // the documented defaults stand in for what cannot be read
			return runFree(streams, host, os.Geteuid() == 0, opts)
		},
	}
	cmd.Flags().IntVarP(&opts.N, "count", "n", opts.N, "print `N` ports")
	cmd.Flags().StringVar(&rangeFlag, "range", "", "search the range `A-B` instead (reserved ports are still skipped)")
	cmd.Flags().StringVar(&nearFlag, "near", "", "return the free ports closest to `PORT` instead of random ones")
	cmd.Flags().BoolVar(&opts.Both, "both", false, "free for UDP as well as TCP")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

// freeDoc is the JSON document `free --json` prints. Field names are a
// stable contract.
type freeDoc struct {
	Ports     []uint16 `json:"ports"`
	Protocols string   `json:"protocols"` // tcp or tcp/udp
	Families  string   `json:"families"`  // ipv4/ipv6, or ipv4 on a host without IPv6
	Range     string   `json:"range"`     // the range searched, always A-B
	Excluded  []string `json:"excluded"`  // ranges inside it left out: ephemeral, reserved, privileged
}

func runFree(streams *term.IO, host netconf.Host, root bool, opts freeOptions) error {
	cfg := freeport.Config{N: opts.N, Range: opts.Range, Near: opts.Near, UDP: opts.Both, Host: host, Privileged: root}
	res, err := freeport.Find(cfg)
	if err != nil && !errors.Is(err, freeport.ErrNotEnough) {
		return err
	}
	if !res.IPv6 {
		fmt.Fprintln(streams.Err, "portctl: note: IPv6 is not available here; the ports are proven free on IPv4 only")
	}
	if opts.Near != 0 && (len(res.Ports) == 0 || res.Ports[0] != opts.Near) {
		if why := nearExcluded(host, root, opts); why != "" {
			fmt.Fprintf(streams.Err, "portctl: note: %d %s, so it is not offered; give --range to search there\n", opts.Near, why)
		}
	}
	doc := freeDoc{
		Ports: res.Ports, Protocols: res.Protocols.String(), Families: "ipv4/ipv6",
		Range: fmt.Sprintf("%d-%d", res.Range.First, res.Range.Last), Excluded: []string{},
	}
	if doc.Ports == nil {
		doc.Ports = []uint16{}
	}
	if !res.IPv6 {
		doc.Families = "ipv4"
	}
	for _, r := range res.Excluded {
		doc.Excluded = append(doc.Excluded, r.String())
	}
	if opts.JSON {
		if err := writeJSON(streams.Out, doc); err != nil {
			return err
		}
	} else {
		for _, p := range res.Ports {
			fmt.Fprintln(streams.Out, p)
		}
	}
	if err != nil {
		return negativef("%s", notEnoughMessage(host, root, opts, res))
	}
	return nil
}

// nearExcluded says why --near P is never offered, or "" when it may be.
func nearExcluded(host netconf.Host, root bool, opts freeOptions) string {
	switch {
	case host.IsReserved(opts.Near):
		return "is a reserved port (ip_local_reserved_ports)"
	case opts.Range != nil:
		return ""
	case host.InEphemeral(opts.Near):
		return fmt.Sprintf("is in the ephemeral range %s", host.Ephemeral)
	case opts.Near < freeport.DefaultRange.First:
		return fmt.Sprintf("is outside the default range %s", freeport.DefaultRange)
	case !root && host.Privileged(opts.Near):
		return fmt.Sprintf("needs %s to bind here", host.PrivilegeHint)
	}
	return ""
}

// notEnoughMessage says how many ports were found and where they were
// looked for.
func notEnoughMessage(host netconf.Host, root bool, opts freeOptions, res freeport.Result) string {
	var b strings.Builder
	if len(res.Ports) == 0 {
		fmt.Fprintf(&b, "no free %s port", res.Protocols)
	} else {
		fmt.Fprintf(&b, "only %d of %d ports are free", len(res.Ports), opts.N)
	}
	fmt.Fprintf(&b, " in %s", res.Range)
	if len(res.Excluded) > 0 {
		var ex []string
		for _, r := range res.Excluded {
			ex = append(ex, r.String())
		}
		fmt.Fprintf(&b, " less %s", strings.Join(ex, ", "))
	}
	if res.Tried == 1 {
		b.WriteString(" (tried 1 port)")
	} else {
		fmt.Fprintf(&b, " (tried %d ports)", res.Tried)
	}
	if opts.Range != nil && !root && host.Privileged(opts.Range.First) {
		fmt.Fprintf(&b, "; ports below %d need %s", host.UnprivilegedStart, host.PrivilegeHint)
	}
	return b.String()
}
