// Command gen writes the firewall benchmark's ruleset in nft(8)'s language
// on standard output, for `nft -f`: a table inet filter whose input chain
// holds most of -rules rules of mixed shapes (port accepts and drops, source
// drops, anonymous sets, ranges, interface wildcards, th dport, limits, log,
// counters, comments, jumps to -chains regular chains of -per rules each), a
// forward and an output chain, a table ip nat with DNAT rules, and a named
// interval set of -elements non-overlapping IPv4 elements (single
// addresses, prefixes and ranges) that a rule near the top of input drops.
//
// The listening ports the benchmark opens (-ports) are kept out of the
// filler rules and decided near the end of the walk, by rules written for
// them: a packet to them passes the blocklist and most of the input chain
// before its verdict. The output is the same for the same -seed.
//
//	gen -rules 10000 -elements 100000 -ports 22,80,443 >ruleset.nft
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

func main() {
	rules := flag.Int("rules", 10000, "rules in all, over every chain")
	elements := flag.Int("elements", 100000, "elements of the named interval set")
	chains := flag.Int("chains", 20, "regular chains, jumped to from input")
	per := flag.Int("per", 100, "rules in each regular chain")
	portList := flag.String("ports", "", "comma-separated listening ports, decided by rules of their own at the end of input")
	seed := flag.Uint64("seed", 13, "seed of the random choices")
	flag.Parse()

	var ports []int
	for _, f := range strings.Split(*portList, ",") {
		if f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p < 1 || p > 65535 {
			fmt.Fprintf(os.Stderr, "gen: -ports: %q is not a port\n", f)
			os.Exit(2)
		}
		ports = append(ports, p)
	}
	const natRules, fwdRules = 20, 30
	if *chains < 1 {
		*chains = 1
	}
	// input: the fixed head (5 rules), the filler, the listeners' rules.
	input := *rules - *chains**per - natRules - fwdRules - 1
	if input < 5+len(ports)+1 {
		fmt.Fprintf(os.Stderr, "gen: -rules %d leaves no room for the input chain (regular chains take %d)\n", *rules, *chains**per)
		os.Exit(2)
	}
	g := &gen{r: rand.New(rand.NewPCG(*seed, 1)), listen: map[int]bool{}, chains: *chains}
	for _, p := range ports {
		g.listen[p] = true
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<16)
	defer w.Flush()

	fmt.Fprintln(w, "table inet filter {")
	g.blocklist(w, *elements)
	fmt.Fprintln(w, "\tchain input {\n\t\ttype filter hook input priority filter; policy drop;")
	head := []string{
		`ct state established,related accept comment "replies"`,
		`ct state invalid counter drop`,
		`iif "lo" accept comment "loopback"`,
		`ip saddr @blocklist counter drop comment "blocklist"`,
		`ip protocol icmp accept`,
	}
	for _, r := range head {
		fmt.Fprintf(w, "\t\t%s\n", r)
	}
	filler := input - len(head) - len(ports)
	for i := 0; i < filler; i++ {
		fmt.Fprintf(w, "\t\t%s\n", g.inputRule(i))
	}
	for i, p := range ports {
		fmt.Fprintf(w, "\t\t%s\n", g.listenerRule(i, p))
	}
	fmt.Fprintln(w, "\t}")
	for c := 0; c < *chains; c++ {
		fmt.Fprintf(w, "\tchain svc_%d {\n", c)
		for i := 0; i < *per-1; i++ {
			fmt.Fprintf(w, "\t\t%s\n", g.chainRule())
		}
		fmt.Fprintf(w, "\t\tip saddr 10.%d.0.0/16 accept comment \"svc_%d from its subnet\"\n", c%256, c)
		fmt.Fprintln(w, "\t}")
	}
	fmt.Fprintln(w, "\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;")
	fmt.Fprintln(w, "\t\tct state established,related accept")
	for i := 0; i < fwdRules-1; i++ {
		fmt.Fprintf(w, "\t\tip daddr 172.17.0.%d tcp dport %d accept comment \"container %d\"\n", 2+i, g.port(), i)
	}
	fmt.Fprintln(w, "\t}")
	fmt.Fprintln(w, "\tchain output {\n\t\ttype filter hook output priority filter; policy accept;")
	fmt.Fprintln(w, "\t\tmeta skuid 0 accept")
	fmt.Fprintln(w, "\t}")
	fmt.Fprintln(w, "}")

	fmt.Fprintln(w, "table ip nat {")
	fmt.Fprintln(w, "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;")
	for i := 0; i < natRules; i++ {
		fmt.Fprintf(w, "\t\tiifname \"eth*\" tcp dport %d dnat to 172.17.0.%d:%d\n", g.port(), 2+i, 1024+g.r.IntN(8000))
	}
	fmt.Fprintln(w, "\t}")
	fmt.Fprintln(w, "}")
}

type gen struct {
	r      *rand.Rand
	listen map[int]bool
	chains int
}

// port is a random port no listener has.
func (g *gen) port() int {
	for {
		p := 1024 + g.r.IntN(64000)
		if !g.listen[p] && !g.listen[p+1] && !g.listen[p+2] {
			return p
		}
	}
}

