package sshtun

import (
	"io"
	"net"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawIO reads and writes a TCP socket with raw system calls, for the
// single-P tunnel processes (internal/cli puts an SSH-only forwarder on
// one P): a socket read or write that the runtime sees (entersyscall) and
// that lasts past sysmon's 20 µs tick has its P taken and handed to
// another thread, and the goroutine must win it back on its way out: two
// thread switches for a 32 KiB write to a loopback socket. On a
// non-blocking socket the call never waits, so the P may as well stay.
// EAGAIN parks the goroutine in the runtime's poller as usual.
//
// The functions handed to the poller are made once, with their state in
// the struct, so that a call allocates nothing. One Read at a time;
// writes are serialised.
type rawIO struct {
	rc syscall.RawConn

	rp     []byte
	rn     int
	rerr   syscall.Errno
	readFn func(fd uintptr) bool

	ackFn func(fd uintptr)

	wmu     sync.Mutex
	wp      []byte
	wn      int
	werr    syscall.Errno
	wwait   bool // wait in the poller while the socket is full
	writeFn func(fd uintptr) bool
}

// tcpRawConn returns c's raw connection, or nil when c is not TCP.
func tcpRawConn(c net.Conn) syscall.RawConn {
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

// newRawIO returns c's raw reader and writer, or nil when c is not TCP.
func newRawIO(c net.Conn) *rawIO {
	rc := tcpRawConn(c)
	if rc == nil {
		return nil
	}
	r := &rawIO{rc: rc}
	r.readFn = func(fd uintptr) bool {
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(r.rp))), uintptr(len(r.rp)))
		r.rn, r.rerr = int(n), e
		return e != unix.EAGAIN
	}
	r.ackFn = func(fd uintptr) {
		unix.RawSyscall6(unix.SYS_SETSOCKOPT, fd, syscall.IPPROTO_TCP, unix.TCP_QUICKACK, uintptr(unsafe.Pointer(&one)), 4, 0)
	}
	r.writeFn = func(fd uintptr) bool {
		for r.wn < len(r.wp) {
			p := r.wp[r.wn:]
			n, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
			if e == unix.EAGAIN {
				return !r.wwait
			}
			if e != 0 {
				r.werr = e
				return true
			}
			r.wn += int(n)
		}
		return true
	}
	return r
}

// quickAck asks the kernel to acknowledge the next segments at once
// (TCP_QUICKACK). sshd does not set TCP_NODELAY on a session without a
// terminal, so when it sends two small packets in a row (a channel's last
// data, then its EOF) the second waits for the acknowledgement of the
// first; a delayed ACK makes that 40 ms per short connection. Linux
// leaves quick-ack mode by itself, so it is asked again after every read
// that drains the socket. A raw system call, as the reads: one the
// runtime sees would wake sysmon from its sleep, and set it polling every
// 20 µs again.
func (r *rawIO) quickAck() { r.rc.Control(r.ackFn) }

// one is TCP_QUICKACK's value.
var one int32 = 1

// Read reads into p, waiting for data in the poller.
func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rp = p
	err := r.rc.Read(r.readFn)
	r.rp = nil
	switch {
	case err != nil:
		return 0, err
	case r.rerr != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: r.rerr}
	case r.rn == 0:
		return 0, io.EOF
	}
	return r.rn, nil
}

// Write writes all of p, waiting in the poller while the socket is full.
func (r *rawIO) Write(p []byte) (int, error) { return r.write(p, true) }

// TryWrite writes what the socket takes of p now, without waiting.
func (r *rawIO) TryWrite(p []byte) (int, error) { return r.write(p, false) }

func (r *rawIO) write(p []byte, wait bool) (int, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.wp, r.wn, r.werr, r.wwait = p, 0, 0, wait
	err := r.rc.Write(r.writeFn)
	n := r.wn
	r.wp = nil
	if err == nil && r.werr != 0 {
		err = &net.OpError{Op: "write", Net: "tcp", Err: r.werr}
	}
	return n, err
}
