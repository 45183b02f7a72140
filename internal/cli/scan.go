package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan"
	svcprobe "github.com/portctl/portctl/scan/probe"
	"github.com/portctl/portctl/scan/report"
)

// scanOptions are the flags and arguments of `portctl scan`.
type scanOptions struct {
	Targets     []string
	InputFile   string // -iL
	Excludes    []string
	ExcludeFile string
	Ports       string
	Family      int
	Types       []string // -s: T connect, S syn, U udp, V service
	Seed        uint64
	SeedSet     bool
	Shard       string
	Resume      string
	Rate        int
	Retries     int
	Timeout     time.Duration
	Concurrency int
	JSON        bool
	JSONL       bool
	XMLFile     string
	GrepFile    string
	All         bool   // show closed and filtered ports too
	AllowLarge  bool   // --allow-large: more than maxScanAddrs addresses
	Probes      string // --probes: an nmap-service-probes file
	Args        []string
}

// maxScanAddrs is the most addresses a scan takes without --allow-large:
// an IPv4 /8. More is a slip as a rule (10.0.0.0/0 for 10.0.0.0/8), and
// probing the whole internet, as masscan says, wants an explicit yes.
const maxScanAddrs = 1 << 24

// nmapAliases maps nmap's multi-letter single-dash flags to portctl's.
var nmapAliases = map[string]string{
	"-sT": "--connect", "-sS": "--syn", "-sU": "--udp", "-sV": "--service",
	"-oX": "--xml", "-oG": "--grepable", "-iL": "--input", "-Pn": "--no-ping", "-p-": "--ports=-",
}

// rewriteNmapArgs turns nmap's spellings (-sT, -oX FILE, -iL FILE, -Pn,
// -p-) into flags the parser knows, for the scan command only.
func rewriteNmapArgs(args []string) []string {
	// The command is the first word that is not a flag (the root's flags
	// take no values).
	at := slices.IndexFunc(args, func(a string) bool { return !strings.HasPrefix(a, "-") })
	if at < 0 || args[at] != "scan" {
		return args
	}
	out := slices.Clone(args[:at+1])
	for i, a := range args[at+1:] {
		if a == "--" {
			return append(out, args[at+1+i:]...)
		}
		if r, ok := nmapAliases[a]; ok {
			out = append(out, r)
			continue
		}
		out = append(out, a)
	}
	return out
}

