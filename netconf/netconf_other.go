//go:build !linux && !darwin && !windows

package netconf

// Read returns the documented defaults and ErrNotImplemented on an OS that
// portctl cannot query.
func Read() (Host, error) {
	return Host{Ephemeral: defaultIANARange, EphemeralDefault: true, UnprivilegedStart: 1024, PrivilegeHint: "root", TCPTWReuse: -1, TCPSyncookies: -1}, ErrNotImplemented
}
