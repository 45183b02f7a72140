package scan

import (
	"encoding/binary"
	"testing"
)

func TestUDPClassifyICMP(t *testing.T) {
	tests := []struct {
		name       string
		icmp6      bool
		typ, code  uint8
		st         State
		reason     Reason
		conclusive bool
	}{
		{"port unreachable", false, 3, 3, Closed, ReasonPortUnreach, true},
		{"net unreachable", false, 3, 0, Filtered, ReasonNetUnreach, true},
		{"host unreachable", false, 3, 1, Filtered, ReasonHostUnreach, true},
		{"protocol unreachable", false, 3, 2, Filtered, ReasonProtoUnreach, true},
		{"net prohibited", false, 3, 9, Filtered, ReasonAdminProhibited, true},
		{"host prohibited", false, 3, 10, Filtered, ReasonAdminProhibited, true},
		{"admin prohibited", false, 3, 13, Filtered, ReasonAdminProhibited, true},
		{"fragmentation needed", false, 3, 4, 0, "", false},
		{"time exceeded", false, 11, 0, Filtered, ReasonTimeExceeded, true},
		{"echo reply", false, 0, 0, 0, "", false},
		{"v6 port unreachable", true, 1, 4, Closed, ReasonPortUnreach, true},
		{"v6 no route", true, 1, 0, Filtered, ReasonNetUnreach, true},
		{"v6 admin prohibited", true, 1, 1, Filtered, ReasonAdminProhibited, true},
		{"v6 reject route", true, 1, 6, Filtered, ReasonAdminProhibited, true},
		{"v6 address unreachable", true, 1, 3, Filtered, ReasonHostUnreach, true},
		{"v6 time exceeded", true, 3, 0, Filtered, ReasonTimeExceeded, true},
		{"v6 packet too big", true, 2, 0, 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, reason, ok := classifyICMP(tt.icmp6, tt.typ, tt.code)
			if st != tt.st || reason != tt.reason || ok != tt.conclusive {
				t.Errorf("classifyICMP(%v, %d, %d) = %v, %q, %v; want %v, %q, %v", tt.icmp6, tt.typ, tt.code, st, reason, ok, tt.st, tt.reason, tt.conclusive)
			}
		})
	}
}

func TestUDPParseExtendedErr(t *testing.T) {
	// ECONNREFUSED (111) from ICMP type 3 code 3, as x86-64 delivers it.
	b := []byte{111, 0, 0, 0, eeOriginICMP, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	ee, ok := parseExtendedErr(b, binary.LittleEndian)
	want := extendedErr{Errno: 111, Origin: eeOriginICMP, Type: 3, Code: 3}
	if !ok || ee != want {
		t.Fatalf("parseExtendedErr(% x) = %+v, %v; want %+v, true", b, ee, ok, want)
	}
	if st, reason, ok := ee.classify(); st != Closed || reason != ReasonPortUnreach || !ok {
		t.Errorf("classify = %v, %v, %v; want closed, port-unreach, true", st, reason, ok)
	}
	local := extendedErr{Errno: 90, Origin: eeOriginLocal}
	if _, _, ok := local.classify(); ok {
		t.Error("a local error (EMSGSIZE) decided a port")
	}
	if _, ok := parseExtendedErr(b[:15], binary.LittleEndian); ok {
		t.Error("parseExtendedErr accepted 15 bytes")
	}
}

func FuzzParseExtendedErr(f *testing.F) {
	f.Add([]byte{111, 0, 0, 0, 2, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{113, 0, 0, 0, 3, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ee, ok := parseExtendedErr(b, binary.NativeEndian)
		if ok != (len(b) >= extendedErrLen) {
			t.Fatalf("parseExtendedErr of %d bytes: ok %v", len(b), ok)
		}
		st, reason, decided := ee.classify()
		if decided != (reason != "") || decided != (st != 0) {
			t.Fatalf("classify(%+v) = %v, %q, %v: state and reason disagree", ee, st, reason, decided)
		}
	})
}
