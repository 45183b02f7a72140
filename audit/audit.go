package audit

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/portctl/portctl/guard/flood"
	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/port"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// deletedSuffix ends the /proc/PID/exe link of a process whose executable
// was deleted or replaced.
const deletedSuffix = " (deleted)"

// Never is a threshold no finding reaches: a report with findings still
// passes (ParseThreshold accepts "never").
const Never = registry.SevHigh + 1

// Input is what Check audits.
type Input struct {
	// Sockets is the socket table. Check audits the listeners (TCP and
	// MPTCP sockets in Listen, unconnected bound UDP sockets); the other
	// sockets tell which listeners have clients on other hosts. Attribute
	// processes to the listeners for the rules about programs.
	Sockets []sockets.Socket
	// Host holds the kernel's port settings (netconf.Read). The zero Host
	// means they are unknown, and the kernel rules do not run.
	Host netconf.Host
	// OS names the operating system the table and settings come from, as
	// runtime.GOOS does. The rule about ip_unprivileged_port_start runs
	// for "linux" only: elsewhere a start of 0 is the OS's design.
	OS string
	// Remote, when not nil, is what a connect scan of this machine from
	// elsewhere found (portctl audit --remote).
	Remote *Remote
	// Firewall, when not nil, is what the kernel's ruleset lets reach the
	// listeners (Reachability); the rules about the firewall run only
	// with it.
	Firewall *Firewall
	// Flood, when not nil, holds the kernel's TCP counters of the
	// namespace (flood.Read); the rules about overflowed queues and SYN
	// floods run only with it.
	Flood *flood.Counters
}

// Remote is the result of a TCP connect scan of this machine's listening
// ports at one of its addresses, made from another vantage point: it tells
// a listener on 0.0.0.0 from one that is actually reachable where a
// firewall sits between. RemotePorts says which ports to scan.
type Remote struct {
	Host string     `json:"host"` // the host as given: a name or an address
	Addr netip.Addr `json:"addr"` // the address scanned
	// Ports holds what the scan found for each TCP port it tried.
	Ports map[uint16]Reach `json:"ports"`
}

// ReachState is what a connect scan found about one port.
type ReachState uint8

// The reach states.
const (
	Reachable ReachState = iota + 1 // the connection was accepted
	Closed                          // refused: a reset from the host or a firewall
	Filtered                        // no answer, or an ICMP error: a firewall drops it
)

// String returns "reachable", "closed" or "filtered".
func (s ReachState) String() string {
	switch s {
	case Reachable:
		return "reachable"
	case Closed:
		return "closed"
	case Filtered:
		return "filtered"
	}
	return "unknown"
}

