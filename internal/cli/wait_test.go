package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/probe"
)

func TestWaitFlagsLandInOptions(t *testing.T) {
	def := waitOptions{Timeout: 30 * time.Second, Interval: 100 * time.Millisecond}
	tests := []struct {
		args []string
		want waitOptions
	}{
		{[]string{"db:5432"}, waitOptions{Targets: []string{"db:5432"}, Timeout: def.Timeout, Interval: def.Interval}},
		{[]string{"a:1", "b:2", "-t", "5s", "--interval", "50ms", "-q", "-4"},
			waitOptions{Targets: []string{"a:1", "b:2"}, Timeout: 5 * time.Second, Interval: 50 * time.Millisecond, Quiet: true, Family: probe.IPv4}},
		{[]string{"--timeout", "0", "a:1", "--", "sh", "-c", "exit 7", "-q"},
			waitOptions{Targets: []string{"a:1"}, Command: []string{"sh", "-c", "exit 7", "-q"}, Interval: def.Interval}},
	}
	for _, tt := range tests {
		streams, _, _ := term.Test("")
		var got waitOptions
		cmd := newWaitCmd(streams, func(o waitOptions) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("wait %q: %v", tt.args, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("wait %q options (-want +got):\n%s", tt.args, diff)
		}
	}
}

func TestWaitUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no target", []string{"wait"}, "at least one target"},
		{"only a command", []string{"wait", "--", "true"}, "at least one target"},
		{"nothing after --", []string{"wait", "127.0.0.1:1", "--"}, "nothing follows"},
		{"bad target", []string{"wait", "db"}, `"db" has no port`},
		{"negative timeout", []string{"wait", "127.0.0.1:1", "--timeout", "-1s"}, "--timeout"},
		{"zero interval", []string{"wait", "127.0.0.1:1", "--interval", "0"}, "--interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != ExitUsage || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("portctl %q = %d, %q; want %d mentioning %q", tt.args, code, stderr, ExitUsage, tt.wantErr)
			}
		})
	}
}

// listenAfter listens on ap after delay, until the test ends.
func listenAfter(t *testing.T, ap netip.AddrPort, delay time.Duration) {
	t.Helper()
	ready := make(chan net.Listener, 1)
	timer := time.AfterFunc(delay, func() {
		l, err := net.Listen("tcp", ap.String())
		if err != nil {
			t.Errorf("listen on %v: %v", ap, err)
			ready <- nil
			return
		}
		ready <- l
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	t.Cleanup(func() {
		if timer.Stop() {
			return
		}
		if l := <-ready; l != nil {
			l.Close()
		}
	})
}

func TestWaitThenRunCommand(t *testing.T) {
	ap := probeClosedPort(t, "127.0.0.1")
	listenAfter(t, ap, 500*time.Millisecond)
	start := time.Now()
	code, _, stderr := runCLI(t, "wait", ap.String(), "--interval", "50ms", "--timeout", "10s", "--", "sh", "-c", "exit 7")
	if code != 7 {
		t.Errorf("wait then exit 7: exit %d; want 7 (stderr %q)", code, stderr)
	}
	if elapsed := time.Since(start); elapsed < 450*time.Millisecond || elapsed > 8*time.Second {
		t.Errorf("wait returned after %v; want soon after 500ms", elapsed)
	}
	for _, w := range []string{"waiting for " + ap.String() + " (connection refused)", ap.String() + " ready after"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("wait progress = %q; want %q", stderr, w)
		}
	}
	if n := strings.Count(stderr, "waiting for"); n != 1 {
		t.Errorf("wait progress has %d waiting lines; want one while the reason stays the same:\n%s", n, stderr)
	}
}

func TestWaitCommandStreams(t *testing.T) {
	ap := probeListen(t, "127.0.0.1:0")
	code, out, stderr := runCLI(t, "wait", "-q", ap.String(), "--", "sh", "-c", "echo out; echo err >&2")
	if code != ExitOK || out != "out\n" || stderr != "err\n" {
		t.Errorf("wait -q -- sh: exit %d, stdout %q, stderr %q; want 0, \"out\\n\", \"err\\n\"", code, out, stderr)
	}
	code, _, stderr = runCLI(t, "wait", ap.String(), "--", "portctl-no-such-command")
	if code != 127 || !strings.Contains(stderr, "portctl-no-such-command") {
		t.Errorf("wait -- missing command: exit %d, stderr %q; want 127 naming it", code, stderr)
	}
}

func TestWaitTimeoutNamesTargets(t *testing.T) {
	open := probeListen(t, "127.0.0.1:0")
	closed := probeClosedPort(t, "127.0.0.1")
	start := time.Now()
	// 1s: on a loaded machine the first attempt on the closed port must
	// have completed by then for the message to say why it failed.
	code, _, stderr := runCLI(t, "wait", open.String(), closed.String(), "--timeout", "1s", "--", "sh", "-c", "exit 7")
	if elapsed := time.Since(start); elapsed > 6*time.Second {
		t.Errorf("wait --timeout 1s took %v", elapsed)
	}
	if code != ExitNegative {
		t.Errorf("wait timeout: exit %d; want %d (the command must not run)", code, ExitNegative)
	}
	last := stderr[strings.LastIndex(strings.TrimRight(stderr, "\n"), "\n")+1:]
	if !strings.Contains(last, "timed out after 1s") || !strings.Contains(last, closed.String()+" (connection refused)") || strings.Contains(last, open.String()) {
		t.Errorf("wait timeout message = %q; want the timeout and the closed target only", last)
	}
}

func TestWaitInterrupted(t *testing.T) {
	closed := probeClosedPort(t, "127.0.0.1")
	streams, _, errb := term.Test("")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel) // as Ctrl-C does through signal.NotifyContext
	start := time.Now()
	err := runWait(ctx, streams, waitOptions{Targets: []string{closed.String()}, Interval: 10 * time.Second, Command: []string{"true"}})
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("interrupted wait returned after %v; want at once", elapsed)
	}
	if code := exitCode(err, errb); code != 130 {
		t.Errorf("interrupted wait: exit %d; want 130", code)
	}
	if !strings.Contains(errb.String(), "interrupted") || !strings.Contains(errb.String(), closed.String()) {
		t.Errorf("interrupted wait stderr = %q; want it to say so and name the target", errb.String())
	}
}

func TestWaitJSON(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	closed := freePort(t)
	code, out, _ := runCLI(t, "wait", "-q", "--json", "--timeout", "300ms", l.Addr().String(), fmt.Sprintf("127.0.0.1:%d", closed))
	var res waitResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("wait --json: %v\n%s", err, out)
	}
	if code != ExitNegative || res.Ready || len(res.Targets) != 2 || !res.Targets[0].Ready || res.Targets[1].Ready || res.Targets[1].Reason == "" {
		t.Errorf("wait --json with one closed target: exit %d, %+v", code, res)
	}
	if code, _, _ := runCLI(t, "wait", "--json", l.Addr().String(), "--", "true"); code != ExitUsage {
		t.Errorf("wait --json -- CMD: exit %d; want %d", code, ExitUsage)
	}
}
