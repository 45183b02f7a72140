package forward

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loops: one per CPU (GOMAXPROCS), each a goroutine around an
// epoll instance, serve every TCP rule of a Forwarder. A rule's listener is in every loop's epoll set, with
// EPOLLEXCLUSIVE so that a connection wakes one loop, which accepts until
// EAGAIN. An accepted connection stays in that loop for its whole life:
// its two sockets are registered once, edge-triggered for reading,
// writing and the peer's shutdown, and never modified; readiness is kept
// in the handle and a flow stops when a read comes back short (nothing
// more queued) or a write short (no room). Bytes go through the loop's
// one buffer, and only stay in a buffer of the connection's when the
// other side cannot take them; a flow that has moved spliceAfter bytes
// moves the rest by splice(2) through a pipe of the loop's pool. Idle and
// connect timeouts are timers on the loop's wheel, checked lazily: moving
// bytes only notes the time. Segments are spared where TCP allows: a
// client's first bytes, there at accept, ride on the backend handshake's
// last ACK (open), and a flow's last bytes on its FIN (move).

const (
	loopBuf     = 64 << 10 // the loop's buffer: the most one read takes
	spliceAfter = 64 << 10 // bytes one way before that way splices
	pipeSize    = 1 << 20  // as Go's own splice asks (F_SETPIPE_SZ)
	spliceChunk = 1 << 20  // the most one splice moves
	freePipes   = 16       // empty pipes a loop keeps for the next flow
	freeConns   = 1024     // connection records a loop keeps for reuse
	freeBufs    = 16       // loop buffers' worth a loop keeps for flows that hold bytes back
	earlyMax    = 64 << 10 // client bytes held while the backend connects
	wheelTick   = int64(20 * time.Millisecond)
	wheelSlots  = 512
)

// handle kinds.
const (
	hWake = iota
	hListen
	hConn
	hUDP     // a UDP rule's socket
	hUDPSess // a UDP session's socket toward the backend
)

// expirer is what a loop's timer ends: a connection or a UDP session.
type expirer interface{ expire(*loop) }

// handle is what an epoll event points at, by its file descriptor and a
// generation number that tells a reused descriptor from the old one.
type handle struct {
	fd       int
	gen      uint32
	kind     uint8
	side     uint8 // hConn: client 0, backend 1
	readable bool
	writable bool
	rdhup    bool // the peer shut down writing: a short read was the last
	c        *conn
	ln       *listener
	u        *udpListener
	s        *udpFlow
}

// listener is a TCP rule's listening socket, in every loop's epoll set.
type listener struct {
	fd     int
	run    *running
	addr   netip.AddrPort
	closed sync.Once
}

// flow is one direction of a connection: from h[i] to h[1-i].
type flow struct {
	buf    []byte // read, not yet written: buf[off:]
	off    int
	p      *pipe // splicing: the pipe, with inPipe bytes in it
	inPipe int
	n      uint64 // bytes moved
	eof    bool   // the source shut down writing
	done   bool   // and that was passed on
}

func (f *flow) pending() bool { return f.off < len(f.buf) || f.inPipe > 0 }

// conn is one relayed connection; the loop that accepted it owns it.
type conn struct {
	run        *running
	r          *Rule
	b          *backend
	h          [2]handle // client, backend
	d          [2]flow   // client to backend, backend to client
	client     netip.AddrPort
	connecting bool
	dead       bool
	spliced    bool
	last       int64 // the loop's clock at the last byte either way
	idle       int64
	t          timer[expirer]
	prev, next *conn // the loop's connections
}

type pipe struct{ r, w int }

// loops are a Forwarder's event loops.
type loops struct {
	all     []*loop
	wg      sync.WaitGroup
	base    time.Time
	mu      sync.Mutex // serialises each, on and stop
	stopped bool
	next    int // the loop the next UDP rule goes to
}

// loop is one event loop; only its own goroutine touches its fields,
// except mu and cmds.
type loop struct {
	ls      *loops
	ep      int
	epf     *os.File // ep, for the runtime's poller
	rc      syscall.RawConn
	wake    int // an eventfd that post writes to
	wakeH   handle
	mu      sync.Mutex
	cmds    []func(*loop)
	handles []*handle // by file descriptor
	gen     uint32
	buf     []byte
	sa      sockaddr
	pipes   []*pipe
	bufs    [][]byte // spare buffers of loopBuf bytes
	free    []*conn
	w       wheel[expirer]
	now     int64
	conns   *conn
	stop    bool
}

