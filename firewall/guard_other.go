//go:build !linux

package firewall

import (
	"context"
	"net/netip"
	"time"
)

// Guard needs nftables, which only Linux has.
func Guard(ctx context.Context, opts Options, g GuardRules) error { return ErrUnsupported }

// Unguard needs nftables, which only Linux has.
func Unguard(ctx context.Context, opts Options) error { return ErrUnsupported }

// GuardBan needs nftables, which only Linux has.
func GuardBan(ctx context.Context, opts Options, a netip.Addr, d time.Duration) error {
	return ErrUnsupported
}

// GuardOpen needs nftables, which only Linux has.
func GuardOpen(ctx context.Context, opts Options, a netip.Addr, p GuardPort, d time.Duration) error {
	return ErrUnsupported
}
