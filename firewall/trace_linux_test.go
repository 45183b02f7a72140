package firewall

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
)

// ruleHandle finds the handle of the rule of table inet tbl, chain ch,
// whose text holds text, in nft -a's listing.
func ruleHandle(t *testing.T, n *testnet.Namespace, tbl, ch, text string) uint64 {
	t.Helper()
	out := nftOut(t, n, "-a", "list", "chain", "inet", tbl, ch)
	re := regexp.MustCompile(`# handle (\d+)`)
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, text) {
			if m := re.FindStringSubmatch(line); m != nil {
				h, _ := strconv.ParseUint(m[1], 10, 64)
				return h
			}
		}
	}
	t.Fatalf("no rule %q in inet %s %s:\n%s", text, tbl, ch, out)
	return 0
}

// loadTraced loads the ruleset the trace tests walk: two tables with
// input chains (t at priority 0, f at 10), a jump to a regular chain, an
// accept that ends only its base chain, a return, a rule drop and a
// policy drop.
func loadTraced(t *testing.T, n *testnet.Namespace) {
	t.Helper()
	n.Nft(t, "add chain inet t check")
	n.Nft(t, "add rule inet t in tcp dport { 8080, 8083 } jump check")
	n.Nft(t, "add rule inet t in tcp dport 8081 drop")
	n.Nft(t, "add rule inet t check tcp dport 8083 return")
	n.Nft(t, "add rule inet t check tcp dport 8080 accept")
	n.Nft(t, "add table inet f")
	n.Nft(t, "add chain inet f in2 { type filter hook input priority 10 ; policy drop ; }")
	n.Nft(t, "add rule inet f in2 iif lo accept")
	n.Nft(t, "add rule inet f in2 tcp dport { 8080, 8081, 8083 } accept")
}

// decisionFor is the decision on the first traced packet to port, from
// TraceDecisions.
func decisionFor(ds []TraceDecision, port uint16) (TraceDecision, bool) {
	for _, d := range ds {
		for _, e := range d.Events {
			if e.Packet && e.DstPort == port {
				return d, true
			}
		}
	}
	return TraceDecision{}, false
}

