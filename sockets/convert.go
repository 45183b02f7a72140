package sockets

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// This file holds the pure mapping that the macOS and Windows Lists share:
// OS state names and numbers to State, table rows to Socket, the Query
// filter the Linux kernel applies itself, and attaching holders. It compiles
// on every OS and imports no OS library, so it is tested on Linux.

// connRow is one row of an OS socket table in plain values: the fields of
// gopsutil's net.ConnectionStat that macOS fills from lsof output.
type connRow struct {
	Proto      Proto  // TCP or UDP
	Family     Family // IPv4 or IPv6
	LocalIP    string // "127.0.0.1", "::1", or "*" for any address
	LocalPort  uint32
	RemoteIP   string // empty when not connected
	RemotePort uint32
	Status     string // a TCP state as lsof names it ("LISTEN", "ESTABLISHED"…); empty for UDP
	PID        int32
}

// tcpStateNames are the TCP state names that lsof (BSD's tcpstates[]),
// netstat and gopsutil print, with their spelling variants.
var tcpStateNames = map[string]State{
	"ESTABLISHED":  Established,
	"SYN_SENT":     SynSent,
	"SYN_RCVD":     SynRecv,
	"SYN_RECV":     SynRecv,
	"SYN_RECEIVED": SynRecv,
	"FIN_WAIT_1":   FinWait1,
	"FIN_WAIT1":    FinWait1,
	"FIN_WAIT_2":   FinWait2,
	"FIN_WAIT2":    FinWait2,
	"TIME_WAIT":    TimeWait,
	"CLOSED":       Close,
	"CLOSE":        Close,
	"CLOSE_WAIT":   CloseWait,
	"LAST_ACK":     LastAck,
	"LISTEN":       Listen,
	"CLOSING":      Closing,
}

// tcpStateFromName maps a TCP state name as lsof prints it ("LISTEN",
// "(ESTABLISHED)", "FIN_WAIT_1", "SYN_RCVD") to a State. Case, surrounding
// parentheses and '-' for '_' do not matter.
func tcpStateFromName(s string) (State, bool) {
	k := strings.ToUpper(strings.ReplaceAll(strings.Trim(strings.TrimSpace(s), "()"), "-", "_"))
	st, ok := tcpStateNames[k]
	return st, ok
}

// tcpStateFromMIB maps a Windows MIB_TCP_STATE (tcpmib.h), as the
// iphlpapi TCP tables hold it, to a State. DELETE_TCB, a connection being
// torn down, maps to Close.
func tcpStateFromMIB(n uint32) (State, bool) {
	switch n {
	case 1: // MIB_TCP_STATE_CLOSED
		return Close, true
	case 2: // MIB_TCP_STATE_LISTEN
		return Listen, true
	case 3: // MIB_TCP_STATE_SYN_SENT
		return SynSent, true
	case 4: // MIB_TCP_STATE_SYN_RCVD
		return SynRecv, true
	case 5: // MIB_TCP_STATE_ESTAB
		return Established, true
	case 6: // MIB_TCP_STATE_FIN_WAIT1
		return FinWait1, true
	case 7: // MIB_TCP_STATE_FIN_WAIT2
		return FinWait2, true
	case 8: // MIB_TCP_STATE_CLOSE_WAIT
		return CloseWait, true
	case 9: // MIB_TCP_STATE_CLOSING
		return Closing, true
	case 10: // MIB_TCP_STATE_LAST_ACK
		return LastAck, true
	case 11: // MIB_TCP_STATE_TIME_WAIT
		return TimeWait, true
	case 12: // MIB_TCP_STATE_DELETE_TCB
		return Close, true
	}
	return 0, false
}

// udpState returns the state of a UDP socket with the given remote
// address: Established when connected, Close (bound, unconnected) otherwise.
func udpState(remote netip.AddrPort) State {
	if remote.Port() != 0 || (remote.Addr().IsValid() && !remote.Addr().IsUnspecified()) {
		return Established
	}
	return Close
}

