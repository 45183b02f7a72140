package guard

import (
	"container/list"
	"math"
	"net/netip"
	"slices"
	"time"
)

// Outcome is what a first contact met.
type Outcome bool

const (
	// Failure: nothing listened there (or the port is guarded from this
	// source).
	Failure Outcome = false
	// Success: a socket listened there.
	Success Outcome = true
)

// DetectConfig tunes a Detector. The zero value of each field takes its
// default.
type DetectConfig struct {
	// Benign is the chance that a client's first contact meets a listening
	// port (θ0 of the paper; default 0.8), Scanner a scanner's (θ1;
	// default 0.2).
	Benign, Scanner float64
	// FalseAlarm is the chance the walk calls a client a scanner (α;
	// default 0.01), Detection the chance it calls a scanner one (β;
	// default 0.99). With the defaults the walk decides "scanner" after 4
	// failures in a row and "client" after 4 successes.
	FalseAlarm, Detection float64
	// Group4 and Group6 count sources by prefix instead of by address
	// (e.g. 24 and 64); zero is the whole address.
	Group4, Group6 int
	// Allow lists sources never judged: your own monitoring.
	Allow []netip.Prefix
	// FanOut is how many of the host's addresses a source contacts within
	// FanOutWindow to be a sweep (default 8; negative turns it off).
	FanOut       int
	FanOutWindow time.Duration // default 1 minute
	// Forget is how long a quiet source's walk is kept (default 1 hour: a
	// scan at nmap -T0's pace, one probe in 5 minutes, is decided within
	// 20 minutes).
	Forget time.Duration
	// MaxSources bounds the sources followed at once (default 65,536); the
	// least recently seen goes first.
	MaxSources int
	// MaxPorts bounds the ports an event lists (default 1,024).
	MaxPorts int
	// FlowMemory is how long a source's connection to a listening port
	// is remembered, so that late packets of it (after conntrack forgot
	// the connection) are not probes (default a day).
	FlowMemory time.Duration
}

func (c DetectConfig) withDefaults() DetectConfig {
	def := func(v *float64, d float64) {
		if *v <= 0 || *v >= 1 {
			*v = d
		}
	}
	def(&c.Benign, 0.8)
	def(&c.Scanner, 0.2)
	def(&c.FalseAlarm, 0.01)
	def(&c.Detection, 0.99)
	if c.FanOut == 0 {
		c.FanOut = 8
	}
	if c.FanOutWindow <= 0 {
		c.FanOutWindow = time.Minute
	}
	if c.Forget <= 0 {
		c.Forget = time.Hour
	}
	if c.MaxSources <= 0 {
		c.MaxSources = 1 << 16
	}
	if c.MaxPorts <= 0 {
		c.MaxPorts = 1024
	}
	if c.FlowMemory <= 0 {
		c.FlowMemory = 24 * time.Hour
	}
	return c
}

// maxSeen bounds the first contacts a walk remembers: a source past it
// has long been decided.
const maxSeen = 4096

// Traceroute's UDP probes go to ports 33434 and up, one more per probe;
// they reach the host itself only for the last hop or two. They count as
// no contact at all, lest every traceroute to the host be a UDP scan.
const (
	tracerouteFirst = 33434
	tracerouteLast  = 33534
)

// Detector decides, per source, whether its first contacts are a scan.
// Feed it every Probe with its Outcome, in time order. It is not safe for
// concurrent use.
type Detector struct {
	cfg        DetectConfig
	up, down   float64 // log-likelihood ratio thresholds
	onFail     float64 // the walk's step on a failure (positive)
	onSuccess  float64 // and on a success (negative)
	sources    map[netip.Prefix]*list.Element
	lru        *list.List // of *source, most recently seen first
	flows      map[flowKey]time.Time
	flowOrder  []flowKey // in the order remembered, for expiry
	flowsStart int
}

// source is what the detector keeps of one source.
type source struct {
	key   netip.Prefix
	last  time.Time
	walks map[Kind]*walk
	hosts map[netip.Addr]time.Time // contacted within the fan-out window
	swept bool
}

// walk is one source's sequential test for one kind of probe.
type walk struct {
	llr      float64
	seen     map[netip.AddrPort]bool
	ports    []uint16
	probes   int
	failures int
	first    time.Time
	reported bool
}

