package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/audit"
	"github.com/portctl/portctl/containers"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/reach"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// whoOptions are the flags and argument of `portctl who`.
type whoOptions struct {
	Port     uint16
	Addr     netip.Addr // when the argument was ADDR:PORT; else invalid
	Protos   sockets.Proto
	BindTest bool
	NetNS    string
	AllNetNS bool
	JSON     bool
}

func newWhoCmd(streams *term.IO, runF func(context.Context, whoOptions) error) *cobra.Command {
	var (
		opts  whoOptions
		proto string
	)
	cmd := &cobra.Command{
		Use:   "who PORT|ADDR:PORT",
		Short: "Who holds a port, and why it is busy",
		Long: `Explain why a port is busy: a process listening on it (PID, command line,
user, start time, systemd unit or container), a container that Docker
publishes it for, an outgoing connection using it as its source port, only TIME_WAIT remnants of closed connections (and when
they expire), a reserved port, or nothing at all.

Exit status: 0 when something holds the port, 1 when it is free.`,
		Example: `  portctl who 3000
  portctl who 53 --proto udp
  portctl who 127.0.0.1:8080 --bind-test
  portctl who postgresql --json
  portctl who 8080 --all-netns`,
		Args: exactArgs(1, "a port, a service name or ADDR:PORT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if opts.Protos, err = parseSockProto(proto); err != nil {
				return err
			}
			if opts.Port, opts.Addr, err = parsePortArg(args[0]); err != nil {
				return err
			}
			if opts.NetNS, err = checkNetNS(opts.NetNS); err != nil {
				return err
			}
			if opts.AllNetNS && opts.NetNS != "" {
				return usageErrorf("--netns and --all-netns: give one (--all-netns looks in every namespace)")
			}
			if opts.AllNetNS && opts.BindTest {
				return usageErrorf("--bind-test and --all-netns: a bind test tries this namespace only")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runWho(cmd.Context(), streams, opts)
		},
	}
	cmd.Flags().StringVarP(&proto, "proto", "P", "", "tcp or udp (default both)")
	cmd.Flags().BoolVar(&opts.BindTest, "bind-test", false, "also try a real bind on the address (0.0.0.0 and :: by default)")
	cmd.Flags().StringVar(&opts.NetNS, "netns", "", "look in this network namespace (a name under /run/netns, or a path)")
	cmd.Flags().BoolVar(&opts.AllNetNS, "all-netns", false, "look in every network namespace (containers' too)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return cmd
}

// parseSockProto parses a --proto flag for the socket commands.
func parseSockProto(s string) (sockets.Proto, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return sockets.TCP | sockets.UDP, nil
	case "tcp":
		return sockets.TCP, nil
	case "udp":
		return sockets.UDP, nil
	case "tcp/udp", "tcp,udp", "udp/tcp", "udp,tcp":
		return sockets.TCP | sockets.UDP, nil
	}
	return 0, usageErrorf("--proto %q: want tcp or udp", s)
}

// parsePortArg parses PORT, a service name, or ADDR:PORT ([v6]:PORT).
func parsePortArg(s string) (uint16, netip.Addr, error) {
	t := strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(t); err == nil {
		if ap.Port() == 0 {
			return 0, netip.Addr{}, usageErrorf("%q: port 0 is not a port anyone holds (want 1-65535)", s)
		}
		return ap.Port(), ap.Addr().Unmap(), nil
	}
	if strings.Contains(t, ":") && !isServiceName(t) {
		return 0, netip.Addr{}, usageErrorf("%q: want PORT, a service name, or ADDR:PORT such as 127.0.0.1:8080 or [::1]:8080", s)
	}
	if strings.HasPrefix(t, "-") {
		return 0, netip.Addr{}, usageErrorf("port %s is negative (want 1-65535)", t)
	}
	if isDigits(t) {
		p, err := registry.ParsePort(t)
		if err != nil {
			return 0, netip.Addr{}, usageErrorf("%v", err)
		}
		if p == 0 {
			return 0, netip.Addr{}, usageErrorf("port 0 is not a port anyone holds (want 1-65535)")
		}
		return p, netip.Addr{}, nil
	}
	if isServiceName(t) {
		if as := registry.Builtin().Name(t, 0); len(as) > 0 {
			return as[0].Port, netip.Addr{}, nil
		}
		return 0, netip.Addr{}, usageErrorf("no service named %q (want a port 1-65535, a service name or ADDR:PORT)", t)
	}
	return 0, netip.Addr{}, usageErrorf("%q: want a port 1-65535, a service name, or ADDR:PORT", s)
}

