//go:build linux

package scan

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/registry"
)

// SYN runs the TCP SYN engine: it sends bare SYN segments through raw
// sockets, batched with sendmmsg, and reads the answers through raw sockets
// with classic BPF filters, without keeping a connection for any probe. A
// probe's sequence number is a keyed hash of its addresses and ports (a
// cookie, see synCookie), so answers are checked without looking anything
// up: SYN+ACK is open, RST closed, an ICMP destination-unreachable or
// silence after the retries filtered. Unanswered ports are retried after a
// timeout that adapts to the measured round trips, and the send rate backs
// off when answers are being lost (see synRate). It works on any interface,
// loopback included.
//
// It asks next for probes until it reports none, and calls emit (from the
// calling goroutine) with each result as it is decided. It needs root or
// CAP_NET_RAW; without, the error wraps os.ErrPermission.
func SYN(ctx context.Context, cfg SynConfig, next func() (Probe, bool), emit func(Result)) error {
	e, err := newSynEngine(cfg)
	if err != nil {
		return err
	}
	defer e.close()
	return e.run(ctx, next, emit)
}

// synBatchLen is how many probes one sendmmsg sends.
const synBatchLen = 64

// synKey names a probe: the target (IPv4 unmapped) and port.
type synKey struct {
	addr netip.Addr
	port uint16
}

// synProbe is a probe awaiting its answer. It is kept small: a scan holds
// one per probe in flight, tens of thousands on a slow link.
type synProbe struct {
	key    synKey
	host   string // Probe.Host
	sent   int64  // the latest try, in nanoseconds since the scan began
	prev   int64  // the try before it
	tries  int
	done   bool
	mapped bool // Probe.Addr was an IPv4-mapped IPv6 address
}

// addr returns the probe's address as it was given.
func (p *synProbe) addr() netip.Addr {
	if p.mapped {
		return netip.AddrFrom16(p.key.addr.As16())
	}
	return p.key.addr
}

// synSent is one try in the timeout queue.
type synSent struct {
	p   *synProbe
	try int
}

// stale reports whether the try no longer waits: its probe is finished,
// or a later try replaced it.
func (s synSent) stale() bool { return s.p.done || s.p.tries != s.try }

// synAnswer is a checked reply, from a reader goroutine.
type synAnswer struct {
	key    synKey
	state  State
	reason Reason
	at     time.Time
}

// synEngine holds one scan's sockets and state.
type synEngine struct {
	cfg    SynConfig
	cookie synCookie
	sport  uint16

	reserve int // a TCP socket bound to sport, keeping it ours
	send4   int // AF_INET, IPPROTO_RAW: IPv4 packets with our header
	send6   int // AF_INET6, IPPROTO_TCP: TCP segments, -1 without IPv6

	files   []*os.File // the receiving sockets
	answers chan []synAnswer
	stop    chan struct{}
	wg      sync.WaitGroup

	ipID uint16

	sources map[netip.Addr]netip.Addr // route source per target
}

