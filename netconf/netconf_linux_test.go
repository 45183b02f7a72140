package netconf_test

import (
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/internal/testnet"

	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/registry"
)

func TestReadFS(t *testing.T) {
	const hint = "root or CAP_NET_BIND_SERVICE"
	defaults := netconf.Host{
		Ephemeral:         registry.Range{First: 32768, Last: 60999},
		EphemeralDefault:  true,
		UnprivilegedStart: 1024,
		PrivilegeHint:     hint,
		TCPTWReuse:        -1,
		TCPSyncookies:     -1,
	}
	tests := []struct {
		name string
		fsys fstest.MapFS
		want netconf.Host
	}{
		{"no files", fstest.MapFS{}, defaults},
		{"all files", fstest.MapFS{
			"ip_local_port_range":        {Data: []byte("10000\t20000\n")},
			"ip_local_reserved_ports":    {Data: []byte("8080,9000-9010\n")},
			"ip_unprivileged_port_start": {Data: []byte("80\n")},
			"tcp_tw_reuse":               {Data: []byte("2\n")},
			"tcp_syncookies":             {Data: []byte("0\n")},
		}, netconf.Host{
			Ephemeral:         registry.Range{First: 10000, Last: 20000},
			Reserved:          []registry.Range{{First: 8080, Last: 8080}, {First: 9000, Last: 9010}},
			UnprivilegedStart: 80,
			PrivilegeHint:     hint,
			TCPTWReuse:        2,
			TCPSyncookies:     0,
		}},
		{"default values written out", fstest.MapFS{
			"ip_local_port_range":        {Data: []byte("32768\t60999\n")},
			"ip_local_reserved_ports":    {Data: []byte("\n")},
			"ip_unprivileged_port_start": {Data: []byte("1024\n")},
			"tcp_syncookies":             {Data: []byte("1\n")},
		}, netconf.Host{
			Ephemeral:         registry.Range{First: 32768, Last: 60999},
			UnprivilegedStart: 1024,
			PrivilegeHint:     hint,
			TCPTWReuse:        -1,
			TCPSyncookies:     1,
		}},
		{"only unprivileged start", fstest.MapFS{
			"ip_unprivileged_port_start": {Data: []byte("0\n")},
		}, netconf.Host{
			Ephemeral:        registry.Range{First: 32768, Last: 60999},
			EphemeralDefault: true,
			PrivilegeHint:    hint,
			TCPTWReuse:       -1,
			TCPSyncookies:    -1,
		}},
		{"files elsewhere are ignored", fstest.MapFS{
			"conf/all/ip_local_port_range": {Data: []byte("1 2\n")},
		}, defaults},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := netconf.ReadFS(tt.fsys)
			if err != nil {
				t.Fatalf("ReadFS error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ReadFS mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadFSErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		data string
	}{
		{"bad port range", "ip_local_port_range", "60999 32768\n"},
		{"bad reserved ports", "ip_local_reserved_ports", "70000\n"},
		{"bad unprivileged start", "ip_unprivileged_port_start", "x\n"},
		{"bad syncookies", "tcp_syncookies", "3\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{tt.file: {Data: []byte(tt.data)}}
			if _, err := netconf.ReadFS(fsys); err == nil {
				t.Errorf("ReadFS(%s = %q) error = nil; want an error", tt.file, tt.data)
			}
		})
	}
}

func TestRead(t *testing.T) {
	h, err := netconf.Read()
	if err != nil {
		t.Skipf("cannot read /proc/sys/net/ipv4: %v", err)
	}
	if h.Ephemeral.First > h.Ephemeral.Last || h.Ephemeral.First == 0 {
		t.Errorf("Read().Ephemeral = %v; want a proper range", h.Ephemeral)
	}
}

// TestIntegrationReadNetNS reads the settings of a namespace the test
// makes, where tcp_syncookies and ip_local_port_range differ from the
// kernel's defaults: the values of that namespace come back, not this
// one's.
func TestIntegrationReadNetNS(t *testing.T) {
	n := testnet.NewNamespace(t)
	testnet.Run(t, "ip", "netns", "exec", n.Name, "sysctl", "-q", "-w", "net.ipv4.tcp_syncookies=0", "net.ipv4.ip_local_port_range=40000 40100")
	h, err := netconf.ReadNetNS("/run/netns/" + n.Name)
	if err != nil {
		t.Fatalf("ReadNetNS(%s): %v", n.Name, err)
	}
	if h.TCPSyncookies != 0 || h.Ephemeral != (registry.Range{First: 40000, Last: 40100}) {
		t.Errorf("ReadNetNS(%s) = syncookies %d, range %v; want 0, 40000-40100", n.Name, h.TCPSyncookies, h.Ephemeral)
	}
	// This namespace is as it was.
	here, err := netconf.Read()
	if err != nil {
		t.Fatal(err)
	}
	if here.Ephemeral == h.Ephemeral {
		t.Errorf("Read() after ReadNetNS = range %v: the namespace's", here.Ephemeral)
	}
	if _, err := netconf.ReadNetNS("/run/netns/portctl-no-such-namespace"); err == nil {
		t.Errorf("ReadNetNS(a missing namespace) error = nil; want one")
	}
}
