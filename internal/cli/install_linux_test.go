package cli

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portctl/portctl/firewall"
)

func TestBuildInfoFrom(t *testing.T) {
	const rev = "0123456789abcdef0123456789abcdef01234567"
	settings := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-12-07T14:56:00Z"}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name     string
		bi       *debug.BuildInfo
		override string
		want     buildInfo
		line     string
	}{
		{"no build info", nil, "", buildInfo{Version: "dev"}, "portctl dev ("},
		{"go run, no VCS", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "", buildInfo{Version: "dev"}, "portctl dev ("},
		{"checkout", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207145600-0123456789ab"}, Settings: settings("false")}, "",
			buildInfo{Version: "v0.0.0-20261207145600-0123456789ab", Commit: rev, Date: "2026-12-07T14:56:00Z"},
			"portctl v0.0.0-20261207145600-0123456789ab (commit 0123456789ab, 2026-12-07T14:56:00Z, "},
		{"checkout with changes", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261207145600-0123456789ab+dirty"}, Settings: settings("true")}, "",
			buildInfo{Version: "v0.0.0-20261207145600-0123456789ab+dirty", Commit: rev, Date: "2026-12-07T14:56:00Z", Modified: true},
			"portctl v0.0.0-20261207145600-0123456789ab+dirty (commit 0123456789ab with changes, 2026-12-07T14:56:00Z, "},
		{"go install @v1.2.3", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "", buildInfo{Version: "v1.2.3"}, "portctl v1.2.3 ("},
		{"-ldflags -X wins", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: settings("false")}, "v9.9.9",
			buildInfo{Version: "v9.9.9", Commit: rev, Date: "2026-12-07T14:56:00Z"}, "portctl v9.9.9 (commit 0123456789ab, "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := buildInfoFrom(tt.bi, tt.override)
			got.Go, got.OS, got.Arch = "", "", ""
			if got != tt.want {
				t.Errorf("buildInfoFrom = %+v; want %+v", got, tt.want)
			}
			if line := buildInfoFrom(tt.bi, tt.override).String(); !strings.HasPrefix(line, tt.line) {
				t.Errorf("String() = %q; want it to start %q", line, tt.line)
			}
		})
	}
}

func TestPermissionAdvice(t *testing.T) {
	exe := executable()
	tests := []struct {
		name string
		err  error
		want []string // in the message with its advice, in order
	}{
		{"a command's own", needCapability("-sS (SYN scan)", "CAP_NET_RAW", "or use -sT", nil),
			[]string{"-sS (SYN scan) needs root or CAP_NET_RAW; grant it with 'sudo setcap cap_net_raw+ep " + exe + "'", "AmbientCapabilities=CAP_NET_RAW", "; or use -sT"}},
		{"root's alone", needRoot("port 80 is held by another user's process: stopping it", "CAP_KILL", "portctl kill 80"),
			[]string{"stopping it needs root or CAP_KILL: run 'sudo portctl kill 80' (CAP_KILL on the binary would let anyone who runs it do the same)\n"}},
		{"firewall's", fmt.Errorf("read: %w", firewall.ErrPermission),
			[]string{"needs root or CAP_NET_ADMIN; grant it with 'sudo setcap cap_net_admin+ep ", "AmbientCapabilities=CAP_NET_ADMIN"}},
		{"a bind below 1024", fmt.Errorf("forward: 80:127.0.0.1:22: %w", &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}),
			[]string{"bind: permission denied; it needs root or CAP_NET_BIND_SERVICE; grant it with 'sudo setcap cap_net_bind_service+ep ", "AmbientCapabilities=CAP_NET_BIND_SERVICE"}},
		{"a bind(2) below 1024", fmt.Errorf("forward: 80:127.0.0.1:22: %w", os.NewSyscallError("bind", syscall.EACCES)),
			[]string{"bind: permission denied; it needs root or CAP_NET_BIND_SERVICE; grant it with 'sudo setcap cap_net_bind_service+ep "}},
		{"--netns", fmt.Errorf("sockets: %w (enter network namespace /run/netns/lab: operation not permitted)", os.ErrPermission),
			[]string{"operation not permitted); it needs root or CAP_SYS_ADMIN; run it with sudo (CAP_SYS_ADMIN on the binary would make it as good as root"}},
		{"a library naming one", fmt.Errorf("flood: needs root or CAP_SYS_ADMIN: %w", os.ErrPermission),
			[]string{"needs root or CAP_SYS_ADMIN: permission denied; run it with sudo (CAP_SYS_ADMIN on the binary"}},
		{"a library naming another", fmt.Errorf("conntrack: needs root or CAP_NET_ADMIN: %w", os.ErrPermission),
			[]string{"needs root or CAP_NET_ADMIN: permission denied; grant it with 'sudo setcap cap_net_admin+ep ", "AmbientCapabilities=CAP_NET_ADMIN"}},
		{"none named", fmt.Errorf("open /proc/1/fd: %w", os.ErrPermission),
			[]string{"open /proc/1/fd: permission denied (run as root, or grant the capability the command names)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			if code := exitCode(tt.err, &stderr); code != ExitFailure {
				t.Errorf("exitCode = %d; want %d", code, ExitFailure)
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 {
				t.Errorf("message %q: want one line", msg)
			}
			at := 0
			for _, w := range tt.want {
				i := strings.Index(msg[at:], w)
				if i < 0 {
					t.Fatalf("message %q: want %q (after offset %d)", msg, w, at)
				}
				at += i + len(w)
			}
		})
	}
}

