package netconf

import (
	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/registry"
)

// Read returns the settings of the running macOS host. Since macOS 10.14
// any user may bind any port, so UnprivilegedStart is 0.
func Read() (Host, error) {
	h := Host{Ephemeral: defaultIANARange, EphemeralDefault: true, TCPTWReuse: -1, TCPSyncookies: -1}
	first, err1 := unix.SysctlUint32("net.inet.ip.portrange.first")
	last, err2 := unix.SysctlUint32("net.inet.ip.portrange.last")
	if err1 == nil && err2 == nil && first <= last && last <= 65535 {
		h.Ephemeral = registry.Range{First: uint16(first), Last: uint16(last)}
		h.EphemeralDefault = false
	}
	return h, nil
}
