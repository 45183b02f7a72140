//go:build !linux

package scan

import (
	"context"
	"fmt"
)

// SYN runs the TCP SYN engine, which needs Linux raw sockets: elsewhere it
// returns ErrUnsupported.
func SYN(ctx context.Context, cfg SynConfig, next func() (Probe, bool), emit func(Result)) error {
	return fmt.Errorf("%w: the SYN engine runs on Linux only; use -sT", ErrUnsupported)
}
