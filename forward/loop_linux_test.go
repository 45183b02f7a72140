package forward_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/forward"
)

// fds counts this process's open file descriptors.
func fds(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// settledPipes counts this process's pipes once the pipes that earlier
// tests' splices left in Go's pool are gone (the pool drops them at
// garbage collection, and a cleanup closes them soon after).
func settledPipes(t *testing.T) int {
	runtime.GC()
	runtime.GC()
	last, same := pipes(t), 0
	for i := 0; i < 100 && same < 3; i++ {
		time.Sleep(10 * time.Millisecond)
		n := pipes(t)
		if n == last {
			same++
		} else {
			last, same = n, 0
		}
	}
	return last
}

// waitIdle waits until the rule has no connection open.
func waitIdle(t *testing.T, f *forward.Forwarder) forward.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := f.Stats()[0]
		if s.Active == 0 {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d connections open: %+v", s.Active, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSpliceSwitch: a long transfer moves to splice(2) after its first
// bytes (a pipe appears, the rule counts a spliced connection), with all
// bytes intact; short exchanges, small requests and a 32 KiB answer, stay
// on the copy through the loop's buffer: no pipe, none counted.
func TestSpliceSwitch(t *testing.T) {
	backend := serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		var n [1]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		switch n[0] {
		case 's': // short: echo one small message
			buf := make([]byte, 64)
			k, _ := c.Read(buf)
			c.Write(buf[:k])
		case 'm': // a 32 KiB answer
			c.Write(bytes.Repeat([]byte("m"), 32<<10))
		case 'l': // long: all the bytes back, through a buffer (the
			// test counts pipes: no splice of its own)
			io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
		}
	})
	f, addrs := start(t, "127.0.0.1:0:"+backend.String())
	before := settledPipes(t)
	for i := range 20 {
		c := dial(t, addrs[0])
		c.SetDeadline(time.Now().Add(5 * time.Second))
		msg := []byte("s hello")
		c.Write(msg)
		got := make([]byte, len(msg)-1)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != " hello" {
			t.Fatalf("short exchange %d: %q, %v", i, got, err)
		}
		c.Close()
	}
	c := dial(t, addrs[0])
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("m"))
	if n, err := io.Copy(io.Discard, c); n != 32<<10 {
		t.Fatalf("32 KiB answer: %d bytes, %v", n, err)
	}
	c.Close()
	if s := waitIdle(t, f); s.Spliced != 0 || pipes(t) > before {
		t.Fatalf("after short exchanges: %d spliced, %d pipes (%d before); want none", s.Spliced, pipes(t), before)
	}

	// The long one: 16 MiB there and back, checked.
	c = dial(t, addrs[0])
	c.SetDeadline(time.Now().Add(60 * time.Second))
	data := make([]byte, 16<<20)
	rand.Read(data)
	c.Write([]byte("l"))
	var during atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < len(data); i += 1 << 20 {
			c.Write(data[i : i+1<<20])
			if i == 8<<20 {
				during.Store(int64(pipes(t)))
			}
		}
		c.CloseWrite()
	})
	back, err := io.ReadAll(c)
	wg.Wait()
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("16 MiB through and back: %d bytes, %v; equal: %v", len(back), err, bytes.Equal(back, data))
	}
	c.Close()
	s := waitIdle(t, f)
	if s.Spliced != 1 {
		t.Errorf("after a 16 MiB transfer: %d connections spliced; want 1", s.Spliced)
	}
	if d := during.Load(); d <= int64(before) {
		t.Errorf("%d pipes during the transfer, %d before: it did not splice", d, before)
	}
	if want := uint64(1 + len(data)); s.BytesIn < want || s.BytesOut < uint64(len(data)) {
		t.Errorf("bytes in %d, out %d; want at least %d and %d", s.BytesIn, s.BytesOut, want, len(data))
	}
}

