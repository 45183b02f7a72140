package guard

import (
	"errors"
	"net/netip"
	"time"
)

// Config is what Run watches and does.
type Config struct {
	// NetNS is the network namespace file to watch (/run/netns/NAME);
	// empty is this process's own.
	NetNS string
	// Group is the NFLOG group guard's rules log to (default 2222).
	Group uint16
	// Detect tunes the scan detector.
	Detect DetectConfig
	// Block, when not zero, drops everything from a source for that long
	// once it is seen to scan with SYNs. Scans of spoofable kinds are
	// never blocked.
	Block time.Duration
	// Knocks are the knock sequences; KnockWindow the time from a
	// sequence's first knock to its last (default 10 s).
	Knocks      []KnockRule
	KnockWindow time.Duration
	// OpenFor is how long a knock opens its port (default 30 s).
	OpenFor time.Duration
	// SPA checks signed packets sent to SPAPort (UDP); nil turns them
	// off.
	SPA     SPAChecker
	SPAPort uint16
	// Guarded are ports closed to everyone not let in, besides those the
	// knocks open: the ports signed packets may open.
	Guarded []Target
}

// ErrGroupTaken is returned by Run when another program holds the NFLOG
// group.
var ErrGroupTaken = errors.New("choose another group")

// DefaultGroup is the NFLOG group guard logs to unless told otherwise.
const DefaultGroup = 2222

// SPAGrant is what a signed packet asks for and may have: Open let in
// for For, from Addr.
type SPAGrant struct {
	Open Target
	Addr netip.Addr
	For  time.Duration
}

// SPAChecker checks a signed packet's payload, sent from from: it returns
// what the packet may open, or why not (forged, too old, replayed).
type SPAChecker interface {
	CheckSPA(payload []byte, from netip.Addr, now time.Time) (SPAGrant, error)
}

// guarded lists every port the rules close to all but those let in.
func (c Config) guarded() []Target {
	out := append([]Target(nil), c.Guarded...)
	for _, r := range c.Knocks {
		out = append(out, r.Open)
	}
	return out
}

func (c Config) withDefaults() Config {
	if c.Group == 0 {
		c.Group = DefaultGroup
	}
	if c.OpenFor <= 0 {
		c.OpenFor = 30 * time.Second
	}
	return c
}