// MarshalText encodes the state as its String form.
func (s ReachState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reach is what a connect scan found about one port.
type Reach struct {
	State  ReachState `json:"state"`
	Reason string     `json:"reason,omitempty"` // the scanner's evidence: "syn-ack", "conn-refused", "no-response"
}

// Finding is one thing the audit found.
type Finding struct {
	Rule     string            `json:"rule"`
	Severity registry.Severity `json:"severity"`
	Title    string            `json:"title"`
	Why      string            `json:"why"`
	Fix      string            `json:"fix"`
	// Key identifies the finding across runs: the rule with the
	// listener's protocol, port and program, or with the setting. SARIF
	// fingerprints are made from it.
	Key string `json:"key"`
	// Service names what the listener was identified as: "Redis",
	// "Telnet", a de facto use or an IANA service name.
	Service string `json:"service,omitempty"`
	// Socket is the listener (the most exposed of its sockets); nil for a
	// kernel setting. Findings share it: do not modify it.
	Socket *sockets.Socket `json:"socket,omitempty"`
	// Addresses are all the listener's local addresses when it has
	// several sockets (0.0.0.0:6379 and [::]:6379).
	Addresses []netip.AddrPort `json:"addresses,omitempty"`
	// Process is the listener's first holder; nil when none was found.
	Process *sockets.Process `json:"process,omitempty"`
	// Setting and Value name the kernel setting of a kernel finding:
	// "net.ipv4.tcp_syncookies", "0".
	Setting string `json:"setting,omitempty"`
	Value   string `json:"value,omitempty"`
	// Protocol and Port name the port of a finding about the firewall
	// alone, which no socket listens on ("tcp", 445); Setting then names
	// it too ("firewall tcp/445").
	Protocol string `json:"protocol,omitempty"`
	Port     uint16 `json:"port,omitempty"`
	// Reach is what the remote scan found for the listener's port.
	Reach *Reach `json:"reach,omitempty"`
	// Firewall is what the firewall does to the source class the finding
	// is about: the verdict and the deciding rule.
	Firewall *Admission `json:"firewall,omitempty"`
}

// Excepted is a finding that an exception of the policy removed.
type Excepted struct {
	Finding
	Line   int    `json:"exception_line,omitempty"` // the exception's line in the policy file
	Reason string `json:"exception_reason,omitempty"`
}

// Listener is one audited listener: the sockets of one program on one
// protocol and port (0.0.0.0:6379 and [::]:6379 are one listener).
type Listener struct {
	Socket    *sockets.Socket  `json:"socket"` // the most exposed of its sockets
	Addresses []netip.AddrPort `json:"addresses"`
	Process   *sockets.Process `json:"process,omitempty"`
	Service   string           `json:"service,omitempty"`
	// Exposure is "loopback", "private" (private or link-local addresses
	// only), "public" (a public address) or "all" (0.0.0.0 or [::]).
	Exposure string `json:"exposure"`
	// Peers counts connections to it from other hosts in the table.
	Peers int `json:"peers"`
	// Reach is what the remote scan found for its port; nil when it was
	// not scanned.
	Reach *Reach `json:"reach,omitempty"`
	// ReachableFrom says who the firewall lets reach it (PortReach's
	// Summary), and Firewall how, per source class; empty without
	// Input.Firewall.
	ReachableFrom string     `json:"reachable_from,omitempty"`
	Firewall      *PortReach `json:"firewall,omitempty"`
}

// Report is the result of Check.
type Report struct {
	// Findings are sorted most severe first, then by rule, protocol, port
	// and address: the same input gives the same order.
	Findings []Finding `json:"findings"`
	// Excepted are the findings the policy's exceptions removed.
	Excepted []Excepted `json:"excepted"`
	// Listeners are the listeners audited, by protocol and port.
	Listeners []Listener `json:"listeners"`
	// Remote is the remote scan the report used, if any.
	Remote *Remote `json:"remote,omitempty"`
	// PolicyFile is the policy's File, for SARIF locations.
	PolicyFile string `json:"policy_file,omitempty"`
}

// Counts returns the number of findings of each severity.
func (r Report) Counts() map[registry.Severity]int {
	m := map[registry.Severity]int{}
	for _, f := range r.Findings {
		m[f.Severity]++
	}
	return m
}

// AtLeast returns how many findings have the threshold's severity or a
// higher one: with a threshold, the number of violations.
func (r Report) AtLeast(threshold registry.Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity >= threshold {
			n++
		}
	}
	return n
}

// ParseThreshold parses a fail threshold: "info", "low", "medium", "high",
// or "never" (Never).
func ParseThreshold(s string) (registry.Severity, error) {
	if s == "never" {
		return Never, nil
	}
	var sev registry.Severity
	if err := sev.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("unknown severity %q (want info, low, medium, high or never)", s)
	}
	return sev, nil
}

// ThresholdName returns the name ParseThreshold reads back.
func ThresholdName(sev registry.Severity) string {
	if sev == Never {
		return "never"
	}
	return sev.String()
}

// exposure is how far a listener reaches, from least to most.
type exposure uint8

const (
	exLoopback exposure = iota + 1
	exPrivate
	exPublic
	exAll
)

func (e exposure) String() string {
	return [...]string{exLoopback: "loopback", exPrivate: "private", exPublic: "public", exAll: "all"}[e]
}

