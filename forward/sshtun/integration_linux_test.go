package sshtun

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/portctl/portctl/forward/sshtun/sshwire"
	"github.com/portctl/portctl/internal/testnet"
)

// payloadSize is what each transfer carries (the race detector makes
// ciphers slow: a few MiB keep the tests short).
const payloadSize = 4 << 20

var payload = func() []byte {
	b := make([]byte, payloadSize)
	rand.Read(b)
	return b
}()

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// dataServers starts a source, which sends payload and closes, and a
// sink, which reads to EOF and answers with the SHA-256 of what it read.
func dataServers(t *testing.T) (source, sink string) {
	src := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) { c.Write(payload) })
	snk := testnet.Serve(t, "127.0.0.1:0", serveSink)
	return src.String(), snk.String()
}

func serveSink(c net.Conn) {
	h := sha256.New()
	if _, err := io.Copy(h, c); err != nil {
		return
	}
	io.WriteString(c, hex.EncodeToString(h.Sum(nil)))
}

// upload sends payload over c, closes its writing half and checks the
// sink's answer.
func upload(t *testing.T, c net.Conn) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("upload: read the answer: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("upload: %v", err)
	}
	if string(got) != sum(payload) {
		t.Fatalf("upload: the far end got SHA-256 %s; sent %s", got, sum(payload))
	}
}

// download reads c to EOF and checks it is payload.
func download(t *testing.T, c net.Conn) {
	t.Helper()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("download: %v after %d bytes", err, len(got))
	}
	if sum(got) != sum(payload) {
		t.Fatalf("download: got %d bytes, SHA-256 %s; want %d bytes, %s", len(got), sum(got), len(payload), sum(payload))
	}
}

// setup is a client's home: an ssh config naming the servers, known_hosts
// with their keys.
type setup struct {
	home   string
	config string // ssh_config text
	known  string // known_hosts path
}

