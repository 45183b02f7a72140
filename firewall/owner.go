package firewall

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The owners Attribute names.
const (
	OwnerUFW       = "ufw"
	OwnerFirewalld = "firewalld"
	OwnerDocker    = "docker"
	OwnerKubeProxy = "kube-proxy"
	// OwnerPodman is Podman's network backend, netavark.
	OwnerPodman  = "podman"
	OwnerPortctl = "portctl"
	OwnerHand    = "hand"
)

// OwnerHints is what Attribute knows beyond the ruleset itself. The zero
// value attributes by the ruleset alone.
type OwnerHints struct {
	// UFW are the rules of ufw's user.rules and user6.rules
	// (ParseUFWRules), to name the ufw rule behind each rule of its user
	// chains.
	UFW []UFWRule
	// UFWRead says the rules files were read: a rule in ufw's user chains
	// that neither file holds was then added by hand. Without it such a
	// rule is still ufw's.
	UFWRead bool
	// Containers names the containers by address, or by address and
	// port (the target of a published port's DNAT), to name them in
	// Docker's rules.
	Containers map[netip.AddrPort]string
	// DockerBridges are the bridges of Docker networks beyond docker0 and
	// br-<12 hex digits>, Docker's own names (a network made with
	// com.docker.network.bridge.name).
	DockerBridges []string
}

// Attribute fills in the Owner of every rule of rs. The tools are told
// apart by their tables and chains (firewalld's table inet firewalld,
// ufw's ufw-*, Docker's DOCKER*, Podman's NETAVARK*, kube-proxy's KUBE-*
// and table kube-proxy, portctl's table inet portctl), and where several
// share a table (iptables' filter and nat), by what a rule does: it jumps
// to a tool's chain, or matches a Docker bridge or a Docker network's
// subnet; firewalld's iptables backend by the dispatching chains only it
// makes. A rule in ufw's user chains is matched to the ufw rule (tuple)
// it came from. Whatever is left was written by hand.
//
// Attribute writes the rules' Owner fields: it must not run while
// anything else reads or writes rs.
func Attribute(rs *Ruleset, h OwnerHints) {
	if rs == nil {
		return
	}
	d := dockerFacts(rs, h)
	// firewalld's iptables backend names its chains in iptables' own
	// tables of a family as a user might (IN_public), and flushes the
	// built-in chains it hooks into: where its dispatching chains are,
	// those names and those chains are its.
	firewalldIpt := map[Family]bool{}
	for _, t := range rs.Tables {
		for _, c := range t.Chains {
			if firewalldIptMark.MatchString(c.Name) {
				firewalldIpt[t.Family] = true
			}
		}
	}
	for _, t := range rs.Tables {
		for _, c := range t.Chains {
			var tuples []UFWRule
			ufwUser := ufwUserChain(c.Name)
			if ufwUser {
				tuples = ufwChainRules(h.UFW, c.Name)
			}
			matched := matchUFW(c.Rules, tuples)
			for i, r := range c.Rules {
				r.Owner = ruleOwner(t, c, r, d, firewalldIpt[t.Family] && t.Family != FamilyINet)
				if ufwUser && r.Owner.Name == OwnerUFW {
					switch {
					case matched[i] != nil:
						r.Owner.Detail = matched[i].Tuple
					case h.UFWRead:
						r.Owner = Owner{Name: OwnerHand, Detail: "in ufw's chain " + c.Name + ", not in its rules files"}
					}
				}
			}
		}
	}
}

// ChainOwner is who a chain belongs to, and so who set its policy: the
// owner of a tool's table or chain by name, else, for a built-in chain
// that tools share, the tool whose chains it jumps to (ufw before Docker,
// as ufw sets the policies of the chains it hooks into), else "hand".
// It reads the rules' owners, so Attribute should have run.
func ChainOwner(c *Chain) Owner {
	if c == nil || c.Table == nil {
		return Owner{Name: OwnerHand}
	}
	if o := tableOwner(c.Table); o != "" {
		return Owner{Name: o, Detail: firewalldDetail(c.Name, "")}
	}
	if o := chainNameOwner(c.Name); o != "" {
		return Owner{Name: o}
	}
	found := map[string]bool{}
	for _, r := range c.Rules {
		found[r.Owner.Name] = true
	}
	for _, o := range []string{OwnerUFW, OwnerFirewalld, OwnerKubeProxy, OwnerDocker, OwnerPodman} {
		if found[o] {
			return Owner{Name: o}
		}
	}
	return Owner{Name: OwnerHand}
}