// addr is a random address of public-looking space, outside the blocklist's.
func (g *gen) addr() string {
	return fmt.Sprintf("%d.%d.%d.%d", 100+g.r.IntN(100), g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254))
}

func (g *gen) inputRule(i int) string {
	switch g.r.IntN(14) {
	case 0, 1:
		return fmt.Sprintf("tcp dport %d accept", g.port())
	case 2:
		return fmt.Sprintf("udp dport %d counter accept comment \"udp service %d\"", g.port(), i)
	case 3, 4:
		return fmt.Sprintf("ip saddr %s counter drop", g.addr())
	case 5:
		return fmt.Sprintf("ip saddr %s/24 tcp dport %d accept comment \"partner %d\"", g.addr(), g.port(), i)
	case 6:
		return fmt.Sprintf("ip6 saddr 2001:db8:%x::/48 drop", g.r.IntN(65536))
	case 7:
		return fmt.Sprintf("tcp dport { %d, %d, %d } counter accept", g.port(), g.port(), g.port())
	case 8:
		p := g.port()
		return fmt.Sprintf("tcp dport %d-%d drop", p, p+2)
	case 9:
		return fmt.Sprintf("iifname \"eth%d*\" tcp dport %d accept", g.r.IntN(4), g.port())
	case 10:
		return fmt.Sprintf("meta l4proto { tcp, udp } th dport %d accept", g.port())
	case 11:
		return fmt.Sprintf("tcp dport %d ct state new limit rate 10/second accept", g.port())
	case 12:
		return fmt.Sprintf("tcp dport %d log prefix \"in-%d \" counter", g.port(), i)
	default:
		return fmt.Sprintf("tcp dport %d jump svc_%d", g.port(), g.r.IntN(g.chains))
	}
}

func (g *gen) chainRule() string {
	switch g.r.IntN(5) {
	case 0:
		return fmt.Sprintf("ip saddr %s drop", g.addr())
	case 1:
		return fmt.Sprintf("ip saddr %s/24 accept comment \"office\"", g.addr())
	case 2:
		return fmt.Sprintf("ip6 saddr 2001:db8:%x::/48 accept", g.r.IntN(65536))
	case 3:
		return "meta mark 0x2a counter accept"
	default:
		return fmt.Sprintf("iifname \"wg%d\" accept", g.r.IntN(8))
	}
}

// listenerRule decides a listening port, in one of a few ways the walk
// must follow: open to all, to the LAN only, through a regular chain, or
// left to the drop policy.
func (g *gen) listenerRule(i, p int) string {
	switch i % 5 {
	case 0:
		return fmt.Sprintf("tcp dport %d counter accept comment \"port %d open\"", p, p)
	case 1:
		return fmt.Sprintf("ip saddr { 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 } tcp dport %d accept comment \"port %d from the LAN\"", p, p)
	case 2:
		return fmt.Sprintf("tcp dport %d jump svc_%d", p, i%g.chains)
	case 3:
		return fmt.Sprintf("meta l4proto { tcp, udp } th dport %d accept", p)
	default:
		return fmt.Sprintf("tcp dport %d counter drop comment \"port %d closed\"", p, p)
	}
}

// blocklist writes the named interval set: n non-overlapping, non-adjacent
// elements from 1.0.0.0 up, a mix of single addresses, aligned prefixes
// and ranges, with gaps between them.
func (g *gen) blocklist(w *bufio.Writer, n int) {
	fmt.Fprintln(w, "\tset blocklist {\n\t\ttype ipv4_addr; flags interval;")
	if n == 0 {
		fmt.Fprintln(w, "\t}")
		return
	}
	fmt.Fprint(w, "\t\telements = {")
	cur := uint32(1) << 24 // 1.0.0.0
	for i := 0; i < n; i++ {
		cur += 2 + uint32(g.r.IntN(1500))
		if i > 0 {
			w.WriteString(",")
		}
		if i%8 == 0 {
			w.WriteString("\n\t\t\t")
		} else {
			w.WriteString(" ")
		}
		switch k := g.r.IntN(10); {
		case k < 5:
			w.WriteString(ip4(cur))
			cur++
		case k < 8:
			bits := 24 + g.r.IntN(5)
			size := uint32(1) << (32 - bits)
			cur = (cur + size - 1) &^ (size - 1)
			fmt.Fprintf(w, "%s/%d", ip4(cur), bits)
			cur += size
		default:
			size := 2 + uint32(g.r.IntN(300))
			fmt.Fprintf(w, "%s-%s", ip4(cur), ip4(cur+size-1))
			cur += size
		}
		if cur >= 100<<24 {
			fmt.Fprintln(os.Stderr, "gen: the blocklist ran past 100.0.0.0; ask for fewer elements")
			os.Exit(2)
		}
	}
	fmt.Fprintln(w, "\n\t\t}")
	fmt.Fprintln(w, "\t}")
}

func ip4(a uint32) string {
	return fmt.Sprintf("%d.%d.%d.%d", a>>24, a>>16&255, a>>8&255, a&255)
}
