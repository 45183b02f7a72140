//go:build !linux

package sockets

import "context"

// ListAll returns ErrNotImplemented: network namespaces are a Linux
// feature.
func ListAll(ctx context.Context, q Query) (*Table, error) {
	return nil, ErrNotImplemented
}
