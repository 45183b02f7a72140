package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/portctl/portctl/audit"
	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/reach"
	"github.com/portctl/portctl/sockets"
)

// TestWhoReachLine renders who's reach line from a result built by hand:
// the words for each summary, the deciding rule, and the note without
// the ruleset.
func TestWhoReachLine(t *testing.T) {
	rule := &firewall.Step{Family: firewall.FamilyINet, Table: "filter", Chain: "input", Handle: 7, Rule: &firewall.Rule{Handle: 7},
		Owner: firewall.Owner{Name: "ufw", Detail: "allow 445/tcp"}}
	for _, tt := range []struct {
		name string
		res  whoResult
		want string
	}{
		{"internet", whoResult{Reach: []audit.PortReach{{Proto: sockets.TCP, Port: 445, Exposure: reach.FromInternet,
			Decided: &reach.Layer{Layer: reach.LayerFirewall, Verdict: reach.Pass, Rule: rule}}}},
			"reachable from the internet (tcp): firewall: inet filter input handle 7 (ufw: allow 445/tcp)"},
		{"loopback", whoResult{Reach: []audit.PortReach{{Proto: sockets.UDP, Port: 53, Exposure: reach.LoopbackOnly,
			Decided: &reach.Layer{Layer: reach.LayerSocket, Verdict: reach.Block, Detail: "dnsmasq listens on 127.0.0.1:53 only"}}}},
			"reachable from this machine only (loopback) (udp): socket: dnsmasq listens on 127.0.0.1:53 only"},
		{"partial LAN", whoResult{Reach: []audit.PortReach{{Proto: sockets.TCP, Port: 5432, Exposure: reach.FromLAN, Partial: true}}},
			"reachable from the LAN (part of it) (tcp)"},
		{"nowhere", whoResult{Reach: []audit.PortReach{{Proto: sockets.TCP, Port: 1, Exposure: reach.Nobody}}}, "reachable from nowhere (tcp)"},
		{"not root", whoResult{ReachNote: reachNote(fmt.Errorf("read: %w", firewall.ErrPermission))},
			"reachable from not known: reading the ruleset needs root or CAP_NET_ADMIN"},
		{"unsupported", whoResult{ReachNote: reachNote(firewall.ErrUnsupported)},
			"reachable from not known: reading the firewall is not supported on this OS"},
	} {
		streams, out, _ := term.Test("")
		printWhoReach(streams, tt.res)
		if got := strings.TrimSpace(out.String()); got != tt.want {
			t.Errorf("%s: printWhoReach = %q; want %q", tt.name, got, tt.want)
		}
	}
	streams, out, _ := term.Test("")
	printWhoReach(streams, whoResult{})
	if out.Len() != 0 {
		t.Errorf("printWhoReach with no listener wrote %q; want nothing", out)
	}
}
