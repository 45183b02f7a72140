package forward_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portctl/portctl/forward"
	"github.com/portctl/portctl/internal/testnet"
)

// start runs rules (listen ports 0) and returns the forwarder and each
// rule's listen address, stopping it when the test ends.
func start(t *testing.T, rules ...string) (*forward.Forwarder, []netip.AddrPort) {
	t.Helper()
	f := forward.New(forward.Config{OnError: func(rule string, err error) { t.Logf("%s: %v", rule, err) }})
	var rs []forward.Rule
	for _, s := range rules {
		r, err := forward.ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	if err := f.Apply(rs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	var addrs []netip.AddrPort
	for _, r := range rs {
		a, ok := f.Addr(r.Key())
		if !ok {
			t.Fatalf("rule %s not running", r.Key())
		}
		addrs = append(addrs, a)
	}
	return f, addrs
}

// serve runs handle for each connection to a fresh loopback listener.
func serve(t *testing.T, addr string, handle func(*net.TCPConn)) netip.AddrPort {
	t.Helper()
	return testnet.Serve(t, addr, func(c net.Conn) { handle(c.(*net.TCPConn)) })
}

func dial(t *testing.T, a netip.AddrPort) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", a.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// TestIntegrity sends 32 MiB each way through the forwarder and checks
// both sha256 sums, and the byte counters.
func TestIntegrity(t *testing.T) {
	const size = 32 << 20
	down := make([]byte, size)
	rand.Read(down)
	upSum := make(chan [32]byte, 1)
	backend := serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		var wg sync.WaitGroup
		wg.Go(func() {
			h := sha256.New()
			io.Copy(h, c)
			var s [32]byte
			copy(s[:], h.Sum(nil))
			upSum <- s
		})
		c.Write(down)
		c.CloseWrite()
		wg.Wait()
	})
	f, addrs := start(t, "127.0.0.1:0:"+backend.String())
	c := dial(t, addrs[0])
	up := make([]byte, size)
	rand.Read(up)
	var wg sync.WaitGroup
	wg.Go(func() {
		c.Write(up)
		c.CloseWrite()
	})
	h := sha256.New()
	if n, err := io.Copy(h, c); err != nil || n != size {
		t.Fatalf("read %d bytes, %v; want %d", n, err, size)
	}
	wg.Wait()
	if got, want := h.Sum(nil), sha256.Sum256(down); !bytes.Equal(got, want[:]) {
		t.Error("backend to client: sha256 differs")
	}
	if got, want := <-upSum, sha256.Sum256(up); got != want {
		t.Error("client to backend: sha256 differs")
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		s := f.Stats()[0]
		if s.BytesIn == size && s.BytesOut == size && s.Active == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v; want %d bytes each way and none active", s, size)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSplice checks that the data path is splice(2): during a transfer
// the process holds the pipes Go's splice path uses, which a copy through
// user space (anything wrapping the connections) does not.
// Go keeps those pipes for reuse, so the check runs in a fresh process
// of the test binary, where no earlier test made any.
func TestSplice(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc (Linux)")
	}
	if os.Getenv("FORWARD_SPLICE_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSplice$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "FORWARD_SPLICE_CHILD=1")
		if out, err := cmd.CombinedOutput(); err != nil || !bytes.Contains(out, []byte("--- PASS: TestSplice")) {
			t.Fatalf("in a fresh process: %v\n%s", err, out)
		}
		return
	}
	backend := serve(t, "127.0.0.1:0", func(c *net.TCPConn) { io.Copy(io.Discard, c) })
	_, addrs := start(t, "127.0.0.1:0:"+backend.String())
	before := pipes(t)
	c := dial(t, addrs[0])
	buf := make([]byte, 1<<20)
	for range 64 {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if got := pipes(t); got <= before {
		t.Errorf("%d pipes during a transfer, %d before: the relay does not splice", got, before)
	}
}

// pipes counts this process's open pipes.
func pipes(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "pipe:") {
			n++
		}
	}
	return n
}