func loopsAvailable() bool { return true }

// newLoops starts one loop per CPU.
func newLoops() (*loops, error) {
	ls := &loops{base: time.Now()}
	for range runtime.GOMAXPROCS(0) {
		l, err := ls.newLoop()
		if err != nil {
			ls.stop()
			return nil, err
		}
		ls.all = append(ls.all, l)
		ls.wg.Go(l.run)
	}
	return ls, nil
}

func (ls *loops) newLoop() (*loop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("forward: epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("forward: eventfd: %w", err)
	}
	l := &loop{ls: ls, ep: ep, wake: wake, buf: make([]byte, loopBuf)}
	unix.SetNonblock(ep, true)
	l.epf = os.NewFile(uintptr(ep), "epoll")
	rc, err := l.epf.SyscallConn()
	if err != nil {
		l.epf.Close()
		unix.Close(wake)
		return nil, fmt.Errorf("forward: epoll: %w", err)
	}
	l.rc = rc
	l.now = l.clock()
	l.w.init(wheelTick, wheelSlots, l.now)
	l.wakeH = handle{fd: wake, kind: hWake}
	if err := l.register(&l.wakeH, unix.EPOLLIN); err != nil {
		l.epf.Close()
		unix.Close(wake)
		return nil, fmt.Errorf("forward: epoll: %w", err)
	}
	return l, nil
}

// each runs fn in every loop and waits until all have.
func (ls *loops) each(fn func(*loop)) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.stopped {
		return
	}
	var wg sync.WaitGroup
	for _, l := range ls.all {
		wg.Add(1)
		l.post(func(l *loop) {
			fn(l)
			wg.Done()
		})
	}
	wg.Wait()
}

// stop ends the loops, closing what they hold; their connections must
// have ended.
func (ls *loops) stop() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.stopped {
		return
	}
	ls.stopped = true
	for _, l := range ls.all {
		l.post(func(l *loop) { l.stop = true })
	}
	ls.wg.Wait()
}

