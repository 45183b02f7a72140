package scan

import (
	"net/netip"
	"time"

	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan/probe"
)

// State is what a probe found out about a port.
type State uint8

// The states, as nmap names them.
const (
	Open         State = iota + 1 // something accepts connections
	Closed                        // the host answered that nothing listens
	Filtered                      // no answer, or an ICMP error: something drops or rejects
	OpenFiltered                  // UDP without an answer: open, or filtered
)

// String returns "open", "closed", "filtered" or "open|filtered".
func (s State) String() string {
	switch s {
	case Open:
		return "open"
	case Closed:
		return "closed"
	case Filtered:
		return "filtered"
	case OpenFiltered:
		return "open|filtered"
	}
	return "unknown"
}

// MarshalText encodes the state as its String form.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reason is the evidence for a State, named as nmap names it where nmap
// has a name: "syn-ack", "conn-refused", "reset", "no-response",
// "host-unreach", "net-unreach", "admin-prohibited", "port-unreach",
// "udp-response".
type Reason string

// The reasons the engines report.
const (
	ReasonSynAck          Reason = "syn-ack"
	ReasonConnRefused     Reason = "conn-refused"
	ReasonReset           Reason = "reset"
	ReasonNoResponse      Reason = "no-response"
	ReasonHostUnreach     Reason = "host-unreach"
	ReasonNetUnreach      Reason = "net-unreach"
	ReasonAdminProhibited Reason = "admin-prohibited"
	ReasonPortUnreach     Reason = "port-unreach"
	ReasonUDPResponse     Reason = "udp-response"
	ReasonError           Reason = "error"
)

// Result is the outcome for one (address, protocol, port).
type Result struct {
	Addr   netip.Addr        `json:"addr"`
	Port   uint16            `json:"port"`
	Proto  registry.Protocol `json:"protocol"`
	State  State             `json:"state"`
	Reason Reason            `json:"reason"`
	// RTT is the round trip of the answer that decided the state (0 when
	// none came).
	RTT time.Duration `json:"rtt_ns"`
	// Tries is how many probes were sent.
	Tries int `json:"tries"`
	// Host is the name the address came from, when it came from a name.
	Host string `json:"host,omitempty"`
	// Service is what service detection found (Plan.Service), nil when
	// it did not run.
	Service *probe.Service `json:"detected,omitempty"`
}
