//go:build !linux

package firewall

import "context"

// Block needs nftables, which only Linux has.
func Block(ctx context.Context, opts Options, b PortBlock) error { return ErrUnsupported }

// Unblock needs nftables, which only Linux has.
func Unblock(ctx context.Context, opts Options, b PortBlock) error { return ErrUnsupported }

// Blocks needs nftables, which only Linux has.
func Blocks(ctx context.Context, opts Options) ([]PortBlock, error) { return nil, ErrUnsupported }
