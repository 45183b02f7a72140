package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portctl/portctl/forward/sshtun"
)

// Config configures a Forwarder.
type Config struct {
	// OnError, when set, is told of errors that do not stop a rule: a
	// backend that cannot be reached, an accept that failed. It is called
	// from many goroutines.
	OnError func(rule string, err error)
	// DataPath chooses how TCP connections are relayed; the zero value
	// is the best the OS has (DataPathLoops on Linux).
	DataPath DataPath
	// SSH carries the rules that go Via an SSH server; the Forwarder uses
	// it, the caller makes and closes it. Nil: such rules are refused.
	SSH *sshtun.Manager
}

// DataPath is a way of relaying TCP connections.
type DataPath string

// The data paths.
const (
	// DataPathAuto is DataPathLoops where there are event loops (Linux),
	// else DataPathGoroutines.
	DataPathAuto DataPath = ""
	// DataPathLoops relays on epoll event loops, one per CPU, each on
	// an OS thread of its own, with no goroutine per connection:
	// through a buffer while a flow is short, by splice(2) once it has
	// shown itself bulk. Linux only.
	DataPathLoops DataPath = "loops"
	// DataPathGoroutines relays each connection with two goroutines
	// and io.Copy (which splices on Linux). It is the path for
	// connections that are not plain sockets, and for other OSes.
	DataPathGoroutines DataPath = "goroutines"
)

// Forwarder runs forwarding rules. It is safe for concurrent use.
type Forwarder struct {
	cfg     Config
	mu      sync.Mutex
	rules   map[string]*running // by Rule.Key
	retired map[*running]bool   // rules removed, their connections still running
	closed  bool
	loops   *loops // started with the first TCP rule on the loops
}

// New returns a Forwarder with no rules; Apply starts some.
func New(cfg Config) *Forwarder {
	return &Forwarder{cfg: cfg, rules: map[string]*running{}, retired: map[*running]bool{}}
}

// Stats are one rule's counters.
type Stats struct {
	Name     string         `json:"name"`
	Proto    Proto          `json:"proto"`
	Listen   netip.AddrPort `json:"listen"`
	Conns    uint64         `json:"connections"` // accepted (UDP: sessions opened)
	Active   int64          `json:"active"`
	BytesIn  uint64         `json:"bytes_in"`  // client to backend
	BytesOut uint64         `json:"bytes_out"` // backend to client
	Refused  uint64         `json:"refused"`   // by allow/deny or the connection limit
	Errors   uint64         `json:"errors"`    // backend unreachable, resets
	Spliced  uint64         `json:"spliced"`   // connections the event loops moved to splice(2) (a bulk flow)
	Mode     Mode           `json:"mode,omitempty"`
	Via      string         `json:"via,omitempty"` // the SSH server the rule goes through
	Backends []BackendStats `json:"backends"`
}

// BackendStats are one backend's counters.
type BackendStats struct {
	Target  string `json:"target"`
	Healthy bool   `json:"healthy"`
	Active  int64  `json:"active"`
}

// counters are a rule's live counts.
type counters struct {
	conns, bytesIn, bytesOut, refused, errors, spliced atomic.Uint64
	active                                             atomic.Int64
}

// running is a rule at work.
type running struct {
	f       *Forwarder
	rule    atomic.Pointer[Rule] // replaced on reload when only options change
	pool    *pool
	c       counters
	ln      net.Listener // the goroutine path's: TCP, or a remote rule's on its SSH server
	el      *listener    // the event loops'
	eu      *udpListener // the event loops' UDP socket
	pc      *net.UDPConn
	udp     *udpTable
	ctx     context.Context
	cancel  context.CancelFunc // stops accepting; connections keep going
	kill    context.CancelFunc // ends the connections too
	killCtx context.Context
	conns   sync.WaitGroup
}

