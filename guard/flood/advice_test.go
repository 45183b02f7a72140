package flood

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestAdvise(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	settings := Settings{Syncookies: 1, MaxSynBacklog: 512, Somaxconn: 4096}
	nginx := Listener{Local: netip.MustParseAddrPort("0.0.0.0:80"), Queue: 511, Backlog: 511, PID: 42, Process: "nginx"}
	tests := []struct {
		name string
		cur  Status
		prev *Status
		want []Advice // Kind and a part of Text
	}{
		{"quiet", Status{Time: t0, NetNS: "host", Settings: settings, Listeners: []Listener{{Local: nginx.Local, Queue: 0, Backlog: 511}}}, nil, nil},
		{"full queue and overflows", Status{Time: t0, NetNS: "host", Settings: settings, Listeners: []Listener{nginx},
			Counters: Counters{ListenOverflows: 1200, ListenDrops: 1200, PassiveOpens: 50000}}, nil,
			[]Advice{
				{Kind: QueueFull, Text: "raise the backlog of nginx on :80 (listen backlog 511, net.core.somaxconn 4096)"},
				{Kind: ListenOverflows, Text: "1,200 connections turned away since boot by a full accept queue (ListenOverflows) against 50,000 accepted"},
			}},
		{"backlog at somaxconn", Status{Time: t0, NetNS: "host", Settings: Settings{Syncookies: 1, MaxSynBacklog: 128, Somaxconn: 128},
			Listeners: []Listener{{Local: netip.MustParseAddrPort("[::]:8080"), Queue: 128, Backlog: 128}}}, nil,
			[]Advice{{Kind: QueueFull, Text: "the listener on [::]:8080 is full (128 of 128): it accepts too slowly for its load; raise the backlog of the listener on :8080 (listen backlog 128, net.core.somaxconn 128); its backlog is capped by net.core.somaxconn: raise that too (sysctl -w net.core.somaxconn=4096)"}}},
		{"nearly full", Status{Time: t0, NetNS: "host", Settings: settings, Listeners: []Listener{{Local: nginx.Local, Queue: 9, Backlog: 10, Process: "nginx"}}}, nil,
			[]Advice{{Kind: QueueNearlyFull, Text: "accept queue of nginx on 0.0.0.0:80 is nearly full (9 of 10)"}}},
		{"overflows past, none full now", Status{Time: t0, NetNS: "host", Settings: settings, Counters: Counters{ListenOverflows: 3}}, nil,
			[]Advice{{Kind: ListenOverflows, Text: "no accept queue is full now"}}},
		{"syn flood", Status{Time: t0, NetNS: "host", Settings: settings, Counters: Counters{SyncookiesSent: 45128, TCPReqQFullDoCookies: 45128, SyncookiesRecv: 3}}, nil,
			[]Advice{{Kind: SyncookiesSent, Text: "45,128 SYN cookies sent since boot (the SYN queue overflowed; 3 came back valid): a SYN flood or a backlog too small; net.ipv4.tcp_syncookies=1 keeps clients getting through; without a flood, raise net.ipv4.tcp_max_syn_backlog (now 512)"}}},
		{"cookies off", Status{Time: t0, NetNS: "host", Settings: Settings{Syncookies: 0, MaxSynBacklog: 512, Somaxconn: 4096}, Counters: Counters{TCPReqQFullDrop: 10}}, nil,
			[]Advice{{Kind: SyncookiesOff, Text: "10 SYNs dropped since boot for a full SYN queue with SYN cookies off (TCPReqQFullDrop): a SYN flood or a backlog too small shuts clients out; net.ipv4.tcp_syncookies=0; set net.ipv4.tcp_syncookies=1"}}},
		{"cookies off, no drops", Status{Time: t0, NetNS: "host", Settings: Settings{Syncookies: 0, MaxSynBacklog: 512, Somaxconn: 4096}}, nil,
			[]Advice{{Kind: SyncookiesOff, Text: "net.ipv4.tcp_syncookies=0: a SYN flood fills the SYN queues"}}},
		{"forged acks", Status{Time: t0, NetNS: "host", Settings: settings, Counters: Counters{SyncookiesFailed: 7}}, nil,
			[]Advice{{Kind: SyncookiesFailed, Text: "7 ACKs carried a SYN cookie that did not check out"}}},
		{"settings unknown", Status{Time: t0, NetNS: "host", Settings: UnknownSettings, Counters: Counters{SyncookiesSent: 1, ListenOverflows: 1}}, nil,
			[]Advice{{Kind: SyncookiesSent, Text: "tcp_syncookies=unknown"}, {Kind: ListenOverflows, Text: "net.core.somaxconn (now unknown)"}}},
		// With the Status before, the counters count the interval.
		{"rate", Status{Time: t0.Add(10 * time.Second), Settings: settings, Counters: Counters{SyncookiesSent: 1500, ListenOverflows: 40}},
			&Status{Time: t0, NetNS: "host", Settings: settings, Counters: Counters{SyncookiesSent: 500, ListenOverflows: 40}},
			[]Advice{{Kind: SyncookiesSent, Text: "1,000 SYN cookies sent in the last 10s"}}},
		{"another namespace before", Status{Time: t0.Add(time.Second), NetNS: "web", Inode: 2, Settings: settings, Counters: Counters{SyncookiesSent: 5}},
			&Status{Time: t0, NetNS: "host", Inode: 1, Settings: settings, Counters: Counters{SyncookiesSent: 5}},
			[]Advice{{Kind: SyncookiesSent, Text: "5 SYN cookies sent since the namespace was made"}}},
		{"counters went down", Status{Time: t0.Add(time.Second), Settings: settings, Counters: Counters{SyncookiesSent: 5}},
			&Status{Time: t0, NetNS: "host", Settings: settings, Counters: Counters{SyncookiesSent: 9}},
			[]Advice{{Kind: SyncookiesSent, Text: "5 SYN cookies sent in the last 1s"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Advise(tt.cur, tt.prev)
			if len(got) != len(tt.want) {
				t.Fatalf("Advise() = %d pieces of advice; want %d:\n%s", len(got), len(tt.want), texts(got))
			}
			for i, w := range tt.want {
				if got[i].Kind != w.Kind || !strings.Contains(got[i].Text, w.Text) {
					t.Errorf("Advise()[%d] = %s %q; want %s with %q", i, got[i].Kind, got[i].Text, w.Kind, w.Text)
				}
			}
		})
	}
}

func texts(as []Advice) string {
	var b strings.Builder
	for _, a := range as {
		b.WriteString(string(a.Kind) + ": " + a.Text + "\n")
	}
	return b.String()
}

func TestListenerFull(t *testing.T) {
	tests := []struct {
		queue, backlog uint32
		full, nearly   bool
	}{
		{0, 0, false, false},
		{1, 0, true, false},
		{2, 1, true, true},
		{1, 1, true, false},
		{0, 128, false, false},
		{102, 128, false, false},
		{103, 128, false, true},
		{128, 128, true, true},
		{129, 128, true, true},
	}
	for _, tt := range tests {
		l := Listener{Queue: tt.queue, Backlog: tt.backlog}
		if l.Full() != tt.full || l.NearlyFull() != tt.nearly {
			t.Errorf("Listener{Queue: %d, Backlog: %d}: Full() = %v, NearlyFull() = %v; want %v, %v", tt.queue, tt.backlog, l.Full(), l.NearlyFull(), tt.full, tt.nearly)
		}
	}
}

func TestSortListeners(t *testing.T) {
	ap := netip.MustParseAddrPort
	ls := []Listener{
		{Local: ap("0.0.0.0:22"), Queue: 0, Backlog: 128},
		{Local: ap("0.0.0.0:80"), Queue: 5, Backlog: 10},
		{Local: ap("[::]:22"), Queue: 0, Backlog: 128},
		{Local: ap("127.0.0.1:9000"), Queue: 2, Backlog: 1},
	}
	sortListeners(ls)
	var got []string
	for _, l := range ls {
		got = append(got, l.Local.String())
	}
	if want := "127.0.0.1:9000 0.0.0.0:80 0.0.0.0:22 [::]:22"; strings.Join(got, " ") != want {
		t.Errorf("sortListeners = %v; want %s", got, want)
	}
}
