package portmap

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// A reflector runs on a host outside the NAT and answers one question:
// is this port reachable from out here? A client connects to it over TCP
// and sends one line of JSON, a ReflectRequest; the reflector connects
// back to the address it sees the client come from (the NAT's external
// address), or to the address the request names, at the port asked, and
// answers one line of JSON, a ReflectAnswer, then closes.
//
// For UDP it sends one datagram, "portctl reflect NONCE", and waits for
// the same bytes to come back: a UDP port is reachable when the service
// behind it (or portctl map add --verify) echoes.

// ReflectRequest asks the reflector to try a port.
type ReflectRequest struct {
	Proto string `json:"proto"` // "tcp" or "udp"
	Port  uint16 `json:"port"`
	// Address, when valid, is where to connect instead of the client's
	// own address as the reflector sees it.
	Address netip.Addr `json:"address,omitzero"`
}

// ReflectAnswer is the reflector's answer.
type ReflectAnswer struct {
	// Seen is the client's address and port as the reflector sees them:
	// the outermost NAT's external address.
	Seen netip.AddrPort `json:"seen"`
	// Tried is the address and port the reflector connected to.
	Tried     netip.AddrPort `json:"tried,omitzero"`
	Reachable bool           `json:"reachable"`
	// Error says why the port was not reached, or why the request was
	// refused.
	Error string `json:"error,omitempty"`
	// RTT is how long the connection (or the echo) took.
	RTT time.Duration `json:"rtt_ns,omitempty"`
}

// ReflectOptions tune a reflector.
type ReflectOptions struct {
	// Timeout bounds each connection back (default 3 s).
	Timeout time.Duration
	// AllowOther lets a request name an address other than the
	// client's own; off by default, so that a reflector cannot be used to
	// probe third parties.
	AllowOther bool
	// MaxConcurrent bounds the requests served at once (default 64).
	MaxConcurrent int
}

// maxRequestLine bounds a request.
const maxRequestLine = 1024

// ServeReflector answers requests on l until ctx ends or l is closed.
func ServeReflector(ctx context.Context, l net.Listener, o ReflectOptions) error {
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 64
	}
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	slots := make(chan struct{}, o.MaxConcurrent)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		select {
		case slots <- struct{}{}:
		default:
			c.Close() // too many at once
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			defer c.Close()
			reflectOne(ctx, c, o)
		})
	}
}

// reflectOne serves one client.
func reflectOne(ctx context.Context, c net.Conn, o ReflectOptions) {
	c.SetDeadline(time.Now().Add(o.Timeout + 5*time.Second))
	seen := netip.MustParseAddrPort(c.RemoteAddr().String())
	seen = netip.AddrPortFrom(seen.Addr().Unmap(), seen.Port())
	ans := ReflectAnswer{Seen: seen}
	line, err := bufio.NewReaderSize(c, maxRequestLine).ReadSlice('\n')
	req, perr := ParseReflectRequest(line)
	switch {
	case err != nil:
		ans.Error = "read the request: " + err.Error()
	case perr != nil:
		ans.Error = perr.Error()
	case req.Address.IsValid() && req.Address.Unmap() != seen.Addr() && !o.AllowOther:
		ans.Error = fmt.Sprintf("this reflector tries only your own address, %s", seen.Addr())
	default:
		to := seen.Addr()
		if req.Address.IsValid() {
			to = req.Address.Unmap()
		}
		ans.Tried = netip.AddrPortFrom(to, req.Port)
		ans.Reachable, ans.RTT, ans.Error = tryPort(ctx, req.Proto, ans.Tried, o.Timeout)
	}
	b, _ := json.Marshal(ans)
	c.Write(append(b, '\n'))
}

// ParseReflectRequest reads a request line.
func ParseReflectRequest(line []byte) (ReflectRequest, error) {
	var r ReflectRequest
	if len(line) > maxRequestLine {
		return r, errors.New("request too long")
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("request: %v", err)
	}
	if r.Proto != "tcp" && r.Proto != "udp" {
		return r, fmt.Errorf("proto %q: want tcp or udp", r.Proto)
	}
	if r.Port == 0 {
		return r, errors.New("port 0: want 1 to 65535")
	}
	return r, nil
}

// tryPort connects to (tcp) or echoes through (udp) to.
func tryPort(ctx context.Context, proto string, to netip.AddrPort, timeout time.Duration) (bool, time.Duration, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	var d net.Dialer
	c, err := d.DialContext(ctx, proto, to.String())
	if err != nil {
		return false, 0, err.Error()
	}
	defer c.Close()
	if proto == "tcp" {
		return true, time.Since(start), ""
	}
	nonce := fmt.Sprintf("portctl reflect %d", time.Now().UnixNano())
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	buf := make([]byte, 64)
	for range 3 {
		if _, err := c.Write([]byte(nonce)); err != nil {
			return false, 0, err.Error()
		}
		c.SetReadDeadline(time.Now().Add(timeout / 3))
		n, err := c.Read(buf)
		if err == nil && string(buf[:n]) == nonce {
			return true, time.Since(start), ""
		}
	}
	return false, 0, "no echo from " + to.String()
}

// Reflect asks the reflector at addr whether proto/port is reachable from
// there (at the address it sees this host come from, or at via when
// valid).
func Reflect(ctx context.Context, addr string, proto string, port uint16, via netip.Addr) (ReflectAnswer, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return ReflectAnswer{}, fmt.Errorf("reflector %s: %w", addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	b, _ := json.Marshal(ReflectRequest{Proto: proto, Port: port, Address: via})
	if _, err := c.Write(append(b, '\n')); err != nil {
		return ReflectAnswer{}, fmt.Errorf("reflector %s: %w", addr, err)
	}
	line, err := bufio.NewReaderSize(c, 4096).ReadSlice('\n')
	if err != nil {
		return ReflectAnswer{}, fmt.Errorf("reflector %s: no answer: %w", addr, err)
	}
	var ans ReflectAnswer
	if err := json.Unmarshal(line, &ans); err != nil {
		return ReflectAnswer{}, fmt.Errorf("reflector %s: answer: %v", addr, err)
	}
	return ans, nil
}