func newSynEngine(cfg SynConfig) (*synEngine, error) {
	e := &synEngine{
		cfg: cfg, reserve: -1, send4: -1, send6: -1,
		answers: make(chan []synAnswer, 1024),
		stop:    make(chan struct{}),
		sources: map[netip.Addr]netip.Addr{},
	}
	var key [18]byte
	rand.Read(key[:])
	e.cookie = synCookie{binary.LittleEndian.Uint64(key[0:]), binary.LittleEndian.Uint64(key[8:])}
	e.ipID = binary.LittleEndian.Uint16(key[16:])
	ok := false
	defer func() {
		if !ok {
			e.close()
		}
	}()
	var err error
	if e.reserve, e.sport, err = reservePort(cfg.SourcePort); err != nil {
		return nil, err
	}
	if e.send4, err = rawSocket(unix.AF_INET, unix.IPPROTO_RAW); err != nil {
		return nil, err
	}
	unix.SetsockoptInt(e.send4, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
	recv4, err := rawSocket(unix.AF_INET, unix.IPPROTO_TCP)
	if err != nil {
		return nil, err
	}
	if err := e.addReader(recv4, tcp4Filter(e.sport), reader4(e.decodeTCP4)); err != nil {
		return nil, err
	}
	icmp4, err := rawSocket(unix.AF_INET, unix.IPPROTO_ICMP)
	if err != nil {
		return nil, err
	}
	if err := e.addReader(icmp4, icmp4Filter(), reader4(e.decodeICMP4)); err != nil {
		return nil, err
	}
	if err := e.openIPv6(); err != nil {
		return nil, err
	}
	ok = true
	return e, nil
}

// openIPv6 opens the IPv6 sockets; a kernel without IPv6 leaves send6 -1.
func (e *synEngine) openIPv6() error {
	var err error
	if e.send6, err = rawSocket(unix.AF_INET6, unix.IPPROTO_TCP); err != nil {
		e.send6 = -1
		if errors.Is(err, unix.EAFNOSUPPORT) {
			return nil
		}
		return err
	}
	// This socket only sends: let it keep none of the TCP it is shown.
	if err := attachFilter(e.send6, []unix.SockFilter{bpfRet(0)}); err != nil {
		return err
	}
	unix.SetsockoptInt(e.send6, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
	recv6, err := rawSocket(unix.AF_INET6, unix.IPPROTO_TCP)
	if err != nil {
		return err
	}
	if err := unix.SetsockoptInt(recv6, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
		unix.Close(recv6)
		return fmt.Errorf("scan: IPV6_RECVPKTINFO: %w", err)
	}
	if err := e.addReader(recv6, tcp6Filter(e.sport), e.readTCP6); err != nil {
		return err
	}
	icmp6, err := rawSocket(unix.AF_INET6, unix.IPPROTO_ICMPV6)
	if err != nil {
		return err
	}
	// ICMP6_FILTER (RFC 3542, linux/icmpv6.h): a set bit blocks a type.
	var f unix.ICMPv6Filter
	for i := range f.Data {
		f.Data[i] = ^uint32(0)
	}
	f.Data[icmp6Unreach>>5] &^= 1 << (icmp6Unreach & 31)
	if err := unix.SetsockoptICMPv6Filter(icmp6, unix.IPPROTO_ICMPV6, 1, &f); err != nil {
		unix.Close(icmp6)
		return fmt.Errorf("scan: ICMP6_FILTER: %w", err)
	}
	if err := e.addReader(icmp6, nil, e.readICMP6); err != nil {
		return err
	}
	return nil
}

// rawSocket opens a raw socket, with the permission error the CLI turns
// into advice.
func rawSocket(family, proto int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return -1, fmt.Errorf("scan: SYN scan needs root or CAP_NET_RAW; use -sT: %w", os.ErrPermission)
		}
		return -1, fmt.Errorf("scan: raw socket: %w", err)
	}
	return fd, nil
}

