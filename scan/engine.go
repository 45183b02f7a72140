package scan

import (
	"net/netip"
	"time"
)

// Probe is one (address, port) for an engine to try.
type Probe struct {
	Addr netip.Addr
	Port uint16
	Host string // the name the address came from, if any
}

// ConnectConfig configures the TCP connect engine. Engines call their next
// and emit functions one at a time, never concurrently. The zero value works:
// every field has a default.
type ConnectConfig struct {
	// Concurrency is the number of connection attempts in flight (0: 1024,
	// at most what the open-file limit allows).
	Concurrency int
	// Timeout, when set, is the fixed time an attempt may take. When 0,
	// the timeout adapts to measured round trips, starting at
	// InitialTimeout and staying between MinTimeout and MaxTimeout.
	Timeout time.Duration
	// Retries is how many more attempts an unanswered port gets (default
	// 2; -1 for none). A refused or accepted connection is never retried.
	Retries int
	// Rate caps new attempts per second (0: no cap).
	Rate int
}

// The adaptive timeout's bounds, like TCP's retransmission timer.
const (
	InitialTimeout = time.Second
	MinTimeout     = 100 * time.Millisecond
	MaxTimeout     = 10 * time.Second
)

func (c ConnectConfig) retries() int { return retries(c.Retries, 2) }

// retries reads a Retries setting: -1 (any negative) for none, 0 for the
// engine's default def.
func retries(n, def int) int {
	switch {
	case n < 0:
		return 0
	case n == 0:
		return def
	}
	return n
}

func (c ConnectConfig) concurrency(fileLimit int) int {
	n := c.Concurrency
	if n <= 0 {
		n = 1024
	}
	if fileLimit > 0 && n > fileLimit-64 {
		n = max(1, fileLimit-64)
	}
	return n
}

// rttEstimator keeps a smoothed round trip and its variance (RFC 6298)
// and derives the timeout from them. It is not safe for concurrent use.
type rttEstimator struct {
	fixed   time.Duration
	srtt    time.Duration
	rttvar  time.Duration
	samples int
}

func (e *rttEstimator) add(rtt time.Duration) {
	if e.samples == 0 {
		e.srtt, e.rttvar = rtt, rtt/2
	} else {
		d := e.srtt - rtt
		if d < 0 {
			d = -d
		}
		e.rttvar = (3*e.rttvar + d) / 4
		e.srtt = (7*e.srtt + rtt) / 8
	}
	e.samples++
}

// timeout is how long to wait for an answer before calling it lost.
func (e *rttEstimator) timeout() time.Duration {
	if e.fixed > 0 {
		return e.fixed
	}
	if e.samples == 0 {
		return InitialTimeout
	}
	return min(max(e.srtt+4*e.rttvar, MinTimeout), MaxTimeout)
}

// pacer spaces new attempts to a rate. It is not safe for concurrent use.
type pacer struct {
	interval time.Duration
	next     time.Time
}

func newPacer(rate int) pacer {
	if rate <= 0 {
		return pacer{}
	}
	return pacer{interval: time.Second / time.Duration(rate)}
}

// wait returns how long to wait before the next attempt may start (0 now),
// and books the slot when it is 0.
func (p *pacer) wait(now time.Time) time.Duration {
	if p.interval == 0 {
		return 0
	}
	if now.Before(p.next) {
		return p.next.Sub(now)
	}
	if p.next.IsZero() || now.Sub(p.next) > p.interval {
		p.next = now
	}
	p.next = p.next.Add(p.interval)
	return 0
}

// congestion is the window of attempts in flight, adapted like TCP's
// congestion window (AIMD): it grows by four for each window's worth of
// answers (faster than TCP's one, to win back a cut within a few round
// trips), and shrinks by a quarter when a probe to a host that has
// answered before goes unanswered — a sign that the path drops packets
// (a bottleneck, a rate limit), not that the port is filtered. Timeouts at
// hosts that never answered say nothing about the path and do not count.
// It is not safe for concurrent use.
type congestion struct {
	max, min  int
	window    float64
	responded map[netip.Addr]bool
	lastCut   time.Time
}

func newCongestion(max int) *congestion {
	return &congestion{max: max, min: min(16, max), window: float64(max), responded: map[netip.Addr]bool{}}
}

func (c *congestion) size() int { return int(c.window) }

// answered records an answer (open or closed) from addr.
func (c *congestion) answered(addr netip.Addr) {
	if len(c.responded) < 1<<16 {
		c.responded[addr] = true
	}
	c.window = min(c.window+1/c.window*4, float64(c.max))
}

// lost records an unanswered probe to addr.
func (c *congestion) lost(addr netip.Addr) {
	if !c.responded[addr] {
		return
	}
	// At most one cut per 100 ms: a burst of losses is one event.
	if now := time.Now(); now.Sub(c.lastCut) > 100*time.Millisecond {
		c.window = max(c.window*3/4, float64(c.min))
		c.lastCut = now
	}
}
