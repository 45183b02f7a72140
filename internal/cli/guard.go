package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/guard"
	"github.com/portctl/portctl/guard/spa"
	"github.com/portctl/portctl/guard/tarpit"
	"github.com/portctl/portctl/internal/term"
)

// guardOptions are the flags of `portctl guard`.
type guardOptions struct {
	NetNS       string
	JSON        bool
	Status      bool
	Config      string
	Events      string
	Block       time.Duration
	Group4      int
	Group6      int
	Allow       []string
	Knocks      []string
	KnockWindow time.Duration
	OpenFor     time.Duration
	SPAKey      string
	SPAPort     uint16
	SPAOpen     string
	SPANonces   string
	Tarpit      string
	TarpitMax   int
	NflogGroup  uint16

	// Read from the flags and the config file.
	cfg     guard.Config
	tarpits []uint16
	set     func(name string) bool // whether a flag was given
	flagsAs *guardOptions          // the options as the flags gave them, for SIGHUP
}

const guardLong = `Watch this machine's ports from the receiving side, until Ctrl-C.

Rules in portctl's own nftables table (inet portctl) log every new inbound
connection attempt (as conntrack sees it) to an NFLOG group, once a minute
per source, destination and port; the socket table says which ports listen.
No libpcap, IPv4 and IPv6, inside any network namespace (--netns). On exit
the rules go.

Scans: per source, a sequential test on its first contacts (Threshold
Random Walk): a scanner mostly meets closed ports, a client open ones, so
4 failures in a row decide, at any pace — nmap -T0 as well as masscan.
SYN, NULL, FIN, Xmas, ACK and Maimon scans and UDP probes are told apart.
--block blocks a SYN scanner for a while; probes anyone could forge in
another's name (FIN, NULL, Xmas, ACK, Maimon, UDP) are reported, never
blocked.

Knocking: --knock tcp/7000,udp/8000,tcp/9000:22 closes port 22 to everyone
but a source that knocks that exact sequence within --knock-window; it is
then open to that source alone for --open-for. Any other contact from the
source between knocks starts it over, so no scan opens it. Signed packets:
--spa-key FILE opens the ports of --spa-open to the sender of a valid
packet (portctl knock --spa, or fwknop's client).

--status shows the signs of a SYN flood instead: the kernel's counters and
each listener's accept queue against its backlog.

Events go to stdout as lines, or JSON lines with --json (a scan is
{"type":"scan","source":...,"kind":...,"ports":[...]}), and to --events
FILE. SIGHUP reads --config again.`

