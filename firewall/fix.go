package firewall

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// FixRequest is what the user wants of a port, for Fix.
type FixRequest struct {
	Port  uint16
	Proto string // "tcp" or "udp"; empty means tcp
	// From is the source asked about: a prefix (10.0.0.0/8; a /32 for one
	// address). When it is not valid, the fix is for every source, except
	// for Class loopback. For the LAN, the caller passes the LAN's prefix.
	From  netip.Prefix
	Class Class
	// Open is true when the user wants the port reachable from there,
	// false when they want it closed.
	Open bool
	// Bind is the listening socket's address when it is what keeps the
	// packet out (127.0.0.1 or ::1 for a source that is not loopback, an
	// address other than the destination); V6Only says a socket on [::]
	// takes no IPv4 (IPV6_V6ONLY).
	Bind   netip.Addr
	V6Only bool
}

// Fix says what to change so that the packet evaluated in res is let in
// (want.Open) or kept out, as commands in the terms of whoever wrote the
// deciding rule: ufw, firewall-cmd, docker run, kubectl, portctl fw, nft
// or iptables for rules written by hand; the socket's bind address when
// that is in the way. Each string is one way to do it, the best first; a
// way of two steps joins them with " && ". The first is sure to do it; a
// later one that deletes the deciding rule leaves the packet to the rules
// after it, which the evaluation did not reach. Nothing is returned when the
// packet already fares as wanted, or when the verdict is unknown.
func Fix(res Result, want FixRequest) []string {
	if want.Proto == "" {
		want.Proto = "tcp"
	}
	var out []string
	if want.Open {
		if b := bindFix(want); b != "" {
			out = append(out, b)
		}
		if res.Verdict == Drop || res.Verdict == Reject {
			out = append(out, openFix(res, want)...)
		}
		return out
	}
	if res.Verdict == Accept {
		out = append(out, closeFix(res, want)...)
	}
	return out
}

// bindFix is the change of bind address that lets the source reach the
// socket, or "".
func bindFix(want FixRequest) string {
	b := want.Bind
	if !b.IsValid() {
		return ""
	}
	srcV4 := !want.From.IsValid() || want.From.Addr().Is4() || want.From.Addr().Is4In6()
	switch {
	case b.IsLoopback() && want.Class == Loopback:
		return ""
	case b.IsUnspecified() && b.Is6() && want.V6Only && srcV4:
		return "bind to 0.0.0.0 as well: the socket on [::] is IPv6-only (IPV6_V6ONLY)"
	case b.IsUnspecified():
		return ""
	case b.Is4():
		return "bind to 0.0.0.0 instead of " + b.String()
	}
	return "bind to [::] instead of [" + b.String() + "]"
}

// decider is the step that settled the verdict and who owns it: for a
// policy, which has no rule, the owner of the rules the walk met in the
// same chain before it (ufw's INPUT policy comes with ufw's jumps), else
// hand.
func decider(res Result) (Step, Owner, bool) {
	if res.Decider == nil {
		return Step{}, Owner{}, false
	}
	d := *res.Decider
	o := d.Owner
	if d.Rule != nil && o.Name == "" {
		o = d.Rule.Owner
	}
	if o.Name == "" {
		o = Owner{Name: OwnerHand}
		for i := len(res.Steps) - 1; i >= 0; i-- {
			s := res.Steps[i]
			if s.Family == d.Family && s.Table == d.Table && s.Rule != nil && s.Owner.Name != "" && s.Owner.Name != OwnerHand {
				o = Owner{Name: s.Owner.Name}
				break
			}
		}
		if d.Table == "firewalld" {
			o = Owner{Name: OwnerFirewalld}
		}
	}
	return d, o, true
}

func openFix(res Result, want FixRequest) []string {
	d, o, ok := decider(res)
	if !ok {
		return nil
	}
	switch o.Name {
	case OwnerUFW:
		return ufwOpen(res, d, o, want)
	case OwnerFirewalld:
		return firewalldOpen(res, d, o, want)
	case OwnerDocker, OwnerPodman:
		return []string{fmt.Sprintf("%s run -p %d:%d/%s …   (publish the container's port)", o.Name, want.Port, containerPort(res, want), want.Proto)}
	case OwnerKubeProxy:
		if ns, name, ok := kubeService(o.Detail); ok {
			return []string{fmt.Sprintf("kubectl -n %s get endpointslices -l kubernetes.io/service-name=%s   (kube-proxy rejects: the service has no ready endpoints)", ns, name)}
		}
		// nftables mode names the service in a map element's comment,
		// which the model does not keep: find it by its NodePort.
		return []string{fmt.Sprintf("kubectl get services -A | grep ':%d/'   (kube-proxy rejects: the service has no ready endpoints)", want.Port)}
	case OwnerPortctl:
		// Which block holds the port (its protocols, its source) the rule
		// does not say: the plain unblock lifts the usual one, fw blocks
		// lists them all.
		return []string{"portctl fw unblock " + strconv.Itoa(int(want.Port)), "portctl fw blocks   (the blocks, with their protocols and sources)"}
	}
	return handFix(d, want, "accept")
}