// TestIntegrationCapabilityAdvice runs portctl as an unprivileged user
// (nobody) the three ways: without the capability a command needs (it must
// say which, and how to grant it), with the capability as a file
// capability on a copy of the binary (setcap cap_…+ep, as the message
// advises), and as an ambient capability (as the systemd units give it).
// Commands that change the firewall or listen run in a network namespace
// of their own.
func TestIntegrationCapabilityAdvice(t *testing.T) {
	requireRoot(t)
	for _, tool := range []string{"setpriv", "setcap", "unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (util-linux, libcap2-bin, iproute2: test-deps.sh installs them)", tool)
		}
	}
	// A directory nobody can reach: the test's own are root's alone.
	dir, err := os.MkdirTemp("/tmp", "portctl-caps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "portctl")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/portctl/portctl/cmd/portctl").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port

	// advice is what the message without the capabilities must say, {bin}
	// standing for the binary's path.
	advice := func(caps ...string) []string {
		lower := strings.ToLower(strings.Join(caps, ","))
		if len(caps) == 1 {
			return []string{"needs root or " + caps[0], "sudo setcap " + lower + "+ep {bin}", "AmbientCapabilities=" + caps[0]}
		}
		return []string{"grant " + strings.Join(caps, " and "), "sudo setcap " + lower + "+ep {bin}", "AmbientCapabilities=" + strings.Join(caps, " ")}
	}
	tests := []struct {
		name    string
		caps    []string
		args    []string
		ownNS   bool           // in a network namespace of its own
		stays   bool           // runs until stopped (SIGINT once it says success)
		without int            // the exit code without the capabilities
		success *regexp.Regexp // in the output with the capabilities
	}{
		{"scan -sS", []string{"CAP_NET_RAW"}, []string{"scan", "-sS", "127.0.0.1", "-p", fmt.Sprint(port)}, false, false, ExitFailure,
			regexp.MustCompile(fmt.Sprintf(`(?m)^\s*%d/tcp\s+open\s`, port))},
		{"firewall", []string{"CAP_NET_ADMIN"}, []string{"firewall"}, true, false, ExitFailure, regexp.MustCompile(`(?s).`)},
		{"guard", []string{"CAP_NET_ADMIN"}, []string{"guard"}, true, true, ExitFailure, regexp.MustCompile(`watching new connections`)},
		{"forward below 1024", []string{"CAP_NET_BIND_SERVICE"}, []string{"forward", "127.0.0.1:80:127.0.0.1:9"}, true, true, ExitFailure,
			regexp.MustCompile(`tcp 127\.0\.0\.1:80 -> 127\.0\.0\.1:9`)},
		// This test's own listener, held by root: serve's unit has these two.
		{"who, another user's port", []string{"CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}, []string{"who", fmt.Sprint(port)}, false, false, ExitOK,
			regexp.MustCompile(fmt.Sprintf(`(?m)^\s*pid\s+%d\s`, os.Getpid()))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			for _, c := range tt.caps {
				names = append(names, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
			}
			capBin := filepath.Join(dir, "portctl-"+strings.Join(names, "-"))
			if _, err := os.Stat(capBin); err != nil {
				b, err := os.ReadFile(bin)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(capBin, b, 0o755); err != nil {
					t.Fatal(err)
				}
				set := strings.ToLower(strings.Join(tt.caps, ",")) + "+ep"
				if out, err := exec.Command("setcap", set, capBin).CombinedOutput(); err != nil {
					t.Fatalf("setcap %s: %v\n%s", set, err, out)
				}
			}

			code, out := runAsNobody(t, tt.ownNS, nil, "", bin, tt.args...)
			if code != tt.without {
				t.Errorf("without %s: exit %d; want %d:\n%s", tt.caps, code, tt.without, out)
			}
			for _, want := range advice(tt.caps...) {
				if want = strings.ReplaceAll(want, "{bin}", bin); !strings.Contains(out, want) {
					t.Errorf("without %s: the message says no %q:\n%s", tt.caps, want, out)
				}
			}
			// A command that still succeeds without them shows less.
			if tt.without == ExitOK && tt.success.MatchString(out) {
				t.Errorf("without %s: the output matches %s already:\n%s", tt.caps, tt.success, out)
			}

			for _, way := range []struct {
				name, bin, ambient string
			}{{"setcap", capBin, ""}, {"ambient capabilities", bin, "+" + strings.Join(names, ",+")}} {
				var until *regexp.Regexp
				if tt.stays {
					until = tt.success
				}
				code, out := runAsNobody(t, tt.ownNS, until, way.ambient, way.bin, tt.args...)
				if code != ExitOK || !tt.success.MatchString(out) || strings.Contains(out, tt.caps[0]) {
					t.Errorf("with %s %s: exit %d; want 0 and %s, and no advice:\n%s", way.name, tt.caps, code, tt.success, out)
				}
			}
		})
	}
}