// newSetup writes a home directory whose config has "Host NAME" entries
// for each server (HostName, Port, User root, IdentityFile) and whose
// known_hosts knows them.
func newSetup(t *testing.T, servers map[string]*testnet.SSHD, extra string) *setup {
	t.Helper()
	s := &setup{home: t.TempDir()}
	os.MkdirAll(filepath.Join(s.home, ".ssh"), 0o700)
	s.known = filepath.Join(s.home, ".ssh", "known_hosts")
	var conf, known strings.Builder
	for name, d := range servers {
		conf.WriteString(d.HostBlock(name))
		known.WriteString(d.KnownHostsLine() + "\n")
	}
	s.config = extra + "\n" + conf.String()
	if err := os.WriteFile(s.known, []byte(known.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *setup) options(t *testing.T) Options {
	t.Helper()
	c, err := ParseConfig(strings.NewReader(s.config))
	if err != nil {
		t.Fatal(err)
	}
	return Options{Config: c, HomeDir: s.home, LocalUser: "nobody", ConnectTimeout: 5 * time.Second, KeepAliveInterval: time.Second}
}

func newManager(t *testing.T, o Options) *Manager {
	m := NewManager(o)
	t.Cleanup(func() { m.Close() })
	return m
}

func host(t *testing.T, m *Manager, target string) *Host {
	t.Helper()
	h, err := m.Host(target)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func dial(t *testing.T, h *Host, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := h.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestIntegrationLocalForward: -L both ways, through Dial and through
// Forward's listener with a plain TCP client.
func TestIntegrationLocalForward(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	s := newSetup(t, map[string]*testnet.SSHD{"tunnel": d}, "")
	m := newManager(t, s.options(t))
	h := host(t, m, "ssh://tunnel")
	source, sink := dataServers(t)

	upload(t, dial(t, h, sink))
	download(t, dial(t, h, source))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Forward(ctx, ln, sink) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	upload(t, c)
	c.Close()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Forward = %v; want context.Canceled", err)
	}

	st := h.State()
	if st.State != StateConnected || st.Connects != 1 || st.Conns != 3 || st.BytesOut < 2*payloadSize || st.BytesIn < payloadSize || st.RTT <= 0 {
		t.Errorf("State = %+v; want connected once, 3 conns, bytes both ways, an RTT", st)
	}
	if n := d.Logins(); n != 1 {
		t.Errorf("sshd accepted %d logins; want 1", n)
	}
}

// TestIntegrationRemoteForward: -R both ways: the server listens, a client
// on its side connects, the connection arrives here.
func TestIntegrationRemoteForward(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	s := newSetup(t, map[string]*testnet.SSHD{"tunnel": d}, "")
	m := newManager(t, s.options(t))
	h := host(t, m, "ssh://tunnel")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := h.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if i%2 == 0 {
				go func() { defer c.Close(); serveSink(c) }()
			} else {
				go func() { defer c.Close(); c.Write(payload) }()
			}
		}
	}()
	remote := ln.Addr().String()
	if strings.HasSuffix(remote, ":0") {
		t.Fatalf("Addr = %s; want the port the server picked", remote)
	}
	c, err := net.Dial("tcp", remote)
	if err != nil {
		t.Fatal(err)
	}
	upload(t, c)
	c.Close()
	c, err = net.Dial("tcp", remote)
	if err != nil {
		t.Fatal(err)
	}
	download(t, c)
	c.Close()
	if st := h.State(); st.Listeners != 1 || st.Conns != 2 {
		t.Errorf("State = %+v; want 1 listener, 2 conns", st)
	}
	// Closing the listener cancels the forward on the server.
	ln.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", remote)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the server still listens on %s after Close", remote)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIntegrationSOCKS: curl --socks5-hostname through the SOCKS server,
// down and up, the host name resolved at the far end.
func TestIntegrationSOCKS(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl: install curl (test-deps.sh)")
	}
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	s := newSetup(t, map[string]*testnet.SSHD{"tunnel": d}, "")
	m := newManager(t, s.options(t))
	h := host(t, m, "ssh://tunnel")

	web := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		http.Serve(&oneConn{c: c}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.Method {
			case http.MethodGet:
				w.Write(payload)
			case http.MethodPut:
				h := sha256.New()
				io.Copy(h, r.Body)
				io.WriteString(w, hex.EncodeToString(h.Sum(nil)))
			}
		}))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := &SOCKS5{Dial: h.Dial}
	go srv.Serve(ctx, ln)

	dir := t.TempDir()
	url := fmt.Sprintf("http://localhost:%d/", web.Port())
	out := filepath.Join(dir, "down")
	curl := func(args ...string) []byte {
		t.Helper()
		args = append([]string{"-sS", "--fail", "--max-time", "60", "--socks5-hostname", ln.Addr().String()}, args...)
		b, err := exec.Command("curl", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %q: %v: %s", args, err, b)
		}
		return b
	}
	curl("-o", out, url)
	got, _ := os.ReadFile(out)
	if sum(got) != sum(payload) {
		t.Fatalf("curl got %d bytes, SHA-256 %s; want %s", len(got), sum(got), sum(payload))
	}
	if ans := curl("-T", out, url+"up"); string(ans) != sum(payload) {
		t.Fatalf("curl -T: the server got SHA-256 %s; want %s", ans, sum(payload))
	}
	// A port where nothing listens: the SSH server's refusal becomes
	// SOCKS's "connection refused", which curl reports.
	closed := testnet.ClosedPort(t, "127.0.0.1")
	b, err := exec.Command("curl", "-sS", "--max-time", "20", "--socks5-hostname", ln.Addr().String(), fmt.Sprintf("http://127.0.0.1:%d/", closed.Port())).CombinedOutput()
	if err == nil || !strings.Contains(string(b), "(5)") { // RFC 1928's 5: connection refused
		t.Errorf("curl to a closed port: %v, %s; want connection refused", err, b)
	}
}

// oneConn is a net.Listener that yields one connection, for http.Serve on
// a connection testnet.Serve accepted.
type oneConn struct {
	c    net.Conn
	done bool
	mu   sync.Mutex
	wait chan struct{}
}