// tableOwner is the tool that owns a whole table, or "" for a table tools
// share (or nobody's).
func tableOwner(t *Table) string {
	switch {
	case t.Name == "firewalld" && t.Source == NFTables:
		return OwnerFirewalld
	case t.Name == "kube-proxy" && t.Source == NFTables:
		return OwnerKubeProxy
	case t.Name == "portctl" && t.Family == FamilyINet:
		return OwnerPortctl
	case (t.Name == "docker-bridges" || t.Name == "docker") && t.Source == NFTables:
		// Docker 29's nftables firewall backend.
		return OwnerDocker
	case t.Name == "netavark" && t.Source == NFTables:
		// netavark's nftables driver.
		return OwnerPodman
	}
	return ""
}

// chainNameOwner is the tool a chain's name says wrote it, or "".
func chainNameOwner(name string) string {
	switch {
	case strings.HasPrefix(name, "ufw-"), strings.HasPrefix(name, "ufw6-"):
		return OwnerUFW
	case name == "DOCKER", strings.HasPrefix(name, "DOCKER-"):
		return OwnerDocker
	case strings.HasPrefix(name, "KUBE-"):
		return OwnerKubeProxy
	case strings.HasPrefix(name, "NETAVARK"):
		// NETAVARK_FORWARD, NETAVARK-HOSTPORT-DNAT, NETAVARK-DN-<id>.
		return OwnerPodman
	}
	return ""
}

// firewalldIptChain matches the chains firewalld's iptables backend
// writes into iptables' own tables: IN_public, IN_public_allow,
// FWDI_public, PRE_public, POST_public_deny, INPUT_ZONES, INPUT_direct.
var firewalldIptChain = regexp.MustCompile(`^((IN|FWDI|FWDO|FWD|PRE|POST|OUT)_.+|[A-Z]+_(ZONES|ZONES_SOURCE|direct|POLICIES_pre|POLICIES_post)|FORWARD_(IN|OUT)_ZONES(_SOURCE)?|RFC3964_IPv4)$`)

// firewalldIptMark matches the chains that only firewalld's iptables
// backend makes: its zone dispatchers and direct-rule chains.
var firewalldIptMark = regexp.MustCompile(`^((INPUT|FORWARD|FORWARD_IN|FORWARD_OUT|PREROUTING|POSTROUTING)_ZONES|(INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING)_direct)$`)

