package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portctl/portctl/ephemeral"
)

func TestWhoListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	port := l.Addr().(*net.TCPAddr).Port

	code, out, stderr := runCLI(t, "who", fmt.Sprint(port), "--json")
	if code != ExitOK {
		t.Fatalf("who %d: exit %d, stderr %q", port, code, stderr)
	}
	var res whoResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("who --json: %v\n%s", err, out)
	}
	if res.Verdict != "listening" || !res.Held || len(res.Listeners) == 0 {
		t.Fatalf("who %d = %+v; want a listener", port, res)
	}
	found := false
	for _, p := range res.Holders {
		if p.PID == os.Getpid() {
			found = true
			if p.Start.IsZero() || time.Since(p.Start) > time.Hour || len(p.Cmdline) == 0 {
				t.Errorf("holder details incomplete: %+v", p)
			}
		}
	}
	if !found {
		t.Errorf("who %d holders = %+v; want this test process %d", port, res.Holders, os.Getpid())
	}

	code, out, _ = runCLI(t, "who", fmt.Sprint(port))
	if code != ExitOK || !strings.Contains(out, "listens") || !strings.Contains(out, fmt.Sprint(os.Getpid())) {
		t.Errorf("who %d text: exit %d\n%s", port, code, out)
	}
	// ADDR:PORT with --bind-test: the bind must fail, the listener holds it.
	code, out, _ = runCLI(t, "who", fmt.Sprintf("127.0.0.1:%d", port), "--bind-test", "--proto", "tcp", "--json")
	json.Unmarshal([]byte(out), &res)
	if code != ExitOK || len(res.BindTest) != 1 || res.BindTest[0].OK || !strings.Contains(res.BindTest[0].Error, "in use") {
		t.Errorf("who --bind-test on a held port: exit %d, %+v", code, res.BindTest)
	}
}

func TestWhoFreePort(t *testing.T) {
	port := freePort(t)
	code, out, _ := runCLI(t, "who", fmt.Sprint(port), "--bind-test", "--json")
	var res whoResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if code != ExitNegative || res.Verdict != "free" || res.Held {
		t.Errorf("who on a free port: exit %d, verdict %q; want %d, free", code, res.Verdict, ExitNegative)
	}
	for _, b := range res.BindTest {
		if !b.OK && !strings.Contains(b.Address, "::") {
			t.Errorf("bind test on a free port failed: %+v", b)
		}
	}
	code, out, _ = runCLI(t, "who", fmt.Sprint(port))
	if code != ExitNegative || !strings.Contains(out, "free") {
		t.Errorf("who text on a free port: exit %d\n%s", code, out)
	}
}

// timeWaitPort leaves a port with only TIME-WAIT remnants: the server
// closes its end of an accepted connection first, then the listener goes.
func timeWaitPort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // the server's end closes first: its socket goes to TIME-WAIT
	buf := make([]byte, 1)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	c.Read(buf) // EOF
	c.Close()
	l.Close()
	time.Sleep(50 * time.Millisecond)
	return port
}

func TestWhoTimeWaitOnly(t *testing.T) {
	port := timeWaitPort(t)
	code, out, stderr := runCLI(t, "who", fmt.Sprint(port), "--json")
	var res whoResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s %s", err, out, stderr)
	}
	if res.Verdict != "time_wait" || len(res.TimeWait) == 0 || res.ExpiresMS <= 0 || res.ExpiresMS > 61000 {
		t.Fatalf("who on a TIME-WAIT port = verdict %q, %d remnants, expires %d ms", res.Verdict, len(res.TimeWait), res.ExpiresMS)
	}
	if code != ExitOK {
		t.Errorf("exit %d; want %d (the kernel still holds it)", code, ExitOK)
	}
	if !strings.Contains(strings.Join(res.Advice, " "), "SO_REUSEADDR") {
		t.Errorf("advice %q does not explain SO_REUSEADDR", res.Advice)
	}
	_, text, _ := runCLI(t, "who", fmt.Sprint(port))
	if !strings.Contains(text, "TIME-WAIT") || !strings.Contains(text, "expires in") {
		t.Errorf("who text on a TIME-WAIT port:\n%s", text)
	}
}