// TestEndWithLastBytes: when a backend's last bytes and its end of file
// reach the loop together, the client gets them together too, in one
// segment (MSG_MORE, then the shutdown), not in two: the client's socket
// counts two segments in, the handshake's and that one. (At least half of
// 10 connections must: the loop could, rarely, look at the backend's
// socket between the kernel queueing the bytes and taking the FIN.)
func TestEndWithLastBytes(t *testing.T) {
	reply := []byte("the whole reply")
	backend := serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		// The backend sends its reply and its FIN in one segment, so they
		// reach the loop together whatever its timing.
		rc, _ := c.SyscallConn()
		rc.Write(func(fd uintptr) bool {
			unix.Sendto(int(fd), reply, unix.MSG_MORE, nil)
			return true
		})
		c.CloseWrite()
		io.Copy(io.Discard, c)
	})
	_, addrs := start(t, "127.0.0.1:0:"+backend.String())
	var segs []uint32
	together := 0
	for i := range 10 {
		c := dial(t, addrs[0])
		c.SetDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, reply) {
			t.Fatalf("connection %d: %q, %v; want %q and the end", i, got, err, reply)
		}
		n := segsIn(c)
		segs = append(segs, n)
		if n == 2 {
			together++
		}
		c.Close()
	}
	if together < 5 {
		t.Errorf("segments the clients' sockets took in: %v; want 2 (the SYN-ACK, then the reply with the FIN) for at least 5 of 10", segs)
	}
}

// segsIn is the number of TCP segments c's socket has taken in
// (tcpi_segs_in), 0 if TCP_INFO cannot be read.
func segsIn(c *net.TCPConn) uint32 {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var info *unix.TCPInfo
	rc.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if err != nil {
		return 0
	}
	return info.Segs_in
}

// TestEarlyBytes: a client's first bytes that are there when the loop
// accepts ride to the backend on the handshake's last ACK: the backend's
// socket then holds them after two segments in (the SYN, the ACK with the
// bytes), not three. Whether a given client's bytes came before the
// accept depends on timing, so one connection in 50 must show it; every
// one must echo intact, and a backend that then writes small pieces with
// Nagle on must not wait for a delayed ACK (the kernel leaves the mode
// that held the handshake's ACK back as it takes the SYN-ACK).
func TestEarlyBytes(t *testing.T) {
	var merged, separate atomic.Int64
	backend := serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		c.SetNoDelay(false)
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if segsIn(c) == 2 {
			merged.Add(1)
		} else {
			separate.Add(1)
		}
		for i := range n { // byte by byte: each write after the first waits on Nagle for an ACK
			c.Write(buf[i : i+1])
		}
	})
	_, addrs := start(t, "127.0.0.1:0:"+backend.String())
	msg := []byte("first bytes of a client that speaks first")
	for i := range 50 {
		c := dial(t, addrs[0])
		c.SetDeadline(time.Now().Add(5 * time.Second))
		t0 := time.Now()
		c.Write(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("connection %d: %q, %v; want %q", i, got, err, msg)
		}
		if d := time.Since(t0); d > 30*time.Millisecond {
			t.Errorf("connection %d: the reply took %v: a delayed ACK held the backend's writes", i, d)
		}
		c.Close()
	}
	t.Logf("the first bytes with the handshake's ACK: %d connections; after it: %d", merged.Load(), separate.Load())
	if merged.Load() == 0 {
		t.Errorf("no connection's first bytes came with the handshake's ACK (%d came after it)", separate.Load())
	}
}