func ruleOwner(t *Table, c *Chain, r *Rule, d *docker, firewalldIpt bool) Owner {
	f := factsOf(r)
	switch o := tableOwner(t); o {
	case OwnerFirewalld:
		return Owner{Name: o, Detail: firewalldDetail(c.Name, f.jump())}
	case OwnerKubeProxy:
		return Owner{Name: o, Detail: kubeDetail(c.Name, r)}
	case OwnerPortctl:
		return Owner{Name: o, Detail: r.Comment}
	case OwnerDocker, OwnerPodman:
		return Owner{Name: o, Detail: d.detail(c.Name, f)}
	}
	switch chainNameOwner(c.Name) {
	case OwnerPodman:
		return Owner{Name: OwnerPodman, Detail: d.detail(c.Name, f)}
	case OwnerUFW:
		return Owner{Name: OwnerUFW, Detail: c.Name}
	case OwnerKubeProxy:
		return Owner{Name: OwnerKubeProxy, Detail: kubeDetail(c.Name, r)}
	case OwnerDocker:
		// Docker makes DOCKER-USER with a lone RETURN (and Docker 28 no
		// rule at all) for the administrator's own rules: what else is
		// there was put there by hand.
		if c.Name == "DOCKER-USER" {
			if f.verdict == "return" && f.plain() {
				return Owner{Name: OwnerDocker, Detail: c.Name}
			}
			return Owner{Name: OwnerHand, Detail: "in DOCKER-USER"}
		}
		return Owner{Name: OwnerDocker, Detail: d.detail(c.Name, f)}
	}
	if firewalldIpt && firewalldIptChain.MatchString(c.Name) {
		return Owner{Name: OwnerFirewalld, Detail: firewalldDetail(c.Name, f.jump())}
	}
	// A rule of a chain tools share: a jump into a tool's chain is that
	// tool's.
	if j := f.jump(); j != "" {
		if o := chainNameOwner(j); o != "" {
			return Owner{Name: o, Detail: "jump " + j}
		}
		if firewalldIpt && firewalldIptChain.MatchString(j) {
			return Owner{Name: OwnerFirewalld, Detail: firewalldDetail(j, "")}
		}
	}
	if d.owns(f) {
		return Owner{Name: OwnerDocker, Detail: d.detail(c.Name, f)}
	}
	if firewalldIpt && c.Hook != nil {
		// firewalld flushed this built-in chain and wrote its rules
		// (conntrack, lo, the final reject) straight into it.
		return Owner{Name: OwnerFirewalld}
	}
	return Owner{Name: OwnerHand}
}

// firewalldZoneChain takes a zone or policy apart from the chain names of
// firewalld's nftables backend: filter_IN_public, filter_IN_public_allow,
// nat_PRE_public, filter_FWD_internal_deny, filter_IN_policy_allow-host-ipv6_pre;
// and its iptables backend: IN_public_allow, FWDI_public.
var firewalldZoneChain = regexp.MustCompile(`^(?:(?:filter|nat|mangle|raw)_)?(?:IN|FWD|FWDI|FWDO|PRE|POST|OUT)_(.+?)(?:_(?:pre|log|deny|allow|post))?$`)

// firewalldDetail is the zone ("public") or policy ("policy
// allow-host-ipv6") a firewalld chain belongs to, or the one a dispatching
// rule goes to (filter_INPUT_ZONES: iifname "eth0" goto filter_IN_public).
func firewalldDetail(chain, target string) string {
	for _, name := range []string{chain, target} {
		if name == "" {
			continue
		}
		m := firewalldZoneChain.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if p, ok := strings.CutPrefix(m[1], "policy_"); ok {
			return "policy " + p
		}
		return m[1]
	}
	return ""
}

// kubeDetail names the service a kube-proxy rule serves, from its comment
// ("default/web:http cluster IP") or, in nftables mode, its chain's name
// (service-ULMVA6XW-default/web/tcp/http).
func kubeDetail(chain string, r *Rule) string {
	if c := ruleComment(r); c != "" {
		if svc, _, ok := strings.Cut(c, " "); ok && strings.Count(svc, "/") == 1 {
			return svc
		}
		if strings.Count(c, "/") == 1 && !strings.Contains(c, " ") {
			return c
		}
	}
	for _, p := range []string{"service-", "external-", "endpoint-", "firewall-"} {
		if rest, ok := strings.CutPrefix(chain, p); ok {
			if _, svc, ok := strings.Cut(rest, "-"); ok {
				parts := strings.Split(svc, "/")
				if len(parts) >= 2 {
					return parts[0] + "/" + parts[1]
				}
			}
		}
	}
	return chain
}

// ruleComment is the rule's nftables comment or its iptables comment match.
func ruleComment(r *Rule) string {
	if r.Comment != "" {
		return r.Comment
	}
	if c := exprComment(r); c != "" {
		return c
	}
	if a := parseXtArgs(r.Text); a.comment != "" {
		return a.comment
	}
	return ""
}

// jump is the chain a rule jumps or goes to, or "".
func (f facts) jump() string {
	if f.verdict == "jump" || f.verdict == "goto" {
		return f.target
	}
	return ""
}

