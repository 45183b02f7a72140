//go:build !linux

package netconf

// ReadNetNS returns ErrNotImplemented for a namespace: only Linux has
// network namespaces. An empty path reads this machine's, as Read does.
func ReadNetNS(path string) (Host, error) {
	if path == "" {
		return Read()
	}
	h, _ := Read()
	return h, ErrNotImplemented
}