// Apply makes rules the running set: rules whose listener (protocol and
// address) is already running keep it, with the new options and backends
// for new connections; new rules start listening; rules no longer
// present stop accepting, and their connections run on until they end
// or Shutdown. A rule that cannot start (its port is taken) is an error,
// after the others were applied; it is not running.
func (f *Forwarder) Apply(rules []Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("forward: the forwarder is shut down")
	}
	want := map[string]Rule{}
	for _, r := range rules {
		if err := r.Validate(); err != nil {
			return err
		}
		if _, dup := want[r.Key()]; dup {
			return fmt.Errorf("forward: two rules listen on %s", r.Key())
		}
		want[r.Key()] = r
	}
	for key, run := range f.rules {
		r, keep := want[key]
		if old := run.rule.Load(); keep && old.Via == r.Via && old.Mode == r.Mode {
			continue
		}
		// Gone, or through another transport (another SSH server, or
		// none): that takes a listener of its own, opened below.
		delete(f.rules, key)
		f.retire(run)
	}
	var errs []error
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		r := want[key]
		if run, ok := f.rules[key]; ok {
			run.update(r)
			continue
		}
		run, err := f.start(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.rules[key] = run
	}
	return errors.Join(errs...)
}

// retire stops a rule's accepting; Shutdown waits for its connections,
// or cuts them, as for the running rules'. f.mu is held.
func (f *Forwarder) retire(run *running) {
	run.stopAccepting()
	f.retired[run] = true
	go func() {
		run.conns.Wait()
		f.mu.Lock()
		delete(f.retired, run)
		f.mu.Unlock()
	}()
}

