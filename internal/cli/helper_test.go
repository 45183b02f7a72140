package cli

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/term"
)

// The test binary doubles as a helper process and as portctl itself, chosen
// by PORTCTL_TEST_HELPER:
//
//	listen    listen on PORTCTL_LISTEN (tcp), print "ready PORT", wait for stdin EOF
//	stubborn  the same, ignoring SIGTERM
//	portctl   run portctl with the arguments after the test flags
func TestMain(m *testing.M) {
	switch os.Getenv("PORTCTL_TEST_HELPER") {
	case "listen", "stubborn":
		helperListen(os.Getenv("PORTCTL_TEST_HELPER") == "stubborn")
		return
	case "portctl":
		args := os.Args[1:]
		for i, a := range args {
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		os.Exit(Run(args, term.System()))
	}
	os.Exit(m.Run())
}

func helperListen(stubborn bool) {
	if stubborn {
		signal.Ignore(syscall.SIGTERM)
	}
	l, err := net.Listen("tcp", os.Getenv("PORTCTL_LISTEN"))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", l.Addr().(*net.TCPAddr).Port)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	// Until the test closes stdin, or dies: the pipe then closes too.
	io.Copy(io.Discard, os.Stdin)
}

// startHelper starts the test binary as a helper process in mode, listening
// on addr, and returns it with the port it listens on. The process is
// stopped (by PID) when the test ends.
func startHelper(t *testing.T, mode, addr string) (*exec.Cmd, uint16) {
	t.Helper()
	return startHelperExe(t, os.Args[0], mode, addr)
}

// startHelperExe is startHelper running exe, a copy of the test binary.
func startHelperExe(t *testing.T, exe, mode, addr string) (*exec.Cmd, uint16) {
	t.Helper()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "PORTCTL_TEST_HELPER="+mode, "PORTCTL_LISTEN="+addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		t.Fatalf("helper did not start: %q %v", line, err)
	}
	var port uint16
	fmt.Sscanf(line, "ready %d", &port)
	helperDone[cmd.Process.Pid] = done
	return cmd, port
}

// helperDone lets tests wait for a helper's exit.
var helperDone = map[int]chan struct{}{}

// exited reports whether the helper exited within d.
func exited(cmd *exec.Cmd, d time.Duration) bool {
	select {
	case <-helperDone[cmd.Process.Pid]:
		return true
	case <-time.After(d):
		return false
	}
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}
