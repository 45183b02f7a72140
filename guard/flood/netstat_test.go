package flood

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The files in testdata are /proc/net/netstat and /proc/net/snmp as
// Linux 6.18 wrote them: the host's (netstat, snmp), a fresh namespace's
// (netstat-newns), a namespace whose listener with backlog 1 was sent 8
// connections (*-overflow), and one that hping3 --flood hit for a second
// with tcp_syncookies=1 (*-synflood).
func TestParseNetstatFiles(t *testing.T) {
	tests := []struct {
		file   string
		groups []string // groups it must hold
		want   Counters
	}{
		{"netstat", []string{"TcpExt", "IpExt", "MPTcpExt"}, Counters{}},
		{"netstat-newns", []string{"TcpExt", "IpExt"}, Counters{}},
		{"netstat-overflow", []string{"TcpExt"}, Counters{ListenOverflows: 6, ListenDrops: 6}},
		{"netstat-synflood", []string{"TcpExt"}, Counters{SyncookiesSent: 309035, TCPReqQFullDoCookies: 309035}},
		{"snmp", []string{"Ip", "Icmp", "IcmpMsg", "Tcp", "Udp", "UdpLite"}, Counters{PassiveOpens: 469673}},
		{"snmp-overflow", []string{"Tcp"}, Counters{PassiveOpens: 2}},
		{"snmp-synflood", []string{"Tcp"}, Counters{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseNetstat(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("ParseNetstat(testdata/%s) error = %v", tt.file, err)
			}
			for _, g := range tt.groups {
				if len(got[g]) == 0 {
					t.Errorf("ParseNetstat(testdata/%s) has no group %s", tt.file, g)
				}
			}
			if diff := cmp.Diff(tt.want, CountersFrom(got)); diff != "" {
				t.Errorf("CountersFrom(ParseNetstat(testdata/%s)) mismatch (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

func TestParseNetstat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]map[string]uint64
		wantErr string
	}{
		{"empty", "", map[string]map[string]uint64{}, ""},
		{"one group", "TcpExt: ListenOverflows ListenDrops\nTcpExt: 3 5\n",
			map[string]map[string]uint64{"TcpExt": {"ListenOverflows": 3, "ListenDrops": 5}}, ""},
		{"no final newline, blank lines", "\nTcpExt: A\n\nTcpExt: 1",
			map[string]map[string]uint64{"TcpExt": {"A": 1}}, ""},
		// An older kernel: no TCPReqQFull counters (they came in 4.4).
		{"old kernel", "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed ListenOverflows ListenDrops\nTcpExt: 7 1 0 2 2\n",
			map[string]map[string]uint64{"TcpExt": {"SyncookiesSent": 7, "SyncookiesRecv": 1, "SyncookiesFailed": 0, "ListenOverflows": 2, "ListenDrops": 2}}, ""},
		{"negative left out", "Tcp: RtoMin MaxConn\nTcp: 200 -1\n",
			map[string]map[string]uint64{"Tcp": {"RtoMin": 200}}, ""},
		{"largest counter", "TcpExt: A\nTcpExt: 18446744073709551615\n",
			map[string]map[string]uint64{"TcpExt": {"A": 18446744073709551615}}, ""},
		{"two groups", "TcpExt: A\nTcpExt: 1\nIpExt: B C\nIpExt: 2 3\n",
			map[string]map[string]uint64{"TcpExt": {"A": 1}, "IpExt": {"B": 2, "C": 3}}, ""},
		{"too few values", "TcpExt: A B\nTcpExt: 1\n", nil, "1 values for 2 names"},
		{"too many values", "TcpExt: A\nTcpExt: 1 2\n", nil, "2 values for 1 names"},
		{"values of another group", "TcpExt: A\nIpExt: 1\n", nil, "values of IpExt follow the names of TcpExt"},
		{"names only", "TcpExt: A B\n", nil, "names and no values"},
		{"not a number", "TcpExt: A\nTcpExt: x\n", nil, `"x" is not a number`},
		{"overflow", "TcpExt: A\nTcpExt: 18446744073709551616\n", nil, "is not a number"},
		{"bad negative", "TcpExt: A\nTcpExt: -x\n", nil, "is not a number"},
		{"no colon", "TcpExt A\n", nil, `want "GROUP: ..."`},
		{"no names", "TcpExt:\nTcpExt:\n", nil, "names no counters"},
		{"space in group", "Tcp Ext: A\nTcp Ext: 1\n", nil, `want "GROUP: ..."`},
		{"line too long", "TcpExt: " + strings.Repeat("A ", maxLine) + "\n", nil, "token too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNetstat(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseNetstat(%q) error = %v; want one saying %q", clip(tt.in), err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseNetstat(%q) error = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseNetstat(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// FuzzParseNetstat checks that any text parses or fails without a panic,
// and that what parses keeps its counts: every group holds a value for
// every name it had, less the negative ones.
func FuzzParseNetstat(f *testing.F) {
	for _, name := range []string{"netstat", "netstat-synflood", "snmp"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("TcpExt: A\nTcpExt: -1\n"))
	f.Add([]byte("TcpExt: A B\nTcpExt: 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseNetstat(bytes.NewReader(b))
		if err != nil {
			if got != nil {
				t.Fatalf("ParseNetstat(%q) = %v with error %v; want nil", b, got, err)
			}
			return
		}
		for g, m := range got {
			if g == "" || strings.ContainsAny(g, " \t:") {
				t.Fatalf("ParseNetstat(%q) has group %q", b, g)
			}
			for name := range m {
				if name == "" || strings.ContainsAny(name, " \t\n") {
					t.Fatalf("ParseNetstat(%q) has counter %q in %s", b, name, g)
				}
			}
		}
		_ = CountersFrom(got)
	})
}

func BenchmarkParseNetstat(b *testing.B) {
	text, err := os.ReadFile(filepath.Join("testdata", "netstat"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if _, err := ParseNetstat(bytes.NewReader(text)); err != nil {
			b.Fatal(err)
		}
	}
}
