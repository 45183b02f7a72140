package scan

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/registry"
)

// attempt is one probe being tried.
type attempt struct {
	probe    Probe
	fd       int
	polled   bool // fd is registered with the epoll set
	start    time.Time
	deadline time.Time
	tries    int
	index    int // in the deadline heap; -1 when not in it
}

// deadlines orders attempts by deadline (container/heap).
type deadlines []*attempt

func (h deadlines) Len() int           { return len(h) }
func (h deadlines) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h deadlines) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *deadlines) Push(x any)        { a := x.(*attempt); a.index = len(*h); *h = append(*h, a) }
func (h *deadlines) Pop() any {
	old := *h
	a := old[len(old)-1]
	*h = old[:len(old)-1]
	a.index = -1
	return a
}

// Connect runs the TCP connect engine: non-blocking connects driven by
// epoll, refused sockets connected again for the next port, the others
// closed, with SO_LINGER 0 when the connection was made (a reset, so no
// TIME-WAIT piles up), unanswered ports retried, the timeout adapting to
// measured round trips. It asks next for probes until it reports none, and
// calls emit with each result once it is decided; with several workers
// (one per CPU), in batches. Calls of next and emit come from the
// engine's goroutines, one at a time, and all before Connect returns.
func Connect(ctx context.Context, cfg ConnectConfig, next func() (Probe, bool), emit func(Result)) error {
	var rl unix.Rlimit
	limit := 0
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil {
		limit = int(min(rl.Cur, 1<<20))
	}
	conc := cfg.concurrency(limit)
	// One worker per CPU, each with its own epoll and a share of the
	// window: connect() costs most of a scan, in the kernel, and one
	// thread would leave the other CPUs idle. next and emit stay
	// serialised, as callers expect.
	workers := max(1, min(runtime.GOMAXPROCS(0), 8, conc/16))
	if workers == 1 {
		return connectWorker(ctx, cfg, conc, nil, next, emit)
	}
	var mu sync.Mutex
	if cfg.Rate > 0 {
		cfg.Rate = max(1, cfg.Rate/workers)
	}
	errc := make(chan error, workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < workers; w++ {
		go func() {
			err := connectWorker(ctx, cfg, conc/workers, &mu, next, emit)
			if err != nil {
				cancel()
			}
			errc <- err
		}()
	}
	var first error
	for w := 0; w < workers; w++ {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// connectBurst bounds the attempts a worker starts between two looks at
// its epoll set and the context: where every connect is answered at once
// (loopback) the window never fills.
const connectBurst = 256

// connWorker is one epoll loop of the connect engine. It is not safe for
// concurrent use.
type connWorker struct {
	next func() (Probe, bool)
	emit func(Result)
	// With several workers, mu serialises their calls of next and emit,
	// and each takes probes and hands in results by the batch: the lock
	// once a batch, not twice a port, which had the workers wait on each
	// other more than they worked.
	mu      *sync.Mutex
	batch   int
	probes  []Probe // taken from next, not yet started: probes[taken:]
	taken   int
	results []Result // not yet emitted

	retries int
	est     rttEstimator
	cw      *congestion
	pace    pacer
	ep      int

	inflight map[int]*attempt // by socket
	dl       deadlines
	retry    []*attempt // unanswered attempts waiting for another try
	free     []*attempt // finished attempts, for new probes
	// spare holds sockets whose connect was refused, for IPv4 and IPv6:
	// such a socket is back in the CLOSE state and takes another connect,
	// which saves a socket() and a close() per closed port, most of a
	// scan.
	spare [2][]spareSocket
	// Second connects (see start): how many were made, and how many in a
	// row found the attempt still in progress.
	peeks, peekMisses int

	sa4 unix.SockaddrInet4
	sa6 unix.SockaddrInet6
	ev  unix.EpollEvent
}

// spareSocket is a refused socket kept for another connect.
type spareSocket struct {
	fd     int
	polled bool // registered (one-shot, disarmed) with the epoll set
}

// maxSpare bounds the refused sockets a worker keeps per family.
const maxSpare = 64

// connectWorker is one epoll loop of the connect engine with a window of
// conc attempts. mu, when not nil, is held to call next and emit.
func connectWorker(ctx context.Context, cfg ConnectConfig, conc int, mu *sync.Mutex, next func() (Probe, bool), emit func(Result)) error {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("scan: epoll: %w", err)
	}
	w := &connWorker{next: next, emit: emit, mu: mu, retries: cfg.retries(), est: rttEstimator{fixed: cfg.Timeout},
		cw: newCongestion(conc), pace: newPacer(cfg.Rate), ep: ep, inflight: map[int]*attempt{}}
	// A batch small beside the window, so that probes one worker holds
	// do not wait while another has room.
	w.batch = max(1, min(64, conc/8))
	defer w.close()
	return w.run(ctx)
}

// nextProbe returns the next probe to start, from the worker's batch.
func (w *connWorker) nextProbe() (Probe, bool) {
	if w.mu == nil {
		return w.next()
	}
	if w.taken == len(w.probes) {
		w.probes, w.taken = w.probes[:0], 0
		w.mu.Lock()
		w.emitLocked()
		for len(w.probes) < w.batch {
			p, ok := w.next()
			if !ok {
				break
			}
			w.probes = append(w.probes, p)
		}
		w.mu.Unlock()
		if len(w.probes) == 0 {
			return Probe{}, false
		}
	}
	w.taken++
	return w.probes[w.taken-1], true
}

// emitResult emits r, or adds it to the batch.
func (w *connWorker) emitResult(r Result) {
	if w.mu == nil {
		w.emit(r)
		return
	}
	w.results = append(w.results, r)
	if len(w.results) >= w.batch {
		w.flush()
	}
}

// flush emits the batch of results.
func (w *connWorker) flush() {
	if len(w.results) > 0 {
		w.mu.Lock()
		w.emitLocked()
		w.mu.Unlock()
	}
}

// emitLocked emits the batch of results; mu is held.
func (w *connWorker) emitLocked() {
	for _, r := range w.results {
		w.emit(r)
	}
	clear(w.results)
	w.results = w.results[:0]
}

// close emits what is left and closes the worker's sockets and epoll set.
func (w *connWorker) close() {
	w.flush()
	for fd := range w.inflight {
		unix.Close(fd)
	}
	for _, fds := range w.spare {
		for _, s := range fds {
			unix.Close(s.fd)
		}
	}
	unix.Close(w.ep)
}

// run starts attempts until the window is full (connectBurst at most),
// then handles answers and deadlines, until every probe is decided.
func (w *connWorker) run(ctx context.Context) error {
	events := make([]unix.EpollEvent, 256)
	done := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Fill the window: retries first, then new probes. more: there may
		// be attempts to start at once.
		var paceWait time.Duration
		blocked, more := false, true
		for n := 0; n < connectBurst && len(w.inflight) < w.cw.size(); n++ {
			now := time.Now()
			if d := w.pace.wait(now); d > 0 {
				paceWait = d
				break
			}
			var a *attempt
			if len(w.retry) > 0 {
				a, w.retry = w.retry[0], w.retry[1:]
			} else if !done {
				p, ok := w.nextProbe()
				if !ok {
					done = true
					more = false
					break
				}
				a = w.newAttempt(p)
			} else {
				more = false
				break
			}
			ok, err := w.start(a, now)
			if err != nil {
				return err
			}
			if !ok {
				w.retry = append([]*attempt{a}, w.retry...)
				blocked = true
				break
			}
		}
		if len(w.inflight) == 0 {
			switch {
			case len(w.retry) == 0 && done:
				return nil
			case blocked:
				// Nothing in flight will free a descriptor: back off.
				w.flush()
				time.Sleep(10 * time.Millisecond)
				continue
			case paceWait == 0:
				continue // every attempt was answered at once
			}
		}
		// Wait for answers until the earliest deadline, or only look when
		// there are more attempts to start.
		var first time.Time
		if len(w.dl) > 0 {
			first = w.dl[0].deadline
		}
		if more && !blocked && paceWait == 0 && len(w.inflight) < w.cw.size() {
			first = time.Now()
		}
		w.flush()
		n, err := epollWait(w.ep, events, first, paceWait)
		if err != nil {
			return err
		}
		now := time.Now()
		for _, ev := range events[:n] {
			if a := w.inflight[int(ev.Fd)]; a != nil {
				if err := w.answered(a, now); err != nil {
					return err
				}
			}
		}
		// Attempts past their deadline: retry, or report them filtered.
		for len(w.dl) > 0 && !w.dl[0].deadline.After(now) {
			a := w.dl[0]
			w.leave(a)
			unix.Close(a.fd) // still connecting: only close() stops it
			w.cw.lost(a.probe.Addr)
			if a.tries <= w.retries {
				w.retry = append(w.retry, a)
				continue
			}
			w.finish(a, Filtered, ReasonNoResponse, 0)
		}
	}
}

// newAttempt returns an attempt at p, reusing a finished one if it can.
func (w *connWorker) newAttempt(p Probe) *attempt {
	if n := len(w.free); n > 0 {
		a := w.free[n-1]
		w.free = w.free[:n-1]
		*a = attempt{probe: p, index: -1}
		return a
	}
	return &attempt{probe: p, index: -1}
}

// finish emits a's result; a is not to be used after.
func (w *connWorker) finish(a *attempt, st State, reason Reason, rtt time.Duration) {
	w.emitResult(Result{Addr: a.probe.Addr, Port: a.probe.Port, Proto: registry.TCP, State: st, Reason: reason, RTT: rtt, Tries: a.tries, Host: a.probe.Host})
	w.free = append(w.free, a)
}

// sockaddr returns p's socket address and family, in storage of the
// worker's that the next call overwrites.
func (w *connWorker) sockaddr(p Probe) (unix.Sockaddr, int) {
	if spareIndex(p.Addr) == 0 {
		w.sa4.Port, w.sa4.Addr = int(p.Port), p.Addr.Unmap().As4()
		return &w.sa4, unix.AF_INET
	}
	w.sa6 = unix.SockaddrInet6{Port: int(p.Port), Addr: p.Addr.As16()}
	if z := p.Addr.Zone(); z != "" {
		if ifi, err := netInterfaceIndex(z); err == nil {
			w.sa6.ZoneId = uint32(ifi)
		}
	}
	return &w.sa6, unix.AF_INET6
}

// spareIndex is the index into connWorker.spare for addr's family.
func spareIndex(addr netip.Addr) int {
	if addr.Is6() && !addr.Is4In6() {
		return 1
	}
	return 0
}

// start tries a's probe once more. It returns false when the system is
// out of file descriptors or local ports and the attempt must wait.
//
// A non-blocking connect() says EINPROGRESS even where the answer comes
// at once: on loopback the SYN's reply is handled before connect()
// returns, only after its check. A second connect() then reports the
// outcome (0 for an accepted connection, ECONNREFUSED) and leaves a
// refused socket ready for the next port: for a closed port, two system
// calls in all, where epoll costs an epoll_ctl, an epoll_wait and a
// getsockopt more. Where answers take a round trip the second connect()
// only says EALREADY; after 16 of those in a row it is made for one
// attempt in 64, to notice when answers come at once again.
func (w *connWorker) start(a *attempt, now time.Time) (bool, error) {
	sa, family := w.sockaddr(a.probe)
	spare := &w.spare[spareIndex(a.probe.Addr)]
	var s spareSocket
	reused := false
	if n := len(*spare); n > 0 {
		s, reused = (*spare)[n-1], true
		*spare = (*spare)[:n-1]
	} else {
		fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) || errors.Is(err, unix.ENOBUFS) {
				return false, nil
			}
			return false, fmt.Errorf("scan: socket: %w", err)
		}
		s.fd = fd
	}
	a.fd, a.polled, a.start, a.tries = s.fd, s.polled, now, a.tries+1
	err := unix.Connect(a.fd, sa)
	if reused && errors.Is(err, unix.ECONNABORTED) {
		// A socket whose asynchronous failure was read some other way
		// than by connect() only moves back to "unconnected".
		err = unix.Connect(a.fd, sa)
	}
	if errors.Is(err, unix.EINPROGRESS) {
		w.peeks++
		if w.peekMisses < 16 || w.peeks%64 == 0 {
			err = unix.Connect(a.fd, sa)
			if errors.Is(err, unix.EALREADY) {
				w.peekMisses++
			} else {
				w.peekMisses = 0
			}
		}
	}
	switch {
	case errors.Is(err, unix.EINPROGRESS), errors.Is(err, unix.EALREADY):
		if err := w.arm(a); err != nil {
			unix.Close(a.fd)
			return false, err
		}
		a.deadline = now.Add(w.est.timeout())
		w.inflight[a.fd] = a
		heap.Push(&w.dl, a)
		return true, nil
	case errors.Is(err, unix.EADDRNOTAVAIL), errors.Is(err, unix.EAGAIN):
		unix.Close(a.fd) // no local port free: wait for some to close
		a.tries--
		return false, nil
	}
	w.settle(a, err, time.Since(now), true)
	return true, nil
}

