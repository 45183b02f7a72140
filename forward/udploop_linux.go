package forward

import (
	"fmt"
	"net/netip"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDP on the event loops: a UDP rule's socket belongs to one loop, which
// reads its datagrams until EAGAIN, keeps a session per client address
// (a socket connected to the backend chosen for it) in a map of its own,
// and sends the backend's datagrams back from the rule's socket to the
// client's address as it came. A session ends after its idle timeout, a
// timer on the loop's wheel checked lazily, or on an ICMP error from the
// backend. Sockets are level-triggered: a loop takes at most udpBatch
// datagrams from one at a time, so that the others get their turn.

const udpBatch = 64

// udpListener is a UDP rule's socket on its loop.
type udpListener struct {
	fd       int
	run      *running
	addr     netip.AddrPort
	l        *loop
	h        handle
	sessions map[netip.AddrPort]*udpFlow
	closed   sync.Once
}

// udpFlow is one client's session.
type udpFlow struct {
	u      *udpListener
	client netip.AddrPort
	sa     sockaddr // the client's address as the rule's socket gave it
	saLen  uint32
	b      *backend
	h      handle
	last   int64
	idle   int64
	t      timer[expirer]
	ended  bool
}

// listenUDP opens run's socket and gives it to one of the loops.
func (ls *loops) listenUDP(run *running, addr netip.AddrPort) (*udpListener, error) {
	family := unix.AF_INET6
	if addr.Addr().Is4() {
		family = unix.AF_INET
	}
	r, _, errno := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if errno != 0 {
		return nil, os.NewSyscallError("socket", errno)
	}
	fd := int(r)
	if family == unix.AF_INET6 && addr.Addr().IsUnspecified() {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			unix.Close(fd)
			return nil, os.NewSyscallError("setsockopt", err)
		}
	}
	var sa sockaddr
	if err := bindRaw(fd, &sa, sa.set(addr)); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	u := &udpListener{fd: fd, run: run, addr: sysLocalAddr(fd, &sa), sessions: map[netip.AddrPort]*udpFlow{}}
	ls.mu.Lock()
	u.l = ls.all[ls.next%len(ls.all)]
	ls.next++
	ls.mu.Unlock()
	var err error
	ls.on(u.l, func(l *loop) {
		u.h = handle{fd: fd, kind: hUDP, u: u}
		err = l.register(&u.h, unix.EPOLLIN)
	})
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	return u, nil
}

// unlistenUDP takes the rule's socket off its loop, ends its sessions
// and closes it.
func (ls *loops) unlistenUDP(u *udpListener) {
	u.closed.Do(func() {
		ls.on(u.l, func(l *loop) {
			l.unregister(u.fd)
			for _, s := range u.sessions {
				l.udpEnd(s)
			}
		})
		unix.Close(u.fd)
	})
}

// on runs fn in loop l and waits for it (not at all once the loops have
// stopped).
func (ls *loops) on(l *loop, fn func(*loop)) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.stopped {
		return
	}
	done := make(chan struct{})
	l.post(func(l *loop) {
		fn(l)
		close(done)
	})
	<-done
}

func sysRecvfrom(fd int, p []byte, sa *sockaddr) (int, uint32, unix.Errno) {
	n := uint32(unix.SizeofSockaddrAny)
	r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0,
		uintptr(unsafe.Pointer(&sa.raw)), uintptr(unsafe.Pointer(&n)))
	return int(r), n, e
}

func sysSendto(fd int, p []byte, sa *sockaddr, n uint32) unix.Errno {
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0,
		uintptr(unsafe.Pointer(&sa.raw)), uintptr(n))
	return e
}

