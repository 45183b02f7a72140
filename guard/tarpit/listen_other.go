//go:build !linux

package tarpit

import (
	"errors"
	"net"
)

// listen opens the listeners of o; only Linux has network namespaces.
func listen(o Options) ([]net.Listener, error) {
	if o.NetNS != "" {
		return nil, errors.New("tarpit: network namespaces are Linux only")
	}
	return listenAll(o)
}
