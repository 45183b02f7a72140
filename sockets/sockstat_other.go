//go:build !linux

package sockets

// ReadSockstat is Linux only.
func ReadSockstat() (Sockstat, error) { return nil, ErrNotImplemented }