// reservePort binds a TCP socket to port (0: one the kernel picks) on
// every address, so that no connection of this host uses the port while
// the scan sends from it. The socket never listens: the kernel still
// answers our probes' SYN+ACKs with a reset, which releases the targets.
func reservePort(port uint16) (int, uint16, error) {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	var sa unix.Sockaddr = &unix.SockaddrInet6{Port: int(port)}
	if err == nil {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	} else {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		sa = &unix.SockaddrInet4{Port: int(port)}
	}
	if err != nil {
		return -1, 0, fmt.Errorf("scan: socket: %w", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("scan: reserve source port %d: %w", port, err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("scan: getsockname: %w", err)
	}
	switch got := got.(type) {
	case *unix.SockaddrInet6:
		port = uint16(got.Port)
	case *unix.SockaddrInet4:
		port = uint16(got.Port)
	}
	return fd, port, nil
}

// addReader attaches filter to fd, makes its receive buffer large and
// starts a goroutine that reads it with read until the engine closes.
func (e *synEngine) addReader(fd int, filter []unix.SockFilter, read func(fd int, out []synAnswer) ([]synAnswer, error)) error {
	if filter != nil {
		if err := attachFilter(fd, filter); err != nil {
			unix.Close(fd)
			return err
		}
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20) != nil {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 32<<20)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("scan: set non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(fd), "raw")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return fmt.Errorf("scan: %w", err)
	}
	e.files = append(e.files, f)
	e.wg.Go(func() {
		var out []synAnswer
		for {
			out = out[:0]
			var rerr error
			err := rc.Read(func(fd uintptr) bool {
				out, rerr = read(int(fd), out)
				// Done when something came, or on an error other than
				// "nothing to read".
				return len(out) > 0 || !errors.Is(rerr, unix.EAGAIN)
			})
			if err != nil { // closed
				return
			}
			// An error with nothing read (EINTR, or one the socket reports
			// about an earlier packet) means read again.
			if len(out) > 0 {
				batch := make([]synAnswer, len(out))
				copy(batch, out)
				select {
				case e.answers <- batch:
				case <-e.stop:
					return
				}
			}
		}
	})
	return nil
}

// close stops the readers and closes every socket.
func (e *synEngine) close() {
	close(e.stop)
	for _, f := range e.files {
		f.Close()
	}
	e.wg.Wait()
	for _, fd := range []int{e.reserve, e.send4, e.send6} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// run is the engine's loop: it sends probes as the window and the rate
// allow, matches answers to probes, and times out the unanswered.
func (e *synEngine) run(ctx context.Context, next func() (Probe, bool), emit func(Result)) error {
	retries := e.cfg.retries()
	window := e.cfg.window()
	est := rttEstimator{fixed: e.cfg.Timeout}
	rate := newSynRate(e.cfg.Rate)
	pending := map[synKey]*synProbe{}
	// Probe times are kept as nanoseconds since epoch (see synProbe).
	epoch := time.Now()
	since := func(t time.Time) int64 { return int64(t.Sub(epoch)) }
	at := func(ns int64) time.Time { return epoch.Add(time.Duration(ns)) }
	// Hosts that answered some probe: silence from them after the retries
	// is likelier a lost packet (a bottleneck, random loss) than a
	// filtered port, so their probes get extraRetries more tries, and
	// each such timeout counts as a loss for the rate controller. The
	// extra tries back off exponentially (see backoff), so that they
	// outlast a spell of congestion rather than all fall into it.
	responded := map[netip.Addr]bool{}
	const extraRetries = 4
	var later synLater
	// A probe whose tries ran out before its host answered anything is
	// held back for a while rather than called filtered at once: if the
	// host answers some other probe meanwhile (its first answers were
	// lost, say), the held probes get the extra tries too. See synHeld.
	var held synHeld
	var queue []synSent // tries in the order sent, from qhead on
	qhead := 0
	var retry []*synProbe
	done := false
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	finish := func(p *synProbe, st State, reason Reason, rtt time.Duration) {
		p.done = true
		delete(pending, p.key)
		emit(Result{Addr: p.addr(), Port: p.key.port, Proto: registry.TCP, State: st, Reason: reason, RTT: rtt, Tries: p.tries, Host: p.host})
	}
	// unheld calls filtered the held probes the hold let go.
	unheld := func(ps []*synProbe) {
		for _, p := range ps {
			finish(p, Filtered, ReasonNoResponse, 0)
		}
	}
	handle := func(batch []synAnswer) {
		for _, a := range batch {
			p := pending[a.key]
			if p == nil {
				if p = held.take(a.key); p == nil {
					continue // late, or a duplicate
				}
			}
			rtt := a.at.Sub(at(p.sent))
			if p.tries == 1 { // Karn: only unambiguous samples
				est.add(rtt)
			}
			rate.answered(p.tries > 1, at(p.prev))
			if (a.state == Open || a.state == Closed) && !responded[p.key.addr] {
				responded[p.key.addr] = true
				// Its held probes are worth more tries now.
				for _, r := range held.release(p.key.addr) {
					pending[r.key] = r
					retry = append(retry, r)
				}
			}
			finish(p, a.state, a.reason, rtt)
		}
	}
	// Sending: batches go to sender goroutines, one per CPU, so that the
	// kernel's work for each packet (all of it, on loopback: the target's
	// answer is made in the sender's softirq) spreads over the CPUs. They
	// come back with the probes the kernel refused to send.
	senders := max(1, min(runtime.GOMAXPROCS(0), 4))
	nbatch := 2 * senders
	sendq := make(chan *synBatch, nbatch)
	sentq := make(chan *synBatch, nbatch)
	var swg sync.WaitGroup
	for range senders {
		swg.Go(func() {
			for b := range sendq {
				b.failed = b.failed[:0]
				b.err = b.flush(func(i int, err error) {
					b.failed = append(b.failed, synFailure{b.keys[i], err})
				})
				sentq <- b
			}
		})
	}
	free := make([]*synBatch, nbatch)
	for i := range free {
		free[i] = newSynBatch()
	}
	out := 0 // batches with the senders
	defer func() {
		close(sendq)
		swg.Wait()
	}()
	var cur4, cur6 *synBatch
	// returned takes back a batch from the senders.
	returned := func(b *synBatch) error {
		out--
		free = append(free, b)
		for _, f := range b.failed {
			if p := pending[f.key]; p != nil {
				st, reason := classify(f.err)
				finish(p, st, reason, 0)
			}
		}
		return b.err
	}
	// batch returns the batch being filled for fd, waiting for the
	// senders to give one back when all are out.
	batch := func(cur **synBatch, fd int, v6 bool) (*synBatch, error) {
		if *cur == nil {
			for len(free) == 0 {
				if err := returned(<-sentq); err != nil {
					return nil, err
				}
			}
			b := free[len(free)-1]
			free = free[:len(free)-1]
			b.fd, b.v6, b.n = fd, v6, 0
			*cur = b
		}
		return *cur, nil
	}
	// flush hands the batches being filled to the senders.
	flush := func() {
		for _, cur := range []**synBatch{&cur4, &cur6} {
			if *cur != nil && (*cur).n > 0 {
				sendq <- *cur
				out++
				*cur = nil
			}
		}
	}
	// start queues one try of p into a batch; it returns false when p is
	// finished at once.
	start := func(p *synProbe, now time.Time) (bool, error) {
		if p.done { // answered while it waited for its retry
			return false, nil
		}
		src, err := e.source(p.key.addr) // cached
		if err != nil {
			st, reason := classify(err)
			finish(p, st, reason, 0)
			return false, nil
		}
		if p.tries == 0 {
			pending[p.key] = p
		}
		p.tries++
		p.prev, p.sent = p.sent, since(now)
		var b *synBatch
		switch {
		case p.key.addr.Is4():
			b, err = batch(&cur4, e.send4, false)
		case e.send6 >= 0:
			b, err = batch(&cur6, e.send6, true)
		default: // no IPv6 here
			finish(p, Filtered, ReasonError, 0)
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if p.done { // a batch that came back finished it
			return false, nil
		}
		seq := e.cookie.seq(src, p.key.addr, e.sport, p.key.port)
		e.ipID++
		b.add(p.key, src, p.key.addr, e.sport, seq, e.ipID)
		queue = append(queue, synSent{p, p.tries})
		return true, nil
	}

	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Take the answers that are in.
		for drained := false; !drained; {
			select {
			case batch := <-e.answers:
				handle(batch)
			default:
				drained = true
			}
		}
		now := time.Now()
		timeout := est.timeout()
		// Tries past their time: retry, or call them filtered.
		for ; qhead < len(queue); qhead++ {
			s := queue[qhead]
			if s.stale() {
				continue
			}
			if now.Sub(at(s.p.sent)) < timeout {
				break
			}
			if s.p.tries <= retries {
				retry = append(retry, s.p)
				continue
			}
			if responded[s.p.key.addr] {
				if extra := s.p.tries - retries; extra <= extraRetries {
					rate.lost(true, at(s.p.sent))
					later.add(now.Add(backoff(timeout, extra)), s.p)
					continue
				}
			} else if held.hold(s.p, now.Add(holdFor(timeout))) {
				delete(pending, s.p.key)
				continue
			}
			finish(s.p, Filtered, ReasonNoResponse, 0)
		}
		unheld(held.expired(now))
		retry = later.due(now, retry)
		if qhead > 1024 && qhead > len(queue)/2 {
			queue = append(queue[:0], queue[qhead:]...)
			qhead = 0
		}
		rate.adjust(now, timeout)
		// Send a batch.
		var wait time.Duration
		queued := 0
		for queued < synBatchLen && len(pending) < window {
			if len(retry) == 0 {
				if done {
					break
				}
				probe, ok := next()
				if !ok {
					done = true
					break
				}
				p := &synProbe{key: synKey{probe.Addr.Unmap(), probe.Port}, host: probe.Host, mapped: probe.Addr.Is4In6()}
				if pending[p.key] != nil {
					// The same port twice while the first is out: the
					// answers could not be told apart.
					emit(Result{Addr: probe.Addr, Port: probe.Port, Proto: registry.TCP, State: Filtered, Reason: ReasonError, Host: probe.Host})
					continue
				}
				// A new probe waits for the rate where the retries do.
				retry = append(retry, p)
			}
			if wait = rate.take(now); wait > 0 {
				break // retry[0] goes first next time
			}
			p := retry[0]
			retry = retry[1:]
			ok, err := start(p, now)
			if err != nil {
				return err
			}
			if ok {
				queued++
			}
		}
		flush()
		for drained := false; !drained; {
			select {
			case b := <-sentq:
				if err := returned(b); err != nil {
					return err
				}
			default:
				drained = true
			}
		}
		if done && len(retry) == 0 && len(pending) == 0 && out == 0 {
			// Nothing is out, so no host can answer any more: what is
			// held back is filtered.
			unheld(held.all())
			return nil
		}
		if queued == synBatchLen && len(pending) < window {
			continue // keep sending; answers are drained on the way
		}
		// Wait for answers, the next timeout or the next send slot.
		d := 50 * time.Millisecond
		for _, s := range queue[qhead:] {
			if !s.stale() {
				d = min(d, max(at(s.p.sent).Add(timeout).Sub(now), 0))
				break
			}
		}
		if wait > 0 {
			d = min(d, wait)
		}
		if at, ok := later.next(); ok {
			d = min(d, max(at.Sub(now), 0))
		}
		if d <= 0 {
			continue
		}
		timer.Reset(d)
		select {
		case batch := <-e.answers:
			handle(batch)
		case b := <-sentq:
			if err := returned(b); err != nil {
				return err
			}
		case <-timer.C:
		case <-ctx.Done():
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// backoff is how long the extra try number extra (from 1) of an answering
// host's probe waits before it is sent: the timeout, doubling with each,
// at most a second.
func backoff(timeout time.Duration, extra int) time.Duration {
	return min(timeout<<min(extra-1, 10), time.Second)
}

// synLater is the tries waiting for their backoff, a min-heap by time
// (container/heap, as the other engines' deadlines).
type synLater []synLaterItem

type synLaterItem struct {
	at time.Time
	p  *synProbe
}

func (l synLater) Len() int           { return len(l) }
func (l synLater) Less(i, j int) bool { return l[i].at.Before(l[j].at) }
func (l synLater) Swap(i, j int)      { l[i], l[j] = l[j], l[i] }
func (l *synLater) Push(x any)        { *l = append(*l, x.(synLaterItem)) }
func (l *synLater) Pop() any {
	old := *l
	it := old[len(old)-1]
	old[len(old)-1] = synLaterItem{}
	*l = old[:len(old)-1]
	return it
}

// add schedules p's next try at at.
func (l *synLater) add(at time.Time, p *synProbe) { heap.Push(l, synLaterItem{at, p}) }

// next returns the earliest time scheduled.
func (l synLater) next() (time.Time, bool) {
	if len(l) == 0 {
		return time.Time{}, false
	}
	return l[0].at, true
}

// due appends to retry the probes whose time has come and that are not
// done, and returns it.
func (l *synLater) due(now time.Time, retry []*synProbe) []*synProbe {
	for len(*l) > 0 && !(*l)[0].at.After(now) {
		if p := heap.Pop(l).(synLaterItem).p; !p.done {
			retry = append(retry, p)
		}
	}
	return retry
}

// synHeld keeps the probes whose tries ran out before their host had
// answered anything, each until a deadline. Deadlines only grow, so the
// probes expire in the order they were held, per host too.
type synHeld struct {
	fifo   []*synProbe
	head   int
	until  []time.Time // parallel to fifo
	byKey  map[synKey]*synProbe
	byAddr map[netip.Addr][]*synProbe
}

// maxHeld bounds the probes held at once; past it a probe is not held.
const maxHeld = 1 << 16

// holdFor is how long a probe is held: long enough for the host's other
// probes, sent meanwhile, to be answered.
func holdFor(timeout time.Duration) time.Duration {
	return time.Second + 4*timeout
}

// hold keeps p until the deadline; false when full.
func (h *synHeld) hold(p *synProbe, until time.Time) bool {
	if len(h.byKey) >= maxHeld {
		return false
	}
	if h.byKey == nil {
		h.byKey = map[synKey]*synProbe{}
		h.byAddr = map[netip.Addr][]*synProbe{}
	}
	h.fifo = append(h.fifo, p)
	h.until = append(h.until, until)
	h.byKey[p.key] = p
	h.byAddr[p.key.addr] = append(h.byAddr[p.key.addr], p)
	return true
}

// take removes and returns the held probe for key, nil if none.
func (h *synHeld) take(key synKey) *synProbe {
	p := h.byKey[key]
	if p != nil {
		delete(h.byKey, key)
		// It stays in fifo and byAddr, where it is skipped as no longer
		// in byKey.
	}
	return p
}

// release removes and returns every probe held for addr.
func (h *synHeld) release(addr netip.Addr) []*synProbe {
	var out []*synProbe
	for _, p := range h.byAddr[addr] {
		if h.byKey[p.key] == p {
			delete(h.byKey, p.key)
			out = append(out, p)
		}
	}
	delete(h.byAddr, addr)
	return out
}

// expired removes and returns the probes whose deadline is not after now.
func (h *synHeld) expired(now time.Time) []*synProbe {
	var out []*synProbe
	for ; h.head < len(h.fifo) && !h.until[h.head].After(now); h.head++ {
		p := h.fifo[h.head]
		h.fifo[h.head] = nil
		if l := h.byAddr[p.key.addr]; len(l) > 0 && l[0] == p {
			if len(l) == 1 {
				delete(h.byAddr, p.key.addr)
			} else {
				h.byAddr[p.key.addr] = l[1:]
			}
		}
		if h.byKey[p.key] == p {
			delete(h.byKey, p.key)
			out = append(out, p)
		}
	}
	if h.head > 1024 && h.head > len(h.fifo)/2 {
		n := copy(h.fifo, h.fifo[h.head:])
		copy(h.until, h.until[h.head:])
		h.fifo, h.until, h.head = h.fifo[:n], h.until[:n], 0
	}
	return out
}

// all removes and returns every probe still held.
func (h *synHeld) all() []*synProbe {
	var out []*synProbe
	for _, p := range h.fifo[h.head:] {
		if h.byKey[p.key] == p {
			out = append(out, p)
		}
	}
	*h = synHeld{}
	return out
}

// source returns the address the routing table picks to reach dst: a UDP
// socket connected to dst (which sends nothing) is bound to it. Answers are
// cached for the scan (dropped wholesale when 16,384 are kept).
func (e *synEngine) source(dst netip.Addr) (netip.Addr, error) {
	if src, ok := e.sources[dst]; ok {
		return src, nil
	}
	fam := unix.AF_INET
	var sa unix.Sockaddr
	if dst.Is4() {
		sa = &unix.SockaddrInet4{Port: 9, Addr: dst.As4()}
	} else {
		fam = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{Port: 9, Addr: dst.As16()}
		if z := dst.Zone(); z != "" {
			if ifi, err := netInterfaceIndex(z); err == nil {
				sa6.ZoneId = uint32(ifi)
			}
		}
		sa = sa6
	}
	fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return netip.Addr{}, err
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, sa); err != nil {
		return netip.Addr{}, err
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		return netip.Addr{}, err
	}
	var src netip.Addr
	switch got := got.(type) {
	case *unix.SockaddrInet4:
		src = netip.AddrFrom4(got.Addr)
	case *unix.SockaddrInet6:
		src = netip.AddrFrom16(got.Addr)
	}
	if len(e.sources) >= 1<<14 {
		clear(e.sources)
	}
	e.sources[dst] = src
	return src, nil
}

// mmsghdr mirrors struct mmsghdr from linux/socket.h: x/sys/unix has no
// sendmmsg or recvmmsg, so the engine calls them itself.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// synBatch is up to synBatchLen probes for one sendmmsg. Its buffers are
// reused from batch to batch. It is not safe for concurrent use.
type synBatch struct {
	fd     int
	v6     bool
	n      int
	failed []synFailure
	err    error
	keys   [synBatchLen]synKey
	pkts   [synBatchLen][synPacket4Len]byte
	sa4    [synBatchLen]unix.RawSockaddrInet4
	sa6    [synBatchLen]unix.RawSockaddrInet6
	oob    [synBatchLen][]byte
	iov    [synBatchLen]unix.Iovec
	hdrs   [synBatchLen]mmsghdr
}

// synFailure is a probe the kernel would not send.
type synFailure struct {
	key synKey
	err error
}

func newSynBatch() *synBatch {
	b := &synBatch{}
	for i := range b.oob {
		b.oob[i] = make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	}
	return b
}

// add queues a SYN from src:sport to key with sequence number seq.
func (b *synBatch) add(key synKey, src, dst netip.Addr, sport uint16, seq uint32, id uint16) {
	i := b.n
	b.n++
	b.keys[i] = key
	h := &b.hdrs[i].hdr
	*h = unix.Msghdr{}
	var pkt []byte
	if !b.v6 {
		pkt = buildSYN4(b.pkts[i][:], src, dst, sport, key.port, seq, id)
		b.sa4[i] = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()}
		h.Name = (*byte)(unsafe.Pointer(&b.sa4[i]))
		h.Namelen = unix.SizeofSockaddrInet4
	} else {
		pkt = buildSYN6(b.pkts[i][:], src, dst, sport, key.port, seq)
		b.sa6[i] = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
		var ifindex uint32
		if z := dst.Zone(); z != "" {
			if ifi, err := netInterfaceIndex(z); err == nil {
				ifindex = uint32(ifi)
				b.sa6[i].Scope_id = ifindex
			}
		}
		h.Name = (*byte)(unsafe.Pointer(&b.sa6[i]))
		h.Namelen = unix.SizeofSockaddrInet6
		// IPV6_PKTINFO: send from the source the checksum was made for.
		oob := b.oob[i]
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		cm.Level, cm.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		cm.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
		pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
		pi.Addr, pi.Ifindex = src.As16(), ifindex
		h.Control = &oob[0]
		h.SetControllen(len(oob))
	}
	b.iov[i] = unix.Iovec{Base: &pkt[0]}
	b.iov[i].SetLen(len(pkt))
	h.Iov = &b.iov[i]
	h.Iovlen = 1
}

// flush sends the queued probes with sendmmsg. A probe the kernel will
// not send (no route, say) is passed to failed with the error; errors
// about the socket itself are returned.
func (b *synBatch) flush(failed func(i int, err error)) error {
	defer func() { b.n = 0 }()
	for i := 0; i < b.n; {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(b.fd), uintptr(unsafe.Pointer(&b.hdrs[i])), uintptr(b.n-i), 0, 0, 0)
		switch {
		case errno == 0:
			i += int(r)
		case errno == unix.EINTR:
		case errno == unix.ENOBUFS || errno == unix.EAGAIN:
			time.Sleep(time.Millisecond) // the device queue is full
		case errno == unix.EBADF || errno == unix.ENOTSOCK || errno == unix.EFAULT || errno == unix.EINVAL:
			return fmt.Errorf("scan: sendmmsg: %w", errno)
		default: // about this message: its destination
			failed(i, errno)
			i++
		}
	}
	return nil
}

// recvBatch is the buffers for one recvmmsg of IPv4 packets.
type recvBatch struct {
	bufs [synBatchLen][256]byte
	iov  [synBatchLen]unix.Iovec
	hdrs [synBatchLen]mmsghdr
}

func newRecvBatch() *recvBatch {
	b := &recvBatch{}
	for i := range b.hdrs {
		b.iov[i] = unix.Iovec{Base: &b.bufs[i][0]}
		b.iov[i].SetLen(len(b.bufs[i]))
		b.hdrs[i].hdr.Iov = &b.iov[i]
		b.hdrs[i].hdr.Iovlen = 1
	}
	return b
}

// recv reads up to synBatchLen packets without blocking.
func (b *recvBatch) recv(fd int) (int, error) {
	r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.hdrs[0])), synBatchLen, unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func (b *recvBatch) packet(i int) []byte {
	return b.bufs[i][:min(int(b.hdrs[i].len), len(b.bufs[i]))]
}

// decodeTCP4 checks an IPv4 TCP answer to a probe.
func (e *synEngine) decodeTCP4(pkt []byte) (synAnswer, bool) {
	r, err := parseTCP4(pkt)
	if err != nil || r.DstPort != e.sport || !r.valid(e.cookie) {
		return synAnswer{}, false
	}
	st, reason, ok := r.state()
	return synAnswer{key: synKey{r.Src, r.SrcPort}, state: st, reason: reason}, ok
}

// decodeICMP4 checks an ICMP destination-unreachable error about a probe.
func (e *synEngine) decodeICMP4(pkt []byte) (synAnswer, bool) {
	r, err := parseICMP4(pkt)
	if err != nil || r.SrcPort != e.sport || !r.valid(e.cookie) {
		return synAnswer{}, false
	}
	return synAnswer{key: synKey{r.Dst, r.DstPort}, state: Filtered, reason: r.Reason}, true
}

// reader4 returns a read function for addReader that reads IPv4 packets
// with recvmmsg and keeps those decode accepts. It has buffers of its own:
// make one per reader.
func reader4(decode func([]byte) (synAnswer, bool)) func(fd int, out []synAnswer) ([]synAnswer, error) {
	b := newRecvBatch()
	return func(fd int, out []synAnswer) ([]synAnswer, error) {
		for {
			n, err := b.recv(fd)
			if err != nil {
				return out, err
			}
			now := time.Now()
			for i := range n {
				if a, ok := decode(b.packet(i)); ok {
					a.at = now
					out = append(out, a)
				}
			}
			if n < synBatchLen {
				return out, nil
			}
		}
	}
}

// readTCP6 reads IPv6 TCP answers: the kernel strips the IPv6 header, so
// the source comes from the socket address and our address from
// IPV6_PKTINFO.
func (e *synEngine) readTCP6(fd int, out []synAnswer) ([]synAnswer, error) {
	var buf [256]byte
	oob := make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	for range synBatchLen {
		n, oobn, _, from, err := unix.Recvmsg(fd, buf[:], oob, unix.MSG_DONTWAIT)
		if err != nil {
			return out, err
		}
		sa, ok := from.(*unix.SockaddrInet6)
		if !ok {
			continue
		}
		dst, ok := pktinfoDst(oob[:oobn])
		if !ok {
			continue
		}
		r, err := parseTCP(buf[:n], netip.AddrFrom16(sa.Addr), dst)
		if err != nil || r.DstPort != e.sport || !r.valid(e.cookie) {
			continue
		}
		if st, reason, ok := r.state(); ok {
			out = append(out, synAnswer{key: synKey{r.Src, r.SrcPort}, state: st, reason: reason, at: time.Now()})
		}
	}
	return out, nil
}

// pktinfoDst finds the destination address in an IPV6_PKTINFO message.
func pktinfoDst(oob []byte) (netip.Addr, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= 16 {
			return netip.AddrFrom16([16]byte(m.Data[:16])), true
		}
	}
	return netip.Addr{}, false
}

// readICMP6 reads ICMPv6 destination-unreachable errors about our probes.
func (e *synEngine) readICMP6(fd int, out []synAnswer) ([]synAnswer, error) {
	var buf [512]byte
	for range synBatchLen {
		n, from, err := unix.Recvfrom(fd, buf[:], unix.MSG_DONTWAIT)
		if err != nil {
			return out, err
		}
		sa, ok := from.(*unix.SockaddrInet6)
		if !ok {
			continue
		}
		r, err := parseICMP6(buf[:n], netip.AddrFrom16(sa.Addr))
		if err != nil || r.SrcPort != e.sport || !r.valid(e.cookie) {
			continue
		}
		out = append(out, synAnswer{key: synKey{r.Dst, r.DstPort}, state: Filtered, reason: r.Reason, at: time.Now()})
	}
	return out, nil
}

// Classic BPF programs for the receiving sockets (linux/filter.h).

func bpfStmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
func bpfJump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}
func bpfRet(k uint32) unix.SockFilter { return bpfStmt(unix.BPF_RET|unix.BPF_K, k) }

