package sshtun

import (
	"bytes"
	"strings"
	"testing"
)

func TestReadSOCKSRequest(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		addr string
		code byte
	}{
		{"ipv4", []byte{5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90}, "127.0.0.1:8080", 0},
		{"domain", append(append([]byte{5, 1, 0, 3, 9}, "localhost"...), 0, 80), "localhost:80", 0},
		{"ipv6", append(append([]byte{5, 1, 0, 4}, bytes.Repeat([]byte{0}, 15)...), 1, 0, 22), "[::1]:22", 0},
		{"bind", []byte{5, 2, 0, 1, 127, 0, 0, 1, 0, 80}, "", socksCommandUnsupported},
		{"atyp", []byte{5, 1, 0, 9}, "", socksAddrUnsupported},
		{"version", []byte{4, 1, 0, 1}, "", socksGeneralFailure},
		{"short", []byte{5, 1, 0, 1, 127}, "", 0},
		{"empty name", []byte{5, 1, 0, 3, 0, 0, 80}, "", socksHostUnreachable},
		{"bad name", append(append([]byte{5, 1, 0, 3, 3}, "a b"...), 0, 80), "", socksHostUnreachable},
	}
	for _, tt := range tests {
		addr, code, err := readSOCKSRequest(bytes.NewReader(tt.in))
		if addr != tt.addr || code != tt.code || (err == nil) != (tt.addr != "") {
			t.Errorf("%s: readSOCKSRequest = %q, %d, %v; want %q, %d", tt.name, addr, code, err, tt.addr, tt.code)
		}
	}
}

func FuzzReadSOCKSRequest(f *testing.F) {
	f.Add([]byte{5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90})
	f.Add(append(append([]byte{5, 1, 0, 3, 9}, "localhost"...), 0, 80))
	f.Add([]byte{5, 1, 0, 4, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		addr, _, err := readSOCKSRequest(bytes.NewReader(b))
		if err == nil && (addr == "" || strings.ContainsAny(addr, " /@")) {
			t.Fatalf("readSOCKSRequest(%x) = %q", b, addr)
		}
	})
}