// whoResult is the JSON document `who --json` prints.
type whoResult struct {
	Port       uint16          `json:"port"`
	Protocols  string          `json:"protocols"`
	Address    string          `json:"address,omitempty"`
	Verdict    sockets.Verdict `json:"verdict"`
	Held       bool            `json:"held"`
	Reserved   bool            `json:"reserved"`
	Ephemeral  bool            `json:"ephemeral"`
	Privileged bool            `json:"privileged"`
	Listeners  []socketJSON    `json:"listeners"`
	Served     int             `json:"served_connections"`
	Clients    []socketJSON    `json:"clients"`
	TimeWait   []socketJSON    `json:"time_wait"` // listed when nothing listens
	// TimeWaitCount counts the TIME-WAIT remnants, listed or not.
	TimeWaitCount int                `json:"time_wait_count"`
	Bound         []socketJSON       `json:"bound"`
	ExpiresMS     int64              `json:"time_wait_expires_ms,omitempty"`
	Holders       []*sockets.Process `json:"holders"`
	// Published lists the containers a container engine publishes the
	// port for (through docker-proxy or its NAT rules alone).
	Published []publishedJSON    `json:"published,omitempty"`
	Advice    []string           `json:"advice"`
	BindTest  []bindResult       `json:"bind_test,omitempty"`
	NetNS     *sockets.Namespace `json:"netns,omitempty"` // with --all-netns
	// Reach says, for each protocol that listens, from where the firewall
	// (and the bind address, the routes, the NAT) lets clients reach the
	// port; ReachNote says why it is missing when the ruleset could not
	// be read.
	Reach     []audit.PortReach `json:"reach,omitempty"`
	ReachNote string            `json:"reach_note,omitempty"`
}

// publishedJSON is a container port published on the port asked about.
type publishedJSON struct {
	Container     sockets.ContainerInfo `json:"container"`
	Protocol      string                `json:"protocol"`
	HostAddress   string                `json:"host_address"`
	HostPort      uint16                `json:"host_port"`
	ContainerAddr string                `json:"container_address,omitempty"`
	ContainerPort uint16                `json:"container_port"`
}

// verdictPublished is who's verdict for a port that no socket here holds
// but a container engine publishes through its NAT rules: binding it may
// work, yet the engine's rules take its traffic, and 'docker run -p'
// answers "port is already allocated".
const verdictPublished sockets.Verdict = "published"

// whoAllResult is what `who --all-netns --json` prints: one result per
// namespace where something holds the port.
type whoAllResult struct {
	Port       uint16      `json:"port"`
	Held       bool        `json:"held"`
	Namespaces []whoResult `json:"namespaces"`
}

// bindResult is one attempt of --bind-test.
type bindResult struct {
	Protocol string `json:"protocol"`
	Address  string `json:"address"`
	OK       bool   `json:"ok"`
	Error    string `json:"error,omitempty"`
}

// portReport is what holds one port: its sockets sorted by role, and for a
// port with a listener, only the number of its connections.
type portReport struct {
	use          sockets.PortUse
	served       int // connections accepted on the port (counted, not listed, when it has a listener)
	timeWait     int // TIME-WAIT remnants (counted when it has a listener)
	unattributed int
}

