package scan

import (
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/registry"
)

// UDP runs the UDP engine: one non-blocking UDP socket per probe, connected
// to the target (so the kernel hands it the ICMP errors about it), with
// IP_RECVERR or IPV6_RECVERR set so each error arrives with its ICMP type
// and code; sockets are driven by epoll. Each port gets the request of
// the protocol usually served there (probe.UDPPayload). Any datagram back means
// open (udp-response); ICMP port unreachable, closed (port-unreach);
// another ICMP unreachable or time exceeded, filtered with its reason;
// nothing after the timeout and every retry, open|filtered (no-response).
//
// It asks next for probes until it reports none, and calls emit (from the
// calling goroutine) with each result as it is decided. No raw socket, so
// no privilege, is needed.
//
// Hosts rate-limit the ICMP errors they send (Linux: one a second per
// source after a burst of a few), so a closed port probed among many may
// get no answer in time and read open|filtered: more retries and a lower
// rate make that rarer, nothing removes it.
func UDP(ctx context.Context, cfg UDPConfig, next func() (Probe, bool), emit func(Result)) error {
	var rl unix.Rlimit
	limit := 0
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil {
		limit = int(min(rl.Cur, 1<<20))
	}
	conc := cfg.concurrency(limit)
	retries := cfg.retries()
	est := rttEstimator{fixed: cfg.Timeout}
	pace := newPacer(cfg.Rate)

	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("scan: epoll: %w", err)
	}
	defer unix.Close(ep)

	inflight := map[int]*udpAttempt{} // by socket, those waiting to be resent too
	var dl udpDeadlines
	var retry []*udpAttempt // unanswered, socket still open, waiting to resend
	var pending *udpAttempt // taken from next, waiting for a free socket
	done := false
	defer func() {
		for fd := range inflight {
			unix.Close(fd)
		}
	}()

	finish := func(a *udpAttempt, st State, reason Reason, rtt time.Duration) {
		if a.fd >= 0 {
			unix.Close(a.fd) // also removes it from the epoll set
			delete(inflight, a.fd)
			a.fd = -1
		}
		if a.index >= 0 {
			heap.Remove(&dl, a.index)
		}
		a.decided = true
		if rtt > 0 && a.tries == 1 {
			est.add(rtt) // Karn: only answers that cannot be to an earlier try
		}
		emit(Result{Addr: a.probe.Addr, Port: a.probe.Port, Proto: registry.UDP, State: st, Reason: reason, RTT: rtt, Tries: a.tries, Host: a.probe.Host})
	}
	// send sends the probe's datagram (again) and sets its deadline.
	send := func(a *udpAttempt, now time.Time) {
		a.tries++
		a.start = now
		var err error
		if a.to != nil {
			err = unix.Sendto(a.fd, udpPayloads[a.probe.Port], 0, a.to)
		} else {
			err = unix.Send(a.fd, udpPayloads[a.probe.Port], 0)
		}
		if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.ENOBUFS) {
			// The error of an earlier datagram (a pending ICMP error
			// surfaces on the next send), or this host's own firewall
			// refusing it (EPERM).
			if st, reason, ok := readErrQueue(a.fd); ok {
				finish(a, st, reason, 0)
				return
			}
			st, reason := classifyUDPErr(err)
			finish(a, st, reason, 0)
			return
		}
		// A datagram the kernel could not queue (EAGAIN, ENOBUFS) counts
		// as sent and lost: a retry sends it again.
		a.deadline = now.Add(est.timeout())
		heap.Push(&dl, a)
	}
	// start opens the probe's socket and sends its first datagram; it
	// returns false when the system is out of descriptors or ports and
	// the probe must wait.
	start := func(a *udpAttempt, now time.Time) (bool, error) {
		fd, to, err := udpSocket(a.probe)
		switch {
		case err == nil:
		case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE), errors.Is(err, unix.ENOBUFS),
			errors.Is(err, unix.ENOMEM), errors.Is(err, unix.EADDRNOTAVAIL), errors.Is(err, unix.EAGAIN):
			return false, nil
		case errors.Is(err, errSocket):
			return false, err
		default: // connect() failed: no route, say
			st, reason := classifyUDPErr(err)
			finish(a, st, reason, 0)
			return true, nil
		}
		a.fd = fd
		if udpAnswersFromOtherPort(a.probe.Port) {
			a.to = to
		}
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			unix.Close(fd)
			return false, fmt.Errorf("scan: epoll_ctl: %w", err)
		}
		inflight[fd] = a
		send(a, now)
		return true, nil
	}

	events := make([]unix.EpollEvent, 256)
	buf := make([]byte, 2048)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		var paceWait time.Duration
		// Resend to unanswered ports first: they hold sockets already.
		for len(retry) > 0 {
			a := retry[0]
			if a.decided {
				retry = retry[1:]
				continue
			}
			if w := pace.wait(now); w > 0 {
				paceWait = w
				break
			}
			retry = retry[1:]
			send(a, now)
		}
		// Then new probes, while the window has room.
		for len(retry) == 0 && paceWait == 0 && len(inflight) < conc {
			if pending == nil {
				if done {
					break
				}
				p, ok := next()
				if !ok {
					done = true
					break
				}
				pending = &udpAttempt{probe: p, fd: -1, index: -1}
			}
			if w := pace.wait(now); w > 0 {
				paceWait = w
				break
			}
			ok, err := start(pending, now)
			if err != nil {
				return err
			}
			if !ok {
				if len(inflight) == 0 {
					// Nothing in flight will free a socket: back off.
					time.Sleep(10 * time.Millisecond)
				}
				break
			}
			pending = nil
		}
		if done && pending == nil && len(inflight) == 0 {
			return nil
		}
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
			// A late answer, to a datagram past its deadline but before
			// the resend, counts as much as a prompt one.
			rtt := now.Sub(a.start)
			if udpAnswered(a, buf) {
				finish(a, Open, ReasonUDPResponse, rtt)
			} else if st, reason, ok := readErrQueue(a.fd); ok {
				finish(a, st, reason, rtt)
			}
		}
		for len(dl) > 0 && !dl[0].deadline.After(now) {
			a := heap.Pop(&dl).(*udpAttempt)
			if a.tries <= retries {
				retry = append(retry, a)
				continue
			}
			finish(a, OpenFiltered, ReasonNoResponse, 0)
		}
	}
}

