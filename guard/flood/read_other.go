//go:build !linux

package flood

import "context"

// Read returns ErrNotImplemented: only Linux keeps these counters where
// portctl can read them.
func Read(ctx context.Context, o Options) (Status, error) {
	return Status{}, ErrNotImplemented
}
