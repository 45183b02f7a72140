package tarpit

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// recorder keeps the events a tarpit reports.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) add(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// wait waits up to 5 s for an event that ok accepts.
func (r *recorder) wait(t *testing.T, what string, ok func(Event) bool) Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		for _, e := range r.events {
			if ok(e) {
				r.mu.Unlock()
				return e
			}
		}
		evs := append([]Event(nil), r.events...)
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no %s event in 5 s; got %+v", what, evs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// start starts a tarpit on loopback and closes it when the test ends.
func start(t *testing.T, o Options) (*Tarpit, *recorder) {
	t.Helper()
	r := &recorder{}
	tp, err := Start(context.Background(), o, r.add)
	if err != nil {
		t.Fatalf("Start(%+v) error = %v", o, err)
	}
	t.Cleanup(func() { tp.Close() })
	return tp, r
}

func dial(t *testing.T, port uint16) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", netip.AddrPortFrom(loopback, port).String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitHeld waits up to 5 s for the tarpit to hold n connections.
func waitHeld(t *testing.T, tp *Tarpit, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); tp.Held() != n; {
		if time.Now().After(deadline) {
			t.Fatalf("Held() = %d after 5 s; want %d", tp.Held(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTarpitSendsEveryInterval reads lines from a held connection: one an
// interval, none before the first interval, each a fragment an SSH client
// skips.
func TestTarpitSendsEveryInterval(t *testing.T) {
	const interval = 50 * time.Millisecond
	tp, rec := start(t, Options{Ports: []uint16{0}, Addr: loopback, Interval: interval})
	if p := tp.Ports(); len(p) != 1 || p[0] == 0 {
		t.Fatalf("Ports() = %v; want one port the OS picked", p)
	}
	c := dial(t, tp.Ports()[0])
	opened := rec.wait(t, "opened", func(e Event) bool { return e.Opened })
	if opened.Port != tp.Ports()[0] || opened.Remote != c.LocalAddr().(*net.TCPAddr).AddrPort() {
		t.Errorf("opened event = %+v; want port %d, remote %s", opened, tp.Ports()[0], c.LocalAddr())
	}
	start := time.Now()
	c.SetReadDeadline(start.Add(5 * time.Second))
	br := bufio.NewReader(c)
	const lines = 5
	for i := range lines {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if i == 0 && time.Since(start) < interval/2 {
			t.Errorf("first line after %s; want about one interval (%s)", time.Since(start), interval)
		}
		if !strings.HasSuffix(line, "\r\n") || len(line) < 3 || len(line) > maxLineLen+2 || strings.HasPrefix(line, "SSH-") {
			t.Errorf("line %d = %q; want 1-%d printable characters and CRLF, not SSH-", i, line, maxLineLen)
		}
	}
	took := time.Since(start)
	t.Logf("%d lines in %s at an interval of %s", lines, took, interval)
	if took < (lines-1)*interval || took > 4*time.Second {
		t.Errorf("%d lines took %s; want about %s", lines, took, lines*interval)
	}
	if tp.Held() != 1 {
		t.Errorf("Held() = %d; want 1", tp.Held())
	}
	// The client hangs up: the next writes fail, and the tarpit lets go.
	c.Close()
	closed := rec.wait(t, "closed", func(e Event) bool { return !e.Opened && !e.Refused })
	if closed.Sent < lines*3 || closed.Held < lines*interval {
		t.Errorf("closed event = %+v; want at least %d bytes sent over %s", closed, lines*3, lines*interval)
	}
	waitHeld(t, tp, 0)
}

// TestTarpitBound holds MaxConns connections over two ports and closes
// the next at once.
func TestTarpitBound(t *testing.T) {
	tp, rec := start(t, Options{Ports: []uint16{0, 0}, Addr: loopback, MaxConns: 3, Interval: time.Hour})
	ports := tp.Ports()
	if len(ports) != 2 || ports[0] == ports[1] {
		t.Fatalf("Ports() = %v; want two ports", ports)
	}
	for i := range 3 {
		dial(t, ports[i%2])
	}
	waitHeld(t, tp, 3)
	for i := range 4 {
		c := dial(t, ports[i%2])
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
			t.Errorf("read from connection %d past the bound = %d, %v; want it closed at once", 4+i, n, err)
		}
	}
	rec.wait(t, "refused", func(e Event) bool { return e.Refused })
	if tp.Held() != 3 {
		t.Errorf("Held() = %d after refusing; want 3", tp.Held())
	}
	rec.mu.Lock()
	refused := 0
	for _, e := range rec.events {
		if e.Refused {
			refused++
		}
	}
	rec.mu.Unlock()
	if refused != 4 {
		t.Errorf("%d refused events; want 4", refused)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestTarpitCloseReleases closes a tarpit holding connections: the
// clients see them closed, the ports are free again, and no goroutine is
// left.
func TestTarpitCloseReleases(t *testing.T) {
	before := runtime.NumGoroutine()
	r := &recorder{}
	tp, err := Start(context.Background(), Options{Ports: []uint16{0, 0}, Addr: loopback, Interval: 20 * time.Millisecond}, r.add)
	if err != nil {
		t.Fatal(err)
	}
	ports := tp.Ports()
	var conns []net.Conn
	for i := range 10 {
		conns = append(conns, dial(t, ports[i%2]))
	}
	waitHeld(t, tp, 10)
	if err := tp.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := tp.Close(); err != nil {
		t.Fatalf("Close() again = %v", err)
	}
	if tp.Held() != 0 {
		t.Errorf("Held() after Close = %d; want 0", tp.Held())
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
			t.Errorf("connection %d after Close: %v; want EOF", i, err)
		}
		c.Close()
	}
	for _, p := range ports {
		l, err := net.Listen("tcp", netip.AddrPortFrom(loopback, p).String())
		if err != nil {
			t.Errorf("port %d after Close: %v; want it free", p, err)
			continue
		}
		l.Close()
	}
	checkGoroutines(t, before)
	r.mu.Lock()
	defer r.mu.Unlock()
	var opened, closed int
	for _, e := range r.events {
		if e.Opened {
			opened++
		} else {
			closed++
		}
	}
	if opened != 10 || closed != 10 {
		t.Errorf("%d opened and %d closed events; want 10 of each", opened, closed)
	}
}

// checkGoroutines waits up to 2 s for the goroutines to be back to n.
func checkGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close; want %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTarpitContextCancel stops a tarpit through its context.
func TestTarpitContextCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	tp, err := Start(ctx, Options{Ports: []uint16{0}, Addr: loopback, Interval: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, tp.Ports()[0])
	waitHeld(t, tp, 1)
	cancel()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
		t.Errorf("held connection after cancel: %v; want EOF", err)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(loopback, tp.Ports()[0]).String(), time.Second)
		if err != nil {
			break // refused: nothing listens
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("port still listening 5 s after cancel")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tp.Close()
	checkGoroutines(t, before)
}

// TestStartErrors: a busy port fails Start and leaves nothing listening.
func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := uint16(busy.Addr().(*net.TCPAddr).Port)
	free := func() uint16 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return uint16(l.Addr().(*net.TCPAddr).Port)
	}()
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no ports", Options{Addr: loopback}, "no ports"},
		{"negative bound", Options{Ports: []uint16{0}, Addr: loopback, MaxConns: -1}, "want 0 or more"},
		{"negative interval", Options{Ports: []uint16{0}, Addr: loopback, Interval: -time.Second}, "want 0 or more"},
		{"busy port", Options{Ports: []uint16{free, busyPort}, Addr: loopback}, "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, err := Start(context.Background(), tt.o, nil)
			if err == nil {
				tp.Close()
				t.Fatalf("Start(%+v) = nil error; want %q", tt.o, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start(%+v) error = %v; want %q", tt.o, err, tt.want)
			}
		})
	}
	// The port opened before the busy one was closed again.
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(int(free)))
	if err != nil {
		t.Errorf("port %d after a failed Start: %v; want it free", free, err)
	} else {
		l.Close()
	}
}

