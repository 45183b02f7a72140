package sockets

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// diagConn is a NETLINK_SOCK_DIAG socket. It is not safe for concurrent use.
type diagConn struct {
	fd  int
	seq uint32
	buf []byte
}

// openDiag opens a sock_diag socket; with netns set (a file such as
// /run/netns/NAME) the socket is made inside that network namespace, and
// its dumps list that namespace's sockets.
func openDiag(netns string) (*diagConn, error) {
	if netns == "" {
		return newDiagConn()
	}
	target, err := os.Open(netns)
	if err != nil {
		return nil, fmt.Errorf("sockets: network namespace: %w", err)
	}
	defer target.Close()
	// A namespace belongs to a thread: switch one locked thread, make the
	// socket, switch back. If switching back fails the thread is tainted,
	// and leaving it locked makes the runtime discard it.
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("sockets: network namespace: %w", err)
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("sockets: enter network namespace %s: %w", netns, wrapErrno(err))
	}
	c, cerr := newDiagConn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("sockets: leave network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return c, cerr
}

func newDiagConn() (*diagConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sockets: open sock_diag: %w", wrapErrno(err))
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sockets: bind sock_diag: %w", wrapErrno(err))
	}
	return &diagConn{fd: fd, buf: make([]byte, 64*1024)}, nil
}

// Close closes the socket.
func (c *diagConn) Close() error { return unix.Close(c.fd) }

// dump lists the sockets of one family and protocol in the given states,
// filtered by port in the kernel, appending them to out.
func (c *diagConn) dump(family uint8, protocol int, proto Proto, states StateSet, localPort, remotePort uint16, out []Socket) ([]Socket, error) {
	err := c.walk(family, protocol, proto, states, localPort, remotePort, func(s *Socket) { out = append(out, *s) })
	return out, err
}

// walk is dump calling emit for each socket instead of keeping them.
func (c *diagConn) walk(family uint8, protocol int, proto Proto, states StateSet, localPort, remotePort uint16, emit func(*Socket)) error {
	c.seq++
	req := diagRequest(c.seq, family, protocol, states, localPort, remotePort)
	if err := unix.Sendto(c.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("sockets: dump %s: %w", proto, wrapErrno(err))
	}
	for {
		n, _, err := unix.Recvfrom(c.fd, c.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("sockets: dump %s: %w", proto, wrapErrno(err))
		}
		err = walkDump(c.buf[:n], proto, emit)
		if err == errDone {
			return nil
		}
		if err != nil {
			var de *DumpError
			if errors.As(err, &de) {
				return fmt.Errorf("sockets: dump %s: %w", proto, wrapErrno(unix.Errno(de.Errno)))
			}
			return err
		}
	}
}

// wrapErrno makes permission errors match os.ErrPermission.
func wrapErrno(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%w (%v)", os.ErrPermission, err)
	}
	return err
}