// listen opens run's listener and puts it in every loop's set.
func (ls *loops) listen(run *running, addr netip.AddrPort) (*listener, error) {
	fd, bound, err := listenSocket(addr)
	if err != nil {
		return nil, err
	}
	ln := &listener{fd: fd, run: run, addr: bound}
	var errs []error
	var mu sync.Mutex
	ls.each(func(l *loop) {
		h := &handle{fd: fd, kind: hListen, ln: ln}
		if err := l.register(h, unix.EPOLLIN|unix.EPOLLEXCLUSIVE); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	if len(errs) > 0 {
		ls.unlisten(ln)
		return nil, fmt.Errorf("epoll: %w", errs[0])
	}
	return ln, nil
}

// unlisten takes the listener out of every loop, then closes it: no loop
// accepts on it after.
func (ls *loops) unlisten(ln *listener) {
	ln.closed.Do(func() {
		ls.each(func(l *loop) { l.unregister(ln.fd) })
		unix.Close(ln.fd)
	})
}

// cut aborts run's connections.
func (ls *loops) cut(run *running) {
	ls.each(func(l *loop) {
		for c := l.conns; c != nil; {
			next := c.next
			if c.run == run {
				l.abort(c, nil)
			}
			c = next
		}
	})
}

// listenSocket opens a listening socket on addr: [::] takes IPv4 too, as
// Go's "tcp" does; keepalive (30 s) and TCP_NODELAY are set here once, and
// accepted sockets inherit them.
func listenSocket(addr netip.AddrPort) (int, netip.AddrPort, error) {
	family := unix.AF_INET6
	if addr.Addr().Is4() {
		family = unix.AF_INET
	}
	fd, errno := sysSocket(family)
	if errno != 0 {
		return -1, netip.AddrPort{}, os.NewSyscallError("socket", errno)
	}
	fail := func(op string, err error) (int, netip.AddrPort, error) {
		unix.Close(fd)
		return -1, netip.AddrPort{}, os.NewSyscallError(op, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt", err)
	}
	if family == unix.AF_INET6 && addr.Addr().IsUnspecified() {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			return fail("setsockopt", err)
		}
	}
	for _, o := range [][3]int{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(keepAlive.Idle / time.Second)},
		{unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
	} {
		if err := unix.SetsockoptInt(fd, o[0], o[1], o[2]); err != nil {
			return fail("setsockopt", err)
		}
	}
	var sa sockaddr
	n := sa.set(addr)
	if err := bindRaw(fd, &sa, n); err != nil {
		return fail("bind", err)
	}
	if err := unix.Listen(fd, 65535); err != nil { // the kernel caps it at net.core.somaxconn
		return fail("listen", err)
	}
	return fd, sysLocalAddr(fd, &sa), nil
}

func (l *loop) clock() int64 { return int64(time.Since(l.ls.base)) }

// post runs fn in the loop.
func (l *loop) post(fn func(*loop)) {
	l.mu.Lock()
	l.cmds = append(l.cmds, fn)
	l.mu.Unlock()
	sysEventfd(l.wake, true)
}

// register adds h to the epoll set, under a new generation.
func (l *loop) register(h *handle, events uint32) error {
	l.gen++
	h.gen = l.gen
	ev := unix.EpollEvent{Events: events, Fd: int32(h.fd), Pad: int32(h.gen)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, h.fd, &ev); err != nil {
		return err
	}
	for h.fd >= len(l.handles) {
		l.handles = append(l.handles, make([]*handle, len(l.handles)+64)...)
	}
	l.handles[h.fd] = h
	return nil
}

// unregister takes a descriptor that stays open out of the set.
func (l *loop) unregister(fd int) {
	unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, fd, nil)
	if fd < len(l.handles) {
		l.handles[fd] = nil
	}
}

// forget drops the handle of a descriptor about to be closed (closing
// takes it out of the set).
func (l *loop) forget(h *handle) {
	if h.fd >= 0 && h.fd < len(l.handles) && l.handles[h.fd] == h {
		l.handles[h.fd] = nil
	}
}

// run is the loop: it waits for its epoll set to be ready in the
// runtime's own poller (an epoll descriptor is itself pollable), not in
// a blocking epoll_wait, then collects the events with epoll_wait's
// timeout 0. So no thread sits in a system call that the runtime would
// take the processor back from, and wake its monitor for; every system
// call of the loop is a raw one, for the same reason. A loop blocking in
// a raw epoll_wait on a thread of its own, as nginx's workers do, took
// 0-10 % less CPU a connection, but it holds its P while idle, so other
// goroutines would wait for one unless GOMAXPROCS exceeds the loops
// (bench/forward/README.md).
func (l *loop) run() {
	events := make([]unix.EpollEvent, 256)
	f, rc := l.epf, l.rc
	var deadline int64 = -1
	// One closure for the loop's life: made per wait, it would be
	// garbage per batch of events, a heap that grows and a collection
	// that touches the whole binary's data.
	n := 0
	collect := func(fd uintptr) bool {
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		if e != 0 {
			return e != unix.EINTR && e != unix.EAGAIN
		}
		n = int(r)
		return n > 0
	}
	for !l.stop {
		if w := l.w.wait(l.clock()); w >= 0 {
			if d := l.clock() + w; d != deadline {
				deadline = d
				f.SetReadDeadline(l.ls.base.Add(time.Duration(d)))
			}
		} else if deadline != -1 {
			deadline = -1
			f.SetReadDeadline(time.Time{})
		}
		n = 0
		err := rc.Read(collect)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			// The runtime cannot poll it: wait in epoll_wait itself.
			timeout := -1
			if w := l.w.wait(l.clock()); w >= 0 {
				timeout = int((w + int64(time.Millisecond) - 1) / int64(time.Millisecond))
			}
			n, _ = unix.EpollWait(l.ep, events, timeout)
			n = max(n, 0)
		}
		l.dispatch(events[:n])
	}
	l.close()
	f.Close()
}