func TestLineFragment(t *testing.T) {
	lens := map[int]bool{}
	for range 10000 {
		b := line(nil)
		s := string(b)
		if !strings.HasSuffix(s, "\r\n") || len(b) < 3 || len(b) > maxLineLen+2 || strings.HasPrefix(s, "SSH-") {
			t.Fatalf("line() = %q; want 1-%d printable characters and CRLF, not SSH-", s, maxLineLen)
		}
		for _, c := range b[:len(b)-2] {
			if c < ' ' || c > '~' {
				t.Fatalf("line() = %q: %q is not printable", s, c)
			}
		}
		lens[len(b)-2] = true
	}
	if len(lens) != maxLineLen {
		t.Errorf("line() made %d lengths in 10,000 lines; want all %d", len(lens), maxLineLen)
	}
}

// TestTarpitDefaultBound fills the default bound, 1,024 connections, over
// loopback: the next are closed at once, and every held one is written to.
// It logs what a held connection costs the tarpit.
func TestTarpitDefaultBound(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 sockets")
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap0, g0 := ms.HeapInuse, runtime.NumGoroutine()
	tp, rec := start(t, Options{Ports: []uint16{0}, Addr: loopback, Interval: 200 * time.Millisecond})
	port := tp.Ports()[0]
	conns := make([]net.Conn, 0, DefaultMaxConns)
	for range DefaultMaxConns {
		conns = append(conns, dial(t, port))
	}
	waitHeld(t, tp, DefaultMaxConns)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("%d held connections: %.1f KB of heap and %.1f goroutines each (client ends included)",
		DefaultMaxConns, float64(ms.HeapInuse-heap0)/DefaultMaxConns/1024, float64(runtime.NumGoroutine()-g0)/DefaultMaxConns)
	for range 10 {
		c := dial(t, port)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
			t.Fatalf("read past the default bound: %v; want the connection closed at once", err)
		}
	}
	// Every held connection gets its first line within a few intervals.
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 64)
	for i, c := range conns {
		c.SetReadDeadline(deadline)
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("held connection %d: %v; want a line", i, err)
		}
	}
	if tp.Held() != DefaultMaxConns {
		t.Errorf("Held() = %d; want %d", tp.Held(), DefaultMaxConns)
	}
	rec.mu.Lock()
	refused := 0
	for _, e := range rec.events {
		if e.Refused {
			refused++
		}
	}
	rec.mu.Unlock()
	if refused != 10 {
		t.Errorf("%d refused events; want 10", refused)
	}
}
