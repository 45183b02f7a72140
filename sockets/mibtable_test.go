package sockets

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"
)

// unhex decodes hex with spaces and newlines between the bytes.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Tables laid out by hand from tcpmib.h and udpmib.h: DWORDs little-endian,
// addresses in network order, ports in network order in a DWORD's first
// two bytes.
const (
	// MIB_TCPTABLE_OWNER_PID, 3 rows.
	tcp4Table = `03000000
		02000000 00000000 00870000 00000000 4a1b0000 d4040000
		05000000 7f000001 c2060000 7f000001 15380000 04000000
		0b000000 c0a80102 c3500000 5db8d822 01bb0000 00000000`
	// MIB_TCP6TABLE_OWNER_PID, 2 rows.
	tcp6Table = `02000000
		00000000000000000000000000000000 00000000 01bd0000 00000000000000000000000000000000 00000000 00000000 02000000 04000000
		fe800000000000000000000000000001 0c000000 c3510000 fe800000000000000000000000000002 0c000000 00160000 05000000 39300000`
	// MIB_UDPTABLE_OWNER_PID, 2 rows.
	udp4Table = `02000000
		00000000 14e90000 60090000
		7f000001 00350000 00000000`
	// MIB_UDP6TABLE_OWNER_PID, 1 row.
	udp6Table = `01000000
		00000000000000000000000000000001 00000000 14e90000 60090000`
)

