package sockets

import (
	"net/netip"
	"strings"
	"testing"
)

func TestStateStringName(t *testing.T) {
	tests := []struct {
		s          State
		str, name  string
		kernelName string // include/net/tcp_states.h
	}{
		{Established, "ESTAB", "established", "TCP_ESTABLISHED"},
		{SynSent, "SYN-SENT", "syn_sent", "TCP_SYN_SENT"},
		{SynRecv, "SYN-RECV", "syn_recv", "TCP_SYN_RECV"},
		{FinWait1, "FIN-WAIT-1", "fin_wait1", "TCP_FIN_WAIT1"},
		{FinWait2, "FIN-WAIT-2", "fin_wait2", "TCP_FIN_WAIT2"},
		{TimeWait, "TIME-WAIT", "time_wait", "TCP_TIME_WAIT"},
		{Close, "UNCONN", "close", "TCP_CLOSE"},
		{CloseWait, "CLOSE-WAIT", "close_wait", "TCP_CLOSE_WAIT"},
		{LastAck, "LAST-ACK", "last_ack", "TCP_LAST_ACK"},
		{Listen, "LISTEN", "listen", "TCP_LISTEN"},
		{Closing, "CLOSING", "closing", "TCP_CLOSING"},
		{NewSynRecv, "SYN-RECV", "new_syn_recv", "TCP_NEW_SYN_RECV"},
		{0, "UNKNOWN", "unknown", ""},
		{13, "UNKNOWN", "unknown", "TCP_BOUND_INACTIVE"},
		{255, "UNKNOWN", "unknown", ""},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.str {
			t.Errorf("State(%d).String() = %q; want %q", tt.s, got, tt.str)
		}
		if got := tt.s.Name(); got != tt.name {
			t.Errorf("State(%d).Name() = %q; want %q", tt.s, got, tt.name)
		}
		if got, _ := tt.s.MarshalText(); string(got) != tt.name {
			t.Errorf("State(%d).MarshalText() = %q; want %q", tt.s, got, tt.name)
		}
	}
	// The kernel's numbers (include/net/tcp_states.h).
	for i, s := range []State{Established, SynSent, SynRecv, FinWait1, FinWait2, TimeWait, Close, CloseWait, LastAck, Listen, Closing, NewSynRecv} {
		if int(s) != i+1 {
			t.Errorf("%s = %d; want %d", s.Name(), s, i+1)
		}
	}
}

