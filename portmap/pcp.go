package portmap

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// PCP (RFC 6887): version 2, the MAP opcode.
const (
	pcpVersion     = 2
	pcpOpAnnounce  = 0
	pcpOpMap       = 1
	pcpResponseBit = 0x80
	// pcpHeaderLen is a request's or response's common header; a MAP
	// request or response adds pcpMapLen bytes of opcode data.
	pcpHeaderLen = 24
	pcpMapLen    = 36
	// pcpMaxLen is the largest PCP message (RFC 6887 7).
	pcpMaxLen = 1100
)

// PCPResult is a PCP result code (RFC 6887 7.4).
type PCPResult uint8

// The result codes of RFC 6887 7.4.
const (
	PCPSuccess               PCPResult = 0
	PCPUnsuppVersion         PCPResult = 1
	PCPNotAuthorized         PCPResult = 2
	PCPMalformedRequest      PCPResult = 3
	PCPUnsuppOpcode          PCPResult = 4
	PCPUnsuppOption          PCPResult = 5
	PCPMalformedOption       PCPResult = 6
	PCPNetworkFailure        PCPResult = 7
	PCPNoResources           PCPResult = 8
	PCPUnsuppProtocol        PCPResult = 9
	PCPUserExQuota           PCPResult = 10
	PCPCannotProvideExternal PCPResult = 11
	PCPAddressMismatch       PCPResult = 12
	PCPExcessiveRemotePeers  PCPResult = 13
)

var pcpResultNames = [...]string{
	"SUCCESS", "UNSUPP_VERSION", "NOT_AUTHORIZED", "MALFORMED_REQUEST", "UNSUPP_OPCODE",
	"UNSUPP_OPTION", "MALFORMED_OPTION", "NETWORK_FAILURE", "NO_RESOURCES", "UNSUPP_PROTOCOL",
	"USER_EX_QUOTA", "CANNOT_PROVIDE_EXTERNAL", "ADDRESS_MISMATCH", "EXCESSIVE_REMOTE_PEERS",
}

// String is the result code's name in RFC 6887.
func (r PCPResult) String() string {
	if int(r) < len(pcpResultNames) {
		return pcpResultNames[r]
	}
	return fmt.Sprintf("result code %d", uint8(r))
}

// pcpMapRequest is a PCP MAP request (RFC 6887 7.1, 11.1).
type pcpMapRequest struct {
	Lifetime uint32     // seconds; 0 deletes
	Client   netip.Addr // the requester's address, as the packet's source
	Nonce    [12]byte
	Proto    uint8 // IANA protocol number: 6 TCP, 17 UDP
	// InternalPort is the port mapped; ExternalPort and External the
	// suggested external port and address (zero: no preference).
	InternalPort, ExternalPort uint16
	External                   netip.Addr
}

// pcpAddr16 is a as PCP's 128-bit address fields carry it: IPv4 as an
// IPv4-mapped IPv6 address; an invalid one as the unspecified address of
// fam's family (IPv4-mapped ::ffff:0.0.0.0 when fam is IPv4).
func pcpAddr16(a, fam netip.Addr) [16]byte {
	if !a.IsValid() {
		if fam.Unmap().Is4() {
			a = netip.IPv4Unspecified()
		} else {
			a = netip.IPv6Unspecified()
		}
	}
	return a.As16()
}

// marshal encodes the request: 60 bytes.
func (r pcpMapRequest) marshal() []byte {
	b := make([]byte, pcpHeaderLen+pcpMapLen)
	b[0], b[1] = pcpVersion, pcpOpMap
	binary.BigEndian.PutUint32(b[4:], r.Lifetime)
	client := pcpAddr16(r.Client, r.Client)
	copy(b[8:24], client[:])
	d := b[pcpHeaderLen:]
	copy(d[0:12], r.Nonce[:])
	d[12] = r.Proto
	binary.BigEndian.PutUint16(d[16:], r.InternalPort)
	binary.BigEndian.PutUint16(d[18:], r.ExternalPort)
	ext := pcpAddr16(r.External, r.Client)
	copy(d[20:36], ext[:])
	return b
}