func newScanCmd(streams *term.IO, runF func(context.Context, scanOptions) error) *cobra.Command {
	var (
		opts                               scanOptions
		ipv4, ipv6, connect, syn, udp, svc bool
		seed                               string
		noPing, noResolve                  bool
	)
	cmd := &cobra.Command{
		Use:   "scan TARGET... [-p PORTS]",
		Short: "Find the open ports of hosts and networks",
		Long: `Probe every port of every target and report which are open, closed or
filtered, with the reason. Targets are addresses, CIDRs (IPv4 and IPv6),
ranges (10.0.0.1-20), host names (every address they resolve to), or files
(-iL FILE, - for stdin); --exclude removes some. A CIDR's address may not
set bits beyond its prefix (10.0.0.0/0 is refused: it would be every IPv4
address), and more than 2^24 addresses (an IPv4 /8) need --allow-large.
Ports: 22,80,443, 1-1024, - (all), top:N, service names (ssh,https), T:/U:
prefixes. The default is top:1000.

Pairs are visited in a random but deterministic order (--seed); --shard K/N
scans one of N disjoint parts; --resume FILE saves where an interrupted scan
stopped and continues from there.

nmap's spellings work: -sT, -p-, -iL FILE, -oX FILE, -oG FILE, -n, -Pn.
Engines: TCP SYN (-sS: raw sockets, stateless, the default with root or
CAP_NET_RAW), TCP connect (-sT: no privilege needed, the default without),
and UDP with protocol payloads (-sU: open on any answer, closed on ICMP port
unreachable, open|filtered on silence).

Service detection (--service, -sV) identifies what answers on each open
port: product, version, TLS and certificate, HTTP title, and warnings
(legacy TLS, expiring certificates, plain-text logins, stores without
authentication). portctl's own probes go first; nmap's service-probes file,
when nmap is installed (or given with --probes FILE), adds its breadth.`,
		Example: `  portctl scan 192.0.2.10
  portctl scan 10.0.0.0/24 -p 22,80,443 --jsonl
  portctl scan db.internal -p- -oX db.xml
  portctl scan 10.0.0.0/16 --shard 2/8 --seed 42 --resume part2.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Targets = args
			switch {
			case ipv4 && ipv6:
				return usageErrorf("-4 and -6 exclude each other")
			case ipv4:
				opts.Family = 4
			case ipv6:
				opts.Family = 6
			}
			if connect {
				opts.Types = append(opts.Types, "T")
			}
			if syn {
				opts.Types = append(opts.Types, "S")
			}
			if udp {
				opts.Types = append(opts.Types, "U")
			}
			if svc {
				opts.Types = append(opts.Types, "V")
			}
			if seed != "" {
				n, err := strconv.ParseUint(seed, 10, 64)
				if err != nil {
					return usageErrorf("--seed %q: want a number 0-18446744073709551615", seed)
				}
				opts.Seed, opts.SeedSet = n, true
			}
			if opts.JSON && opts.JSONL {
				return usageErrorf("--json and --jsonl exclude each other")
			}
			switch {
			case opts.Rate < 0:
				return usageErrorf("--rate %d is negative (want probes a second, or 0 for no cap)", opts.Rate)
			case opts.Concurrency < 0:
				return usageErrorf("--concurrency %d is negative (want probes in flight, or 0 for the default 1024)", opts.Concurrency)
			case opts.Timeout < 0:
				return usageErrorf("--timeout %s is negative (want a duration such as 500ms, 2s, 1m, or 0 to adapt to round trips)", opts.Timeout)
			case opts.Retries < 0:
				return usageErrorf("--max-retries %d is negative (want 0 or more; 0 for none)", opts.Retries)
			}
			opts.Args = os.Args
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runScan(cmd.Context(), streams, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Ports, "ports", "p", "top:1000", "ports: 22,80,443  1-1024  -  top:N  ssh,https  T:80,U:53")
	f.StringVar(&opts.InputFile, "input", "", "read targets from FILE (- for stdin); nmap: -iL")
	f.StringSliceVar(&opts.Excludes, "exclude", nil, "targets to leave out (same forms as targets)")
	f.StringVar(&opts.ExcludeFile, "exclude-file", "", "read targets to leave out from FILE")
	f.BoolVarP(&ipv4, "ipv4", "4", false, "only IPv4 addresses of host names")
	f.BoolVarP(&ipv6, "ipv6", "6", false, "only IPv6 addresses of host names")
	f.BoolVar(&connect, "connect", false, "TCP connect scan (no privilege needed); nmap: -sT")
	f.BoolVar(&syn, "syn", false, "TCP SYN scan (root or CAP_NET_RAW; the default when allowed); nmap: -sS")
	f.BoolVar(&udp, "udp", false, "UDP scan with protocol payloads; unprefixed ports are UDP unless -sT is given too; nmap: -sU")
	f.BoolVar(&svc, "service", false, "identify the service on each open port; nmap: -sV")
	f.StringVar(&opts.Probes, "probes", "", "extra probes from FILE in nmap's service-probes format (default: nmap's, when installed)")
	f.StringVar(&seed, "seed", "", "order the probes with this seed (default: random)")
	f.StringVar(&opts.Shard, "shard", "", "scan shard K of N, as K/N")
	f.StringVar(&opts.Resume, "resume", "", "save progress to FILE when interrupted, and continue from it when it exists")
	f.IntVar(&opts.Rate, "rate", 0, "at most this many new probes a second (0: no cap, the default)")
	f.IntVar(&opts.Retries, "max-retries", 2, "more attempts for unanswered ports, spaced by the timeout (0: none)")
	f.DurationVar(&opts.Timeout, "timeout", 0, "fixed probe timeout (0, the default: adapts to measured round trips)")
	f.IntVar(&opts.Concurrency, "concurrency", 0, "probes in flight (0: the default, 1024 within the open-file limit)")
	f.BoolVar(&opts.AllowLarge, "allow-large", false, "scan more than 2^24 addresses (an IPv4 /8); without it a larger scan is refused")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON document at the end")
	f.BoolVar(&opts.JSONL, "jsonl", false, "stream one JSON object per port as it is decided")
	f.StringVar(&opts.XMLFile, "xml", "", "also write nmap XML to FILE; nmap: -oX")
	f.StringVar(&opts.GrepFile, "grepable", "", "also write nmap's grepable format to FILE; nmap: -oG")
	f.BoolVarP(&noResolve, "no-resolve", "n", false, "accepted for nmap compatibility: portctl resolves only names given as targets")
	f.BoolVar(&noPing, "no-ping", false, "accepted for nmap compatibility: portctl does no host discovery; nmap: -Pn")
	f.BoolVarP(&opts.All, "all", "a", false, "list closed and filtered ports too")
	return cmd
}

func runScan(ctx context.Context, streams *term.IO, opts scanOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	var svcCfg *svcprobe.Config
	if slices.Contains(opts.Types, "V") {
		db, err := loadProbeDB(opts.Probes)
		if err != nil {
			return err
		}
		svcCfg = &svcprobe.Config{DB: db}
	} else if opts.Probes != "" {
		return usageErrorf("--probes is for service detection: add --service (-sV)")
	}
	reg := loadRegistry(streams)
	var res scan.Resume
	resuming := false
	if opts.Resume != "" {
		if f, err := os.Open(opts.Resume); err == nil {
			res, err = scan.ReadResume(f)
			f.Close()
			if err != nil {
				return usageErrorf("--resume %s: %v", opts.Resume, err)
			}
			if len(opts.Targets) > 0 || opts.InputFile != "" {
				return usageErrorf("--resume %s continues a saved scan: give no targets with it (or remove the file to start over)", opts.Resume)
			}
			resuming = true
			opts.Targets, opts.Excludes, opts.Ports, opts.Family = res.Targets, res.Excludes, res.Ports, res.Family
			opts.Seed, opts.SeedSet, opts.Shard = res.Seed, true, res.Shard
			if res.Proto == registry.UDP {
				opts.Types = []string{"U"}
			}
		}
	}
	targets := slices.Clone(opts.Targets)
	if opts.InputFile != "" {
		more, err := readSpecFile(streams, opts.InputFile)
		if err != nil {
			return err
		}
		targets = append(targets, more...)
	}
	excludes := slices.Clone(opts.Excludes)
	if opts.ExcludeFile != "" {
		more, err := readSpecFile(streams, opts.ExcludeFile)
		if err != nil {
			return err
		}
		excludes = append(excludes, more...)
	}
	if len(targets) == 0 {
		return usageErrorf("scan needs targets: addresses, CIDRs, ranges or host names, or -iL FILE")
	}
	tset, err := scan.ParseTargets(ctx, targets, excludes, scan.TargetOptions{Resolver: net.DefaultResolver, Family: opts.Family})
	if err != nil {
		return usageErrorf("%v", err)
	}
	if tset.Len() == 0 {
		return usageErrorf("no targets left after --exclude")
	}
	// A resumed scan was let through when it started.
	if n := tset.Len(); n > maxScanAddrs && !opts.AllowLarge && !resuming {
		what := "targets " + quoteSpecs(targets) + " are"
		if len(targets) == 1 {
			what = "target " + quoteSpecs(targets) + " is"
		}
		return usageErrorf("%s %s addresses, more than the 2^24 (an IPv4 /8) a scan takes without --allow-large; narrow it with --exclude or a longer prefix, or add --allow-large if you mean it",
			what, addrCount(n))
	}
	defaultProto := registry.TCP
	if slices.Contains(opts.Types, "U") && !slices.Contains(opts.Types, "T") {
		defaultProto = registry.UDP // -sU alone: unprefixed ports are UDP
	}
	ports, err := scan.ParsePorts(opts.Ports, reg, defaultProto)
	if err != nil {
		return usageErrorf("-p %v", err)
	}
	if !opts.SeedSet {
		opts.Seed = rand.Uint64()
	}
	plan := scan.Plan{Targets: tset, Ports: ports, Seed: opts.Seed,
		Connect: scan.ConnectConfig{Concurrency: opts.Concurrency, Timeout: opts.Timeout, Rate: opts.Rate, Retries: opts.Retries},
		UDP:     scan.UDPConfig{Concurrency: opts.Concurrency, Timeout: opts.Timeout, Rate: opts.Rate, Retries: opts.Retries},
		Service: svcCfg}
	syn := scan.SynConfig{Timeout: opts.Timeout, Rate: opts.Rate, Retries: opts.Retries}
	if opts.Retries == 0 {
		plan.Connect.Retries, plan.UDP.Retries, syn.Retries = -1, -1, -1
	}
	// The SYN engine when asked for, or by default where raw sockets are
	// allowed; -sT asks for the connect engine.
	if slices.Contains(opts.Types, "S") || !slices.Contains(opts.Types, "T") && canRawSocket() {
		plan.SYN = &syn
	}
	if opts.Shard != "" {
		if plan.ShardK, plan.ShardN, err = scan.ParseShard(opts.Shard); err != nil {
			return usageErrorf("--%v", err) // "--shard \"0/0\" has N = 0 …"
		}
	}
	total := plan.Total()
	if resuming {
		if res.Total != total {
			return usageErrorf("--resume %s: the saved scan had %d probes, the targets now give %d (names resolve differently?); remove the file to start over", opts.Resume, res.Total, total)
		}
		plan.Skip = res.Done
	}
	scan.RaiseFileLimit()
	// A scan's work is in the kernel; its heap is many small short-lived
	// probes. Collecting more often keeps the peak memory under nmap's
	// (measured on the lossy /24 of bench/scan: 25.6 MiB with GOGC 50,
	// 22.5 with 25, nmap 25.2) at no cost we could measure in time. A
	// GOGC the user set wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}

	// Writers: the terminal's table (or JSON) and the files asked for.
	var writers []report.Writer
	var closers []func() error
	switch {
	case opts.JSONL:
		writers = append(writers, report.NewJSONL(streams.Out))
	case opts.JSON:
		writers = append(writers, report.NewJSON(streams.Out))
	default:
		writers = append(writers, newScanTable(streams, opts.All, svcCfg != nil, reg))
	}
	for _, file := range []struct {
		path string
		mk   func(io.Writer) report.Writer
	}{{opts.XMLFile, report.NewXML}, {opts.GrepFile, report.NewGrepable}} {
		if file.path == "" {
			continue
		}
		f, err := os.Create(file.path)
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		bw := bufio.NewWriter(f)
		writers = append(writers, file.mk(bw))
		closers = append(closers, func() error {
			if err := bw.Flush(); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		})
	}
	out := report.Multi(writers...)
	start := time.Now()
	meta := report.Meta{Args: opts.Args, Start: start, ScanType: "connect", Protocol: "tcp", Ports: opts.Ports, NumServices: ports.Len(), Version: version()}
	if plan.SYN != nil {
		meta.ScanType = "syn"
	}
	switch protos := ports.Protocols(); {
	case protos == registry.UDP:
		meta.ScanType, meta.Protocol = "udp", "udp"
	case protos.Has(registry.UDP):
		meta.More = []report.ScanInfo{{ScanType: "udp", Protocol: "udp", Ports: opts.Ports}}
	}
	if err := out.Begin(meta); err != nil {
		return err
	}
	bar := newProgressBar(streams, total)
	var werr error
	final, runErr := scan.Run(ctx, plan, func(r scan.Result) {
		if err := out.Result(r); err != nil && werr == nil {
			werr = err
		}
	}, bar.update)
	bar.finish()
	hosts := int(tset.Len())
	sum := report.Summary{End: time.Now(), Hosts: hosts, HostsUp: hosts, Elapsed: time.Since(start), Exit: "success"}
	if runErr != nil {
		sum.Exit, sum.Error = "error", runErr.Error()
	}
	endErr := out.End(sum)
	for _, c := range closers {
		if err := c(); err != nil && endErr == nil {
			endErr = err
		}
	}
	if opts.Resume != "" {
		if runErr == nil {
			os.Remove(opts.Resume)
		} else {
			r := scan.Resume{Version: 1, Seed: opts.Seed, Shard: opts.Shard, Targets: targets, Excludes: excludes,
				Family: opts.Family, Ports: opts.Ports, Proto: defaultProto, Total: total, Done: final.Done}
			if err := saveResume(opts.Resume, r); err != nil {
				fmt.Fprintf(streams.Err, "portctl: could not save the resume file: %v\n", err)
			} else {
				fmt.Fprintf(streams.Err, "portctl: stopped after %d of %d probes; 'portctl scan --resume %s' continues\n", final.Done, total, opts.Resume)
			}
		}
	}
	switch {
	case errors.Is(runErr, os.ErrPermission) && plan.SYN != nil:
		return needCapability("-sS (SYN scan)", "CAP_NET_RAW", "or use -sT (connect scan), which needs no privilege", nil)
	case errors.Is(runErr, scan.ErrUnsupported):
		return usageErrorf("%v", runErr)
	case errors.Is(runErr, context.Canceled):
		return &statusError{code: 130, msg: "interrupted"}
	case runErr != nil:
		return runErr
	case werr != nil:
		return werr
	}
	return endErr
}

// quoteSpecs quotes the target specs for a message, the first few only.
func quoteSpecs(specs []string) string {
	const most = 3
	q := make([]string, 0, most)
	for _, s := range specs[:min(len(specs), most)] {
		q = append(q, strconv.Quote(s))
	}
	if len(specs) > most {
		q = append(q, fmt.Sprintf("and %d more", len(specs)-most))
	}
	return strings.Join(q, ", ")
}

// addrCount formats a number of addresses, as 2^k when it is a power of
// two.
func addrCount(n uint64) string {
	if n > 1 && n&(n-1) == 0 {
		return fmt.Sprintf("2^%d", bits.TrailingZeros64(n))
	}
	return strconv.FormatUint(n, 10)
}

// readSpecFile reads targets from a file, or stdin for "-".
func readSpecFile(streams *term.IO, path string) ([]string, error) {
	var r io.Reader
	if path == "-" {
		r = streams.In
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, usageErrorf("%v", err)
		}
		defer f.Close()
		r = f
	}
	specs, err := scan.ReadTargetFile(r)
	if err != nil {
		return nil, usageErrorf("%s: %v", path, err)
	}
	return specs, nil
}

// saveResume writes the resume file atomically.
func saveResume(path string, r scan.Resume) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".portctl-resume-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := scan.WriteResume(tmp, r); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// scanTable is the terminal report: per host, its open ports (every port
// with --all), and counts of the rest.
type scanTable struct {
	streams *term.IO
	all     bool
	service bool // a VERSION column, and the findings
	reg     *registry.Registry
	hosts   map[netip.Addr]*tableHost
}

type tableHost struct {
	name   string
	ports  []scan.Result
	counts map[scan.State]int
}

func newScanTable(streams *term.IO, all, service bool, reg *registry.Registry) *scanTable {
	return &scanTable{streams: streams, all: all, service: service, reg: reg, hosts: map[netip.Addr]*tableHost{}}
}

func (t *scanTable) Begin(report.Meta) error { return nil }

func (t *scanTable) Result(r scan.Result) error {
	h := t.hosts[r.Addr]
	if h == nil {
		h = &tableHost{name: r.Host, counts: map[scan.State]int{}}
		t.hosts[r.Addr] = h
	}
	h.counts[r.State]++
	if r.State == scan.Open || t.all {
		h.ports = append(h.ports, r)
	}
	return nil
}

func (t *scanTable) End(s report.Summary) error {
	w, st := t.streams.Out, t.streams.Style()
	addrs := make([]netip.Addr, 0, len(t.hosts))
	for a := range t.hosts {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	open := 0
	for _, a := range addrs {
		h := t.hosts[a]
		if len(h.ports) == 0 {
			continue
		}
		title := a.String()
		if h.name != "" {
			title = fmt.Sprintf("%s (%s)", h.name, a)
		}
		fmt.Fprintln(w, st.Bold(title))
		slices.SortFunc(h.ports, func(x, y scan.Result) int { return int(x.Port) - int(y.Port) })
		// With service detection, a VERSION column after SERVICE.
		const versionCol = 3
		cols := []string{"PORT", "STATE", "SERVICE", "REASON", "RTT"}
		if t.service {
			cols = slices.Insert(cols, versionCol, "VERSION")
		}
		tb := term.NewTable(cols...).Indent("  ")
		var findings []func()
		for _, r := range h.ports {
			svc := ""
			for _, as := range t.reg.Port(r.Port, r.Proto) {
				if as.Name != "" {
					svc = as.Name
					break
				}
			}
			version := ""
			if d := r.Service; d != nil {
				if d.Known() {
					svc = serviceLabel(d)
				} else if svc != "" {
					svc += "?"
				}
				version = versionCell(d)
				if len(d.Findings) > 0 {
					where := fmt.Sprintf("%d/%s", r.Port, r.Proto)
					findings = append(findings, func() { printFindings(w, st, where, d.Findings) })
				}
			}
			state := r.State.String()
			if r.State == scan.Open {
				state = st.Green(state)
				open++
			}
			rtt := ""
			if r.RTT > 0 {
				rtt = r.RTT.Round(time.Microsecond).String()
			}
			row := []string{fmt.Sprintf("%d/%s", r.Port, r.Proto), state, svc, string(r.Reason), rtt}
			if t.service {
				row = slices.Insert(row, versionCol, version)
			}
			tb.Row(row...)
		}
		if err := tb.Render(w, t.streams.Width(), st); err != nil {
			return err
		}
		for _, f := range findings {
			f()
		}
		var rest []string
		for _, state := range []scan.State{scan.Closed, scan.Filtered, scan.OpenFiltered} {
			if n := h.counts[state]; n > 0 && !t.all {
				rest = append(rest, fmt.Sprintf("%d %s", n, state))
			}
		}
		if len(rest) > 0 {
			fmt.Fprintf(w, "  %s\n", st.Dim("not shown: "+strings.Join(rest, ", ")))
		}
		fmt.Fprintln(w)
	}
	// What the hosts without a listed port answered, so that a scan that
	// found nothing open still shows what it found.
	unlisted, hidden := 0, map[scan.State]int{}
	for _, h := range t.hosts {
		if len(h.ports) == 0 {
			unlisted++
			for state, n := range h.counts {
				hidden[state] += n
			}
		}
	}
	var counts []string
	for _, state := range []scan.State{scan.Closed, scan.Filtered, scan.OpenFiltered} {
		if n := hidden[state]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, state))
		}
	}
	line := fmt.Sprintf("%s on %d of %s scanned in %.3fs", plural(open, "open port"), countOpenHosts(t.hosts), plural(s.Hosts, "host"), s.Elapsed.Seconds())
	if len(counts) > 0 {
		line += fmt.Sprintf("; %s without open ports: %s (-a lists them)", plural(unlisted, "host"), strings.Join(counts, ", "))
	}
	fmt.Fprintln(w, line)
	return nil
}

func countOpenHosts(hosts map[netip.Addr]*tableHost) int {
	n := 0
	for _, h := range hosts {
		if h.counts[scan.Open] > 0 {
			n++
		}
	}
	return n
}

// progressBar draws progress on stderr when it is a terminal.
type progressBar struct {
	streams *term.IO
	total   uint64
	start   time.Time
	last    time.Time
	on      bool
}

func newProgressBar(streams *term.IO, total uint64) *progressBar {
	return &progressBar{streams: streams, total: total, start: time.Now(), on: streams.IsErrTerminal() && total > 0}
}

func (b *progressBar) update(p scan.Progress) {
	if !b.on {
		return
	}
	now := time.Now()
	if now.Sub(b.last) < 200*time.Millisecond && p.Finished < p.Total {
		return
	}
	b.last = now
	frac := float64(p.Finished) / float64(b.total)
	const width = 30
	filled := int(frac * width)
	rate := float64(p.Finished) / max(now.Sub(b.start).Seconds(), 1e-3)
	eta := ""
	if rate > 0 && p.Finished < p.Total {
		eta = " ETA " + (time.Duration(float64(p.Total-p.Finished)/rate) * time.Second).Round(time.Second).String()
	}
	fmt.Fprintf(b.streams.Err, "\r[%s%s] %3.0f%% %d/%d  %.0f/s  %d open%s\x1b[K", strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		100*frac, p.Finished, p.Total, rate, p.Open, eta)
}

func (b *progressBar) finish() {
	if b.on {
		fmt.Fprint(b.streams.Err, "\r\x1b[K")
	}
}