// flowKey is a client's contact with a server's port: its late packets
// come from the same address to the same port.
type flowKey struct {
	proto  uint8
	client netip.Addr
	server netip.AddrPort
}

// NewDetector returns a Detector with cfg's settings.
func NewDetector(cfg DetectConfig) *Detector {
	cfg = cfg.withDefaults()
	d := &Detector{
		cfg:     cfg,
		up:      math.Log(cfg.Detection / cfg.FalseAlarm),
		down:    math.Log((1 - cfg.Detection) / (1 - cfg.FalseAlarm)),
		onFail:  math.Log((1 - cfg.Scanner) / (1 - cfg.Benign)),
		sources: map[netip.Prefix]*list.Element{},
		lru:     list.New(),
		flows:   map[flowKey]time.Time{},
	}
	d.onSuccess = math.Log(cfg.Scanner / cfg.Benign)
	return d
}

// SourceKey is the key a source address is counted under: the address,
// or its prefix with grouping.
func (d *Detector) SourceKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := a.BitLen()
	if a.Is4() && d.cfg.Group4 > 0 && d.cfg.Group4 < 32 {
		bits = d.cfg.Group4
	}
	if a.Is6() && d.cfg.Group6 > 0 && d.cfg.Group6 < 128 {
		bits = d.cfg.Group6
	}
	p, _ := a.Prefix(bits)
	return p
}