// docker is what the ruleset itself says of Docker's networks: their
// bridges, their subnets (from the MASQUERADE rule Docker writes for each)
// and the containers its DNAT rules publish.
type docker struct {
	bridges    []string
	subnets    []netip.Prefix
	containers map[netip.AddrPort]string
}

var dockerBridge = regexp.MustCompile(`^(docker0|br-[0-9a-f]{12})$`)

func dockerFacts(rs *Ruleset, h OwnerHints) *docker {
	d := &docker{bridges: h.DockerBridges, containers: h.Containers}
	for _, t := range rs.Tables {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				if !masquerades(r) {
					continue
				}
				f := factsOf(r)
				if f.verdict == "masquerade" && f.src.IsValid() && f.oifNeg && d.isBridge(f.oif) {
					d.subnets = append(d.subnets, f.src)
				}
			}
		}
	}
	return d
}

// masquerades says, cheaply, whether a rule may masquerade.
func masquerades(r *Rule) bool {
	if len(r.Exprs) == 0 {
		return strings.Contains(r.Text, "MASQUERADE")
	}
	return exprMasquerades(r)
}

func (d *docker) isBridge(name string) bool {
	return name != "" && (dockerBridge.MatchString(name) || slices.Contains(d.bridges, name))
}

// owns says whether a rule outside Docker's chains is Docker's: it matches
// a Docker bridge, or, in nat POSTROUTING, a Docker network's addresses
// (the MASQUERADE of a container's traffic to itself).
func (d *docker) owns(f facts) bool {
	if d.isBridge(f.iif) || d.isBridge(f.oif) {
		return true
	}
	if f.verdict == "masquerade" {
		for _, s := range d.subnets {
			if f.src.IsValid() && s.Overlaps(f.src) {
				return true
			}
		}
	}
	return false
}

// detail says what a Docker rule is for: the container and port a DNAT
// publishes or a filter rule lets through, else its chain.
func (d *docker) detail(chain string, f facts) string {
	proto := protoName(f.proto)
	if f.verdict == "dnat" && f.natTo.IsValid() {
		s := "publishes " + proto
		if len(f.dports) > 0 {
			s += " " + portsString(f.dports)
		}
		s += " to " + d.name(f.natTo)
		return s
	}
	if chain == "DOCKER" && f.verdict == "accept" && f.dst.IsValid() && f.dst.IsSingleIP() {
		s := "lets " + proto
		if len(f.dports) > 0 {
			s += " " + portsString(f.dports)
		}
		to := netip.AddrPortFrom(f.dst.Addr(), 0)
		if len(f.dports) == 1 && f.dports[0][0] == f.dports[0][1] {
			to = netip.AddrPortFrom(f.dst.Addr(), f.dports[0][0])
		}
		return s + " through to " + d.name(to)
	}
	return chain
}

// name is a container's name and address when the hints know it, else
// the address.
func (d *docker) name(ap netip.AddrPort) string {
	s := ap.String()
	if ap.Port() == 0 {
		s = ap.Addr().String()
	}
	if n, ok := d.containers[ap]; ok {
		return n + " (" + s + ")"
	}
	if n, ok := d.containers[netip.AddrPortFrom(ap.Addr(), 0)]; ok {
		return n + " (" + s + ")"
	}
	return s
}

// ufwUserChain says whether a chain holds the rules ufw writes from its
// rules files' tuples.
func ufwUserChain(name string) bool {
	switch strings.TrimPrefix(strings.TrimPrefix(name, "ufw6-"), "ufw-") {
	case "user-input", "user-output", "user-forward", "user-logging-input", "user-logging-output", "user-logging-forward":
		return strings.HasPrefix(name, "ufw")
	}
	return false
}

// ufwLine is one iptables line of a ufw rule, with its rule.
type ufwLine struct {
	rule *UFWRule
	args xtArgs
}

