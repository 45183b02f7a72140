package audit

import (
	"fmt"
	"slices"

	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/reach"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// Firewall is what the packet filter (and the NAT before it) does to new
// connections from each class of sources to each listening port: the
// layer between a listening socket and the clients that Input.Sockets
// alone cannot show. Reachability computes it from the kernel's ruleset;
// Check only reads it.
type Firewall struct {
	Ports []PortReach `json:"ports"`
	// Opened are the NetBIOS and SMB ports (137-139, 445) that no socket
	// listens on but that the firewall lets in from the internet
	// (OpenedNetBIOS): whatever starts listening there is exposed.
	Opened []PortReach `json:"opened,omitempty"`
}

// opened returns f's Opened; f may be nil.
func (f *Firewall) opened() []PortReach {
	if f == nil {
		return nil
	}
	return f.Opened
}

// PortReach is what reaches one listening port (one protocol).
type PortReach struct {
	Proto    sockets.Proto `json:"-"`
	Protocol string        `json:"protocol"` // Proto's name: "tcp", "udp"
	Port     uint16        `json:"port"`
	// From holds one admission per source class, internet first.
	From []Admission `json:"from"`
	// Exposure is the widest class that reaches it (reach.Summarize), and
	// Partial says it reaches it from part of that class only.
	Exposure reach.Exposure `json:"reachable_from"`
	Partial  bool           `json:"partial,omitempty"`
	// Decided is the layer that settles the exposure: for the internet the
	// rule that lets it in, else what stops the next wider class.
	Decided *reach.Layer `json:"decided_by,omitempty"`
}

// Admission is what happens to a new connection (a first datagram) from
// one class of sources to a listening port.
type Admission struct {
	From firewall.Class `json:"class"`
	// Verdict is accept when a client of the class gets to the socket
	// (some of the class's addresses at least), drop or reject when none
	// does, unknown when that depends on something the ruleset alone does
	// not settle (DependsOn).
	Verdict firewall.Verdict `json:"verdict"`
	// Layer is what decided: "socket" (the bind address keeps the class
	// out whatever the firewall says), "route" (no address of the
	// listener's family to reach it by), or "firewall".
	Layer string `json:"layer"`
	// Rule is the rule (or policy) that decided, for the firewall layer;
	// DecidedBy names it for people ("inet filter input handle 7 (ufw:
	// allow 445/tcp)").
	Rule      *firewall.Step `json:"rule,omitempty"`
	DecidedBy string         `json:"decided_by,omitempty"`
	// RulesMet names every rule that matched on the way, and the policies
	// applied, in the order the kernel meets them.
	RulesMet []string `json:"rules_met,omitempty"`
	// NAT is the destination rewrite on the way (Docker's DNAT).
	NAT *firewall.NAT `json:"nat,omitempty"`
	// Path is "input" or "forward" (to a container, after a DNAT).
	Path      string   `json:"path,omitempty"`
	DependsOn []string `json:"depends_on,omitempty"`
	// Partial is set when only part of the class's addresses get through
	// (ufw allow from 10.0.0.0/8 for the LAN).
	Partial bool `json:"partial,omitempty"`
	// Bypasses is the ufw or firewalld rule (or policy) that would drop
	// the packet on its way to this host, but which it never meets
	// because a container engine's DNAT sends it through forward instead.
	Bypasses *firewall.Step `json:"bypasses,omitempty"`
}

// The answers of Summary, from widest to narrowest: reach's exposures.
const (
	FromInternet = string(reach.FromInternet)
	FromLAN      = string(reach.FromLAN)
	FromLoopback = string(reach.LoopbackOnly)
	FromNobody   = string(reach.Nobody)
	FromUnknown  = string(reach.NotKnown)
)

// Summary says who may reach the port, in one word, as reach.Summarize
// says it: "internet", "lan", "loopback" (this machine only), "nobody",
// or "unknown" when the widest class the ruleset might let in is not
// settled.
func (p *PortReach) Summary() string {
	if p == nil || p.Exposure == "" {
		return FromUnknown
	}
	return string(p.Exposure)
}

// admission returns the admission of class c, or nil.
func (p *PortReach) admission(c firewall.Class) *Admission {
	if p == nil {
		return nil
	}
	for i := range p.From {
		if p.From[i].From == c {
			return &p.From[i]
		}
	}
	return nil
}

// Port returns the PortReach of proto (MPTCP is TCP) and port, or nil;
// f may be nil.
func (f *Firewall) Port(proto sockets.Proto, port uint16) *PortReach {
	if f == nil {
		return nil
	}
	proto = baseProto(proto)
	for i := range f.Ports {
		if f.Ports[i].Proto == proto && f.Ports[i].Port == port {
			return &f.Ports[i]
		}
	}
	return nil
}

// stepName names a rule for people, as reach does: "inet filter input
// handle 7 (ufw: allow 445/tcp)".
func stepName(s *firewall.Step) string {
	if s == nil {
		return "no rule"
	}
	return reach.StepString(*s)
}

// ownerName is the name of who wrote the step's rule, "hand" when none
// is known.
func ownerName(s *firewall.Step) string {
	if s == nil || s.Owner.Name == "" {
		return "hand"
	}
	return s.Owner.Name
}

// netbios are the NetBIOS and SMB ports: what Windows file sharing
// listens on, and what must not be let in from outside.
var netbios = []registry.Range{r(137, 139), p1(445)}

func isNetBIOS(port uint16) bool {
	return slices.ContainsFunc(netbios, func(rg registry.Range) bool { return rg.Contains(port) })
}

// firewallRules are the rules over the firewall's verdicts for l.
func firewallRules(l *listener, pr *PortReach, pol *Policy) []Finding {
	if pr == nil || l.exposure == exLoopback {
		return nil
	}
	var out []Finding
	in := pr.admission(firewall.Internet)
	if in != nil && in.Verdict == firewall.Accept {
		switch {
		case isNetBIOS(l.port):
			out = append(out, netbiosRule(l, in))
		case in.Bypasses != nil: // says more than internet-exposed would
			out = append(out, bypassRule(l, in))
		case l.svc == nil || l.svc.kind != kindPublic:
			out = append(out, internetRule(l, in))
		}
	}
	if pol != nil && pol.Reach != nil {
		out = append(out, reachPolicyRule(l, pr, pol.Reach)...)
	}
	return out
}

// decided says which rule let the class in, for the whys.
func decided(a *Admission) string {
	s := fmt.Sprintf("The firewall lets it in from the %s: the deciding rule is %s", a.From, stepName(a.Rule))
	if a.NAT != nil {
		s += fmt.Sprintf(", after %s rewrote the destination to %s (%s)", ownerName(&a.NAT.Step), a.NAT.To, stepName(&a.NAT.Step))
	}
	return s + "."
}

// internetRule reports a listener beyond loopback that the firewall lets
// in from the internet, for a service not meant to face it: listening on
// all interfaces is a risk, being let in from anywhere is the exposure.
func internetRule(l *listener, a *Admission) Finding {
	sev := registry.SevMedium
	if l.svc != nil && l.svc.kind != kindPublic {
		sev = registry.SevHigh
	}
	title := fmt.Sprintf("%s is reachable from the internet", l.label())
	why := fmt.Sprintf("It listens %s and the firewall lets new connections in from public addresses: anyone on the internet can reach it, not only the hosts that use it. %s", l.exposure.phrase(), decided(a))
	fix := fmt.Sprintf("Let only the hosts that need it in (%s), or bind it to loopback.", ownerFix(a, l))
	f := l.finding(RuleInternetExposed, sev, title, why, fix)
	f.Firewall = a
	return f
}

// netbiosRule reports NetBIOS or SMB let in from the internet.
func netbiosRule(l *listener, a *Admission) Finding {
	name := "NetBIOS"
	if l.port == 445 {
		name = "SMB"
	}
	title := fmt.Sprintf("%s (%s/%d) is let in from the internet by %s", name, l.proto, l.port, stepName(a.Rule))
	why := fmt.Sprintf("%s is how Windows file sharing is probed for shares, names and passwords, and how worms such as WannaCry spread; it must be blocked at the edge. %s", name, decided(a))
	fix := fmt.Sprintf("Drop %s/%d from outside the LAN: %s.", l.proto, l.port, ownerFix(a, l))
	f := l.finding(RuleNetBIOSFromOutside, registry.SevHigh, title, why, fix)
	f.Firewall = a
	return f
}

// netbiosOpenedRule reports a NetBIOS or SMB port that nothing listens on
// and that the firewall lets in from the internet.
func netbiosOpenedRule(pr PortReach) Finding {
	name := "NetBIOS"
	if pr.Port == 445 {
		name = "SMB"
	}
	a := pr.admission(firewall.Internet)
	if a == nil {
		a = &Admission{From: firewall.Internet, Verdict: firewall.Accept}
	}
	where := fmt.Sprintf("%s/%d", pr.Protocol, pr.Port)
	title := fmt.Sprintf("The firewall lets %s (%s) in from the internet by %s, though nothing listens on it now", name, where, stepName(a.Rule))
	why := fmt.Sprintf("No socket takes %s now, but the ruleset accepts it from public addresses: a file server started later (Samba, a container publishing %d) is exposed at once. %s", where, pr.Port, decided(a))
	fix := fmt.Sprintf("Drop %s from outside the LAN in the firewall that owns the rule (%s).", where, stepName(a.Rule))
	if a.Rule != nil && a.Rule.Rule != nil && a.Rule.Handle != 0 && a.Rule.Owner.Name == firewall.OwnerHand {
		fix = fmt.Sprintf("Drop %s from outside the LAN: nft delete rule %s %s %s handle %d, or narrow it to the LAN's addresses.", where, firewall.FamilyName(a.Rule.Family), a.Rule.Table, a.Rule.Chain, a.Rule.Handle)
	}
	return Finding{Rule: RuleNetBIOSFromOutside, Severity: registry.SevMedium, Title: title, Why: why, Fix: fix,
		Key: fmt.Sprintf("%s:%s:open", RuleNetBIOSFromOutside, where), Service: name,
		Setting: "firewall " + where, Protocol: pr.Protocol, Port: pr.Port, Firewall: a}
}

// bypassRule reports a port that a container engine publishes past a ufw
// or firewalld deny.
func bypassRule(l *listener, a *Admission) Finding {
	owner := ownerName(a.Bypasses)
	title := fmt.Sprintf("Docker publishes %s/%d past %s's deny", l.proto, l.port, owner)
	why := fmt.Sprintf("%s denies the port (%s), but Docker's DNAT (%s) sends connections from the internet to the container through the forward chain, which %s's input rules never see: the port is reachable from anywhere although %s says it is closed. %s",
		owner, stepName(a.Bypasses), stepName(natStep(a)), owner, owner, decided(a))
	to := "PORT" // the container's port
	if a.NAT != nil && a.NAT.To.Port() != 0 {
		to = fmt.Sprint(a.NAT.To.Port())
	}
	fix := fmt.Sprintf("Publish it on loopback only (docker run -p 127.0.0.1:%d:%s, or ports: [\"127.0.0.1:%d:%s\"] in compose), or deny it in the DOCKER-USER chain, which Docker's forward rules honour (iptables -I DOCKER-USER -p %s -m conntrack --ctorigdstport %d ! -s 127.0.0.0/8 -j DROP).",
		l.port, to, l.port, to, l.proto, l.port)
	f := l.finding(RuleDockerBypass, registry.SevHigh, title, why, fix)
	f.Key = RuleDockerBypass + ":" + fmt.Sprintf("%s/%d", l.proto, l.port)
	f.Firewall = a
	return f
}

func natStep(a *Admission) *firewall.Step {
	if a.NAT == nil {
		return a.Rule
	}
	return &a.NAT.Step
}

// ownerFix says how to shut the port in the terms of who let it in.
func ownerFix(a *Admission, l *listener) string {
	switch ownerName(a.Rule) {
	case "ufw":
		return fmt.Sprintf("ufw delete allow %d/%s, then ufw allow from SUBNET to any port %d proto %s", l.port, l.proto, l.port, l.proto)
	case "firewalld":
		return fmt.Sprintf("firewall-cmd --permanent --remove-port=%d/%s, or a rich rule for the hosts that need it", l.port, l.proto)
	case "docker":
		return fmt.Sprintf("publish it as 127.0.0.1:%d:PORT", l.port)
	}
	if a.Rule != nil && a.Rule.Rule != nil && a.Rule.Handle != 0 {
		return fmt.Sprintf("nft delete rule %s %s %s handle %d, or narrow it to the LAN's addresses", firewall.FamilyName(a.Rule.Family), a.Rule.Table, a.Rule.Chain, a.Rule.Handle)
	}
	if a.Rule != nil && a.Rule.Rule == nil {
		return fmt.Sprintf("the chain's policy accepts it: add a drop for %s dport %d to %s %s %s", l.proto, l.port, firewall.FamilyName(a.Rule.Family), a.Rule.Table, a.Rule.Chain)
	}
	return "remove or narrow the rule that accepts it"
}

// reachPolicyRule reports a listener reachable from a class that the
// policy's reach key does not allow it to be reachable from.
func reachPolicyRule(l *listener, pr *PortReach, rp *ReachPolicy) []Finding {
	var out []Finding
	for _, c := range []firewall.Class{firewall.Internet, firewall.LAN} {
		allowed, ok := rp.Classes[c]
		if !ok {
			continue
		}
		a := pr.admission(c)
		if a == nil || a.Verdict != firewall.Accept || slices.ContainsFunc(allowed, func(rg registry.Range) bool { return rg.Contains(l.port) }) {
			continue
		}
		title := fmt.Sprintf("%s on %s/%d is reachable from the %s, which the policy does not allow", l.label(), l.proto, l.port, c)
		why := fmt.Sprintf("The policy's reach: %s: lists the ports that may be reachable from the %s, and %d is not one of them (line %d). %s", c, c, l.port, rp.Line, decided(a))
		f := l.finding(RuleReachNotAllowed, registry.SevHigh, title, why, fmt.Sprintf("Close it to the %s (%s), or add %d to reach: %s: in the policy.", c, ownerFix(a, l), l.port, c))
		f.Key = fmt.Sprintf("%s:%s:%s", RuleReachNotAllowed, c, l.key())
		f.Firewall = a
		out = append(out, f)
	}
	return out
}

// applyFirewall tells in f what the firewall does, and lowers an exposure
// finding to low when the firewall keeps out everyone beyond this machine.
func applyFirewall(f *Finding, pr *PortReach) {
	if pr == nil || !slices.Contains(exposureRules, f.Rule) {
		return
	}
	switch pr.Summary() {
	case FromInternet:
		f.Why += " " + decided(pr.admission(firewall.Internet))
	case FromLAN:
		f.Why += fmt.Sprintf(" The firewall keeps the internet out (%s) but lets the LAN in.", stepName(pr.admission(firewall.Internet).Rule))
	case FromLoopback, FromNobody:
		a := pr.admission(firewall.LAN)
		f.Title += " (the firewall lets no other host in)"
		f.Why += fmt.Sprintf(" The firewall lets no other host reach it (%s), so the finding is lowered to low; one rule change exposes it.", stepName(a.Rule))
		f.Severity = min(f.Severity, registry.SevLow)
	}
}
