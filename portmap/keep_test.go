package portmap

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeClient is a router in memory: its epoch, and whether it fails.
type fakeClient struct {
	mu     sync.Mutex
	epoch  uint32
	lease  time.Duration
	fail   bool
	maps   int
	unmaps int
}

func (f *fakeClient) Protocol() Protocol { return NATPMP }
func (f *fakeClient) ExternalAddress(context.Context) (netip.Addr, uint32, error) {
	return netip.MustParseAddr("203.0.113.1"), f.epoch, nil
}
func (f *fakeClient) Map(_ context.Context, r Request) (Mapping, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maps++
	if f.fail {
		return Mapping{}, errors.New("no answer")
	}
	f.epoch += 1
	return Mapping{Protocol: NATPMP, Proto: r.Proto, Internal: r.Internal, Lease: f.lease, Epoch: f.epoch,
		External: netip.AddrPortFrom(netip.MustParseAddr("203.0.113.1"), 18080)}, nil
}
func (f *fakeClient) Unmap(context.Context, Mapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unmaps++
	return nil
}

func TestKeep(t *testing.T) {
	f := &fakeClient{lease: 200 * time.Millisecond, epoch: 1000}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var events []KeepEvent
	done := make(chan error, 1)
	go func() {
		done <- Keep(ctx, f, Request{Proto: "tcp", Internal: netip.MustParseAddrPort("192.168.77.10:8080")}, KeepOptions{Retry: 50 * time.Millisecond},
			func(e KeepEvent) { mu.Lock(); events = append(events, e); mu.Unlock() })
	}()
	time.Sleep(250 * time.Millisecond) // two renewals
	f.mu.Lock()
	f.epoch = 1 // the router restarted
	f.mu.Unlock()
	time.Sleep(150 * time.Millisecond)
	f.mu.Lock()
	f.fail = true
	f.mu.Unlock()
	time.Sleep(150 * time.Millisecond)
	f.mu.Lock()
	f.fail = false
	f.mu.Unlock()
	time.Sleep(150 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Keep: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	count := map[string]int{}
	for _, e := range events {
		count[e.Type]++
	}
	if count["mapped"] != 1 || count["renewed"] < 2 || count["remapped"] < 1 || count["retry"] < 1 || count["unmapped"] != 1 || f.unmaps != 1 {
		t.Errorf("events %v (unmaps %d); want mapped once, renewals, a remap after the epoch went back, a retry, unmapped once", count, f.unmaps)
	}
}

// lookingClient is a fakeClient that can say whether the router still
// has the mapping.
type lookingClient struct {
	*fakeClient
	gone bool
}

func (l *lookingClient) Lookup(context.Context, Mapping) (Mapping, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	gone := l.gone
	l.gone = false
	return Mapping{}, !gone, nil
}

func TestKeepVanished(t *testing.T) {
	l := &lookingClient{fakeClient: &fakeClient{lease: 100 * time.Millisecond, epoch: 0}, gone: true}
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Millisecond)
	defer cancel()
	var types []string
	Keep(ctx, l, Request{Proto: "tcp", Internal: netip.MustParseAddrPort("192.168.77.10:8080")}, KeepOptions{},
		func(e KeepEvent) { types = append(types, e.Type) })
	if len(types) < 2 || types[1] != "remapped" {
		t.Errorf("events %v; want mapped, then remapped (the router lost it)", types)
	}
}

func TestLostEpoch(t *testing.T) {
	for _, tc := range []struct {
		before, now uint32
		elapsed     time.Duration
		lost        bool
	}{
		{1000, 1060, time.Minute, false},
		{1000, 1050, time.Minute, false}, // 7/8 of 60 s is 52: less 2, 50 is fine
		{1000, 10, time.Minute, true},
		{0, 0, time.Hour, true}, // a router restarted within a second of the mapping
		{0, 3, 5 * time.Second, false},
		{1000, 1000, time.Hour, true},
	} {
		if got := lostEpoch(tc.before, tc.now, tc.elapsed); got != tc.lost {
			t.Errorf("lostEpoch(%d, %d, %s) = %v; want %v", tc.before, tc.now, tc.elapsed, got, tc.lost)
		}
	}
}

// TestKeepRenewsOnAnnouncement: a signal on Renew renews at once, long
// before half the lease.
func TestKeepRenewsOnAnnouncement(t *testing.T) {
	f := &fakeClient{lease: time.Hour, epoch: 1000}
	ctx, cancel := context.WithCancel(context.Background())
	renew := make(chan struct{}, 1)
	events := make(chan KeepEvent, 8)
	done := make(chan error, 1)
	go func() {
		done <- Keep(ctx, f, Request{Proto: "tcp", Internal: netip.MustParseAddrPort("192.168.77.10:8080")}, KeepOptions{Renew: renew},
			func(e KeepEvent) { events <- e })
	}()
	if e := <-events; e.Type != "mapped" {
		t.Fatalf("first event %+v; want mapped", e)
	}
	renew <- struct{}{}
	select {
	case e := <-events:
		if e.Type != "renewed" {
			t.Errorf("after Renew: %+v; want renewed", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no renewal within 5 s of Renew (the lease is an hour)")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Keep: %v", err)
	}
}