// TestLeaks runs 10,000 connections through the event loops, some of
// them bulk (spliced), then shuts down: goroutines, file descriptors and
// pipes are back where they were. While it runs, the loops hold no more
// than their listener, their epoll and eventfd descriptors and their
// pools of empty pipes.
func TestLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 connections")
	}
	backend := shortOrBulkBackend(t)
	// Let the test's own machinery settle before counting.
	p0 := settledPipes(t)
	g0, fd0 := runtime.NumGoroutine(), fds(t)

	f := forward.New(forward.Config{DataPath: forward.DataPathLoops})
	r, _ := forward.ParseRule("127.0.0.1:0:" + backend.String())
	if err := f.Apply([]forward.Rule{r}); err != nil {
		t.Fatal(err)
	}
	addr, _ := f.Addr(r.Key())
	const total = 10000
	failed := shortAndBulk(t, addr.String(), total, 8, 1000)
	s := waitIdle(t, f)
	if failed != 0 || s.Conns != total || s.Spliced != total/1000 {
		t.Errorf("%d failed; stats %+v; want %d connections, %d spliced", failed, s, total, total/1000)
	}
	loops := runtime.GOMAXPROCS(0)
	if got, limit := fds(t)-fd0, 1+2*loops+2*16*loops; got > limit {
		t.Errorf("%d more descriptors after %d connections, with the rule running; want at most %d", got, total, limit)
	}
	if err := f.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, fd, p := runtime.NumGoroutine(), fds(t), pipes(t)
		if g <= g0 && fd <= fd0 && p <= p0 {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("after Shutdown: %d goroutines (%d before), %d descriptors (%d), %d pipes (%d)\n%s",
				g, g0, fd, fd0, p, p0, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTimeouts: a backend that never completes the handshake (its accept
// queue is full, so the kernel drops the SYN) is given up after the
// connect timeout, the client reset and the error counted; a connection
// idle for the idle timeout is closed, one that keeps moving is not.
func TestTimeouts(t *testing.T) {
	full, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(full)
	if err := unix.Bind(full, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(full, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(full)
	fullAddr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
	for range 2 { // fill the queue: these are never accepted
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		if c, err := d.Dial("tcp", fullAddr.String()); err == nil {
			defer c.Close()
		}
	}
	r, _ := forward.ParseRule("127.0.0.1:0:" + fullAddr.String())
	r.ConnectTimeout = 300 * time.Millisecond
	f := forward.New(forward.Config{DataPath: forward.DataPathLoops})
	if err := f.Apply([]forward.Rule{r}); err != nil {
		t.Fatal(err)
	}
	defer f.Shutdown(context.Background())
	addr, _ := f.Addr(r.Key())
	c := dial(t, addr)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	begin := time.Now()
	_, err = c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() || err == nil {
		t.Fatalf("a backend that does not answer: Read = %v; want the connection closed after the connect timeout", err)
	}
	if d := time.Since(begin); d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("closed after %v; the connect timeout is 300 ms", d)
	}
	if s := f.Stats()[0]; s.Errors != 1 {
		t.Errorf("errors %d; want 1", s.Errors)
	}

	backend := serve(t, "127.0.0.1:0", echo)
	r, _ = forward.ParseRule("127.0.0.1:0:" + backend.String())
	r.IdleTimeout = 300 * time.Millisecond
	if err := f.Apply([]forward.Rule{r}); err != nil {
		t.Fatal(err)
	}
	addr, _ = f.Addr(r.Key())
	idle, busy := dial(t, addr), dial(t, addr)
	buf := make([]byte, 4)
	for i := range 10 { // 1 s, a round trip every 100 ms
		busy.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := busy.Write([]byte("ping")); err != nil {
			t.Fatalf("busy connection, round trip %d: %v", i, err)
		}
		if _, err := io.ReadFull(busy, buf); err != nil {
			t.Fatalf("busy connection, round trip %d: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := idle.Read(buf); err == nil {
		t.Error("the idle connection read bytes")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the idle connection is still open 1 s after its idle timeout of 300 ms")
	}
}

// TestGoroutinePath: the path for other OSes and for connections that are
// not plain sockets still relays, half-closes and counts on Linux.
func TestGoroutinePath(t *testing.T) {
	backend := serve(t, "127.0.0.1:0", echo)
	r, _ := forward.ParseRule("127.0.0.1:0:" + backend.String())
	f := forward.New(forward.Config{DataPath: forward.DataPathGoroutines})
	if err := f.Apply([]forward.Rule{r}); err != nil {
		t.Fatal(err)
	}
	addr, _ := f.Addr(r.Key())
	for i := range 20 {
		if err := roundTrip(addr, "through the goroutines"); err != nil {
			t.Fatalf("round trip %d: %v", i, err)
		}
	}
	if err := f.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := f.Stats()[0]; s.Conns != 20 || s.BytesIn != 20*22 || s.BytesOut != 20*22 || s.Spliced != 0 {
		t.Errorf("stats %+v; want 20 connections, 440 bytes each way", s)
	}

	// UDP on the goroutine path: a datagram and its two replies.
	ub := udpBackend(t, 3)
	r, _ = forward.ParseRule("udp/127.0.0.1:0:" + ub.String())
	f = forward.New(forward.Config{DataPath: forward.DataPathGoroutines})
	if err := f.Apply([]forward.Rule{r}); err != nil {
		t.Fatal(err)
	}
	defer f.Shutdown(context.Background())
	addr, _ = f.Addr(r.Key())
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("datagram"))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	for _, want := range []string{"datagram", "reply 1 of datagram", "reply 2 of datagram"} {
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("UDP: %q, %v; want %q", buf[:n], err, want)
		}
	}
}

// shortOrBulkBackend answers a 64-byte request with itself, or with 1 MiB
// when it starts with 'b'.
func shortOrBulkBackend(t *testing.T) netip.AddrPort {
	return serve(t, "127.0.0.1:0", func(c *net.TCPConn) {
		buf := make([]byte, 64)
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if buf[0] == 'b' { // bulk: 1 MiB back
			c.Write(bytes.Repeat(buf, 1<<14))
			return
		}
		c.Write(buf)
	})
}

// shortAndBulk makes total connections to a shortOrBulkBackend through
// addr from workers clients at once, every bulkEvery-th one asking for a
// bulk answer, and reads each answer to the end. It returns how many
// failed, logging each.
func shortAndBulk(t *testing.T, addr string, total, workers, bulkEvery int) int64 {
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			msg := make([]byte, 64)
			for i := next.Add(1); i <= int64(total); i = next.Add(1) {
				copy(msg, "s")
				want := int64(64)
				if i%int64(bulkEvery) == 0 {
					copy(msg, "b")
					want = 1 << 20
				}
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					failed.Add(1)
					t.Log(err)
					continue
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				c.Write(msg)
				n, err := io.Copy(io.Discard, c)
				c.Close()
				if n != want {
					failed.Add(1)
					t.Logf("connection %d: %d bytes back, %v; want %d", i, n, err, want)
				}
			}
		})
	}
	wg.Wait()
	return failed.Load()
}

// TestNoAllocs: once warmed up, the event loops relay connections, short
// exchanges and bulk answers alike, without allocating: garbage would
// grow the forwarder's heap and bring collections, and a collection
// reads the whole binary's data (the forwarder's peak RSS is one of issue
// 16's goals). It counts the allocations made on a loop's goroutine in
// the memory profile, sampling every one.
func TestNoAllocs(t *testing.T) {
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	t.Cleanup(func() { runtime.MemProfileRate = rate })
	backend := shortOrBulkBackend(t)
	_, addrs := start(t, "127.0.0.1:0:"+backend.String())
	relay := func(total int) {
		if failed := shortAndBulk(t, addrs[0].String(), total, 4, 50); failed != 0 {
			t.Errorf("%d of %d connections failed", failed, total)
		}
	}
	relay(400)
	before := loopAllocs()
	const total = 2000
	relay(total)
	if n := loopAllocs() - before; n > total/100 {
		t.Errorf("the loops allocated %d times over %d connections; want none per connection", n, total)
	}
}

// loopAllocs counts the allocations made so far by the event loops (in
// a stack with a method of the loop in it).
func loopAllocs() int64 {
	runtime.GC() // the profile is as of the last collection's end
	runtime.GC()
	var recs []runtime.MemProfileRecord
	for n := 256; ; n *= 2 {
		recs = make([]runtime.MemProfileRecord, n)
		if k, ok := runtime.MemProfile(recs, true); ok {
			recs = recs[:k]
			break
		}
	}
	var total int64
	for _, r := range recs {
		frames := runtime.CallersFrames(r.Stack())
		for {
			fr, more := frames.Next()
			if strings.Contains(fr.Function, "forward.(*loop).") {
				total += r.AllocObjects
				break
			}
			if !more {
				break
			}
		}
	}
	return total
}