// portUse finds what holds a port. A busy server's port has thousands of
// connections: they are counted in the kernel's dump, not kept, and only
// the listening and bound sockets are attributed to processes. The
// connections are listed and attributed only when nothing listens.
func portUse(ctx context.Context, port uint16, addr netip.Addr, protos sockets.Proto, netns string) (portReport, error) {
	// TCP: listeners only. A TCP socket bound without listening is in no
	// table the kernel's dump of a state walks (Linux 6.8's
	// TCP_BOUND_INACTIVE would find it, at the cost of walking every bound
	// port), so asking for Close as well finds nothing, but makes the
	// kernel walk every connection of the machine.
	q := sockets.Query{
		Protos: protos, Families: sockets.AllFamilies,
		States: sockets.StatesOf(sockets.Listen), UDPStates: sockets.AllStates,
		LocalPort: port, Processes: true, AllHolders: true, NetNS: netns,
		AttributeIf: func(s *sockets.Socket) bool { return s.Remote.Port() == 0 },
	}
	// Count the connections on the port while the listeners' holders are
	// looked for: the kernel's walk over every connection of the machine
	// then overlaps the /proc scan.
	type counted struct {
		counts map[sockets.Proto]map[sockets.State]int
		err    error
	}
	countc := make(chan counted, 1)
	if protos&sockets.TCP != 0 {
		go func() {
			c, err := sockets.Count(ctx, sockets.Query{Protos: sockets.TCP, Families: sockets.AllFamilies,
				States: sockets.AllStates &^ sockets.StatesOf(sockets.Listen, sockets.Close), LocalPort: port, NetNS: netns})
			countc <- counted{c, err}
		}()
	} else {
		countc <- counted{}
	}
	use, unattributed, err := listPort(ctx, q, addr, port)
	cnt := <-countc
	if err != nil {
		return portReport{}, err
	}
	if len(use.Listeners)+len(use.Bound) > 0 {
		if cnt.err != nil {
			return portReport{}, cnt.err
		}
		r := portReport{use: use, served: len(use.Served), unattributed: unattributed}
		for st, n := range cnt.counts[sockets.TCP] {
			if st == sockets.TimeWait {
				r.timeWait += n
			} else {
				r.served += n
			}
		}
		return r, nil
	}
	// Nothing listens: every socket on the port matters, with its holder.
	q.States, q.AttributeIf = sockets.AllStates, nil
	use, unattributed, err = listPort(ctx, q, addr, port)
	if err != nil {
		return portReport{}, err
	}
	return portReport{use: use, served: len(use.Served), timeWait: len(use.TimeWait), unattributed: unattributed}, nil
}

func listPort(ctx context.Context, q sockets.Query, addr netip.Addr, port uint16) (sockets.PortUse, int, error) {
	t, err := sockets.List(ctx, q)
	if err != nil {
		return sockets.PortUse{}, 0, err
	}
	socks := t.Sockets
	if addr.IsValid() {
		socks = socks[:0]
		for _, s := range t.Sockets {
			la := s.Local.Addr().Unmap()
			if la == addr || la.IsUnspecified() || addr.IsUnspecified() {
				socks = append(socks, s)
			}
		}
	}
	return sockets.ClassifyPort(socks, port), t.Unattributed, nil
}

func runWho(ctx context.Context, streams *term.IO, opts whoOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if opts.AllNetNS {
		return runWhoAll(ctx, streams, opts)
	}
	rep, err := portUse(ctx, opts.Port, opts.Addr, opts.Protos, opts.NetNS)
	if err != nil {
		return err
	}
	host, _ := netconf.ReadNetNS(opts.NetNS) // the documented defaults stand in for what cannot be read
	reg := loadRegistry(streams)
	idx := containerIndex(ctx, streams)
	nameHolders(idx, rep.use)
	res := makeWhoResult(rep.use, rep, host, reg, published(idx, opts.Port, opts.Protos), opts)
	if len(rep.use.Listeners)+len(rep.use.Bound) > 0 {
		res.Reach, res.ReachNote = whoReach(ctx, opts.NetNS, opts.Port, append(slices.Clone(rep.use.Listeners), rep.use.Bound...))
	}
	if opts.BindTest {
		res.BindTest = bindTest(ctx, opts.Addr, opts.Port, opts.Protos)
	}
	if opts.JSON {
		if err := writeJSON(streams.Out, res); err != nil {
			return err
		}
	} else {
		printWho(streams, res, rep.use)
		attributionHint(streams, rep.unattributed)
	}
	if !res.Held {
		return negativef("")
	}
	return nil
}

// makeWhoResult builds who's answer for one namespace from what holds the
// port there and the engines' publications of it.
func makeWhoResult(use sockets.PortUse, rep portReport, host netconf.Host, reg *registry.Registry, pubs []publishedJSON, opts whoOptions) whoResult {
	holders := use.Holders()
	res := whoResult{
		Port: opts.Port, Protocols: opts.Protos.String(), Verdict: use.Verdict(),
		Reserved: host.IsReserved(opts.Port), Ephemeral: host.InEphemeral(opts.Port),
		Privileged: host.Privileged(opts.Port),
		Listeners:  socketsJSON(use.Listeners, reg), Served: rep.served, TimeWaitCount: rep.timeWait,
		Clients: socketsJSON(use.Clients, reg), TimeWait: socketsJSON(use.TimeWait, reg),
		Bound: socketsJSON(use.Bound, reg), ExpiresMS: use.LastExpiry().Milliseconds(),
		Holders: holders, Published: pubs,
	}
	if res.Holders == nil {
		res.Holders = []*sockets.Process{}
	}
	if opts.Addr.IsValid() {
		res.Address = opts.Addr.String()
	}
	if res.Verdict == sockets.VerdictFree && len(res.Published) > 0 {
		res.Verdict = verdictPublished
	}
	res.Advice = whoAdvice(use, host, opts.Port, res.Published)
	res.Held = res.Verdict != sockets.VerdictFree
	return res
}

