package cli

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/reach"
)

// TestReachFlags: the flags land in reachOptions.
func TestReachFlags(t *testing.T) {
	tests := []struct {
		args []string
		want reachOptions
	}{
		{[]string{"5432"}, reachOptions{Port: 5432, Proto: reach.TCP, Timeout: 2 * time.Second}},
		{[]string{"192.0.2.1:53", "--proto", "udp", "--from", "lan,10.0.0.0/8", "--from", "2001:db8::1", "--json", "--iface", "eth0"},
			reachOptions{Port: 53, Addr: netip.MustParseAddr("192.0.2.1"), Proto: reach.UDP, Iface: "eth0", JSON: true, Timeout: 2 * time.Second,
				From: []fromSpec{{Name: "lan", Class: firewall.LAN},
					{Name: "10.0.0.0/8", Prefix: netip.MustParsePrefix("10.0.0.0/8")},
					{Name: "2001:db8::1", Prefix: netip.MustParsePrefix("2001:db8::1/128")}}}},
		{[]string{"ssh", "--from", "Internet", "--trace", "--timeout", "1s"},
			reachOptions{Port: 22, Proto: reach.TCP, Trace: true, Timeout: time.Second,
				From: []fromSpec{{Name: "internet", Class: firewall.Internet}}}},
		{[]string{"8080", "--from", "10.1.2.3/8"}, reachOptions{Port: 8080, Proto: reach.TCP, Timeout: 2 * time.Second,
			From: []fromSpec{{Name: "10.0.0.0/8", Prefix: netip.MustParsePrefix("10.0.0.0/8")}}}},
	}
	for _, tt := range tests {
		streams, _, _ := term.Test("")
		var got reachOptions
		cmd := newReachCmd(streams, func(_ context.Context, o reachOptions) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		if err := cmd.Execute(); err != nil {
			t.Errorf("reach %q: %v", tt.args, err)
			continue
		}
		if got.Port != tt.want.Port || got.Addr != tt.want.Addr || got.Proto != tt.want.Proto || got.Iface != tt.want.Iface ||
			got.JSON != tt.want.JSON || got.Trace != tt.want.Trace || got.Timeout != tt.want.Timeout || !slices.Equal(got.From, tt.want.From) {
			t.Errorf("reach %q = %+v; want %+v", tt.args, got, tt.want)
		}
	}
}

// TestFwBlockFlags: fw block's flags land in its PortBlock.
func TestFwBlockFlags(t *testing.T) {
	tests := []struct {
		args []string
		want firewall.PortBlock
	}{
		{[]string{"8080"}, firewall.PortBlock{Ports: [2]uint16{8080, 8080}}},
		{[]string{"6000-6100", "--proto", "TCP", "--from", "203.0.113.0/24", "--for", "5m"},
			firewall.PortBlock{Ports: [2]uint16{6000, 6100}, Proto: "tcp", From: netip.MustParsePrefix("203.0.113.0/24"), For: 5 * time.Minute}},
		{[]string{"53", "-P", "udp", "--from", "192.0.2.7"},
			firewall.PortBlock{Ports: [2]uint16{53, 53}, Proto: "udp", From: netip.MustParsePrefix("192.0.2.7/32")}},
	}
	for _, tt := range tests {
		streams, _, _ := term.Test("")
		var got fwBlockOptions
		cmd := newFwBlockCmd(streams, func(_ context.Context, o fwBlockOptions) error { got = o; return nil }, false)
		cmd.SetArgs(tt.args)
		if err := cmd.Execute(); err != nil {
			t.Errorf("fw block %q: %v", tt.args, err)
			continue
		}
		if got.Block != tt.want {
			t.Errorf("fw block %q = %+v; want %+v", tt.args, got.Block, tt.want)
		}
	}
}

// TestReachUsageErrors: a bad argument or flag value is one line that
// names it and says what is accepted, with exit 2, before anything is
// read.
func TestReachUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // all of stderr
	}{
		{[]string{"reach"}, "portctl: reach takes a port, a service name or ADDR:PORT (got 0 arguments); see 'portctl reach --help'"},
		{[]string{"reach", "70000"}, ""},
		{[]string{"reach", "5432", "--from", "mars"}, `portctl: --from "mars": want an address, a range such as 10.0.0.0/8, or loopback, lan or internet`},
		{[]string{"reach", "5432", "--from", "10.0.0.0/33"}, `portctl: --from "10.0.0.0/33": want an address, a range such as 10.0.0.0/8, or loopback, lan or internet`},
		{[]string{"reach", "5432", "--proto", "sctp"}, `portctl: --proto "sctp": want tcp or udp`},
		{[]string{"reach", "5432", "--timeout", "0s", "--trace"}, "portctl: --timeout 0s: want a duration above zero, such as 2s"},
		{[]string{"reach", "5432", "--netns", "portctl-no-such-ns"}, `portctl: --netns "portctl-no-such-ns": no such network namespace (want a name under /run/netns, as 'ip netns list' shows, or a path such as /proc/PID/ns/net)`},
		{[]string{"fw", "block"}, "portctl: block takes a port or a range FIRST-LAST (got 0 arguments); see 'portctl firewall block --help'"},
		{[]string{"fw", "block", "0"}, `portctl: "0": port 0 cannot be blocked (want 1-65535)`},
		{[]string{"fw", "block", "90-80"}, `portctl: "90-80": the range ends before it starts (want FIRST-LAST, such as 6000-6100)`},
		{[]string{"fw", "block", "http"}, `portctl: "http": want a port 1-65535 or a range such as 6000-6100`},
		{[]string{"fw", "block", "80", "--from", "lan"}, `portctl: --from "lan": want an address or a range such as 203.0.113.0/24`},
		{[]string{"fw", "block", "80", "--for", "soon"}, `portctl: --for "soon" is not a duration (want a duration such as 500ms, 2s, 1m)`},
		{[]string{"fw", "block", "80", "--for", "-5s"}, "portctl: --for -5s: want a duration of at least 1ms, such as 30s or 5m (none: until unblock)"},
		{[]string{"fw", "block", "80", "--proto", "icmp"}, `portctl: --proto "icmp": want tcp or udp (default both)`},
		{[]string{"fw", "unblock", "80", "--for", "5s"}, ""},
		{[]string{"fw", "allow", "127.0.0.1:80"}, `portctl: "127.0.0.1:80": fw allow takes a port, not ADDR:PORT (want a port 1-65535)`},
		{[]string{"firewall", "extra"}, ""},
	}
	for _, tt := range tests {
		code, _, stderr := runCLI(t, tt.args...)
		if code != ExitUsage {
			t.Errorf("portctl %q = exit %d (stderr %q); want 2", tt.args, code, stderr)
			continue
		}
		if strings.Count(stderr, "\n") != 1 {
			t.Errorf("portctl %q: stderr %q; want one line", tt.args, stderr)
		}
		if tt.want != "" && stderr != tt.want+"\n" {
			t.Errorf("portctl %q: stderr %q; want %q", tt.args, stderr, tt.want+"\n")
		}
	}
}

