package scan

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/registry"
)

// attempt is one connection in flight.
type attempt struct {
	probe    Probe
	fd       int
	start    time.Time
	deadline time.Time
	tries    int
	index    int // in the deadline heap
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
// epoll, each socket closed with SO_LINGER 0 (a reset, so no TIME-WAIT piles
// up), unanswered ports retried, the timeout adapting to measured round
// trips. It asks next for probes until it reports none, and calls emit
// (from the calling goroutine) with each result as it is decided.
func Connect(ctx context.Context, cfg ConnectConfig, next func() (Probe, bool), emit func(Result)) error {
	var rl unix.Rlimit
	limit := 0
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil {
		limit = int(min(rl.Cur, 1<<20))
	}
	conc := cfg.concurrency(limit)
	// One worker per CPU, each with its own epoll and a share of the
	// window: connect() and close() cost most of a scan, in the kernel, and
	// one thread would leave the other CPUs idle. next and emit stay
	// serialised, as callers expect.
	workers := max(1, min(runtime.GOMAXPROCS(0), 8, conc/16))
	if workers == 1 {
		return connectWorker(ctx, cfg, conc, next, emit)
	}
	var mu sync.Mutex
	lockedNext := func() (Probe, bool) { mu.Lock(); defer mu.Unlock(); return next() }
	lockedEmit := func(r Result) { mu.Lock(); defer mu.Unlock(); emit(r) }
	if cfg.Rate > 0 {
		cfg.Rate = max(1, cfg.Rate/workers)
	}
	errc := make(chan error, workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < workers; w++ {
		go func() {
			err := connectWorker(ctx, cfg, conc/workers, lockedNext, lockedEmit)
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

// connectWorker is one epoll loop of the connect engine with a window of
// conc attempts.
func connectWorker(ctx context.Context, cfg ConnectConfig, conc int, next func() (Probe, bool), emit func(Result)) error {
	retries := cfg.retries()
	est := rttEstimator{fixed: cfg.Timeout}
	cw := newCongestion(conc)
	pace := newPacer(cfg.Rate)

	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("scan: epoll: %w", err)
	}
	defer unix.Close(ep)

	inflight := map[int]*attempt{}
	var dl deadlines
	var retry []*attempt // unanswered attempts waiting for another try
	done := false
	// A socket whose connect was refused is back in the CLOSE state and
	// takes another connect: keeping it saves a socket() and a close() per
	// closed port, most of a scan. spare holds them, by family, still
	// registered (one-shot) with the epoll set.
	spare := map[int][]int{}
	const maxSpare = 64
	defer func() {
		for fd := range inflight {
			unix.Close(fd)
		}
		for _, fds := range spare {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
	}()
	family := func(a *attempt) int {
		if a.probe.Addr.Is6() && !a.probe.Addr.Is4In6() {
			return unix.AF_INET6
		}
		return unix.AF_INET
	}
	// keep parks a refused socket for reuse, or closes it.
	keep := func(fam, fd int) {
		if len(spare[fam]) < maxSpare {
			spare[fam] = append(spare[fam], fd)
			return
		}
		unix.Close(fd)
	}

	finish := func(a *attempt, st State, reason Reason, rtt time.Duration) {
		emit(Result{Addr: a.probe.Addr, Port: a.probe.Port, Proto: registry.TCP, State: st, Reason: reason, RTT: rtt, Tries: a.tries, Host: a.probe.Host})
	}
	// release ends an attempt: its socket is kept for reuse when reuse is
	// set, else closed (which also removes it from the epoll set).
	release := func(a *attempt, reuse bool) {
		delete(inflight, a.fd)
		if a.index >= 0 {
			heap.Remove(&dl, a.index)
		}
		if reuse {
			keep(family(a), a.fd)
		} else {
			unix.Close(a.fd)
		}
	}
	const oneShot = unix.EPOLLOUT | unix.EPOLLONESHOT
	// start begins one attempt; it returns false when the system is out of
	// file descriptors or ports and the attempt must wait.
	start := func(a *attempt, now time.Time) (bool, error) {
		fam := family(a)
		fd, reused := -1, false
		if n := len(spare[fam]); n > 0 {
			fd, reused = spare[fam][n-1], true
			spare[fam] = spare[fam][:n-1]
		} else {
			var err error
			fd, err = unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) || errors.Is(err, unix.ENOBUFS) {
					return false, nil
				}
				return false, fmt.Errorf("scan: socket: %w", err)
			}
		}
		var sa unix.Sockaddr
		if fam == unix.AF_INET {
			sa = &unix.SockaddrInet4{Port: int(a.probe.Port), Addr: a.probe.Addr.Unmap().As4()}
		} else {
			sa6 := &unix.SockaddrInet6{Port: int(a.probe.Port), Addr: a.probe.Addr.As16()}
			if z := a.probe.Addr.Zone(); z != "" {
				if ifi, err := netInterfaceIndex(z); err == nil {
					sa6.ZoneId = uint32(ifi)
				}
			}
			sa = sa6
		}
		a.fd, a.start, a.tries = fd, now, a.tries+1
		err := unix.Connect(fd, sa)
		if reused && errors.Is(err, unix.ECONNABORTED) {
			// The first connect after an asynchronous failure only moves
			// the socket from "connecting" back to "unconnected".
			err = unix.Connect(fd, sa)
		}
		switch {
		case err == nil:
			self := selfConnected(fd, a.probe)
			resetClose(fd)
			if self {
				finish(a, Closed, ReasonConnRefused, time.Since(now))
			} else {
				finish(a, Open, ReasonSynAck, time.Since(now))
			}
			return true, nil
		case errors.Is(err, unix.EINPROGRESS):
		case errors.Is(err, unix.EADDRNOTAVAIL), errors.Is(err, unix.EAGAIN):
			unix.Close(fd) // no local port free: wait for some to close
			a.tries--
			return false, nil
		default:
			st, reason := classify(err)
			if st == Closed && reused {
				keep(fam, fd)
			} else {
				unix.Close(fd)
			}
			finish(a, st, reason, time.Since(now))
			return true, nil
		}
		op := unix.EPOLL_CTL_ADD
		if reused {
			op = unix.EPOLL_CTL_MOD // re-arm the one-shot registration
		}
		if err := unix.EpollCtl(ep, op, fd, &unix.EpollEvent{Events: oneShot, Fd: int32(fd)}); err != nil {
			unix.Close(fd)
			return false, fmt.Errorf("scan: epoll_ctl: %w", err)
		}
		a.deadline = now.Add(est.timeout())
		inflight[fd] = a
		heap.Push(&dl, a)
		return true, nil
	}

	events := make([]unix.EpollEvent, 256)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		// Fill the window: retries first, then new probes.
		var paceWait time.Duration
		blocked := false
		for len(inflight) < cw.size() && !blocked {
			if w := pace.wait(now); w > 0 {
				paceWait = w
				break
			}
			var a *attempt
			if len(retry) > 0 {
				a, retry = retry[0], retry[1:]
			} else if !done {
				p, ok := next()
				if !ok {
					done = true
					continue
				}
				a = &attempt{probe: p, index: -1}
			} else {
				break
			}
			ok, err := start(a, now)
			if err != nil {
				return err
			}
			if !ok {
				retry = append([]*attempt{a}, retry...)
				blocked = true
				if len(inflight) == 0 {
					// Nothing in flight will free a descriptor: back off.
					time.Sleep(10 * time.Millisecond)
				}
			}
		}
		if len(inflight) == 0 && len(retry) == 0 && done {
			return nil
		}
		// Wait for answers until the earliest deadline.
		var first time.Time
		if len(dl) > 0 {
			first = dl[0].deadline
		}
		n, err := epollWait(ep, events, first, paceWait)
		if err != nil {
			return err
		}
		now = time.Now()
		for _, ev := range events[:n] {
			a := inflight[int(ev.Fd)]
			if a == nil {
				continue
			}
			soerr, gerr := unix.GetsockoptInt(a.fd, unix.SOL_SOCKET, unix.SO_ERROR)
			rtt := now.Sub(a.start)
			self := gerr == nil && soerr == 0 && selfConnected(a.fd, a.probe)
			if gerr == nil && soerr == 0 {
				// Only an established connection would leave a TIME-WAIT
				// behind: close it with a reset.
				unix.SetsockoptLinger(a.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
			}
			release(a, gerr == nil && !self && soerr == int(unix.ECONNREFUSED))
			switch {
			case gerr != nil:
				finish(a, Filtered, ReasonError, rtt)
			case self:
				// The kernel picked the target port as the source port and
				// the SYN met itself: nothing listens there.
				finish(a, Closed, ReasonConnRefused, rtt)
			case soerr == 0:
				est.add(rtt)
				cw.answered(a.probe.Addr)
				finish(a, Open, ReasonSynAck, rtt)
			default:
				st, reason := classify(unix.Errno(soerr))
				if st == Closed {
					est.add(rtt)
					cw.answered(a.probe.Addr)
				}
				if reason == ReasonNoResponse && a.tries <= retries {
					retry = append(retry, a)
					continue
				}
				finish(a, st, reason, rtt)
			}
		}
		// Attempts past their deadline: retry, or report them filtered.
		for len(dl) > 0 && !dl[0].deadline.After(now) {
			a := dl[0]
			release(a, false) // still connecting: only close() stops it
			cw.lost(a.probe.Addr)
			if a.tries <= retries {
				retry = append(retry, a)
				continue
			}
			finish(a, Filtered, ReasonNoResponse, 0)
		}
	}
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
