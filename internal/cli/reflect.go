package cli

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/portmap"
	"github.com/portctl/portctl/registry"
)

// reflectOptions are the flags of `portctl reflect`.
type reflectOptions struct {
	Listen     netip.AddrPort
	Timeout    time.Duration
	AllowOther bool
}

func newReflectCmd(streams *term.IO, runF func(context.Context, reflectOptions) error) *cobra.Command {
	opts := reflectOptions{Timeout: 3 * time.Second}
	var listen string
	cmd := &cobra.Command{
		Use:   "reflect --listen ADDR:PORT",
		Short: "Answer from outside the NAT whether a port is reachable (for map add --verify)",
		Long: `Run on a host outside the NAT: a client that connects (portctl map add
--verify HOST:PORT) asks for a port, and the reflector connects back to the
address it sees the client come from, at that port, and says whether it got
through, and from which address it saw the client (the outermost NAT's).

It tries only the client's own address unless --allow-other is given, so
that it cannot be used to probe others.`,
		Example: `  portctl reflect --listen :7654
  portctl reflect --listen 203.0.113.5:7654 --timeout 5s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ap, err := parseListen(listen)
			if err != nil {
				return usageErrorf("--listen %q: %v", listen, err)
			}
			opts.Listen = ap
			if opts.Timeout <= 0 {
				return usageErrorf("--timeout %s: want a duration above 0", opts.Timeout)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runReflect(cmd.Context(), streams, opts)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":7654", "the address and port to answer on")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", opts.Timeout, "how long to try each connection back")
	cmd.Flags().BoolVar(&opts.AllowOther, "allow-other", false, "let a client name an address other than its own")
	return cmd
}

// parseListen reads ADDR:PORT or :PORT.
func parseListen(s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("want ADDR:PORT or :PORT")
	}
	p, err := registry.ParsePort(port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if host == "" {
		return netip.AddrPortFrom(netip.IPv6Unspecified(), p), nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP address", host)
	}
	return netip.AddrPortFrom(a, p), nil
}

func runReflect(ctx context.Context, streams *term.IO, opts reflectOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	l, err := net.Listen("tcp", opts.Listen.String())
	if err != nil {
		return err
	}
	fmt.Fprintf(streams.Err, "portctl reflect: answering on %s\n", l.Addr())
	return portmap.ServeReflector(ctx, l, portmap.ReflectOptions{Timeout: opts.Timeout, AllowOther: opts.AllowOther})
}
