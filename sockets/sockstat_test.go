package sockets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSockstatFiles(t *testing.T) {
	tests := []struct {
		file string
		want Sockstat
	}{
		{
			"sockstat",
			Sockstat{
				"sockets": {"used": 123},
				"TCP":     {"inuse": 5, "orphan": 0, "tw": 2, "alloc": 7, "mem": 1},
				"UDP":     {"inuse": 2, "mem": 1},
				"UDPLITE": {"inuse": 0},
				"RAW":     {"inuse": 0},
				"FRAG":    {"inuse": 0, "memory": 0},
			},
		},
		{
			"sockstat6",
			Sockstat{
				"TCP6":     {"inuse": 3},
				"UDP6":     {"inuse": 2},
				"UDPLITE6": {"inuse": 0},
				"RAW6":     {"inuse": 1},
				"FRAG6":    {"inuse": 0, "memory": 0},
			},
		},
	}
	for _, tt := range tests {
		b, err := os.ReadFile(filepath.Join("testdata", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseSockstat(b)
		if err != nil {
			t.Errorf("ParseSockstat(testdata/%s) error = %v", tt.file, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseSockstat(testdata/%s) mismatch (-want +got):\n%s", tt.file, diff)
		}
	}
}

func TestParseSockstat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Sockstat
		wantErr bool
	}{
		{"empty", "", Sockstat{}, false},
		{"blank lines", "\n  \nTCP: inuse 1\n\n", Sockstat{"TCP": {"inuse": 1}}, false},
		{"no counters", "TCP:\n", Sockstat{"TCP": {}}, false},
		{"tabs and extra spaces", "TCP:\tinuse  1\t tw 2  \n", Sockstat{"TCP": {"inuse": 1, "tw": 2}}, false},
		{"repeated protocol merges", "TCP: inuse 1\nTCP: tw 2\n", Sockstat{"TCP": {"inuse": 1, "tw": 2}}, false},
		{"negative counter", "TCP: orphan -1\n", Sockstat{"TCP": {"orphan": -1}}, false},
		{"large counter", "TCP: mem 9223372036854775807\n", Sockstat{"TCP": {"mem": 9223372036854775807}}, false},
		{"odd field count", "TCP: inuse 5 orphan\n", nil, true},
		{"single name", "UDP: inuse\n", nil, true},
		{"non-numeric", "TCP: inuse five\n", nil, true},
		{"overflow", "TCP: mem 9223372036854775808\n", nil, true},
		{"no colon", "TCP inuse 5\n", nil, true},
		{"no protocol", ": inuse 5\n", nil, true},
		{"error after good lines", "TCP: inuse 5\nUDP: inuse x\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSockstat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseSockstat(%q) error = %v; want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseSockstat(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseSockstatLongLine(t *testing.T) {
	in := "TCP: inuse 1\nX: " + strings.Repeat("a 1 ", 20000) + "\n"
	if _, err := ParseSockstat([]byte(in)); err == nil {
		t.Errorf("ParseSockstat(line of %d bytes) error = nil; want bufio.ErrTooLong", len(in))
	}
}

func FuzzParseSockstat(f *testing.F) {
	for _, name := range []string{"sockstat", "sockstat6"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{"TCP: inuse 5 orphan", "TCP: inuse x", ":", "a:b c", "\n\n", "TCP: inuse -0"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSockstat(b)
		if err != nil {
			return
		}
		for proto, m := range s {
			if proto == "" || strings.ContainsAny(proto, ":\n") || m == nil {
				t.Fatalf("ParseSockstat(%q): protocol %q with counters %v", b, proto, m)
			}
		}
	})
}