func closeFix(res Result, want FixRequest) []string {
	block := "portctl fw block " + strconv.Itoa(int(want.Port)) + " --proto " + want.Proto + fromFlag(want)
	// A port Docker (or Podman) publishes is forwarded to the container: the
	// filter rules of INPUT, where ufw and firewalld's zones look, never
	// see it.
	if res.NAT != nil && (res.NAT.Step.Owner.Name == OwnerDocker || res.NAT.Step.Owner.Name == OwnerPodman) {
		host, cport := res.NAT.From.Port(), res.NAT.To.Port()
		if cport == 0 {
			cport = host
		}
		loop := "127.0.0.1"
		ipt := "iptables"
		if res.NAT.From.Addr().Is6() && !res.NAT.From.Addr().Is4In6() {
			loop, ipt = "[::1]", "ip6tables"
		}
		src := ""
		if want.From.IsValid() && want.From.Bits() > 0 {
			src = " -s " + prefixString(want.From)
		}
		run := fmt.Sprintf("%s run -p %s:%d:%d/%s …   (publish on loopback only)", res.NAT.Step.Owner.Name, loop, host, cport, want.Proto)
		if res.NAT.Step.Owner.Name == OwnerPodman {
			// netavark has no chain of the administrator's to drop in.
			return []string{run, block}
		}
		return []string{
			run,
			fmt.Sprintf("%s -I DOCKER-USER -p %s -m conntrack --ctorigdstport %d%s -j DROP", ipt, want.Proto, host, src),
			block,
		}
	}
	// A NodePort: kube-proxy writes what the Service says.
	if res.NAT != nil && res.NAT.Step.Owner.Name == OwnerKubeProxy {
		if ns, name, ok := kubeService(res.NAT.Step.Owner.Detail); ok {
			return []string{fmt.Sprintf(`kubectl -n %s patch service %s -p '{"spec":{"type":"ClusterIP"}}'   (no NodePort)`, ns, name), block}
		}
	}
	d, o, ok := decider(res)
	if !ok {
		return []string{block}
	}
	var out []string
	switch o.Name {
	case OwnerUFW:
		if r, ok := ParseUFWTuple(o.Detail); ok && d.Rule != nil && (r.Action == "allow" || r.Action == "limit") {
			del := r.Delete()
			deny := "ufw insert 1 deny " + ufwFromTo(want, "")
			if want.From.IsValid() && !anyAddr(want.From.String()) {
				out = append(out, deny, del)
			} else {
				out = append(out, del, deny)
			}
		}
	case OwnerFirewalld:
		out = append(out, firewalldClose(d, o)...)
	case OwnerKubeProxy:
		if ns, name, ok := kubeService(o.Detail); ok {
			out = append(out, fmt.Sprintf(`kubectl -n %s patch service %s -p '{"spec":{"type":"ClusterIP"}}'   (no NodePort)`, ns, name))
		}
	case OwnerHand:
		if d.Rule != nil {
			out = append(out, handFix(d, want, "drop")...)
		}
	}
	return append(out, block)
}

// ufwFromTo is the "from … to … port … proto …" part of a ufw rule for the
// request.
func ufwFromTo(want FixRequest, to string) string {
	from := "any"
	if want.From.IsValid() && want.From.Bits() > 0 {
		from = prefixString(want.From)
	}
	if to == "" {
		to = "any"
	}
	return fmt.Sprintf("from %s to %s port %d proto %s", from, to, want.Port, want.Proto)
}

