package portmap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// NAT-PMP (RFC 6886) and PCP (RFC 6887) share the gateway's UDP port
// 5351; a PCP server answers a NAT-PMP request (version 0) as NAT-PMP.

// ServerPort is the UDP port NAT-PMP and PCP servers listen on.
const ServerPort = 5351

// NAT-PMP opcodes (RFC 6886 3.2, 3.3); a response's is the request's plus
// 128.
const (
	natpmpOpExternal = 0
	natpmpOpMapUDP   = 1
	natpmpOpMapTCP   = 2
	natpmpOpResponse = 128
)

// NATPMPResult is a NAT-PMP result code (RFC 6886 3.5).
type NATPMPResult uint16

// The result codes of RFC 6886 3.5.
const (
	NATPMPSuccess            NATPMPResult = 0
	NATPMPUnsupportedVersion NATPMPResult = 1
	NATPMPNotAuthorized      NATPMPResult = 2
	NATPMPNetworkFailure     NATPMPResult = 3
	NATPMPOutOfResources     NATPMPResult = 4
	NATPMPUnsupportedOpcode  NATPMPResult = 5
)

// String is the result code's name, as RFC 6886 describes it.
func (r NATPMPResult) String() string {
	switch r {
	case NATPMPSuccess:
		return "SUCCESS"
	case NATPMPUnsupportedVersion:
		return "UNSUPPORTED_VERSION"
	case NATPMPNotAuthorized:
		return "NOT_AUTHORIZED"
	case NATPMPNetworkFailure:
		return "NETWORK_FAILURE"
	case NATPMPOutOfResources:
		return "OUT_OF_RESOURCES"
	case NATPMPUnsupportedOpcode:
		return "UNSUPPORTED_OPCODE"
	}
	return fmt.Sprintf("result code %d", uint16(r))
}

// ResultError is a NAT-PMP or PCP router's refusal: a response with a
// non-zero result code. It wraps ErrRefused.
type ResultError struct {
	Protocol Protocol
	// Code is the result code; Name its name in the protocol's RFC
	// ("NOT_AUTHORIZED").
	Code uint16
	Name string
	// RetryAfter is, for PCP, how long the router says the error holds
	// (the response's lifetime); zero otherwise.
	RetryAfter time.Duration
}

// Error says the router refused, naming the result code.
func (e *ResultError) Error() string {
	return fmt.Sprintf("%s: %s (result code %d)", ErrRefused, e.Name, e.Code)
}

// Unwrap returns ErrRefused.
func (e *ResultError) Unwrap() error { return ErrRefused }

// errMalformed is what the decoders return for a message that is not a
// well-formed response.
var errMalformed = errors.New("malformed response")

// natpmpResponse is a decoded NAT-PMP response: to an external address
// request (External) or to a mapping request (the ports and lifetime).
type natpmpResponse struct {
	Op     uint8 // the request's opcode (the response's minus 128)
	Result NATPMPResult
	Epoch  uint32 // seconds since the start of the router's epoch
	// External is the router's external address (opcode 0, success only).
	External netip.Addr
	// InternalPort, ExternalPort and Lifetime answer a mapping request.
	InternalPort, ExternalPort uint16
	Lifetime                   uint32
}

// natpmpExternalRequest is the external address request (RFC 6886 3.2).
func natpmpExternalRequest() []byte { return []byte{0, natpmpOpExternal} }

// natpmpMapRequest is a mapping request (RFC 6886 3.3): op 1 (UDP) or 2
// (TCP); lifetime 0 with external port 0 deletes the mapping.
func natpmpMapRequest(op uint8, internal, external uint16, lifetime uint32) []byte {
	b := make([]byte, 12)
	b[0], b[1] = 0, op
	binary.BigEndian.PutUint16(b[4:], internal)
	binary.BigEndian.PutUint16(b[6:], external)
	binary.BigEndian.PutUint32(b[8:], lifetime)
	return b
}

