//go:build !linux

package firewall

import "context"

// Tracer is a running trace; only Linux has the nftables trace.
type Tracer struct{}

// Trace needs the nftables trace, which only Linux has.
func Trace(ctx context.Context, opts Options, f TraceFilter, fn func(TraceEvent)) error {
	return ErrUnsupported
}

// StartTrace needs the nftables trace, which only Linux has.
func StartTrace(ctx context.Context, opts Options, f TraceFilter, fn func(TraceEvent)) (*Tracer, error) {
	return nil, ErrUnsupported
}

// Stop stops nothing: no trace runs here.
func (t *Tracer) Stop() ([]TraceEvent, error) { return nil, ErrUnsupported }
