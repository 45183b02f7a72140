package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/sockets"
)

// fwSource is a tableSource that also reads a firewall the test makes.
type fwSource struct {
	tableSource
	read  *FirewallRead
	err   error
	reads atomic.Int32
}

func (f *fwSource) Firewall(context.Context) (*FirewallRead, error) {
	f.reads.Add(1)
	return f.read, f.err
}

// openHost is a host on 10.9.0.2/24 with a default route, and a ruleset
// whose input chain accepts everything: an empty base chain, written by
// hand.
func openHost() *FirewallRead {
	t := &firewall.Table{Family: firewall.FamilyINet, Name: "t", Source: firewall.NFTables}
	in := &firewall.Chain{Table: t, Name: "in", Hook: &firewall.Hook{Num: firewall.HookNum(1), Type: firewall.ChainTypeFilter, Policy: firewall.PolicyAccept}}
	in.Rules = []*firewall.Rule{{Chain: in, Handle: 4, Position: 1, Owner: firewall.Owner{Name: firewall.OwnerHand}}} // a rule without expressions: matches, continues
	t.Chains = []*firewall.Chain{in}
	h := &firewall.Host{
		Interfaces: []firewall.Interface{
			{Index: 1, Name: "lo", Type: 772, Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
			{Index: 2, Name: "eth0", Type: 1, Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.2/24")}},
		},
		Routes: []firewall.Route{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Iface: "eth0", Gateway: netip.MustParseAddr("10.9.0.1"), Type: "unicast"},
			{Dst: netip.MustParsePrefix("10.9.0.0/24"), Iface: "eth0", Type: "unicast"},
		},
	}
	return &FirewallRead{Ruleset: &firewall.Ruleset{Tables: []*firewall.Table{t}}, Host: h,
		Blocks: []firewall.PortBlock{{Proto: "tcp", Ports: [2]uint16{9999, 9999}}}}
}

func TestAPIReachAndFirewall(t *testing.T) {
	src := &fwSource{read: openHost()}
	// A resolver's query socket, on a port from the ephemeral range: a
	// client, which no one is meant to reach.
	src.set(listener(sockets.TCP, "0.0.0.0:6379", nil), listener(sockets.TCP, "127.0.0.1:8080", nil), listener(sockets.UDP, "0.0.0.0:45000", nil))
	s, ts := newTestServer(t, src, Options{})

	_, body := get(t, ts, "/api/v1/sockets", nil)
	var socks socketsAnswer
	if err := json.Unmarshal([]byte(body), &socks); err != nil {
		t.Fatal(err)
	}
	reachOf := map[uint16]string{}
	for _, r := range socks.Sockets {
		reachOf[r.Port] = r.Reach
	}
	if reachOf[6379] != "internet" || reachOf[8080] != "loopback" || reachOf[45000] != "" {
		t.Errorf("rows' reach = %v; want 6379 internet, 8080 loopback, none for the client's UDP socket\n%s", reachOf, body)
	}

	_, body = get(t, ts, "/api/v1/firewall", nil)
	var fw firewallAnswer
	if err := json.Unmarshal([]byte(body), &fw); err != nil {
		t.Fatal(err)
	}
	if !fw.Readable || fw.TotalRules != 1 || len(fw.Rules) != 1 || fw.Rules[0].Owner != "hand" || fw.Rules[0].Table != "t" || len(fw.Blocks) != 1 {
		t.Errorf("/api/v1/firewall: readable %v, %d rules %+v, blocks %+v; want one rule of table t by hand, one block", fw.Readable, fw.TotalRules, fw.Rules, fw.Blocks)
	}
	if len(fw.Ports) != 2 || fw.Ports[0].Port != 6379 || fw.Ports[0].ReachableFrom != "internet" || len(fw.Ports[0].From) != 3 {
		t.Errorf("/api/v1/firewall ports = %+v; want 6379 from the internet, with the three classes", fw.Ports)
	}

	_, body = get(t, ts, "/api/v1/reach", nil)
	var ra reachAnswer
	if err := json.Unmarshal([]byte(body), &ra); err != nil || !ra.Readable || len(ra.Ports) != 2 {
		t.Errorf("/api/v1/reach = %v %s", err, body)
	}

	m := scrapeBody(t, s)
	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"portctl_firewall_rules", []string{`family="inet"`, `table="t"`, `owner="hand"`}, 1},
		{"portctl_firewall_read_success", nil, 1},
		{"portctl_reachable_ports", []string{`source="internet"`}, 1},
		{"portctl_reachable_ports", []string{`source="loopback"`}, 2},
	} {
		if got, n := sum(m, tt.name, tt.labels...); got != tt.want || n == 0 {
			t.Errorf("%s%v = %g (%d series); want %g\n%s", tt.name, tt.labels, got, n, tt.want, m)
		}
	}
}

func TestAPIFirewallUnreadable(t *testing.T) {
	src := &fwSource{err: firewall.ErrPermission}
	src.set(listener(sockets.TCP, "0.0.0.0:6379", nil))
	s, ts := newTestServer(t, src, Options{})
	_, body := get(t, ts, "/api/v1/sockets", nil)
	var socks socketsAnswer
	json.Unmarshal([]byte(body), &socks)
	if len(socks.Sockets) != 1 || socks.Sockets[0].Reach != "unknown" {
		t.Errorf("without the ruleset, rows = %+v; want reach unknown", socks.Sockets)
	}
	_, body = get(t, ts, "/api/v1/firewall", nil)
	var fw firewallAnswer
	json.Unmarshal([]byte(body), &fw)
	if fw.Readable || !errors.Is(src.err, firewall.ErrPermission) || fw.Error != firewall.ErrPermission.Error() {
		t.Errorf("/api/v1/firewall unreadable = %+v", fw)
	}
	if got, n := sum(scrapeBody(t, s), "portctl_firewall_read_success"); got != 0 || n != 1 {
		t.Errorf("portctl_firewall_read_success = %g (%d series); want 0", got, n)
	}
}

// TestFirewallInterval: the ruleset is read once per FirewallInterval, but
// a listener that appears gets its reach at the next sample.
func TestFirewallInterval(t *testing.T) {
	src := &fwSource{read: openHost()}
	src.set(listener(sockets.TCP, "0.0.0.0:6379", nil))
	s, _ := newTestServer(t, src, Options{Interval: time.Hour, FirewallInterval: time.Hour})
	src.set(listener(sockets.TCP, "0.0.0.0:6379", nil), listener(sockets.TCP, "127.0.0.1:8080", nil))
	s.sample(context.Background())
	s.sample(context.Background())
	if n := src.reads.Load(); n != 1 {
		t.Errorf("the ruleset was read %d times in three samples within FirewallInterval; want 1", n)
	}
	st := s.current(context.Background())
	if pr := st.fw.reach.Port(sockets.TCP, 8080); pr == nil || pr.Summary() != "loopback" {
		t.Errorf("the new listener's reach = %+v; want loopback", pr)
	}
}