// phrase says where a listener of exposure e listens, for titles.
func (e exposure) phrase() string {
	return [...]string{exLoopback: "on loopback only", exPrivate: "on a private network address", exPublic: "on a public address", exAll: "on all interfaces"}[e]
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// exposureOf classifies one local address.
func exposureOf(a netip.Addr) exposure {
	a = a.Unmap()
	switch {
	case a.IsUnspecified():
		return exAll
	case a.IsLoopback():
		return exLoopback
	case a.IsPrivate() || a.IsLinkLocalUnicast() || cgnat.Contains(a):
		return exPrivate
	}
	return exPublic
}

// listener is a Listener with what the rules need.
type listener struct {
	proto    sockets.Proto // TCP (for MPTCP too) or UDP: baseProto
	port     uint16
	socks    []*sockets.Socket // most exposed first
	procs    []*sockets.Process
	names    []string // the first holder's program names
	exposure exposure
	peers    int
	svc      *service
	service  string // a name for its service, "" when none is known
	reach    *Reach
}

// baseProto returns the protocol a listener of a socket of protocol p is
// audited as: UDP, or TCP for TCP and MPTCP.
func baseProto(p sockets.Proto) sockets.Proto {
	if p == sockets.UDP {
		return sockets.UDP
	}
	return sockets.TCP
}

// rproto returns l's protocol as the registry names it.
func (l *listener) rproto() registry.Protocol {
	if l.proto == sockets.UDP {
		return registry.UDP
	}
	return registry.TCP
}

func (l *listener) proc() *sockets.Process {
	if len(l.procs) == 0 {
		return nil
	}
	return l.procs[0]
}

// label names the listener in titles: its service, else its program,
// else its protocol and port.
func (l *listener) label() string {
	switch {
	case l.svc != nil && l.svc.kind != kindPublic:
		return l.svc.name
	case l.proc() != nil:
		return l.proc().Name
	case l.service != "":
		return fmt.Sprintf("%s/%d (%s)", l.proto, l.port, l.service)
	}
	return fmt.Sprintf("%s/%d", l.proto, l.port)
}

// where prints the listener's address for texts: "tcp 0.0.0.0:6379".
func (l *listener) where() string { return fmt.Sprintf("%s %s", l.proto, l.socks[0].Local) }

// key identifies the listener across runs: "tcp/6379/redis-server".
func (l *listener) key() string {
	name := "-"
	if p := l.proc(); p != nil {
		name = p.Name
	}
	return fmt.Sprintf("%s/%d/%s", l.proto, l.port, name)
}

func (l *listener) addresses() []netip.AddrPort {
	if len(l.socks) < 2 {
		return nil
	}
	out := make([]netip.AddrPort, len(l.socks))
	for i, s := range l.socks {
		out[i] = s.Local
	}
	return out
}

// finding starts a finding about l.
func (l *listener) finding(rule string, sev registry.Severity, title, why, fix string) Finding {
	return Finding{
		Rule: rule, Severity: sev, Title: title, Why: why, Fix: fix,
		Key: rule + ":" + l.key(), Service: l.service,
		Socket: l.socks[0], Addresses: l.addresses(), Process: l.proc(), Reach: l.reach,
	}
}

// isListener reports whether s is a listening socket.
func isListener(s *sockets.Socket) bool {
	// An unconnected UDP socket bound to no port yet listens for nothing.
	return s.Listening() && s.Remote.Port() == 0 && s.Local.Port() != 0
}

// listeners groups the table's listeners by protocol, port and program,
// and counts the connections from other hosts to each port.
func listeners(socks []sockets.Socket) []*listener {
	type key struct {
		proto sockets.Proto
		port  uint16
		name  string
	}
	peers := map[uint16]int{}
	groups := map[key]*listener{}
	for i := range socks {
		s := &socks[i]
		if !isListener(s) {
			if (s.Proto == sockets.TCP || s.Proto == sockets.MPTCP) &&
				s.Remote.Port() != 0 && !s.Remote.Addr().Unmap().IsLoopback() && !s.Remote.Addr().IsUnspecified() {
				peers[s.Local.Port()]++
			}
			continue
		}
		k := key{proto: baseProto(s.Proto), port: s.Local.Port()}
		if len(s.Processes) > 0 {
			k.name = s.Processes[0].Name
		}
		l := groups[k]
		if l == nil {
			l = &listener{proto: k.proto, port: k.port}
			groups[k] = l
		}
		c := *s
		l.socks = append(l.socks, &c)
		for _, p := range s.Processes {
			if !slices.ContainsFunc(l.procs, func(q *sockets.Process) bool { return q.PID == p.PID }) {
				l.procs = append(l.procs, p)
			}
		}
	}
	out := make([]*listener, 0, len(groups))
	for _, l := range groups {
		slices.SortFunc(l.socks, func(a, b *sockets.Socket) int {
			return cmp.Or(
				cmp.Compare(exposureOf(b.Local.Addr()), exposureOf(a.Local.Addr())),
				cmp.Compare(a.Family(), b.Family()),
				a.Local.Compare(b.Local))
		})
		slices.SortFunc(l.procs, func(a, b *sockets.Process) int { return cmp.Compare(a.PID, b.PID) })
		l.exposure = exposureOf(l.socks[0].Local.Addr())
		if l.proto == sockets.TCP {
			l.peers = peers[l.port]
		}
		l.names = programNames(l.proc())
		l.svc = identify(l.rproto(), l.port, l.names)
		l.service = serviceName(l)
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *listener) int {
		return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(a.port, b.port),
			a.socks[0].Local.Compare(b.socks[0].Local), strings.Compare(a.key(), b.key()))
	})
	return out
}

