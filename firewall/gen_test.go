package firewall

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// A generator of random nftables rulesets, for the differential tests
// (diff_linux_test.go), which load them into a namespace and compare
// Evaluate with the kernel. Every ruleset it makes is one nft -f accepts:
// regular chains are jumped to only from chains before them (no loops),
// return only in regular chains, NAT statements only in NAT chains, and
// every set is declared before a rule uses it.
//
// The addresses and ports are the differential network's
// (testnet.DiffNet): its client sources, the server's addresses, and the
// ports it listens on, so that rules match some probes and not others.

// genPorts are the ports rules name: the probed ones and a few others.
var genPorts = []uint16{22, 53, 80, 137, 139, 443, 445, 2222, 5432, 6379, 8080, 8081, 9000}

// genRedirectTo are ports with listeners, for redirects.
var genRedirectTo = []uint16{22, 80, 443, 8081}

var (
	genNets4 = []string{"192.168.77.0/24", "192.168.77.2", "10.9.0.0/16", "10.0.0.0/8", "198.51.100.0/24", "198.51.100.0/25",
		"203.0.113.9", "203.0.113.0/24", "192.168.0.0/16", "172.16.0.0/12", "127.0.0.0/8", "192.168.77.1"}
	genNets6  = []string{"fd00:77::/64", "fd00:77::2", "fd00::/8", "2001:db8::/32", "2001:db8:1::7", "2001:db8:1::/48", "::1", "fe80::/10"}
	genHosts4 = []string{"192.168.77.2", "10.9.0.2", "198.51.100.7", "203.0.113.9", "192.168.77.1", "127.0.0.1"}
	genHosts6 = []string{"fd00:77::2", "2001:db8:1::7", "fd00:77::1", "::1"}
)

// gen holds one ruleset's making.
type gen struct {
	r    *rand.Rand
	b    strings.Builder
	fam  string // the table's family: inet, ip, ip6
	hook string // the hook of the base chain being written, "" in a regular chain
	prio int    // its priority
	// sets declared in the current table: name -> kind ("saddr4",
	// "saddr6", "port", "concat4", "vmap").
	sets  map[string]string
	nsets int
}

// genRuleset makes the random ruleset of seed.
func genRuleset(seed uint64) string {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	fmt.Fprintf(&g.b, "# generated ruleset, seed %d\n", seed)
	fams := []string{"inet", "ip", "ip6"}
	ntables := 1 + g.r.IntN(3)
	for i := range ntables {
		g.table(fams[g.r.IntN(len(fams))], fmt.Sprintf("g%d", i))
	}
	return g.b.String()
}

func (g *gen) pick(list []string) string { return list[g.r.IntN(len(list))] }
func (g *gen) chance(p float64) bool     { return g.r.Float64() < p }
func (g *gen) port() uint16              { return genPorts[g.r.IntN(len(genPorts))] }

// v4 says whether an address match in this table is IPv4: always in ip,
// never in ip6, either in inet.
func (g *gen) v4() bool {
	switch g.fam {
	case "ip":
		return true
	case "ip6":
		return false
	}
	return g.chance(0.6)
}

