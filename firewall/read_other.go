//go:build !linux

package firewall

import "context"

// Read returns ErrUnsupported: only Linux's ruleset can be read.
func Read(ctx context.Context, opts Options) (*Ruleset, error) {
	return nil, ErrUnsupported
}

// ReadHost returns ErrUnsupported: only Linux's host can be read.
func ReadHost(opts Options) (*Host, error) {
	return nil, ErrUnsupported
}
