package sockets

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"unicode/utf16"
)

// Decoders of the tables Windows' iphlpapi GetExtendedTcpTable and
// GetExtendedUdpTable fill. They take bytes and are pure, so they are
// tested and fuzzed on every OS. Windows runs only on little-endian CPUs.

// The table classes portctl asks for (TCP_TABLE_CLASS and UDP_TABLE_CLASS
// in iprtrmib.h).
const (
	tcpTableOwnerPIDListener    = 3 // TCP_TABLE_OWNER_PID_LISTENER
	tcpTableOwnerPIDConnections = 4 // TCP_TABLE_OWNER_PID_CONNECTIONS
	tcpTableOwnerPIDAll         = 5 // TCP_TABLE_OWNER_PID_ALL
	udpTableOwnerPID            = 1 // UDP_TABLE_OWNER_PID
)

// Row sizes of the tables (tcpmib.h, udpmib.h), after a DWORD dwNumEntries.
const (
	// struct MIB_TCPROW_OWNER_PID { DWORD dwState, dwLocalAddr,
	// dwLocalPort, dwRemoteAddr, dwRemotePort, dwOwningPid; }
	mibTCPRowLen = 24
	// struct MIB_TCP6ROW_OWNER_PID { UCHAR ucLocalAddr[16]; DWORD
	// dwLocalScopeId, dwLocalPort; UCHAR ucRemoteAddr[16]; DWORD
	// dwRemoteScopeId, dwRemotePort, dwState, dwOwningPid; }
	mibTCP6RowLen = 56
	// struct MIB_UDPROW_OWNER_PID { DWORD dwLocalAddr, dwLocalPort,
	// dwOwningPid; }
	mibUDPRowLen = 12
	// struct MIB_UDP6ROW_OWNER_PID { UCHAR ucLocalAddr[16]; DWORD
	// dwLocalScopeId, dwLocalPort, dwOwningPid; }
	mibUDP6RowLen = 28
)

// tcpTableClass picks the smallest TCP table holding the states asked for:
// listeners only, connections only, or all.
func tcpTableClass(states StateSet) uint32 {
	switch {
	case states&^StatesOf(Listen) == 0:
		return tcpTableOwnerPIDListener
	case !states.Has(Listen):
		return tcpTableOwnerPIDConnections
	}
	return tcpTableOwnerPIDAll
}

// mibRows checks the table header and returns the rows' bytes.
func mibRows(b []byte, rowLen int, what string) ([]byte, int, error) {
	if len(b) < 4 {
		return nil, 0, fmt.Errorf("sockets: %s table truncated (%d bytes)", what, len(b))
	}
	n := uint64(binary.LittleEndian.Uint32(b[0:4]))
	if n*uint64(rowLen) > uint64(len(b)-4) {
		return nil, 0, fmt.Errorf("sockets: %s table: %d rows of %d bytes do not fit in %d bytes", what, n, rowLen, len(b)-4)
	}
	return b[4:], int(n), nil
}

// mibPort decodes a DWORD port field: the port in network byte order in
// its low 16 bits, so in its first two bytes.
func mibPort(b []byte) uint16 { return binary.BigEndian.Uint16(b[0:2]) }

// mibAddr6 decodes an IPv6 address and its scope ID, which names the
// zone of a link-local address.
func mibAddr6(addr []byte, scope uint32) netip.Addr {
	a := netip.AddrFrom16([16]byte(addr))
	if scope != 0 && a.IsLinkLocalUnicast() {
		a = a.WithZone(strconv.FormatUint(uint64(scope), 10))
	}
	return a
}

