package cli

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/portctl/portctl/containers"
	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/sockets"
)

// TestWhoPublishedWithoutSocket: a port no socket holds that an engine
// publishes through its NAT rules alone (Docker before 28 without
// docker-proxy) is held, by the container, with the command to free it.
func TestWhoPublishedWithoutSocket(t *testing.T) {
	idx := containers.NewIndex([]containers.Container{{
		ContainerInfo: sockets.ContainerInfo{ID: "aa4f8cdf129a665370763437607932390c5c85ac4a7a1ab2977fd46ca6aac63c", Name: "db", Runtime: "docker"},
		Addrs:         []netip.Addr{netip.MustParseAddr("172.17.0.3")},
		Ports: []containers.Port{
			{Proto: "tcp", Host: netip.MustParseAddrPort("0.0.0.0:15432"), Container: 5432},
			{Proto: "tcp", Host: netip.MustParseAddrPort("[::]:15432"), Container: 5432},
		},
	}})
	opts := whoOptions{Port: 15432, Protos: sockets.TCP | sockets.UDP}
	use := sockets.ClassifyPort(nil, 15432)
	res := makeWhoResult(use, portReport{use: use}, netconf.Host{}, nil, published(idx, opts.Port, opts.Protos), opts)
	if res.Verdict != verdictPublished || !res.Held || len(res.Published) != 2 || res.Published[0].ContainerAddr != "172.17.0.3" {
		t.Fatalf("who on a NAT-published port = verdict %q, held %v, published %+v", res.Verdict, res.Held, res.Published)
	}
	if len(res.Advice) != 1 || !strings.Contains(res.Advice[0], "'docker stop db' frees the port") {
		t.Errorf("advice = %q; want 'docker stop db' once", res.Advice)
	}
	opts.Protos = sockets.UDP
	if res := makeWhoResult(use, portReport{use: use}, netconf.Host{}, nil, published(idx, opts.Port, opts.Protos), opts); res.Held || len(res.Published) != 0 {
		t.Errorf("who --proto udp on a TCP publication = held %v, published %+v; want free", res.Held, res.Published)
	}
}