// serviceName names a listener's service: the catalog's name, else the
// first de facto use of its port, else its IANA service name.
func serviceName(l *listener) string {
	if l.svc != nil && l.svc.kind != kindPublic {
		return l.svc.name
	}
	for _, u := range registry.Uses(l.port, l.rproto()) {
		if int(u.Last)-int(u.Port) <= 100 { // not a range such as "Linux default ephemeral port range"
			return u.Text
		}
	}
	if name := port.ServiceName(registry.Builtin(), l.port, l.proto); name != "" {
		return name
	}
	if l.svc != nil {
		return l.svc.name
	}
	return ""
}

// RemotePorts returns the TCP ports a connect scan of this machine at addr
// should try for Input.Remote: those of listeners beyond loopback that
// accept addr's address family, in ascending order.
func RemotePorts(socks []sockets.Socket, addr netip.Addr) []uint16 {
	var ports []uint16
	for _, l := range listeners(socks) {
		if l.scannedAt(addr) && !slices.Contains(ports, l.port) {
			ports = append(ports, l.port)
		}
	}
	slices.Sort(ports)
	return ports
}

// scannedAt reports whether a remote scan of this machine at addr tries
// l: a TCP listener beyond loopback that accepts addr's family.
func (l *listener) scannedAt(addr netip.Addr) bool {
	return l.proto == sockets.TCP && l.exposure != exLoopback && acceptsFamily(l, addr)
}

// acceptsFamily reports whether a socket of l could accept a connection
// to addr: an IPv4 address reaches IPv4 sockets and dual-stack [::]; an
// IPv6 address reaches IPv6 sockets.
func acceptsFamily(l *listener, addr netip.Addr) bool {
	v4 := addr.Unmap().Is4()
	for _, s := range l.socks {
		a := s.Local.Addr()
		switch {
		case a.Is4() || a.Is4In6():
			if v4 {
				return true
			}
		case v4 && a.IsUnspecified() && !s.V6Only:
			return true
		case !v4:
			return true
		}
	}
	return false
}