// udpIn takes the clients' datagrams to their sessions.
func (l *loop) udpIn(u *udpListener) {
	run := u.run
	var in uint64
	defer func() { run.c.bytesIn.Add(in) }()
	for range udpBatch {
		n, saLen, errno := sysRecvfrom(u.fd, l.buf, &l.sa)
		switch errno {
		case 0:
		case unix.EAGAIN:
			return
		default:
			continue // an error queued on the socket: nothing to pass on
		}
		from := l.sa.addrPort(saLen)
		client := netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		s := u.sessions[client]
		if s == nil {
			if s = l.udpOpen(u, client, saLen); s == nil {
				continue
			}
		}
		s.last = l.now
		if n == 0 {
			if _, _, errno = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.h.fd), 0, 0, 0, 0, 0); errno != 0 {
				run.fail(os.NewSyscallError("write", errno))
			}
			continue
		}
		if _, errno := sysSend(s.h.fd, l.buf[:n], false); errno != 0 {
			run.fail(os.NewSyscallError("write", errno))
			continue
		}
		in += uint64(n)
	}
}

// udpOpen opens the client's session, if the rule allows; nil when the
// datagram is refused.
func (l *loop) udpOpen(u *udpListener, client netip.AddrPort, saLen uint32) *udpFlow {
	run := u.run
	b, r := run.admitUDP(client, len(u.sessions))
	if b == nil {
		return nil
	}
	ap := b.addrPort()
	if !ap.IsValid() {
		run.fail(fmt.Errorf("%s: not resolved yet", b.spec))
		return nil
	}
	family := unix.AF_INET6
	if ap.Addr().Is4() {
		family = unix.AF_INET
	}
	fd, _, errno := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if errno != 0 {
		run.fail(os.NewSyscallError("socket", errno))
		return nil
	}
	var sa sockaddr
	if errno := sysConnect(int(fd), &sa, ap); errno != 0 {
		sysClose(int(fd))
		run.fail(os.NewSyscallError("connect", errno))
		return nil
	}
	s := &udpFlow{u: u, client: client, sa: l.sa, saLen: saLen, b: b, last: l.now}
	s.t.slot, s.t.v = -1, s
	s.h = handle{fd: int(fd), kind: hUDPSess, s: s}
	if err := l.register(&s.h, unix.EPOLLIN); err != nil {
		sysClose(int(fd))
		run.fail(fmt.Errorf("epoll: %w", err))
		return nil
	}
	s.idle = int64(r.IdleTimeout)
	if s.idle <= 0 {
		s.idle = int64(defaultUDPIdle)
	}
	l.w.add(&s.t, s.last+s.idle)
	u.sessions[client] = s
	b.active.Add(1)
	run.c.conns.Add(1)
	run.c.active.Add(1)
	run.conns.Add(1)
	return s
}

// udpOut sends the backend's datagrams back to the session's client.
func (l *loop) udpOut(s *udpFlow) {
	u, run := s.u, s.u.run
	var out uint64
	defer func() { run.c.bytesOut.Add(out) }()
	for range udpBatch {
		n, errno := sysRead(s.h.fd, l.buf)
		switch errno {
		case 0:
		case unix.EAGAIN:
			return
		default: // an ICMP error: the backend's port is closed
			run.fail(os.NewSyscallError("read", errno))
			l.udpEnd(s)
			return
		}
		s.last = l.now
		var e unix.Errno
		if n == 0 {
			_, _, e = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(u.fd), 0, 0, 0, uintptr(unsafe.Pointer(&s.sa.raw)), uintptr(s.saLen))
		} else {
			e = sysSendto(u.fd, l.buf[:n], &s.sa, s.saLen)
		}
		if e != 0 {
			run.fail(os.NewSyscallError("sendto", e))
			continue
		}
		out += uint64(n)
	}
}

// expire ends the session once idle for its timeout.
func (s *udpFlow) expire(l *loop) {
	if s.ended {
		return
	}
	if l.now-s.last < s.idle {
		l.w.add(&s.t, s.last+s.idle)
		return
	}
	l.udpEnd(s)
}

// udpEnd closes the session.
func (l *loop) udpEnd(s *udpFlow) {
	if s.ended {
		return
	}
	s.ended = true
	l.w.del(&s.t)
	l.forget(&s.h)
	sysClose(s.h.fd)
	u := s.u
	if u.sessions[s.client] == s {
		delete(u.sessions, s.client)
	}
	s.b.active.Add(-1)
	u.run.c.active.Add(-1)
	u.run.conns.Done()
}
