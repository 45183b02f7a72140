package scan

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// TestProbePool runs the portable engine skeleton with a fake probe: every
// probe comes back once, emit never runs concurrently with next, and the
// rate holds.
func TestProbePool(t *testing.T) {
	const n = 200
	i := 0
	next := func() (Probe, bool) {
		if i == n {
			return Probe{}, false
		}
		i++
		return Probe{Addr: netip.MustParseAddr("192.0.2.1"), Port: uint16(i)}, true
	}
	seen := map[uint16]int{}
	emit := func(r Result) { seen[r.Port]++ } // unsynchronised on purpose: -race checks the pool's locking
	start := time.Now()
	err := probePool(context.Background(), 8, 1000, next, emit, func() func(Probe, func()) Result {
		return func(p Probe, wait func()) Result {
			wait()
			return Result{Addr: p.Addr, Port: p.Port, State: Closed}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Errorf("%d distinct results; want %d", len(seen), n)
	}
	for p, c := range seen {
		if c != 1 {
			t.Errorf("port %d emitted %d times", p, c)
		}
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("%d probes at 1000/s took %s; want about 200ms", n, d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	i = 0
	if err := probePool(ctx, 4, 0, next, func(Result) {}, func() func(Probe, func()) Result {
		return func(p Probe, _ func()) Result { return Result{Port: p.Port} }
	}); err != context.Canceled {
		t.Errorf("cancelled pool returned %v; want context.Canceled", err)
	}
}