func TestLsShowsOwnSockets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sc, err := l.Accept() // accepted: the server end now has a file, and an inode
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	uport := u.LocalAddr().(*net.UDPAddr).Port

	list := func(args ...string) lsResult {
		t.Helper()
		code, out, stderr := runCLI(t, append([]string{"ls", "--json"}, args...)...)
		if code != ExitOK {
			t.Fatalf("ls %q: exit %d, %s", args, code, stderr)
		}
		var res lsResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	has := func(res lsResult, proto, state string, port int) bool {
		for _, s := range res.Sockets {
			if s.Protocol == proto && s.State == state && int(s.LocalPort) == port {
				for _, p := range s.Processes {
					if p.PID == os.Getpid() {
						return true
					}
				}
			}
		}
		return false
	}
	all := list()
	if !has(all, "tcp", "listen", port) || !has(all, "udp", "close", uport) {
		t.Errorf("ls lacks this process's tcp listener %d or udp socket %d", port, uport)
	}
	if has(all, "tcp", "established", port) {
		t.Errorf("ls without -a shows connections")
	}
	if res := list("-a", "-t", "-p", fmt.Sprint(port)); !has(res, "tcp", "established", port) || len(res.Sockets) < 2 {
		t.Errorf("ls -a -t -p %d lacks the established connection: %+v", port, res.Sockets)
	}
	if res := list("--pid", fmt.Sprint(os.Getpid())); !has(res, "tcp", "listen", port) {
		t.Errorf("ls --pid misses this process's listener")
	}
	if res := list("--pid", "999999999"); len(res.Sockets) != 0 {
		t.Errorf("ls --pid 999999999 = %d sockets; want none", len(res.Sockets))
	}
	if res := list("-u", "-p", fmt.Sprint(uport)); len(res.Sockets) != 1 || res.Sockets[0].Protocol != "udp" {
		_, o2, e2 := runCLI(t, "ls", "-u", "-p", fmt.Sprint(uport))
		t.Errorf("ls -u -p %d = %+v\n%s %s", uport, res.Sockets, o2, e2)
	}
	if res := list("-6", "-p", fmt.Sprint(port)); len(res.Sockets) != 0 {
		t.Errorf("ls -6 shows the IPv4 listener")
	}
	code, out, _ := runCLI(t, "ls", "-p", fmt.Sprint(port))
	if code != ExitOK || !strings.Contains(out, "LISTEN") || !strings.Contains(out, fmt.Sprintf("/%d", os.Getpid())) {
		t.Errorf("ls table:\n%s", out)
	}
	for _, bad := range [][]string{{"ls", "--state", "bogus"}, {"ls", "-p", "70000"}, {"ls", "--interval", "1ms", "--watch"}, {"ls", "extra"}} {
		if code, _, stderr := runCLI(t, bad...); code != ExitUsage {
			t.Errorf("portctl %q: exit %d (%s); want %d", bad, code, stderr, ExitUsage)
		}
	}
}