// parseNATPMPResponse decodes a NAT-PMP response. A success must have
// exactly its opcode's length (12 bytes for the external address, 16 for
// a mapping); an error may be cut after the epoch (8 bytes), as a server
// answering an unsupported version or opcode sends it. The result code is
// returned in the response, not as an error.
func parseNATPMPResponse(b []byte) (natpmpResponse, error) {
	var r natpmpResponse
	if len(b) < 8 {
		return r, fmt.Errorf("%w: NAT-PMP response of %d bytes; want at least 8", errMalformed, len(b))
	}
	if b[0] != 0 {
		return r, fmt.Errorf("%w: NAT-PMP response of version %d; want 0", errMalformed, b[0])
	}
	if b[1] < natpmpOpResponse {
		return r, fmt.Errorf("%w: NAT-PMP opcode %d is a request's", errMalformed, b[1])
	}
	r.Op = b[1] - natpmpOpResponse
	r.Result = NATPMPResult(binary.BigEndian.Uint16(b[2:]))
	r.Epoch = binary.BigEndian.Uint32(b[4:])
	want := 0
	switch r.Op {
	case natpmpOpExternal:
		want = 12
	case natpmpOpMapUDP, natpmpOpMapTCP:
		want = 16
	default:
		if r.Result == NATPMPSuccess {
			return r, fmt.Errorf("%w: NAT-PMP success for unknown opcode %d", errMalformed, r.Op)
		}
	}
	if r.Result != NATPMPSuccess && len(b) == 8 {
		return r, nil
	}
	if len(b) != want {
		return r, fmt.Errorf("%w: NAT-PMP response to opcode %d of %d bytes; want %d", errMalformed, r.Op, len(b), want)
	}
	if r.Op == natpmpOpExternal {
		if r.Result == NATPMPSuccess {
			r.External = netip.AddrFrom4([4]byte(b[8:12]))
		}
		return r, nil
	}
	r.InternalPort = binary.BigEndian.Uint16(b[8:])
	r.ExternalPort = binary.BigEndian.Uint16(b[10:])
	r.Lifetime = binary.BigEndian.Uint32(b[12:])
	return r, nil
}

// err is the response's result code as an error, nil for success.
func (r natpmpResponse) err() error {
	if r.Result == NATPMPSuccess {
		return nil
	}
	return &ResultError{Protocol: NATPMP, Code: uint16(r.Result), Name: r.Result.String()}
}

// natpmpTries is how many times a NAT-PMP request is sent (RFC 6886 3.1:
// 250 ms, doubling, 9 times: about 64 s without an answer).
const natpmpTries = 9

// natpmpClient is the NAT-PMP client; safe for concurrent use (each
// request has a socket of its own).
type natpmpClient struct {
	gateway netip.Addr
	port    uint16 // ServerPort; tests change it
	first   time.Duration
	tries   int
}

// NewNATPMP returns a NAT-PMP (RFC 6886) client of the IPv4 gateway:
// requests go to its UDP port 5351 and are sent again after 250 ms,
// 500 ms, 1 s… (nine times at most), until the context ends. It is safe
// for concurrent use.
func NewNATPMP(gateway netip.Addr) Client {
	return &natpmpClient{gateway: gateway.Unmap(), port: ServerPort, first: 250 * time.Millisecond, tries: natpmpTries}
}

// Protocol returns NATPMP.
func (c *natpmpClient) Protocol() Protocol { return NATPMP }

// ExternalAddress asks the router for its external address and epoch. A
// router that says 0.0.0.0 gives ErrExternalUnknown, with the epoch.
func (c *natpmpClient) ExternalAddress(ctx context.Context) (netip.Addr, uint32, error) {
	r, _, err := c.do(ctx, natpmpExternalRequest(), natpmpOpExternal, 0)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("natpmp: external address: %w", err)
	}
	if r.External.IsUnspecified() {
		return r.External, r.Epoch, fmt.Errorf("natpmp: %w", ErrExternalUnknown)
	}
	return r.External, r.Epoch, nil
}

