package sshtun

import (
	"io"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reads and writes of TCP sockets with raw system calls, for the
// single-P tunnel processes (internal/cli puts an SSH-only forwarder on
// one P): a socket read or write that the runtime sees (entersyscall) and
// that lasts past sysmon's 20 µs tick has its P taken and handed to
// another thread, and the goroutine must win it back on its way out: two
// thread switches for a 32 KiB write to a loopback socket. On a
// non-blocking socket the call never waits, so the P may as well stay.
// EAGAIN parks the goroutine in the runtime's poller as usual.

// rawSocket returns c's raw connection, or nil when c is not TCP.
func rawSocket(c net.Conn) syscall.RawConn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), e
}

func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), e
}

// rawRead reads into p, waiting for data in the poller.
func rawRead(rc syscall.RawConn, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := rc.Read(func(fd uintptr) bool {
		n, errno = sysRead(fd, p)
		return errno != unix.EAGAIN
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: errno}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// rawWrite writes all of p, waiting in the poller while the socket is
// full.
func rawWrite(rc syscall.RawConn, p []byte) (int, error) {
	written := 0
	var errno syscall.Errno
	err := rc.Write(func(fd uintptr) bool {
		for written < len(p) {
			n, e := sysWrite(fd, p[written:])
			if e == unix.EAGAIN {
				return false
			}
			if e != 0 {
				errno = e
				return true
			}
			written += n
		}
		return true
	})
	if err == nil && errno != 0 {
		err = &net.OpError{Op: "write", Net: "tcp", Err: errno}
	}
	return written, err
}

// tryWrite writes what the socket takes of p now, without waiting.
func tryWrite(rc syscall.RawConn, p []byte) (int, error) {
	written := 0
	var errno syscall.Errno
	err := rc.Write(func(fd uintptr) bool {
		for written < len(p) {
			n, e := sysWrite(fd, p[written:])
			if e != 0 {
				if e != unix.EAGAIN {
					errno = e
				}
				return true
			}
			written += n
		}
		return true
	})
	if err == nil && errno != 0 {
		err = &net.OpError{Op: "write", Net: "tcp", Err: errno}
	}
	return written, err
}
