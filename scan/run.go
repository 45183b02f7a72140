package scan

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan/probe"
)

// ErrUnsupported is returned for scan kinds portctl does not do yet.
var ErrUnsupported = errors.New("scan: not supported")

// Plan is a whole scan: what to probe, in which order, which shard, and
// with which engine settings.
type Plan struct {
	Targets *Targets
	Ports   *Ports
	// Seed keys the order in which target × port pairs are visited: the
	// same seed visits them in the same order.
	Seed uint64
	// ShardK and ShardN select shard K of N (1 ≤ K ≤ N); zero for the
	// whole scan.
	ShardK, ShardN uint64
	// Skip is how many positions of the shard were done before (from a
	// resume file).
	Skip    uint64
	Connect ConnectConfig
	UDP     UDPConfig
	// SYN, when set, scans TCP ports with the SYN engine (raw sockets;
	// root or CAP_NET_RAW) and this configuration instead of the connect
	// engine.
	SYN *SynConfig
	// Service, when set, turns on service detection: each open port (and
	// each UDP port that is open|filtered) is identified with
	// probe.Detect before its result is emitted, with Result.Service set.
	// A UDP port whose service answers is then reported open.
	Service *probe.Config
	// ServiceConcurrency bounds the ports identified at once (default 64).
	ServiceConcurrency int
}

// Progress is how far a scan has come.
type Progress struct {
	// Finished counts the probes decided, Total those of the shard.
	Finished, Total uint64
	// Done is the contiguous prefix of the shard's positions that is
	// finished: a resume from Done repeats nothing decided below it.
	Done uint64
	Open uint64
}

// span returns the positions of the permutation the plan covers.
func (p Plan) span() (Order, uint64, uint64, error) {
	n := p.Targets.Len() * uint64(p.Ports.Len())
	o := NewOrder(n, p.Seed)
	start, end := uint64(0), n
	if p.ShardN > 0 {
		if p.ShardK < 1 || p.ShardK > p.ShardN {
			return o, 0, 0, fmt.Errorf("scan: shard %d/%d: want 1 <= K <= N", p.ShardK, p.ShardN)
		}
		start, end = o.Shard(p.ShardK, p.ShardN)
	}
	if p.Skip > end-start {
		return o, 0, 0, fmt.Errorf("scan: resume position %d beyond the shard's %d probes", p.Skip, end-start)
	}
	return o, start, end, nil
}

// Total returns the number of probes of the plan's shard.
func (p Plan) Total() uint64 {
	_, start, end, err := p.span()
	if err != nil {
		return 0
	}
	return end - start
}

