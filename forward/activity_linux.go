package forward

import (
	"net"
	"sync"

	"golang.org/x/sys/unix"
)

// activityMeter tells whether a connection pair moved bytes since it was
// last asked, from the kernel's TCP_INFO counters (bytes received, bytes
// acknowledged by the peer) of both sockets: io.Copy reports its bytes
// only when it returns, and the splice path has nothing to hook into.
type activityMeter struct {
	conns [2]*net.TCPConn
	mu    sync.Mutex // both directions ask
	last  uint64
}

func (m *activityMeter) init(a, b *net.TCPConn) {
	m.conns = [2]*net.TCPConn{a, b}
	m.last = m.total()
}

func (m *activityMeter) total() uint64 {
	var sum uint64
	for _, c := range m.conns {
		rc, err := c.SyscallConn()
		if err != nil {
			continue
		}
		rc.Control(func(fd uintptr) {
			if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				sum += info.Bytes_received + info.Bytes_acked
			}
		})
	}
	return sum
}

// moved reports whether bytes moved either way since the last call.
func (m *activityMeter) moved() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.total()
	moved := t != m.last
	m.last = t
	return moved
}