func newGuardCmd(streams *term.IO, runF func(context.Context, guardOptions) error) *cobra.Command {
	opts := guardOptions{KnockWindow: 10 * time.Second, OpenFor: 30 * time.Second, SPAPort: 62201, SPAOpen: "tcp/22",
		SPANonces: "/var/lib/portctl/spa-nonces", TarpitMax: 1024, NflogGroup: guard.DefaultGroup}
	cmd := &cobra.Command{
		Use:   "guard",
		Short: "Detect port scans; open ports by knock or signed packet; tarpits; SYN-flood signs",
		Long:  guardLong,
		Example: `  portctl guard
  portctl guard --json --block 10m --allow 192.0.2.10
  portctl guard --knock tcp/7000,udp/8000,tcp/9000:22 --open-for 30s
  portctl guard --spa-key /etc/portctl/spa.keys --spa-open tcp/22
  portctl guard --tarpit 2222
  portctl guard --status`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.set = func(name string) bool { return cmd.Flags().Changed(name) }
			if err := opts.complete(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runGuard(cmd.Context(), streams, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.NetNS, "netns", "", "watch this network namespace (a name under /run/netns, or a path)")
	f.BoolVar(&opts.JSON, "json", false, "print events as JSON lines")
	f.BoolVar(&opts.Status, "status", false, "show the signs of a SYN flood, and exit")
	f.StringVar(&opts.Config, "config", "", "read settings from this YAML file (flags given win); SIGHUP reads it again")
	f.StringVar(&opts.Events, "events", "", "also append events as JSON lines to this file")
	f.DurationVar(&opts.Block, "block", 0, "block a SYN scanner's address for this long (0: report only)")
	f.IntVar(&opts.Group4, "group4", 0, "count IPv4 sources by this prefix length (e.g. 24)")
	f.IntVar(&opts.Group6, "group6", 0, "count IPv6 sources by this prefix length (e.g. 64)")
	f.StringSliceVar(&opts.Allow, "allow", nil, "never judge these sources (addresses or prefixes; repeatable)")
	f.StringArrayVar(&opts.Knocks, "knock", nil, "a knock sequence and the port it opens, as tcp/7000,udp/8000,tcp/9000:22 (repeatable)")
	f.DurationVar(&opts.KnockWindow, "knock-window", opts.KnockWindow, "time from a sequence's first knock to its last")
	f.DurationVar(&opts.OpenFor, "open-for", opts.OpenFor, "how long a knock opens its port")
	f.StringVar(&opts.SPAKey, "spa-key", "", "accept signed packets checked with the keys in this file")
	f.Uint16Var(&opts.SPAPort, "spa-port", opts.SPAPort, "the UDP port signed packets come to")
	f.StringVar(&opts.SPAOpen, "spa-open", opts.SPAOpen, "the ports signed packets may open (closed to all others), as tcp/22,tcp/443")
	f.StringVar(&opts.SPANonces, "spa-nonces", opts.SPANonces, "file that keeps the nonces of packets seen, so a replay is refused after a restart too")
	f.StringVar(&opts.Tarpit, "tarpit", "", "answer connections to these unused ports and hold them, sending a byte now and then (as 2222 or 2222,2323)")
	f.IntVar(&opts.TarpitMax, "tarpit-max", opts.TarpitMax, "connections held at most in the tarpits")
	f.Uint16Var(&opts.NflogGroup, "nflog-group", opts.NflogGroup, "the NFLOG group guard's rules log to")
	return cmd
}

// complete checks the flags, reads the config file, and builds cfg.
func (o *guardOptions) complete() error {
	var err error
	if o.NetNS, err = checkNetNS(o.NetNS); err != nil {
		return err
	}
	if o.Status {
		return nil
	}
	if o.flagsAs == nil {
		flags := *o
		o.flagsAs = &flags
	}
	if o.Config != "" {
		b, err := os.ReadFile(o.Config)
		if err != nil {
			return usageErrorf("--config %s: %v", o.Config, errors.Unwrap(err))
		}
		file, err := guard.ParseFile(bytes.NewReader(b))
		if err != nil {
			return usageErrorf("--config %s: %v", o.Config, err)
		}
		o.merge(file)
	}
	if o.Block < 0 {
		return usageErrorf("--block %s: want a duration of 0 or more", o.Block)
	}
	if o.Group4 < 0 || o.Group4 > 32 {
		return usageErrorf("--group4 %d: want a prefix length from 0 to 32", o.Group4)
	}
	if o.Group6 < 0 || o.Group6 > 128 {
		return usageErrorf("--group6 %d: want a prefix length from 0 to 128", o.Group6)
	}
	if o.KnockWindow <= 0 || o.OpenFor <= 0 {
		return usageErrorf("--knock-window %s, --open-for %s: want durations above 0", o.KnockWindow, o.OpenFor)
	}
	if o.TarpitMax < 1 {
		return usageErrorf("--tarpit-max %d: want 1 or more", o.TarpitMax)
	}
	if o.NflogGroup == 0 {
		return usageErrorf("--nflog-group 0: want a group from 1 to 65535")
	}
	cfg := guard.Config{NetNS: o.NetNS, Group: o.NflogGroup, Block: o.Block, KnockWindow: o.KnockWindow, OpenFor: o.OpenFor,
		Detect: guard.DetectConfig{Group4: o.Group4, Group6: o.Group6}}
	for _, a := range o.Allow {
		p, err := guard.ParsePrefix(a)
		if err != nil {
			return usageErrorf("--allow %v", err)
		}
		cfg.Detect.Allow = append(cfg.Detect.Allow, p)
	}
	for _, k := range o.Knocks {
		r, err := guard.ParseKnock(k)
		if err != nil {
			return usageErrorf("--%v", err)
		}
		cfg.Knocks = append(cfg.Knocks, r)
	}
	if o.SPAKey != "" {
		if o.SPAPort == 0 {
			return usageErrorf("--spa-port 0: want a port from 1 to 65535")
		}
		for f := range strings.SplitSeq(o.SPAOpen, ",") {
			t, err := guard.ParseTarget(f)
			if err != nil {
				return usageErrorf("--spa-open %v", err)
			}
			cfg.Guarded = append(cfg.Guarded, t)
		}
		cfg.SPAPort = o.SPAPort
	}
	if o.Tarpit != "" {
		if o.tarpits, err = guard.ParsePorts(o.Tarpit); err != nil {
			return usageErrorf("--tarpit %v", err)
		}
	}
	o.cfg = cfg
	return nil
}

// merge takes the config file's settings for the flags not given.
func (o *guardOptions) merge(f guard.File) {
	take := func(name string, apply func()) {
		if !o.set(name) {
			apply()
		}
	}
	take("block", func() { o.Block = time.Duration(f.Block) })
	take("group4", func() { o.Group4 = f.Group4 })
	take("group6", func() { o.Group6 = f.Group6 })
	take("allow", func() { o.Allow = f.Allow })
	take("knock", func() { o.Knocks = f.Knock })
	if f.KnockWindow > 0 {
		take("knock-window", func() { o.KnockWindow = time.Duration(f.KnockWindow) })
	}
	if f.OpenFor > 0 {
		take("open-for", func() { o.OpenFor = time.Duration(f.OpenFor) })
	}
	if f.SPA.Key != "" {
		take("spa-key", func() { o.SPAKey = f.SPA.Key })
	}
	if f.SPA.Port != 0 {
		take("spa-port", func() { o.SPAPort = f.SPA.Port })
	}
	if f.SPA.Nonces != "" {
		take("spa-nonces", func() { o.SPANonces = f.SPA.Nonces })
	}
	if len(f.Tarpit.Ports) > 0 {
		ports := make([]string, len(f.Tarpit.Ports))
		for i, p := range f.Tarpit.Ports {
			ports[i] = strconv.Itoa(int(p))
		}
		take("tarpit", func() { o.Tarpit = strings.Join(ports, ",") })
	}
	if f.Tarpit.Max > 0 {
		take("tarpit-max", func() { o.TarpitMax = f.Tarpit.Max })
	}
	if f.Events != "" {
		take("events", func() { o.Events = f.Events })
	}
	if f.NflogGroup != 0 {
		take("nflog-group", func() { o.NflogGroup = f.NflogGroup })
	}
}

func runGuard(ctx context.Context, streams *term.IO, opts guardOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if opts.Status {
		return runGuardStatus(ctx, streams, opts.NetNS, opts.JSON)
	}
	out := &eventWriter{w: streams.Out, json: opts.JSON}
	if opts.Events != "" {
		f, err := os.OpenFile(opts.Events, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("--events %s: %w", opts.Events, errors.Unwrap(err))
		}
		defer f.Close()
		out.file = f
	}
	if opts.SPAKey != "" {
		checker, err := opts.spaChecker()
		if err != nil {
			return err
		}
		opts.cfg.SPA = checker
	}
	if len(opts.tarpits) > 0 {
		tp, err := tarpit.Start(ctx, tarpit.Options{Ports: opts.tarpits, MaxConns: opts.TarpitMax, NetNS: opts.NetNS}, func(e tarpit.Event) {
			ev := guard.Event{Time: time.Now(), Type: guard.EventTarpit, Source: e.Remote.Addr().Unmap().String(),
				Proto: "tcp", Ports: []uint16{e.Port}}
			switch {
			case e.Opened:
				ev.Message = "caught"
			case e.Refused:
				ev.Message = fmt.Sprintf("closed at once: %d connections held already", opts.TarpitMax)
			default:
				ev.For = e.Held.Round(time.Second).String()
				ev.Message = fmt.Sprintf("let go after %s, %d bytes sent", e.Held.Round(time.Second), e.Sent)
			}
			out.emit(ev)
		})
		if err != nil {
			return err // it names the tarpit
		}
		defer tp.Close()
	}
	reload := make(chan guard.Config, 1)
	if opts.Config != "" {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
				}
				// The flags given win over the file, as at the start.
				again := *opts.flagsAs
				if err := again.complete(); err != nil {
					out.emit(guard.Event{Time: time.Now(), Type: guard.EventError, Message: "reload: " + err.Error()})
					continue
				}
				again.cfg.SPA = opts.cfg.SPA
				reload <- again.cfg
			}
		}()
	}
	err := guard.Run(ctx, opts.cfg, out.emit, reload)
	if errors.Is(err, guard.ErrGroupTaken) {
		return usageErrorf("--nflog-group %d: %v", opts.NflogGroup, err)
	}
	// Its rules (nftables) and NFLOG need CAP_NET_ADMIN. The NFLOG
	// library's refusal keeps only the errno's text.
	if errors.Is(err, os.ErrPermission) || err != nil && strings.Contains(err.Error(), syscall.EPERM.Error()) {
		return needCapability("guard", "CAP_NET_ADMIN", "", err)
	}
	return err
}

