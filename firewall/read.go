package firewall

import (
	"errors"
)

// ErrUnsupported is returned by Read on systems whose firewall this
// package cannot read.
var ErrUnsupported = errors.New("reading the firewall is not supported on this OS")

// ErrPermission is returned by Read when the kernel refuses to show the
// ruleset: reading it needs root or CAP_NET_ADMIN.
var ErrPermission = errors.New("reading the ruleset needs root or CAP_NET_ADMIN")

// Options change what Read reads.
type Options struct {
	// NetNS is the network namespace to read, as a path
	// (/proc/PID/ns/net, /run/netns/NAME); empty for this process's own.
	NetNS string
	// NoLegacy skips the legacy iptables tables.
	NoLegacy bool
}

// Read reads the ruleset of a network namespace: every nftables table
// and, unless opts.NoLegacy, the legacy iptables tables.
//   func Read(ctx context.Context, opts Options) (*Ruleset, error)
// ReadHost reads what the evaluator needs of the machine outside the
// ruleset.
//   func ReadHost(opts Options) (*Host, error)
// Both live in read_linux.go and read_other.go.