// ufwChainRules are the lines of the rules that go into chain, in the
// files' order.
func ufwChainRules(rules []UFWRule, chain string) []UFWRule {
	var out []UFWRule
	for _, r := range rules {
		for _, l := range r.Lines {
			if a := parseXtArgs(l); a.chain == chain {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// matchUFW pairs the rules of one of ufw's user chains with the ufw rules
// they came from. ufw loads each chain from its file in order, so the
// n-th rule is the n-th line, unless the chain was changed since; then
// each rule takes the first unused line that matches it. Each pair must
// agree on what both can be compared by (protocol, ports, addresses,
// target). The result has a ufw rule or nil for each rule.
func matchUFW(chainRules []*Rule, tuples []UFWRule) []*UFWRule {
	out := make([]*UFWRule, len(chainRules))
	if len(tuples) == 0 || len(chainRules) == 0 {
		return out
	}
	chain := chainRules[0].Chain
	var lines []ufwLine
	for i := range tuples {
		for _, l := range tuples[i].Lines {
			if a := parseXtArgs(l); chain == nil || a.chain == chain.Name {
				lines = append(lines, ufwLine{rule: &tuples[i], args: a})
			}
		}
	}
	inOrder := len(lines) == len(chainRules)
	for i, r := range chainRules {
		if inOrder && !lines[i].args.agrees(factsOf(r)) {
			inOrder = false
		}
	}
	if inOrder {
		for i := range chainRules {
			out[i] = lines[i].rule
		}
		return out
	}
	used := make([]bool, len(lines))
	for i, r := range chainRules {
		f := factsOf(r)
		for j, l := range lines {
			if !used[j] && l.args.agrees(f) {
				used[j] = true
				out[i] = l.rule
				break
			}
		}
	}
	return out
}

// UFWRule is one rule of ufw's user.rules or user6.rules: the tuple ufw
// keeps it by ("### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in")
// and the iptables lines it wrote for it.
type UFWRule struct {
	// Tuple is the tuple as the file spells it, without its comment.
	Tuple string
	// Action is allow, deny, reject or limit.
	Action string
	// Log is "", "log" or "log-all".
	Log string
	// Route is true for a routed (forward) rule, "ufw route allow …".
	Route bool
	// Proto is tcp, udp, any, or another protocol's name.
	Proto string
	// DPort and SPort are "any", a port, a list ("80,443") or a range
	// ("8000:8100"); Dst and Src are addresses or prefixes, 0.0.0.0/0 or
	// ::/0 for any.
	DPort, Dst, SPort, Src string
	// DApp and SApp are the application profiles, when the rule names one.
	DApp, SApp string
	// Direction is in or out.
	Direction string
	// IfaceIn, IfaceOut are the interfaces the rule is bound to.
	IfaceIn, IfaceOut string
	// Comment is the rule's comment, decoded.
	Comment string
	// V6 is true for a rule of user6.rules.
	V6 bool
	// Lines are the iptables-restore lines ("-A ufw-user-input -p tcp
	// --dport 22 -j ACCEPT") that follow the tuple.
	Lines []string
}

// ParseUFWRules reads the rules of ufw's user.rules or user6.rules. It
// skips what it cannot read, as ufw does, and never fails.
func ParseUFWRules(text string) []UFWRule {
	var rules []UFWRule
	cur := -1
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "### tuple ###"):
			cur = -1
			if r, ok := ParseUFWTuple(strings.TrimPrefix(line, "### tuple ###")); ok {
				rules = append(rules, r)
				cur = len(rules) - 1
			}
		case strings.HasPrefix(line, "### END RULES ###"):
			cur = -1
		case strings.HasPrefix(line, "-A ") && cur >= 0:
			r := &rules[cur]
			r.Lines = append(r.Lines, line)
			if strings.HasPrefix(line, "-A ufw6-") {
				r.V6 = true
			}
		}
	}
	return rules
}

// ParseUFWTuple reads a tuple as ufw writes it after "### tuple ###":
// "allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in", with application profiles
// "allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in", an interface
// "in_eth0", a route "route:allow …" and a comment "comment=HEX".
func ParseUFWTuple(s string) (UFWRule, bool) {
	var r UFWRule
	f := strings.Fields(s)
	// The comment is the last field, comment=HEX; split on any blank, as
	// Fields splits the rest, so that a tuple reads back the same.
	if i := slices.IndexFunc(f, func(x string) bool { return strings.HasPrefix(x, "comment=") }); i >= 0 {
		if comment := strings.TrimPrefix(strings.Join(f[i:], " "), "comment="); comment != "" {
			if b, err := hex.DecodeString(comment); err == nil {
				r.Comment = string(b)
			} else {
				r.Comment = comment
			}
		}
		f = f[:i]
	}
	if len(f) < 6 || len(f) > 9 {
		return r, false
	}
	r.Tuple = strings.Join(f, " ")
	action := f[0]
	if a, ok := strings.CutPrefix(action, "route:"); ok {
		r.Route, action = true, a
	}
	r.Action, r.Log, _ = strings.Cut(action, "_")
	switch r.Action {
	case "allow", "deny", "reject", "limit":
	default:
		return r, false
	}
	r.Proto, r.DPort, r.Dst, r.SPort, r.Src = f[1], f[2], f[3], f[4], f[5]
	r.Direction = "in"
	if len(f) == 8 || len(f) == 9 {
		if f[6] != "-" {
			r.DApp = strings.ReplaceAll(f[6], "%20", " ")
		}
		if f[7] != "-" {
			r.SApp = strings.ReplaceAll(f[7], "%20", " ")
		}
	}
	if len(f) == 7 || len(f) == 9 {
		dir := f[len(f)-1]
		in, out, both := strings.Cut(dir, "!")
		switch {
		case both:
			r.Direction = "in"
			r.IfaceIn = strings.TrimPrefix(in, "in_")
			r.IfaceOut = strings.TrimPrefix(out, "out_")
		case strings.HasPrefix(dir, "in_"):
			r.IfaceIn = dir[3:]
		case strings.HasPrefix(dir, "out_"):
			r.Direction, r.IfaceOut = "out", dir[4:]
		case dir == "in" || dir == "out":
			r.Direction = dir
		default:
			return r, false
		}
	}
	r.V6 = strings.Contains(r.Dst, ":") || strings.Contains(r.Src, ":")
	return r, true
}

// Spec is the rule as ufw's command line takes it, after "ufw" or "ufw
// delete": "allow 22/tcp", "deny 6379", "allow from 10.0.0.0/8 to any
// port 5432 proto tcp", "route allow in on eth0 out on eth1 to any port
// 80 proto tcp".
func (r UFWRule) Spec() string {
	var b []string
	if r.Route {
		b = append(b, "route")
	}
	b = append(b, r.Action)
	if r.Log != "" {
		b = append(b, r.Log)
	}
	if r.IfaceIn != "" {
		b = append(b, "in", "on", r.IfaceIn)
	}
	if r.IfaceOut != "" {
		b = append(b, "out", "on", r.IfaceOut)
	}
	if r.Direction == "out" && r.IfaceOut == "" {
		b = append(b, "out")
	}
	anySrc, anyDst := anyAddr(r.Src), anyAddr(r.Dst)
	if anySrc && anyDst && r.SPort == "any" && r.SApp == "" && r.IfaceIn == "" && r.IfaceOut == "" && r.Direction == "in" {
		switch {
		case r.DApp != "":
			return strings.Join(append(b, quoteSpec(r.DApp)), " ")
		case r.Proto == "any" && r.DPort != "any":
			return strings.Join(append(b, r.DPort), " ")
		case r.DPort != "any":
			return strings.Join(append(b, r.DPort+"/"+r.Proto), " ")
		}
	}
	src, dst := r.Src, r.Dst
	if anySrc {
		src = "any"
	}
	if anyDst {
		dst = "any"
	}
	b = append(b, "from", src)
	if r.SApp != "" {
		b = append(b, "app", quoteSpec(r.SApp))
	} else if r.SPort != "any" {
		b = append(b, "port", r.SPort)
	}
	b = append(b, "to", dst)
	if r.DApp != "" {
		b = append(b, "app", quoteSpec(r.DApp))
	} else if r.DPort != "any" {
		b = append(b, "port", r.DPort)
	}
	if r.Proto != "any" && r.DApp == "" && r.SApp == "" {
		b = append(b, "proto", r.Proto)
	}
	return strings.Join(b, " ")
}

// Delete is the ufw command that deletes the rule: "ufw delete deny
// 6379", "ufw route delete allow in on eth0 …" for a routed rule.
func (r UFWRule) Delete() string {
	spec := r.Spec()
	if rest, ok := strings.CutPrefix(spec, "route "); ok {
		return "ufw route delete " + rest
	}
	return "ufw delete " + spec
}

func anyAddr(s string) bool { return s == "0.0.0.0/0" || s == "::/0" || s == "any" || s == "" }

func quoteSpec(s string) string {
	if strings.ContainsAny(s, " '\"") {
		return "'" + strings.ReplaceAll(s, "'", "") + "'"
	}
	return s
}

// facts are what a rule matches and does, as far as owners and fixes need
// it: taken from its expressions (nftables, iptables-nft) or its text
// (a legacy rule).
type facts struct {
	proto          uint8 // 0 for any
	dports         [][2]uint16
	src, dst       netip.Prefix
	iif, oif       string
	iifNeg, oifNeg bool
	// verdict is accept, drop, reject, return, jump, goto, dnat, snat,
	// masquerade, redirect, or "" for none; target is the chain of a
	// jump or goto.
	verdict, target string
	natTo           netip.AddrPort
	// other counts the matches not taken apart here.
	other int
	// ipv is the IP version of the rule's addresses (4, 6), 0 when its
	// table is of both and it matches neither alone.
	ipv int
}

// plain says the rule matches nothing more than facts can tell.
func (f facts) plain() bool {
	return f.proto == 0 && f.dports == nil && !f.src.IsValid() && !f.dst.IsValid() && f.iif == "" && f.oif == "" && f.other == 0
}

// factsOf takes a rule's facts from its expressions, or from its text
// when it has none (a legacy rule).
func factsOf(r *Rule) facts {
	if r == nil {
		return facts{}
	}
	if len(r.Exprs) == 0 && r.Text != "" {
		return parseXtArgs(r.Text).facts()
	}
	var f facts
	if r.Chain != nil && r.Chain.Table != nil {
		switch r.Chain.Table.Family {
		case FamilyIPv4:
			f.ipv = 4
		case FamilyIPv6:
			f.ipv = 6
		}
	}
	exprFacts(r, &f)
	return f
}

// xtArgs is an iptables rule line ("-A ufw-user-input -p tcp --dport 22
// -j ACCEPT", as ufw's files and iptables-save write it) taken apart.
type xtArgs struct {
	chain          string
	proto          string
	dports         [][2]uint16
	src, dst       netip.Prefix
	iif, oif       string
	iifNeg, oifNeg bool
	target         string // ACCEPT, DROP, REJECT, a chain
	gotoTarget     bool
	toDest         string
	comment        string
	other          int
}

// splitArgs splits a line into words, keeping what is in quotes
// together.
func splitArgs(s string) []string {
	var out []string
	var cur strings.Builder
	var quote rune // the quote open, or 0
	started := false
	for _, c := range s {
		switch {
		case quote == 0 && (c == '"' || c == '\''):
			quote, started = c, true
		case quote != 0 && c == quote:
			quote = 0
		case (c == ' ' || c == '\t') && quote == 0:
			if started {
				out = append(out, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(c)
			started = true
		}
	}
	if started {
		out = append(out, cur.String())
	}
	return out
}

func parseXtArgs(line string) xtArgs {
	var a xtArgs
	w := splitArgs(line)
	neg := false
	for i := 0; i < len(w); i++ {
		next := func() string {
			if i+1 < len(w) {
				i++
				return w[i]
			}
			return ""
		}
		switch w[i] {
		case "!":
			neg = true
			continue
		case "-A", "--append", "-I", "--insert":
			a.chain = next()
		case "-p", "--protocol":
			a.proto = next()
		case "--dport", "--destination-port":
			a.dports = append(a.dports, parsePortRange(next())...)
		case "--dports", "--destination-ports":
			a.dports = append(a.dports, parsePortList(next())...)
		case "-s", "--source":
			a.src = parseAddrArg(next())
			if neg {
				a.other++
			}
		case "-d", "--destination":
			a.dst = parseAddrArg(next())
			if neg {
				a.other++
			}
		case "-i", "--in-interface":
			a.iif, a.iifNeg = next(), neg
		case "-o", "--out-interface":
			a.oif, a.oifNeg = next(), neg
		case "-j", "--jump":
			a.target = next()
		case "-g", "--goto":
			a.target, a.gotoTarget = next(), true
		case "--to-destination":
			a.toDest = next()
		case "--comment":
			a.comment = next()
		case "-m", "--match":
			next()
		default:
			if strings.HasPrefix(w[i], "-") {
				a.other++
			}
		}
		neg = false
	}
	return a
}

func parseAddrArg(s string) netip.Prefix {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen())
	}
	return netip.Prefix{}
}

func parsePortRange(s string) [][2]uint16 {
	lo, hi, isRange := strings.Cut(s, ":")
	l, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(hi, 10, 16); err != nil {
			return nil
		}
	}
	return [][2]uint16{{uint16(l), uint16(h)}}
}

