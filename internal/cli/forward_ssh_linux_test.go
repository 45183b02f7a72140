package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/internal/testnet"
)

// sshPayload is what the tests send through the tunnels, 8 MiB.
var sshPayload = func() []byte {
	b := make([]byte, 8<<20)
	rand.Read(b)
	return b
}()

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sshHome makes a home directory whose ~/.ssh/config names each server
// (Host NAME: HostName, Port, User root, IdentityFile) and whose
// known_hosts knows them, and points HOME at it; no agent.
func sshHome(t *testing.T, servers map[string]*testnet.SSHD) string {
	t.Helper()
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	var conf, known strings.Builder
	for name, d := range servers {
		conf.WriteString(d.HostBlock(name) + "  ServerAliveInterval 1\n")
		known.WriteString(d.KnownHostsLine() + "\n")
	}
	writeTestFile(t, filepath.Join(home, ".ssh", "config"), conf.String())
	writeTestFile(t, filepath.Join(home, ".ssh", "known_hosts"), known.String())
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	return home
}

// startForward runs `portctl forward` with opts until the test ends, and
// returns its log.
func startForward(t *testing.T, opts forwardOptions) *lockedBuffer {
	t.Helper()
	streams, _, _ := term.Test("")
	errb := &lockedBuffer{}
	streams.Err = errb
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	opts.Drain = time.Second
	go func() { done <- runForward(ctx, streams, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("forward: %v\n%s", err, errb)
		}
	})
	// The rules are up once the log names them.
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(errb.String(), " -> ") {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("forward ended: %v\n%s", err, errb)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("forward did not start:\n%s", errb)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errb
}

// download reads everything from addr and returns its sha256.
func download(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// upload sends the payload to a sink at addr, shuts down writing, and
// returns the sha256 the sink answers with.
func upload(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(sshPayload); err != nil {
		return "", err
	}
	c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	return string(b), err
}

// dataServers: a source that sends the payload and closes, a sink that
// answers with the sha256 of what it read.
func dataServers(t *testing.T) (source, sink string) {
	src := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) { c.Write(sshPayload) })
	snk := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		h := sha256.New()
		if _, err := io.Copy(h, c); err == nil {
			io.WriteString(c, hex.EncodeToString(h.Sum(nil)))
		}
	})
	return src.String(), snk.String()
}

// TestIntegrationForwardVia runs ssh -L, -R and -D rules through one
// real sshd in one portctl forward: sha256-checked transfers both ways
// through each (curl as the SOCKS5 client), one SSH session for all of
// them, and the SSH server's state in --stats.
func TestIntegrationForwardVia(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("no curl: install curl (test-deps.sh)")
	}
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	sshHome(t, map[string]*testnet.SSHD{"bastion": d})
	source, sink := dataServers(t)
	webLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			h := sha256.New()
			io.Copy(h, r.Body)
			io.WriteString(w, hex.EncodeToString(h.Sum(nil)))
			return
		}
		w.Write(sshPayload)
	})}
	go web.Serve(webLn)
	t.Cleanup(func() { web.Close() })
	lDown, lUp, socks := testnet.ClosedPort(t, "127.0.0.1"), testnet.ClosedPort(t, "127.0.0.1"), testnet.ClosedPort(t, "127.0.0.1")
	remote := testnet.ClosedPort(t, "127.0.0.1") // on the server: the same host here
	procs := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { // after the forwarder's own cleanup has ended it
		if got := runtime.GOMAXPROCS(0); got != procs {
			t.Errorf("after the forwarder ended: GOMAXPROCS %d, want %d again", got, procs)
		}
	})
	startForward(t, forwardOptions{
		Rules: []string{lDown.String() + ":" + source, lUp.String() + ":" + sink, "socks5://" + socks.String()},
		// Without an address the server listens on its loopback.
		Remote: []string{fmt.Sprintf("%d:127.0.0.1:%s", remote.Port(), strings.Split(sink, ":")[1])},
		Via:    "ssh://bastion",
	})
	// Every rule goes through one SSH server: the forwarder runs on one P
	// (forwardRuntime), and gives the default back when it ends.
	if os.Getenv("GOMAXPROCS") == "" {
		if got := runtime.GOMAXPROCS(0); got != 1 {
			t.Errorf("forwarding through one SSH server: GOMAXPROCS %d, want 1", got)
		}
	}
	want := sha(sshPayload)
	if got, err := download(lDown.String()); err != nil || got != want {
		t.Errorf("-L download: sha256 %s, %v; want %s", got, err, want)
	}
	if got, err := upload(lUp.String()); err != nil || got != want {
		t.Errorf("-L upload: sha256 %s, %v; want %s", got, err, want)
	}
	if got, err := upload(remote.String()); err != nil || got != want {
		t.Errorf("-R upload (to the server's %s): sha256 %s, %v; want %s", remote, got, err, want)
	}
	dir := t.TempDir()
	url := fmt.Sprintf("http://localhost:%d/", webLn.Addr().(*net.TCPAddr).Port)
	curl := func(args ...string) string {
		t.Helper()
		args = append([]string{"-sS", "--fail", "--max-time", "60", "--socks5-hostname", socks.String()}, args...)
		out, err := exec.Command("curl", args...).CombinedOutput()
		if err != nil {
			t.Errorf("curl %q: %v: %s", args, err, out)
		}
		return string(out)
	}
	curl("-o", filepath.Join(dir, "down"), url)
	if b, err := os.ReadFile(filepath.Join(dir, "down")); err != nil || sha(b) != want {
		t.Errorf("SOCKS5 download: %d bytes, %v; sha256 differs", len(b), err)
	}
	writeTestFile(t, filepath.Join(dir, "up"), string(sshPayload))
	if got := curl("-T", filepath.Join(dir, "up"), url); got != want {
		t.Errorf("SOCKS5 upload: the server's sha256 %q; want %s", got, want)
	}
	if n := d.Logins(); n != 1 {
		t.Errorf("the server saw %d logins; want 1 for the four rules", n)
	}
	var code int
	var out, errOut string
	for range 50 { // the stats socket comes just after the rules
		if code, out, errOut = runCLI(t, "forward", "--stats"); code == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code != 0 {
		t.Fatalf("--stats: exit %d: %s", code, errOut)
	}
	for _, w := range []string{"ssh://bastion", "connected", "socks5/" + socks.String(), "on ssh://bastion", "via ssh://bastion"} {
		if !strings.Contains(out, w) {
			t.Errorf("--stats lacks %q:\n%s", w, out)
		}
	}
}

