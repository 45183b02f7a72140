package portmap

import (
	"context"
	"errors"
	"time"
)

// KeepEvent tells what Keep did.
type KeepEvent struct {
	Time time.Time `json:"time"`
	// Type is "mapped", "renewed", "remapped" (the router lost the
	// mapping: it restarted, or the mapping vanished), "retry" (a renewal
	// failed; Keep tries again), or "unmapped".
	Type    string  `json:"type"`
	Mapping Mapping `json:"mapping"`
	Reason  string  `json:"reason,omitempty"`
}

// KeepOptions tune Keep.
type KeepOptions struct {
	// Check is how often a permanent mapping (lease 0) is checked and
	// made again if it vanished (default 5 minutes).
	Check time.Duration
	// Retry is the pause after a failed renewal (default 10 s, at most
	// a quarter of the lease).
	Retry time.Duration
	// Now is the clock (time.Now when nil); tests set it.
	Now func() time.Time
	// Renew, when it receives, makes Keep renew at once rather than at
	// half the lease: the router announced that it restarted
	// (WatchAnnouncements), so the mapping is likely gone.
	Renew <-chan struct{}
}

// Keep maps r through c and keeps the mapping: it renews at half the
// lease the router granted, makes it again when the router lost it (a
// NAT-PMP or PCP epoch that went back: the router restarted; a mapping
// that answers differently; at once when o.Renew says the router
// announced a restart), and deletes it when ctx ends. It returns
// the first mapping's error, or nil after the deletion.
func Keep(ctx context.Context, c Client, r Request, o KeepOptions, on func(KeepEvent)) error {
	if o.Check <= 0 {
		o.Check = 5 * time.Minute
	}
	if o.Retry <= 0 {
		o.Retry = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m, err := c.Map(ctx, r)
	if err != nil {
		return err
	}
	on(KeepEvent{Time: o.Now(), Type: "mapped", Mapping: m})
	at := o.Now()
	for {
		wait := m.Lease / 2
		if m.Lease == 0 {
			wait = o.Check
		}
		t := time.NewTimer(wait)
		announced := false
		select {
		case <-ctx.Done():
			t.Stop()
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := c.Unmap(dctx, m)
			cancel()
			if err == nil {
				on(KeepEvent{Time: o.Now(), Type: "unmapped", Mapping: m})
			}
			return err
		case <-t.C:
		case <-o.Renew:
			t.Stop()
			announced = true
		}
		// A router that can say whether it still has the mapping (UPnP)
		// is asked first: one that lost it gets it again, as a remap.
		vanished := false
		if l, ok := c.(lookuper); ok {
			if _, found, err := l.Lookup(ctx, m); err == nil && !found {
				vanished = true
			}
		}
		// Renew what the router granted: the same external port.
		again := r
		if m.External.Port() != 0 {
			again.External = m.External.Port()
		}
		if m.Lease == 0 {
			again.Lease = 0
		}
		n, err := c.Map(ctx, again)
		if err != nil {
			if ctx.Err() != nil {
				continue // the next round deletes
			}
			retry := min(o.Retry, max(m.Lease/4, time.Second))
			on(KeepEvent{Time: o.Now(), Type: "retry", Mapping: m, Reason: err.Error()})
			m.Lease = 2 * retry // the next wait is retry
			continue
		}
		typ, reason := "renewed", ""
		now := o.Now()
		switch {
		case vanished:
			typ, reason = "remapped", "the router had lost the mapping before its lease ended"
		case m.Protocol != UPnP && lostEpoch(m.Epoch, n.Epoch, now.Sub(at)):
			typ, reason = "remapped", "the router's epoch went back: it restarted and lost its mappings"
		case n.External.Port() != m.External.Port() && m.External.Port() != 0:
			typ, reason = "remapped", "the router gave another external port"
		case announced:
			reason = "the router announced a restart or a new external address"
		}
		on(KeepEvent{Time: now, Type: typ, Mapping: n, Reason: reason})
		m, at = n, now
	}
}

// lookuper is a client that can ask the router whether it still has a
// mapping (UPnP's GetSpecificPortMappingEntry).
type lookuper interface {
	Lookup(ctx context.Context, m Mapping) (Mapping, bool, error)
}

// lostEpoch says whether the router's epoch, seen as before and now after
// elapsed, went back: RFC 6886 3.6 and RFC 6887 8.5 allow a client to
// think the router restarted when the new epoch is less than the old
// one plus seven eighths of the time elapsed, less 2 seconds. (UPnP has
// no epoch: the caller does not ask for it.)
func lostEpoch(before, now uint32, elapsed time.Duration) bool {
	expect := int64(before) + int64(elapsed/time.Second)*7/8 - 2
	return int64(now) < expect
}

// ErrNoClient is returned when no protocol answered.
var ErrNoClient = errors.New("the router answers none of PCP, NAT-PMP and UPnP IGD")
