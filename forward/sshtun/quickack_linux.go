package sshtun

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// quickAcker returns a function that asks the kernel to acknowledge the
// next segments of c at once (TCP_QUICKACK), or nil. sshd does not set
// TCP_NODELAY on a session without a terminal, so when it sends two small
// packets in a row (a channel's last data, then its EOF) the second waits
// for the acknowledgement of the first; a delayed ACK makes that 40 ms
// per short connection. Linux leaves quick-ack mode by itself, so it is
// asked again after every read.
func quickAcker(c net.Conn) func() {
	rc := tcpRawConn(c)
	if rc == nil {
		return nil
	}
	// A raw system call, as with rawIO: one the runtime sees would wake
	// sysmon from its sleep, and set it polling every 20 µs again.
	set := func(fd uintptr) {
		unix.RawSyscall6(unix.SYS_SETSOCKOPT, fd, syscall.IPPROTO_TCP, unix.TCP_QUICKACK, uintptr(unsafe.Pointer(&one)), 4, 0)
	}
	return func() { rc.Control(set) }
}

// one is TCP_QUICKACK's value.
var one int32 = 1