// arm (re-)arms a's one-shot registration with the epoll set.
func (w *connWorker) arm(a *attempt) error {
	op := unix.EPOLL_CTL_ADD
	if a.polled {
		op = unix.EPOLL_CTL_MOD
	}
	w.ev = unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLONESHOT, Fd: int32(a.fd)}
	if err := unix.EpollCtl(w.ep, op, a.fd, &w.ev); err != nil {
		return fmt.Errorf("scan: epoll_ctl: %w", err)
	}
	a.polled = true
	return nil
}

// answered handles an epoll event of an attempt in flight. connect() once
// more reports how it ended and leaves a refused socket ready for another
// connect. An ICMP error that came while connect() held the socket (on a
// path as short as a veth pair) leaves it connecting, with the error
// pending for getsockopt(SO_ERROR) alone.
func (w *connWorker) answered(a *attempt, now time.Time) error {
	sa, _ := w.sockaddr(a.probe)
	err := unix.Connect(a.fd, sa)
	if errors.Is(err, unix.EALREADY) || errors.Is(err, unix.EINPROGRESS) {
		soerr, gerr := unix.GetsockoptInt(a.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case gerr != nil:
			err = gerr
		case soerr != 0:
			err = unix.Errno(soerr)
		default:
			return w.arm(a) // still connecting: wait on
		}
		w.leave(a)
		w.settle(a, err, now.Sub(a.start), false)
		return nil
	}
	w.leave(a)
	w.settle(a, err, now.Sub(a.start), true)
	return nil
}

