package guard

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	nflog "github.com/florianl/go-nflog/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/sockets"
)

// logged is one packet the kernel logged to guard's group.
type logged struct {
	spa    bool
	at     time.Time
	packet []byte
}

// queueLen bounds the logged packets waiting for the detector; beyond it
// they are counted as dropped.
const queueLen = 8192

// Run puts guard's rules into portctl's table in cfg.NetNS, watches until
// ctx ends, then takes the rules out again. emit gets every event, from
// one goroutine at a time. A Config sent on reload replaces cfg: the
// rules, the knocks and the detector's settings (what the detector has
// learned of sources is kept).
func Run(ctx context.Context, cfg Config, emit func(Event), reload <-chan Config) error {
	cfg = cfg.withDefaults()
	nsfd := 0
	if cfg.NetNS != "" {
		f, err := os.Open(cfg.NetNS)
		if err != nil {
			return fmt.Errorf("guard: network namespace: %w", err)
		}
		defer f.Close()
		nsfd = int(f.Fd())
	}
	opts := firewall.Options{NetNS: cfg.NetNS}

	queue := make(chan logged, queueLen)
	var dropped atomic.Int64
	// The kernel batches log messages: up to 32, or 50 ms (its default,
	// 100 or a second, would hold a slow scan's probes back that long).
	nf, err := nflog.Open(&nflog.Config{NetNS: nsfd, Group: cfg.Group, Copymode: nflog.CopyPacket, Bufsize: 1500,
		QThresh: 32, Timeout: 5})
	if err != nil {
		return permission(fmt.Errorf("guard: nflog: %w", err))
	}
	defer nf.Close()
	nf.SetOption(netlink.NoENOBUFS, true)
	nf.Con.SetReadBuffer(4 << 20)
	logCtx, stopLog := context.WithCancel(context.Background())
	defer stopLog()
	hook := func(a nflog.Attribute) int {
		if a.Payload == nil {
			return 0
		}
		l := logged{at: time.Now(), packet: append([]byte(nil), *a.Payload...)}
		if a.Prefix != nil && *a.Prefix == firewall.GuardSPAPrefix {
			l.spa = true
		}
		select {
		case queue <- l:
		default:
			dropped.Add(1)
		}
		return 0
	}
	onErr := func(err error) int {
		if logCtx.Err() != nil {
			return 1 // stopping
		}
		return 0 // an overrun: the kernel dropped messages; read on
	}
	if err := nf.RegisterWithErrorFunc(logCtx, hook, onErr); err != nil {
		// The kernel refuses to bind a group another socket holds with
		// EPERM, as it refuses the unprivileged.
		if strings.Contains(err.Error(), unix.EPERM.Error()) && os.Geteuid() == 0 {
			return fmt.Errorf("guard: nflog group %d is taken by another program (another portctl guard, ulogd...): %w", cfg.Group, ErrGroupTaken)
		}
		return permission(fmt.Errorf("guard: nflog group %d: %w", cfg.Group, err))
	}

	w := newWatcher(cfg, opts, emit)
	if err := firewall.Guard(ctx, opts, w.rules()); err != nil {
		return err
	}
	defer firewall.Unguard(context.Background(), opts)
	emit(Event{Time: time.Now(), Type: EventStart, Message: w.describe()})

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastDropped := int64(0)
	for {
		select {
		case <-ctx.Done():
			emit(Event{Time: time.Now(), Type: EventStop})
			return nil
		case l := <-queue:
			w.handle(ctx, l)
		case c := <-reload:
			c = c.withDefaults()
			c.NetNS, c.Group = cfg.NetNS, cfg.Group
			if err := w.reload(ctx, c); err != nil {
				emit(Event{Time: time.Now(), Type: EventError, Message: "reload: " + err.Error()})
				continue
			}
			emit(Event{Time: time.Now(), Type: EventReload, Message: w.describe()})
		case <-tick.C:
			if n := dropped.Load(); n != lastDropped {
				emit(Event{Time: time.Now(), Type: EventError,
					Message: fmt.Sprintf("%d logged packets dropped: guard could not keep up", n-lastDropped)})
				lastDropped = n
			}
		}
	}
}

