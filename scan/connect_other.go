//go:build !linux

package scan

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/portctl/portctl/registry"
)

// Connect runs the TCP connect engine with a pool of goroutines dialing
// through the net package (Linux uses epoll directly). Results are emitted
// from the calling goroutine.
func Connect(ctx context.Context, cfg ConnectConfig, next func() (Probe, bool), emit func(Result)) error {
	conc := cfg.concurrency(0)
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = InitialTimeout
	}
	retries := cfg.retries()
	return probePool(ctx, conc, cfg.Rate, next, emit, func() func(Probe, func()) Result {
		d := net.Dialer{Timeout: timeout}
		return func(p Probe, wait func()) Result {
			r := Result{Addr: p.Addr, Port: p.Port, Proto: registry.TCP, Host: p.Host}
			for r.Tries <= retries {
				wait()
				r.Tries++
				start := time.Now()
				c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(p.Addr, p.Port).String())
				r.RTT = time.Since(start)
				if err == nil {
					c.Close()
					r.State, r.Reason = Open, ReasonSynAck
					break
				}
				r.State, r.Reason = classifyDial(err)
				if r.Reason != ReasonNoResponse {
					break
				}
				r.RTT = 0
			}
			return r
		}
	})
}

func classifyDial(err error) (State, Reason) {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Closed, ReasonConnRefused
	case errors.Is(err, syscall.ECONNRESET):
		return Closed, ReasonReset
	case errors.Is(err, syscall.EHOSTUNREACH):
		return Filtered, ReasonHostUnreach
	case errors.Is(err, syscall.ENETUNREACH):
		return Filtered, ReasonNetUnreach
	case errors.As(err, &ne) && ne.Timeout():
		return Filtered, ReasonNoResponse
	}
	return Filtered, ReasonError
}

// RaiseFileLimit does nothing where the OS has no such limit to raise.
func RaiseFileLimit() (int, error) { return 0, os.ErrInvalid }