// leave takes a out of the attempts in flight.
func (w *connWorker) leave(a *attempt) {
	delete(w.inflight, a.fd)
	if a.index >= 0 {
		heap.Remove(&w.dl, a.index)
	}
}

// settle decides a's probe from the error of a connect() that is no
// longer in progress (nil: the connection was accepted), and closes its
// socket, or keeps it when the connect was refused and fromConnect says
// that connect() reported it (the socket is then unconnected again).
func (w *connWorker) settle(a *attempt, err error, rtt time.Duration, fromConnect bool) {
	if err == nil {
		self := selfConnected(a.fd, a.probe)
		// Only an established connection would leave a TIME-WAIT behind:
		// close it with a reset.
		resetClose(a.fd)
		if self {
			// The kernel picked the target port as the source port and the
			// SYN met itself: nothing listens there.
			w.finish(a, Closed, ReasonConnRefused, rtt)
			return
		}
		w.est.add(rtt)
		w.cw.answered(a.probe.Addr)
		w.finish(a, Open, ReasonSynAck, rtt)
		return
	}
	if fromConnect && errors.Is(err, unix.ECONNREFUSED) {
		w.keep(a)
	} else {
		unix.Close(a.fd)
	}
	st, reason := classify(err)
	if st == Closed {
		w.est.add(rtt)
		w.cw.answered(a.probe.Addr)
	}
	if reason == ReasonNoResponse && a.tries <= w.retries {
		w.retry = append(w.retry, a)
		return
	}
	w.finish(a, st, reason, rtt)
}

