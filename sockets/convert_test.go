package sockets

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// addrOpts compares netip values by ==.
var addrOpts = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})

func TestTCPStateFromName(t *testing.T) {
	tests := []struct {
		in     string
		want   State
		wantOK bool
	}{
		{"LISTEN", Listen, true},
		{"(LISTEN)", Listen, true},
		{"ESTABLISHED", Established, true},
		{"established", Established, true},
		{"SYN_SENT", SynSent, true},
		{"SYN_RCVD", SynRecv, true}, // BSD and lsof
		{"SYN_RECV", SynRecv, true}, // Linux
		{"FIN_WAIT_1", FinWait1, true},
		{"FIN_WAIT1", FinWait1, true},
		{"FIN_WAIT_2", FinWait2, true},
		{"fin-wait-2", FinWait2, true},
		{"TIME_WAIT", TimeWait, true},
		{"CLOSED", Close, true},
		{"CLOSE_WAIT", CloseWait, true},
		{"LAST_ACK", LastAck, true},
		{"CLOSING", Closing, true},
		{" (CLOSE_WAIT) ", CloseWait, true},
		{"", 0, false},
		{"IDLE", 0, false},
		{"LISTENING", 0, false},
		{"()", 0, false},
	}
	for _, tt := range tests {
		got, ok := tcpStateFromName(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("tcpStateFromName(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

// Every TCP state but Linux's NewSynRecv has a name that maps back to it.
func TestTCPStateFromNameCoversStates(t *testing.T) {
	for st := Established; st <= Closing; st++ {
		if got, ok := tcpStateFromName(st.Name()); !ok || got != st {
			t.Errorf("tcpStateFromName(%q) = %v, %v; want %v, true", st.Name(), got, ok, st)
		}
	}
}

func TestTCPStateFromMIB(t *testing.T) {
	tests := []struct {
		in     uint32
		want   State
		wantOK bool
	}{
		{0, 0, false},
		{1, Close, true},
		{2, Listen, true},
		{3, SynSent, true},
		{4, SynRecv, true},
		{5, Established, true},
		{6, FinWait1, true},
		{7, FinWait2, true},
		{8, CloseWait, true},
		{9, Closing, true},
		{10, LastAck, true},
		{11, TimeWait, true},
		{12, Close, true}, // DELETE_TCB
		{13, 0, false},
		{100, 0, false}, // PowerShell's "Bound" is not in the MIB
	}
	for _, tt := range tests {
		got, ok := tcpStateFromMIB(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("tcpStateFromMIB(%d) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestUDPState(t *testing.T) {
	tests := []struct {
		remote string
		want   State
	}{
		{"0.0.0.0:0", Close},
		{"[::]:0", Close},
		{"", Close}, // the zero AddrPort
		{"10.0.0.1:53", Established},
		{"[2001:db8::1]:443", Established},
		{"0.0.0.0:53", Established}, // a port alone means connected
		{"10.0.0.1:0", Established},
	}
	for _, tt := range tests {
		var ap netip.AddrPort
		if tt.remote != "" {
			ap = netip.MustParseAddrPort(tt.remote)
		}
		if got := udpState(ap); got != tt.want {
			t.Errorf("udpState(%q) = %v; want %v", tt.remote, got, tt.want)
		}
	}
}

func TestParseAddrPort(t *testing.T) {
	tests := []struct {
		name    string
		ip      string
		port    uint32
		f       Family
		want    string
		wantErr bool
	}{
		{"ipv4", "127.0.0.1", 80, IPv4, "127.0.0.1:80", false},
		{"ipv4 any", "*", 22, IPv4, "0.0.0.0:22", false},
		{"ipv6 any", "*", 22, IPv6, "[::]:22", false},
		{"empty remote ipv4", "", 0, IPv4, "0.0.0.0:0", false},
		{"empty remote ipv6", "", 0, IPv6, "[::]:0", false},
		{"ipv6", "::1", 631, IPv6, "[::1]:631", false},
		{"ipv6 in brackets", "[::1]", 631, IPv6, "[::1]:631", false},
		{"link-local with zone", "fe80::1%lo0", 5353, IPv6, "[fe80::1%lo0]:5353", false},
		{"embedded scope", "fe80:4::aede:48ff:fe00:1122", 5353, IPv6, "[fe80::aede:48ff:fe00:1122%4]:5353", false},
		{"embedded scope with a zone kept", "fe80:4::1%en0", 5353, IPv6, "[fe80:4::1%en0]:5353", false},
		{"not link-local", "2001:4::1", 1, IPv6, "[2001:4::1]:1", false},
		{"ipv4 on an ipv6 socket", "127.0.0.1", 5000, IPv6, "[::ffff:127.0.0.1]:5000", false},
		{"mapped on an ipv4 socket", "::ffff:10.0.0.1", 1, IPv4, "10.0.0.1:1", false},
		{"max port", "10.0.0.1", 65535, IPv4, "10.0.0.1:65535", false},
		{"port too big", "10.0.0.1", 65536, IPv4, "", true},
		{"host name", "localhost", 80, IPv4, "", true},
		{"ipv6 on an ipv4 socket", "::1", 1, IPv4, "", true},
		{"no family", "127.0.0.1", 1, 0, "", true},
		{"both families", "127.0.0.1", 1, AllFamilies, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAddrPort(tt.ip, tt.port, tt.f)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseAddrPort(%q, %d, %v) = %v, %v; want error %v", tt.ip, tt.port, tt.f, got, err, tt.wantErr)
			}
			if err == nil && got.String() != tt.want {
				t.Errorf("parseAddrPort(%q, %d, %v) = %v; want %v", tt.ip, tt.port, tt.f, got, tt.want)
			}
		})
	}
}

func TestSocketFromRow(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name    string
		row     connRow
		want    Socket
		wantErr bool
	}{
		{"tcp listener", connRow{Proto: TCP, Family: IPv4, LocalIP: "*", LocalPort: 22, Status: "LISTEN", PID: 1},
			Socket{Proto: TCP, Local: ap("0.0.0.0:22"), Remote: ap("0.0.0.0:0"), State: Listen}, false},
		{"tcp6 connection", connRow{Proto: TCP, Family: IPv6, LocalIP: "::1", LocalPort: 50000, RemoteIP: "::1", RemotePort: 8080, Status: "ESTABLISHED"},
			Socket{Proto: TCP, Local: ap("[::1]:50000"), Remote: ap("[::1]:8080"), State: Established}, false},
		{"tcp time-wait", connRow{Proto: TCP, Family: IPv4, LocalIP: "10.0.0.2", LocalPort: 50001, RemoteIP: "10.0.0.1", RemotePort: 443, Status: "TIME_WAIT"},
			Socket{Proto: TCP, Local: ap("10.0.0.2:50001"), Remote: ap("10.0.0.1:443"), State: TimeWait}, false},
		{"udp bound", connRow{Proto: UDP, Family: IPv4, LocalIP: "*", LocalPort: 5353},
			Socket{Proto: UDP, Local: ap("0.0.0.0:5353"), Remote: ap("0.0.0.0:0"), State: Close}, false},
		{"udp6 bound", connRow{Proto: UDP, Family: IPv6, LocalIP: "*", LocalPort: 5353},
			Socket{Proto: UDP, Local: ap("[::]:5353"), Remote: ap("[::]:0"), State: Close}, false},
		{"udp connected", connRow{Proto: UDP, Family: IPv4, LocalIP: "192.168.1.2", LocalPort: 61000, RemoteIP: "192.168.1.1", RemotePort: 53},
			Socket{Proto: UDP, Local: ap("192.168.1.2:61000"), Remote: ap("192.168.1.1:53"), State: Established}, false},
		{"udp status ignored", connRow{Proto: UDP, Family: IPv4, LocalIP: "*", LocalPort: 1, Status: "LISTEN"},
			Socket{Proto: UDP, Local: ap("0.0.0.0:1"), Remote: ap("0.0.0.0:0"), State: Close}, false},
		{"tcp unknown state", connRow{Proto: TCP, Family: IPv4, LocalIP: "*", LocalPort: 22, Status: "IDLE"}, Socket{}, true},
		{"tcp no state", connRow{Proto: TCP, Family: IPv4, LocalIP: "*", LocalPort: 22}, Socket{}, true},
		{"mptcp", connRow{Proto: MPTCP, Family: IPv4, LocalIP: "*", LocalPort: 22, Status: "LISTEN"}, Socket{}, true},
		{"bad local", connRow{Proto: TCP, Family: IPv4, LocalIP: "x", LocalPort: 22, Status: "LISTEN"}, Socket{}, true},
		{"bad remote", connRow{Proto: TCP, Family: IPv4, LocalIP: "*", LocalPort: 22, RemoteIP: "1.2.3.4", RemotePort: 70000, Status: "ESTABLISHED"}, Socket{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := socketFromRow(tt.row)
			if (err != nil) != tt.wantErr {
				t.Fatalf("socketFromRow(%+v) error = %v; want error %v", tt.row, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, addrOpts); diff != "" {
				t.Errorf("socketFromRow(%+v) mismatch (-want +got):\n%s", tt.row, diff)
			}
		})
	}
}

func TestSelects(t *testing.T) {
	ap := netip.MustParseAddrPort
	var (
		tcpListen4   = Socket{Proto: TCP, Local: ap("0.0.0.0:22"), Remote: ap("0.0.0.0:0"), State: Listen}
		tcpListen6   = Socket{Proto: TCP, Local: ap("[::]:22"), Remote: ap("[::]:0"), State: Listen}
		tcpEstab     = Socket{Proto: TCP, Local: ap("10.0.0.2:50000"), Remote: ap("10.0.0.1:443"), State: Established}
		tcpMapped    = Socket{Proto: TCP, Local: ap("[::ffff:127.0.0.1]:8080"), Remote: ap("[::ffff:127.0.0.1]:50000"), State: Established}
		udpBound     = Socket{Proto: UDP, Local: ap("0.0.0.0:53"), Remote: ap("0.0.0.0:0"), State: Close}
		udpConnected = Socket{Proto: UDP, Local: ap("10.0.0.2:61000"), Remote: ap("10.0.0.1:53"), State: Established}
		weird        = Socket{Proto: MPTCP, Local: ap("0.0.0.0:22"), Remote: ap("0.0.0.0:0"), State: Listen}
	)
	all := Query{Protos: AllProtos, Families: AllFamilies, States: AllStates}
	with := func(f func(*Query)) Query { q := all; f(&q); return q }
	tests := []struct {
		name string
		q    Query
		s    Socket
		want bool
	}{
		{"listening: tcp listener", ListeningQuery(), tcpListen4, true},
		{"listening: tcp6 listener", ListeningQuery(), tcpListen6, true},
		{"listening: tcp connection", ListeningQuery(), tcpEstab, false},
		{"listening: udp bound", ListeningQuery(), udpBound, true},
		{"listening: udp connected", ListeningQuery(), udpConnected, false},
		{"all: tcp connection", all, tcpEstab, true},
		{"all: udp connected (UDPStates falls back to States)", all, udpConnected, true},
		{"all: mptcp row is never selected", all, weird, false},
		{"zero query", Query{}, tcpListen4, false},
		{"ipv4 only: tcp6", with(func(q *Query) { q.Families = IPv4 }), tcpListen6, false},
		{"ipv4 only: mapped address is ipv6", with(func(q *Query) { q.Families = IPv4 }), tcpMapped, false},
		{"ipv6 only: mapped address", with(func(q *Query) { q.Families = IPv6 }), tcpMapped, true},
		{"udp only: tcp", with(func(q *Query) { q.Protos = UDP }), tcpListen4, false},
		{"mptcp only: tcp", with(func(q *Query) { q.Protos = MPTCP }), tcpListen4, false},
		{"tcp only: udp", with(func(q *Query) { q.Protos = TCP }), udpBound, false},
		{"udp states: connected only", with(func(q *Query) { q.UDPStates = StatesOf(Established) }), udpBound, false},
		{"udp states do not apply to tcp", with(func(q *Query) { q.UDPStates = StatesOf(Established) }), tcpListen4, true},
		{"local port matches", with(func(q *Query) { q.LocalPort = 22 }), tcpListen4, true},
		{"local port differs", with(func(q *Query) { q.LocalPort = 23 }), tcpListen4, false},
		{"remote port matches", with(func(q *Query) { q.RemotePort = 443 }), tcpEstab, true},
		{"remote port differs", with(func(q *Query) { q.RemotePort = 443 }), tcpListen4, false},
		{"state not asked", with(func(q *Query) { q.States = StatesOf(TimeWait) }), tcpEstab, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := selects(tt.q, &tt.s); got != tt.want {
				t.Errorf("selects(%+v, %v %v→%v %v) = %v; want %v", tt.q, tt.s.Proto, tt.s.Local, tt.s.Remote, tt.s.State, got, tt.want)
			}
		})
	}
}

func TestLsofKind(t *testing.T) {
	tests := []struct {
		name string
		q    Query
		want string
	}{
		{"listening", ListeningQuery(), "inet"},
		{"zero", Query{}, ""},
		{"tcp", Query{Protos: TCP, Families: AllFamilies, States: AllStates}, "tcp"},
		{"tcp and mptcp", Query{Protos: TCP | MPTCP, Families: AllFamilies, States: AllStates}, "tcp"},
		{"mptcp alone", Query{Protos: MPTCP, Families: AllFamilies, States: AllStates}, ""},
		{"tcp4", Query{Protos: TCP, Families: IPv4, States: AllStates}, "tcp4"},
		{"udp6", Query{Protos: UDP, Families: IPv6, States: AllStates}, "udp6"},
		{"inet4", Query{Protos: TCP | UDP, Families: IPv4, States: AllStates}, "inet4"},
		{"inet6", Query{Protos: AllProtos, Families: IPv6, States: AllStates}, "inet6"},
		{"no families", Query{Protos: AllProtos, States: AllStates}, ""},
		{"udp states only", Query{Protos: TCP | UDP, Families: AllFamilies, UDPStates: StatesOf(Close)}, "udp"},
		{"udp with no states", Query{Protos: UDP, Families: AllFamilies}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lsofKind(tt.q); got != tt.want {
				t.Errorf("lsofKind(%+v) = %q; want %q", tt.q, got, tt.want)
			}
		})
	}
}

func TestSocketsFromRows(t *testing.T) {
	ap := netip.MustParseAddrPort
	listen := connRow{Proto: TCP, Family: IPv4, LocalIP: "*", LocalPort: 80, Status: "LISTEN"}
	withPID := func(r connRow, pid int32) connRow { r.PID = pid; return r }
	rows := []connRow{
		withPID(listen, 100),
		withPID(listen, 101), // a worker forked after listen
		withPID(listen, 100), // the same process holding it twice (dup)
		{Proto: TCP, Family: IPv4, LocalIP: "10.0.0.2", LocalPort: 80, RemoteIP: "10.0.0.9", RemotePort: 40000, Status: "ESTABLISHED", PID: 101},
		{Proto: UDP, Family: IPv6, LocalIP: "*", LocalPort: 5353, PID: 200},
		{Proto: TCP, Family: IPv4, LocalIP: "*", LocalPort: 81, Status: "BOGUS", PID: 300}, // unreadable: skipped
		{Proto: UDP, Family: IPv4, LocalIP: "*", LocalPort: 9999},                          // no PID
	}
	tests := []struct {
		name        string
		q           Query
		wantSockets []Socket
		wantHolders [][]int
	}{
		{"listening", ListeningQuery(),
			[]Socket{
				{Proto: TCP, Local: ap("0.0.0.0:80"), Remote: ap("0.0.0.0:0"), State: Listen},
				{Proto: UDP, Local: ap("[::]:5353"), Remote: ap("[::]:0"), State: Close},
				{Proto: UDP, Local: ap("0.0.0.0:9999"), Remote: ap("0.0.0.0:0"), State: Close},
			},
			[][]int{{100, 101}, {200}, nil}},
		{"connections", Query{Protos: TCP, Families: AllFamilies, States: StatesOf(Established)},
			[]Socket{{Proto: TCP, Local: ap("10.0.0.2:80"), Remote: ap("10.0.0.9:40000"), State: Established}},
			[][]int{{101}}},
		{"nothing", Query{}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			socks, holders := socketsFromRows(tt.q, rows)
			if diff := cmp.Diff(tt.wantSockets, socks, addrOpts); diff != "" {
				t.Errorf("socketsFromRows sockets mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantHolders, holders); diff != "" {
				t.Errorf("socketsFromRows holders mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAttachHolders(t *testing.T) {
	procs := map[int]*Process{
		100: {PID: 100, Name: "nginx", UID: 33},
		101: {PID: 101, Name: "nginx", UID: 33},
		200: {PID: 200, Name: "mdns", UID: 0},
	}
	calls := map[int]int{}
	lookup := func(pid int) *Process { calls[pid]++; return procs[pid] }
	tab := &Table{Sockets: make([]Socket, 5)}
	tab.Sockets[4].UID = 7 // a UID already known stays when no holder is found
	holders := [][]int{
		{100, 101}, // two holders
		{101},      // looked up once only
		{200, 999}, // 999 has gone
		nil,        // no holder (TIME_WAIT)
		{998},      // its only holder has gone
	}
	attachHolders(tab, holders, lookup)

	type got struct {
		PIDs []int
		UID  uint32
	}
	var gots []got
	for _, s := range tab.Sockets {
		g := got{UID: s.UID}
		for _, p := range s.Processes {
			g.PIDs = append(g.PIDs, p.PID)
		}
		gots = append(gots, g)
	}
	want := []got{{[]int{100, 101}, 33}, {[]int{101}, 33}, {[]int{200}, 0}, {nil, 0}, {nil, 7}}
	if diff := cmp.Diff(want, gots); diff != "" {
		t.Errorf("attachHolders mismatch (-want +got):\n%s", diff)
	}
	if tab.Unattributed != 1 {
		t.Errorf("attachHolders: Unattributed = %d; want 1", tab.Unattributed)
	}
	for pid, n := range calls {
		if n != 1 {
			t.Errorf("attachHolders looked up PID %d %d times; want once", pid, n)
		}
	}
	if tab.Sockets[0].Processes[1] != tab.Sockets[1].Processes[0] {
		t.Errorf("attachHolders: PID 101 is not shared between its sockets")
	}
}

// Fewer holder lists than sockets must not panic.
func TestAttachHoldersShort(t *testing.T) {
	tab := &Table{Sockets: make([]Socket, 2)}
	attachHolders(tab, [][]int{{1}}, func(int) *Process { return nil })
	if tab.Unattributed != 1 {
		t.Errorf("Unattributed = %d; want 1", tab.Unattributed)
	}
}

func FuzzSocketFromRow(f *testing.F) {
	f.Add(true, true, "*", uint32(22), "", uint32(0), "LISTEN")
	f.Add(true, false, "fe80:4::1", uint32(5353), "", uint32(0), "")
	f.Add(false, true, "10.0.0.2", uint32(50000), "10.0.0.1", uint32(443), "(ESTABLISHED)")
	f.Fuzz(func(t *testing.T, tcp, v4 bool, lip string, lport uint32, rip string, rport uint32, status string) {
		r := connRow{Proto: UDP, Family: IPv6, LocalIP: lip, LocalPort: lport, RemoteIP: rip, RemotePort: rport, Status: status}
		if tcp {
			r.Proto = TCP
		}
		if v4 {
			r.Family = IPv4
		}
		s, err := socketFromRow(r)
		if err != nil {
			return
		}
		if !s.Local.IsValid() || !s.Remote.IsValid() || s.Family() != r.Family || s.State == 0 {
			t.Fatalf("socketFromRow(%+v) = %+v", r, s)
		}
	})
}
