package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/portctl/portctl/registry"
)

// DefaultTimeout is how long Check waits for one target when
// Config.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// DefaultConcurrency bounds the connection attempts Check makes at once
// when Config.Concurrency is zero.
const DefaultConcurrency = 256

// State is what a connection attempt found.
type State uint8

// The states of a target.
const (
	// StateOpen: the port accepted the connection.
	StateOpen State = iota + 1
	// StateClosed: the host answered that nothing listens there (a TCP
	// reset: "connection refused").
	StateClosed
	// StateFiltered: no answer in time, or an ICMP error or the local
	// routing table said the host cannot be reached.
	StateFiltered
	// StateError: no attempt could be made, such as for a host name that
	// does not resolve.
	StateError
)

var stateNames = [...]string{StateOpen: "open", StateClosed: "closed", StateFiltered: "filtered", StateError: "error"}

// String returns "open", "closed", "filtered" or "error".
func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// MarshalText writes the state's name, for JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name.
func (s *State) UnmarshalText(b []byte) error {
	for i, name := range stateNames {
		if name != "" && name == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("probe: unknown state %q (want open, closed, filtered or error)", b)
}

// The reasons Result.Reason gives for a state other than open. An error
// the package does not recognise gives its own text instead.
const (
	// ReasonRefused: the host sent a TCP reset to the connection request.
	ReasonRefused = "connection refused"
	// ReasonReset: the connection was reset while it was being set up.
	ReasonReset = "connection reset"
	// ReasonTimeout: no answer at all within the timeout; typically a
	// firewall drops the packets.
	ReasonTimeout = "timeout"
	// ReasonHostUnreachable: an ICMP host-unreachable or
	// administratively-prohibited reply, or no answer to ARP / neighbour
	// discovery on the local link (EHOSTUNREACH).
	ReasonHostUnreachable = "host unreachable"
	// ReasonNetUnreachable: no route to the network in the local routing
	// table, or an ICMP network-unreachable reply (ENETUNREACH).
	ReasonNetUnreachable = "network unreachable (no route)"
	// ReasonBlockedLocally: this machine's firewall or a prohibit route
	// refused the outgoing packet (EPERM or EACCES from connect).
	ReasonBlockedLocally = "blocked on this host (firewall or prohibit route)"
	// ReasonNoHost: the host name does not resolve.
	ReasonNoHost = "no such host"
)

// Family selects the IP version of the addresses to try.
type Family uint8

// The address families.
const (
	AnyFamily Family = 0 // the first address of either family
	IPv4      Family = 4
	IPv6      Family = 6
)

// String returns "ip", "ip4" or "ip6", the network names of package net.
func (f Family) String() string {
	switch f {
	case IPv4:
		return "ip4"
	case IPv6:
		return "ip6"
	}
	return "ip"
}

// Config is how Check and Wait make connection attempts. The zero value is
// ready to use.
type Config struct {
	// Timeout bounds the name resolution of a target and, separately,
	// each connection attempt (0: DefaultTimeout).
	Timeout time.Duration
	// Family restricts the addresses tried to IPv4 or IPv6.
	Family Family
	// AllAddresses makes Check try every address a host name resolves
	// to, giving one Result each, instead of the first only.
	AllAddresses bool
	// Concurrency bounds the attempts in flight (0: DefaultConcurrency).
	Concurrency int
	// Resolver resolves host names (nil: net.DefaultResolver).
	Resolver *net.Resolver
	// Registry resolves service names given as ports (nil:
	// registry.Builtin()).
	Registry *registry.Registry
}

func (c Config) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c Config) resolver() *net.Resolver {
	if c.Resolver != nil {
		return c.Resolver
	}
	return net.DefaultResolver
}

func (c Config) registry() *registry.Registry {
	if c.Registry != nil {
		return c.Registry
	}
	return registry.Builtin()
}

// Result is the outcome of one connection attempt to one address of a
// target.
type Result struct {
	Target Target
	// Addr is the address tried; it is the zero value when the host did
	// not resolve.
	Addr netip.AddrPort
	// State is open, closed, filtered or error.
	State State
	// Reason says why the state is not open: one of the Reason
	// constants, or the text of an error they do not cover.
	Reason string
	// Latency is the time from sending the connection request to the
	// answer (for a timeout: the time waited).
	Latency time.Duration
	// Err is the error behind a state other than open.
	Err error
}

