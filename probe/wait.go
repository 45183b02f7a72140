package probe

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// The default pauses between attempts of Wait.
const (
	DefaultInterval    = 100 * time.Millisecond
	DefaultMaxInterval = 2 * time.Second
)

// WaitConfig is how Wait retries. The zero value is ready to use.
type WaitConfig struct {
	// Config sets each attempt's timeout, address family, resolver and
	// registry. Wait tries every address of a host name on each attempt
	// (AllAddresses is ignored): a target is ready when any of them
	// accepts a connection.
	Config
	// Interval is the pause after the first failed attempt; it doubles
	// after each failure up to MaxInterval (0: DefaultInterval).
	Interval time.Duration
	// MaxInterval caps the pause (0: DefaultMaxInterval, or Interval when
	// that is larger).
	MaxInterval time.Duration
	// Progress, when not nil, is called after every attempt on every
	// target. Calls do not overlap; they come from Wait's goroutines and
	// must return quickly.
	Progress func(Progress)
}

// Progress is one attempt on one target, as Wait reports it.
type Progress struct {
	Target Target
	// Attempt counts the attempts on this target, from 1.
	Attempt int
	// Elapsed is the time since Wait began.
	Elapsed time.Duration
	// Result is this attempt's outcome: open with the address that
	// accepted, or the failure at the first address.
	Result Result
}

// WaitResult is where Wait left one target.
type WaitResult struct {
	Target Target
	// Ready is true when the target accepted a connection.
	Ready bool
	// Addr is the address that accepted, when Ready.
	Addr netip.AddrPort
	// Elapsed is the time from the start of Wait until the target was
	// ready, or until Wait gave up on it.
	Elapsed time.Duration
	// Attempts is the number of attempts made.
	Attempts int
	// Last is the outcome of the last complete attempt.
	Last Result
}

func (c WaitConfig) intervals() (first, limit time.Duration) {
	first, limit = c.Interval, c.MaxInterval
	if first <= 0 {
		first = DefaultInterval
	}
	if limit <= 0 {
		limit = DefaultMaxInterval
	}
	return first, max(first, limit)
}

// Wait blocks until every target accepts a TCP connection, trying all of
// them in parallel and pausing between the attempts on a target with
// exponential backoff. Host names are resolved again on every attempt, so
// a name that appears later (a container coming up) is found. Wait
// returns when all targets are ready, or when ctx ends: then the error is
// ctx.Err() and the results say which targets were not ready and why.
// Bound the wait with context.WithTimeout.
//
// A service name that the registry does not know is an error before any
// waiting starts.
func Wait(ctx context.Context, targets []Target, cfg WaitConfig) ([]WaitResult, error) {
	start := time.Now()
	targets = slices.Clone(targets)
	for i, t := range targets {
		r, err := t.Resolved(cfg.registry())
		if err != nil {
			return nil, err
		}
		targets[i] = r
	}
	p := newPool(cfg.Concurrency)
	first, limit := cfg.intervals()
	var mu sync.Mutex // serialises Progress calls
	report := func(pr Progress) {
		if cfg.Progress == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		cfg.Progress(pr)
	}
	out := make([]WaitResult, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			out[i] = waitOne(ctx, p, t, cfg.Config, first, limit, start, report)
		})
	}
	wg.Wait()
	for _, r := range out {
		if !r.Ready {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			// The deadline passed (ended) a moment before the context's
			// own timer marked it done.
			return out, context.DeadlineExceeded
		}
	}
	return out, nil
}

// ended says whether the wait is over: the context is done, or its
// deadline has passed (a dial bounded by the deadline can return a moment
// before the context's own timer marks it done).
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

func waitOne(ctx context.Context, p pool, t Target, cfg Config, delay, limit time.Duration, start time.Time, report func(Progress)) WaitResult {
	res := WaitResult{Target: t}
	for {
		r := best(attempt(ctx, p, t, cfg, true))
		if ended(ctx) && r.State != StateOpen && res.Attempts > 0 {
			// The attempt was cut short by the end of the wait: keep the
			// last real answer.
			break
		}
		res.Attempts++
		res.Last = r
		res.Target = r.Target // with its service name resolved
		report(Progress{Target: r.Target, Attempt: res.Attempts, Elapsed: time.Since(start), Result: r})
		if r.State == StateOpen {
			res.Ready, res.Addr = true, r.Addr
			break
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
		}
		if ctx.Err() != nil {
			break
		}
		delay = min(2*delay, limit)
	}
	res.Elapsed = time.Since(start)
	return res
}

// best returns the open result among rs if there is one, else the first.
func best(rs []Result) Result {
	for _, r := range rs {
		if r.State == StateOpen {
			return r
		}
	}
	return rs[0]
}