// spaChecker loads the keys and the nonces of packets seen.
func (o *guardOptions) spaChecker() (guard.SPAChecker, error) {
	f, err := os.Open(o.SPAKey)
	if err != nil {
		return nil, usageErrorf("--spa-key %s: %v", o.SPAKey, errors.Unwrap(err))
	}
	defer f.Close()
	keys, err := spa.LoadKeys(f)
	if err != nil {
		return nil, usageErrorf("--spa-key %s: %v", o.SPAKey, err)
	}
	cache := spa.NewReplayCache(0)
	if b, err := os.ReadFile(o.SPANonces); err == nil {
		if c, err := spa.LoadReplayCache(bytes.NewReader(b), time.Now()); err == nil {
			cache = c
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ports := map[guard.Target]bool{}
	for _, t := range o.cfg.Guarded {
		ports[t] = true
	}
	return &spaChecker{v: spa.NewVerifier(keys, cache, 0), cache: cache, file: o.SPANonces, ports: ports}, nil
}

// spaChecker checks signed packets with spa's Verifier, allows only the
// ports of --spa-open, and keeps the nonces in a file.
type spaChecker struct {
	v     *spa.Verifier
	cache *spa.ReplayCache
	file  string
	ports map[guard.Target]bool
}

func (c *spaChecker) CheckSPA(payload []byte, from netip.Addr, now time.Time) (guard.SPAGrant, error) {
	g, err := c.v.Check(payload, from, now)
	if err != nil {
		return guard.SPAGrant{}, err
	}
	c.save()
	t, err := guard.ParseTarget(g.Proto + "/" + strconv.Itoa(int(g.Port)))
	if err != nil {
		return guard.SPAGrant{}, err
	}
	if !c.ports[t] {
		return guard.SPAGrant{}, fmt.Errorf("asks for %s, which signed packets may not open", t)
	}
	return guard.SPAGrant{Open: t, Addr: g.Addr, For: g.For}, nil
}

// save writes the nonces seen, through a new file renamed over the old.
func (c *spaChecker) save() {
	if c.file == "" {
		return
	}
	os.MkdirAll(filepath.Dir(c.file), 0o700)
	tmp := c.file + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	if err := c.cache.Save(f); err != nil || f.Close() != nil {
		os.Remove(tmp)
		return
	}
	os.Rename(tmp, c.file)
}

// eventWriter writes events as lines for people or JSON lines, and to a
// file; it is safe for concurrent use.
type eventWriter struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
	file io.Writer
}

func (e *eventWriter) emit(ev guard.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.file != nil || e.json {
		line, _ := json.Marshal(ev)
		line = append(line, '\n')
		if e.file != nil {
			e.file.Write(line)
		}
		if e.json {
			e.w.Write(line)
			return
		}
	}
	fmt.Fprintln(e.w, eventLine(ev))
}

// eventLine is an event for people.
func eventLine(ev guard.Event) string {
	s := ev.Time.Local().Format("15:04:05") + " " + ev.Type
	if ev.Source != "" {
		s += " " + ev.Source
	}
	ports := func() string {
		var ps []string
		for _, p := range ev.Ports {
			ps = append(ps, strconv.Itoa(int(p)))
		}
		if len(ps) > 12 {
			ps = append(ps[:12], fmt.Sprintf("… (%d in all)", len(ev.Ports)))
		}
		return strings.Join(ps, ",")
	}
	switch ev.Type {
	case guard.EventScan:
		s += fmt.Sprintf(": %s scan, %d of %d first contacts failed, closed %s ports %s (since %s)",
			ev.Kind, ev.Failures, ev.Probes, ev.Proto, ports(), ev.First.Local().Format("15:04:05"))
		if ev.Spoofable {
			s += "; not blocked: such probes can be forged"
		}
	case guard.EventSweep:
		s += fmt.Sprintf(": contacted %d of this host's addresses", len(ev.Hosts))
	case guard.EventKnock, guard.EventSPA:
		s += fmt.Sprintf(": opened %s/%s for %s", ev.Proto, ports(), ev.For)
	case guard.EventBlock:
		s += ": blocked for " + ev.For
	}
	if ev.Message != "" {
		s += ": " + ev.Message
	}
	return s
}