func (g *gen) table(fam, name string) {
	g.fam, g.sets = fam, map[string]string{}
	fmt.Fprintf(&g.b, "table %s %s {\n", fam, name)
	if g.chance(0.04) {
		// A dormant table is loaded and evaluates nothing.
		g.b.WriteString("\tflags dormant\n")
	}
	// Named sets first, so rules can use them.
	for range g.r.IntN(4) {
		g.namedSet()
	}
	nreg := g.r.IntN(4)
	regs := make([]string, nreg)
	for i := range regs {
		regs[i] = fmt.Sprintf("r%d", i)
	}
	// Regular chains: chain i jumps only to chains after it.
	for i, c := range regs {
		fmt.Fprintf(&g.b, "\tchain %s {\n", c)
		for range 1 + g.r.IntN(5) {
			g.rule(regs[i+1:], true, false)
		}
		g.b.WriteString("\t}\n")
	}
	nbase := 1 + g.r.IntN(2)
	for i := range nbase {
		var hook string
		switch x := g.r.Float64(); {
		case x < 0.5:
			hook = "input"
		case x < 0.75:
			hook = "prerouting"
		case x < 0.88:
			hook = "forward"
		default:
			hook = "output"
		}
		g.hook = hook
		nat := hook == "prerouting" && g.chance(0.4) || hook == "input" && g.chance(0.1) || hook == "output" && g.chance(0.3)
		typ, policy := "filter", "accept"
		if !nat && g.chance(0.35) {
			policy = "drop"
		}
		if nat {
			typ = "nat"
		}
		prios := []int{-300, -200, -150, -100, -10, 0, 0, 10, 50, 100}
		if nat {
			// The kernel refuses NAT chains at conntrack's priority
			// (-200) or before.
			prios = []int{-199, -150, -100, -100, -10, 0, 50, 100}
		}
		g.prio = prios[g.r.IntN(len(prios))]
		fmt.Fprintf(&g.b, "\tchain b%d {\n\t\ttype %s hook %s priority %d; policy %s;\n", i, typ, hook, g.prio, policy)
		if (hook == "output" || hook == "forward") && !nat {
			// The server's answers to the clients (SYN-ACKs, ICMP
			// errors) leave through output, the far namespace's pass
			// forward: let them go, so that what the probes see is
			// decided on the way in.
			g.b.WriteString("\t\tct state established,related accept\n")
		} else if policy == "drop" && g.chance(0.5) {
			// Often, as real rulesets do, let loopback and replies in.
			g.b.WriteString("\t\tct state established,related accept\n")
			if g.chance(0.5) {
				g.b.WriteString("\t\tiif \"lo\" accept\n")
			}
		}
		for range 1 + g.r.IntN(7) {
			if nat {
				g.natRule(hook)
			} else {
				g.rule(regs, false, true)
			}
		}
		g.b.WriteString("\t}\n")
	}
	g.hook = ""
	g.b.WriteString("}\n")
}

func (g *gen) namedSet() {
	g.nsets++
	name := fmt.Sprintf("s%d", g.nsets)
	switch g.r.IntN(5) {
	case 0, 1:
		v4 := g.v4()
		typ, nets, kind := "ipv4_addr", genNets4, "saddr4"
		if !v4 {
			typ, nets, kind = "ipv6_addr", genNets6, "saddr6"
		}
		if g.chance(0.2) {
			// Elements that expire: in an hour, long after the test.
			hosts := genHosts4
			if !v4 {
				hosts = genHosts6
			}
			fmt.Fprintf(&g.b, "\tset %s {\n\t\ttype %s\n\t\tflags timeout\n\t\telements = { %s timeout 1h }\n\t}\n", name, typ, g.pick(hosts))
			g.sets[name] = kind
			return
		}
		fmt.Fprintf(&g.b, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n\t\tauto-merge\n\t\telements = { %s }\n\t}\n", name, typ, g.elems(nets, 1+g.r.IntN(3)))
		g.sets[name] = kind
	case 2:
		fmt.Fprintf(&g.b, "\tset %s {\n\t\ttype inet_service\n\t\tflags interval\n\t\telements = { %s }\n\t}\n", name, g.portElems(1+g.r.IntN(4)))
		g.sets[name] = "port"
	case 3:
		if g.fam == "ip6" {
			g.nsets--
			return
		}
		var el []string
		for range 1 + g.r.IntN(4) {
			el = append(el, g.pick(genHosts4)+" . "+fmt.Sprint(g.port()))
		}
		fmt.Fprintf(&g.b, "\tset %s {\n\t\ttype ipv4_addr . inet_service\n\t\telements = { %s }\n\t}\n", name, strings.Join(dedupe(el), ", "))
		g.sets[name] = "concat4"
	case 4:
		var el []string
		ports := g.distinctPorts(1 + g.r.IntN(4))
		for _, p := range ports {
			el = append(el, fmt.Sprintf("%d : %s", p, g.pick([]string{"accept", "drop", "accept", "drop"})))
		}
		fmt.Fprintf(&g.b, "\tmap %s {\n\t\ttype inet_service : verdict\n\t\telements = { %s }\n\t}\n", name, strings.Join(el, ", "))
		g.sets[name] = "vmap"
	}
}

