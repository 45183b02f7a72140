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

// UDP runs the UDP engine with a pool of goroutines, one connected UDP
// socket per probe through the net package (Linux drives sockets with
// epoll and reads each ICMP error's type and code). Any datagram back
// means open; an ICMP port unreachable, which a connected socket reports
// as ECONNREFUSED, closed; other errors the OS reports, filtered; nothing
// after every retry, open|filtered. Ports whose protocol answers from
// another port (TFTP, SSDP) use an unconnected socket, which sees no ICMP
// error here: they read open or open|filtered. Results are emitted from
// the calling goroutine.
func UDP(ctx context.Context, cfg UDPConfig, next func() (Probe, bool), emit func(Result)) error {
	conc := cfg.concurrency(0)
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = InitialTimeout
	}
	retries := cfg.retries()
	return probePool(ctx, conc, cfg.Rate, next, emit, func() func(Probe, func()) Result {
		buf := make([]byte, 2048)
		return func(p Probe, wait func()) Result { return udpProbe(ctx, p, timeout, retries, wait, buf) }
	})
}

// udpProbe sends p's datagram until an answer comes or the tries run out.
func udpProbe(ctx context.Context, p Probe, timeout time.Duration, retries int, wait func(), buf []byte) Result {
	r := Result{Addr: p.Addr, Port: p.Port, Proto: registry.UDP, Host: p.Host, State: OpenFiltered, Reason: ReasonNoResponse}
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.Addr, p.Port))
	other := udpAnswersFromOtherPort(p.Port)
	var c *net.UDPConn
	var err error
	if other {
		c, err = net.ListenUDP("udp", nil)
	} else {
		c, err = net.DialUDP("udp", nil, to)
	}
	if err != nil {
		r.State, r.Reason = classifyUDPDial(err)
		return r
	}
	defer c.Close()
	for r.Tries <= retries && ctx.Err() == nil {
		wait()
		r.Tries++
		start := time.Now()
		if other {
			_, err = c.WriteToUDP(udpPayloads[p.Port], to)
		} else {
			_, err = c.Write(udpPayloads[p.Port])
		}
		if err != nil {
			r.State, r.Reason = classifyUDPDial(err)
			return r
		}
		c.SetReadDeadline(start.Add(timeout))
		for {
			_, from, err := c.ReadFromUDPAddrPort(buf)
			if err == nil {
				if other && from.Addr().Unmap() != p.Addr.Unmap() {
					continue
				}
				r.State, r.Reason, r.RTT = Open, ReasonUDPResponse, time.Since(start)
				return r
			}
			if st, reason := classifyUDPDial(err); reason != ReasonNoResponse {
				r.State, r.Reason, r.RTT = st, reason, time.Since(start)
				return r
			}
			break
		}
	}
	return r
}

func classifyUDPDial(err error) (State, Reason) {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Closed, ReasonPortUnreach
	case errors.Is(err, syscall.EHOSTUNREACH):
		return Filtered, ReasonHostUnreach
	case errors.Is(err, syscall.ENETUNREACH):
		return Filtered, ReasonNetUnreach
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return OpenFiltered, ReasonNoResponse
	}
	return Filtered, ReasonError
}