func TestParseTCPTable(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name     string
		table    string
		f        Family
		want     []Socket
		wantPIDs []int
	}{
		{"ipv4", tcp4Table, IPv4, []Socket{
			// The listener's remote port (0x1b4a) is junk and dropped.
			{Proto: TCP, Local: ap("0.0.0.0:135"), Remote: ap("0.0.0.0:0"), State: Listen},
			{Proto: TCP, Local: ap("127.0.0.1:49670"), Remote: ap("127.0.0.1:5432"), State: Established},
			{Proto: TCP, Local: ap("192.168.1.2:50000"), Remote: ap("93.184.216.34:443"), State: TimeWait},
		}, []int{1236, 4, 0}},
		{"ipv6", tcp6Table, IPv6, []Socket{
			{Proto: TCP, Local: ap("[::]:445"), Remote: ap("[::]:0"), State: Listen},
			{Proto: TCP, Local: ap("[fe80::1%12]:50001"), Remote: ap("[fe80::2%12]:22"), State: Established},
		}, []int{4, 12345}},
		{"empty", "00000000", IPv4, []Socket{}, []int{}},
		{"slack after the rows", "00000000 ffffffff", IPv6, []Socket{}, []int{}},
		{"unknown state skipped", `01000000 63000000 00000000 00870000 00000000 00000000 01000000`, IPv4, []Socket{}, []int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, pids, err := parseTCPTable(unhex(t, tt.table), tt.f)
			if err != nil {
				t.Fatalf("parseTCPTable error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, addrOpts); diff != "" {
				t.Errorf("parseTCPTable sockets mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantPIDs, pids); diff != "" {
				t.Errorf("parseTCPTable PIDs mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseUDPTable(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name     string
		table    string
		f        Family
		want     []Socket
		wantPIDs []int
	}{
		{"ipv4", udp4Table, IPv4, []Socket{
			{Proto: UDP, Local: ap("0.0.0.0:5353"), Remote: ap("0.0.0.0:0"), State: Close},
			{Proto: UDP, Local: ap("127.0.0.1:53"), Remote: ap("0.0.0.0:0"), State: Close},
		}, []int{2400, 0}},
		{"ipv6", udp6Table, IPv6, []Socket{
			{Proto: UDP, Local: ap("[::1]:5353"), Remote: ap("[::]:0"), State: Close},
		}, []int{2400}},
		{"empty", "00000000", IPv6, []Socket{}, []int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, pids, err := parseUDPTable(unhex(t, tt.table), tt.f)
			if err != nil {
				t.Fatalf("parseUDPTable error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, addrOpts); diff != "" {
				t.Errorf("parseUDPTable sockets mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantPIDs, pids); diff != "" {
				t.Errorf("parseUDPTable PIDs mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseMIBTableErrors(t *testing.T) {
	tests := []struct {
		name  string
		table string
		f     Family
		udp   bool
	}{
		{"no header", "", IPv4, false},
		{"short header", "010000", IPv4, true},
		{"row missing", "01000000", IPv4, false},
		{"row truncated", "01000000 02000000 00000000", IPv4, false},
		{"ipv6 row is longer", tcp4Table, IPv6, false},
		{"udp6 row is longer", udp4Table, IPv6, true},
		{"count overflows", "ffffffff 00000000", IPv6, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := parseTCPTable
			if tt.udp {
				parse = parseUDPTable
			}
			if socks, _, err := parse(unhex(t, tt.table), tt.f); err == nil {
				t.Errorf("parse(%q, %v) = %v, nil; want an error", tt.table, tt.f, socks)
			}
		})
	}
}

func TestTCPTableClass(t *testing.T) {
	tests := []struct {
		name   string
		states StateSet
		want   uint32
	}{
		{"listen only", StatesOf(Listen), tcpTableOwnerPIDListener},
		{"connections", StatesOf(Established, TimeWait), tcpTableOwnerPIDConnections},
		{"listen and more", StatesOf(Listen, Established), tcpTableOwnerPIDAll},
		{"all", AllStates, tcpTableOwnerPIDAll},
	}
	for _, tt := range tests {
		if got := tcpTableClass(tt.states); got != tt.want {
			t.Errorf("%s: tcpTableClass(%#x) = %d; want %d", tt.name, tt.states, got, tt.want)
		}
	}
}

// unicodeString lays out a UNICODE_STRING followed by its text, as
// NtQueryInformationProcess returns it, for a buffer at address base.
func unicodeString(s string, base uint64, ptrSize int) []byte {
	u := utf16.Encode([]rune(s))
	hdr := 8
	if ptrSize == 8 {
		hdr = 16
	}
	b := make([]byte, hdr+2*len(u))
	binary.LittleEndian.PutUint16(b[0:2], uint16(2*len(u)))
	binary.LittleEndian.PutUint16(b[2:4], uint16(2*len(u)))
	if ptrSize == 8 {
		binary.LittleEndian.PutUint64(b[8:16], base+uint64(hdr))
	} else {
		binary.LittleEndian.PutUint32(b[4:8], uint32(base)+uint32(hdr))
	}
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[hdr+2*i:], c)
	}
	return b
}

func TestParseUnicodeString(t *testing.T) {
	const base = 0x000000c000123400
	const cmdline = `"C:\Program Files\nginx\nginx.exe" -p C:\nginx ü€`
	tests := []struct {
		name    string
		buf     []byte
		base    uint64
		ptrSize int
		want    string
		wantErr bool
	}{
		{"64-bit", unicodeString(cmdline, base, 8), base, 8, cmdline, false},
		{"32-bit", unicodeString(cmdline, 0x00401000, 4), 0x00401000, 4, cmdline, false},
		{"empty", unicodeString("", base, 8), base, 8, "", false},
		{"text overruns the buffer", unicodeString(cmdline, base, 8), base - 8, 8, "", true},
		{"pointer before the buffer", unicodeString(cmdline, base, 8), base + 1<<20, 8, "", true},
		{"pointer far after the buffer", unicodeString(cmdline, base+1<<40, 8), base, 8, "", true},
		{"odd length", func() []byte {
			b := unicodeString("ab", base, 8)
			b[0] = 3
			return b
		}(), base, 8, "", true},
		{"truncated header", []byte{2, 0, 2, 0}, base, 8, "", true},
		{"text cut short", unicodeString(cmdline, base, 8)[:20], base, 8, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUnicodeString(tt.buf, tt.base, tt.ptrSize)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseUnicodeString = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzParseTCPTable(f *testing.F) {
	for _, s := range []string{tcp4Table, tcp6Table, "00000000", "ffffffff"} {
		f.Add(unhex(f, s), false)
		f.Add(unhex(f, s), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		fam := IPv4
		if v6 {
			fam = IPv6
		}
		socks, pids, err := parseTCPTable(b, fam)
		if err != nil {
			return
		}
		if len(socks) != len(pids) {
			t.Fatalf("parseTCPTable: %d sockets but %d PIDs", len(socks), len(pids))
		}
		for _, s := range socks {
			if s.Proto != TCP || s.Family() != fam || s.State == 0 || !s.Local.IsValid() || !s.Remote.IsValid() {
				t.Fatalf("parseTCPTable gave %+v", s)
			}
		}
	})
}

func FuzzParseUDPTable(f *testing.F) {
	for _, s := range []string{udp4Table, udp6Table, "00000000"} {
		f.Add(unhex(f, s), false)
		f.Add(unhex(f, s), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		fam := IPv4
		if v6 {
			fam = IPv6
		}
		socks, pids, err := parseUDPTable(b, fam)
		if err != nil {
			return
		}
		if len(socks) != len(pids) {
			t.Fatalf("parseUDPTable: %d sockets but %d PIDs", len(socks), len(pids))
		}
		for _, s := range socks {
			if s.Proto != UDP || s.Family() != fam || s.State != Close {
				t.Fatalf("parseUDPTable gave %+v", s)
			}
		}
	})
}

func FuzzParseUnicodeString(f *testing.F) {
	f.Add(unicodeString("a.exe -x", 0x1000, 8), uint64(0x1000), true)
	f.Add(unicodeString("a.exe -x", 0x1000, 4), uint64(0x1000), false)
	f.Fuzz(func(t *testing.T, b []byte, base uint64, ptr64 bool) {
		size := 4
		if ptr64 {
			size = 8
		}
		s, err := parseUnicodeString(b, base, size)
		if err == nil && len(s) > 3*len(b) {
			t.Fatalf("parseUnicodeString gave %d bytes of text from a %d-byte buffer", len(s), len(b))
		}
	})
}