// sourceName is how events name a source: the address alone when it is
// one.
func sourceName(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// Allowed says whether a is on the allow-list.
func (d *Detector) Allowed(a netip.Addr) bool {
	a = a.Unmap()
	return slices.ContainsFunc(d.cfg.Allow, func(p netip.Prefix) bool { return p.Contains(a) })
}

// connected remembers that p's source reached a listening port: packets
// from it to that port that start no connection are late packets of one
// conntrack forgot, not probes.
func (d *Detector) connected(p Probe) {
	k := flowKey{p.Proto, p.Src.Addr().Unmap(), unmapPort(p.Dst)}
	if _, ok := d.flows[k]; !ok {
		d.flowOrder = append(d.flowOrder, k)
	}
	d.flows[k] = p.Time
	d.expireFlows(p.Time)
}

// maxFlows bounds the flows remembered.
const maxFlows = 1 << 17

// expireFlows forgets the flows remembered for longer than FlowMemory,
// and the oldest beyond maxFlows. A flow ended twice keeps its first
// place in the order: it may then go a little early.
func (d *Detector) expireFlows(now time.Time) {
	for d.flowsStart < len(d.flowOrder) {
		k := d.flowOrder[d.flowsStart]
		if t, ok := d.flows[k]; ok && now.Sub(t) < d.cfg.FlowMemory && len(d.flows) <= maxFlows {
			break
		}
		delete(d.flows, k)
		d.flowsStart++
	}
	if d.flowsStart > 1024 && d.flowsStart > len(d.flowOrder)/2 {
		d.flowOrder = append(d.flowOrder[:0], d.flowOrder[d.flowsStart:]...)
		d.flowsStart = 0
	}
}

// lateOf says whether p comes from a source that reached its port
// before: a late packet of a connection conntrack forgot.
func (d *Detector) lateOf(p Probe) bool {
	t, ok := d.flows[flowKey{TCP, p.Src.Addr().Unmap(), unmapPort(p.Dst)}]
	return ok && p.Time.Sub(t) < d.cfg.FlowMemory
}

func unmapPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// See takes one first contact and what it met, and returns the events it
// decides: at most one scan per source and kind, one sweep per source,
// until the source has been quiet for Forget.
func (d *Detector) See(p Probe, o Outcome) []Event {
	d.expire(p.Time)
	if p.Kind == KindReset || d.Allowed(p.Src.Addr()) {
		return nil
	}
	if p.Kind == KindUDP && p.Dst.Port() >= tracerouteFirst && p.Dst.Port() <= tracerouteLast {
		return nil
	}
	if p.Kind != KindSYN && p.Kind != KindUDP && d.lateOf(p) {
		return nil
	}
	if o == Success && p.Kind == KindSYN {
		d.connected(p)
	}
	if p.Kind != KindSYN && p.Kind != KindUDP {
		// A packet that starts no connection never counts as a success:
		// an open port answers it no better than a closed one.
		o = Failure
	}
	s := d.source(p.Src.Addr(), p.Time)
	var out []Event
	if ev, ok := d.fanOut(s, p); ok {
		out = append(out, ev)
	}
	w := s.walks[p.Kind]
	if w == nil {
		w = &walk{seen: map[netip.AddrPort]bool{}}
		s.walks[p.Kind] = w
	}
	dst := unmapPort(p.Dst)
	if w.seen[dst] || w.reported {
		if w.reported && o == Failure && !w.seen[dst] && len(w.ports) < d.cfg.MaxPorts {
			w.seen[dst] = true
			w.ports = append(w.ports, dst.Port())
		}
		return out
	}
	if len(w.seen) < maxSeen {
		w.seen[dst] = true
	}
	if w.probes == 0 {
		w.first = p.Time
	}
	w.probes++
	if o == Success {
		w.llr += d.onSuccess
	} else {
		w.llr += d.onFail
		w.failures++
		if len(w.ports) < d.cfg.MaxPorts {
			w.ports = append(w.ports, dst.Port())
		}
	}
	switch {
	case w.llr >= d.up:
		w.reported = true
		out = append(out, Event{
			Time: p.Time, Type: EventScan, Source: sourceName(s.key), Kind: p.Kind,
			Proto: protoName(p.Proto), Ports: slices.Clone(w.ports),
			Probes: w.probes, Failures: w.failures, First: w.first, Spoofable: p.Kind.Spoofable(),
		})
	case w.llr <= d.down:
		// A client: the walk starts again, so that a client that turns
		// to scanning is still caught.
		*w = walk{seen: w.seen}
	}
	return out
}

// fanOut counts the host's addresses s contacted within the window.
func (d *Detector) fanOut(s *source, p Probe) (Event, bool) {
	if d.cfg.FanOut < 0 || s.swept {
		return Event{}, false
	}
	dst := p.Dst.Addr().Unmap()
	if _, ok := s.hosts[dst]; !ok && len(s.hosts) >= d.cfg.FanOut {
		for a, t := range s.hosts {
			if p.Time.Sub(t) > d.cfg.FanOutWindow {
				delete(s.hosts, a)
			}
		}
	}
	s.hosts[dst] = p.Time
	if len(s.hosts) < d.cfg.FanOut {
		return Event{}, false
	}
	s.swept = true
	hosts := make([]netip.Addr, 0, len(s.hosts))
	for a := range s.hosts {
		hosts = append(hosts, a)
	}
	slices.SortFunc(hosts, netip.Addr.Compare)
	return Event{Time: p.Time, Type: EventSweep, Source: sourceName(s.key), Kind: p.Kind,
		Proto: protoName(p.Proto), Ports: []uint16{p.Dst.Port()}, Hosts: hosts, Probes: len(hosts),
		Spoofable: p.Kind.Spoofable()}, true
}

// source returns the state of a's source, made if need be, as the most
// recently seen.
func (d *Detector) source(a netip.Addr, now time.Time) *source {
	key := d.SourceKey(a)
	if e, ok := d.sources[key]; ok {
		s := e.Value.(*source)
		s.last = now
		d.lru.MoveToFront(e)
		return s
	}
	for d.lru.Len() >= d.cfg.MaxSources {
		d.drop(d.lru.Back())
	}
	s := &source{key: key, last: now, walks: map[Kind]*walk{}, hosts: map[netip.Addr]time.Time{}}
	d.sources[key] = d.lru.PushFront(s)
	return s
}

// expire forgets the sources quiet for longer than Forget.
func (d *Detector) expire(now time.Time) {
	for e := d.lru.Back(); e != nil; e = d.lru.Back() {
		if now.Sub(e.Value.(*source).last) < d.cfg.Forget {
			return
		}
		d.drop(e)
	}
}

func (d *Detector) drop(e *list.Element) {
	delete(d.sources, e.Value.(*source).key)
	d.lru.Remove(e)
}

// Sources is how many sources the detector follows.
func (d *Detector) Sources() int { return d.lru.Len() }