// TestHalfClose: the client shuts down writing; the backend reads to the
// end, answers 12 s later and closes; the client gets the whole answer.
func TestHalfClose(t *testing.T) {
	t.Parallel()
	backend := serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		req, _ := io.ReadAll(c)
		time.Sleep(12 * time.Second)
		c.Write([]byte("answer to " + string(req)))
	})
	_, addrs := start(t, "127.0.0.1:0:"+backend.String())
	c := dial(t, addrs[0])
	c.Write([]byte("question"))
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "answer to question" {
		t.Fatalf("read %q, %v; want the answer", got, err)
	}
	if d := time.Since(start); d < 11*time.Second {
		t.Errorf("answer after %v; the backend waits 12 s", d)
	}
}

// TestBackendFailures: nothing listening, a backend that resets at once,
// one that dies mid-stream: the client sees the close, nothing hangs.
func TestBackendFailures(t *testing.T) {
	closed := testnet.ClosedPort(t, "127.0.0.1")
	resets := serve(t, "127.0.0.1:0", func(c *net.TCPConn) { c.SetLinger(0) })
	dies := serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		c.Write(bytes.Repeat([]byte("x"), 100000))
		c.SetLinger(0)
	})
	for _, tc := range []struct {
		name    string
		backend netip.AddrPort
	}{{"refused", closed}, {"reset", resets}, {"dies mid-stream", dies}} {
		t.Run(tc.name, func(t *testing.T) {
			_, addrs := start(t, "127.0.0.1:0:"+tc.backend.String())
			c, err := net.DialTimeout("tcp", addrs[0].String(), 5*time.Second)
			if err != nil {
				// The forwarder's reset came before connect returned:
				// the client saw the close too.
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Fatal(err)
				}
				return
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = io.Copy(io.Discard, c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the client was left hanging")
			}
		})
	}
}

// echo is a backend that sends back what it reads.
func echo(c *net.TCPConn) { io.Copy(c, c) }

