package netconf_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/registry"
)

// The files in testdata/netsh are netsh output as Windows prints it
// (CRLF line ends, labels translated on a German system), written from
// the documented format.
func readNetsh(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "netsh", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseNetshDynamicPort(t *testing.T) {
	tests := []struct {
		file string
		want registry.Range
	}{
		{"dynamicport-default.txt", registry.Range{First: 49152, Last: 65535}},
		{"dynamicport-custom.txt", registry.Range{First: 10000, Last: 10999}},
		{"dynamicport-de.txt", registry.Range{First: 1025, Last: 65535}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := netconf.ParseNetshDynamicPort(readNetsh(t, tt.file))
			if err != nil || got != tt.want {
				t.Errorf("ParseNetshDynamicPort(%s) = %v, %v; want %v", tt.file, got, err, tt.want)
			}
		})
	}
}

func TestParseNetshDynamicPortErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"no rule", "Start Port : 49152\nNumber of Ports : 16384\n"},
		{"count missing", "Protocol tcp Dynamic Port Range\n-----\nStart Port : 49152\n"},
		{"past 65535", "Protocol tcp Dynamic Port Range\n-----\nStart Port : 49152\nNumber of Ports : 16385\n"},
		{"no ports", "Protocol tcp Dynamic Port Range\n-----\nStart Port : 49152\nNumber of Ports : 0\n"},
		{"start 0", "Protocol tcp Dynamic Port Range\n-----\nStart Port : 0\nNumber of Ports : 10\n"},
		{"start too big", "Protocol tcp Dynamic Port Range\n-----\nStart Port : 70000\nNumber of Ports : 1\n"},
		{"not a number", "Protocol tcp Dynamic Port Range\n-----\nStart Port : many\nNumber of Ports : 1\n"},
		{"huge count", "Protocol tcp Dynamic Port Range\n-----\nStart Port : 1\nNumber of Ports : 4294967295\n"},
		{"netsh error", "The following command was not found: int ipv4 show dynamicport tcp.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := netconf.ParseNetshDynamicPort([]byte(tt.in)); err == nil {
				t.Errorf("ParseNetshDynamicPort(%q) = %v, nil; want an error", tt.in, got)
			}
		})
	}
}

func TestParseNetshExcluded(t *testing.T) {
	tests := []struct {
		file string
		want []registry.Range
	}{
		{"excludedportrange-hyperv.txt", []registry.Range{
			{First: 5357, Last: 5357}, {First: 49671, Last: 49770}, {First: 50000, Last: 50059}, {First: 61117, Last: 61216},
		}},
		{"excludedportrange-none.txt", nil},
		{"excludedportrange-de.txt", []registry.Range{{First: 2869, Last: 2869}, {First: 50000, Last: 50059}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := netconf.ParseNetshExcluded(readNetsh(t, tt.file))
			if err != nil {
				t.Fatalf("ParseNetshExcluded(%s) error: %v", tt.file, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseNetshExcluded(%s) mismatch (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

func TestParseNetshExcludedErrors(t *testing.T) {
	const head = "Protocol tcp Port Exclusion Ranges\n\nStart Port    End Port\n----------    --------\n"
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"no rule", "Start Port    End Port\n5357 5357\n"},
		{"netsh error", "The following command was not found: int ipv4 show excludedportrange.\n"},
		{"backwards", head + "  5358   5357\n"},
		{"out of range", head + "  65535   65536\n"},
		{"one port", head + "  5357\n"},
		{"unknown mark", head + "  5357   5357   +\n"},
		{"too many fields", head + "  5357   5357   *   x\n"},
		{"letters", head + "  5357   x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := netconf.ParseNetshExcluded([]byte(tt.in)); err == nil {
				t.Errorf("ParseNetshExcluded(%q) = %v, nil; want an error", tt.in, got)
			}
		})
	}
}

// A Host with the excluded ranges answers IsReserved for them.
func TestNetshExcludedReserved(t *testing.T) {
	r, err := netconf.ParseNetshExcluded(readNetsh(t, "excludedportrange-hyperv.txt"))
	if err != nil {
		t.Fatal(err)
	}
	h := netconf.Host{Reserved: r}
	for _, tt := range []struct {
		port uint16
		want bool
	}{{5357, true}, {5358, false}, {49700, true}, {50059, true}, {50060, false}} {
		if got := h.IsReserved(tt.port); got != tt.want {
			t.Errorf("IsReserved(%d) = %v; want %v", tt.port, got, tt.want)
		}
	}
}

func FuzzParseNetshDynamicPort(f *testing.F) {
	for _, name := range []string{"dynamicport-default.txt", "dynamicport-custom.txt", "dynamicport-de.txt"} {
		f.Add(readNetsh(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := netconf.ParseNetshDynamicPort(b)
		if err == nil && (r.First == 0 || r.First > r.Last) {
			t.Fatalf("ParseNetshDynamicPort(%q) = %v; want a proper range", b, r)
		}
	})
}

func FuzzParseNetshExcluded(f *testing.F) {
	for _, name := range []string{"excludedportrange-hyperv.txt", "excludedportrange-none.txt", "excludedportrange-de.txt"} {
		f.Add(readNetsh(f, name))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := netconf.ParseNetshExcluded(b)
		if err != nil {
			return
		}
		for _, r := range rs {
			if r.First > r.Last {
				t.Fatalf("ParseNetshExcluded(%q) gave %v", b, r)
			}
		}
	})
}