func TestParseState(t *testing.T) {
	tests := []struct {
		in      string
		want    State
		wantErr bool
	}{
		{"listen", Listen, false},
		{"LISTEN", Listen, false},
		{" Listen ", Listen, false},
		{"time-wait", TimeWait, false},
		{"TIME_WAIT", TimeWait, false},
		{"TIME-WAIT", TimeWait, false},
		{"estab", Established, false},
		{"ESTAB", Established, false},
		{"established", Established, false},
		{"unconn", Close, false},
		{"UNCONN", Close, false},
		{"unconnected", Close, false},
		{"bound", Close, false},
		{"close", Close, false},
		{"syn-recv", SynRecv, false},
		{"syn_sent", SynSent, false},
		{"SYN-SENT", SynSent, false},
		{"fin-wait-1", FinWait1, false},
		{"fin_wait1", FinWait1, false},
		{"FIN-WAIT-2", FinWait2, false},
		{"close-wait", CloseWait, false},
		{"last-ack", LastAck, false},
		{"closing", Closing, false},
		{"new_syn_recv", NewSynRecv, false},
		{"bogus", 0, true},
		{"", 0, true},
		{"unknown", 0, true},
		{"time wait", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseState(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseState(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), `"`+tt.in+`"`) {
			t.Errorf("ParseState(%q) error %q does not name the value", tt.in, err)
		}
	}
	// Every state parses back from its Name and its String.
	for s := Established; s <= NewSynRecv; s++ {
		if got, err := ParseState(s.Name()); err != nil || got != s {
			t.Errorf("ParseState(%q) = %v, %v; want %v", s.Name(), got, err, s)
		}
		want := s
		if s == NewSynRecv {
			want = SynRecv // both print as SYN-RECV, as ss does
		}
		if got, err := ParseState(s.String()); err != nil || got != want {
			t.Errorf("ParseState(%q) = %v, %v; want %v", s.String(), got, err, want)
		}
	}
}

func TestStateSet(t *testing.T) {
	tests := []struct {
		name   string
		set    StateSet
		want   StateSet
		has    []State
		hasNot []State
	}{
		{"none", StatesOf(), 0, nil, []State{Established, Listen, 0}},
		{"listen", StatesOf(Listen), 1 << 10, []State{Listen}, []State{Established, Close, TimeWait}},
		{"listen and close", StatesOf(Listen, Close), 1<<10 | 1<<7, []State{Listen, Close}, []State{Established}},
		{"duplicates", StatesOf(TimeWait, TimeWait), 1 << 6, []State{TimeWait}, []State{Listen}},
		{"all", AllStates, 0x1ffe, []State{Established, SynSent, SynRecv, FinWait1, FinWait2, TimeWait, Close, CloseWait, LastAck, Listen, Closing, NewSynRecv}, []State{0, 13}},
		{"all but listen", AllStates &^ StatesOf(Listen), 0x1ffe &^ (1 << 10), []State{Established, TimeWait}, []State{Listen}},
	}
	for _, tt := range tests {
		if tt.set != tt.want {
			t.Errorf("%s: set = %#x; want %#x", tt.name, tt.set, tt.want)
		}
		for _, s := range tt.has {
			if !tt.set.Has(s) {
				t.Errorf("%s: StateSet(%#x).Has(%v) = false; want true", tt.name, tt.set, s)
			}
		}
		for _, s := range tt.hasNot {
			if tt.set.Has(s) {
				t.Errorf("%s: StateSet(%#x).Has(%v) = true; want false", tt.name, tt.set, s)
			}
		}
	}
	if got := StatesOf(State(40)); got != 0 {
		t.Errorf("StatesOf(40) = %#x; want 0 (out of the 32-bit mask)", got)
	}
}

func TestProtoString(t *testing.T) {
	tests := []struct {
		p    Proto
		want string
	}{
		{TCP, "tcp"},
		{UDP, "udp"},
		{MPTCP, "mptcp"},
		{TCP | UDP, "tcp/udp"},
		{TCP | MPTCP, "tcp/mptcp"},
		{AllProtos, "tcp/udp/mptcp"},
		{0, ""},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("Proto(%d).String() = %q; want %q", tt.p, got, tt.want)
		}
		if got, _ := tt.p.MarshalText(); string(got) != tt.want {
			t.Errorf("Proto(%d).MarshalText() = %q; want %q", tt.p, got, tt.want)
		}
	}
}

func TestFamilyString(t *testing.T) {
	tests := []struct {
		f    Family
		want string
	}{
		{IPv4, "ipv4"},
		{IPv6, "ipv6"},
		{AllFamilies, "ipv4/ipv6"},
		{0, ""},
		{4, ""},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("Family(%d).String() = %q; want %q", tt.f, got, tt.want)
		}
	}
}

func TestSocketFamily(t *testing.T) {
	tests := []struct {
		local string
		want  Family
	}{
		{"127.0.0.1:80", IPv4},
		{"[::1]:80", IPv6},
		{"[::ffff:127.0.0.1]:80", IPv6}, // a v4-mapped address is an IPv6 socket's
	}
	for _, tt := range tests {
		s := Socket{Local: netip.MustParseAddrPort(tt.local)}
		if got := s.Family(); got != tt.want {
			t.Errorf("Socket{Local: %s}.Family() = %v; want %v", tt.local, got, tt.want)
		}
	}
}

func TestListeningQuery(t *testing.T) {
	q := ListeningQuery()
	if q.Protos != AllProtos || q.Families != AllFamilies || q.States != StatesOf(Listen) || q.UDPStates != StatesOf(Close) {
		t.Errorf("ListeningQuery() = %+v; want every protocol and family, TCP listeners and bound UDP", q)
	}
}