// keep parks a refused attempt's socket for another connect, or closes
// it.
func (w *connWorker) keep(a *attempt) {
	spare := &w.spare[spareIndex(a.probe.Addr)]
	if len(*spare) < maxSpare {
		*spare = append(*spare, spareSocket{fd: a.fd, polled: a.polled})
		return
	}
	unix.Close(a.fd)
}

// classify maps a connect error to a port state.
func classify(err error) (State, Reason) {
	switch {
	case errors.Is(err, unix.ECONNREFUSED):
		return Closed, ReasonConnRefused
	case errors.Is(err, unix.ECONNRESET):
		return Closed, ReasonReset
	case errors.Is(err, unix.EHOSTUNREACH), errors.Is(err, unix.EHOSTDOWN):
		return Filtered, ReasonHostUnreach
	case errors.Is(err, unix.ENETUNREACH):
		return Filtered, ReasonNetUnreach
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return Filtered, ReasonAdminProhibited
	case errors.Is(err, unix.ETIMEDOUT):
		return Filtered, ReasonNoResponse
	}
	return Filtered, ReasonError
}

// RaiseFileLimit raises the soft limit on open files to the hard limit, as
// a scan with many connections in flight needs, and returns the new soft
// limit.
func RaiseFileLimit() (int, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			return int(rl.Cur), fmt.Errorf("scan: raise open-file limit: %w", os.ErrPermission)
		}
	}
	return int(min(rl.Cur, 1<<30)), nil
}

// selfConnected reports whether a connected socket's local end is the
// probe's own address and port: a TCP simultaneous open with itself, which
// happens on loopback when the source port chosen equals the target port.
func selfConnected(fd int, p Probe) bool {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return false
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return sa.Port == int(p.Port) && sa.Addr == p.Addr.Unmap().As4()
	case *unix.SockaddrInet6:
		return sa.Port == int(p.Port) && sa.Addr == p.Addr.As16()
	}
	return false
}

// resetClose closes a connected socket with SO_LINGER 0: a reset instead of
// a FIN, so no TIME-WAIT remains on either side.
func resetClose(fd int) {
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	unix.Close(fd)
}

// epollWait waits for events until the earliest deadline (zero: none), the
// pacer's next slot (0: none), or 50 ms, whichever comes first.
func epollWait(ep int, events []unix.EpollEvent, deadline time.Time, paceWait time.Duration) (int, error) {
	wait := 50 * time.Millisecond
	if !deadline.IsZero() {
		wait = min(wait, max(time.Until(deadline), 0))
	}
	if paceWait > 0 {
		wait = min(wait, paceWait)
	}
	n, err := unix.EpollWait(ep, events, int((wait+time.Millisecond-1)/time.Millisecond))
	if err != nil && !errors.Is(err, unix.EINTR) {
		return 0, fmt.Errorf("scan: epoll_wait: %w", err)
	}
	return max(n, 0), nil
}
