// Package portmap asks the router to forward a port to this host, through
// whichever of PCP (RFC 6887), NAT-PMP (RFC 6886) and UPnP IGD (v1 and v2)
// it answers, behind one interface: Client.
//
// Each protocol's message codec is pure (bytes in, values out, fuzzed);
// the clients around them do the I/O: UDP to the gateway's port 5351 for
// PCP and NAT-PMP, SSDP and SOAP for UPnP.
package portmap

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Protocol names a port-mapping protocol.
type Protocol string

// The protocols.
const (
	PCP    Protocol = "pcp"
	NATPMP Protocol = "natpmp"
	UPnP   Protocol = "upnp"
)

// Mapping is one port forwarded by the router.
type Mapping struct {
	Protocol Protocol `json:"protocol"`
	// Proto is "tcp" or "udp".
	Proto string `json:"proto"`
	// Internal is this host's address and port the router forwards to.
	Internal netip.AddrPort `json:"internal"`
	// External is the router's external address and port; the address
	// may be unknown (invalid) when the protocol does not say it.
	External netip.AddrPort `json:"external"`
	// Lease is how long the router keeps the mapping from when it was
	// made or renewed; zero is permanent.
	Lease time.Duration `json:"lease"`
	// Description is the mapping's description (UPnP only).
	Description string `json:"description,omitempty"`
	// Epoch is the router's epoch (seconds since its mapping table was
	// last lost) as NAT-PMP and PCP report it; a value going back means
	// the router restarted and its mappings are gone.
	Epoch uint32 `json:"epoch,omitempty"`
}

// Request asks for a mapping.
type Request struct {
	Proto    string         // "tcp" or "udp"
	Internal netip.AddrPort // this host's address (may be unspecified: the client fills it) and port
	// External is the external port asked for; 0 lets the router choose.
	External uint16
	Lease    time.Duration
	// Description is shown in the router's table (UPnP only).
	Description string
}

// Client is one protocol's client, talking to one gateway.
type Client interface {
	// Protocol is the client's protocol.
	Protocol() Protocol
	// ExternalAddress asks the router for its external address (and, for
	// NAT-PMP and PCP, its epoch in the Mapping's Epoch).
	ExternalAddress(ctx context.Context) (netip.Addr, uint32, error)
	// Map makes or renews a mapping.
	Map(ctx context.Context, r Request) (Mapping, error)
	// Unmap deletes a mapping Map made.
	Unmap(ctx context.Context, m Mapping) error
}

// ErrRefused wraps the router's refusal of a request, with its result
// code or UPnP error in the message.
var ErrRefused = errors.New("the router refused")

// ErrNoAnswer is returned when the gateway does not answer the protocol.
var ErrNoAnswer = errors.New("no answer")
