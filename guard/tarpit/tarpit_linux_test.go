package tarpit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestIntegrationTarpitSSH holds OpenSSH's client in a tarpit listening
// on every address of a namespace of the test's own: the client reads the lines as lines
// before the server's version and waits through them until timeout stops
// it.
func TestIntegrationTarpitSSH(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a network namespace")
	}
	for _, tool := range []string{"ip", "ssh", "timeout"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian's iproute2, openssh-client, coreutils)", tool)
		}
	}
	ns := fmt.Sprintf("pctarpit-%06x", rand.Uint32()&0xffffff)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	rec := &recorder{}
	tp, err := Start(context.Background(), Options{Ports: []uint16{0}, Interval: 100 * time.Millisecond, NetNS: "/run/netns/" + ns}, rec.add)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.Close() })

	const hold = 2 * time.Second
	start := time.Now()
	cmd := exec.Command("ip", "netns", "exec", ns, "timeout", fmt.Sprint(hold.Seconds()), "ssh", "-v",
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-p", fmt.Sprint(tp.Ports()[0]), "portctl@::1", "true")
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 124 {
		t.Fatalf("ssh = %v after %s; want timeout to end it (exit 124):\n%s", err, took, out)
	}
	if !strings.Contains(string(out), "Connection established") {
		t.Errorf("ssh -v says no connection:\n%s", out)
	}
	closed := rec.wait(t, "closed", func(e Event) bool { return !e.Opened && !e.Refused })
	t.Logf("ssh held %s; the tarpit sent it %d bytes", closed.Held.Round(time.Millisecond), closed.Sent)
	if closed.Held < hold/2 || closed.Sent < 10 {
		t.Errorf("closed event = %+v; want the client held about %s and sent lines", closed, hold)
	}
	if closed.Remote.Addr() != netip.MustParseAddr("::1") {
		t.Errorf("closed event remote = %s; want ::1", closed.Remote)
	}
}