// nameHolders names the containers behind the port's holders: those they
// run in, and those an engine's process (docker-proxy, or dockerd itself
// since Docker 28 without it) holds the port for.
func nameHolders(idx *containers.Index, use sockets.PortUse) {
	for _, socks := range [][]sockets.Socket{use.Listeners, use.Bound} {
		for _, s := range socks {
			for _, p := range s.Processes {
				idx.AnnotateHolder(p, s.Proto.String(), use.Port)
			}
		}
	}
	if len(use.Listeners)+len(use.Bound) == 0 {
		for _, p := range use.Holders() { // the connections' processes
			idx.AnnotateProcess(p)
		}
	}
}

// published lists the containers the engines publish port for.
func published(idx *containers.Index, port uint16, protos sockets.Proto) []publishedJSON {
	var out []publishedJSON
	for _, pub := range idx.Publishing("", port) {
		if (pub.Port.Proto == "tcp" && protos&sockets.TCP == 0) || (pub.Port.Proto == "udp" && protos&sockets.UDP == 0) {
			continue
		}
		j := publishedJSON{Container: pub.Container.ContainerInfo, Protocol: pub.Port.Proto,
			HostAddress: pub.Port.Host.Addr().String(), HostPort: pub.Port.Host.Port(), ContainerPort: pub.Port.Container}
		if len(pub.Container.Addrs) > 0 {
			j.ContainerAddr = pub.Container.Addrs[0].String()
		}
		out = append(out, j)
	}
	return out
}

// runWhoAll answers who for every network namespace: one section for each
// where something holds the port.
func runWhoAll(ctx context.Context, streams *term.IO, opts whoOptions) error {
	t, err := sockets.ListAll(ctx, sockets.Query{
		Protos: opts.Protos, Families: sockets.AllFamilies, States: sockets.AllStates, UDPStates: sockets.AllStates,
		LocalPort: opts.Port, Processes: true, AllHolders: true,
	})
	if err != nil {
		return err
	}
	reg := loadRegistry(streams)
	idx := containerIndex(ctx, streams)
	idx.Annotate(t) // the namespaces' containers, for their labels, and the processes in containers
	all := whoAllResult{Port: opts.Port, Namespaces: []whoResult{}}
	var uses []sockets.PortUse // each result's, for the text
	// The engines' publications go with the namespace where an engine's
	// process (docker-proxy, dockerd, conmon) holds the port, else with the
	// host's, where an engine's NAT rules usually are.
	pubNS := uint64(0)
	for _, s := range t.Sockets {
		for _, p := range s.Processes {
			if pubNS == 0 && idx.Publisher(p, s.Proto.String(), opts.Port) != nil {
				pubNS = s.NetNS
			}
		}
	}
	for i, ns := range t.Namespaces {
		var socks []sockets.Socket
		for _, s := range t.Sockets {
			la := s.Local.Addr().Unmap()
			if s.NetNS == ns.Inode && (!opts.Addr.IsValid() || la == opts.Addr || la.IsUnspecified()) {
				socks = append(socks, s)
			}
		}
		use := sockets.ClassifyPort(socks, opts.Port)
		pubsHere := ns.Inode == pubNS || (pubNS == 0 && ns.Host)
		if !pubsHere && use.Verdict() == sockets.VerdictFree {
			continue
		}
		var host netconf.Host
		if ns.Host {
			host, _ = netconf.Read()
		} else {
			host, _ = netconf.ReadNetNS(ns.Path)
		}
		nameHolders(idx, use)
		var pubs []publishedJSON
		if pubsHere {
			pubs = published(idx, opts.Port, opts.Protos)
		}
		res := makeWhoResult(use, portReport{use: use, served: len(use.Served), timeWait: len(use.TimeWait)}, host, reg, pubs, opts)
		res.NetNS = &t.Namespaces[i]
		if len(use.Listeners)+len(use.Bound) > 0 {
			path := ns.Path
			if ns.Host {
				path = ""
			}
			res.Reach, res.ReachNote = whoReach(ctx, path, opts.Port, append(slices.Clone(use.Listeners), use.Bound...))
		}
		if !res.Held {
			continue
		}
		all.Namespaces = append(all.Namespaces, res)
		uses = append(uses, use)
		all.Held = true
	}
	if opts.JSON {
		if err := writeJSON(streams.Out, all); err != nil {
			return err
		}
	} else {
		w := streams.Out
		if !all.Held {
			fmt.Fprintf(w, "Port %d is %s in every network namespace (%d looked at).\n", opts.Port, streams.Style().Green("free"), len(t.Namespaces))
		}
		for i, res := range all.Namespaces {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "%s %s\n", streams.Style().Dim("== network namespace"), streams.Style().Bold(namespaceTitle(*res.NetNS)))
			printWho(streams, res, uses[i])
		}
		attributionHint(streams, t.Unattributed)
	}
	if !all.Held {
		return negativef("")
	}
	return nil
}

// namespaceTitle names a namespace in who's section heads: its label, and
// its inode where the label is not it.
func namespaceTitle(n sockets.Namespace) string {
	l := namespaceLabel(n)
	if !strings.HasPrefix(l, "net:[") {
		l += fmt.Sprintf(" (net:[%d])", n.Inode)
	}
	return l
}

// whoAdvice says what frees the port, or what to know about it.
func whoAdvice(use sockets.PortUse, host netconf.Host, port uint16, pubs []publishedJSON) []string {
	var adv []string
	holders := use.Holders()
	switch use.Verdict() {
	case sockets.VerdictFree:
		for _, p := range pubs {
			adv = append(adv, fmt.Sprintf("%s publishes it for container %s through its NAT rules, with no process listening on the host: %s",
				runtimeName(p.Container.Runtime), p.Container.Name, containerStop(p.Container)))
		}
	case sockets.VerdictListening, sockets.VerdictBound:
		if len(holders) == 0 {
			if os.Geteuid() != 0 {
				adv = append(adv, "the holder belongs to another user: to see it, "+seeOtherUsers("portctl who …"))
			} else {
				adv = append(adv, "no process visible here holds the socket: it belongs to another PID namespace (a container) or to the kernel")
			}
			break
		}
		adv = append(adv, stopAdvice(holders, port)...)
		if !slices.ContainsFunc(holders, holdsForContainer) {
			adv = append(adv, fmt.Sprintf("'portctl kill %d' stops the holders", port))
		}
	case sockets.VerdictClient:
		adv = append(adv, "the port is the source port of outgoing connections; it becomes free when they close")
		if host.InEphemeral(port) {
			adv = append(adv, fmt.Sprintf("it lies in the ephemeral range %s, from which the OS picks client ports: choose a server port outside it, or reserve it in net.ipv4.ip_local_reserved_ports", host.Ephemeral))
		}
	case sockets.VerdictTimeWait:
		adv = append(adv, fmt.Sprintf("no process holds it; the kernel keeps closed connections in TIME-WAIT (%d here) for up to %s more",
			len(use.TimeWait), use.LastExpiry().Round(time.Second)),
			"a new listener can bind it now only if it sets SO_REUSEADDR and the closed sockets had it set too (Linux checks both); nginx, Go, Node.js and most servers do, so usually only a plain bind fails")
	}
	if host.IsReserved(port) {
		adv = append(adv, "it is listed in net.ipv4.ip_local_reserved_ports: the OS never picks it as an ephemeral port, but programs may bind it")
	}
	if host.Privileged(port) && os.Geteuid() != 0 {
		adv = append(adv, fmt.Sprintf("binding it needs %s (unprivileged ports start at %d here)", host.PrivilegeHint, host.UnprivilegedStart))
	}
	return dedupe(adv)
}

// holdsForContainer reports whether p is a container engine's process
// holding the port for a container: docker-proxy, or dockerd publishing a
// named container's port. Killing it frees nothing for good.
func holdsForContainer(p *sockets.Process) bool {
	return p.DockerProxy != nil || (p.ContainerInfo != nil && containers.IsEngine(p))
}