// tcpFlagsTail keeps a segment whose flags byte is in A when it is a RST
// or a SYN+ACK.
func tcpFlagsTail() []unix.SockFilter {
	return []unix.SockFilter{
		bpfJump(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, tcpRST, 2, 0),
		bpfStmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, tcpSYN|tcpACK),
		bpfJump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, tcpSYN|tcpACK, 0, 1),
		bpfRet(0xffff),
		bpfRet(0),
	}
}

// tcp4Filter keeps IPv4 TCP segments (the IP header first) to sport with
// SYN+ACK or RST set, that are not later fragments.
func tcp4Filter(sport uint16) []unix.SockFilter {
	return append([]unix.SockFilter{
		bpfStmt(unix.BPF_LD|unix.BPF_H|unix.BPF_ABS, 6),
		bpfJump(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, 0x1fff, 5, 0), // fragment → drop
		bpfStmt(unix.BPF_LDX|unix.BPF_B|unix.BPF_MSH, 0),             // X = IP header length
		bpfStmt(unix.BPF_LD|unix.BPF_H|unix.BPF_IND, 2),              // destination port
		bpfJump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(sport), 0, 2),
		bpfStmt(unix.BPF_LD|unix.BPF_B|unix.BPF_IND, 13), // flags
		bpfStmt(unix.BPF_JMP|unix.BPF_JA, 1),
		bpfRet(0),
	}, tcpFlagsTail()...)
}

