package portmap

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ProbeOptions say whom Probe asks.
type ProbeOptions struct {
	// Gateway is the router to ask (PCP and NAT-PMP, and UPnP's unicast
	// search); invalid is the default route's gateway, which the caller
	// finds (DefaultGateway on Linux).
	Gateway netip.Addr
	// UPnP tunes UPnP's discovery (its Gateway is set from Gateway).
	UPnP UPnPOptions
	// Timeout bounds each protocol (default 2 s).
	Timeout time.Duration
}

// ProtocolProbe is one protocol's answer.
type ProtocolProbe struct {
	Protocol Protocol `json:"protocol"`
	// Answered says the router speaks the protocol: it answered, maybe
	// with a refusal (then Error says which, and Refused is set).
	Answered bool `json:"answered"`
	Refused  bool `json:"refused,omitempty"`
	// External is the external address the router reports.
	External netip.Addr `json:"external,omitzero"`
	Epoch    uint32     `json:"epoch,omitempty"`
	// Service is, for UPnP, the service found (WANIPConnection:2...).
	Service string `json:"service,omitempty"`
	// Latency is how long the answer took.
	Latency time.Duration `json:"latency_ns"`
	Error   string        `json:"error,omitempty"`

	client Client
	// noPublic says the answer was the router's way of saying it has
	// no public address (noPublicAddress).
	noPublic bool
}

// ProbeReport is what Probe found.
type ProbeReport struct {
	Gateway   netip.Addr      `json:"gateway"`
	Protocols []ProtocolProbe `json:"protocols"`
	// External is the external address the answering protocols agree
	// on (the first one's).
	External netip.Addr `json:"external,omitzero"`
	// NoPublicAddress says the router answers but has no public address
	// of its own: NAT-PMP's or PCP's NETWORK_FAILURE, PCP's
	// CANNOT_PROVIDE_EXTERNAL, or UPnP's empty or 0.0.0.0 external
	// address, and no protocol naming one. miniupnpd answers so when its
	// WAN address is private or shared, that is behind another NAT.
	NoPublicAddress bool `json:"no_public_address,omitempty"`
	// DoubleNAT says why there is another NAT beyond the router, or is
	// empty.
	DoubleNAT string `json:"double_nat,omitempty"`
}

// noPublicAddress says whether err is a router's way of saying it has
// no public address.
func noPublicAddress(err error) bool {
	if errors.Is(err, ErrExternalUnknown) {
		return true
	}
	var re *ResultError
	if !errors.As(err, &re) {
		return false
	}
	switch re.Protocol {
	case NATPMP:
		return re.Code == uint16(NATPMPNetworkFailure)
	case PCP:
		return re.Code == uint16(PCPNetworkFailure) || re.Code == uint16(PCPCannotProvideExternal)
	}
	return false
}

// errNATPMPIPv4Only is NAT-PMP's answer for a gateway given by its IPv6
// address: the protocol is IPv4's only (RFC 6886).
var errNATPMPIPv4Only = errors.New("natpmp: IPv4 only (asked nothing)")

// Probe asks the gateway over PCP, NAT-PMP and UPnP IGD at once which it
// answers, and what external address it reports. A gateway given by its
// IPv6 address is asked over IPv6: PCP (whose external address is then
// this host's own, as pinholes translate nothing) and UPnP (by unicast
// search); NAT-PMP is IPv4 only.
func Probe(ctx context.Context, o ProbeOptions) ProbeReport {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	rep := ProbeReport{Gateway: o.Gateway, Protocols: make([]ProtocolProbe, 3)}
	var wg sync.WaitGroup
	ask := func(i int, p Protocol, get func(ctx context.Context) (Client, error)) {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, o.Timeout)
			defer cancel()
			start := time.Now()
			pp := ProtocolProbe{Protocol: p}
			c, err := get(ctx)
			if err == nil {
				pp.External, pp.Epoch, err = c.ExternalAddress(ctx)
				pp.noPublic = noPublicAddress(err)
				if errors.Is(err, ErrExternalUnknown) {
					err = nil // it answers, without an address
				}
			}
			pp.Latency = time.Since(start)
			if err != nil {
				pp.Error = err.Error()
				pp.Refused = errors.Is(err, ErrRefused)
				pp.Answered = pp.Refused
			} else {
				pp.Answered, pp.client = true, c
				if igd, ok := c.(*IGD); ok {
					pp.Service, _ = igd.Service()
				}
			}
			rep.Protocols[i] = pp
		})
	}
	ask(0, PCP, func(context.Context) (Client, error) { return NewPCP(o.Gateway, netip.Addr{}), nil })
	ask(1, NATPMP, func(context.Context) (Client, error) {
		if o.Gateway.Is6() && !o.Gateway.Is4In6() {
			return nil, errNATPMPIPv4Only
		}
		return NewNATPMP(o.Gateway), nil
	})
	ask(2, UPnP, func(ctx context.Context) (Client, error) {
		uo := o.UPnP
		if !uo.Gateway.IsValid() {
			uo.Gateway = o.Gateway
		}
		igds, err := DiscoverUPnP(ctx, uo)
		if err != nil {
			return nil, err
		}
		if len(igds) == 0 {
			return nil, ErrNoAnswer
		}
		return igds[0], nil
	})
	wg.Wait()
	for _, p := range rep.Protocols {
		if p.Answered && p.External.IsValid() && !p.External.IsUnspecified() {
			rep.External = p.External
			break
		}
	}
	if rep.External.IsValid() {
		rep.DoubleNAT = Behind(rep.External)
		return rep
	}
	var said []string
	for _, p := range rep.Protocols {
		if p.noPublic {
			why := "no external address"
			if p.Error != "" {
				why = p.Error[strings.LastIndex(p.Error, ": ")+2:]
			}
			said = append(said, string(p.Protocol)+": "+why)
		}
	}
	if len(said) > 0 {
		rep.NoPublicAddress = true
		rep.DoubleNAT = "double NAT, or the router is offline: it answers but has no public address (" +
			strings.Join(said, "; ") + "): another NAT (a provider's CGNAT, a modem) lies beyond it"
	}
	return rep
}

// Client returns the client of the first protocol in order that
// answered the probe without refusing: PCP, then NAT-PMP, then UPnP; nil
// when none did.
func (r ProbeReport) Client(p Protocol) Client {
	for _, pp := range r.Protocols {
		if pp.Answered && !pp.Refused && (p == "" || p == pp.Protocol) {
			return pp.client
		}
	}
	return nil
}
