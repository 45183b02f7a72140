package forward

import (
	"cmp"
	"context"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// resolveEvery is how often backend host names are resolved again.
const resolveEvery = 30 * time.Second

// backend is one target of a rule.
type backend struct {
	spec    string // as written: "host:port"
	host    string // the host name to resolve; empty when spec is an address
	port    uint16
	dial    atomic.Pointer[string]         // the address to dial: spec, or the resolved host and port
	addr    atomic.Pointer[netip.AddrPort] // the address, once known (the event loops connect to it)
	healthy atomic.Bool
	active  atomic.Int64
}

// addrPort returns the address to connect to; not valid while a host
// name is not resolved yet.
func (b *backend) addrPort() netip.AddrPort {
	if a := b.addr.Load(); a != nil {
		return *a
	}
	return netip.AddrPort{}
}

// target returns the address to dial: the resolved one when there is
// one, else the spec (the dialer resolves it).
func (b *backend) target() string { return *b.dial.Load() }

// pool is a rule's backends and its balancing.
type pool struct {
	mu       sync.RWMutex
	backends []*backend
	balance  Balance
	check    time.Duration
	next     atomic.Uint64
	changed  chan struct{}
}

func newPool(r Rule) *pool {
	p := &pool{changed: make(chan struct{}, 1)}
	p.replace(r)
	return p
}

// replace takes the rule's backends; those that stay keep their state.
// New backends, or a new health-check interval, tell maintain to resolve
// and set up the checks again; a reload that changes neither costs nothing.
func (p *pool) replace(r Rule) {
	p.mu.Lock()
	old := map[string]*backend{}
	for _, b := range p.backends {
		old[b.spec] = b
	}
	changed := p.check != r.HealthCheck
	var bs []*backend
	for _, spec := range r.Backends {
		if b, ok := old[spec]; ok {
			bs = append(bs, b)
			continue
		}
		changed = true
		host, port, _ := splitHostPort(spec)
		n, _ := strconv.ParseUint(port, 10, 16)
		b := &backend{spec: spec, host: host, port: uint16(n)}
		if a, err := netip.ParseAddr(host); err == nil {
			b.host = ""
			ap := netip.AddrPortFrom(a.Unmap(), b.port)
			b.addr.Store(&ap)
		}
		b.dial.Store(&b.spec)
		b.healthy.Store(true)
		bs = append(bs, b)
	}
	p.backends, p.balance, p.check = bs, r.Balance, r.HealthCheck
	p.mu.Unlock()
	if !changed {
		return
	}
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// pick chooses a backend for a new connection: the healthy ones in turn,
// or the one with the fewest active connections; all of them when none
// is healthy (a check may be wrong; a refused connection is no worse).
func (p *pool) pick() *backend {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if len(p.backends) == 0 {
		return nil
	}
	bs := p.backends
	// The candidates: the healthy ones when checks run and some pass, else
	// all. Counted rather than copied, as this runs for every connection.
	n, onlyHealthy := len(bs), false
	if p.check > 0 && n > 1 {
		healthy := 0
		for _, b := range bs {
			if b.healthy.Load() {
				healthy++
			}
		}
		if healthy > 0 {
			n, onlyHealthy = healthy, true
		}
	}
	candidate := func(b *backend) bool { return !onlyHealthy || b.healthy.Load() }
	if p.balance == LeastConn {
		var best *backend
		for _, b := range bs {
			if candidate(b) && (best == nil || b.active.Load() < best.active.Load()) {
				best = b
			}
		}
		return cmp.Or(best, bs[0]) // bs[0] if a check turned them all down meanwhile
	}
	i := (p.next.Add(1) - 1) % uint64(n)
	for _, b := range bs {
		if candidate(b) {
			if i == 0 {
				return b
			}
			i--
		}
	}
	return bs[0] // a check turned one down meanwhile
}

func (p *pool) stats() []BackendStats {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]BackendStats, 0, len(p.backends))
	for _, b := range p.backends {
		out = append(out, BackendStats{Target: b.spec, Healthy: b.healthy.Load(), Active: b.active.Load()})
	}
	return out
}

// maintain resolves host names now and every resolveEvery, and runs the
// health checks, until ctx ends.
func (p *pool) maintain(ctx context.Context, onError func(string, error), rule string) {
	resolve := time.NewTicker(resolveEvery)
	defer resolve.Stop()
	var check <-chan time.Time
	var checker *time.Ticker
	// setup (re)starts the health checks at the pool's interval; the
	// first resolve and setup come from the change newPool signals.
	setup := func() {
		if checker != nil {
			checker.Stop()
			checker, check = nil, nil
		}
		p.mu.RLock()
		every := p.check
		p.mu.RUnlock()
		if every > 0 {
			checker = time.NewTicker(every)
			check = checker.C
		}
	}
	defer func() {
		if checker != nil {
			checker.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.changed:
			setup()
			p.resolve(ctx, onError, rule)
		case <-resolve.C:
			p.resolve(ctx, onError, rule)
		case <-check:
			p.healthCheck(ctx)
		}
	}
}

// resolve looks up the backends named by host name.
func (p *pool) resolve(ctx context.Context, onError func(string, error), rule string) {
	p.mu.RLock()
	bs := append([]*backend(nil), p.backends...)
	p.mu.RUnlock()
	for _, b := range bs {
		if b.host == "" {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", b.host)
		cancel()
		if err != nil || len(addrs) == 0 {
			if onError != nil && ctx.Err() == nil {
				onError(rule, err)
			}
			continue
		}
		ap := netip.AddrPortFrom(addrs[0].Unmap(), b.port)
		a := ap.String()
		b.dial.Store(&a)
		b.addr.Store(&ap)
	}
}

// healthCheck connects to every backend once, at most a second each.
func (p *pool) healthCheck(ctx context.Context) {
	p.mu.RLock()
	bs := append([]*backend(nil), p.backends...)
	p.mu.RUnlock()
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Go(func() {
			d := net.Dialer{Timeout: time.Second}
			c, err := d.DialContext(ctx, "tcp", b.target())
			if err == nil {
				c.Close()
			}
			if ctx.Err() == nil {
				b.healthy.Store(err == nil)
			}
		})
	}
	wg.Wait()
}