// natpmpOp is a mapping request's opcode for proto.
func natpmpOp(proto string) (uint8, error) {
	switch proto {
	case "udp":
		return natpmpOpMapUDP, nil
	case "tcp":
		return natpmpOpMapTCP, nil
	}
	return 0, fmt.Errorf("protocol %q: want tcp or udp", proto)
}

// Map asks for a mapping of r.Internal's port (the address is always
// this host's, as the router sees it) or renews it. The lease is rounded
// up to a whole second; the router may grant another lease or port.
func (c *natpmpClient) Map(ctx context.Context, r Request) (Mapping, error) {
	op, err := natpmpOp(r.Proto)
	if err != nil {
		return Mapping{}, fmt.Errorf("natpmp: map: %w", err)
	}
	if r.Internal.Port() == 0 {
		return Mapping{}, errors.New("natpmp: map: no internal port")
	}
	if r.Lease <= 0 {
		return Mapping{}, fmt.Errorf("natpmp: map %s %d: a lease is needed (NAT-PMP's lifetime 0 deletes)", r.Proto, r.Internal.Port())
	}
	if a := r.Internal.Addr().Unmap(); a.IsValid() && !a.IsUnspecified() {
		local, err := localAddr(netip.Addr{}, netip.AddrPortFrom(c.gateway, c.port))
		if err != nil {
			return Mapping{}, fmt.Errorf("natpmp: map %s %d: %w", r.Proto, r.Internal.Port(), err)
		}
		if a != local {
			return Mapping{}, fmt.Errorf("natpmp: map %s %d: NAT-PMP maps only to the host that asks, %s, not %s", r.Proto, r.Internal.Port(), local, a)
		}
	}
	resp, local, err := c.do(ctx, natpmpMapRequest(op, r.Internal.Port(), r.External, leaseSeconds32(r.Lease)), op, r.Internal.Port())
	if err != nil {
		return Mapping{}, fmt.Errorf("natpmp: map %s %d: %w", r.Proto, r.Internal.Port(), err)
	}
	return Mapping{
		Protocol: NATPMP,
		Proto:    r.Proto,
		Internal: netip.AddrPortFrom(local, resp.InternalPort),
		External: netip.AddrPortFrom(netip.Addr{}, resp.ExternalPort),
		Lease:    time.Duration(resp.Lifetime) * time.Second,
		Epoch:    resp.Epoch,
	}, nil
}

// localAddr is the address a UDP socket bound to local (when valid) uses
// to reach server: this host's, as the gateway sees it. No packet is
// sent.
func localAddr(local netip.Addr, server netip.AddrPort) (netip.Addr, error) {
	conn, err := dialUDP(local, server)
	if err != nil {
		return netip.Addr{}, err
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// dialUDP opens a UDP socket connected to server, bound to local when it
// is valid.
func dialUDP(local netip.Addr, server netip.AddrPort) (*net.UDPConn, error) {
	var laddr *net.UDPAddr
	if local.IsValid() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	}
	return net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(server))
}

// Unmap deletes the mapping (lifetime 0, external port 0: RFC 6886 3.4).
func (c *natpmpClient) Unmap(ctx context.Context, m Mapping) error {
	op, err := natpmpOp(m.Proto)
	if err != nil {
		return fmt.Errorf("natpmp: unmap: %w", err)
	}
	if _, _, err := c.do(ctx, natpmpMapRequest(op, m.Internal.Port(), 0, 0), op, m.Internal.Port()); err != nil {
		return fmt.Errorf("natpmp: unmap %s %d: %w", m.Proto, m.Internal.Port(), err)
	}
	return nil
}