// Check audits in against the policy p (nil for none) and returns the
// report. It does no I/O: what it knows comes from in.
func Check(in Input, p *Policy) Report {
	ls := listeners(in.Sockets)
	rep := Report{Findings: []Finding{}, Excepted: []Excepted{}, Listeners: make([]Listener, 0, len(ls)), Remote: in.Remote}
	if p != nil {
		rep.PolicyFile = p.File
	}
	// Host settings read from the machine, or only the OS's defaults.
	known := in.Host.Ephemeral.Last != 0
	ephemeral, unprivStart := registry.Dynamic.Range(), 1024
	if known {
		ephemeral = in.Host.Ephemeral
		if in.OS == "linux" {
			unprivStart = in.Host.UnprivilegedStart
		}
	}
	var all []Finding
	seenExe := map[int]bool{}
	for _, l := range ls {
		if in.Remote != nil && l.scannedAt(in.Remote.Addr) {
			if r, ok := in.Remote.Ports[l.port]; ok {
				l.reach = &r
			}
		}
		addrs := l.addresses()
		if addrs == nil {
			addrs = []netip.AddrPort{l.socks[0].Local}
		}
		pr := in.Firewall.Port(l.proto, l.port)
		li := Listener{
			Socket: l.socks[0], Addresses: addrs, Process: l.proc(), Service: l.service,
			Exposure: l.exposure.String(), Peers: l.peers, Reach: l.reach, Firewall: pr,
		}
		if pr != nil {
			li.ReachableFrom = pr.Summary()
		}
		rep.Listeners = append(rep.Listeners, li)
		// An unconnected UDP socket on a port the OS picked is a client's.
		client := l.proto == sockets.UDP && (l.svc == nil || l.svc.kind == kindPublic) && ephemeral.Contains(l.port)
		var fs []Finding
		add := func(f Finding, ok bool) {
			if ok {
				fs = append(fs, f)
			}
		}
		add(serviceRule(l))
		add(queueFullRule(l))
		if !client {
			add(allInterfacesRule(l))
			add(unknownRule(l))
			add(rootRule(l, unprivStart))
		}
		if p != nil && p.Allow != nil {
			add(notAllowedRule(l, p.Allow))
		}
		if pr := l.proc(); pr != nil && !seenExe[pr.PID] && strings.HasSuffix(pr.Exe, deletedSuffix) {
			seenExe[pr.PID] = true
			fs = append(fs, deletedRule(l, pr))
		}
		for i := range fs {
			applyFirewall(&fs[i], pr)
		}
		if !client {
			fs = append(fs, firewallRules(l, pr, p)...)
		}
		for i := range fs {
			p.override(&fs[i])
			applyReach(&fs[i], l, in.Remote)
		}
		all = append(all, fs...)
	}
	for _, pr := range in.Firewall.opened() {
		f := netbiosOpenedRule(pr)
		p.override(&f)
		all = append(all, f)
	}
	if known {
		for _, f := range kernelRules(in.Host, in.OS) {
			p.override(&f)
			all = append(all, f)
		}
	}
	if in.Flood != nil {
		for _, f := range floodRules(*in.Flood) {
			p.override(&f)
			all = append(all, f)
		}
	}

	for _, f := range all {
		if e := p.exception(f); e != nil {
			rep.Excepted = append(rep.Excepted, Excepted{Finding: f, Line: e.Line, Reason: e.Reason})
			continue
		}
		rep.Findings = append(rep.Findings, f)
	}
	slices.SortFunc(rep.Findings, compareFindings)
	slices.SortFunc(rep.Excepted, func(a, b Excepted) int { return compareFindings(a.Finding, b.Finding) })
	return rep
}

func compareFindings(a, b Finding) int {
	c := cmp.Or(cmp.Compare(b.Severity, a.Severity), cmp.Compare(ruleIndex(a.Rule), ruleIndex(b.Rule)))
	if c != 0 {
		return c
	}
	switch {
	case a.Socket == nil && b.Socket == nil:
	case a.Socket == nil:
		return 1
	case b.Socket == nil:
		return -1
	default:
		c = cmp.Or(cmp.Compare(a.Socket.Proto, b.Socket.Proto), cmp.Compare(a.Socket.Local.Port(), b.Socket.Local.Port()),
			a.Socket.Local.Compare(b.Socket.Local))
	}
	return cmp.Or(c, strings.Compare(a.Setting, b.Setting), strings.Compare(a.Key, b.Key))
}

// exposureRules are the rules about who can reach a listener: a remote
// scan that could not reach it lowers them.
var exposureRules = []string{RuleNetworkDatabase, RuleRiskyService, RuleExposedDebugger, RuleAllInterfaces}

