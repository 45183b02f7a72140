package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// listenLater starts a listener on ap after delay, until the test ends.
func listenLater(t *testing.T, ap netip.AddrPort, delay time.Duration) {
	t.Helper()
	var (
		mu sync.Mutex
		l  net.Listener
	)
	timer := time.AfterFunc(delay, func() {
		ln, err := net.Listen("tcp", ap.String())
		if err != nil {
			t.Errorf("listening on %v after %v: %v", ap, delay, err)
			return
		}
		mu.Lock()
		l = ln
		mu.Unlock()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	t.Cleanup(func() {
		timer.Stop()
		mu.Lock()
		defer mu.Unlock()
		if l != nil {
			l.Close()
		}
	})
}

func TestWaitForLateListener(t *testing.T) {
	checkGoroutines(t)
	ap := closedPort(t, "127.0.0.1")
	listenLater(t, ap, 500*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var progress []Progress
	cfg := WaitConfig{Interval: 50 * time.Millisecond, Progress: func(p Progress) { progress = append(progress, p) }}
	start := time.Now()
	got, err := Wait(ctx, []Target{target(ap)}, cfg)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if elapsed < 450*time.Millisecond || elapsed > 8*time.Second {
		t.Errorf("Wait returned after %v; want soon after the listener starts at 500ms", elapsed)
	}
	r := got[0]
	if !r.Ready || r.Addr != ap || r.Attempts < 2 || r.Last.State != StateOpen {
		t.Errorf("Wait = %+v; want ready at %v after several attempts", r, ap)
	}
	if len(progress) != r.Attempts {
		t.Fatalf("Progress called %d times; want once per attempt (%d)", len(progress), r.Attempts)
	}
	if p := progress[0]; p.Attempt != 1 || p.Result.State != StateClosed || p.Result.Reason != ReasonRefused {
		t.Errorf("first progress = %+v; want attempt 1, closed, refused", p)
	}
	if p := progress[len(progress)-1]; p.Result.State != StateOpen || p.Elapsed < 450*time.Millisecond {
		t.Errorf("last progress = %+v; want open after about 500ms", p)
	}
}

func TestWaitTimeout(t *testing.T) {
	checkGoroutines(t)
	ready := listen(t, "127.0.0.1:0")
	closed := closedPort(t, "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	got, err := Wait(ctx, []Target{target(ready), target(closed)}, WaitConfig{})
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Wait with a 300ms deadline returned after %v", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait error = %v; want the deadline", err)
	}
	if len(got) != 2 || !got[0].Ready || got[1].Ready {
		t.Fatalf("Wait = %+v; want the first ready, the second not", got)
	}
	if r := got[1]; r.Last.State != StateClosed || r.Last.Reason != ReasonRefused || r.Attempts < 2 {
		t.Errorf("not-ready target = %+v; want several attempts, the last refused", r)
	}
}

func TestWaitCancel(t *testing.T) {
	checkGoroutines(t)
	closed := closedPort(t, "127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	// A long pause between attempts must not delay the return.
	got, err := Wait(ctx, []Target{target(closed)}, WaitConfig{Interval: 10 * time.Second})
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Wait returned %v after the cancel; want at once, not after the 10 s interval", elapsed-200*time.Millisecond)
	}
	if !errors.Is(err, context.Canceled) || got[0].Ready {
		t.Errorf("Wait = %+v, %v; want not ready and context.Canceled", got, err)
	}
	if got[0].Last.Reason != ReasonRefused {
		t.Errorf("last reason = %q; want the last real answer, %q", got[0].Last.Reason, ReasonRefused)
	}
}

func TestWaitAnyAddress(t *testing.T) {
	// The name resolves to 127.0.0.1 and ::1, and only ::1 listens: the
	// target is ready whichever address comes first.
	open6 := listen(t, "[::1]:0")
	res := stubResolver(t, map[string][]netip.Addr{
		dualName: {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := Wait(ctx, []Target{{Host: dualName, Port: open6.Port()}}, WaitConfig{Config: Config{Resolver: res}})
	if err != nil || !got[0].Ready || got[0].Addr != open6 || got[0].Attempts != 1 {
		t.Errorf("Wait(%s:%d) = %+v, %v; want ready at once at %v", dualName, open6.Port(), got, err, open6)
	}
}

func TestWaitUnknownService(t *testing.T) {
	tg, _ := ParseTarget("localhost:no-such-service-x")
	start := time.Now()
	if _, err := Wait(context.Background(), []Target{tg}, WaitConfig{}); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("Wait(unknown service) = %v after %v; want an error at once", err, time.Since(start))
	}
}

func TestWaitBackoff(t *testing.T) {
	closed := closedPort(t, "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 1*time.Second)
	defer cancel()
	var times []time.Duration
	cfg := WaitConfig{Interval: 100 * time.Millisecond, Progress: func(p Progress) { times = append(times, p.Elapsed) }}
	Wait(ctx, []Target{target(closed)}, cfg)
	// Attempts at about 0, 100, 300 and 700ms: each pause twice the last.
	if len(times) < 3 || len(times) > 5 {
		t.Fatalf("%d attempts in 1s from a 100ms interval (at %v); want 4", len(times), times)
	}
	for i := 2; i < len(times); i++ {
		prev, gap := times[i-1]-times[i-2], times[i]-times[i-1]
		if gap < prev*3/2 {
			t.Errorf("pause %d = %v after %v; want it doubled (attempts at %v)", i, gap, prev, times)
		}
	}
}

func TestWaitIntervals(t *testing.T) {
	tests := []struct {
		cfg          WaitConfig
		first, limit time.Duration
	}{
		{WaitConfig{}, DefaultInterval, DefaultMaxInterval},
		{WaitConfig{Interval: time.Second}, time.Second, DefaultMaxInterval},
		{WaitConfig{Interval: 5 * time.Second}, 5 * time.Second, 5 * time.Second},
		{WaitConfig{Interval: time.Millisecond, MaxInterval: 10 * time.Millisecond}, time.Millisecond, 10 * time.Millisecond},
	}
	for _, tt := range tests {
		if first, limit := tt.cfg.intervals(); first != tt.first || limit != tt.limit {
			t.Errorf("intervals(%v, %v) = %v, %v; want %v, %v", tt.cfg.Interval, tt.cfg.MaxInterval, first, limit, tt.first, tt.limit)
		}
	}
}