// parseTCPTable decodes a MIB_TCPTABLE_OWNER_PID (f IPv4) or a
// MIB_TCP6TABLE_OWNER_PID (f IPv6) and returns its sockets and, beside
// each, the owning PID (0 when none, as for TIME_WAIT). Rows in a state it
// does not know are skipped.
func parseTCPTable(b []byte, f Family) ([]Socket, []int, error) {
	rowLen := mibTCPRowLen
	if f == IPv6 {
		rowLen = mibTCP6RowLen
	}
	rows, n, err := mibRows(b, rowLen, "tcp")
	if err != nil {
		return nil, nil, err
	}
	socks := make([]Socket, 0, n)
	pids := make([]int, 0, n)
	for i := 0; i < n; i++ {
		r := rows[i*rowLen : (i+1)*rowLen]
		var (
			s        = Socket{Proto: TCP}
			stateNum uint32
			pid      uint32
		)
		if f == IPv6 {
			le := binary.LittleEndian
			s.Local = netip.AddrPortFrom(mibAddr6(r[0:16], le.Uint32(r[16:20])), mibPort(r[20:24]))
			s.Remote = netip.AddrPortFrom(mibAddr6(r[24:40], le.Uint32(r[40:44])), mibPort(r[44:48]))
			stateNum, pid = le.Uint32(r[48:52]), le.Uint32(r[52:56])
		} else {
			stateNum = binary.LittleEndian.Uint32(r[0:4])
			s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(r[4:8])), mibPort(r[8:12]))
			s.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(r[12:16])), mibPort(r[16:20]))
			pid = binary.LittleEndian.Uint32(r[20:24])
		}
		st, ok := tcpStateFromMIB(stateNum)
		if !ok {
			continue
		}
		s.State = st
		if s.State == Listen {
			// A listener's remote address and port "have no meaning"
			// (tcpmib.h) and may hold junk; Linux reports none.
			s.Remote = netip.AddrPortFrom(unspecified(f), 0)
		}
		socks = append(socks, s)
		pids = append(pids, int(pid))
	}
	return socks, pids, nil
}

// parseUDPTable decodes a MIB_UDPTABLE_OWNER_PID (f IPv4) or a
// MIB_UDP6TABLE_OWNER_PID (f IPv6) and returns its sockets and their
// owning PIDs. The tables hold no remote address, so every socket is
// reported bound and unconnected (Close), with an unspecified remote.
func parseUDPTable(b []byte, f Family) ([]Socket, []int, error) {
	rowLen := mibUDPRowLen
	if f == IPv6 {
		rowLen = mibUDP6RowLen
	}
	rows, n, err := mibRows(b, rowLen, "udp")
	if err != nil {
		return nil, nil, err
	}
	socks := make([]Socket, 0, n)
	pids := make([]int, 0, n)
	for i := 0; i < n; i++ {
		r := rows[i*rowLen : (i+1)*rowLen]
		s := Socket{Proto: UDP, State: Close}
		var pid uint32
		if f == IPv6 {
			le := binary.LittleEndian
			s.Local = netip.AddrPortFrom(mibAddr6(r[0:16], le.Uint32(r[16:20])), mibPort(r[20:24]))
			s.Remote = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
			pid = le.Uint32(r[24:28])
		} else {
			s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(r[0:4])), mibPort(r[4:8]))
			s.Remote = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
			pid = binary.LittleEndian.Uint32(r[8:12])
		}
		socks = append(socks, s)
		pids = append(pids, int(pid))
	}
	return socks, pids, nil
}

// parseUnicodeString decodes the UNICODE_STRING (ntdef.h) at the start of
// buf, whose Buffer points into buf itself, as NtQueryInformationProcess
// returns it for ProcessCommandLineInformation:
//
//	struct { USHORT Length, MaximumLength; PWSTR Buffer; }
//
// base is the address of buf[0] and ptrSize 4 or 8. Rather than follow the
// pointer it finds the text's offset in buf and checks every bound.
func parseUnicodeString(buf []byte, base uint64, ptrSize int) (string, error) {
	hdr := 8
	if ptrSize == 8 {
		hdr = 16
	}
	if len(buf) < hdr {
		return "", fmt.Errorf("sockets: UNICODE_STRING truncated (%d bytes)", len(buf))
	}
	n := int(binary.LittleEndian.Uint16(buf[0:2]))
	var ptr uint64
	if ptrSize == 8 {
		ptr = binary.LittleEndian.Uint64(buf[8:16])
	} else {
		ptr = uint64(binary.LittleEndian.Uint32(buf[4:8]))
	}
	if n == 0 {
		return "", nil
	}
	if n%2 != 0 || ptr < base || ptr-base > uint64(len(buf)) || uint64(n) > uint64(len(buf))-(ptr-base) {
		return "", fmt.Errorf("sockets: UNICODE_STRING of %d bytes at offset %d outside its %d-byte buffer", n, int64(ptr-base), len(buf))
	}
	text := buf[ptr-base : ptr-base+uint64(n)]
	u := make([]uint16, n/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(text[2*i:])
	}
	return string(utf16.Decode(u)), nil
}