// Check makes one TCP connection attempt to each target, all in parallel
// (at most Config.Concurrency at once), and returns the results in the
// order of targets. A host name is tried at its first address of
// Config.Family, or at each of them with Config.AllAddresses. Check
// returns an error only when ctx ends first; the results it has are
// returned with it.
func Check(ctx context.Context, targets []Target, cfg Config) ([]Result, error) {
	p := newPool(cfg.Concurrency)
	per := make([][]Result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { per[i] = attempt(ctx, p, t, cfg, cfg.AllAddresses) })
	}
	wg.Wait()
	var out []Result
	for _, rs := range per {
		out = append(out, rs...)
	}
	return out, ctx.Err()
}

// pool bounds the attempts in flight.
type pool chan struct{}

func newPool(n int) pool {
	if n <= 0 {
		n = DefaultConcurrency
	}
	return make(pool, n)
}

func (p pool) acquire(ctx context.Context) bool {
	select {
	case p <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (p pool) release() { <-p }

// attempt resolves t and connects to its first address, or to all of them
// in parallel when all is set, each within cfg's timeout.
func attempt(ctx context.Context, p pool, t Target, cfg Config, all bool) []Result {
	if !p.acquire(ctx) {
		return []Result{failed(t, ctx.Err())}
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.timeout())
	t, addrs, err := resolve(rctx, t, cfg)
	cancel()
	p.release()
	if err != nil {
		return []Result{failed(t, err)}
	}
	if !all {
		addrs = addrs[:1]
	}
	out := make([]Result, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			ap := netip.AddrPortFrom(a, t.Port)
			if !p.acquire(ctx) {
				out[i] = failed(t, ctx.Err())
				out[i].Addr = ap
				return
			}
			defer p.release()
			out[i] = connect(ctx, t, ap, cfg.timeout())
		})
	}
	wg.Wait()
	return out
}

// resolve turns t's service name into a port and its host into the
// addresses of cfg.Family, in the resolver's order.
func resolve(ctx context.Context, t Target, cfg Config) (Target, []netip.Addr, error) {
	t, err := t.Resolved(cfg.registry())
	if err != nil {
		return t, nil, err
	}
	if a, ok := t.Addr(); ok {
		if cfg.Family == IPv4 && !a.Is4() || cfg.Family == IPv6 && !a.Is6() {
			return t, nil, &familyError{host: t.Host, family: cfg.Family}
		}
		return t, []netip.Addr{a}, nil
	}
	// Ask for every family and filter here, so that a name without an
	// address of the family says so rather than "no such host".
	addrs, err := cfg.resolver().LookupNetIP(ctx, "ip", t.Host)
	if err != nil {
		return t, nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if cfg.Family == IPv4 && !a.Is4() || cfg.Family == IPv6 && !a.Is6() {
			continue
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return t, nil, &familyError{host: t.Host, family: cfg.Family}
	}
	return t, out, nil
}

// familyError says a host has no address of the family asked for.
type familyError struct {
	host   string
	family Family
}

func (e *familyError) Error() string {
	v := map[Family]string{IPv4: "IPv4", IPv6: "IPv6"}[e.family]
	if v == "" {
		return fmt.Sprintf("%s has no IP address", e.host)
	}
	return fmt.Sprintf("no %s address", v)
}

// connect makes one connection attempt to ap within timeout.
func connect(ctx context.Context, t Target, ap netip.AddrPort, timeout time.Duration) Result {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	start := time.Now()
	conn, err := d.DialContext(cctx, "tcp", ap.String())
	r := Result{Target: t, Addr: ap, Latency: time.Since(start)}
	if err == nil {
		conn.Close()
		r.State = StateOpen
		return r
	}
	if ctx.Err() != nil {
		err = ctx.Err() // the caller gave up: not the target's doing
	}
	r.State, r.Reason = classify(err)
	r.Err = err
	return r
}

// failed is the result of a target that could not be tried.
func failed(t Target, err error) Result {
	st, reason := classify(err)
	return Result{Target: t, State: st, Reason: reason, Err: err}
}

// classify maps a connection or resolution error to a state and reason.
func classify(err error) (State, string) {
	var (
		dnsErr *net.DNSError
		famErr *familyError
		synErr *registry.SyntaxError
	)
	switch {
	case errors.Is(err, context.Canceled):
		return StateError, "canceled"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return StateError, ReasonNoHost
		}
		if dnsErr.IsTimeout {
			return StateError, "name resolution timed out"
		}
		return StateError, "name resolution failed: " + dnsErr.Err
	case errors.As(err, &famErr):
		return StateError, famErr.Error()
	case errors.As(err, &synErr):
		return StateError, synErr.Msg
	}
	if st, reason, ok := classifyErrno(err); ok {
		return st, reason
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return StateFiltered, ReasonTimeout
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return StateError, oe.Err.Error()
	}
	return StateError, err.Error()
}