// permission makes a refusal for want of privilege an os.ErrPermission.
func permission(err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w (%w)", err, os.ErrPermission)
	}
	return err
}

// watcher is Run's state: the detector, the knocker, the ports let in,
// and the listeners.
type watcher struct {
	cfg     Config
	opts    firewall.Options
	emit    func(Event)
	det     *Detector
	knock   *Knocker
	guarded map[Target]bool
	opened  map[openKey]time.Time // until when
	ls      listeners
}

type openKey struct {
	src netip.Addr
	t   Target
}

func newWatcher(cfg Config, opts firewall.Options, emit func(Event)) *watcher {
	w := &watcher{cfg: cfg, opts: opts, emit: emit, det: NewDetector(cfg.Detect),
		opened: map[openKey]time.Time{}, ls: listeners{netns: cfg.NetNS}}
	w.setKnocks()
	return w
}

func (w *watcher) setKnocks() {
	w.knock = NewKnocker(w.cfg.Knocks, w.cfg.KnockWindow)
	w.guarded = map[Target]bool{}
	for _, t := range w.cfg.guarded() {
		w.guarded[t] = true
	}
}

func (w *watcher) reload(ctx context.Context, c Config) error {
	if err := firewall.Guard(ctx, w.opts, c.rulesOf()); err != nil {
		return err
	}
	learned := w.det
	w.cfg = c
	w.det = NewDetector(c.Detect)
	w.det.flows, w.det.flowOrder, w.det.flowsStart = learned.flows, learned.flowOrder, learned.flowsStart
	w.setKnocks()
	return nil
}

func (w *watcher) rules() firewall.GuardRules { return w.cfg.rulesOf() }

// dedup is how long the kernel keeps a logged contact from being logged
// again (without knocks).
const dedup = time.Minute

// rulesOf is what guard's chains must do for c.
func (c Config) rulesOf() firewall.GuardRules {
	r := firewall.GuardRules{Group: c.Group}
	if len(c.Knocks) == 0 {
		// A contact logged again within a minute is no new first
		// contact: the detector counts each destination once. Knocks
		// need every contact, so that one between knocks resets.
		r.Dedup = dedup
	}
	if c.SPA != nil {
		r.SPAPort = c.SPAPort
	}
	for _, t := range c.guarded() {
		r.Guarded = append(r.Guarded, firewall.GuardPort{Proto: t.Proto, Port: t.Port})
	}
	return r
}

// describe says what guard watches, for the start event.
func (w *watcher) describe() string {
	s := fmt.Sprintf("watching new connections (nflog group %d)", w.cfg.Group)
	for _, r := range w.cfg.Knocks {
		s += "; knock " + r.String()
	}
	if w.cfg.SPA != nil {
		s += fmt.Sprintf("; signed packets on udp/%d", w.cfg.SPAPort)
	}
	if w.cfg.Block > 0 {
		s += "; blocking SYN scanners for " + w.cfg.Block.String()
	}
	return s
}

// handle takes one logged packet.
func (w *watcher) handle(ctx context.Context, l logged) {
	p, err := ParsePacket(l.packet, l.at)
	if err != nil {
		return
	}
	src := p.Src.Addr().Unmap()
	if l.spa {
		w.spa(ctx, p)
		return
	}
	if open, ok, knocked := w.knock.See(p); ok {
		w.open(ctx, src, open, w.cfg.OpenFor, Event{Time: p.Time, Type: EventKnock, Source: src.String(),
			Proto: protoName(open.Proto), Ports: []uint16{open.Port}})
		return
	} else if knocked {
		return // a knock on the way is no failure
	}
	w.detect(ctx, p)
}

// detect feeds one probe to the detector, with its outcome, and acts on
// the events it decides.
func (w *watcher) detect(ctx context.Context, p Probe) {
	src := p.Src.Addr().Unmap()
	o := Outcome(w.ls.listening(ctx, p.Proto, p.Dst))
	if o == Success && w.guarded[Target{p.Proto, p.Dst.Port()}] && !w.isOpen(src, Target{p.Proto, p.Dst.Port()}, p.Time) {
		o = Failure
	}
	for _, ev := range w.det.See(p, o) {
		w.emit(ev)
		if ev.Type != EventScan || ev.Spoofable || w.cfg.Block <= 0 {
			continue
		}
		if err := firewall.GuardBan(ctx, w.opts, src, w.cfg.Block); err != nil {
			w.emit(Event{Time: time.Now(), Type: EventError, Source: src.String(), Message: "block: " + err.Error()})
			continue
		}
		w.emit(Event{Time: time.Now(), Type: EventBlock, Source: src.String(), For: w.cfg.Block.String()})
	}
}