// dispatch takes a batch of events, then the timers that are due.
func (l *loop) dispatch(events []unix.EpollEvent) {
	l.now = l.clock()
	for i := range events {
		ev := &events[i]
		fd := int(ev.Fd)
		if fd >= len(l.handles) {
			continue
		}
		h := l.handles[fd]
		if h == nil || h.gen != uint32(ev.Pad) {
			continue // closed since, maybe reused
		}
		switch h.kind {
		case hWake:
			l.commands()
		case hListen:
			l.accept(h.ln)
		case hConn:
			l.event(h, ev.Events)
		case hUDP:
			l.udpIn(h.u)
		case hUDPSess:
			l.udpOut(h.s)
		}
	}
	if l.w.n > 0 {
		l.w.advance(l.now, l.expire)
	}
}

func (l *loop) commands() {
	sysEventfd(l.wake, false)
	l.mu.Lock()
	cmds := l.cmds
	l.cmds = nil
	l.mu.Unlock()
	for _, fn := range cmds {
		fn(l)
	}
}

// close releases what the loop holds, when it stops.
func (l *loop) close() {
	for c := l.conns; c != nil; {
		next := c.next
		l.abort(c, nil)
		c = next
	}
	for _, p := range l.pipes {
		sysClose(p.r)
		sysClose(p.w)
	}
	l.pipes = nil
	unix.Close(l.wake)
}

// accept takes the listener's connections until EAGAIN (at most 512, so
// that the loop's connections get their turn).
func (l *loop) accept(ln *listener) {
	for range 512 {
		fd, client, errno := sysAccept(ln.fd, &l.sa)
		switch errno {
		case 0:
			l.open(ln.run, fd, client)
			continue
		case unix.EAGAIN:
			return
		case unix.EINTR, unix.ECONNABORTED:
			continue
		case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
			// Out of descriptors: accepting again at once would not
			// free any. This loop leaves the listener alone for a
			// while; the others still take connections as they can.
			ln.run.fail(os.NewSyscallError("accept", errno))
			l.unregister(ln.fd)
			time.AfterFunc(100*time.Millisecond, func() {
				l.ls.mu.Lock()
				defer l.ls.mu.Unlock()
				if l.ls.stopped {
					return
				}
				l.post(func(l *loop) {
					if ln.run.ctx.Err() == nil {
						l.register(&handle{fd: ln.fd, kind: hListen, ln: ln}, unix.EPOLLIN|unix.EPOLLEXCLUSIVE)
					}
				})
			})
			return
		default:
			return
		}
	}
}

// reset closes a socket with a reset: the client learns at once.
func reset(fd int) {
	sysResetOnClose(fd)
	sysClose(fd)
}