func (o *oneConn) Accept() (net.Conn, error) {
	o.mu.Lock()
	if !o.done {
		o.done = true
		o.wait = make(chan struct{})
		o.mu.Unlock()
		return &closeNotify{Conn: o.c, done: o.wait}, nil
	}
	w := o.wait
	o.mu.Unlock()
	<-w
	return nil, net.ErrClosed
}
func (o *oneConn) Close() error   { return nil }
func (o *oneConn) Addr() net.Addr { return o.c.LocalAddr() }

type closeNotify struct {
	net.Conn
	once sync.Once
	done chan struct{}
}

func (c *closeNotify) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.Conn.Close()
}

// TestIntegrationProxyJump: the target is reached through a second sshd.
func TestIntegrationProxyJump(t *testing.T) {
	jump := testnet.StartSSHD(t, testnet.SSHDOptions{})
	target := testnet.StartSSHD(t, testnet.SSHDOptions{})
	s := newSetup(t, map[string]*testnet.SSHD{"jump": jump, "inner": target}, "Host inner\n  ProxyJump jump\n")
	m := newManager(t, s.options(t))
	h := host(t, m, "ssh://inner")
	source, sink := dataServers(t)
	upload(t, dial(t, h, sink))
	download(t, dial(t, h, source))

	st := h.State()
	if len(st.Via) != 1 || !strings.Contains(st.Via[0], jump.Addr.String()) {
		t.Errorf("State.Via = %q; want the jump host %s", st.Via, jump.Addr)
	}
	if jump.Logins() != 1 || target.Logins() != 1 {
		t.Errorf("logins: jump %d, target %d; want 1 each", jump.Logins(), target.Logins())
	}
	// The jump host opened the connection to the target for us.
	want := fmt.Sprintf("target 127.0.0.1 port %d", target.Addr.Port())
	if !strings.Contains(jump.LogText(), want) {
		t.Errorf("the jump host's log has no %q:\n%s", want, jump.LogText())
	}
}

// TestIntegrationOneConnection: many tunnels, local, remote and SOCKS, at
// once over one host: the server sees one login and one TCP connection.
func TestIntegrationOneConnection(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	s := newSetup(t, map[string]*testnet.SSHD{"tunnel": d}, "")
	m := newManager(t, s.options(t))
	// Two spellings of the same host share it.
	h := host(t, m, "ssh://tunnel")
	h2 := host(t, m, fmt.Sprintf("ssh://root@tunnel:%d", d.Addr.Port()))
	if h != h2 {
		t.Fatal("ssh://tunnel and ssh://root@tunnel:PORT got different hosts")
	}
	_, sink := dataServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln := listenSink(t, ctx, h, "127.0.0.1:0")
	defer ln.Close()
	const n = 16
	var conns []net.Conn
	for i := range n {
		var c net.Conn
		var err error
		if i%2 == 0 {
			c, err = h.Dial(ctx, "tcp", sink)
		} else {
			c, err = net.Dial("tcp", ln.Addr().String())
		}
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// All open at once, on the one connection.
	if got := d.EstablishedTo(); got != 1 {
		st := h.State()
		t.Errorf("%d TCP connections to sshd with %d tunnels open; want 1 (logins %d, attempts %d, last error %q)", got, n, st.Connects, st.Attempts, st.LastError)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.Write(payload[:256<<10])
			c.(interface{ CloseWrite() error }).CloseWrite()
			got, _ := io.ReadAll(c)
			if string(got) != sum(payload[:256<<10]) {
				t.Errorf("a tunnel's sink got SHA-256 %q; want %s", got, sum(payload[:256<<10]))
			}
			c.Close()
		})
	}
	wg.Wait()
	if got := d.Logins(); got != 1 {
		t.Errorf("sshd accepted %d logins for %d tunnels; want 1", got, n)
	}
	if st := h.State(); st.Conns != n || st.Connects != 1 {
		t.Errorf("State = %+v; want %d conns over 1 connection", st, n)
	}
	// CloseHost ends the connection; the next Host starts a new one.
	if err := m.CloseHost("ssh://tunnel"); err != nil {
		t.Fatal(err)
	}
	if st := h.State(); st.State != StateClosed {
		t.Errorf("State after CloseHost = %v; want closed", st.State)
	}
	h3 := host(t, m, "ssh://tunnel")
	if h3 == h {
		t.Fatal("Host after CloseHost returned the closed host")
	}
	upload(t, dial(t, h3, sink))
	if got := d.Logins(); got != 2 {
		t.Errorf("sshd accepted %d logins after CloseHost and a new Host; want 2", got)
	}
}

