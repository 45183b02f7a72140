package probe_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/portctl/portctl/internal/servers"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan/probe"
)

// TestIntegrationDetectQUIC identifies a QUIC endpoint (HTTP/3 runs on
// QUIC) by a version negotiation exchange. No Debian package of this
// release serves QUIC, so the server is quic-go, a full QUIC
// implementation, listening on a loopback UDP port.
func TestIntegrationDetectQUIC(t *testing.T) {
	cert := servers.SelfSigned(t, servers.TLSOptions{})
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: conn}
	ln, err := tr.Listen(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h3"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ln.Close()
		tr.Close()
	})
	go func() {
		for {
			c, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			c.CloseWithError(0, "")
		}
	}()
	addr := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	s := probe.Detect(context.Background(), probe.Config{}, probe.Target{
		Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), addr.Port()), Proto: registry.UDP})
	t.Logf("%+v", s)
	if s.Name != "quic" || s.Get("versions") == "" {
		t.Errorf("Detect = %q, versions %q; want quic with its versions", s.Name, s.Get("versions"))
	}
}