func TestIntegrationTrace(t *testing.T) {
	n := testnet.NewNamespace(t)
	opts := Options{NetNS: "/run/netns/" + n.Name}
	loadTraced(t, n)
	var addrs []netip.AddrPort
	for p := uint16(8080); p <= 8083; p++ {
		addrs = append(addrs, n.Listen(t, p))
	}
	before := nftOut(t, n, "list", "ruleset")

	tr, err := StartTrace(context.Background(), opts,
		TraceFilter{Proto: 6, SYN: true, Src: netip.PrefixFrom(n.Host, 32)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reached := map[uint16]bool{}
	for _, a := range addrs {
		reached[a.Port()] = reachTCP(a, 700*time.Millisecond)
	}
	// A client inside the namespace: its packets walk output, then lo. It
	// is not from n.Host, so the filter must leave it out.
	testnet.In(t, n.Name, func() {
		if c, err := net.DialTimeout("tcp", addrs[1].String(), 300*time.Millisecond); err == nil {
			c.Close()
		}
	})
	events, err := tr.Stop()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		t.Log(e)
	}
	if after := nftOut(t, n, "list", "ruleset"); after != before {
		t.Errorf("the ruleset differs after the trace:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	hJump := ruleHandle(t, n, "t", "in", "jump check")
	hDrop := ruleHandle(t, n, "t", "in", "tcp dport 8081 drop")
	hReturn := ruleHandle(t, n, "t", "check", "return")
	hAcceptT := ruleHandle(t, n, "t", "check", "tcp dport 8080 accept")
	hAcceptF := ruleHandle(t, n, "f", "in2", "8081, 8083 } accept")
	step := func(tbl, ch string, h uint64, typ, verdict string) string {
		return fmt.Sprintf("%s %s %d %s %s", tbl, ch, h, typ, verdict)
	}
	ds := TraceDecisions(events)
	for _, tc := range []struct {
		port    uint16
		reach   bool
		verdict Verdict
		decider string
		walk    []string
	}{
		{8080, true, Accept, step("f", "in2", hAcceptF, "rule", "accept"), []string{
			step("t", "in", hJump, "rule", "jump check"),
			step("t", "check", hAcceptT, "rule", "accept"), // ends table t's chain only
			step("f", "in2", hAcceptF, "rule", "accept"),
		}},
		{8081, false, Drop, step("t", "in", hDrop, "rule", "drop"), []string{
			step("t", "in", hDrop, "rule", "drop"),
		}},
		{8082, false, Drop, step("f", "in2", 0, "policy", "drop"), []string{
			step("t", "in", 0, "return", "continue"),
			step("t", "in", 0, "policy", "accept"),
			step("f", "in2", 0, "return", "continue"),
			step("f", "in2", 0, "policy", "drop"),
		}},
		{8083, true, Accept, step("f", "in2", hAcceptF, "rule", "accept"), []string{
			step("t", "in", hJump, "rule", "jump check"),
			step("t", "check", hReturn, "rule", "return"),
			step("t", "in", 0, "return", "continue"),
			step("t", "in", 0, "policy", "accept"),
			step("f", "in2", hAcceptF, "rule", "accept"),
		}},
	} {
		if reached[tc.port] != tc.reach {
			t.Errorf("port %d: reached %v; want %v", tc.port, reached[tc.port], tc.reach)
		}
		d, ok := decisionFor(ds, tc.port)
		if !ok {
			t.Errorf("port %d: no traced packet", tc.port)
			continue
		}
		var walk []string
		for _, e := range d.Events {
			if e.Family != 1 { // NFPROTO_INET
				t.Errorf("port %d: event of family %d; want inet", tc.port, e.Family)
			}
			walk = append(walk, step(e.Table, e.Chain, e.Handle, e.Type, e.Verdict))
		}
		if strings.Join(walk, "\n") != strings.Join(tc.walk, "\n") {
			t.Errorf("port %d: events\n%s\nwant\n%s", tc.port, strings.Join(walk, "\n"), strings.Join(tc.walk, "\n"))
		}
		if d.Verdict != tc.verdict || d.Decider == nil ||
			step(d.Decider.Table, d.Decider.Chain, d.Decider.Handle, d.Decider.Type, d.Decider.Verdict) != tc.decider {
			t.Errorf("port %d: decision %s by %v; want %s by %s", tc.port, d.Verdict, d.Decider, tc.verdict, tc.decider)
		}
		first := d.Events[0]
		if !first.Packet || first.Src != n.Host || first.Dst != n.Peer || first.Proto != 6 ||
			first.TCPFlags&0x12 != 0x02 || first.IIF == "" || strings.HasPrefix(first.IIF, "if") {
			t.Errorf("port %d: first event's packet %+v; want a SYN %s > %s on the veth by name", tc.port, first, n.Host, n.Peer)
		}
	}
	for _, d := range ds {
		for _, e := range d.Events {
			if e.Packet && e.Src != n.Host {
				t.Errorf("traced a packet from %s; the filter asked for %s only", e.Src, n.Host)
			}
		}
	}
	t.Logf("traced %d events, %d packets: accept across two base chains, rule drop, policy drop, return", len(events), len(ds))
	if tables := nftOut(t, n, "list", "tables"); strings.Contains(tables, "inet "+OwnTable+"\n") {
		t.Errorf("the trace left table inet %s behind:\n%s", OwnTable, tables)
	}
}

// TestIntegrationTraceOutputAndBlock traces a client inside the namespace
// (output, then lo) with a port filter, alongside fw block: the block's
// drop shows as the decider, the trace leaves the block's table in place,
// and the callback form (Trace) stops with its context.
func TestIntegrationTraceOutputAndBlock(t *testing.T) {
	n := testnet.NewNamespace(t)
	opts := Options{NetNS: "/run/netns/" + n.Name}
	n.ListenAny(t, 8090)
	n.ListenAny(t, 8091)
	if err := Block(context.Background(), opts, PortBlock{Proto: "tcp", Ports: [2]uint16{8091, 8091}}); err != nil {
		t.Fatal(err)
	}
	hBlock := ruleHandle(t, n, OwnTable, blockOutChain, "@ports drop")

	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan TraceEvent, 100)
	errc := make(chan error, 1)
	go func() {
		errc <- Trace(ctx, opts, TraceFilter{Proto: 6, DstPort: 8091, SYN: true}, func(e TraceEvent) { events <- e })
	}()
	// Trace has no ready signal: wait for its chain to appear.
	for i := 0; ; i++ {
		if strings.Contains(nftOut(t, n, "list", "table", "inet", OwnTable), tracePreChain) {
			break
		}
		if i > 100 {
			t.Fatal("the trace chains never appeared")
		}
		time.Sleep(20 * time.Millisecond)
	}
	testnet.In(t, n.Name, func() {
		for _, p := range []string{"8090", "8091"} {
			if c, err := net.DialTimeout("tcp", "127.0.0.1:"+p, 300*time.Millisecond); err == nil {
				c.Close()
				if p == "8091" {
					t.Errorf("127.0.0.1:8091 reachable through the block")
				}
			}
		}
	})
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	close(events)
	var got []TraceEvent
	for e := range events {
		t.Log(e)
		got = append(got, e)
	}
	ds := TraceDecisions(got)
	if len(ds) == 0 {
		t.Fatal("no packet traced")
	}
	for _, d := range ds {
		if d.Events[0].DstPort != 8091 {
			t.Errorf("traced a packet to port %d; the filter asked for 8091", d.Events[0].DstPort)
		}
		if d.Verdict != Drop || d.Decider == nil || d.Decider.Table != OwnTable || d.Decider.Chain != blockOutChain ||
			d.Decider.Handle != hBlock || d.Decider.OIF != "lo" {
			t.Errorf("decision %s by %v; want drop by inet %s %s handle %d, out by lo", d.Verdict, d.Decider, OwnTable, blockOutChain, hBlock)
		}
	}
	list := nftOut(t, n, "list", "table", "inet", OwnTable)
	if strings.Contains(list, tracePreChain) || !strings.Contains(list, blockPreChain) {
		t.Errorf("after the trace, portctl's table should hold the block and no trace chain:\n%s", list)
	}
}