// TestIntegrationReconnect: sshd killed mid-transfer. The transfer fails
// with an error (not a clean EOF); Dials while it is down fail after the
// connect timeout; once it is back, a Dial through the same Manager works
// within 2 s, and the remote forward is back by itself.
func TestIntegrationReconnect(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	s := newSetup(t, map[string]*testnet.SSHD{"tunnel": d}, "")
	o := s.options(t)
	o.ConnectTimeout = time.Second
	m := newManager(t, o)
	h := host(t, m, "ssh://tunnel")
	// An endless source.
	endless := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		for {
			if _, err := c.Write(payload[:64<<10]); err != nil {
				return
			}
		}
	})
	_, sink := dataServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	remotePort := testnet.ClosedPort(t, "127.0.0.1")
	ln := listenSink(t, ctx, h, remotePort.String())
	defer ln.Close()

	// Two transfers: one on a Dial'd connection, one through Forward's
	// listener from a plain TCP client (the -L rule's view).
	fl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fctx, fcancel := context.WithCancel(context.Background())
	fdone := make(chan struct{})
	go func() { h.Forward(fctx, fl, endless.String()); close(fdone) }()
	defer func() { fcancel(); <-fdone }()
	viaForward, err := net.Dial("tcp", fl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer viaForward.Close()
	c := dial(t, h, endless.String())
	buf := make([]byte, 32<<10)
	for _, c := range []net.Conn{c, viaForward} {
		var n int
		for n < 1<<20 {
			k, err := c.Read(buf)
			if err != nil {
				t.Fatalf("read before the kill: %v", err)
			}
			n += k
		}
	}
	d.Kill()
	killed := time.Now()
	readErr := func(c net.Conn) error {
		for {
			if _, err := c.Read(buf); err != nil {
				return err
			}
		}
	}
	rerr := readErr(c)
	if rerr == io.EOF || !errors.Is(rerr, io.ErrUnexpectedEOF) {
		t.Errorf("read after the kill: %v; want an error wrapping io.ErrUnexpectedEOF, not a clean EOF", rerr)
	}
	ferr := readErr(viaForward)
	if !errors.Is(ferr, syscall.ECONNRESET) {
		t.Errorf("read through Forward after the kill: %v; want a connection reset, not a clean EOF", ferr)
	}
	if el := time.Since(killed); el > 5*time.Second {
		t.Errorf("the transfers took %s to fail", el)
	}
	t.Logf("transfers failed %s after the kill: %v; through Forward: %v", time.Since(killed).Round(time.Millisecond), rerr, ferr)

	// Down: a Dial waits the connect timeout, then fails cleanly.
	start := time.Now()
	_, err = h.Dial(context.Background(), "tcp", sink)
	if !errors.Is(err, ErrLinkDown) || strings.ContainsRune(err.Error(), '\n') {
		t.Errorf("Dial while down = %v; want ErrLinkDown, one line", err)
	}
	if el := time.Since(start); el < 900*time.Millisecond || el > 3*time.Second {
		t.Errorf("Dial while down returned after %s; want the connect timeout (1 s)", el)
	}
	if st := h.State(); st.State != StateReconnecting || st.LastError == "" {
		t.Errorf("State while down = %+v; want reconnecting with an error", st)
	}
	time.Sleep(1500 * time.Millisecond) // let the back-off grow

	d.Start()
	up := time.Now()
	upload(t, dial(t, h, sink))
	if el := time.Since(up); el > 2*time.Second {
		t.Errorf("a new connection worked %s after sshd was up; want within 2 s", el)
	} else {
		t.Logf("a new connection worked %s after sshd was up", el.Round(time.Millisecond))
	}
	// The remote forward is back too.
	for {
		c, err := net.Dial("tcp", remotePort.String())
		if err == nil {
			upload(t, c)
			c.Close()
			break
		}
		if time.Since(up) > 2*time.Second {
			t.Fatalf("the remote forward on %s is not back 2 s after sshd: %v (%v)", remotePort, err, ListenerErr(ln))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("remote forward back %s after sshd was up", time.Since(up).Round(time.Millisecond))
	if st := h.State(); st.State != StateConnected || st.Connects != 2 {
		t.Errorf("State = %+v; want connected, 2 connects", st)
	}
}

// TestIntegrationKeepAlive: a server that stops answering (its session
// process stopped) is found dead by keepalives, and the Manager connects
// again.
func TestIntegrationKeepAlive(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	s := newSetup(t, map[string]*testnet.SSHD{"tunnel": d}, "")
	o := s.options(t)
	o.KeepAliveInterval = 300 * time.Millisecond
	o.KeepAliveCountMax = 2
	m := newManager(t, o)
	h := host(t, m, "ssh://tunnel")
	_, sink := dataServers(t)
	upload(t, dial(t, h, sink))
	// A remote forward on a fixed port, which the stopped session will
	// keep holding.
	remotePort := testnet.ClosedPort(t, "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln := listenSink(t, ctx, h, remotePort.String())
	defer ln.Close()
	pids := d.SessionPIDs()
	if len(pids) == 0 {
		t.Fatal("no sshd session process")
	}
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGSTOP)
	}
	t.Cleanup(func() {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGCONT)
		}
	})
	stopped := time.Now()
	for h.State().Connects < 2 {
		if time.Since(stopped) > 5*time.Second {
			t.Fatalf("not reconnected 5 s after the server stopped answering: %+v", h.State())
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := h.State()
	if !strings.Contains(st.LastError, "keepalive") {
		t.Errorf("LastError = %q; want the keepalives named", st.LastError)
	}
	t.Logf("dead link found and replaced in %s: %s", time.Since(stopped).Round(time.Millisecond), st.LastError)
	upload(t, dial(t, h, sink))

	// The stopped session still holds the remote port: the new connection
	// cannot have it yet, and says why.
	for ListenerErr(ln) == nil {
		if time.Since(stopped) > 5*time.Second {
			t.Fatal("the remote forward was granted again while the old session holds its port")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("remote forward while the old session holds the port: %v", ListenerErr(ln))
	// The old session goes: the forward is retried and comes back.
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGKILL)
	}
	pids = nil // nothing to continue at cleanup
	gone := time.Now()
	for {
		// A connection can still reach the dying session's listener and
		// be reset: try again then.
		c, err := net.Dial("tcp", remotePort.String())
		if err == nil {
			c.Write([]byte("x"))
			c.(*net.TCPConn).CloseWrite()
			var got []byte
			got, err = io.ReadAll(c)
			c.Close()
			if err == nil && string(got) == sum([]byte("x")) {
				break // through the new session, to our sink
			}
		}
		if time.Since(gone) > 3*time.Second {
			t.Fatalf("the remote forward is not back 3 s after the old session went: %v", ListenerErr(ln))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("remote forward back %s after the old session went", time.Since(gone).Round(time.Millisecond))
}

// TestIntegrationHostKeys: an unknown host is refused, or accepted and
// remembered with AcceptNew; a changed key is refused with both
// fingerprints.
func TestIntegrationHostKeys(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	s := newSetup(t, map[string]*testnet.SSHD{"tunnel": d}, "")
	_, sink := dataServers(t)
	pub, _ := os.ReadFile(d.HostKey + ".pub")
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	presented := ssh.FingerprintSHA256(hostKey)

	// Unknown, strict.
	os.WriteFile(s.known, nil, 0o600)
	m := newManager(t, s.options(t))
	start := time.Now()
	_, err = m.Dial(context.Background(), "ssh://tunnel", "tcp", sink)
	if !errors.Is(err, ErrHostKeyUnknown) || !strings.Contains(err.Error(), presented) || strings.ContainsRune(err.Error(), '\n') {
		t.Errorf("unknown host: %v; want ErrHostKeyUnknown naming %s, one line", err, presented)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("the refusal took %s; want it at once", el)
	}
	m.Close()

	// AcceptNew: connects and remembers.
	o := s.options(t)
	o.AcceptNew = true
	m = newManager(t, o)
	h := host(t, m, "ssh://tunnel")
	upload(t, dial(t, h, sink))
	m.Close()
	kh, _ := os.ReadFile(s.known)
	if !strings.Contains(string(kh), strings.TrimSpace(d.KnownHostsLine())) {
		t.Errorf("known_hosts after AcceptNew = %q; want %q", kh, d.KnownHostsLine())
	}
	// Now known: strict works.
	m = newManager(t, s.options(t))
	upload(t, dial(t, host(t, m, "ssh://tunnel"), sink))
	m.Close()
	// Hashed, as Debian's ssh writes it (HashKnownHosts yes): still known.
	if out, err := exec.Command("ssh-keygen", "-H", "-f", s.known).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -H: %v: %s", err, out)
	}
	if kh, _ := os.ReadFile(s.known); !strings.HasPrefix(string(kh), "|1|") {
		t.Fatalf("known_hosts after ssh-keygen -H = %q; want hashed", kh)
	}
	m = newManager(t, s.options(t))
	upload(t, dial(t, host(t, m, "ssh://tunnel"), sink))
	m.Close()

	// Changed: known_hosts holds another key for the address.
	other := testnet.SSHKey(t, t.TempDir(), "other", "ed25519")
	opub, _ := os.ReadFile(other + ".pub")
	okey, _, _, _, _ := ssh.ParseAuthorizedKey(opub)
	f := strings.Fields(string(opub))
	os.WriteFile(s.known, []byte(fmt.Sprintf("[%s]:%d %s %s\n", d.Addr.Addr(), d.Addr.Port(), f[0], f[1])), 0o600)
	for _, accept := range []bool{false, true} {
		o := s.options(t)
		o.AcceptNew = accept
		m = newManager(t, o)
		_, err = m.Dial(context.Background(), "ssh://tunnel", "tcp", sink)
		if !errors.Is(err, ErrHostKeyChanged) || !strings.Contains(err.Error(), presented) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(okey)) {
			t.Errorf("changed key (AcceptNew %v): %v; want ErrHostKeyChanged naming %s and %s", accept, err, ssh.FingerprintSHA256(okey), presented)
		}
		m.Close()
	}
	t.Logf("changed key: %v", err)
}

// TestIntegrationLogin: with no key, no agent and no terminal the Dial
// fails at once with one line saying so; with the key in ssh-agent (the
// socket passed in, no file) it works.
func TestIntegrationLogin(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	_, sink := dataServers(t)
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	known := filepath.Join(home, ".ssh", "known_hosts")
	os.WriteFile(known, []byte(d.KnownHostsLine()+"\n"), 0o600)
	target := fmt.Sprintf("ssh://root@%s", d.Addr)

	m := newManager(t, Options{HomeDir: home, ConnectTimeout: 5 * time.Second})
	start := time.Now()
	_, err := m.Dial(context.Background(), target, "tcp", sink)
	if !errors.Is(err, ErrAuth) || strings.ContainsRune(err.Error(), '\n') || !strings.Contains(err.Error(), "no terminal") || !strings.Contains(err.Error(), "no ssh-agent") {
		t.Errorf("no key: %v; want ErrAuth, one line, naming the missing agent and terminal", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("the refusal took %s; want it at once", el)
	}
	t.Logf("no key: %v", err)
	m.Close()

	sock := testnet.SSHAgent(t, d.ClientKey)
	m = newManager(t, Options{HomeDir: home, AgentSocket: sock})
	upload(t, dial(t, host(t, m, target), sink))

	// Keyboard-interactive is offered when the caller has a terminal: this
	// server allows only keys, so the callback is never asked, and the
	// refusal names no missing terminal.
	asked := false
	m = newManager(t, Options{HomeDir: home, KeyboardInteractive: func(name, instruction string, questions []string, echos []bool) ([]string, error) {
		asked = true
		return nil, errors.New("no")
	}})
	_, err = m.Dial(context.Background(), target, "tcp", sink)
	if !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "no terminal") || asked {
		t.Errorf("with a keyboard-interactive hook: %v (asked %v); want ErrAuth without 'no terminal'", err, asked)
	}
}

// TestTCPOnly: SSH carries TCP only.
func TestTCPOnly(t *testing.T) {
	m := newManager(t, Options{LocalUser: "x"})
	h := host(t, m, "ssh://127.0.0.1:1")
	if _, err := h.Dial(context.Background(), "udp", "127.0.0.1:53"); !errors.Is(err, ErrTCPOnly) {
		t.Errorf("Dial udp = %v; want ErrTCPOnly", err)
	}
	if _, err := h.Listen(context.Background(), "udp", "127.0.0.1:53"); !errors.Is(err, ErrTCPOnly) {
		t.Errorf("Listen udp = %v; want ErrTCPOnly", err)
	}
}

// TestIntegrationNoLeaks: once the Manager is closed, the goroutines of
// its links, keepalives, remote listeners and relays are gone.
func TestIntegrationNoLeaks(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	s := newSetup(t, map[string]*testnet.SSHD{"tunnel": d}, "")
	source, sink := dataServers(t)
	before := runtime.NumGoroutine()

	m := NewManager(s.options(t))
	h := host(t, m, "ssh://tunnel")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln := listenSink(t, ctx, h, "127.0.0.1:0")
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	upload(t, c)
	c.Close()
	fl, _ := net.Listen("tcp", "127.0.0.1:0")
	fctx, fcancel := context.WithCancel(context.Background())
	fdone := make(chan struct{})
	go func() { h.Forward(fctx, fl, source); close(fdone) }()
	c, err = net.Dial("tcp", fl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	download(t, c)
	// One left open over Close.
	open, err := h.Dial(ctx, "tcp", sink)
	if err != nil {
		t.Fatal(err)
	}
	fcancel()
	<-fdone
	m.Close()
	if _, err := open.Write([]byte("x")); err == nil {
		t.Error("a tunnelled connection still writes after Close")
	}
	if _, err := h.Dial(ctx, "tcp", sink); !errors.Is(err, ErrClosed) {
		t.Errorf("Dial after Close = %v; want ErrClosed", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIntegrationDeadlines: SSH channels have no deadlines; the tunnel's
// connections do. A read deadline fails a Read with a timeout and the
// connection goes on; a write deadline fails a blocked Write.
func TestIntegrationDeadlines(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	s := newSetup(t, map[string]*testnet.SSHD{"tunnel": d}, "")
	m := newManager(t, s.options(t))
	h := host(t, m, "ssh://tunnel")
	// Answers "hello" to each byte it gets.
	hello := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		b := make([]byte, 1)
		for {
			if _, err := c.Read(b); err != nil {
				return
			}
			c.Write([]byte("hello"))
		}
	})
	c := dial(t, h, hello.String())
	buf := make([]byte, 16)
	for i := range 2 {
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		start := time.Now()
		_, err := c.Read(buf)
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Read past the deadline = %v; want a timeout", err)
		}
		if el := time.Since(start); el < 150*time.Millisecond || el > 2*time.Second {
			t.Errorf("Read timed out after %s; want 200 ms", el)
		}
		c.SetReadDeadline(time.Time{})
		c.Write([]byte{byte(i)})
		if _, err := io.ReadFull(c, buf[:5]); err != nil || string(buf[:5]) != "hello" {
			t.Fatalf("Read after a timeout = %q, %v; want hello", buf[:5], err)
		}
	}
	// A deadline in the past fails at once.
	c.SetDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read with a past deadline = %v", err)
	}
	if _, err := c.Write(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write with a past deadline = %v", err)
	}

	// The far end does not read: the windows fill and Write blocks.
	stop := make(chan struct{})
	deaf := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) { <-stop })
	t.Cleanup(func() { close(stop) }) // before Serve's cleanup, which waits for the handler
	w := dial(t, h, deaf.String())
	w.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	start := time.Now()
	var err error
	for err == nil && time.Since(start) < 10*time.Second {
		_, err = w.Write(payload)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Write to a far end that does not read = %v; want a timeout", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Write timed out after %s; want about 300 ms", el)
	}
}