// applyReach tells in f what the remote scan found, and lowers an
// exposure finding to low when the port could not be reached.
func applyReach(f *Finding, l *listener, rem *Remote) {
	if l.reach == nil || !slices.Contains(exposureRules, f.Rule) {
		return
	}
	target := netip.AddrPortFrom(rem.Addr, l.port).String()
	if rem.Host != "" && rem.Host != rem.Addr.String() {
		target = rem.Host + " (" + target + ")"
	}
	if l.reach.State == Reachable {
		f.Why += fmt.Sprintf(" A connect scan of %s from the audit's vantage point got through: it is reachable.", target)
		return
	}
	f.Title += fmt.Sprintf(" (not reachable at %s: %s)", cmp.Or(rem.Host, rem.Addr.String()), l.reach.State)
	f.Why += fmt.Sprintf(" A connect scan of %s found it %s (%s): a firewall, or the address, keeps it from that vantage point, so the finding is lowered to low. Anything on the near side of that firewall still reaches it, and one rule change exposes it.", target, l.reach.State, cmp.Or(l.reach.Reason, "no reason given"))
	f.Severity = min(f.Severity, registry.SevLow)
}

// lower returns the severity one level below sev, info at least.
func lower(sev registry.Severity) registry.Severity { return max(sev-1, registry.SevInfo) }

// kindRule is the rule of each kind of service but the public ones.
var kindRule = [...]string{kindData: RuleNetworkDatabase, kindRisky: RuleRiskyService, kindDebug: RuleExposedDebugger}

// serviceRule reports a database, risky service or debugger that listens
// where it should not.
func serviceRule(l *listener) (Finding, bool) {
	s := l.svc
	if s == nil || s.kind == kindPublic {
		return Finding{}, false
	}
	rule := kindRule[s.kind]
	sev := s.sev
	switch l.exposure {
	case exLoopback:
		if s.local == 0 {
			return Finding{}, false
		}
		sev = s.local
	case exPrivate:
		sev = lower(sev)
	}
	title := fmt.Sprintf("%s listens %s", s.name, l.exposure.phrase())
	why := s.why
	switch {
	case l.exposure == exLoopback:
		why += " It listens on loopback only, which keeps other hosts out but not local users and programs."
	case l.peers > 0:
		why += fmt.Sprintf(" %s from other hosts are open now, so it does serve the network: keep it to those hosts.", plural(l.peers, "connection"))
	case l.exposure == exAll && s.kind != kindRisky:
		why += " No connection from another host is open now: loopback may well do."
	}
	return l.finding(rule, sev, title, why, s.fix), true
}

// devFix is the advice for a development server on all interfaces.
const devFix = "Start it bound to localhost (most dev servers do so unless given --host, --bind or 0.0.0.0). "

// allInterfacesRule reports a listener on 0.0.0.0 or [::] that nobody on
// another host uses, for a service that is not meant to face the network.
func allInterfacesRule(l *listener) (Finding, bool) {
	if l.exposure != exAll || l.peers > 0 || l.svc != nil {
		return Finding{}, false
	}
	why := "It accepts connections on every address of this machine, yet no connection from another host is open now. If only local programs use it, loopback is enough, and every other interface is attack surface."
	fix := ruleHelp(RuleAllInterfaces)
	for _, u := range registry.Uses(l.port, l.rproto()) {
		if u.Category == registry.CatDev {
			fix = devFix + fix
			break
		}
	}
	if p := l.proc(); p != nil && p.DockerProxy != nil {
		fix = fmt.Sprintf("Docker publishes it on all interfaces: publish it as 127.0.0.1:%d:%d (docker run -p, or ports: in compose) when only this host uses it.", l.port, p.DockerProxy.Container.Port())
	}
	title := fmt.Sprintf("%s listens on all interfaces; loopback would do", l.label())
	return l.finding(RuleAllInterfaces, registry.SevLow, title, why, fix), true
}

// unknownRule reports a listener with neither a known program nor a known
// service.
func unknownRule(l *listener) (Finding, bool) {
	if len(l.procs) > 0 || l.svc != nil || l.service != "" {
		return Finding{}, false
	}
	sev := registry.SevLow
	if l.exposure == exLoopback {
		sev = registry.SevInfo
	}
	why := "No process holding it was found, and no registry names its port."
	if l.socks[0].Inode == 0 {
		why += " It has no inode, so the kernel itself holds it (NFS, WireGuard or another kernel module)."
	} else {
		why += " Without root, the processes of other users cannot be seen."
	}
	why += " A listener nobody can account for may be a forgotten service, or a backdoor."
	title := fmt.Sprintf("Unknown listener on %s", l.where())
	return l.finding(RuleUnknownListener, sev, title, why, ruleHelp(RuleUnknownListener)), true
}