// unspecified returns 0.0.0.0 or ::.
func unspecified(f Family) netip.Addr {
	if f == IPv6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// parseAddrPort turns an address and port as lsof prints them into an
// AddrPort of family f: "" and "*" are the unspecified address, brackets
// are dropped, an IPv4 address on an IPv6 socket becomes IPv4-mapped (as
// Linux reports it) and an IPv4-mapped one on an IPv4 socket plain IPv4.
func parseAddrPort(ip string, port uint32, f Family) (netip.AddrPort, error) {
	if port > 0xffff {
		return netip.AddrPort{}, fmt.Errorf("sockets: port %d out of range", port)
	}
	if f != IPv4 && f != IPv6 {
		return netip.AddrPort{}, fmt.Errorf("sockets: address family %v: want IPv4 or IPv6", f)
	}
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	var a netip.Addr
	if ip == "" || ip == "*" {
		a = unspecified(f)
	} else {
		var err error
		if a, err = netip.ParseAddr(ip); err != nil {
			return netip.AddrPort{}, fmt.Errorf("sockets: address %q: %w", ip, err)
		}
	}
	a = unembedScope(a)
	switch {
	case f == IPv6 && a.Is4():
		a = netip.AddrFrom16(a.As16())
	case f == IPv4 && a.Is4In6():
		a = a.Unmap()
	case f == IPv4 && a.Is6():
		return netip.AddrPort{}, fmt.Errorf("sockets: IPv6 address %s on an IPv4 socket", a)
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// unembedScope moves a scope ID that BSD kernels embed in the second
// 16-bit word of a link-local IPv6 address (fe80:4::1), and that lsof
// prints as it is, into the zone (fe80::1%4). The word must be zero in a
// real link-local address (RFC 4291), so nothing else is touched.
func unembedScope(a netip.Addr) netip.Addr {
	if !a.Is6() || a.Is4In6() || !a.IsLinkLocalUnicast() || a.Zone() != "" {
		return a
	}
	b := a.As16()
	scope := uint16(b[2])<<8 | uint16(b[3])
	if scope == 0 {
		return a
	}
	b[2], b[3] = 0, 0
	return netip.AddrFrom16(b).WithZone(strconv.FormatUint(uint64(scope), 10))
}

// socketFromRow converts one row to a Socket. TCP rows need a known state;
// UDP rows are Established when they have a remote address, Close
// otherwise. An unconnected socket's remote is the unspecified address and
// port 0, as on Linux.
func socketFromRow(r connRow) (Socket, error) {
	if r.Proto != TCP && r.Proto != UDP {
		return Socket{}, fmt.Errorf("sockets: protocol %v: want tcp or udp", r.Proto)
	}
	local, err := parseAddrPort(r.LocalIP, r.LocalPort, r.Family)
	if err != nil {
		return Socket{}, err
	}
	remote, err := parseAddrPort(r.RemoteIP, r.RemotePort, r.Family)
	if err != nil {
		return Socket{}, err
	}
	s := Socket{Proto: r.Proto, Local: local, Remote: remote}
	if r.Proto == UDP {
		s.State = udpState(remote)
		return s, nil
	}
	st, ok := tcpStateFromName(r.Status)
	if !ok {
		return Socket{}, fmt.Errorf("sockets: unknown tcp state %q", r.Status)
	}
	s.State = st
	return s, nil
}

// udpStatesOf returns the states q selects UDP sockets by.
func udpStatesOf(q Query) StateSet {
	if q.UDPStates == 0 {
		return q.States
	}
	return q.UDPStates
}

// wantTCP and wantUDP report whether q can select any TCP or UDP socket.
// MPTCP exists only on Linux: elsewhere a query for it alone selects none.
func wantTCP(q Query) bool { return q.Protos&TCP != 0 && q.States != 0 && q.Families&AllFamilies != 0 }
func wantUDP(q Query) bool {
	return q.Protos&UDP != 0 && udpStatesOf(q) != 0 && q.Families&AllFamilies != 0
}

// selects reports whether q selects s: the filter the Linux kernel applies
// itself, applied in Go where the OS cannot.
func selects(q Query, s *Socket) bool {
	if q.Families&s.Family() == 0 {
		return false
	}
	switch s.Proto {
	case TCP:
		if q.Protos&TCP == 0 || !q.States.Has(s.State) {
			return false
		}
	case UDP:
		if q.Protos&UDP == 0 || !udpStatesOf(q).Has(s.State) {
			return false
		}
	default:
		return false
	}
	if q.LocalPort != 0 && s.Local.Port() != q.LocalPort {
		return false
	}
	if q.RemotePort != 0 && s.Remote.Port() != q.RemotePort {
		return false
	}
	return true
}

// lsofKind returns the gopsutil connection kind ("tcp4", "udp", "inet"…)
// that covers what q can select, or "" when q selects nothing.
func lsofKind(q Query) string {
	tcp, udp := wantTCP(q), wantUDP(q)
	if !tcp && !udp {
		return ""
	}
	kind := "inet"
	switch {
	case !udp:
		kind = "tcp"
	case !tcp:
		kind = "udp"
	}
	switch q.Families & AllFamilies {
	case IPv4:
		kind += "4"
	case IPv6:
		kind += "6"
	}
	return kind
}

// socketKey identifies a socket among rows that list it once per holder.
type socketKey struct {
	proto         Proto
	local, remote netip.AddrPort
	state         State
}

// socketsFromRows converts the rows q selects into sockets, skipping rows
// it cannot read, and returns beside each socket the PIDs holding it. lsof
// lists a socket once for every process holding it (after a fork, or with
// SO_REUSEPORT) and gopsutil does not keep the kernel address that tells
// them apart, so rows with the same protocol, addresses and state become
// one socket with several holders.
func socketsFromRows(q Query, rows []connRow) ([]Socket, [][]int) {
	var (
		socks   []Socket
		holders [][]int
		index   = map[socketKey]int{}
	)
	for _, r := range rows {
		s, err := socketFromRow(r)
		if err != nil || !selects(q, &s) {
			continue
		}
		k := socketKey{s.Proto, s.Local, s.Remote, s.State}
		i, ok := index[k]
		if !ok {
			i = len(socks)
			index[k] = i
			socks = append(socks, s)
			holders = append(holders, nil)
		}
		if pid := int(r.PID); pid > 0 && !containsPID(holders[i], pid) {
			holders[i] = append(holders[i], pid)
		}
	}
	return socks, holders
}

func containsPID(pids []int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

// attachHolders sets the Processes of t's sockets from holders, the PIDs
// beside each socket, looking each PID up once with lookup, which returns
// nil for a process that has gone. A socket gets its first holder's UID.
// Sockets with holder PIDs none of which could be looked up count as
// Unattributed; sockets with no holder PID (such as TIME_WAIT on Windows)
// do not.
func attachHolders(t *Table, holders [][]int, lookup func(pid int) *Process) {
	seen := map[int]*Process{}
	for i := range t.Sockets {
		if i >= len(holders) || len(holders[i]) == 0 {
			continue
		}
		s := &t.Sockets[i]
		for _, pid := range holders[i] {
			p, ok := seen[pid]
			if !ok {
				p = lookup(pid)
				seen[pid] = p
			}
			if p != nil {
				s.Processes = append(s.Processes, p)
			}
		}
		if len(s.Processes) == 0 {
			t.Unattributed++
			continue
		}
		s.UID = s.Processes[0].UID
	}
}