// TestIntegrationRefused: a server that allows no forwarding refuses the
// channel and the remote forward; the errors say so and the link stays.
func TestIntegrationRefused(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{Extra: []string{"AllowTcpForwarding no"}})
	s := newSetup(t, map[string]*testnet.SSHD{"tunnel": d}, "")
	m := newManager(t, s.options(t))
	h := host(t, m, "ssh://tunnel")
	_, sink := dataServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := h.Dial(ctx, "tcp", sink)
	var oe *ssh.OpenChannelError
	if !errors.As(err, &oe) || oe.Reason != ssh.Prohibited {
		t.Errorf("Dial = %v; want the server's administrative refusal", err)
	}
	if _, err := h.Listen(ctx, "tcp", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), "denied") {
		t.Errorf("Listen = %v; want the server's refusal", err)
	}
	if st := h.State(); st.State != StateConnected || st.Connects != 1 || st.Failed != 1 {
		t.Errorf("State = %+v; want still connected, one failed Dial", st)
	}
}

// TestIntegrationShortConnections: a short connection through the tunnel
// (open, 64 bytes there and back, the server closes) takes about a round
// trip per step, not the 40 ms a delayed ACK adds when sshd, which sends
// without TCP_NODELAY, holds its EOF back behind the data (ssh -L takes
// 44 ms for this; bench/ssh).
func TestIntegrationShortConnections(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	s := newSetup(t, map[string]*testnet.SSHD{"tunnel": d}, "")
	m := newManager(t, s.options(t))
	h := host(t, m, "ssh://tunnel")
	echo := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		b := make([]byte, 64)
		if _, err := io.ReadFull(c, b); err == nil {
			c.Write(b)
		}
	})
	var times []time.Duration
	msg := bytes.Repeat([]byte("x"), 64)
	for range 15 {
		start := time.Now()
		c := dial(t, h, echo.String())
		c.Write(msg)
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("round trip: %q, %v", got, err)
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	t.Logf("round trips: median %s, slowest %s", times[len(times)/2], times[len(times)-1])
	if med := times[len(times)/2]; med > 30*time.Millisecond {
		t.Errorf("median short connection %s; want well under the 40 ms of a delayed ACK", med)
	}
}

