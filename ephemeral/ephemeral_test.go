package ephemeral

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// ephSock is a socket from local "addr:port" to remote ("" when unconnected).
func ephSock(proto sockets.Proto, state sockets.State, local, remote string) sockets.Socket {
	s := sockets.Socket{Proto: proto, State: state, Local: netip.MustParseAddrPort(local)}
	if remote != "" {
		s.Remote = netip.MustParseAddrPort(remote)
	} else {
		s.Remote = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	return s
}

// ephemeralHost has the range 40000-40099 with 40050-40059 reserved: 90
// usable source ports.
var ephemeralHost = netconf.Host{
	Ephemeral:  registry.Range{First: 40000, Last: 40099},
	Reserved:   []registry.Range{{First: 40050, Last: 40059}},
	TCPTWReuse: 0,
}

// ephemeralSockets fills 89 of the 90 usable ports: 80 connections and 5
// TIME-WAIT from 10.0.0.1 to 10.0.0.9:443, 3 connections to
// 10.0.0.10:5432 and one bound UDP socket; plus a listener in the range and
// sockets whose local port lies outside it, which do not count.
func ephemeralSockets() []sockets.Socket {
	var usable []int
	for p := 40000; p <= 40099; p++ {
		if p < 40050 || p > 40059 {
			usable = append(usable, p)
		}
	}
	local := func(i int) string { return "10.0.0.1:" + strconv.Itoa(usable[i]) }
	var socks []sockets.Socket
	for i := range 80 {
		socks = append(socks, ephSock(sockets.TCP, sockets.Established, local(i), "10.0.0.9:443"))
	}
	for i := 80; i < 85; i++ {
		socks = append(socks, ephSock(sockets.TCP, sockets.TimeWait, local(i), "10.0.0.9:443"))
	}
	for i := 85; i < 88; i++ {
		socks = append(socks, ephSock(sockets.TCP, sockets.Established, local(i), "10.0.0.10:5432"))
	}
	socks = append(socks,
		ephSock(sockets.UDP, sockets.Close, local(88), ""),
		ephSock(sockets.TCP, sockets.Listen, "0.0.0.0:40050", ""),                  // a server in the range: not ephemeral use
		ephSock(sockets.TCP, sockets.Established, "10.0.0.1:8080", "10.0.0.9:443"), // below the range
		ephSock(sockets.TCP, sockets.TimeWait, "10.0.0.1:50000", "10.0.0.9:443"),   // above the range
		ephSock(sockets.UDP, sockets.Close, "0.0.0.0:53", ""),
	)
	return socks
}

var approx = cmpopts.EquateApprox(0, 1e-9)

func TestEphemeralUsage(t *testing.T) {
	got := Usage(ephemeralHost, ephemeralSockets(), 80, 10)
	want := Report{
		Range: "40000-40099", Size: 100, Reserved: []string{"40050-40059"}, Available: 90,
		TCPTWReuse: 0, InRange: 89,
		ByState: map[string]int{"established": 83, "time_wait": 5, "udp_close": 1},
		Groups: []Group{
			{Protocol: "tcp", Source: "10.0.0.1", Destination: "10.0.0.9:443", Sockets: 85, Share: 100 * 85.0 / 90},
			{Protocol: "tcp", Source: "10.0.0.1", Destination: "10.0.0.10:5432", Sockets: 3, Share: 100 * 3.0 / 90},
		},
		WarnPercent: 80, Exhausting: true,
	}
	if diff := cmp.Diff(want, got, approx, cmpopts.IgnoreFields(Report{}, "Advice")); diff != "" {
		t.Errorf("Usage(40000-40099 less 40050-40059, …, 80, 10) mismatch (-want +got):\n%s", diff)
	}
	if s := got.Groups[0].Share; s < 94.4 || s > 94.5 {
		t.Errorf("busiest group share = %.2f%%; want 85/90 = 94.4%%", s)
	}

	// Advice names the busiest destination and the narrow range.
	adv := strings.Join(got.Advice, "\n")
	for _, want := range []string{"10.0.0.1 → 10.0.0.9:443", "94.4%", "90 usable", "narrow", "40000-40099", "ip_local_port_range"} {
		if !strings.Contains(adv, want) {
			t.Errorf("ephemeralUsage advice does not mention %q:\n%s", want, adv)
		}
	}
	if strings.Contains(adv, "TIME-WAIT") {
		t.Errorf("ephemeralUsage advice suggests tcp_tw_reuse for 5 TIME-WAIT sockets out of 90 ports:\n%s", adv)
	}
}

func TestEphemeralUsageWarnAndTop(t *testing.T) {
	tests := []struct {
		name           string
		warn           float64
		top            int
		wantExhausting bool
		wantGroups     []string // destinations
	}{
		{"over warn 80", 80, 10, true, []string{"10.0.0.9:443", "10.0.0.10:5432"}},
		{"under warn 95", 95, 10, false, []string{"10.0.0.9:443", "10.0.0.10:5432"}},
		{"just under the share", 94.4, 10, true, []string{"10.0.0.9:443", "10.0.0.10:5432"}},
		{"at 100", 100, 10, false, []string{"10.0.0.9:443", "10.0.0.10:5432"}},
		{"top 1", 80, 1, true, []string{"10.0.0.9:443"}},
		{"top 1 under warn", 95, 1, false, []string{"10.0.0.9:443"}},
		{"top 2", 80, 2, true, []string{"10.0.0.9:443", "10.0.0.10:5432"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Usage(ephemeralHost, ephemeralSockets(), tt.warn, tt.top)
			if got.Exhausting != tt.wantExhausting {
				t.Errorf("Usage(…, warn %g, top %d).Exhausting = %v; want %v", tt.warn, tt.top, got.Exhausting, tt.wantExhausting)
			}
			var dests []string
			for _, g := range got.Groups {
				dests = append(dests, g.Destination)
			}
			if diff := cmp.Diff(tt.wantGroups, dests); diff != "" {
				t.Errorf("Usage(…, warn %g, top %d) groups mismatch (-want +got):\n%s", tt.warn, tt.top, diff)
			}
			adv := strings.Join(got.Advice, "\n")
			if mentions := strings.Contains(adv, "10.0.0.9:443"); mentions != tt.wantExhausting {
				t.Errorf("Usage(…, warn %g) advice mentions the busiest destination: %v; want %v\n%s", tt.warn, mentions, tt.wantExhausting, adv)
			}
			if !strings.Contains(adv, "narrow") {
				t.Errorf("Usage(…, warn %g) advice does not call the 100-port range narrow:\n%s", tt.warn, adv)
			}
		})
	}
}

func TestEphemeralUsageEdges(t *testing.T) {
	wide := netconf.Host{Ephemeral: registry.Range{First: 32768, Last: 60999}, TCPTWReuse: -1, EphemeralDefault: true}

	t.Run("no sockets", func(t *testing.T) {
		got := Usage(wide, nil, 80, 10)
		want := Report{
			Range: "32768-60999", Size: 28232, Reserved: []string{}, Available: 28232,
			Default: true, TCPTWReuse: -1, ByState: map[string]int{}, Groups: []Group{},
			WarnPercent: 80,
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Usage(32768-60999, nil) mismatch (-want +got):\n%s", diff)
		}
		if got.Reserved == nil || got.Groups == nil || got.ByState == nil {
			t.Errorf("Usage(32768-60999, nil) = %+v; want empty, not nil, slices and map (JSON [] and {})", got)
		}
	})

	t.Run("reserved ranges count only inside the range", func(t *testing.T) {
		h := netconf.Host{
			Ephemeral: registry.Range{First: 40000, Last: 40099},
			Reserved:  []registry.Range{{First: 39990, Last: 40004}, {First: 40099, Last: 40200}, {First: 22, Last: 22}},
		}
		got := Usage(h, nil, 80, 10)
		if got.Available != 100-5-1 {
			t.Errorf("Usage(40000-40099, reserved 39990-40004, 40099-40200, 22).Available = %d; want 94", got.Available)
		}
		if diff := cmp.Diff([]string{"39990-40004", "40099-40200", "22"}, got.Reserved); diff != "" {
			t.Errorf("Reserved mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("v4-mapped sources group with IPv4", func(t *testing.T) {
		socks := []sockets.Socket{
			ephSock(sockets.TCP, sockets.Established, "10.0.0.1:40000", "10.0.0.9:443"),
			ephSock(sockets.TCP, sockets.Established, "[::ffff:10.0.0.1]:40001", "[::ffff:10.0.0.9]:443"),
			ephSock(sockets.UDP, sockets.Established, "10.0.0.1:40002", "10.0.0.9:443"),
		}
		got := Usage(wide, socks, 80, 10)
		want := []Group{
			{Protocol: "tcp", Source: "10.0.0.1", Destination: "10.0.0.9:443", Sockets: 2, Share: 100 * 2.0 / 28232},
			{Protocol: "udp", Source: "10.0.0.1", Destination: "10.0.0.9:443", Sockets: 1, Share: 100 * 1.0 / 28232},
		}
		if diff := cmp.Diff(want, got.Groups, approx); diff != "" {
			t.Errorf("ephemeralUsage groups mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]int{"established": 2, "udp_established": 1}, got.ByState); diff != "" {
			t.Errorf("ephemeralUsage ByState mismatch (-want +got):\n%s", diff)
		}
		if len(got.Advice) != 0 {
			t.Errorf("ephemeralUsage advice for a wide, quiet range = %q; want none", got.Advice)
		}
	})

	t.Run("many TIME-WAIT suggests tcp_tw_reuse when it is off", func(t *testing.T) {
		var socks []sockets.Socket
		for p := 40000; p < 40030; p++ {
			socks = append(socks, ephSock(sockets.TCP, sockets.TimeWait, "10.0.0.1:"+strconv.Itoa(p), "10.0.0.9:"+strconv.Itoa(p-39000)))
		}
		for _, reuse := range []int{0, 1, 2, -1} {
			h := ephemeralHost
			h.TCPTWReuse = reuse
			got := Usage(h, socks, 80, 10)
			adv := strings.Join(got.Advice, "\n")
			if want := reuse == 0; strings.Contains(adv, "tcp_tw_reuse=1") != want {
				t.Errorf("tcp_tw_reuse %d, 30 TIME-WAIT in 90 ports: advice mentions tcp_tw_reuse = %v; want %v\n%s", reuse, !want, want, adv)
			}
		}
	})
}

// TestEphemeralUsageTiesAreStable: groups with as many sockets and the same
// destination, but different sources or protocols, must come out in the same
// order every time, or --top and the JSON output change from run to run.
func TestEphemeralUsageTiesAreStable(t *testing.T) {
	var socks []sockets.Socket
	for i, src := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"} {
		for j := range 3 {
			port := strconv.Itoa(40000 + 10*i + j)
			socks = append(socks,
				ephSock(sockets.TCP, sockets.Established, src+":"+port, "10.0.0.9:443"),
				ephSock(sockets.UDP, sockets.Established, src+":"+port, "10.0.0.9:443"))
		}
	}
	order := func() []string {
		var out []string
		for _, g := range Usage(ephemeralHost, socks, 80, 10).Groups {
			out = append(out, g.Protocol+" "+g.Source)
		}
		return out
	}
	first := order()
	for range 50 {
		if got := order(); !slices.Equal(got, first) {
			t.Fatalf("ephemeralUsage group order changes between runs: %q then %q", first, got)
		}
	}
}

// TestServedPortsAreNotClientUse checks that the connections a listener in
// the range accepted, which share its port, are not counted as client use,
// whether the table lists the listener first (as the kernel does) or not.
func TestServedPortsAreNotClientUse(t *testing.T) {
	wide := netconf.Host{Ephemeral: registry.Range{First: 32768, Last: 60999}}
	lis := ephSock(sockets.TCP, sockets.Listen, "0.0.0.0:40000", "")
	var accepted []sockets.Socket
	for i := range 5 {
		accepted = append(accepted, ephSock(sockets.TCP, sockets.Established, "10.0.0.1:40000", "10.0.0.7:"+strconv.Itoa(50000+i)))
	}
	client := ephSock(sockets.TCP, sockets.Established, "10.0.0.1:41000", "10.0.0.9:443")
	for name, socks := range map[string][]sockets.Socket{
		"listener first": append(append([]sockets.Socket{lis}, accepted...), client),
		"listener last":  append(append([]sockets.Socket{client}, accepted...), lis),
	} {
		got := Usage(wide, socks, 80, 10)
		if got.InRange != 1 || len(got.Groups) != 1 || got.Groups[0].Destination != "10.0.0.9:443" {
			t.Errorf("%s: Usage = %d in range, groups %+v; want only the client connection", name, got.InRange, got.Groups)
		}
	}
}