// dedupe drops repeated lines, keeping the first of each: two holders (the
// IPv4 and IPv6 docker-proxy of one container) give the same advice.
func dedupe(lines []string) []string {
	seen := make(map[string]bool, len(lines))
	out := lines[:0]
	for _, l := range lines {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// runtimeName spells a container runtime for people.
func runtimeName(rt string) string {
	switch rt {
	case "docker":
		return "Docker"
	case "podman":
		return "Podman"
	}
	return rt
}

// containerStop is the command that frees a container's ports, in the
// runtime's own terms: Compose's when Compose made the container.
func containerStop(c sockets.ContainerInfo) string {
	cli := c.Runtime
	if cli == "" {
		cli = "docker"
	}
	if c.ComposeProject != "" && c.ComposeService != "" {
		return fmt.Sprintf("'%s compose -p %s stop %s' frees the port", cli, c.ComposeProject, c.ComposeService)
	}
	return fmt.Sprintf("'%s stop %s' frees the port", cli, c.Name)
}

// stopAdvice says how to free a port for good given its holders: the
// systemd .socket unit, the Docker container or the service unit.
func stopAdvice(holders []*sockets.Process, port uint16) []string {
	var adv []string
	for _, p := range holders {
		switch {
		case p.PID == 1 && (p.Name == "systemd" || p.Name == "init"):
			units := sockets.SocketUnits(os.DirFS("/"), port)
			if len(units) > 0 {
				adv = append(adv, fmt.Sprintf("systemd holds it for socket activation: 'systemctl stop %s' frees it (and 'systemctl disable %s' for good)", units[0], units[0]))
			} else {
				adv = append(adv, "systemd holds it for socket activation: 'systemctl list-sockets' names the .socket unit to stop")
			}
		case p.DockerProxy != nil && p.ContainerInfo != nil:
			adv = append(adv, fmt.Sprintf("docker-proxy holds it for container %s (%s): %s; killing docker-proxy would only break the container's published port",
				p.ContainerInfo.Name, p.DockerProxy.Container, containerStop(*p.ContainerInfo)))
		case p.DockerProxy != nil:
			adv = append(adv, fmt.Sprintf("docker-proxy forwards it to container address %s: 'docker ps --filter publish=%d' names the container, and 'docker stop <container>' frees the port", p.DockerProxy.Container, port))
		case p.ContainerInfo != nil && containers.IsEngine(p):
			adv = append(adv, fmt.Sprintf("%s holds it for container %s, whose port it publishes: %s; killing %s would stop more than this port",
				p.Name, p.ContainerInfo.Name, containerStop(*p.ContainerInfo), p.Name))
		case p.ContainerInfo != nil:
			adv = append(adv, fmt.Sprintf("it runs in %s container %s: %s", p.ContainerInfo.Runtime, p.ContainerInfo.Name, containerStop(*p.ContainerInfo)))
		case p.Container != "" && (p.Runtime == "docker" || p.Runtime == "podman"):
			id := shortID(p.Container)
			adv = append(adv, fmt.Sprintf("it runs in %s container %s: '%s stop %s' frees the port", p.Runtime, id, p.Runtime, id))
		case p.SocketActivated && p.Unit != "":
			adv = append(adv, fmt.Sprintf("%s was started by socket activation: stop the .socket unit with 'systemctl list-sockets' to find it", p.Unit))
		case strings.HasSuffix(p.Unit, ".service"):
			adv = append(adv, fmt.Sprintf("it runs as systemd unit %s: 'systemctl stop %s' frees it for good (a kill may be undone by Restart=)", p.Unit, p.Unit))
		}
	}
	return dedupe(adv)
}

// bindTest tries to bind the port as a server would (SO_REUSEADDR on, as
// Go, nginx and Node.js set it), on addr or on both wildcard addresses.
func bindTest(ctx context.Context, addr netip.Addr, port uint16, protos sockets.Proto) []bindResult {
	addrs := []netip.Addr{addr}
	if !addr.IsValid() {
		addrs = []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}
	}
	var out []bindResult
	var lc net.ListenConfig
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, port).String()
		if protos&sockets.TCP != 0 {
			r := bindResult{Protocol: "tcp", Address: ap}
			network := "tcp4"
			if a.Is6() {
				network = "tcp6"
			}
			if l, err := lc.Listen(ctx, network, ap); err != nil {
				r.Error = bindError(err)
			} else {
				r.OK = true
				l.Close()
			}
			out = append(out, r)
		}
		if protos&sockets.UDP != 0 {
			r := bindResult{Protocol: "udp", Address: ap}
			network := "udp4"
			if a.Is6() {
				network = "udp6"
			}
			if c, err := lc.ListenPacket(ctx, network, ap); err != nil {
				r.Error = bindError(err)
			} else {
				r.OK = true
				c.Close()
			}
			out = append(out, r)
		}
	}
	return out
}

