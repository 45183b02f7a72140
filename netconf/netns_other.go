//go:build !linux

package netconf

// ReadNetNS returns ErrNotImplemented: only Linux has network namespaces.
func ReadNetNS(path string) (Host, error) {
	h, _ := Read()
	return h, ErrNotImplemented
}