// needRoot are programs that need root for more than binding their port.
var needRoot = []string{"sshd", "systemd", "init", "docker-proxy", "dockerd", "containerd", "kubelet", "kube-proxy",
	"tailscaled", "openvpn", "NetworkManager", "wpa_supplicant", "libvirtd", "xrdp", "dhclient", "dhcpcd", "charon", "cupsd"}

// rootRule reports a root process on a port that needs no privilege: one
// from unprivStart up.
func rootRule(l *listener, unprivStart int) (Finding, bool) {
	if int(l.port) < unprivStart {
		return Finding{}, false
	}
	p := l.proc()
	var uid uint32
	switch {
	case p != nil:
		uid = p.UID
		if p.PID == 1 || p.SocketActivated || p.DockerProxy != nil {
			return Finding{}, false
		}
		for _, n := range l.names {
			if slices.Contains(needRoot, n) {
				return Finding{}, false
			}
		}
	case l.socks[0].Inode == 0:
		return Finding{}, false // the kernel's
	default:
		uid = l.socks[0].UID
	}
	if uid != 0 {
		return Finding{}, false
	}
	sev := registry.SevLow
	if l.exposure == exLoopback {
		sev = registry.SevInfo
	}
	title := fmt.Sprintf("A socket of root's listens on unprivileged port %d", l.port)
	if p != nil {
		title = fmt.Sprintf("%s runs as root on unprivileged port %d", p.Name, l.port)
	}
	why := fmt.Sprintf("Ports from %d up need no privilege to bind, so root is not needed for this listener; a flaw in the service would hand over the whole machine instead of one account.", unprivStart)
	return l.finding(RuleRootUnprivileged, sev, title, why, ruleHelp(RuleRootUnprivileged)), true
}

// deletedRule reports a process whose executable is gone.
func deletedRule(l *listener, p *sockets.Process) Finding {
	exe := strings.TrimSuffix(p.Exe, deletedSuffix)
	title := fmt.Sprintf("%s (PID %d) runs a deleted or replaced executable", p.Name, p.PID)
	why := fmt.Sprintf("%s was deleted or replaced after the process started: it still runs the old program, without the fixes of the upgrade that replaced it, or it is a program that removed itself to hide.", exe)
	f := l.finding(RuleDeletedExecutable, registry.SevMedium, title, why, ruleHelp(RuleDeletedExecutable))
	f.Key = RuleDeletedExecutable + ":" + p.Name + ":" + exe
	return f
}

// notAllowedRule reports a listener that no allow entry matches.
func notAllowedRule(l *listener, allow []Allow) (Finding, bool) {
	for _, s := range l.socks {
		if !slices.ContainsFunc(allow, func(a Allow) bool { return a.Match.matches(l, s) }) {
			title := fmt.Sprintf("%s on %s %s is not allowed by the policy", l.label(), l.proto, s.Local)
			why := "The policy lists the listeners this machine may have, and none of its allow entries matches this one (by port, protocol, process, user and address)."
			f := l.finding(RuleNotAllowed, registry.SevHigh, title, why, ruleHelp(RuleNotAllowed))
			f.Socket = s
			return f, true
		}
	}
	return Finding{}, false
}