// TestIntegrationForwardViaOutage kills sshd in the middle of a transfer
// through a rule: the transfer fails (it does not hang), and once sshd is
// back a new connection through the same rule works within 2 s, without
// restarting portctl.
func TestIntegrationForwardViaOutage(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	sshHome(t, map[string]*testnet.SSHD{"bastion": d})
	slow := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		for range 600 { // at most 60 s
			if _, err := c.Write(make([]byte, 4096)); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	echo := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) { io.Copy(c, c) })
	lSlow, lEcho := testnet.ClosedPort(t, "127.0.0.1"), testnet.ClosedPort(t, "127.0.0.1")
	log := startForward(t, forwardOptions{Rules: []string{lSlow.String() + ":" + slow.String(), lEcho.String() + ":" + echo.String()},
		Via: "ssh://bastion"})
	c, err := net.Dial("tcp", lSlow.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.ReadFull(c, make([]byte, 4096)); err != nil {
		t.Fatalf("the transfer did not start: %v", err)
	}
	d.Kill()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the transfer hung after sshd was killed")
	}
	time.Sleep(time.Second)
	d.Start()
	up := time.Now()
	var last error
	for time.Since(up) < 5*time.Second {
		if last = echoOnce(lEcho.String()); last == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(up)
	if last != nil || took > 2*time.Second {
		t.Fatalf("a connection through the rule after sshd came back: %v after %v; want success within 2 s", last, took)
	}
	t.Logf("through the rule again %v after sshd listened", took.Round(time.Millisecond))
	for deadline := time.Now().Add(3 * time.Second); !strings.Contains(log.String(), "connected again as root@"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log does not tell of the reconnection:\n%s", log)
		}
	}
	if !strings.Contains(log.String(), "; reconnecting") {
		t.Errorf("the log does not tell of the lost link:\n%s", log)
	}
}

// echoOnce sends a line through an echo server at addr and reads it back.
func echoOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(c, b); err != nil {
		return err
	}
	if string(b) != "ping\n" {
		return fmt.Errorf("echo %q", b)
	}
	return nil
}

// TestIntegrationForwardViaHostKeys: an unknown host key without a
// terminal, and a changed one, end the command with one clear line;
// --accept-new takes an unknown key and writes it to known_hosts.
func TestIntegrationForwardViaHostKeys(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	home := sshHome(t, map[string]*testnet.SSHD{"bastion": d})
	known := filepath.Join(home, ".ssh", "known_hosts")
	rule := testnet.ClosedPort(t, "127.0.0.1").String() + ":127.0.0.1:9"

	writeTestFile(t, known, "")
	code, _, errOut := runCLI(t, "forward", rule, "--via", "ssh://bastion")
	if code != ExitFailure || !strings.Contains(errOut, "unknown") || !strings.Contains(errOut, "--accept-new") ||
		strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("unknown host key: exit %d, stderr %q; want 3 and one line naming --accept-new", code, errOut)
	}

	other := testnet.SSHKey(t, t.TempDir(), "other", "ed25519")
	pub, _ := os.ReadFile(other + ".pub")
	f := strings.Fields(string(pub))
	writeTestFile(t, known, fmt.Sprintf("[%s]:%d %s %s\n", d.Addr.Addr(), d.Addr.Port(), f[0], f[1]))
	code, _, errOut = runCLI(t, "forward", rule, "--via", "ssh://bastion", "--accept-new")
	if code != ExitFailure || !strings.Contains(errOut, "CHANGED") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("changed host key, even with --accept-new: exit %d, stderr %q; want 3 and one line saying CHANGED", code, errOut)
	}

	writeTestFile(t, known, "")
	echo := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) { io.Copy(c, c) })
	l := testnet.ClosedPort(t, "127.0.0.1")
	startForward(t, forwardOptions{Rules: []string{l.String() + ":" + echo.String()}, Via: "ssh://bastion", AcceptNew: true})
	if err := echoOnce(l.String()); err != nil {
		t.Errorf("through the rule after --accept-new: %v", err)
	}
	if b, _ := os.ReadFile(known); !strings.Contains(string(b), strings.Fields(d.KnownHostsLine())[2]) {
		t.Errorf("known_hosts after --accept-new lacks the server's key:\n%s", b)
	}
}

