//go:build !linux

package cli

import (
	"errors"
	"net"
	"time"
)

// dialIn connects to addr; other network namespaces are Linux's alone.
func dialIn(ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	if ns != "" {
		return nil, errors.New("network namespaces are not supported on this OS")
	}
	return net.DialTimeout(network, addr, timeout)
}