func TestLsIPv6AndTimeWait(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	t.Cleanup(func() { l.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	code, out, _ := runCLI(t, "ls", "-6", "-p", fmt.Sprint(port), "--json")
	var res lsResult
	json.Unmarshal([]byte(out), &res)
	if code != ExitOK || len(res.Sockets) != 1 || res.Sockets[0].LocalAddress != "::1" || res.Sockets[0].Family != "ipv6" {
		t.Errorf("ls -6 on an IPv6 listener: %d %+v", code, res.Sockets)
	}
	tw := timeWaitPort(t)
	_, out, _ = runCLI(t, "ls", "--state", "time-wait", "-p", fmt.Sprint(tw), "--json")
	json.Unmarshal([]byte(out), &res)
	if len(res.Sockets) == 0 || res.Sockets[0].State != "time_wait" || res.Sockets[0].ExpiresMS <= 0 {
		t.Errorf("ls --state time-wait: %+v", res.Sockets)
	}
}

func TestIntegrationKillFreesPort(t *testing.T) {
	child, port := startHelper(t, "listen", "127.0.0.1:0")

	// Dry run and refusal without a terminal leave it running.
	if code, out, _ := runCLI(t, "kill", fmt.Sprint(port), "--dry-run"); code != ExitOK || !strings.Contains(out, "would get SIGTERM") {
		t.Errorf("kill --dry-run: exit %d\n%s", code, out)
	}
	if code, _, stderr := runCLI(t, "kill", fmt.Sprint(port)); code != ExitUsage || !strings.Contains(stderr, "--yes") {
		t.Errorf("kill without --yes and without a terminal: exit %d, %q", code, stderr)
	}
	if exited(child, 100*time.Millisecond) {
		t.Fatal("the helper died before kill --yes")
	}
	code, out, stderr := runCLI(t, "kill", fmt.Sprint(port), "--yes", "--json")
	if code != ExitOK {
		t.Fatalf("kill --yes: exit %d, %s\n%s", code, stderr, out)
	}
	var res killResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Freed || len(res.Targets) != 1 || res.Targets[0].Process.PID != child.Process.Pid || !res.Targets[0].Exited {
		t.Errorf("kill result %+v", res)
	}
	if !exited(child, 5*time.Second) {
		t.Fatal("the helper is still running after kill")
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("port %d not bindable after kill: %v", port, err)
	}
	l.Close()
	if code, _, _ := runCLI(t, "kill", fmt.Sprint(port), "--yes"); code != ExitNegative {
		t.Errorf("kill on a free port: exit %d; want %d", code, ExitNegative)
	}
}

func TestIntegrationKillForce(t *testing.T) {
	child, port := startHelper(t, "stubborn", "127.0.0.1:0")
	code, _, stderr := runCLI(t, "kill", fmt.Sprint(port), "--yes", "--timeout", "300ms")
	if code != ExitNegative || !strings.Contains(stderr, "--force") {
		t.Errorf("kill of a process ignoring SIGTERM: exit %d, %q; want %d and a hint", code, stderr, ExitNegative)
	}
	if exited(child, 100*time.Millisecond) {
		t.Fatal("a process ignoring SIGTERM exited")
	}
	code, out, stderr := runCLI(t, "kill", fmt.Sprint(port), "--yes", "--timeout", "300ms", "--force")
	if code != ExitOK || !strings.Contains(out, "SIGKILL") {
		t.Errorf("kill --force: exit %d, %s\n%s", code, stderr, out)
	}
	if !exited(child, 5*time.Second) {
		t.Error("still running after --force")
	}
}

func TestKillRefusesItself(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	// The listener belongs to this process, which is the one running kill.
	code, out, _ := runCLI(t, "kill", fmt.Sprint(port), "--yes")
	if code != ExitNegative || !strings.Contains(out, "portctl itself") {
		t.Errorf("kill of its own port: exit %d\n%s", code, out)
	}
}

// TestIntegrationUnprivileged runs portctl as the user nobody against a
// listener root holds: it must show the socket with its uid, count it as
// unattributed and say how to see it.
func TestIntegrationUnprivileged(t *testing.T) {
	requireRoot(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	port := l.Addr().(*net.TCPAddr).Port

	asNobody := func(args ...string) (int, string, string) { return asUser(t, 65534, args...) }
	code, out, stderr := asNobody("ls", "-p", fmt.Sprint(port))
	if code != ExitOK || !strings.Contains(out, "root") || !strings.Contains(out, "?") {
		t.Errorf("ls as nobody: exit %d\n%s", code, out)
	}
	if !strings.Contains(stderr, "1 socket of other users' processes") || !strings.Contains(stderr, "run as root") {
		t.Errorf("ls as nobody does not explain the hidden holder: %q", stderr)
	}
	code, out, _ = asNobody("who", fmt.Sprint(port))
	if code != ExitOK || !strings.Contains(out, "listens") || !strings.Contains(out, "another user") {
		t.Errorf("who as nobody: exit %d\n%s", code, out)
	}
	code, _, stderr = asNobody("kill", fmt.Sprint(port), "--yes")
	if code != ExitFailure || !strings.Contains(stderr, "another user") {
		t.Errorf("kill as nobody: exit %d, %q; want %d", code, stderr, ExitFailure)
	}
}

func TestEphemeralRuns(t *testing.T) {
	code, out, stderr := runCLI(t, "ephemeral", "--json")
	if code != ExitOK && code != ExitNegative {
		t.Fatalf("ephemeral: exit %d, %s", code, stderr)
	}
	var res ephemeral.Report
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Size <= 0 || res.Range == "" {
		t.Errorf("ephemeral --json = %+v", res)
	}
	for _, bad := range [][]string{{"ephemeral", "--warn", "0"}, {"ephemeral", "--warn", "101"}, {"ephemeral", "--top", "0"}} {
		if code, _, _ := runCLI(t, bad...); code != ExitUsage {
			t.Errorf("portctl %q: exit %d; want %d", bad, code, ExitUsage)
		}
	}
}

// asUser runs this test binary as the CLI, as another user.
func asUser(t *testing.T, uid uint32, args ...string) (int, string, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "portctl-as-user-") // t.TempDir's parent is private
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "portctl.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = []string{"PORTCTL_TEST_HELPER=portctl", "HOME=" + dir, "XDG_CACHE_HOME=" + dir, "PATH=/usr/bin:/bin", "DOCKER_HOST=" + os.Getenv("DOCKER_HOST")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}
