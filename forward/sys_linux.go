package forward

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loops' system calls on non-blocking sockets and pipes, as raw
// calls: none of them blocks, so the runtime's bookkeeping around a
// blocking call (handing the processor on) is only cost. Each returns
// the kernel's errno, 0 on success.

func sysRead(fd int, p []byte) (int, unix.Errno) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(r), e
}

// sysSend writes with MSG_NOSIGNAL: a peer that has gone is an EPIPE,
// not a signal. With more, the bytes wait for what follows (MSG_MORE):
// a shutdown or close then sends them with the FIN, in one segment.
func sysSend(fd int, p []byte, more bool) (int, unix.Errno) {
	flags := uintptr(unix.MSG_NOSIGNAL)
	if more {
		flags |= unix.MSG_MORE
	}
	r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), flags, 0, 0)
	return int(r), e
}

func sysSplice(in, out, n int) (int, unix.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	return int(r), e
}

func sysClose(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

func sysShutdownWrite(fd int) {
	unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_WR, 0)
}

func sysSocket(family int) (int, unix.Errno) {
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	return int(r), e
}

// sockaddr is a struct sockaddr_in or sockaddr_in6 (linux/in.h,
// linux/in6.h) as the kernel reads and writes it.
type sockaddr struct {
	raw unix.RawSockaddrAny
}

// set fills sa with ap and returns its length.
func (sa *sockaddr) set(ap netip.AddrPort) uintptr {
	b := (*[unix.SizeofSockaddrAny]byte)(unsafe.Pointer(&sa.raw))
	clear(b[:unix.SizeofSockaddrInet6])
	a := ap.Addr()
	if a.Is4() {
		binary.NativeEndian.PutUint16(b[0:], unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], ap.Port())
		a4 := a.As4()
		copy(b[4:8], a4[:])
		return unix.SizeofSockaddrInet4
	}
	binary.NativeEndian.PutUint16(b[0:], unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], ap.Port())
	a16 := a.As16()
	copy(b[8:24], a16[:])
	return unix.SizeofSockaddrInet6
}

// addrPort reads the address the kernel wrote, n bytes of it.
func (sa *sockaddr) addrPort(n uint32) netip.AddrPort {
	b := (*[unix.SizeofSockaddrAny]byte)(unsafe.Pointer(&sa.raw))
	if n < 2 {
		return netip.AddrPort{}
	}
	switch binary.NativeEndian.Uint16(b[0:]) {
	case unix.AF_INET:
		if n < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:]))
	case unix.AF_INET6:
		if n < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), binary.BigEndian.Uint16(b[2:]))
	}
	return netip.AddrPort{}
}

func sysAccept(fd int, sa *sockaddr) (int, netip.AddrPort, unix.Errno) {
	n := uint32(unix.SizeofSockaddrAny)
	r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&sa.raw)), uintptr(unsafe.Pointer(&n)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	return int(r), sa.addrPort(n), 0
}

func sysConnect(fd int, sa *sockaddr, ap netip.AddrPort) unix.Errno {
	n := sa.set(ap)
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa.raw)), n)
	return e
}

func sysLocalAddr(fd int, sa *sockaddr) netip.AddrPort {
	n := uint32(unix.SizeofSockaddrAny)
	_, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&sa.raw)), uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return netip.AddrPort{}
	}
	return sa.addrPort(n)
}

// sysResetOnClose makes the socket's close a reset (SO_LINGER 0).
func sysResetOnClose(fd int) {
	l := unix.Linger{Onoff: 1, Linger: 0}
	unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_LINGER, uintptr(unsafe.Pointer(&l)), unsafe.Sizeof(l), 0)
}

func sysSetInt(fd, level, opt, v int) unix.Errno {
	v32 := int32(v)
	_, _, e := unix.RawSyscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(unsafe.Pointer(&v32)), 4, 0)
	return e
}

// sysSocketError is the socket's pending error (SO_ERROR).
func sysSocketError(fd int) unix.Errno {
	var v int32
	n := uint32(4)
	if _, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_ERROR, uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)), 0); e != 0 {
		return e
	}
	return unix.Errno(v)
}

// sysEventfd adds 1 to an eventfd's counter, or reads it back to 0.
func sysEventfd(fd int, write bool) {
	var v uint64
	nr := uintptr(unix.SYS_READ)
	if write {
		v, nr = 1, unix.SYS_WRITE
	}
	unix.RawSyscall(nr, uintptr(fd), uintptr(unsafe.Pointer(&v)), 8)
}

func bindRaw(fd int, sa *sockaddr, n uintptr) error {
	_, _, e := unix.RawSyscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&sa.raw)), n)
	if e != 0 {
		return e
	}
	return nil
}