func parsePortList(s string) [][2]uint16 {
	var out [][2]uint16
	for _, p := range strings.Split(s, ",") {
		out = append(out, parsePortRange(p)...)
	}
	return out
}

// facts turns a line into the facts of the rule it writes.
func (a xtArgs) facts() facts {
	f := facts{dports: a.dports, src: a.src, dst: a.dst, iif: a.iif, oif: a.oif, iifNeg: a.iifNeg, oifNeg: a.oifNeg, other: a.other}
	f.proto = protoNumber(a.proto)
	switch a.target {
	case "ACCEPT", "DROP", "REJECT", "RETURN", "DNAT", "SNAT", "MASQUERADE", "REDIRECT":
		f.verdict = strings.ToLower(a.target)
	case "LOG", "NFLOG", "MARK", "CONNMARK", "":
	default:
		f.verdict, f.target = "jump", a.target
		if a.gotoTarget {
			f.verdict = "goto"
		}
	}
	if a.toDest != "" {
		if ap, err := netip.ParseAddrPort(a.toDest); err == nil {
			f.natTo = ap
		} else if ad, err := netip.ParseAddr(a.toDest); err == nil {
			f.natTo = netip.AddrPortFrom(ad, 0)
		}
	}
	return f
}

// agrees says whether a rule could be the one this line wrote: they do
// not differ in anything both tell.
func (a xtArgs) agrees(f facts) bool {
	want := a.facts()
	if want.proto != 0 && f.proto != 0 && want.proto != f.proto {
		return false
	}
	if want.dports != nil && f.dports != nil && !slices.Equal(want.dports, f.dports) {
		return false
	}
	if (want.dports == nil) != (f.dports == nil) && f.other == 0 {
		return false
	}
	if want.src.IsValid() != f.src.IsValid() || (want.src.IsValid() && want.src != f.src) {
		return false
	}
	if want.dst.IsValid() && f.dst.IsValid() && want.dst != f.dst {
		return false
	}
	if want.verdict != "" && f.verdict != "" && want.verdict != f.verdict {
		return false
	}
	if want.target != "" && f.target != "" && want.target != f.target {
		return false
	}
	return true
}

func protoNumber(s string) uint8 {
	switch strings.ToLower(s) {
	case "tcp", "6":
		return 6
	case "udp", "17":
		return 17
	case "icmp", "1":
		return 1
	case "ipv6-icmp", "icmpv6", "58":
		return 58
	case "sctp", "132":
		return 132
	}
	return 0
}

func protoName(p uint8) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 0:
		return "any"
	}
	return fmt.Sprint("proto ", p)
}

func portsString(ps [][2]uint16) string {
	var b []string
	for _, p := range ps {
		if p[0] == p[1] {
			b = append(b, strconv.Itoa(int(p[0])))
		} else {
			b = append(b, fmt.Sprintf("%d-%d", p[0], p[1]))
		}
	}
	return strings.Join(b, ",")
}
