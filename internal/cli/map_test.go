package cli

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/portmap"
)

func TestMapAddFlags(t *testing.T) {
	streams, _, _ := term.Test("")
	var got mapOptions
	cmd := newMapAddCmd(streams, func(_ context.Context, o mapOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"8080", "--gateway", "192.168.1.1", "--proto", "both", "--external", "18080", "--lease", "1h",
		"--protocol", "pcp", "--description", "web", "--once", "--verify", "203.0.113.5:7654", "--json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	want := mapOptions{Gateway: netip.MustParseAddr("192.168.1.1"), JSON: true, Port: 8080, External: 18080,
		Protos: []string{"tcp", "udp"}, Lease: time.Hour, Protocol: portmap.PCP, Description: "web", Once: true, Verify: "203.0.113.5:7654"}
	if got.Gateway != want.Gateway || got.Port != want.Port || got.External != want.External || strings.Join(got.Protos, ",") != "tcp,udp" ||
		got.Lease != want.Lease || got.Protocol != want.Protocol || got.Description != want.Description || !got.Once || got.Verify != want.Verify || !got.JSON {
		t.Errorf("map add options = %+v; want %+v", got, want)
	}
	// The external port defaults to the internal one, the description
	// names portctl.
	cmd = newMapAddCmd(streams, func(_ context.Context, o mapOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"8080", "--gateway", "192.168.1.1"})
	if err := cmd.Execute(); err != nil || got.External != 8080 || !strings.HasPrefix(got.Description, "portctl map ") || got.Lease != 2*time.Hour {
		t.Errorf("map add defaults = %+v, %v", got, err)
	}
}

func TestMapBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"map", "add", "0", "--gateway", "192.168.1.1"}, `port "0": want a port from 1 to 65535`},
		{[]string{"map", "add", "http", "--gateway", "192.168.1.1"}, `port "http"`},
		{[]string{"map", "add", "80", "--gateway", "192.168.1.1", "--proto", "sctp"}, `--proto "sctp": want tcp, udp or both`},
		{[]string{"map", "add", "80", "--gateway", "192.168.1.1", "--protocol", "igd"}, `--protocol "igd": want auto, pcp, natpmp or upnp`},
		{[]string{"map", "add", "80", "--gateway", "router"}, `--gateway "router": want the router's IPv4 or IPv6 address`},
		{[]string{"map", "add", "80", "--gateway", "192.168.1.1", "--ipv6"}, `--gateway "192.168.1.1" with --ipv6: want the router's IPv6 address`},
		{[]string{"map", "add", "80", "--gateway", "fe80::1", "--external", "81"}, `--external 81: an IPv6 pinhole opens port 80 itself`},
		{[]string{"map", "rm", "80", "--gateway", "::1"}, `map rm over IPv6: a pinhole is closed by the map add that opened it`},
		{[]string{"map", "probe", "--gateway", "1.2.3"}, `--gateway "1.2.3"`},
	} {
		streams, _, errOut := term.Test("")
		code := Run(tc.args, streams)
		if code != 2 || !strings.Contains(errOut.String(), tc.want) || strings.Count(errOut.String(), "\n") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, code, errOut, tc.want)
		}
	}
}