// open starts relaying an accepted connection: checks, a backend, a
// non-blocking connect to its address.
func (l *loop) open(run *running, fd int, client netip.AddrPort) {
	r := run.rule.Load()
	client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	if !r.allowed(client.Addr()) || r.MaxConns > 0 && run.c.active.Load() >= int64(r.MaxConns) {
		run.c.refused.Add(1)
		reset(fd)
		return
	}
	b := run.pool.pick()
	if b == nil {
		run.fail(errors.New("no backend available"))
		reset(fd)
		return
	}
	ap := b.addrPort()
	if !ap.IsValid() {
		// A host name not resolved yet: the dialer resolves it, on the
		// goroutine path.
		l.handOver(run, fd, client, r)
		return
	}
	run.c.conns.Add(1)
	run.c.active.Add(1)
	run.conns.Add(1)
	b.active.Add(1)
	c := l.newConn()
	c.run, c.r, c.b, c.client = run, r, b, client
	c.h[0].fd = fd
	c.last = l.now
	c.idle = int64(r.IdleTimeout)
	l.link(c)
	family := unix.AF_INET6
	if ap.Addr().Is4() {
		family = unix.AF_INET
	}
	bfd, errno := sysSocket(family)
	if errno != 0 {
		l.fail(c, os.NewSyscallError("socket", errno))
		return
	}
	c.h[1].fd = bfd
	sysSetInt(bfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	// A client that speaks first has usually sent its first bytes by now.
	// Read before connecting (and sent, as any bytes held while the
	// connect runs, once it is done), they can ride on the handshake's
	// last ACK: with TCP_QUICKACK off, the kernel holds that ACK back for
	// data (and turns quick ACKs on again as it does). One segment fewer,
	// and a backend that accepts finds the bytes there at once. Not under
	// a PROXY header, which must go first.
	if r.ProxyProtocol == 0 && l.readHeld(c) {
		sysSetInt(bfd, unix.IPPROTO_TCP, unix.TCP_QUICKACK, 0)
	}
	if c.dead {
		return
	}
	switch errno := sysConnect(bfd, &l.sa, ap); errno {
	case unix.EINPROGRESS:
		c.connecting = true
	case 0:
	default:
		l.fail(c, os.NewSyscallError("connect", errno))
		return
	}
	const events = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET
	for i := range c.h {
		if err := l.register(&c.h[i], events); err != nil {
			l.fail(c, fmt.Errorf("epoll: %w", err))
			return
		}
	}
	if c.connecting {
		l.w.add(&c.t, l.now+int64(r.connectTimeout()))
	} else {
		l.connected(c)
	}
}

// readHeld reads the client's bytes into the flow's buffer while the
// backend is not connected yet; true when bytes came. EAGAIN, the end of
// file and an error (which aborts c) are readDone's.
func (l *loop) readHeld(c *conn) bool {
	f, src := &c.d[0], &c.h[0]
	if cap(f.buf)-len(f.buf) < 4096 {
		f.buf = append(f.buf, make([]byte, 4096)...)[:len(f.buf)]
	}
	n, errno := sysRead(src.fd, f.buf[len(f.buf):cap(f.buf)])
	if l.readDone(c, f, src, n, errno, cap(f.buf)-len(f.buf)) {
		return false
	}
	f.buf = f.buf[:len(f.buf)+n]
	return true
}

// handOver gives an accepted connection to the goroutine path.
func (l *loop) handOver(run *running, fd int, client netip.AddrPort, r *Rule) {
	f := os.NewFile(uintptr(fd), "")
	nc, err := net.FileConn(f) // a duplicate
	f.Close()
	if err != nil {
		run.fail(err)
		return
	}
	run.c.conns.Add(1)
	run.c.active.Add(1)
	run.conns.Go(func() {
		defer run.c.active.Add(-1)
		run.handle(nc.(*net.TCPConn), client, r)
	})
}

func (l *loop) newConn() *conn {
	var c *conn
	if n := len(l.free); n > 0 {
		c = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		c = &conn{}
	}
	c.dead = false
	c.t.slot, c.t.v = -1, c
	for i := range c.h {
		c.h[i] = handle{fd: -1, kind: hConn, side: uint8(i), c: c}
	}
	return c
}

func (l *loop) link(c *conn) {
	c.prev, c.next = nil, l.conns
	if c.next != nil {
		c.next.prev = c
	}
	l.conns = c
}

// connected: the backend accepted. The PROXY header goes first, with the
// client's first bytes when they came already.
func (l *loop) connected(c *conn) {
	c.connecting = false
	if c.idle > 0 {
		l.w.add(&c.t, c.last+c.idle)
	} else {
		l.w.del(&c.t)
	}
	if v := c.r.ProxyProtocol; v != 0 {
		hdr := proxyHeader(v, c.client, sysLocalAddr(c.h[0].fd, &l.sa))
		f := &c.d[0]
		f.buf = append(hdr, f.buf[f.off:]...)
		f.off = 0
	}
}

// event takes an epoll event of one of c's sockets.
func (l *loop) event(h *handle, ev uint32) {
	c := h.c
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		h.readable = true
	}
	if ev&unix.EPOLLRDHUP != 0 {
		h.rdhup = true
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		h.writable = true
	}
	if c.connecting && h.side == 1 {
		if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			err := errors.New("connect: the backend hung up")
			if errno := sysSocketError(h.fd); errno != 0 {
				err = os.NewSyscallError("connect", errno)
			}
			l.fail(c, fmt.Errorf("%s: %w", c.b.spec, err))
			return
		}
		if ev&unix.EPOLLOUT == 0 {
			return
		}
		l.connected(c)
	}
	l.move(c, 0)
	l.move(c, 1)
}

