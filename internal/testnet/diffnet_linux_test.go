//go:build linux

package testnet

import (
	"net/netip"
	"testing"
)

// Lines as nft 1.0.6's "nft -a monitor trace" prints them.
const (
	tracePre  = `trace id 95f4b82e inet portctl_difftrace pre packet: iif "veth0" ether saddr 12:82:4b:e3:29:c8 ether daddr 7a:d4:b4:43:89:77 ip saddr 192.168.77.2 ip daddr 192.168.77.1 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 47780 ip length 60 tcp sport 35366 tcp dport 80 tcp flags == syn tcp window 64240 `
	traceRule = `trace id 95f4b82e inet f in rule tcp dport 80 counter packets 0 bytes 0 drop # handle 2 (verdict drop)`
	tracePol  = `trace id 95f4b82e ip late in policy accept `
	traceRet  = `trace id 95f4b82e inet f lan verdict continue `
	traceUDP6 = `trace id 0a0b0c0d inet portctl_difftrace pre packet: iif "veth0" ip6 saddr 2001:db8:1::7 ip6 daddr fd00:77::1 ip6 nexthdr udp udp sport 20001 udp dport 53 udp length 26`
	traceACK  = `trace id 11111111 inet portctl_difftrace pre packet: iif "veth0" ip saddr 192.168.77.2 ip daddr 192.168.77.1 tcp sport 35366 tcp dport 80 tcp flags == ack tcp window 502`
)

func TestParseTraceLine(t *testing.T) {
	for _, c := range []struct {
		line string
		want TraceEvent
	}{
		{traceRule, TraceEvent{ID: "95f4b82e", Family: "inet", Table: "f", Chain: "in", Kind: "rule", Handle: 2, Verdict: "drop", Text: "tcp dport 80 counter packets 0 bytes 0 drop"}},
		{tracePol, TraceEvent{ID: "95f4b82e", Family: "ip", Table: "late", Chain: "in", Kind: "policy", Verdict: "accept"}},
		{traceRet, TraceEvent{ID: "95f4b82e", Family: "inet", Table: "f", Chain: "lan", Kind: "verdict", Verdict: "continue"}},
	} {
		got, ok := parseTraceLine(c.line)
		if !ok || got != c.want {
			t.Errorf("parseTraceLine(%q) = %+v, %v; want %+v", c.line, got, ok, c.want)
		}
	}
	if _, ok := parseTraceLine("trace id x"); ok {
		t.Error("parseTraceLine of a short line: ok")
	}
}

func TestFirstPacket(t *testing.T) {
	for _, c := range []struct {
		line string
		want traceKey
		ok   bool
	}{
		{tracePre, traceKey{6, netip.MustParseAddrPort("192.168.77.2:35366")}, true},
		{traceUDP6, traceKey{17, netip.MustParseAddrPort("[2001:db8:1::7]:20001")}, true},
		{traceACK, traceKey{}, false}, // not a first packet
	} {
		e, _ := parseTraceLine(c.line)
		got, ok := firstPacket(e.Text)
		if ok != c.ok || got != c.want {
			t.Errorf("firstPacket(%q) = %v, %v; want %v, %v", e.Text, got, ok, c.want, c.ok)
		}
	}
}

// TestTracePacket: the passes of one packet are found by its source, a
// retransmission (a second pass starting where the first did) is left
// out, and so are the trace table's own events.
func TestTracePacket(t *testing.T) {
	tr := &Trace{}
	for _, l := range []string{
		tracePre,
		`trace id 95f4b82e inet portctl_difftrace pre rule meta nftrace set 1 # handle 3 (verdict continue)`,
		`trace id 95f4b82e inet f in packet: iif "veth0" ip saddr 192.168.77.2 ip daddr 192.168.77.1 tcp sport 35366 tcp dport 80 tcp flags == syn`,
		traceRule,
		traceACK, // same flow, not a first packet
		`trace id 11111111 inet f in rule ct state established accept # handle 6 (verdict accept)`,
		tracePre, // the SYN again
		traceRule,
	} {
		e, ok := parseTraceLine(l)
		if !ok {
			t.Fatalf("parseTraceLine(%q): not ok", l)
		}
		tr.events = append(tr.events, e)
	}
	got := tr.Packet(6, netip.MustParseAddrPort("192.168.77.2:35366"))
	if len(got) != 2 || got[0].Kind != "packet" || got[1].Handle != 2 {
		t.Errorf("Packet = %+v; want the input chain's packet line and rule 2, once", got)
	}
	if got := tr.Packet(17, netip.MustParseAddrPort("192.168.77.2:35366")); len(got) != 0 {
		t.Errorf("Packet of another protocol = %+v; want none", got)
	}
}
