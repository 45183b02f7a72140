//go:build !windows

package netconf

import "context"

// ReadFull returns what Read does. Only on Windows does it read more
// (with netsh); elsewhere Read already reads everything.
func ReadFull(ctx context.Context) (Host, error) { return Read() }
