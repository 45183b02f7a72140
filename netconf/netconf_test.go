package netconf_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/registry"
)

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    registry.Range
		wantErr bool
	}{
		{"kernel default", "32768\t60999\n", registry.Range{First: 32768, Last: 60999}, false},
		{"spaces", "  1024   65535  ", registry.Range{First: 1024, Last: 65535}, false},
		{"one port", "40000 40000\n", registry.Range{First: 40000, Last: 40000}, false},
		{"three numbers", "1 2 3", registry.Range{}, true},
		{"one number", "32768\n", registry.Range{}, true},
		{"backwards", "60999 32768", registry.Range{}, true},
		{"letters", "a b", registry.Range{}, true},
		{"out of range", "1024 65536", registry.Range{}, true},
		{"negative", "-1 10", registry.Range{}, true},
		{"empty", "", registry.Range{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := netconf.ParsePortRange([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParsePortRange(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseReserved(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []registry.Range
		wantErr bool
	}{
		{"empty", "", nil, false},
		{"empty line", "\n", nil, false},
		{"port and range", "8080,9000-9010\n", []registry.Range{{First: 8080, Last: 8080}, {First: 9000, Last: 9010}}, false},
		{"one port", "22\n", []registry.Range{{First: 22, Last: 22}}, false},
		{"space after comma", "1, 2-3", []registry.Range{{First: 1, Last: 1}, {First: 2, Last: 3}}, false},
		{"empty item", "8080,,9", nil, true},
		{"trailing comma", "8080,", nil, true},
		{"out of range", "70000", nil, true},
		{"backwards range", "9010-9000", nil, true},
		{"letters", "http", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := netconf.ParseReserved([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseReserved(%q) = %v, %v; want error %v", tt.in, got, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseReserved(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseUnprivilegedStart(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr bool
	}{
		{"default", "1024\n", 1024, false},
		{"zero", "0", 0, false},
		{"max port", "65535\n", 65535, false},
		{"kernel max: nothing unprivileged", "65536", 65536, false},
		{"above the kernel max", "65537", 0, true},
		{"space", "  80  \n", 80, false},
		{"letters", "x", 0, true},
		{"empty", "", 0, true},
		{"negative", "-1", 0, true},
		{"plus sign", "+80", 0, true},
		{"too big for uint32", "99999999999", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := netconf.ParseUnprivilegedStart([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseUnprivilegedStart(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestHost(t *testing.T) {
	h := netconf.Host{
		Ephemeral:         registry.Range{First: 32768, Last: 60999},
		Reserved:          []registry.Range{{First: 8080, Last: 8080}, {First: 9000, Last: 9010}},
		UnprivilegedStart: 1024,
	}
	tests := []struct {
		port                            uint16
		privileged, ephemeral, reserved bool
	}{
		{0, false, false, false},
		{1, true, false, false},
		{80, true, false, false},
		{1023, true, false, false},
		{1024, false, false, false},
		{8080, false, false, true},
		{8081, false, false, false},
		{8999, false, false, false},
		{9000, false, false, true},
		{9010, false, false, true},
		{9011, false, false, false},
		{32767, false, false, false},
		{32768, false, true, false},
		{60999, false, true, false},
		{61000, false, false, false},
		{65535, false, false, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(int(tt.port)), func(t *testing.T) {
			if got := h.Privileged(tt.port); got != tt.privileged {
				t.Errorf("Privileged(%d) = %v; want %v", tt.port, got, tt.privileged)
			}
			if got := h.InEphemeral(tt.port); got != tt.ephemeral {
				t.Errorf("InEphemeral(%d) = %v; want %v", tt.port, got, tt.ephemeral)
			}
			if got := h.IsReserved(tt.port); got != tt.reserved {
				t.Errorf("IsReserved(%d) = %v; want %v", tt.port, got, tt.reserved)
			}
		})
	}
}

func TestHostNothingPrivileged(t *testing.T) {
	h := netconf.Host{UnprivilegedStart: 0}
	for _, p := range []uint16{0, 1, 80, 1023, 65535} {
		if h.Privileged(p) {
			t.Errorf("Privileged(%d) = true with UnprivilegedStart 0; want false", p)
		}
		if h.IsReserved(p) {
			t.Errorf("IsReserved(%d) = true with no reserved ports; want false", p)
		}
	}
}

func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"32768\t60999\n", "1 2 3", "60999 32768", "a b", "", "0 65535", "1024 65536"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := netconf.ParsePortRange(b)
		if err != nil {
			return
		}
		if r.First > r.Last {
			t.Errorf("ParsePortRange(%q) = %v; First > Last", b, r)
		}
		again := fmt.Sprintf("%d\t%d\n", r.First, r.Last)
		if got, err := netconf.ParsePortRange([]byte(again)); err != nil || got != r {
			t.Errorf("ParsePortRange(%q) = %v, %v; want %v, nil (round trip of %q)", again, got, err, r, b)
		}
	})
}

func FuzzParseReserved(f *testing.F) {
	for _, s := range []string{"", "\n", "8080,9000-9010\n", "8080,,9", "70000", "1, 2-3", "0-65535"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := netconf.ParseReserved(b)
		if err != nil {
			return
		}
		parts := make([]string, len(rs))
		for i, r := range rs {
			if r.First > r.Last {
				t.Errorf("ParseReserved(%q) returned %v; First > Last", b, r)
			}
			parts[i] = r.String()
		}
		again := strings.Join(parts, ",") + "\n"
		got, err := netconf.ParseReserved([]byte(again))
		if err != nil {
			t.Fatalf("ParseReserved(%q) error %v (round trip of %q)", again, err, b)
		}
		if diff := cmp.Diff(rs, got); diff != "" {
			t.Errorf("ParseReserved(%q) round trip of %q mismatch (-want +got):\n%s", again, b, diff)
		}
	})
}

func FuzzParseUnprivilegedStart(f *testing.F) {
	for _, s := range []string{"1024\n", "0", "65536", "x", "", "4294967295", "4294967296"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := netconf.ParseUnprivilegedStart(b)
		if err != nil {
			if !errors.Is(err, registry.ErrSyntax) {
				t.Errorf("ParseUnprivilegedStart(%q) error %v does not match ErrSyntax", b, err)
			}
			return
		}
		if p < 0 || p > 65536 {
			t.Errorf("ParseUnprivilegedStart(%q) = %d; want 0-65536", b, p)
		}
		again := strconv.Itoa(int(p)) + "\n"
		if got, err := netconf.ParseUnprivilegedStart([]byte(again)); err != nil || got != p {
			t.Errorf("ParseUnprivilegedStart(%q) = %v, %v; want %v, nil (round trip of %q)", again, got, err, p, b)
		}
	})
}

func TestParseSyncookies(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"0\n", 0, false},
		{"1\n", 1, false},
		{" 2 ", 2, false},
		{"3", 0, true},
		{"-1", 0, true},
		{"", 0, true},
		{"on", 0, true},
	}
	for _, tt := range tests {
		got, err := netconf.ParseSyncookies([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSyncookies(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, registry.ErrSyntax) {
			t.Errorf("ParseSyncookies(%q) error %v does not match ErrSyntax", tt.in, err)
		}
	}
}

func FuzzParseSyncookies(f *testing.F) {
	for _, s := range []string{"0\n", "1", "2", "3", "", "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := netconf.ParseSyncookies(b)
		if err != nil {
			return
		}
		if v < 0 || v > 2 {
			t.Errorf("ParseSyncookies(%q) = %d; want 0-2", b, v)
		}
	})
}