// tcp6Filter keeps IPv6 TCP segments (the TCP header first: the kernel
// has pulled the IPv6 header) to sport with SYN+ACK or RST set.
func tcp6Filter(sport uint16) []unix.SockFilter {
	return append([]unix.SockFilter{
		bpfStmt(unix.BPF_LD|unix.BPF_H|unix.BPF_ABS, 2),
		bpfJump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(sport), 1, 0),
		bpfRet(0),
		bpfStmt(unix.BPF_LD|unix.BPF_B|unix.BPF_ABS, 13),
	}, tcpFlagsTail()...)
}

// icmp4Filter keeps ICMP destination-unreachable messages.
func icmp4Filter() []unix.SockFilter {
	return []unix.SockFilter{
		bpfStmt(unix.BPF_LDX|unix.BPF_B|unix.BPF_MSH, 0),
		bpfStmt(unix.BPF_LD|unix.BPF_B|unix.BPF_IND, 0), // ICMP type
		bpfJump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, icmp4Unreach, 0, 1),
		bpfRet(0xffff),
		bpfRet(0),
	}
}

func attachFilter(fd int, prog []unix.SockFilter) error {
	fp := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fp); err != nil {
		return fmt.Errorf("scan: attach BPF filter: %w", err)
	}
	return nil
}