func ufwOpen(res Result, d Step, o Owner, want FixRequest) []string {
	anySrc := !want.From.IsValid() || want.From.Bits() == 0
	if res.Path == "forward" {
		to := "any"
		if res.To.IsValid() {
			to = res.To.Addr().String()
		}
		return []string{"ufw route allow " + ufwFromTo(want, to)}
	}
	allow := "ufw allow " + ufwFromTo(want, "")
	if anySrc {
		allow = fmt.Sprintf("ufw allow %d/%s", want.Port, want.Proto)
	}
	r, ok := ParseUFWTuple(o.Detail)
	if !ok || d.Rule == nil || r.Action == "allow" {
		// The default policy, or ufw's own chains after the user's:
		// a rule of the user's comes first.
		return []string{allow}
	}
	// A rule of the user's denies it, and ufw's rules match in order: an
	// allow must go before it, or the deny go.
	ins := "ufw insert 1 allow " + ufwFromTo(want, "")
	exact := r.DPort == strconv.Itoa(int(want.Port)) && anyAddr(r.Src) && anyAddr(r.Dst) && r.SPort == "any" && r.IfaceIn == ""
	if exact && anySrc {
		return []string{r.Delete() + " && " + allow, ins}
	}
	return []string{ins, r.Delete() + " && " + allow}
}

// firewalldZone is the zone (or "policy NAME") the decider belongs to, or
// the one the walk went into before it (a packet that no zone took ends at
// filter_INPUT's reject after filter_INPUT_ZONES sent it into one).
func firewalldZone(res Result, d Step, o Owner) string {
	if o.Detail != "" {
		return o.Detail
	}
	for i := len(res.Steps) - 1; i >= 0; i-- {
		if s := res.Steps[i]; s.Owner.Name == OwnerFirewalld && s.Owner.Detail != "" {
			return s.Owner.Detail
		}
	}
	return ""
}

// firewalldWhere is the --zone= or --policy= option for a zone detail.
func firewalldWhere(zone string) string {
	if p, ok := strings.CutPrefix(zone, "policy "); ok {
		return "--policy=" + p + " "
	}
	if zone != "" {
		return "--zone=" + zone + " "
	}
	return ""
}

// runtimeAndPermanent is a firewall-cmd change made now and kept after a
// reload.
func runtimeAndPermanent(args string) string {
	return "firewall-cmd " + args + " && firewall-cmd --permanent " + args
}

func firewalldOpen(res Result, d Step, o Owner, want FixRequest) []string {
	zone := firewalldZone(res, d, o)
	where := firewalldWhere(zone)
	denied := strings.HasSuffix(d.Chain, "_deny")
	if !want.From.IsValid() || want.From.Bits() == 0 {
		if !denied {
			return []string{runtimeAndPermanent(fmt.Sprintf("%s--add-port=%d/%s", where, want.Port, want.Proto))}
		}
	}
	// A rich rule of negative priority goes to the zone's _pre chain,
	// ahead of the rich rules that deny.
	prio := ""
	if denied {
		prio = `priority="-1" `
	}
	fam, src := "ipv4", ""
	if want.From.IsValid() {
		if want.From.Addr().Is6() && !want.From.Addr().Is4In6() {
			fam = "ipv6"
		}
		if want.From.Bits() > 0 {
			src = fmt.Sprintf(`source address="%s" `, prefixString(want.From))
		}
	}
	rich := fmt.Sprintf(`rule %sfamily="%s" %sport port="%d" protocol="%s" accept`, prio, fam, src, want.Port, want.Proto)
	return []string{runtimeAndPermanent(fmt.Sprintf("%s--add-rich-rule='%s'", where, rich))}
}

func firewalldClose(d Step, o Owner) []string {
	if d.Rule == nil {
		return nil
	}
	f := factsOf(d.Rule)
	if f.verdict != "accept" || len(f.dports) != 1 || f.proto == 0 {
		return nil
	}
	where := firewalldWhere(o.Detail)
	port := strconv.Itoa(int(f.dports[0][0]))
	if f.dports[0][1] != f.dports[0][0] {
		port += "-" + strconv.Itoa(int(f.dports[0][1]))
	}
	if f.src.IsValid() {
		fam := "ipv4"
		if f.src.Addr().Is6() {
			fam = "ipv6"
		}
		rich := fmt.Sprintf(`rule family="%s" source address="%s" port port="%s" protocol="%s" accept`, fam, prefixString(f.src), port, protoName(f.proto))
		return []string{runtimeAndPermanent(fmt.Sprintf("%s--remove-rich-rule='%s'", where, rich))}
	}
	return []string{
		runtimeAndPermanent(fmt.Sprintf("%s--remove-port=%s/%s", where, port, protoName(f.proto))),
		fmt.Sprintf("firewall-cmd %s--list-services   (if a service opens it: --remove-service=NAME)", where),
	}
}

