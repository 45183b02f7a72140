package sockets

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func TestSocketUnitPorts(t *testing.T) {
	tests := []struct {
		name string
		unit string
		want []uint16
	}{
		{"port only", "[Socket]\nListenStream=22\n", []uint16{22}},
		{"ipv4 address", "[Socket]\nListenStream=0.0.0.0:8080\n", []uint16{8080}},
		{"ipv6 address", "[Socket]\nListenStream=[::]:443\n", []uint16{443}},
		{"datagram", "[Socket]\nListenDatagram=53\n", []uint16{53}},
		{"sequential packet", "[Socket]\nListenSequentialPacket=127.0.0.1:9000\n", []uint16{9000}},
		{"unix socket path ignored", "[Socket]\nListenStream=/run/foo.sock\n", nil},
		{"abstract socket ignored", "[Socket]\nListenStream=@foo\n", nil},
		{"fifo ignored", "[Socket]\nListenFIFO=/run/foo.fifo\n", nil},
		{"empty value ignored", "[Socket]\nListenStream=\n", nil},
		{
			"comments",
			"# ListenStream=1\n; ListenStream=2\n[Socket]\n#ListenStream=3\nListenStream=4\n",
			[]uint16{4},
		},
		{"spaces around =", "[Socket]\n  ListenStream = 22  \nListenDatagram\t=\t[::1]:53\n", []uint16{22, 53}},
		{"port out of range", "[Socket]\nListenStream=70000\n", nil},
		{"not a port", "[Socket]\nListenStream=ssh\n", nil},
		{"other keys ignored", "[Socket]\nAccept=yes\nBacklog=128\nBindIPv6Only=both\n", nil},
		{"key names are case sensitive", "[Socket]\nlistenstream=22\n", nil},
		{
			"openssh-server ssh.socket",
			"[Unit]\nDescription=OpenBSD Secure Shell server socket\nBefore=sockets.target ssh.service\n" +
				"ConditionPathExists=!/etc/ssh/sshd_not_to_be_run\n\n[Socket]\nListenStream=22\nAccept=yes\n\n" +
				"[Install]\nWantedBy=sockets.target\n",
			[]uint16{22},
		},
		{
			"several listeners, unix sockets mixed in",
			"[Socket]\nListenStream=/run/cups/cups.sock\nListenStream=0.0.0.0:631\nListenStream=[::1]:631\nListenDatagram=5353\n",
			[]uint16{631, 631, 5353},
		},
		{"crlf line endings", "[Socket]\r\nListenStream=22\r\n", []uint16{22}},
		{"no trailing newline", "ListenStream=22", []uint16{22}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SocketUnitPorts([]byte(tt.unit))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("SocketUnitPorts(%q) mismatch (-want +got):\n%s", tt.unit, diff)
			}
		})
	}
}

func TestSocketUnits(t *testing.T) {
	unit := func(lines ...string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("[Socket]\n" + strings.Join(lines, "\n") + "\n")}
	}
	root := fstest.MapFS{
		"lib/systemd/system/ssh.socket":                      unit("ListenStream=22"),
		"lib/systemd/system/cups.socket":                     unit("ListenStream=/run/cups/cups.sock", "ListenStream=631"),
		"lib/systemd/system/dns.socket":                      unit("ListenDatagram=53", "ListenStream=53"),
		"lib/systemd/system/ssh.service":                     unit("ListenStream=22"), // not a .socket
		"lib/systemd/system/cockpit.socket":                  unit("ListenStream=9090"),
		"usr/lib/systemd/system/cockpit.socket":              unit("ListenStream=9091"), // lib wins over usr/lib
		"usr/lib/systemd/system/rsync.socket":                unit("ListenStream=873"),
		"etc/systemd/system/ssh.socket":                      unit("ListenStream=2222"), // /etc overrides /lib
		"etc/systemd/system/cups.socket":                     {Data: nil},               // masked (a link to /dev/null)
		"etc/systemd/system/web.socket":                      unit("ListenStream=[::]:8080"),
		"run/systemd/system/transient.socket":                unit("ListenStream=0.0.0.0:8080"),
		"usr/local/lib/systemd/system/ws.socket":             unit("ListenStream=8080"),
		"etc/systemd/system/sockets.target.wants/web.socket": unit("ListenStream=8080"), // not a unit directory
	}
	tests := []struct {
		port uint16
		want []string
	}{
		{22, nil},
		{2222, []string{"ssh.socket"}},
		{631, nil},
		{53, []string{"dns.socket"}},
		{9090, []string{"cockpit.socket"}},
		{9091, nil},
		{873, []string{"rsync.socket"}},
		{8080, []string{"web.socket", "transient.socket", "ws.socket"}},
		{1, nil},
	}
	for _, tt := range tests {
		got := SocketUnits(root, tt.port)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("SocketUnits(root, %d) mismatch (-want +got):\n%s", tt.port, diff)
		}
	}
	if got := SocketUnits(fstest.MapFS{}, 22); got != nil {
		t.Errorf("SocketUnits(empty, 22) = %q; want nil", got)
	}
}

func FuzzSocketUnitPorts(f *testing.F) {
	for _, s := range []string{
		"[Socket]\nListenStream=22\n", "ListenStream=0.0.0.0:8080", "ListenStream = [::]:443\n",
		"ListenDatagram=53", "ListenStream=/run/foo.sock", "#ListenStream=1", "ListenStream=[fe80::1%eth0]:22",
		"ListenStream=", "=", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ports := SocketUnitPorts(b)
		// Each port comes from its own Listen… line.
		if n := strings.Count(string(b), "Listen"); len(ports) > n {
			t.Fatalf("SocketUnitPorts(%q) = %d ports from %d Listen keys", b, len(ports), n)
		}
	})
}