// move relays flow i as far as it goes now.
func (l *loop) move(c *conn, i int) {
	f := &c.d[i]
	src, dst := &c.h[i], &c.h[1-i]
	for !c.dead {
		if c.connecting {
			// Only the client's first bytes, into the flow's buffer.
			if i == 1 || f.eof || !src.readable || len(f.buf) >= earlyMax {
				return
			}
			l.readHeld(c)
			continue
		}
		if f.pending() {
			if !dst.writable || !l.flush(c, f, dst) {
				return
			}
			continue
		}
		if f.eof {
			if !f.done {
				l.passEOF(c, i)
			}
			return
		}
		if !src.readable {
			return
		}
		if f.p != nil {
			n, errno := sysSplice(src.fd, f.p.w, spliceChunk)
			switch {
			case errno == unix.EAGAIN:
				src.readable = false
				return
			case errno != 0:
				l.abortErr(c, os.NewSyscallError("splice", errno))
				return
			case n == 0:
				f.eof = true
				continue
			}
			f.inPipe, f.n, c.last = n, f.n+uint64(n), l.now
			continue
		}
		n, errno := sysRead(src.fd, l.buf)
		if l.readDone(c, f, src, n, errno, len(l.buf)) {
			continue
		}
		if !dst.writable {
			f.buf, f.off = append(l.hold(f, n), l.buf[:n]...), 0
			return
		}
		// When the source's end came with these bytes, they wait for
		// the FIN that passEOF sends next: one segment, not two, and
		// one wakeup of the peer.
		w, errno := sysSend(dst.fd, l.buf[:n], f.eof)
		switch errno {
		case 0:
		case unix.EAGAIN:
			w = 0
		default:
			l.abortErr(c, os.NewSyscallError("write", errno))
			return
		}
		if w < n { // the rest is written at once again, until EAGAIN
			f.buf, f.off = append(l.hold(f, n-w), l.buf[w:n]...), 0
		}
		if f.n >= spliceAfter && f.p == nil {
			if f.p = l.pipe(); f.p != nil && !c.spliced {
				c.spliced = true
				c.run.c.spliced.Add(1)
			}
		}
	}
}

// readDone takes a read's result; true when there are no bytes to pass
// on (EAGAIN, end of file, an error), false when n bytes came.
func (l *loop) readDone(c *conn, f *flow, src *handle, n int, errno unix.Errno, asked int) bool {
	switch {
	case errno == unix.EAGAIN:
		src.readable = false
		return true
	case errno != 0:
		l.abortErr(c, os.NewSyscallError("read", errno))
		return true
	case n == 0:
		f.eof = true
		return true
	}
	f.n += uint64(n)
	c.last = l.now
	if n < asked {
		// All that was queued: a new arrival is a new edge. After the
		// peer's shutdown, nothing more comes: that was the end.
		if src.rdhup {
			f.eof = true
		} else {
			src.readable = false
		}
	}
	return false
}

// wrote says whether a write (op) to dst that returned errno went
// through: EAGAIN marks dst full, another error aborts the connection.
func (l *loop) wrote(c *conn, dst *handle, op string, errno unix.Errno) bool {
	switch errno {
	case 0:
		return true
	case unix.EAGAIN:
		dst.writable = false
	default:
		l.abortErr(c, os.NewSyscallError(op, errno))
	}
	return false
}

// flush writes what flow f holds to dst; false when dst takes no more
// (or the connection ended).
func (l *loop) flush(c *conn, f *flow, dst *handle) bool {
	if f.inPipe > 0 {
		w, errno := sysSplice(f.p.r, dst.fd, f.inPipe)
		if !l.wrote(c, dst, "splice", errno) {
			return false
		}
		// A short count is no sign that the socket is full (its writable
		// edge may not come): only EAGAIN is.
		f.inPipe -= w
		return true
	}
	w, errno := sysSend(dst.fd, f.buf[f.off:], f.eof)
	if !l.wrote(c, dst, "write", errno) {
		return false
	}
	f.off += w
	if f.off < len(f.buf) {
		return true // again, until EAGAIN
	}
	if cap(f.buf) == loopBuf {
		l.putBuf(f.buf) // one for a burst: back to the loop
		f.buf = nil
	}
	f.buf, f.off = f.buf[:0], 0
	return true
}

// passEOF passes flow i's end of file on: a shutdown of the other side's
// writing, or, when the other way has ended too, the close of both.
func (l *loop) passEOF(c *conn, i int) {
	c.d[i].done = true
	if c.d[1-i].done {
		l.finish(c, false)
		return
	}
	sysShutdownWrite(c.h[1-i].fd)
}