// TestReachJSONFields: the JSON field names are a contract.
func TestReachJSONFields(t *testing.T) {
	h := &firewall.Host{Interfaces: []firewall.Interface{{Name: "lo", Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}}}}
	in := reach.Input{Port: 80, Proto: reach.TCP, Host: h, Sources: sourcesOf([]fromSpec{{Name: "loopback", Class: firewall.Loopback}}, h),
		Listeners: []reach.Listener{{Proto: reach.TCP, Local: netip.MustParseAddrPort("127.0.0.1:80"), Holder: "web/1"}}}
	as := reach.Analyze(in)
	res := reachResult{Port: 80, Protocol: "tcp", Verdict: reach.Overall(as), Answers: as, Listeners: in.Listeners}
	res.Reachable = res.Verdict == reach.Reachable
	streams, out, _ := term.Test("")
	if err := writeJSON(streams.Out, res); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{`"port": 80`, `"protocol": "tcp"`, `"reachable": true`, `"verdict":`, `"answers":`, `"source":`,
		`"pieces":`, `"layers":`, `"layer": "socket"`, `"detail":`, `"fix":`, `"listeners":`, `"local": "127.0.0.1:80"`, `"firewall":`, `"in_iface": "lo"`} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("reach --json lacks %s:\n%s", f, out)
		}
	}
}

// FuzzParseFrom: --from never panics, and what it accepts is a class or a
// masked prefix.
func FuzzParseFrom(f *testing.F) {
	for _, s := range []string{"lan", "Internet,loopback", "10.0.0.0/8", "2001:db8::1", "::ffff:10.1.2.3", "fe80::1%eth0", "10.0.0.0/33", "", ",", "lan,,x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fs, err := parseFrom([]string{s})
		if err != nil {
			return
		}
		for _, f := range fs {
			if f.Class == "" && (!f.Prefix.IsValid() || f.Prefix != f.Prefix.Masked() || f.Name == "") {
				t.Errorf("parseFrom(%q) = %+v: neither a class nor a masked prefix", s, f)
			}
		}
	})
}

// FuzzParsePortRange: a port range never panics, and what it accepts is
// 1 ≤ first ≤ last.
func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"8080", "6000-6100", "0", "90-80", "1-65535", "65536", " 22 - 23 ", "-", "a-b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parsePortRange(s)
		if err == nil && (r[0] == 0 || r[1] < r[0]) {
			t.Errorf("parsePortRange(%q) = %v; want 1 ≤ first ≤ last", s, r)
		}
	})
}

// TestPrintReach: the text names each source's verdict, the layer that
// blocks, and the fix, from a model built by hand.
func TestPrintReach(t *testing.T) {
	h := &firewall.Host{
		Interfaces: []firewall.Interface{
			{Name: "lo", Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
			{Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("192.168.1.10/24")}},
		},
		Routes: []firewall.Route{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), Iface: "eth0", Gateway: netip.MustParseAddr("192.168.1.1"), Type: "unicast"},
			{Dst: netip.MustParsePrefix("192.168.1.0/24"), Iface: "eth0", Type: "unicast"},
		},
	}
	in := reach.Input{Port: 5432, Proto: reach.TCP, Host: h, Sources: sourcesOf(nil, h),
		Listeners: []reach.Listener{{Proto: reach.TCP, Local: netip.MustParseAddrPort("127.0.0.1:5432"), Holder: "postgres/812"}}}
	as := reach.Analyze(in)
	res := reachResult{Port: 5432, Protocol: "tcp", Verdict: reach.Overall(as), Answers: as, Listeners: in.Listeners}
	streams, out, _ := term.Test("")
	printReach(streams, res)
	for _, want := range []string{
		"Port 5432/tcp: postgres/812 listens on 127.0.0.1:5432.",
		"from the internet: not reachable",
		"from the LAN: not reachable",
		"from the loopback (this machine): reachable",
		"socket     blocks  postgres/812 listens on 127.0.0.1:5432 only",
		"firewall   ok      no rule stops it",
		"to reach it:",
		"bind to 0.0.0.0 (or 192.168.1.10) instead of 127.0.0.1",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("reach's text lacks %q:\n%s", want, out)
		}
	}
}