// pcpResponse is a decoded PCP response.
type pcpResponse struct {
	// Version is 2, or 0 when a NAT-PMP-only server answered with its
	// unsupported-version error (Result UNSUPP_VERSION).
	Version uint8
	Op      uint8 // the request's opcode
	Result  PCPResult
	// Lifetime is the mapping's lease, or for an error how long it holds.
	Lifetime uint32
	Epoch    uint32
	// HasMap says the MAP opcode data below is present.
	HasMap                     bool
	Nonce                      [12]byte
	Proto                      uint8
	InternalPort, ExternalPort uint16
	External                   netip.Addr
}

// parsePCPResponse decodes a PCP response (RFC 6887 7.2, 11.1): at least
// the 24-byte header, a multiple of 4 bytes, at most 1,100; a successful
// MAP response carries its 36 bytes of opcode data, then options whose
// lengths must add up exactly. An error response may stop after the
// header. A NAT-PMP server's 8-byte unsupported-version answer (version 0)
// is returned as version 0 with UNSUPP_VERSION. The result code is
// returned in the response, not as an error.
func parsePCPResponse(b []byte) (pcpResponse, error) {
	var r pcpResponse
	if len(b) >= 2 && b[0] == 0 {
		// NAT-PMP's answer to a version it does not speak (RFC 6887 9).
		nat, err := parseNATPMPResponse(b)
		if err != nil {
			return r, err
		}
		if nat.Result != NATPMPUnsupportedVersion {
			return r, fmt.Errorf("%w: a NAT-PMP response (%s) to a PCP request", errMalformed, nat.Result)
		}
		r.Op, r.Result, r.Epoch = nat.Op, PCPUnsuppVersion, nat.Epoch
		return r, nil
	}
	if len(b) < pcpHeaderLen {
		return r, fmt.Errorf("%w: PCP response of %d bytes; want at least %d", errMalformed, len(b), pcpHeaderLen)
	}
	if len(b) > pcpMaxLen || len(b)%4 != 0 {
		return r, fmt.Errorf("%w: PCP response of %d bytes; want a multiple of 4 up to %d", errMalformed, len(b), pcpMaxLen)
	}
	r.Version = b[0]
	if b[1]&pcpResponseBit == 0 {
		return r, fmt.Errorf("%w: PCP message is a request (R bit clear)", errMalformed)
	}
	r.Op = b[1] &^ pcpResponseBit
	r.Result = PCPResult(b[3])
	r.Lifetime = binary.BigEndian.Uint32(b[4:])
	r.Epoch = binary.BigEndian.Uint32(b[8:])
	if r.Version != pcpVersion {
		if r.Result == PCPUnsuppVersion {
			return r, nil
		}
		return r, fmt.Errorf("%w: PCP response of version %d; want %d", errMalformed, r.Version, pcpVersion)
	}
	rest := b[pcpHeaderLen:]
	switch r.Op {
	case pcpOpAnnounce:
	case pcpOpMap:
		if len(rest) < pcpMapLen {
			if r.Result != PCPSuccess {
				return r, nil
			}
			return r, fmt.Errorf("%w: PCP MAP response of %d bytes; want at least %d", errMalformed, len(b), pcpHeaderLen+pcpMapLen)
		}
		d := rest[:pcpMapLen]
		r.HasMap = true
		copy(r.Nonce[:], d[0:12])
		r.Proto = d[12]
		r.InternalPort = binary.BigEndian.Uint16(d[16:])
		r.ExternalPort = binary.BigEndian.Uint16(d[18:])
		r.External = netip.AddrFrom16([16]byte(d[20:36])).Unmap()
		rest = rest[pcpMapLen:]
	default:
		if r.Result == PCPSuccess {
			return r, fmt.Errorf("%w: PCP success for opcode %d, which was not asked", errMalformed, r.Op)
		}
		return r, nil
	}
	// Options (RFC 6887 7.3): code, reserved, 16-bit length, data padded
	// to 4 bytes. Each takes at least 4 bytes: at most 269 in 1,076.
	for len(rest) > 0 {
		if len(rest) < 4 {
			return r, fmt.Errorf("%w: PCP option header cut at %d bytes", errMalformed, len(rest))
		}
		n := int(binary.BigEndian.Uint16(rest[2:]))
		padded := 4 + (n+3)&^3
		if padded > len(rest) {
			return r, fmt.Errorf("%w: PCP option %d of %d bytes in %d left", errMalformed, rest[0], n, len(rest)-4)
		}
		rest = rest[padded:]
	}
	return r, nil
}

