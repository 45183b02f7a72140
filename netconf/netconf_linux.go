package netconf

import (
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/portctl/portctl/netns"
)

// Read returns the settings of the running Linux host from /proc/sys.
func Read() (Host, error) { return ReadFS(os.DirFS("/proc/sys/net/ipv4")) }

// ReadNetNS returns the settings of the network namespace whose file is
// path (such as /run/netns/NAME): every setting Host holds is kept per
// namespace, and /proc/sys/net shows those of the namespace of the thread
// that reads it. The files are read on a thread of their own that enters
// the namespace; the thread is thrown away should it fail to come back.
// An empty path reads this namespace's, as Read does.
func ReadNetNS(path string) (Host, error) {
	if path == "" {
		return Read()
	}
	var h Host
	var rerr error
	if err := netns.Do(path, func() { h, rerr = Read() }); err != nil {
		return Host{}, fmt.Errorf("netconf: %w", err)
	}
	return h, rerr
}

// ReadFS reads the settings from a tree laid out like /proc/sys/net/ipv4.
// A missing file leaves the kernel's default in place.
func ReadFS(fsys fs.FS) (Host, error) {
	h := Host{
		Ephemeral:         defaultLinuxRange,
		EphemeralDefault:  true,
		UnprivilegedStart: 1024,
		PrivilegeHint:     "root or CAP_NET_BIND_SERVICE",
		TCPTWReuse:        -1,
		TCPSyncookies:     -1,
	}
	if b, err := fs.ReadFile(fsys, "tcp_tw_reuse"); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v >= 0 && v <= 2 {
			h.TCPTWReuse = v
		}
	}
	if b, err := fs.ReadFile(fsys, "tcp_syncookies"); err == nil {
		v, err := ParseSyncookies(b)
		if err != nil {
			return h, err
		}
		h.TCPSyncookies = v
	}
	if b, err := fs.ReadFile(fsys, "ip_local_port_range"); err == nil {
		r, err := ParsePortRange(b)
		if err != nil {
			return h, err
		}
		h.Ephemeral, h.EphemeralDefault = r, false
	}
	if b, err := fs.ReadFile(fsys, "ip_local_reserved_ports"); err == nil {
		r, err := ParseReserved(b)
		if err != nil {
			return h, err
		}
		h.Reserved = r
	}
	if b, err := fs.ReadFile(fsys, "ip_unprivileged_port_start"); err == nil {
		p, err := ParseUnprivilegedStart(b)
		if err != nil {
			return h, err
		}
		h.UnprivilegedStart = p
	}
	return h, nil
}