// Rules returns the running rules, by name.
func (f *Forwarder) Rules() []Rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Rule, 0, len(f.rules))
	for _, run := range f.rules {
		out = append(out, *run.rule.Load())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Stats returns every running rule's counters, by name.
func (f *Forwarder) Stats() []Stats {
	f.mu.Lock()
	runs := make([]*running, 0, len(f.rules))
	for _, r := range f.rules {
		runs = append(runs, r)
	}
	f.mu.Unlock()
	out := make([]Stats, 0, len(runs))
	for _, run := range runs {
		out = append(out, run.stats())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Hosts returns the state and counters of the SSH servers in Config.SSH
// (those the rules go through), by name; nil without SSH.
func (f *Forwarder) Hosts() []sshtun.HostState {
	if f.cfg.SSH == nil {
		return nil
	}
	return f.cfg.SSH.States()
}

// Addr returns the address a rule listens on, with the port the kernel
// picked when the rule asked for port 0; false when no rule has that key.
func (f *Forwarder) Addr(key string) (netip.AddrPort, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	run, ok := f.rules[key]
	if !ok {
		return netip.AddrPort{}, false
	}
	return run.addr(), true
}

// addr is where the rule listens, with the port the kernel (or the SSH
// server) picked for port 0.
func (run *running) addr() netip.AddrPort {
	switch {
	case run.el != nil:
		return run.el.addr
	case run.eu != nil:
		return run.eu.addr
	case run.ln != nil:
		if a := addrPort(run.ln.Addr()); a.IsValid() {
			return a
		}
	case run.pc != nil:
		return run.pc.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	return run.rule.Load().Listen
}

// Shutdown stops accepting on every rule and waits for the connections to
// end, those of rules Apply removed too, until ctx ends; then it closes
// what is left. It returns ctx's error when it had to cut connections.
// Stats then gives the rules' final counters, those of the connections
// that ended during the drain included.
func (f *Forwarder) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	f.closed = true
	runs := make([]*running, 0, len(f.rules)+len(f.retired))
	for _, r := range f.rules {
		runs = append(runs, r)
		r.stopAccepting()
	}
	for r := range f.retired {
		runs = append(runs, r)
	}
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		for _, r := range runs {
			r.conns.Wait()
		}
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		for _, r := range runs {
			r.cut()
		}
		<-done
		err = ctx.Err()
	}
	f.mu.Lock()
	ls := f.loops
	f.mu.Unlock()
	if ls != nil {
		ls.stop()
	}
	return err
}

// startLoops starts the event loops if they do not run yet.
func (f *Forwarder) startLoops() error {
	if f.loops != nil {
		return nil
	}
	ls, err := newLoops()
	if err != nil {
		return err
	}
	f.loops = ls
	return nil
}

// useLoops reports whether the rule's connections (UDP: datagrams) go to
// the event loops.
func (f *Forwarder) useLoops(r Rule) bool {
	return loopsAvailable() && (f.cfg.DataPath == DataPathAuto || f.cfg.DataPath == DataPathLoops)
}

// start opens the rule's listener and starts serving.
func (f *Forwarder) start(r Rule) (*running, error) {
	run := &running{f: f}
	run.rule.Store(&r)
	run.killCtx, run.kill = context.WithCancel(context.Background())
	run.ctx, run.cancel = context.WithCancel(run.killCtx)
	run.pool = newPool(r)
	switch {
	case r.Tunnelled():
		if err := f.startTunnel(run, r); err != nil {
			run.kill()
			return nil, fmt.Errorf("forward: %s: %w", r.Name, err)
		}
		return run, nil
	case r.Proto == UDP:
		if f.useLoops(r) {
			if err := f.startLoops(); err != nil {
				run.kill()
				return nil, err
			}
			eu, err := f.loops.listenUDP(run, r.Listen)
			if err != nil {
				run.kill()
				return nil, fmt.Errorf("forward: %s: %w", r.Name, err)
			}
			run.eu = eu
			break
		}
		pc, err := listenUDP(r.Listen)
		if err != nil {
			run.kill()
			return nil, fmt.Errorf("forward: %s: %w", r.Name, err)
		}
		run.pc = pc
		run.udp = newUDPTable(run)
		run.conns.Go(run.serveUDP)
	default:
		if f.useLoops(r) {
			if err := f.startLoops(); err != nil {
				run.kill()
				return nil, err
			}
			el, err := f.loops.listen(run, r.Listen)
			if err != nil {
				run.kill()
				return nil, fmt.Errorf("forward: %s: %w", r.Name, err)
			}
			run.el = el
			break
		}
		ln, err := listenTCP(r.Listen)
		if err != nil {
			run.kill()
			return nil, fmt.Errorf("forward: %s: %w", r.Name, err)
		}
		run.ln = ln
		go run.serveTCP()
	}
	go run.pool.maintain(run.ctx, f.cfg.OnError, r.Name)
	return run, nil
}

// update takes a changed rule with the same listener: new connections
// use its options and backends (pool.replace keeps the state of the
// backends that stay).
func (run *running) update(r Rule) {
	run.rule.Store(&r)
	run.pool.replace(r)
}

// stopAccepting closes the listener; connections keep running.
func (run *running) stopAccepting() {
	run.cancel()
	if run.ln != nil {
		run.ln.Close()
	}
	if run.el != nil {
		run.f.loops.unlisten(run.el)
	}
	if run.eu != nil {
		run.f.loops.unlistenUDP(run.eu) // and its sessions end
	}
	if run.pc != nil {
		run.pc.Close() // serveUDP then ends the sessions
	}
}

func (run *running) stats() Stats {
	r := run.rule.Load()
	return Stats{Name: r.Name, Proto: r.Proto, Listen: run.addr(),
		Conns: run.c.conns.Load(), Active: run.c.active.Load(), BytesIn: run.c.bytesIn.Load(),
		BytesOut: run.c.bytesOut.Load(), Refused: run.c.refused.Load(), Errors: run.c.errors.Load(),
		Spliced: run.c.spliced.Load(), Mode: r.Mode, Via: r.Via,
		Backends: run.pool.stats()}
}

// cut ends the rule's connections: both directions, the client with a
// reset.
func (run *running) cut() {
	run.kill()
	if run.el != nil {
		run.f.loops.cut(run)
	}
}

// fail counts and reports an error of a connection.
func (run *running) fail(err error) {
	run.c.errors.Add(1)
	if h := run.f.cfg.OnError; h != nil {
		h(run.rule.Load().Name, err)
	}
}

// backoff is how long to pause accepting after EMFILE, doubling from
// 5 ms to 1 s.
func backoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	return min(2*d, time.Second)
}