// iptablesTables are the tables iptables writes, in nftables
// (iptables-nft) or x_tables (legacy).
var iptablesTables = map[string]bool{"filter": true, "nat": true, "mangle": true, "raw": true, "security": true}

// iptablesChain says whether the step is in a table iptables manages, to
// be changed with iptables rather than nft.
func iptablesChain(d Step) bool {
	if d.Source == Legacy {
		return true
	}
	if (d.Family != FamilyIPv4 && d.Family != FamilyIPv6) || !iptablesTables[d.Table] {
		return false
	}
	if d.Rule != nil {
		for _, e := range d.Rule.Exprs {
			if _, ok := e.(*Xt); ok {
				return true
			}
		}
	}
	switch d.Chain {
	case "INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING":
		return true
	}
	return strings.ToUpper(d.Chain) == d.Chain
}

// handFix is the change to a rule written by hand (or a policy): put a
// rule with verdict (accept or drop) for the port before it, or delete
// it; for a policy, add the rule at the chain's end.
func handFix(d Step, want FixRequest, verdict string) []string {
	v6 := d.Family == FamilyIPv6 || want.From.IsValid() && want.From.Addr().Is6() && !want.From.Addr().Is4In6()
	if iptablesChain(d) {
		tool := "iptables"
		if d.Family == FamilyIPv6 {
			tool = "ip6tables"
		}
		if d.Source == Legacy {
			tool += "-legacy"
		}
		tbl := ""
		if d.Table != "filter" {
			tbl = " -t " + d.Table
		}
		match := fmt.Sprintf("-p %s --dport %d", want.Proto, want.Port)
		if want.From.IsValid() && want.From.Bits() > 0 {
			match = "-s " + prefixString(want.From) + " " + match
		}
		target := strings.ToUpper(verdict)
		pos := d.Position
		if pos == 0 && d.Rule != nil {
			pos = d.Rule.Position
		}
		if d.Rule == nil || pos == 0 {
			return []string{fmt.Sprintf("%s%s -A %s %s -j %s", tool, tbl, d.Chain, match, target)}
		}
		out := []string{fmt.Sprintf("%s%s -I %s %d %s -j %s", tool, tbl, d.Chain, pos, match, target)}
		if onlyPort(d.Rule, want.Port) {
			out = append(out, fmt.Sprintf("%s%s -D %s %d", tool, tbl, d.Chain, pos))
		}
		return out
	}
	where := fmt.Sprintf("%s %s %s", FamilyName(d.Family), d.Table, d.Chain)
	match := fmt.Sprintf("%s dport %d", want.Proto, want.Port)
	if want.From.IsValid() && want.From.Bits() > 0 {
		ip := "ip"
		if v6 {
			ip = "ip6"
		}
		match = fmt.Sprintf("%s saddr %s %s", ip, prefixString(want.From), match)
	}
	if d.Rule == nil || d.Handle == 0 {
		return []string{fmt.Sprintf("nft add rule %s %s %s", where, match, verdict)}
	}
	out := []string{fmt.Sprintf("nft insert rule %s position %d %s %s", where, d.Handle, match, verdict)}
	if onlyPort(d.Rule, want.Port) {
		out = append(out, fmt.Sprintf("nft delete rule %s handle %d", where, d.Handle))
	}
	return out
}

// onlyPort says whether a rule is about the one port alone, so that
// deleting it is a fix for that port and touches no other.
func onlyPort(r *Rule, port uint16) bool {
	f := factsOf(r)
	return len(f.dports) == 1 && f.dports[0] == [2]uint16{port, port}
}

// prefixString is a prefix as the tools take it: a single address bare.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.Masked().String()
}

func fromFlag(want FixRequest) string {
	if want.From.IsValid() && want.From.Bits() > 0 {
		return " --from " + prefixString(want.From)
	}
	return ""
}

// containerPort is the container's port a DNAT on the way names, else the
// port asked.
func containerPort(res Result, want FixRequest) uint16 {
	if res.NAT != nil && res.NAT.To.Port() != 0 {
		return res.NAT.To.Port()
	}
	return want.Port
}

// kubeService takes "namespace/name:port" (kube-proxy's comments) apart.
func kubeService(detail string) (ns, name string, ok bool) {
	svc, _, _ := strings.Cut(detail, " ")
	ns, name, ok = strings.Cut(svc, "/")
	if !ok || ns == "" || name == "" {
		return "", "", false
	}
	name, _, _ = strings.Cut(name, ":")
	return ns, name, true
}