// spa checks a signed packet and opens what it asks for.
func (w *watcher) spa(ctx context.Context, p Probe) {
	src := p.Src.Addr().Unmap()
	g, err := w.cfg.SPA.CheckSPA(p.Payload, src, p.Time)
	if err != nil {
		w.emit(Event{Time: p.Time, Type: EventRefused, Source: src.String(), Message: err.Error()})
		return
	}
	if !g.Addr.IsValid() {
		g.Addr = src
	}
	if g.For <= 0 {
		g.For = w.cfg.OpenFor
	}
	msg := ""
	if g.Addr != src {
		msg = "sent from " + src.String()
	}
	w.open(ctx, g.Addr.Unmap(), g.Open, g.For, Event{Time: p.Time, Type: EventSPA, Source: g.Addr.String(),
		Proto: protoName(g.Open.Proto), Ports: []uint16{g.Open.Port}, Message: msg})
}

// open lets src in to t for d, and says so with ev.
func (w *watcher) open(ctx context.Context, src netip.Addr, t Target, d time.Duration, ev Event) {
	if err := firewall.GuardOpen(ctx, w.opts, src, firewall.GuardPort{Proto: t.Proto, Port: t.Port}, d); err != nil {
		w.emit(Event{Time: time.Now(), Type: EventError, Source: src.String(), Message: "open " + t.String() + ": " + err.Error()})
		return
	}
	w.opened[openKey{src, t}] = ev.Time.Add(d)
	for k, until := range w.opened {
		if ev.Time.After(until) {
			delete(w.opened, k)
		}
	}
	ev.For = d.String()
	w.emit(ev)
}

func (w *watcher) isOpen(src netip.Addr, t Target, at time.Time) bool {
	until, ok := w.opened[openKey{src, t}]
	return ok && at.Before(until)
}

// listeners caches which ports listen in the namespace.
type listeners struct {
	netns string
	at    time.Time
	set   map[listenKey]bool
}

type listenKey struct {
	proto uint8
	addr  netip.Addr // the unspecified address for a wildcard
	port  uint16
}

// listening says whether a socket listens on dst. The table is read again
// when it is a second old, or on a miss when it is 100 ms old: a server
// that just started is found.
func (l *listeners) listening(ctx context.Context, proto uint8, dst netip.AddrPort) bool {
	now := time.Now()
	if now.Sub(l.at) > time.Second {
		l.refresh(ctx, now)
	}
	if l.has(proto, dst) {
		return true
	}
	if now.Sub(l.at) > 100*time.Millisecond {
		l.refresh(ctx, now)
		return l.has(proto, dst)
	}
	return false
}

func (l *listeners) has(proto uint8, dst netip.AddrPort) bool {
	a := dst.Addr().Unmap()
	if l.set[listenKey{proto, a, dst.Port()}] {
		return true
	}
	if l.set[listenKey{proto, netip.IPv6Unspecified(), dst.Port()}] {
		return true // [::] takes IPv4 too unless IPV6_V6ONLY
	}
	return a.Is4() && l.set[listenKey{proto, netip.IPv4Unspecified(), dst.Port()}]
}

func (l *listeners) refresh(ctx context.Context, now time.Time) {
	set := map[listenKey]bool{}
	q := sockets.Query{Protos: sockets.TCP | sockets.UDP, Families: sockets.AllFamilies,
		States: sockets.StatesOf(sockets.Listen), UDPStates: sockets.StatesOf(sockets.Close), NetNS: l.netns}
	err := sockets.Walk(ctx, q, func(s *sockets.Socket) {
		proto := TCP
		if s.Proto == sockets.UDP {
			proto = UDP
		}
		set[listenKey{proto, s.Local.Addr().Unmap(), s.Local.Port()}] = true
	})
	if err == nil {
		l.set, l.at = set, now
	}
}