// err is the response's result code as an error, nil for success.
func (r pcpResponse) err() error {
	if r.Result == PCPSuccess {
		return nil
	}
	e := &ResultError{Protocol: PCP, Code: uint16(r.Result), Name: r.Result.String(), RetryAfter: time.Duration(r.Lifetime) * time.Second}
	if r.Version == 0 {
		e.Name += " (the router speaks NAT-PMP only)"
	}
	return e
}

// pcpTries is how many times a PCP request is sent (see NewPCP).
const pcpTries = 9

// pcpKey names a mapping for its nonce: protocol and internal port.
type pcpKey struct {
	proto uint8
	port  uint16
}

// pcpClient is the PCP client; safe for concurrent use.
type pcpClient struct {
	gateway, client netip.Addr
	port            uint16 // ServerPort; tests change it
	first           time.Duration
	tries           int

	mu     sync.Mutex
	nonces map[pcpKey][12]byte
}

// NewPCP returns a PCP (RFC 6887) client of the gateway, sending from
// client (its address in the requests, IPv4-mapped for IPv4) or, when
// client is not valid, from the address the system picks to reach the
// gateway. Requests go to the gateway's UDP port 5351 and are sent again
// after 250 ms, 500 ms, 1 s… with RFC 6887's ±10% jitter, nine times at
// most, until the context ends (RFC 6887 starts at 3 s; 250 ms is NAT-PMP's
// start, and what a LAN needs). A mapping is renewed with the nonce it was
// made with, which the client keeps per protocol and internal port. It is
// safe for concurrent use.
func NewPCP(gateway netip.Addr, client netip.Addr) Client {
	return &pcpClient{gateway: gateway.Unmap(), client: client.Unmap(), port: ServerPort,
		first: 250 * time.Millisecond, tries: pcpTries, nonces: map[pcpKey][12]byte{}}
}

// Protocol returns PCP.
func (c *pcpClient) Protocol() Protocol { return PCP }

// pcpProto is the IANA protocol number of proto.
func pcpProto(proto string) (uint8, error) {
	switch proto {
	case "tcp":
		return 6, nil
	case "udp":
		return 17, nil
	}
	return 0, fmt.Errorf("protocol %q: want tcp or udp", proto)
}

// nonce returns the nonce of the mapping of proto and port, made anew
// (random) when fresh is set or there is none.
func (c *pcpClient) nonce(k pcpKey, fresh bool) [12]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nonces[k]
	if !ok || fresh {
		crand.Read(n[:])
		c.nonces[k] = n
	}
	return n
}

func (c *pcpClient) forget(k pcpKey) {
	c.mu.Lock()
	delete(c.nonces, k)
	c.mu.Unlock()
}

// ExternalAddress learns the router's external address and epoch as PCP
// allows, with a MAP: of the client socket's own UDP port (which only it
// uses), for the shortest lease, deleted again at once. It is refused
// where the router's rules refuse that port. A router that says an
// unspecified address gives ErrExternalUnknown, with the epoch.
func (c *pcpClient) ExternalAddress(ctx context.Context) (netip.Addr, uint32, error) {
	server := netip.AddrPortFrom(c.gateway, c.port)
	conn, err := dialUDP(c.client, server)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("pcp: external address: %w", err)
	}
	defer conn.Close()
	self := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	req := pcpMapRequest{Lifetime: 1, Client: self.Addr().Unmap(), Proto: 17, InternalPort: self.Port()}
	crand.Read(req.Nonce[:])
	resp, err := c.exchangeOn(ctx, conn, req)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("pcp: external address: %w", err)
	}
	req.Lifetime = 0
	if _, err := c.exchangeOn(ctx, conn, req); err != nil {
		return resp.External, resp.Epoch, fmt.Errorf("pcp: external address: deleting the mapping that asked: %w", err)
	}
	if !resp.External.IsValid() || resp.External.IsUnspecified() {
		return resp.External, resp.Epoch, fmt.Errorf("pcp: %w", ErrExternalUnknown)
	}
	return resp.External, resp.Epoch, nil
}

