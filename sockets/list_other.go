//go:build !linux && !darwin && !windows

package sockets

import "context"

// List returns ErrNotImplemented: portctl reads the socket table only on
// Linux, macOS and Windows.
func List(ctx context.Context, q Query) (*Table, error) {
	return nil, ErrNotImplemented
}