func bindError(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

func printWho(streams *term.IO, res whoResult, use sockets.PortUse) {
	w, st := streams.Out, streams.Style()
	target := fmt.Sprintf("Port %d", res.Port)
	if res.Address != "" {
		target = netip.AddrPortFrom(netip.MustParseAddr(res.Address), res.Port).String()
	}
	if res.Protocols != "tcp/udp" {
		target += "/" + res.Protocols
	}
	switch res.Verdict {
	case sockets.VerdictListening:
		fmt.Fprintf(w, "%s is %s: a process listens on it.\n", st.Bold(target), st.Red("in use"))
	case sockets.VerdictBound:
		fmt.Fprintf(w, "%s is %s: a socket is bound to it without listening.\n", st.Bold(target), st.Red("in use"))
	case sockets.VerdictClient:
		fmt.Fprintf(w, "%s is %s as the source port of %s.\n", st.Bold(target), st.Yellow("in use"), plural(len(use.Clients)+len(use.Served), "connection"))
	case sockets.VerdictTimeWait:
		fmt.Fprintf(w, "%s is %s: only TIME-WAIT remnants of closed connections; the last expires in %s.\n", st.Bold(target), st.Yellow("held by the kernel"), use.LastExpiry().Round(time.Second))
	case verdictPublished:
		fmt.Fprintf(w, "%s is %s: a container engine publishes it, though no process on the host listens on it.\n", st.Bold(target), st.Red("in use"))
	case sockets.VerdictFree:
		fmt.Fprintf(w, "%s is %s: no socket uses it.\n", st.Bold(target), st.Green("free"))
	}
	if res.Verdict == verdictPublished {
		fmt.Fprintln(w)
		t := term.NewTable().Indent("  ")
		for _, p := range res.Published {
			to := fmt.Sprintf("%d", p.ContainerPort)
			if p.ContainerAddr != "" {
				to = netip.AddrPortFrom(netip.MustParseAddr(p.ContainerAddr), p.ContainerPort).String()
			}
			t.Row("PUBLISHED", netip.AddrPortFrom(netip.MustParseAddr(p.HostAddress), p.HostPort).String(), p.Protocol, "→ "+containerLabel(p.Container)+" "+to)
		}
		t.Render(w, streams.Width(), st)
	}
	if len(use.Listeners)+len(use.Bound) > 0 {
		fmt.Fprintln(w)
		t := term.NewTable().Indent("  ")
		for _, s := range append(append([]sockets.Socket{}, use.Listeners...), use.Bound...) {
			proto := s.Proto.String()
			if s.MPTCP {
				proto += " (MPTCP listener: accepts MPTCP and plain TCP)"
			}
			t.Row(s.State.String(), addrString(s.Local), proto, processCell(s.Processes))
		}
		t.Render(w, streams.Width(), st)
	}
	if len(use.Clients) > 0 {
		fmt.Fprintln(w)
		t := term.NewTable().Indent("  ")
		for i, s := range use.Clients {
			if i == 10 {
				t.Row("…", fmt.Sprintf("%d more", len(use.Clients)-10))
				break
			}
			t.Row(s.State.String(), addrString(s.Local)+" → "+addrString(s.Remote), s.Proto.String(), processCell(s.Processes))
		}
		t.Render(w, streams.Width(), st)
	}
	for _, p := range res.Holders {
		fmt.Fprintln(w)
		printProcess(streams, p)
	}
	if res.Served > 0 {
		fmt.Fprintf(w, "\n  %s accepted on this port are open.\n", plural(res.Served, "connection"))
	}
	for _, b := range res.BindTest {
		if b.OK {
			fmt.Fprintf(w, "\n  bind %s/%s: %s", b.Address, b.Protocol, st.Green("ok"))
		} else {
			fmt.Fprintf(w, "\n  bind %s/%s: %s", b.Address, b.Protocol, st.Red("fails: "+b.Error))
		}
	}
	if len(res.BindTest) > 0 {
		fmt.Fprintln(w)
	}
	printWhoReach(streams, res)
	if len(res.Advice) > 0 {
		fmt.Fprintln(w)
		for _, a := range res.Advice {
			fmt.Fprintf(w, "  %s %s\n", st.Dim("•"), a)
		}
	}
}

// containerLabel names a container for people: "docker container web
// (compose shop/web)".
func containerLabel(c sockets.ContainerInfo) string {
	l := c.Runtime + " container " + c.Name
	if c.ComposeProject != "" {
		l += fmt.Sprintf(" (compose %s/%s)", c.ComposeProject, c.ComposeService)
	}
	return l
}

// printProcess writes a holder's details: PID, name, user, start, command
// line, unit or container.
func printProcess(streams *term.IO, p *sockets.Process) {
	w, st := streams.Out, streams.Style()
	t := term.NewTable().Indent("  ")
	head := fmt.Sprintf("%d %s", p.PID, st.Bold(p.Name))
	t.Row("pid", head)
	who := p.User
	if who == "" {
		who = fmt.Sprint(p.UID)
	}
	t.Row("user", fmt.Sprintf("%s (uid %d)", who, p.UID))
	if !p.Start.IsZero() {
		t.Row("started", fmt.Sprintf("%s (%s ago)", p.Start.Local().Format("2006-01-02 15:04:05"), time.Since(p.Start).Round(time.Second)))
	}
	if len(p.Cmdline) > 0 {
		t.Row("command", strings.Join(p.Cmdline, " "))
	}
	if p.Unit != "" {
		t.Row("unit", p.Unit)
	}
	switch {
	case p.ContainerInfo != nil && !containers.IsEngine(p):
		t.Row("container", containerLabel(*p.ContainerInfo)+" "+shortID(p.ContainerInfo.ID))
		if p.ContainerInfo.Image != "" {
			t.Row("image", p.ContainerInfo.Image)
		}
	case p.Container != "":
		t.Row("container", p.Runtime+" "+p.Container)
	}
	if p.Pod != "" {
		t.Row("pod", p.Pod)
	}
	if p.DockerProxy == nil && p.ContainerInfo != nil && containers.IsEngine(p) {
		t.Row("publishes", containerLabel(*p.ContainerInfo))
	}
	if p.DockerProxy != nil {
		to := "container"
		if p.ContainerInfo != nil {
			to = containerLabel(*p.ContainerInfo)
		}
		t.Row("forwards", fmt.Sprintf("%s %s → %s %s", p.DockerProxy.Proto, p.DockerProxy.Host, to, p.DockerProxy.Container))
		if p.ContainerInfo != nil && p.ContainerInfo.Image != "" {
			t.Row("image", p.ContainerInfo.Image)
		}
	}
	if p.SocketActivated {
		t.Row("activated", "by systemd socket activation (LISTEN_FDS)")
	}
	t.Render(w, streams.Width(), st)
}

// whoReach says from where the port's listeners can be reached, by
// protocol, when the ruleset can be read; else a short note why not.
func whoReach(ctx context.Context, netns string, port uint16, socks []sockets.Socket) ([]audit.PortReach, string) {
	rs, h, err := readRuleset(ctx, netns)
	if err != nil {
		return nil, reachNote(err)
	}
	fw := audit.Reachability(rs, h, socks)
	var out []audit.PortReach
	for _, proto := range []sockets.Proto{sockets.TCP, sockets.UDP} {
		if pr := fw.Port(proto, port); pr != nil {
			out = append(out, *pr)
		}
	}
	return out, ""
}

// printWhoReach writes who may reach the port, one line per protocol:
// "reachable from  the internet (tcp): inet filter input handle 4 (hand)".
func printWhoReach(streams *term.IO, res whoResult) {
	w, st := streams.Out, streams.Style()
	if len(res.Reach) == 0 && res.ReachNote == "" {
		return
	}
	fmt.Fprintln(w)
	if res.ReachNote != "" {
		fmt.Fprintf(w, "  %s %s\n", st.Dim("reachable from"), st.Dim("not known: "+res.ReachNote))
		return
	}
	for _, pr := range res.Reach {
		from := reachWords(st, pr.Summary(), pr.Partial)
		line := fmt.Sprintf("  %s %s (%s)", st.Dim("reachable from"), from, pr.Proto)
		if d := pr.Decided; d != nil {
			why := d.Detail
			if d.Rule != nil && d.Layer == "firewall" {
				why = reach.StepString(*d.Rule)
			}
			line += ": " + d.Layer + ": " + why
		}
		fmt.Fprintln(w, line)
	}
}

// reachWords spells a reach summary for people, coloured by how wide it
// is (the words carry the meaning without colour).
func reachWords(st term.Style, s string, partial bool) string {
	var t string
	switch s {
	case audit.FromInternet:
		t = st.Red("the internet")
	case audit.FromLAN:
		t = st.Yellow("the LAN")
	case audit.FromLoopback:
		t = st.Green("this machine only (loopback)")
	case audit.FromNobody:
		t = st.Green("nowhere")
	default:
		t = st.Yellow("unknown")
	}
	if partial {
		t += " (part of it)"
	}
	return t
}
