package cli

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/internal/testnet"
)

func TestForwardBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"forward"}, "needs a RULE"},
		{[]string{"forward", "8080"}, `"8080"`},
		{[]string{"forward", "sctp/80:a:1"}, "sctp"},
		{[]string{"forward", "80:a:1", "--proxy-protocol", "3"}, "--proxy-protocol 3"},
		{[]string{"forward", "80:a:1", "--balance", "random"}, `"random"`},
		{[]string{"forward", "80:a:1", "--allow", "10.0.0.0/99"}, "10.0.0.0/99"},
		{[]string{"forward", "udp/80:a:1", "--proxy-protocol", "1"}, "UDP"},
		{[]string{"forward", "--config", "/nonexistent.yaml"}, "/nonexistent.yaml"},
		{[]string{"forward", "--stats", "80:a:1"}, "--stats takes no rule"},
		{[]string{"forward", "80:a:1", "--data-path", "threads"}, `"threads"`},
		{[]string{"forward", "udp/53:a:53", "--via", "ssh://bastion"}, "SSH carries TCP only"},
		{[]string{"forward", "--remote", "8080:127.0.0.1:3000"}, "needs --via"},
		{[]string{"forward", "80:a:1", "--via", "bastion"}, "ssh://"},
		{[]string{"forward", "80:a:1", "--via", "ssh://u:pw@bastion"}, "password"},
		{[]string{"forward", "socks5://localhost:1080"}, "socks5://localhost:1080"},
		{[]string{"forward", "--remote", "udp/53:a:53", "--via", "ssh://b"}, "TCP only"},
		{[]string{"forward", "80:a:1", "--via", "ssh://b", "--ssh-config", "/nonexistent/ssh_config"}, "/nonexistent/ssh_config"},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != ExitUsage || !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("portctl %q: exit %d, stderr %q; want 2 and one line with %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestForwardCheck(t *testing.T) {
	code, out, errOut := runCLI(t, "forward", "--check", "127.0.0.1:0:127.0.0.1:9", "udp/127.0.0.1:0:127.0.0.1:9")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	for _, want := range []string{"sha256 equal", "half-close", "8,000-byte datagram came back whole", "second reply", "does not accept connections"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestForwardConfigReload runs the command with a config file, edits the
// file, and sees the new rule served and the counters in --stats.
func TestForwardConfigReload(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	echo := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) { io.Copy(c, c) })
	a1, a2 := testnet.ClosedPort(t, "127.0.0.1").String(), testnet.ClosedPort(t, "127.0.0.1").String()
	cfg := filepath.Join(t.TempDir(), "forward.yaml")
	write := func(listens ...string) {
		s := "rules:\n"
		for _, l := range listens {
			s += "  - listen: \"" + l + "\"\n    backends: [\"" + echo.String() + "\"]\n"
		}
		writeTestFile(t, cfg, s)
	}
	write(a1)
	streams, _, errb := term.Test("")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runForward(ctx, streams, forwardOptions{Config: cfg, Drain: time.Second}) }()
	try := func(addr string) error {
		var err error
		for range 100 { // 10 s: the file is checked every second, and the machine may be busy
			var c net.Conn
			if c, err = net.Dial("tcp", addr); err == nil {
				c.Write([]byte("hi"))
				buf := make([]byte, 2)
				_, err = io.ReadFull(c, buf)
				c.Close()
				if err == nil {
					return nil
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		return err
	}
	if err := try(a1); err != nil {
		t.Fatalf("first rule: %v", err)
	}
	time.Sleep(1100 * time.Millisecond) // a new modification time
	write(a1, a2)
	if err := try(a2); err != nil {
		t.Fatalf("rule added by editing the file: %v (log: %s)", err, errb)
	}
	code, out, _ := runCLI(t, "forward", "--stats")
	if code != 0 || !strings.Contains(out, a2) {
		t.Errorf("--stats: exit %d\n%s", code, out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errb.String(), "changed") {
		t.Errorf("log lacks the reload:\n%s", errb)
	}
}