// kernelRules checks the host's port settings.
func kernelRules(h netconf.Host, goos string) []Finding {
	var out []Finding
	kf := kernelFinding
	if h.TCPSyncookies == 0 {
		out = append(out, kf(RuleSyncookiesOff, registry.SevMedium, "net.ipv4.tcp_syncookies", "0", "TCP SYN cookies are off",
			"Without SYN cookies, a flood of SYN packets from forged addresses fills the listen queues and every TCP service stops accepting connections; with them (1, the default) the kernel answers without keeping state once a queue overflows."))
	}
	usable := h.EphemeralUsable()
	if usable < 16384 {
		sev := registry.SevLow
		if usable < 4096 {
			sev = registry.SevMedium
		}
		setting := "net.ipv4.ip_local_port_range"
		if goos != "linux" && goos != "" {
			setting = "ephemeral port range"
		}
		out = append(out, kf(RuleNarrowEphemeral, sev, setting, h.Ephemeral.String(),
			fmt.Sprintf("The ephemeral port range %s is narrow: %s usable", h.Ephemeral, plural(usable, "port")),
			fmt.Sprintf("Each connection to one destination address and port needs its own source port from this range, so a busy client, proxy or load balancer can open at most %d at a time to each backend, TIME-WAIT included, and then fails with EADDRNOTAVAIL.", usable)))
	}
	if goos == "linux" && h.UnprivilegedStart < 1024 {
		out = append(out, kf(RuleUnprivilegedPortFrom, registry.SevLow, "net.ipv4.ip_unprivileged_port_start", strconv.Itoa(h.UnprivilegedStart),
			fmt.Sprintf("Unprivileged users may bind ports from %d up", h.UnprivilegedStart),
			fmt.Sprintf("ip_unprivileged_port_start is %d, so any local user may bind ports from %d to 1023, which clients trust to be the system's: when sshd or the web server is down or restarting, a user's program can take its port and collect logins. Inside a container this is the runtime's default and matters less.", h.UnprivilegedStart, h.UnprivilegedStart)))
	}
	return out
}

// kernelFinding starts a finding about a kernel setting or counter.
func kernelFinding(rule string, sev registry.Severity, setting, value, title, why string) Finding {
	return Finding{Rule: rule, Severity: sev, Title: title, Why: why, Fix: ruleHelp(rule),
		Key: rule + ":" + setting, Setting: setting, Value: value}
}

// queueFullRule reports a TCP listener whose accept queue is full.
func queueFullRule(l *listener) (Finding, bool) {
	for _, s := range l.socks {
		q := flood.Listener{Queue: s.RecvQ, Backlog: s.SendQ}
		if s.State != sockets.Listen || !q.Full() {
			continue
		}
		title := fmt.Sprintf("The accept queue of %s on %s %s is full (%d of %d)", l.label(), l.proto, s.Local, s.RecvQ, s.SendQ)
		why := fmt.Sprintf("%d connections wait for the program to accept them, as many as its backlog of %d allows: it accepts too slowly, is hung, or is flooded with connections, and the kernel turns the next clients away (ListenOverflows).", s.RecvQ, s.SendQ)
		f := l.finding(RuleAcceptQueueFull, registry.SevMedium, title, why, ruleHelp(RuleAcceptQueueFull))
		f.Socket = s
		return f, true
	}
	return Finding{}, false
}

// floodRules checks the kernel's counters of overflowed queues.
func floodRules(c flood.Counters) []Finding {
	var out []Finding
	if c.ListenOverflows > 0 {
		out = append(out, kernelFinding(RuleListenOverflows, registry.SevLow, "TcpExt ListenOverflows", strconv.FormatUint(c.ListenOverflows, 10),
			fmt.Sprintf("Full accept queues have turned away %s", plural(int(min(c.ListenOverflows, 1<<31)), "connection")),
			fmt.Sprintf("The kernel counted %d connections dropped because a listener's accept queue was full (ListenOverflows), out of %d it took in: a program accepts too slowly for its load, or its listen backlog is too small.", c.ListenOverflows, c.PassiveOpens)))
	}
	if c.SyncookiesSent > 0 {
		out = append(out, kernelFinding(RuleSyncookiesSent, registry.SevLow, "TcpExt SyncookiesSent", strconv.FormatUint(c.SyncookiesSent, 10),
			fmt.Sprintf("The SYN queue has overflowed: %s sent", plural(int(min(c.SyncookiesSent, 1<<31)), "SYN cookie")),
			fmt.Sprintf("The kernel answered %d SYNs with SYN cookies because a SYN queue was full (%d came back valid): a SYN flood, or a backlog too small for the load.", c.SyncookiesSent, c.SyncookiesRecv)))
	}
	return out
}

// plural returns "1 connection" or "3 connections".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