// Map makes a mapping of r.Internal's port to this host (the client's
// address; PCP's THIRD_PARTY option is not sent, so another address is
// refused here), or renews it with the same nonce. r.External is the
// suggested external port.
func (c *pcpClient) Map(ctx context.Context, r Request) (Mapping, error) {
	proto, err := pcpProto(r.Proto)
	if err != nil {
		return Mapping{}, fmt.Errorf("pcp: map: %w", err)
	}
	if r.Internal.Port() == 0 {
		return Mapping{}, errors.New("pcp: map: no internal port")
	}
	if r.Lease <= 0 {
		return Mapping{}, fmt.Errorf("pcp: map %s %d: a lease is needed (PCP's lifetime 0 deletes)", r.Proto, r.Internal.Port())
	}
	k := pcpKey{proto, r.Internal.Port()}
	req := pcpMapRequest{Lifetime: leaseSeconds32(r.Lease), Proto: proto, InternalPort: r.Internal.Port(), ExternalPort: r.External, Nonce: c.nonce(k, false)}
	resp, self, err := c.exchange(ctx, req, r.Internal.Addr().Unmap())
	if err != nil {
		return Mapping{}, fmt.Errorf("pcp: map %s %d: %w", r.Proto, r.Internal.Port(), err)
	}
	return Mapping{
		Protocol: PCP,
		Proto:    r.Proto,
		Internal: netip.AddrPortFrom(self, resp.InternalPort),
		External: netip.AddrPortFrom(resp.External, resp.ExternalPort),
		Lease:    time.Duration(resp.Lifetime) * time.Second,
		Epoch:    resp.Epoch,
	}, nil
}

// Unmap deletes the mapping: a MAP with lifetime 0 and the nonce it was
// made with (a mapping this client did not make is asked for with a new
// nonce, which a router may refuse with NOT_AUTHORIZED).
func (c *pcpClient) Unmap(ctx context.Context, m Mapping) error {
	proto, err := pcpProto(m.Proto)
	if err != nil {
		return fmt.Errorf("pcp: unmap: %w", err)
	}
	k := pcpKey{proto, m.Internal.Port()}
	req := pcpMapRequest{Lifetime: 0, Proto: proto, InternalPort: m.Internal.Port(), Nonce: c.nonce(k, false)}
	if _, _, err := c.exchange(ctx, req, m.Internal.Addr().Unmap()); err != nil {
		return fmt.Errorf("pcp: unmap %s %d: %w", m.Proto, m.Internal.Port(), err)
	}
	c.forget(k)
	return nil
}

// exchange sends the MAP request from a socket of its own, with the
// socket's address as the client's, and returns the answer to it and that
// address. internal, when set, must be that address.
func (c *pcpClient) exchange(ctx context.Context, req pcpMapRequest, internal netip.Addr) (pcpResponse, netip.Addr, error) {
	server := netip.AddrPortFrom(c.gateway, c.port)
	conn, err := dialUDP(c.client, server)
	if err != nil {
		return pcpResponse{}, netip.Addr{}, err
	}
	defer conn.Close()
	self := conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	if internal.IsValid() && !internal.IsUnspecified() && internal != self {
		return pcpResponse{}, self, fmt.Errorf("PCP maps here only to the host that asks, %s, not %s (no THIRD_PARTY option)", self, internal)
	}
	req.Client = self
	resp, err := c.exchangeOn(ctx, conn, req)
	return resp, self, err
}

// exchangeOn sends req on conn until the answer with its nonce, protocol
// and internal port comes, and returns it; a refusal is a *ResultError.
func (c *pcpClient) exchangeOn(ctx context.Context, conn *net.UDPConn, req pcpMapRequest) (pcpResponse, error) {
	var resp pcpResponse
	err := exchangeConn(ctx, conn, req.marshal(), c.first, c.tries, true, func(b []byte) bool {
		r, err := parsePCPResponse(b)
		if err != nil || r.Op != pcpOpMap {
			return false
		}
		if r.HasMap && (r.Nonce != req.Nonce || r.Proto != req.Proto || r.InternalPort != req.InternalPort) {
			return false
		}
		// Only a refusal may come without the MAP data that names it.
		if !r.HasMap && r.Result == PCPSuccess {
			return false
		}
		resp = r
		return true
	})
	if err != nil {
		return resp, err
	}
	return resp, resp.err()
}
