package sockets

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/netns"
)

// diagConn is a NETLINK_SOCK_DIAG socket. It is not safe for concurrent use.
type diagConn struct {
	fd  int
	seq uint32
	buf []byte
}

// openDiag opens a sock_diag socket; with nsPath set (a file such as
// /run/netns/NAME) the socket is made inside that network namespace, and
// its dumps list that namespace's sockets.
func openDiag(nsPath string) (*diagConn, error) {
	if nsPath == "" {
		return newDiagConn()
	}
	var c *diagConn
	var cerr error
	if err := netns.Do(nsPath, func() { c, cerr = newDiagConn() }); err != nil {
		return nil, fmt.Errorf("sockets: %w", wrapErrno(err))
	}
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
// filtered by port in the kernel, appending them to out. Family 0 lists
// the TCP sockets of both families (see diagRequest).
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