// TestIntegrationForwardViaCheck drives --check through the tunnel for
// each kind of rule.
func TestIntegrationForwardViaCheck(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	sshHome(t, map[string]*testnet.SSHD{"bastion": d})
	echo := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) { io.Copy(c, c) })
	code, out, errOut := runCLI(t, "forward", "--check", "--via", "ssh://bastion",
		"127.0.0.1:0:"+echo.String(), "socks5://127.0.0.1:0", "--remote", "127.0.0.1:0:"+echo.String())
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	if n := strings.Count(out, "sha256 equal"); n != 3 {
		t.Errorf("%d streams checked through the tunnel; want 3:\n%s", n, out)
	}
	for _, w := range []string{"logged in to ssh://bastion", "accepts connections from ssh://bastion", "accepts connections from here", "listens for the rule"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// TestIntegrationForwardViaProxyJump reaches the target through a second
// sshd named by ProxyJump in ~/.ssh/config: each server sees one login.
func TestIntegrationForwardViaProxyJump(t *testing.T) {
	jump := testnet.StartSSHD(t, testnet.SSHDOptions{})
	target := testnet.StartSSHD(t, testnet.SSHDOptions{})
	home := sshHome(t, map[string]*testnet.SSHD{"jump": jump, "inner": target})
	conf := filepath.Join(home, ".ssh", "config")
	b, _ := os.ReadFile(conf)
	writeTestFile(t, conf, "Host inner\n  ProxyJump jump\n"+string(b))
	echo := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) { io.Copy(c, c) })
	l := testnet.ClosedPort(t, "127.0.0.1")
	startForward(t, forwardOptions{Rules: []string{l.String() + ":" + echo.String()}, Via: "ssh://inner"})
	if err := echoOnce(l.String()); err != nil {
		t.Fatalf("through the jump host: %v", err)
	}
	if j, i := jump.Logins(), target.Logins(); j != 1 || i != 1 {
		t.Errorf("logins: jump host %d, target %d; want 1 each", j, i)
	}
}

// kbdServer is an SSH server that lets in whoever answers "portctl" to a
// keyboard-interactive question (OpenSSH would need a system account
// with a password for that), and refuses every channel.
func kbdServer(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{KeyboardInteractiveCallback: func(_ ssh.ConnMetadata, ask ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
		ans, err := ask("", "a question", []string{"Word: "}, []bool{false})
		if err != nil || len(ans) != 1 || ans[0] != "portctl" {
			return nil, fmt.Errorf("wrong word")
		}
		return nil, nil
	}}
	cfg.AddHostKey(signer)
	ln := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		_, chans, reqs, err := ssh.NewServerConn(c, cfg)
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		for ch := range chans {
			ch.Reject(ssh.Prohibited, "no channels here")
		}
	})
	return ln.String()
}

// TestIntegrationForwardViaTerminalPrompt: with a terminal on stdin (a
// pseudo-terminal made by script(1)), a keyboard-interactive question is
// asked there without echoing the answer, and the rule starts; without a
// terminal nothing is asked and the command ends with one line.
func TestIntegrationForwardViaTerminalPrompt(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatal("no script(1): install bsdutils (test-deps.sh)")
	}
	addr := kbdServer(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	args := []string{"forward", testnet.ClosedPort(t, "127.0.0.1").String() + ":127.0.0.1:9", "--via", "ssh://me@" + addr,
		"--accept-new", "--ssh-config", "none"}

	code, _, errOut := runCLI(t, args...)
	if code != ExitFailure || !strings.Contains(errOut, "no terminal") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("without a terminal: exit %d, stderr %q; want 3 and one line naming the missing terminal", code, errOut)
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("script", "-qfec", exe+" -- "+strings.Join(args, " "), "/dev/null")
	cmd.Env = append(os.Environ(), "PORTCTL_TEST_HELPER=portctl")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // script and the portctl it runs, by their group
		cmd.Wait()
	}()
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); !strings.Contains(out.String(), what); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the terminal never showed %q:\n%s", what, out)
			}
		}
	}
	waitFor("Word: ")
	io.WriteString(in, "portctl\n")
	waitFor(" -> ")
	if s := out.String(); !strings.Contains(s, "a question") || strings.Contains(s, "portctl\r\n") {
		t.Errorf("the terminal showed:\n%s\nwant the instruction, and the answer not echoed", s)
	}
}
