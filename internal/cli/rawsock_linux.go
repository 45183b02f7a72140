package cli

import "golang.org/x/sys/unix"

// canRawSocket reports whether this process may open raw sockets (root or
// CAP_NET_RAW), so the SYN engine can be the default.
func canRawSocket() bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}