// TestIntegrationNetNSAdvice: --netns as an unprivileged user says that
// it needs root (CAP_SYS_ADMIN, which no binary anyone may run should
// have).
func TestIntegrationNetNSAdvice(t *testing.T) {
	requireRoot(t)
	for _, tool := range []string{"setpriv", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (util-linux, iproute2: test-deps.sh installs them)", tool)
		}
	}
	ns := fmt.Sprintf("portctl-caps-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	dir, err := os.MkdirTemp("/tmp", "portctl-netns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	cli := filepath.Join(dir, "portctl")
	if out, err := exec.Command("go", "build", "-o", cli, "github.com/portctl/portctl/cmd/portctl").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"ls", "--netns", ns}, {"ephemeral", "--netns", ns}} {
		code, out := runAsNobody(t, false, nil, "", cli, args...)
		if code != ExitFailure || !strings.Contains(out, "needs root or CAP_SYS_ADMIN; run it with sudo") || strings.Count(out, "\n") != 1 {
			t.Errorf("%s as nobody: exit %d; want %d and one line naming CAP_SYS_ADMIN and sudo:\n%s", strings.Join(args, " "), code, ExitFailure, out)
		}
	}
}

// runAsNobody runs bin as nobody (UID and GID 65534, no groups), with the
// ambient capabilities named (as +net_raw,+net_admin) when not empty, in a network
// namespace of its own with loopback up when ownNS. A command that stays
// (a service) is stopped with SIGINT once its output matches until, or
// after 20 s. It returns the exit code (0 for a service that ran until
// stopped) and the output.
func runAsNobody(t *testing.T, ownNS bool, until *regexp.Regexp, ambient, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}
	if ambient != "" {
		cmd = append(cmd, "--inh-caps="+ambient, "--ambient-caps="+ambient)
	}
	cmd = append(append(cmd, bin), args...)
	if ownNS {
		// unshare, sh and setpriv each exec the next: the process is
		// portctl's own, which a signal reaches.
		cmd = append([]string{"unshare", "--net", "sh", "-c", `ip link set lo up && exec "$@"`, "sh"}, cmd...)
	}
	c := exec.Command(cmd[0], cmd[1:]...)
	var out lockedBuffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatalf("%s: %v", strings.Join(cmd, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var err error
	stopped := false
	if until == nil {
		err = <-done
	} else {
		deadline := time.After(20 * time.Second)
	wait:
		for {
			select {
			case err = <-done:
				break wait
			case <-deadline:
			case <-time.After(50 * time.Millisecond):
				if !until.MatchString(out.String()) {
					continue
				}
			}
			c.Process.Signal(os.Interrupt)
			stopped = true
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				c.Process.Kill()
				err = <-done
				t.Errorf("%s: still running 15 s after SIGINT", strings.Join(cmd, " "))
			}
			break
		}
	}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		if stopped && (ee.ExitCode() == 130 || !ee.Exited()) {
			return 0, out.String()
		}
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(cmd, " "), err)
	}
	return 0, out.String()
}

// lockedBuffer is a bytes.Buffer safe for a process's writes and the
// test's reads at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