// fail counts err and resets the client.
func (l *loop) fail(c *conn, err error) {
	c.run.fail(err)
	l.finish(c, true)
}

// abortErr ends both ways with a reset to the client, counting err.
func (l *loop) abortErr(c *conn, err error) {
	if !c.dead {
		c.run.fail(err)
	}
	l.finish(c, true)
}

// abort ends both ways with a reset to the client.
func (l *loop) abort(c *conn, _ error) { l.finish(c, true) }

func (l *loop) expire(t *timer[expirer]) { t.v.expire(l) }

// expire is a connection's timer: the connect timeout, or the idle
// timeout once the last byte is idle long enough ago.
func (c *conn) expire(l *loop) {
	if c.dead {
		return
	}
	if c.connecting {
		l.fail(c, fmt.Errorf("%s: connect: timed out after %v", c.b.spec, c.r.connectTimeout()))
		return
	}
	if c.idle > 0 && l.now-c.last < c.idle {
		l.w.add(&c.t, c.last+c.idle)
		return
	}
	l.abort(c, nil)
}

// finish closes c's sockets (with a reset to the client when rst), gives
// back its pipes, and counts its bytes.
func (l *loop) finish(c *conn, rst bool) {
	if c.dead {
		return
	}
	c.dead = true
	l.w.del(&c.t)
	for i := range c.h {
		h := &c.h[i]
		if h.fd < 0 {
			continue
		}
		l.forget(h)
		if rst && i == 0 {
			sysResetOnClose(h.fd)
		}
		sysClose(h.fd)
		h.fd = -1
	}
	for i := range c.d {
		f := &c.d[i]
		if f.p != nil {
			l.putPipe(f.p, f.inPipe == 0)
		}
		if cap(f.buf) == loopBuf {
			l.putBuf(f.buf)
			f.buf = nil
		}
	}
	run := c.run
	run.c.bytesIn.Add(c.d[0].n)
	run.c.bytesOut.Add(c.d[1].n)
	c.b.active.Add(-1)
	run.c.active.Add(-1)
	if c.prev == nil {
		l.conns = c.next
	} else {
		c.prev.next = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	run.conns.Done()
	// The record goes back for reuse; its buffers only when small.
	*c = conn{d: [2]flow{{buf: small(c.d[0].buf)}, {buf: small(c.d[1].buf)}}}
	c.dead = true
	if len(l.free) < freeConns {
		l.free = append(l.free, c)
	}
}

// hold returns f's buffer, empty, with room for n bytes that the other
// side cannot take now: a loop buffer's worth from the loop's spares
// when f's own is too small. The loops allocate nothing per connection
// in their steady state: garbage would grow the heap and bring
// collections, which touch the whole binary's data.
func (l *loop) hold(f *flow, n int) []byte {
	if cap(f.buf) >= n {
		return f.buf[:0]
	}
	if k := len(l.bufs); k > 0 {
		b := l.bufs[k-1]
		l.bufs = l.bufs[:k-1]
		return b[:0]
	}
	return make([]byte, 0, loopBuf)
}

// putBuf keeps a loop buffer's worth for the next flow that has to hold
// bytes back.
func (l *loop) putBuf(b []byte) {
	if len(l.bufs) < freeBufs {
		l.bufs = append(l.bufs, b[:0])
	}
}

func small(b []byte) []byte {
	if cap(b) > 4096 {
		return nil
	}
	return b[:0]
}

// pipe returns an empty pipe, from the pool or new; nil if none can be
// made (the flow keeps copying).
func (l *loop) pipe() *pipe {
	if n := len(l.pipes); n > 0 {
		p := l.pipes[n-1]
		l.pipes = l.pipes[:n-1]
		return p
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil
	}
	unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, pipeSize)
	return &pipe{r: fds[0], w: fds[1]}
}

// putPipe keeps an empty pipe for the next flow, or closes it.
func (l *loop) putPipe(p *pipe, empty bool) {
	if empty && len(l.pipes) < freePipes {
		l.pipes = append(l.pipes, p)
		return
	}
	sysClose(p.r)
	sysClose(p.w)
}
