package web

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portctl/portctl/sockets"
)

// The test binary doubles as a helper process, chosen by PORTCTL_WEB_HELPER:
//
//	listen ADDR  listen on ADDR (tcp), print "ready PORT", wait for stdin EOF
//	pairs N      connect N times to a listener of its own and hold both ends
//	             of every connection, print "ready", wait for stdin EOF
func TestMain(m *testing.M) {
	switch os.Getenv("PORTCTL_WEB_HELPER") {
	case "listen":
		l, err := net.Listen("tcp", os.Getenv("PORTCTL_WEB_ADDR"))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("ready", l.Addr().(*net.TCPAddr).Port)
		waitStdin()
		return
	case "pairs":
		n, _ := strconv.Atoi(os.Getenv("PORTCTL_WEB_PAIRS"))
		holdPairs(n)
		return
	}
	os.Exit(m.Run())
}

func waitStdin() {
	bufio.NewReader(os.Stdin).ReadString('\n')
}

func holdPairs(n int) {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	var held []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			fmt.Println("error", i, err)
			os.Exit(1)
		}
		s, err := l.Accept()
		if err != nil {
			fmt.Println("error", i, err)
			os.Exit(1)
		}
		held = append(held, c, s)
	}
	fmt.Println("ready", len(held))
	waitStdin()
}

// helper starts the test binary as a helper process named name (through a
// symlink, so that its command name is name) with args, waits for its
// "ready" line and returns the rest of it. The helper ends with the test.
func helper(t *testing.T, name string, env []string, args ...string) (pid int, ready string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := exe
	if name != "" {
		path = filepath.Join(t.TempDir(), name)
		if err := os.Symlink(exe, path); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(path, append([]string{"-test.run=^$"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if !strings.HasPrefix(line, "ready") {
		t.Fatalf("helper %s: %q %v", name, line, err)
	}
	return cmd.Process.Pid, strings.TrimSpace(strings.TrimPrefix(line, "ready"))
}

// processGone reports whether pid has exited (a zombie counts as gone).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// killByPID is the kill action for tests of the page: SIGTERM to the
// processes listening on the port, then wait until they are gone.
// (`portctl serve` uses the kill command's own logic; its tests are in
// internal/cli.)
func killByPID(t *testing.T) KillFunc {
	return func(ctx context.Context, port uint16) (any, error) {
		tab, err := sockets.List(ctx, sockets.Query{Protos: sockets.TCP, Families: sockets.AllFamilies,
			States: sockets.StatesOf(sockets.Listen), LocalPort: port, Processes: true})
		if err != nil {
			return nil, err
		}
		var pids []int
		for _, s := range tab.Sockets {
			for _, p := range s.Processes {
				if p.PID != os.Getpid() {
					pids = append(pids, p.PID)
					syscall.Kill(p.PID, syscall.SIGTERM)
				}
			}
		}
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			gone := true
			for _, pid := range pids {
				gone = gone && processGone(pid)
			}
			if gone {
				return map[string]any{"port": port, "pids": pids, "freed": len(pids) > 0}, nil
			}
		}
		return nil, fmt.Errorf("port %d: holders %v still run", port, pids)
	}
}