// Run probes every (target, port) pair of the plan's shard in the plan's
// order with the TCP connect (or SYN) and UDP engines, calling emit with
// each result and progress (when not nil) after each. It returns the final
// progress; after an interruption its Done says where a resume may start.
func Run(ctx context.Context, p Plan, emit func(Result), progress func(Progress)) (Progress, error) {
	if p.Ports.Protocols()&^(registry.TCP|registry.UDP) != 0 {
		return Progress{}, fmt.Errorf("%w: only TCP and UDP ports can be scanned", ErrUnsupported)
	}
	order, start, end, err := p.span()
	if err != nil {
		return Progress{}, err
	}
	prog := Progress{Total: end - start, Done: p.Skip, Finished: p.Skip}
	type key struct {
		addr  netip.Addr
		port  uint16
		proto registry.Protocol
	}
	// Results come back out of order: keep the positions in flight, and a
	// window of finished positions above Done.
	inflight := map[key]uint64{}
	finished := bitWindow{base: p.Skip &^ 63}
	var pos uint64
	nports := uint64(p.Ports.Len())
	// next walks the plan's positions, handing out those of one protocol:
	// a scan of TCP and UDP ports makes one pass per engine.
	next := func(proto registry.Protocol) func() (Probe, bool) {
		return func() (Probe, bool) {
			for pos < end {
				idx := order.At(pos)
				pr, port := p.Ports.At(int(idx % nports))
				if pr != proto {
					pos++
					continue
				}
				addr := p.Targets.At(idx / nports)
				inflight[key{addr, port, proto}] = pos - start
				pos++
				return Probe{Addr: addr, Port: port, Host: p.Targets.Name(addr)}, true
			}
			return Probe{}, false
		}
	}
	record := func(r Result) {
		k := key{r.Addr, r.Port, r.Proto}
		if at, ok := inflight[k]; ok {
			delete(inflight, k)
			finished.set(at)
			prog.Done = finished.advance(prog.Done)
		}
		prog.Finished++
		if r.State == Open {
			prog.Open++
		}
		emit(r)
		if progress != nil {
			progress(prog)
		}
	}
	if p.Service != nil {
		var wait func()
		emit, wait = detecting(ctx, p, emit)
		defer wait()
	}
	protos := p.Ports.Protocols()
	if protos.Has(registry.TCP) {
		pos = start + p.Skip
		if p.SYN != nil {
			err = SYN(ctx, *p.SYN, next(registry.TCP), record)
		} else {
			err = Connect(ctx, p.Connect, next(registry.TCP), record)
		}
		if err != nil {
			return prog, err
		}
	}
	if protos.Has(registry.UDP) {
		pos = start + p.Skip
		if err := UDP(ctx, p.UDP, next(registry.UDP), record); err != nil {
			return prog, err
		}
	}
	return prog, nil
}

// detecting wraps emit for service detection: results of open ports are
// held while their service is identified, in goroutines limited to the
// plan's ServiceConcurrency; the others pass through. Calls to the
// returned emit may come from the engine and the detections at once, so
// they are serialised. wait returns once every detection has emitted.
func detecting(ctx context.Context, p Plan, emit func(Result)) (func(Result), func()) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	n := p.ServiceConcurrency
	if n <= 0 {
		n = 64
	}
	sem := make(chan struct{}, n)
	out := func(r Result) {
		mu.Lock()
		defer mu.Unlock()
		emit(r)
	}
	return func(r Result) {
		if r.State != Open && !(r.Proto == registry.UDP && r.State == OpenFiltered) {
			out(r)
			return
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cfg := *p.Service
			if r.State == OpenFiltered && (cfg.MaxProbes == 0 || cfg.MaxProbes > 6) {
				// Silent so far, and most such ports stay silent: a few
				// probes, not a port's full share.
				cfg.MaxProbes = 6
			}
			s := probe.Detect(ctx, cfg, probe.Target{Addr: netip.AddrPortFrom(r.Addr, r.Port), Proto: r.Proto, Host: r.Host})
			if r.State == OpenFiltered && s.Known() {
				r.State, r.Reason = Open, ReasonUDPResponse
			}
			r.Service = &s
			out(r)
		})
	}, wg.Wait
}

// bitWindow is the set of finished positions at or above the contiguous
// prefix: bits from base on, compacted as the prefix advances, so memory
// follows the spread of positions in flight, not the size of the scan.
type bitWindow struct {
	base  uint64 // position of bit 0 of words[0]; a multiple of 64
	words []uint64
}

func (w *bitWindow) set(pos uint64) {
	i := (pos - w.base) / 64
	for uint64(len(w.words)) <= i {
		w.words = append(w.words, 0)
	}
	w.words[i] |= 1 << ((pos - w.base) % 64)
}

func (w *bitWindow) has(pos uint64) bool {
	if pos < w.base {
		return true
	}
	i := (pos - w.base) / 64
	return i < uint64(len(w.words)) && w.words[i]&(1<<((pos-w.base)%64)) != 0
}

// advance returns the first position from done on that is not finished,
// and drops the words below it.
func (w *bitWindow) advance(done uint64) uint64 {
	for w.has(done) {
		done++
	}
	if drop := (done - w.base) / 64; drop > 0 && drop <= uint64(len(w.words)) {
		w.words = w.words[drop:]
		w.base += drop * 64
	}
	return done
}
