//go:build linux

package scan

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func heldProbe(addr string, port uint16) *synProbe {
	a := netip.MustParseAddr(addr)
	return &synProbe{key: synKey{a, port}}
}

func TestSynHeld(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var h synHeld
	a1, a2, b1 := heldProbe("10.0.0.1", 1), heldProbe("10.0.0.1", 2), heldProbe("10.0.0.2", 1)
	for i, p := range []*synProbe{a1, b1, a2} {
		if !h.hold(p, t0.Add(time.Duration(i)*time.Second)) {
			t.Fatal("hold refused")
		}
	}
	if got := h.expired(t0.Add(-time.Millisecond)); len(got) != 0 {
		t.Errorf("expired before any deadline: %v", got)
	}
	// An answer to a held probe takes it out.
	if h.take(b1.key) != b1 || h.take(b1.key) != nil {
		t.Error("take did not return the held probe exactly once")
	}
	// Its host answering releases the rest of a host's probes.
	if got := h.release(a1.key.addr); !slices.Equal(got, []*synProbe{a1, a2}) {
		t.Errorf("release = %v; want both of 10.0.0.1's probes", got)
	}
	if got := h.expired(t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("expired returned %d probes already taken or released", len(got))
	}
	// Expiry in order, and all() empties.
	c1, c2 := heldProbe("10.0.0.3", 1), heldProbe("10.0.0.3", 2)
	h.hold(c1, t0.Add(time.Second))
	h.hold(c2, t0.Add(2*time.Second))
	if got := h.expired(t0.Add(time.Second)); !slices.Equal(got, []*synProbe{c1}) {
		t.Errorf("expired = %v; want c1", got)
	}
	if got := h.all(); !slices.Equal(got, []*synProbe{c2}) {
		t.Errorf("all = %v; want c2", got)
	}
	if got := h.all(); len(got) != 0 {
		t.Errorf("all after all = %v", got)
	}
}

func TestSynLater(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var l synLater
	var ps []*synProbe
	for i, d := range []int{5, 1, 4, 2, 3} {
		p := heldProbe("10.0.0.1", uint16(i))
		ps = append(ps, p)
		l.add(t0.Add(time.Duration(d)*time.Second), p)
	}
	ps[2].done = true // answered while it waited
	if at, _ := l.next(); !at.Equal(t0.Add(time.Second)) {
		t.Errorf("next = %v; want t0+1s", at)
	}
	got := l.due(t0.Add(4*time.Second), nil)
	if want := []*synProbe{ps[1], ps[3], ps[4]}; !slices.Equal(got, want) {
		t.Errorf("due = %v; want the probes due at 1, 2, 3 s", got)
	}
	if got := l.due(t0.Add(10*time.Second), nil); !slices.Equal(got, []*synProbe{ps[0]}) {
		t.Errorf("due = %v; want the last one", got)
	}
	if _, ok := l.next(); ok {
		t.Error("next on an empty heap")
	}
}

func TestBackoff(t *testing.T) {
	for extra, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 50: time.Second} {
		if got := backoff(100*time.Millisecond, extra); got != want {
			t.Errorf("backoff(100ms, %d) = %v; want %v", extra, got, want)
		}
	}
}