// udpAttempt is one UDP probe in flight.
type udpAttempt struct {
	probe    Probe
	fd       int
	to       unix.Sockaddr // the target, for a socket left unconnected
	start    time.Time     // of the last datagram sent
	deadline time.Time
	tries    int
	index    int // in the deadline heap, -1 when not in it
	decided  bool
}

// udpDeadlines orders attempts by deadline (container/heap).
type udpDeadlines []*udpAttempt

func (h udpDeadlines) Len() int           { return len(h) }
func (h udpDeadlines) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h udpDeadlines) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *udpDeadlines) Push(x any) {
	a := x.(*udpAttempt)
	a.index = len(*h)
	*h = append(*h, a)
}
func (h *udpDeadlines) Pop() any {
	old := *h
	a := old[len(old)-1]
	*h = old[:len(old)-1]
	a.index = -1
	return a
}

// errSocket marks a failure to make a socket that no wait will cure.
var errSocket = errors.New("scan: udp socket")

// udpSocket opens a non-blocking UDP socket for p with IP_RECVERR (or
// IPV6_RECVERR) set, and connects it to p unless p's protocol answers from
// another port; it returns the target's address either way. A connect
// error (EHOSTUNREACH, ENETUNREACH …) is returned as it is.
func udpSocket(p Probe) (int, unix.Sockaddr, error) {
	fam, level, opt := unix.AF_INET, unix.IPPROTO_IP, unix.IP_RECVERR
	var to unix.Sockaddr
	if p.Addr.Is6() && !p.Addr.Is4In6() {
		fam, level, opt = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_RECVERR
		sa6 := &unix.SockaddrInet6{Port: int(p.Port), Addr: p.Addr.As16()}
		if z := p.Addr.Zone(); z != "" {
			if ifi, err := netInterfaceIndex(z); err == nil {
				sa6.ZoneId = uint32(ifi)
			}
		}
		to = sa6
	} else {
		to = &unix.SockaddrInet4{Port: int(p.Port), Addr: p.Addr.Unmap().As4()}
	}
	var stale []int // sockets that connected to themselves, closed at the end
	defer func() {
		for _, fd := range stale {
			unix.Close(fd)
		}
	}()
	for {
		fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) || errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM) {
				return -1, nil, err
			}
			return -1, nil, fmt.Errorf("%w: %w", errSocket, err)
		}
		if err := unix.SetsockoptInt(fd, level, opt, 1); err != nil {
			unix.Close(fd)
			return -1, nil, fmt.Errorf("%w: set recverr: %w", errSocket, err)
		}
		if udpAnswersFromOtherPort(p.Port) {
			return fd, to, nil
		}
		if err := unix.Connect(fd, to); err != nil {
			unix.Close(fd)
			return -1, nil, err
		}
		if !selfConnected(fd, p) || len(stale) == 3 {
			return fd, to, nil
		}
		// The kernel chose the target port as the source port, so the
		// datagram would come back to this very socket: keep it open so
		// the port stays taken, and take another.
		stale = append(stale, fd)
	}
}

// udpAnswered reads the datagrams waiting on a's socket and reports
// whether one is an answer: any datagram on a connected socket, one from
// the target's address on an unconnected one.
func udpAnswered(a *udpAttempt, buf []byte) bool {
	for {
		_, from, err := unix.Recvfrom(a.fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			return false // EAGAIN, or an ICMP error, read from the error queue next
		}
		if a.to == nil {
			return true
		}
		switch f := from.(type) {
		case *unix.SockaddrInet4:
			if t, ok := a.to.(*unix.SockaddrInet4); ok && f.Addr == t.Addr {
				return true
			}
		case *unix.SockaddrInet6:
			if t, ok := a.to.(*unix.SockaddrInet6); ok && f.Addr == t.Addr {
				return true
			}
		}
	}
}

// readErrQueue reads the socket's error queue (IP_RECVERR) and returns the
// state the first ICMP error that says something about the port gives.
func readErrQueue(fd int) (State, Reason, bool) {
	var data [64]byte
	var oob [256]byte
	for {
		_, oobn, _, _, err := unix.Recvmsg(fd, data[:], oob[:], unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err != nil {
			return 0, "", false
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if !(m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR) &&
				!(m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR) {
				continue
			}
			ee, ok := parseExtendedErr(m.Data, binary.NativeEndian)
			if !ok {
				continue
			}
			if st, reason, ok := ee.classify(); ok {
				return st, reason, true
			}
		}
	}
}

// classifyUDPErr maps an error from connect() or send() on a UDP socket
// to a port state.
func classifyUDPErr(err error) (State, Reason) {
	if errors.Is(err, unix.ECONNREFUSED) {
		return Closed, ReasonPortUnreach
	}
	st, reason := classify(err)
	if reason == ReasonNoResponse {
		return OpenFiltered, reason
	}
	return st, reason
}