func dedupe(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// elems picks n networks for an interval set or an anonymous set. Sets
// with auto-merge take overlapping ranges; anonymous sets do not, so
// callers of those pick one.
func (g *gen) elems(nets []string, n int) string {
	var el []string
	for range n {
		el = append(el, g.pick(nets))
	}
	return strings.Join(dedupe(el), ", ")
}

func (g *gen) distinctPorts(n int) []uint16 {
	var ps []uint16
	for range n {
		ps = append(ps, g.port())
	}
	slices.Sort(ps)
	return slices.Compact(ps)
}

// portElems makes n port elements, some of them ranges, none overlapping.
func (g *gen) portElems(n int) string {
	var el []string
	used := map[uint16]bool{}
	for _, p := range g.distinctPorts(n) {
		if used[p] {
			continue
		}
		if g.chance(0.3) {
			end := p + uint16(1+g.r.IntN(200))
			clash := false
			for q := range used {
				if q >= p && q <= end {
					clash = true
				}
			}
			for _, q := range genPorts {
				if q > p && q <= end && !used[q] {
					used[q] = true // swallowed by the range
				}
			}
			if !clash {
				el = append(el, fmt.Sprintf("%d-%d", p, end))
				used[p] = true
				continue
			}
		}
		used[p] = true
		el = append(el, fmt.Sprint(p))
	}
	return strings.Join(el, ", ")
}

// match makes a random match of a rule; empty sometimes.
func (g *gen) match() string {
	var parts []string
	proto := ""
	// The transport first: a port match needs to know it.
	switch g.r.IntN(4) {
	case 0:
		proto = "tcp"
	case 1:
		proto = "udp"
	case 2:
		proto = "th"
	}
	// One address family for the whole rule: nft refuses "ip saddr …
	// ip6 daddr …".
	v4 := g.v4()
	if g.chance(0.45) {
		fam, nets, kind := "ip", genNets4, "saddr4"
		if !v4 {
			fam, nets, kind = "ip6", genNets6, "saddr6"
		}
		if name := g.setOf(kind); name != "" && g.chance(0.4) {
			neg := ""
			if g.chance(0.25) {
				neg = "!= "
			}
			parts = append(parts, fmt.Sprintf("%s saddr %s@%s", fam, neg, name))
		} else {
			switch g.r.IntN(4) {
			case 0:
				parts = append(parts, fmt.Sprintf("%s saddr != %s", fam, g.pick(nets)))
			case 1:
				parts = append(parts, fmt.Sprintf("%s saddr { %s }", fam, g.pick(nets)))
			default:
				parts = append(parts, fmt.Sprintf("%s saddr %s", fam, g.pick(nets)))
			}
		}
	}
	if g.chance(0.15) {
		// Concatenated lookups, anonymous or named: IPv4 ones, which an
		// IPv6 address match before would contradict.
		if len(parts) > 0 && strings.HasPrefix(parts[0], "ip6") {
			parts = nil
		}
		if name := g.setOf("concat4"); name != "" && g.fam != "ip6" && g.chance(0.5) {
			return strings.Join(append(parts, fmt.Sprintf("ip saddr . tcp dport @%s", name)), " ")
		}
		if g.fam != "ip6" {
			var el []string
			for range 1 + g.r.IntN(3) {
				el = append(el, g.pick(genHosts4)+" . "+fmt.Sprint(g.port()))
			}
			p := g.pick([]string{"tcp", "udp"})
			return strings.Join(append(parts, fmt.Sprintf("ip saddr . %s dport { %s }", p, strings.Join(dedupe(el), ", "))), " ")
		}
	}
	if proto != "" {
		if proto == "th" && g.chance(0.5) {
			parts = append(parts, "meta l4proto "+g.pick([]string{"tcp", "udp", "{ tcp, udp }"}))
		}
		switch g.r.IntN(6) {
		case 0:
			p := g.port()
			parts = append(parts, fmt.Sprintf("%s dport %d-%d", proto, p, p+1+uint16(g.r.IntN(3000))))
		case 1:
			parts = append(parts, fmt.Sprintf("%s dport { %s }", proto, g.portElems(1+g.r.IntN(4))))
		case 2:
			if name := g.setOf("port"); name != "" {
				parts = append(parts, fmt.Sprintf("%s dport @%s", proto, name))
			} else {
				parts = append(parts, fmt.Sprintf("%s dport != %d", proto, g.port()))
			}
		default:
			parts = append(parts, fmt.Sprintf("%s dport %d", proto, g.port()))
		}
	} else if g.chance(0.3) {
		parts = append(parts, "meta l4proto "+g.pick([]string{"tcp", "udp"}))
	}
	if g.chance(0.1) {
		if v4 {
			parts = append(parts, "ip daddr "+g.pick([]string{"192.168.77.1", "!= 192.168.99.1", "172.31.9.2", "{ 127.0.0.1, 192.168.77.1 }", "172.31.9.0/24"}))
		} else {
			parts = append(parts, "ip6 daddr "+g.pick([]string{"fd00:77::1", "!= ::1", "fd00:9::2", "fd00:9::/64"}))
		}
	}
	if g.chance(0.08) && (proto == "" || proto == "th") {
		switch g.fam {
		case "inet":
			if v4 {
				parts = append(parts, "meta nfproto ipv4")
			} else {
				parts = append(parts, "meta nfproto ipv6")
			}
		case "ip":
			parts = append(parts, "ip protocol "+g.pick([]string{"tcp", "udp", "{ tcp, udp }", "!= udp"}))
		case "ip6":
			parts = append(parts, "ip6 nexthdr "+g.pick([]string{"tcp", "udp", "!= tcp"}))
		}
	}
	if g.chance(0.05) {
		parts = append(parts, g.pick([]string{"meta mark 0x2", "meta mark != 0x2", "meta mark 0", "ct mark 0x5", "ct mark != 0x5"}))
	}
	if g.chance(0.04) {
		// Packet fields Evaluate may not know; it must say unknown
		// rather than guess.
		if v4 {
			parts = append(parts, g.pick([]string{"ip saddr & 255.255.255.0 == 192.168.77.0", "ip ttl 64", "ip ttl != 64", "meta pkttype host", "meta length > 100", "meta iiftype loopback", "ip dscp cs0",
				"ip frag-off & 0x1fff != 0", "ip frag-off & 0x1fff == 0"}))
		} else {
			parts = append(parts, g.pick([]string{"ip6 saddr & ffff:ffff:: == 2001:db8::", "ip6 hoplimit 64", "meta pkttype != broadcast", "meta iiftype ether", "meta length < 100"}))
		}
	}
	if g.chance(0.03) && proto != "" && proto != "th" {
		parts = append(parts, proto+" sport "+g.pick([]string{"20000-65535", "!= 53", "1-1023"}))
	}
	if proto == "tcp" && g.chance(0.1) {
		parts = append(parts, g.pick([]string{"tcp flags syn", "tcp flags & (syn | ack) == syn", "tcp flags ack"}))
	}
	if g.hook == "output" && g.chance(0.15) {
		// The local client's socket: its owner is the test's (root).
		parts = append(parts, g.pick([]string{"meta skuid 0", "meta skuid != 0", "meta skgid 0"}))
	}
	if g.hook == "forward" && g.chance(0.3) {
		parts = append(parts, g.pick([]string{`oifname "fwd0"`, `oifname != "fwd0"`, `oifname "veth*"`}))
	}
	if g.chance(0.15) && g.hook != "output" {
		parts = append(parts, g.pick([]string{`iifname "veth*"`, `iifname "lo"`, `iifname != "lo"`, `iif "lo"`, `iifname "veth0"`, `iifname { "lo", "veth0" }`}))
	}
	if g.chance(0.12) {
		parts = append(parts, g.pick([]string{"ct state new", "ct state established,related", "ct state != established", "ct state { new, untracked }", "ct state invalid"}))
	}
	if g.chance(0.12) {
		parts = append(parts, g.pick([]string{"fib daddr type local", "fib daddr type != local", "fib daddr type { local, broadcast }"}))
	}
	return strings.Join(parts, " ")
}

// setOf names a declared set of kind, or "".
func (g *gen) setOf(kind string) string {
	var names []string
	for n, k := range g.sets {
		if k == kind {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return ""
	}
	slices.Sort(names)
	return g.pick(names)
}

// rule writes a filter rule. regs are the regular chains it may jump to;
// inRegular allows return; base chains may not return.
func (g *gen) rule(regs []string, inRegular, base bool) {
	m := g.match()
	verdicts := []string{"accept", "drop", "reject", "counter", "counter accept", "counter drop", "accept", "drop"}
	if g.chance(0.05) {
		// Statements the first packet's fate may hang on: a mark for
		// later rules to match, a rate limit Evaluate cannot settle.
		verdicts = []string{"meta mark set 0x2", "meta mark set 0x2 accept", "limit rate 5/second accept", "limit rate over 1/minute drop",
			"ct mark set 0x5", `log prefix "gen " accept`, "log", "ct state vmap { new : accept, established : accept, invalid : drop }"}
		if g.hook == "prerouting" && g.prio < -200 {
			// Before conntrack: take the packet out of it.
			verdicts = append(verdicts, "notrack", "notrack", "notrack")
		}
	}
	if g.chance(0.03) {
		switch g.fam {
		case "inet":
			verdicts = []string{"reject with icmpx admin-prohibited", "reject with icmpx host-unreachable"}
		case "ip":
			verdicts = []string{"reject with icmp host-prohibited", "reject with icmp net-unreachable"}
		case "ip6":
			verdicts = []string{"reject with icmpv6 admin-prohibited", "reject with icmpv6 addr-unreachable"}
		}
	}
	if inRegular {
		verdicts = append(verdicts, "return", "return")
	}
	if len(regs) > 0 {
		for range 3 {
			verdicts = append(verdicts, "jump "+g.pick(regs), "goto "+g.pick(regs))
		}
	}
	v := g.pick(verdicts)
	if v == "reject" && strings.Contains(m, "tcp dport") && !strings.Contains(m, "udp") && g.chance(0.5) {
		v = "reject with tcp reset"
	}
	if g.chance(0.03) && len(regs) > 0 && !strings.Contains(m, "tcp") && !strings.Contains(m, "udp") {
		v = fmt.Sprintf("meta l4proto vmap { tcp : jump %s, udp : %s }", g.pick(regs), g.pick([]string{"drop", "accept", "goto " + g.pick(regs)}))
	} else if g.chance(0.04) && g.fam != "ip6" {
		// A verdict map keyed by the source address.
		v = "ip saddr vmap { 192.168.77.0/24 : accept, 198.51.100.0/24 : drop, 10.9.0.0/16 : " + g.pick([]string{"accept", "drop"}) + " }"
		if strings.Contains(m, "ip6") || strings.Contains(m, "ipv6") {
			m = ""
		}
	} else if g.chance(0.12) {
		// A verdict map ends the rule instead.
		if name := g.setOf("vmap"); name != "" && g.chance(0.5) {
			v = fmt.Sprintf("th dport vmap @%s", name)
		} else {
			var el []string
			for _, p := range g.distinctPorts(1 + g.r.IntN(4)) {
				vv := g.pick([]string{"accept", "drop"})
				if len(regs) > 0 && g.chance(0.3) {
					vv = "jump " + g.pick(regs)
				}
				el = append(el, fmt.Sprintf("%d : %s", p, vv))
			}
			// The map's key must not contradict the match's protocol
			// (nft refuses "udp dport 53 tcp dport vmap …").
			key := g.pick([]string{"th", "tcp", "udp"})
			if strings.Contains(m, "tcp") || strings.Contains(m, "udp") {
				key = "th"
			}
			v = fmt.Sprintf("%s dport vmap { %s }", key, strings.Join(el, ", "))
		}
	}
	if m == "" && (v == "accept" || v == "drop" || strings.HasPrefix(v, "reject")) && base && g.chance(0.7) {
		// An unconditional verdict in a base chain hides the rest of it;
		// keep it rarer.
		m = fmt.Sprintf("th dport %d", g.port())
	}
	fmt.Fprintf(&g.b, "\t\t%s\n", strings.TrimSpace(m+" "+v))
}

// natRule writes a rule of a NAT chain: a redirect or a DNAT to the far
// namespace, or now and then a plain verdict.
func (g *gen) natRule(hook string) {
	proto := g.pick([]string{"tcp", "udp"})
	p := g.port()
	var cond string
	if g.chance(0.3) {
		if g.fam == "ip6" || g.fam == "inet" && g.chance(0.4) {
			cond = "ip6 saddr " + g.pick(genNets6) + " "
		} else {
			cond = "ip saddr " + g.pick(genNets4) + " "
		}
	}
	kind := g.r.IntN(5)
	switch {
	case hook == "input":
		// Only snat and masquerade work on input: keep to verdicts.
		kind = 3
	case hook == "output" && kind == 2:
		// No DNAT elsewhere for a local client: redirects only.
		kind = 0
	}
	switch kind {
	case 0, 1:
		fmt.Fprintf(&g.b, "\t\t%s%s dport %d redirect to :%d\n", cond, proto, p, genRedirectTo[g.r.IntN(len(genRedirectTo))])
	case 2:
		// DNAT to the far namespace: the packet takes the forward path.
		to := genRedirectTo[g.r.IntN(len(genRedirectTo))]
		switch {
		case g.fam == "ip" || g.fam == "inet" && !strings.HasPrefix(cond, "ip6"):
			fam := ""
			if g.fam == "inet" {
				fam = "ip "
				if cond == "" {
					cond = "meta nfproto ipv4 "
				}
			}
			fmt.Fprintf(&g.b, "\t\t%s%s dport %d dnat %sto 172.31.9.2:%d\n", cond, proto, p, fam, to)
		default:
			fam := ""
			if g.fam == "inet" {
				fam = "ip6 "
				if cond == "" {
					cond = "meta nfproto ipv6 "
				}
			}
			fmt.Fprintf(&g.b, "\t\t%s%s dport %d dnat %sto [fd00:9::2]:%d\n", cond, proto, p, fam, to)
		}
	case 3:
		fmt.Fprintf(&g.b, "\t\t%s%s dport %d %s\n", cond, proto, p, g.pick([]string{"accept", "drop", "counter"}))
	case 4:
		fmt.Fprintf(&g.b, "\t\t%s%s dport %d-%d redirect to :%d\n", cond, proto, p, p+1+uint16(g.r.IntN(100)), genRedirectTo[g.r.IntN(len(genRedirectTo))])
	}
}

// TestGenRulesetDeterministic: a seed names one ruleset, so a failure's
// seed reproduces it.
func TestGenRulesetDeterministic(t *testing.T) {
	for seed := range uint64(50) {
		a, b := genRuleset(seed), genRuleset(seed)
		if a != b {
			t.Fatalf("genRuleset(%d) differs between two calls", seed)
		}
		if !strings.Contains(a, "hook ") {
			t.Fatalf("genRuleset(%d) has no base chain:\n%s", seed, a)
		}
	}
	if genRuleset(1) == genRuleset(2) {
		t.Error("genRuleset(1) == genRuleset(2)")
	}
}

// genIptables makes the random iptables-restore input of seed for one
// family (v6: ip6tables), with filter and nat tables: the matches
// iptables-nft writes as xt expressions (tcp, udp, multiport, conntrack,
// state, addrtype, comment, mark) and the targets ACCEPT, DROP, REJECT,
// RETURN, LOG, user chains, DNAT and REDIRECT. Both iptables-nft-restore
// and iptables-legacy-restore take it.
func genIptables(seed uint64, v6 bool) string {
	g := &gen{r: rand.New(rand.NewPCG(seed, seed^0x51ed270b27a3c1d5))}
	nets, hosts, far := genNets4, genHosts4, "172.31.9.2"
	rejects := []string{"icmp-port-unreachable", "icmp-host-prohibited", "icmp-admin-prohibited"}
	if v6 {
		nets, hosts, far = genNets6, genHosts6, "[fd00:9::2]"
		rejects = []string{"icmp6-port-unreachable", "icmp6-adm-prohibited", "icmp6-addr-unreachable"}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# generated iptables rules, seed %d\n*filter\n", seed)
	policy := g.pick([]string{"ACCEPT", "ACCEPT", "DROP"})
	fmt.Fprintf(&b, ":INPUT %s [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n", policy)
	nuser := g.r.IntN(3)
	for i := range nuser {
		fmt.Fprintf(&b, ":U%d - [0:0]\n", i)
	}
	if policy == "DROP" && g.chance(0.7) {
		b.WriteString("-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n")
	}
	rule := func(chain string, later []string, user bool) {
		var m []string
		proto := ""
		if g.chance(0.4) {
			neg := ""
			if g.chance(0.2) {
				neg = "! "
			}
			m = append(m, neg+"-s "+g.pick(nets))
		}
		if g.chance(0.1) {
			m = append(m, "-d "+g.pick(hosts))
		}
		if g.chance(0.15) {
			m = append(m, g.pick([]string{"-i lo", "! -i lo", "-i veth+", "-i veth0"}))
		}
		switch g.r.IntN(5) {
		case 0, 1:
			proto = g.pick([]string{"tcp", "udp"})
			p := g.port()
			switch g.r.IntN(4) {
			case 0:
				m = append(m, fmt.Sprintf("-p %[1]s -m %[1]s --dport %d:%d", proto, p, p+uint16(1+g.r.IntN(2000))))
			case 1:
				m = append(m, fmt.Sprintf("-p %[1]s -m %[1]s ! --dport %d", proto, p))
			default:
				m = append(m, fmt.Sprintf("-p %[1]s -m %[1]s --dport %d", proto, p))
			}
		case 2:
			proto = g.pick([]string{"tcp", "udp"})
			var ps []string
			for _, p := range g.distinctPorts(1 + g.r.IntN(4)) {
				ps = append(ps, fmt.Sprint(p))
			}
			if g.chance(0.3) {
				ps[len(ps)-1] += ":" + fmt.Sprint(g.port()+uint16(g.r.IntN(3000)))
				// A range must run upwards: keep it when it does.
				var lo, hi int
				fmt.Sscanf(ps[len(ps)-1], "%d:%d", &lo, &hi)
				if hi < lo {
					ps[len(ps)-1] = fmt.Sprint(lo)
				}
			}
			neg := ""
			if g.chance(0.15) {
				neg = "! "
			}
			m = append(m, fmt.Sprintf("-p %s -m multiport %s--dports %s", proto, neg, strings.Join(ps, ",")))
		case 3:
			if g.chance(0.5) {
				proto = g.pick([]string{"tcp", "udp"})
				m = append(m, "-p "+proto)
			}
		}
		if g.chance(0.15) {
			m = append(m, g.pick([]string{"-m conntrack --ctstate NEW", "-m conntrack --ctstate ESTABLISHED,RELATED", "-m conntrack ! --ctstate INVALID",
				"-m state --state NEW", "-m conntrack --ctstate INVALID"}))
		}
		if g.chance(0.12) {
			m = append(m, g.pick([]string{"-m addrtype --dst-type LOCAL", "-m addrtype ! --dst-type LOCAL", "-m addrtype --dst-type LOCAL --limit-iface-in"}))
		}
		if g.chance(0.05) {
			m = append(m, g.pick([]string{"-m mark --mark 0x2", "-m mark ! --mark 0x2/0xff"}))
		}
		if g.chance(0.15) {
			m = append(m, fmt.Sprintf("-m comment --comment \"rule %d\"", g.r.IntN(100)))
		}
		targets := []string{"ACCEPT", "DROP", "REJECT", "ACCEPT", "DROP"}
		if user {
			targets = append(targets, "RETURN")
		}
		for _, c := range later {
			targets = append(targets, c, c)
		}
		if g.chance(0.05) {
			targets = []string{`LOG --log-prefix "gen "`}
		}
		t := g.pick(targets)
		if t == "REJECT" {
			if proto == "tcp" && g.chance(0.5) {
				t += " --reject-with tcp-reset"
			} else if g.chance(0.5) {
				t += " --reject-with " + g.pick(rejects)
			}
		}
		fmt.Fprintf(&b, "-A %s %s -j %s\n", chain, strings.Join(m, " "), t)
	}
	var users []string
	for i := range nuser {
		users = append(users, fmt.Sprintf("U%d", i))
	}
	for range 2 + g.r.IntN(7) {
		rule("INPUT", users, false)
	}
	for i, u := range users {
		for range 1 + g.r.IntN(4) {
			rule(u, users[i+1:], true)
		}
	}
	if g.chance(0.3) {
		// The forward path, to the far namespace; its answers come back
		// through FORWARD too, and are let go.
		b.WriteString("-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n")
		for range 1 + g.r.IntN(3) {
			rule("FORWARD", nil, false)
		}
	}
	b.WriteString("COMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	for range g.r.IntN(4) {
		proto := g.pick([]string{"tcp", "udp"})
		src := ""
		if g.chance(0.3) {
			src = "-s " + g.pick(nets) + " "
		}
		to := genRedirectTo[g.r.IntN(len(genRedirectTo))]
		if g.chance(0.6) {
			fmt.Fprintf(&b, "-A PREROUTING %s-p %s -m %s --dport %d -j REDIRECT --to-ports %d\n", src, proto, proto, g.port(), to)
		} else {
			fmt.Fprintf(&b, "-A PREROUTING %s-p %s -m %s --dport %d -j DNAT --to-destination %s:%d\n", src, proto, proto, g.port(), far, to)
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}
