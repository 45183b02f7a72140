package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/sockets"
	"github.com/portctl/portctl/web"
)

// serveOptions are the flags of `portctl serve`.
type serveOptions struct {
	Listen    string
	Token     string
	TokenFile string
	AllowKill bool
	Policy    string
	Interval  time.Duration
	NetNS     string
	TLSCert   string
	TLSKey    string
	// GuardEvents is the file of portctl guard --events FILE to follow.
	GuardEvents string
	tls         *tls.Config
}

// defaultServeListen is where `serve` listens unless told otherwise.
const defaultServeListen = "127.0.0.1:9753"

// minTokenLen is the shortest token accepted: a token guards a page that
// shows every process's command line.
const minTokenLen = 16

func newServeCmd(streams *term.IO, runF func(context.Context, serveOptions) error) *cobra.Command {
	opts := serveOptions{Listen: defaultServeListen, Interval: 2 * time.Second}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "A live web dashboard, a JSON API and Prometheus metrics",
		Long: `Serve a web dashboard of this machine's ports: the live socket table (new and
closed sockets appear as they happen) with who may reach each listener
(internet, LAN, loopback only, nobody: the firewall, the routes and the bind
address together), a page per port, the audit findings, a firewall page
(the rules deciding each port, their owners, portctl's own blocks),
ephemeral port usage over time and the counters of running forwarders. The
same data is at /api/v1/ as JSON, and as Prometheus metrics at /metrics.
Reading the firewall needs root or CAP_NET_ADMIN; without, reach is unknown.

It listens on 127.0.0.1 by default. Any other address needs --token (or
--token-file): every request must then carry it, as "Authorization: Bearer
TOKEN", or in a browser by opening /?token=TOKEN once. Stopping a port's
holders from the page is off unless --allow-kill. Off loopback, serve HTTPS
(--tls-cert, --tls-key) so that the token does not cross the network in the
clear.

With --guard-events FILE, the file portctl guard appends its events to
(guard --events FILE), serve follows it as tail -F does: its last 500 lines
at start, then every line appended, through truncation and rotation, and a
file that appears only later. The page then has a Guard view of the latest
events (scans, blocks, knocks, ...), /api/v1/guard has the latest 200 and
the counts by type, and /metrics counts them (portctl_guard_events_total by
type and kind, portctl_guard_sources_blocked_total,
portctl_guard_malformed_lines_total,
portctl_guard_last_event_timestamp_seconds).`,
		Example: `  portctl serve
  portctl serve --listen 0.0.0.0:9753 --token-file /etc/portctl/token \
    --tls-cert /etc/portctl/cert.pem --tls-key /etc/portctl/key.pem
  portctl serve --allow-kill --policy audit.yaml
  portctl serve --guard-events /var/log/portctl/guard.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runServe(cmd.Context(), streams, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Listen, "listen", "l", opts.Listen, "ADDR:PORT to listen on")
	f.StringVar(&opts.Token, "token", "", "require this token on every request (needed off loopback; at least 16 characters)")
	f.StringVar(&opts.TokenFile, "token-file", "", "read the token from this file")
	f.BoolVar(&opts.AllowKill, "allow-kill", false, "let the page stop a port's holders (POST with a CSRF token and a confirmation)")
	f.StringVar(&opts.Policy, "policy", "", "check the audit findings against this policy file")
	f.DurationVar(&opts.Interval, "interval", opts.Interval, "how often to read the socket table")
	f.StringVar(&opts.NetNS, "netns", "", "show this network namespace (a name under /run/netns, or a path)")
	f.StringVar(&opts.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate (chain)")
	f.StringVar(&opts.TLSKey, "tls-key", "", "and this PEM private key")
	f.StringVar(&opts.GuardEvents, "guard-events", "", "follow this file of portctl guard --events FILE: a Guard view, /api/v1/guard and portctl_guard_ metrics")
	return cmd
}

func (o *serveOptions) validate() error {
	host, port, err := net.SplitHostPort(o.Listen)
	if err != nil || port == "" {
		return usageErrorf("--listen %q: want ADDR:PORT, such as 127.0.0.1:9753 or [::1]:9753", o.Listen)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return usageErrorf("--listen %q: port %q: want a number from 0 to 65535", o.Listen, port)
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			return usageErrorf("--listen %q: address %q: want an IP address or localhost", o.Listen, host)
		}
	}
	if o.Interval < 100*time.Millisecond {
		return usageErrorf("--interval %s: want at least 100ms", o.Interval)
	}
	if o.Token != "" && o.TokenFile != "" {
		return usageErrorf("--token and --token-file: give one or the other")
	}
	if o.TokenFile != "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return usageErrorf("--token-file %q: %v", o.TokenFile, errors.Unwrap(err))
		}
		o.Token = strings.TrimSpace(string(b))
		if o.Token == "" {
			return usageErrorf("--token-file %q is empty: want a token of at least %d characters", o.TokenFile, minTokenLen)
		}
	}
	if o.Token != "" && (len(o.Token) < minTokenLen || strings.ContainsAny(o.Token, " \t\r\n")) {
		return usageErrorf("token of %d characters: want at least %d, without spaces (e.g. from: openssl rand -hex 16)", len(o.Token), minTokenLen)
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return usageErrorf("--tls-cert and --tls-key: give both, or neither")
	}
	if o.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return usageErrorf("--tls-cert %q, --tls-key %q: %v", o.TLSCert, o.TLSKey, err)
		}
		o.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if o.GuardEvents != "" {
		// The file may come later (guard makes it), but not as a
		// directory.
		if fi, err := os.Stat(o.GuardEvents); err == nil && fi.IsDir() {
			return usageErrorf("--guard-events %q is a directory: want the file of portctl guard --events FILE", o.GuardEvents)
		}
	}
	if o.Token == "" && !web.IsLoopback(o.Listen) {
		return usageErrorf("--listen %q is not a loopback address: it needs --token or --token-file", o.Listen)
	}
	if o.NetNS == "" {
		return nil
	}
	if o.AllowKill {
		return usageErrorf("--allow-kill with --netns %q: stopping a port's holders works in this namespace only", o.NetNS)
	}
	// A dashboard of a namespace that is not there would only show the
	// error, for as long as it runs: refuse at once.
	path, err := checkNetNS(o.NetNS)
	o.NetNS = path
	return err
}

func runServe(ctx context.Context, streams *term.IO, opts serveOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	policy, err := readPolicy(opts.Policy)
	if err != nil {
		return err
	}
	wo := web.Options{Source: web.Machine{NetNS: opts.NetNS, ContainerHosts: engines().Hosts}, Token: opts.Token, Policy: policy,
		Interval: opts.Interval, Version: version(), GuardEvents: opts.GuardEvents}
	if opts.AllowKill {
		wo.Kill = killForWeb
	}
	srv, err := web.New(wo)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.Listen, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go srv.Run(ctx)
	go srv.FollowGuard(ctx)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	url := "http://" + l.Addr().String() + "/"
	if opts.tls != nil {
		hs.TLSConfig = opts.tls
		url = "https://" + l.Addr().String() + "/"
	}
	if opts.Token != "" {
		url += "?token=…"
	}
	fmt.Fprintf(streams.Err, "portctl serve: dashboard at %s, API at /api/v1/, metrics at /metrics\n", url)
	if opts.GuardEvents != "" {
		fmt.Fprintf(streams.Err, "portctl serve: following portctl guard's events in %s (API at /api/v1/guard)\n", opts.GuardEvents)
	}
	if opts.tls == nil && !web.IsLoopback(opts.Listen) {
		fmt.Fprintf(streams.Err, "portctl serve: without --tls-cert and --tls-key the token crosses the network in the clear\n")
	}
	errc := make(chan error, 1)
	go func() {
		if opts.tls != nil {
			errc <- hs.ServeTLS(l, "", "")
			return
		}
		errc <- hs.Serve(l)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	hs.Shutdown(sctx)
	return nil
}

// killForWeb stops a port's holders for the dashboard as
// `portctl kill PORT --yes` does, and returns its report.
func killForWeb(ctx context.Context, port uint16) (any, error) {
	opts := killOptions{Port: port, Protos: sockets.TCP | sockets.UDP, Yes: true, Timeout: 5 * time.Second}
	res, act, err := planKill(ctx, opts)
	if err != nil {
		return nil, err
	}
	if len(act) == 0 {
		return res, fmt.Errorf("no process on port %d may be signalled", port)
	}
	exited := executeKill(ctx, &res, act, opts)
	return res, killVerdict(res, exited, opts)
}