// do sends req and returns the answer to it (opcode op, internal port
// for a mapping) and this host's address as the socket to the gateway
// has it. A non-zero result code is returned as a *ResultError.
func (c *natpmpClient) do(ctx context.Context, req []byte, op uint8, internal uint16) (natpmpResponse, netip.Addr, error) {
	var resp natpmpResponse
	local, err := exchange(ctx, netip.Addr{}, netip.AddrPortFrom(c.gateway, c.port), req, c.first, c.tries, false, func(b []byte) bool {
		r, err := parseNATPMPResponse(b)
		if err != nil || r.Op != op {
			return false
		}
		// An error response cut after the epoch cannot say its port.
		if op != natpmpOpExternal && r.Result == NATPMPSuccess && r.InternalPort != internal {
			return false
		}
		resp = r
		return true
	})
	if err != nil {
		return resp, local, err
	}
	return resp, local, resp.err()
}

// leaseSeconds32 is d in whole seconds, rounded up, at least 1 and at
// most the 32-bit field's maximum.
func leaseSeconds32(d time.Duration) uint32 {
	s := (d + time.Second - 1) / time.Second
	if s < 1 {
		s = 1
	}
	if s > 1<<32-1 {
		s = 1<<32 - 1
	}
	return uint32(s)
}

// maxReadsPerTry bounds the packets read (answers to other requests,
// unsolicited announcements, garbage) while waiting for one answer.
const maxReadsPerTry = 64

// exchange sends req from a UDP socket of its own (bound to local when
// valid) to server, as exchangeConn does, and returns this host's address
// as the socket has it.
func exchange(ctx context.Context, local netip.Addr, server netip.AddrPort, req []byte, first time.Duration, tries int, jitter bool, accept func([]byte) bool) (netip.Addr, error) {
	conn, err := dialUDP(local, server)
	if err != nil {
		return netip.Addr{}, err
	}
	defer conn.Close()
	self := conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	return self, exchangeConn(ctx, conn, req, first, tries, jitter, accept)
}

// exchangeConn sends req on conn (connected to the server), and again
// after first, twice that, and so on (tries times at most; with jitter,
// each wait is changed by up to ±10%, as RFC 6887 8.1.1 asks), until a
// packet makes accept return true, or ctx ends. Without an answer, the
// error wraps ErrNoAnswer (and ctx's error when ctx ended); an ICMP port
// unreachable ends it at once, wrapping ErrNoAnswer.
func exchangeConn(ctx context.Context, conn *net.UDPConn, req []byte, first time.Duration, tries int, jitter bool, accept func([]byte) bool) error {
	server := conn.RemoteAddr()
	// The context's end wakes a read at once.
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	start := time.Now()
	buf := make([]byte, 1500)
	wait := first
	for try := 0; try < tries; try++ {
		if ctx.Err() != nil {
			break
		}
		if _, err := conn.Write(req); err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("%w from %s: %v", ErrNoAnswer, server, err)
			}
			return fmt.Errorf("send to %s: %w", server, err)
		}
		w := wait
		if jitter {
			w += time.Duration((rand.Float64()*0.2 - 0.1) * float64(wait))
		}
		deadline := time.Now().Add(w)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if ctx.Err() == nil {
			conn.SetReadDeadline(deadline)
		}
		for range maxReadsPerTry {
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				if errors.Is(err, syscall.ECONNREFUSED) {
					return fmt.Errorf("%w from %s: %v", ErrNoAnswer, server, err)
				}
				return fmt.Errorf("receive from %s: %w", server, err)
			}
			if accept(buf[:n]) {
				return nil
			}
		}
		wait *= 2
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			break
		}
	}
	err := ctx.Err()
	if d, ok := ctx.Deadline(); ok && err == nil && !time.Now().Before(d) {
		err = context.DeadlineExceeded // its timer has not fired yet
	}
	if err != nil {
		return fmt.Errorf("%w from %s within %s: %w", ErrNoAnswer, server, time.Since(start).Round(time.Millisecond), err)
	}
	return fmt.Errorf("%w from %s after %d tries in %s", ErrNoAnswer, server, tries, time.Since(start).Round(time.Millisecond))
}
