//go:build !linux

package guard

import (
	"context"
	"errors"
)

// Run needs NFLOG, conntrack and nftables, which only Linux has.
func Run(ctx context.Context, cfg Config, emit func(Event), reload <-chan Config) error {
	return errors.ErrUnsupported
}