// roundTrip sends a message through a and reads it back.
func roundTrip(a netip.AddrPort, msg string) error {
	c, err := net.DialTimeout("tcp", a.String(), 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(got) != msg {
		return fmt.Errorf("got %q back; want %q", got, msg)
	}
	return nil
}

// TestReloadUnderLoad applies new rule sets while 8 clients connect
// without pause: no connection may fail.
func TestReloadUnderLoad(t *testing.T) {
	b1 := serve(t, "127.0.0.1:0", echo)
	b2 := serve(t, "127.0.0.1:0", echo)
	port := testnet.ClosedPort(t, "127.0.0.1").Port()
	rule := func(backends string) forward.Rule {
		r, err := forward.ParseRule(fmt.Sprintf("127.0.0.1:%d:%s", port, backends))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	extra, _ := forward.ParseRule("127.0.0.1:0:" + b2.String())
	f := forward.New(forward.Config{})
	if err := f.Apply([]forward.Rule{rule(b1.String())}); err != nil {
		t.Fatal(err)
	}
	defer f.Shutdown(context.Background())
	addr, _ := f.Addr(rule("x:1").Key())
	var ok, failed atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil && n < 20000; n++ {
				if err := roundTrip(addr, fmt.Sprintf("client %d message %d", i, n)); err != nil {
					failed.Add(1)
					t.Log(err)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	sets := [][]forward.Rule{
		{rule(b1.String()), extra},
		{rule(b2.String()), extra},
		{rule(b1.String() + "," + b2.String())},
		{rule(b2.String())},
	}
	for i := 0; ctx.Err() == nil; i++ {
		if err := f.Apply(sets[i%len(sets)]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("%d round trips through reloads, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 || ok.Load() < 100 {
		t.Errorf("%d failed, %d succeeded; want none failed", failed.Load(), ok.Load())
	}
}

// TestLimits: the connection limit and the allow and deny lists refuse
// at once, and count.
func TestLimits(t *testing.T) {
	backend := serve(t, "127.0.0.1:0", echo)
	r, _ := forward.ParseRule("127.0.0.1:0:" + backend.String())
	r.MaxConns = 1
	f := forward.New(forward.Config{})
	if err := f.Apply([]forward.Rule{r}); err != nil {
		t.Fatal(err)
	}
	defer f.Shutdown(context.Background())
	addr, _ := f.Addr(r.Key())
	first := dial(t, addr)
	first.Write([]byte("hold"))
	buf := make([]byte, 4)
	io.ReadFull(first, buf) // the first connection is up
	if err := roundTrip(addr, "second"); err == nil {
		t.Error("a second connection went through a limit of 1")
	}
	first.Close()
	// The forwarder sees the close at once on an idle machine; allow a
	// busy one up to 10 s.
	err := roundTrip(addr, "third")
	for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); err = roundTrip(addr, "third") {
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("after the first closed: %v", err)
	}

	r.MaxConns = 0
	r.Deny, _ = forward.ParsePrefixes([]string{"127.0.0.1"})
	if err := f.Apply([]forward.Rule{r}); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(addr, "denied"); err == nil {
		t.Error("a denied client went through")
	}
	// From 127.0.0.2, which the deny list does not name.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ok"))
	c.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != "ok" {
		t.Errorf("from 127.0.0.2: %q; want ok", got)
	}
	r.Deny = nil
	r.Allow, _ = forward.ParsePrefixes([]string{"127.0.0.2/32"})
	f.Apply([]forward.Rule{r})
	if err := roundTrip(addr, "not allowed"); err == nil {
		t.Error("a client outside the allow list went through")
	}
	if s := f.Stats()[0]; s.Refused < 3 {
		t.Errorf("refused %d; want at least 3", s.Refused)
	}
}

// TestIPv6 forwards [::1] to [::1].
func TestIPv6(t *testing.T) {
	backend := serve(t, "[::1]:0", echo)
	_, addrs := start(t, "[::1]:0:"+backend.String())
	if err := roundTrip(addrs[0], "over IPv6"); err != nil {
		t.Fatal(err)
	}
}

// TestProxyProtocol checks the v1 and v2 headers the backend receives.
func TestProxyProtocol(t *testing.T) {
	got := make(chan []byte, 1)
	backend := serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		b, _ := io.ReadAll(c)
		got <- b
	})
	for _, v := range []int{1, 2} {
		r, _ := forward.ParseRule("127.0.0.1:0:" + backend.String())
		r.ProxyProtocol = v
		f := forward.New(forward.Config{})
		if err := f.Apply([]forward.Rule{r}); err != nil {
			t.Fatal(err)
		}
		addr, _ := f.Addr(r.Key())
		c := dial(t, addr)
		c.Write([]byte("data"))
		c.CloseWrite()
		b := <-got
		client := c.LocalAddr().(*net.TCPAddr).AddrPort()
		switch v {
		case 1:
			want := fmt.Sprintf("PROXY TCP4 127.0.0.1 127.0.0.1 %d %d\r\ndata", client.Port(), addr.Port())
			if string(b) != want {
				t.Errorf("v1: %q; want %q", b, want)
			}
		case 2:
			if len(b) != 16+12+4 || !bytes.HasPrefix(b, []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c")) || string(b[28:]) != "data" ||
				int(b[24])<<8|int(b[25]) != int(client.Port()) {
				t.Errorf("v2: % x", b)
			}
		}
		f.Shutdown(context.Background())
	}
}

// TestShutdownCutsRemovedRule: a rule that Apply removed keeps its open
// connection, and Shutdown past its deadline cuts that one too.
func TestShutdownCutsRemovedRule(t *testing.T) {
	backend := serve(t, "127.0.0.1:0", echo)
	f, addrs := start(t, "127.0.0.1:0:"+backend.String())
	c := dial(t, addrs[0])
	c.Write([]byte("hold"))
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Shutdown(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v; want %v", err, context.DeadlineExceeded)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown past its deadline left the removed rule's connection open")
	}
}

// TestStatsAfterShutdown checks that the counters read after Shutdown
// hold the bytes of a connection that ended during the drain (byte counts
// land when a connection ends).
func TestStatsAfterShutdown(t *testing.T) {
	backend := serve(t, "127.0.0.1:0", echo)
	f, addrs := start(t, "127.0.0.1:0:"+backend.String())
	c := dial(t, addrs[0])
	msg := []byte("counted once the connection ends")
	c.Write(msg)
	if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Shutdown(context.Background()) }()
	time.Sleep(50 * time.Millisecond) // draining now: the connection is still open
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	st := f.Stats()
	if len(st) != 1 || st[0].BytesIn != uint64(len(msg)) || st[0].BytesOut != uint64(len(msg)) || st[0].Active != 0 {
		t.Errorf("Stats after Shutdown = %+v; want the rule with %d bytes each way and nothing active", st, len(msg))
	}
}
