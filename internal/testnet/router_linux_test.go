//go:build linux

package testnet

import (
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestIntegrationRouter: a mapping made with the reference NAT-PMP client
// in the lan makes a connection from the wan to the router's external
// address arrive at the lan's listener; after Restart the router answers
// again and the mapping is gone.
func TestIntegrationRouter(t *testing.T) {
	r := NewRouter(t)
	if _, err := exec.LookPath("natpmpc"); err != nil {
		t.Skip("needs natpmpc (Debian package natpmpc; bash test-deps.sh installs it)")
	}
	l := ListenIn(t, r.LAN, netip.AddrPortFrom(r.LANAddr, 0))
	ext := netip.AddrPortFrom(r.External, 40000+l.Port()%20000)
	if r.Connects(t, ext, time.Second) {
		t.Fatalf("%s connects before any mapping", ext)
	}
	out, err := r.Exec(t, r.LAN, 10*time.Second, "natpmpc", "-g", r.RouterLAN.String(),
		"-a", itoa(ext.Port()), itoa(l.Port()), "tcp", "60")
	if err != nil || !strings.Contains(out, "Mapped public port") {
		t.Fatalf("natpmpc: %v\n%s\nminiupnpd's log:\n%s", err, out, r.Log())
	}
	if !r.Connects(t, ext, 2*time.Second) {
		t.Fatalf("%s does not connect from the wan after natpmpc mapped it; rules %q", ext, r.Redirects(t))
	}
	if got := r.Redirects(t); len(got) != 1 {
		t.Errorf("Redirects() = %q; want one rule", got)
	}
	port := r.HTTPPort
	r.Restart(t)
	if got := r.Redirects(t); len(got) != 0 {
		t.Errorf("after Restart, Redirects() = %q; want none", got)
	}
	if r.HTTPPort == 0 {
		t.Errorf("after Restart, HTTPPort = 0 (was %d)", port)
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }
