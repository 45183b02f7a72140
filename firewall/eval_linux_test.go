//go:build linux

package firewall_test

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/internal/testnet"
)

// TestIntegrationEvaluateSemantics loads rulesets that each turn on one
// point of nftables' semantics into a namespace, evaluates a packet from
// the other end of its veth pair, and checks the verdict and the deciding
// rule (named by its comment) against what was expected — and the verdict
// against a real connection.
func TestIntegrationEvaluateSemantics(t *testing.T) {
	n := testnet.NewNamespace(t)
	const port = 7100
	n.Listen(t, port)
	n.Listen(t, port+1)
	cases := []struct {
		name, rules string
		port        uint16
		verdict     firewall.Verdict
		decider     string // the deciding rule's comment, or "policy"
	}{
		{"drop ends the walk", `table inet a { chain c { type filter hook input priority 0; tcp dport 7100 drop comment "D"; }; }`, port, firewall.Drop, "D"},
		{"accept ends only its base chain", `table inet a { chain c { type filter hook input priority 0; tcp dport 7100 accept comment "A"; }; }
table inet b { chain c { type filter hook input priority 10; tcp dport 7100 drop comment "D"; }; }`, port, firewall.Drop, "D"},
		{"policy drop", `table inet a { chain c { type filter hook input priority 0; policy drop; tcp dport 7101 accept comment "A"; }; }`, port, firewall.Drop, "policy"},
		{"jump and return", `table inet a { chain sub { tcp dport 7100 return comment "R"; drop comment "D2"; }
 chain c { type filter hook input priority 0; policy drop; jump sub comment "J"; tcp dport 7100 accept comment "A"; }; }`, port, firewall.Accept, "A"},
		{"goto does not come back", `table inet a { chain sub { tcp dport 7100 accept comment "A"; }
 chain c { type filter hook input priority 0; goto sub comment "G"; drop comment "D"; }; }`, port + 1, firewall.Accept, ""},
		{"interval set", `table inet a { set s { type ipv4_addr; flags interval; elements = { 10.0.0.0/9, 10.200.0.0/13 } }
 chain c { type filter hook input priority 0; ip saddr @s drop comment "D"; }; }`, port, firewall.Drop, "D"},
		{"concatenated set", `table inet a { set s { type ipv4_addr . inet_service; flags interval; elements = { 10.0.0.0/8 . 7100-7100 } }
 chain c { type filter hook input priority 0; ip saddr . tcp dport @s drop comment "D"; }; }`, port, firewall.Drop, "D"},
		{"verdict map", `table inet a { chain c { type filter hook input priority 0; tcp dport vmap { 7100 : drop, 7101 : accept } comment "V"; }; }`, port, firewall.Drop, "V"},
		{"fib daddr local", `table inet a { chain c { type filter hook prerouting priority 0; fib daddr type local tcp dport 7100 reject comment "R"; }; }`, port, firewall.Reject, "R"},
		{"iifname wildcard", `table inet a { chain c { type filter hook input priority 0; iifname "pt*" tcp dport 7100 drop comment "D"; }; }`, port, firewall.Drop, "D"},
		{"redirect to another port", `table ip a { chain p { type nat hook prerouting priority -100; tcp dport 7100 redirect to :7101 comment "N"; }; }
table inet b { chain c { type filter hook input priority 0; tcp dport 7100 drop comment "D"; }; }`, port, firewall.Accept, "N"},
		{"a key the packet adds to a set", `table inet a { set s { type ipv4_addr; flags dynamic; }
 chain c { type filter hook input priority 0; tcp dport 7100 add @s { ip saddr } comment "A"; ip saddr @s drop comment "D"; }; }`, port, firewall.Drop, "D"},
		{"nat chains run at the nat hook's priority", `table ip a { chain p { type nat hook prerouting priority -150; tcp dport 7100 redirect to :7101 comment "N"; }; }
table ip b { chain c { type filter hook prerouting priority -120; tcp dport 7101 drop comment "D"; }; }`, port, firewall.Accept, "N"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			testnet.Run(t, "ip", "netns", "exec", n.Name, "nft", "flush", "ruleset")
			load(t, n.Name, c.rules)
			opts := firewall.Options{NetNS: "/run/netns/" + n.Name}
			rs, err := firewall.Read(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			h, err := firewall.ReadHost(opts)
			if err != nil {
				t.Fatal(err)
			}
			p := firewall.Packet{Proto: 6, Src: n.Host, Dst: n.Peer, DstPort: c.port, InIface: h.InboundIface(n.Host)}
			res := firewall.Evaluate(rs, h, p)
			if res.Verdict != c.verdict {
				t.Fatalf("verdict %s, want %s; steps %+v, depends %v", res.Verdict, c.verdict, res.Steps, res.DependsOn)
			}
			got := ""
			if res.Decider != nil {
				got = res.Decider.Comment
				if res.Decider.Rule == nil {
					got = "policy"
				}
			}
			if c.decider != "" && got != c.decider {
				t.Errorf("decided by %q, want %q; steps %+v", got, c.decider, res.Steps)
			}
			conn, err := net.DialTimeout("tcp", netip.AddrPortFrom(n.Peer, c.port).String(), 500*time.Millisecond)
			if conn != nil {
				conn.Close()
			}
			if (err == nil) != (c.verdict == firewall.Accept) {
				t.Errorf("the kernel disagrees: connect: %v; evaluated %s", err, res.Verdict)
			}
		})
	}
}

func load(t *testing.T, ns, rules string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v: %s", err, out)
	}
}