// listenSink asks h for a remote forward on addr (ssh -R) and serves
// every connection it brings with serveSink until the listener closes.
func listenSink(t *testing.T, ctx context.Context, h *Host, addr string) net.Listener {
	t.Helper()
	ln, err := h.Listen(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serveSink(c) }()
		}
	}()
	return ln
}

// TestIntegrationTransportChoice: sshwire by default; x/crypto/ssh where
// the config prefers a cipher sshwire does not speak, and, after a second
// dial, where the server offers none that it does.
func TestIntegrationTransportChoice(t *testing.T) {
	chacha := "chacha20-poly1305@openssh.com"
	for _, tc := range []struct {
		name        string
		server      []string
		client      string
		wantSSHWire bool
	}{
		{"default", nil, "", true},
		{"client prefers chacha20", nil, "Ciphers " + chacha + ",aes128-gcm@openssh.com", false},
		{"server offers only chacha20", []string{"Ciphers " + chacha}, "", false},
		{"client prefers aes256-gcm", nil, "Ciphers aes256-gcm@openssh.com," + chacha, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testnet.StartSSHD(t, testnet.SSHDOptions{Extra: tc.server})
			s := newSetup(t, map[string]*testnet.SSHD{"tunnel": d}, tc.client)
			m := newManager(t, s.options(t))
			h := host(t, m, "ssh://tunnel")
			source, sink := dataServers(t)
			upload(t, dial(t, h, sink))
			download(t, dial(t, h, source))
			h.mu.Lock()
			c := h.cur.client
			h.mu.Unlock()
			_, isWire := c.(*sshwire.Conn)
			if isWire != tc.wantSSHWire {
				t.Errorf("client %T; want sshwire %v", c, tc.wantSSHWire)
			}
		})
	}
}
