package guard

import (
	"net/netip"
	"time"
)

// The types of events.
const (
	EventStart   = "start"   // the rules are in place: guard is watching
	EventScan    = "scan"    // a source scans ports
	EventSweep   = "sweep"   // a source contacts many of the host's addresses
	EventBlock   = "block"   // a source is blocked (after a scan)
	EventKnock   = "knock"   // a knock sequence opened a port to a source
	EventSPA     = "spa"     // a signed packet opened a port to a source
	EventRefused = "refused" // a signed packet was refused (forged, old, replayed)
	EventTarpit  = "tarpit"  // a connection was caught in a tarpit
	EventReload  = "reload"  // the configuration was read again
	EventStop    = "stop"    // guard removed its rules and stopped
	EventError   = "error"   // something went wrong, guard goes on
)

// Event is something guard saw or did, as one JSON line of `portctl guard
// --json`.
type Event struct {
	Time time.Time `json:"time"`
	Type string    `json:"type"`
	// Source is the address (or, with grouping, the prefix) the event is
	// about.
	Source string `json:"source,omitempty"`
	// Kind is a scan's kind of probes.
	Kind  Kind   `json:"kind,omitempty"`
	Proto string `json:"proto,omitempty"`
	// Ports are the ports a scan met closed (at most Config.MaxPorts, in
	// the order first seen), or the port a knock or a signed packet opened.
	Ports []uint16 `json:"ports,omitempty"`
	// Hosts are the addresses a sweep contacted.
	Hosts []netip.Addr `json:"hosts,omitempty"`
	// Probes and Failures count the first contacts that went into the
	// decision, and those that met nothing listening.
	Probes   int `json:"probes,omitempty"`
	Failures int `json:"failures,omitempty"`
	// First is when the source's first counted contact came.
	First time.Time `json:"first,omitzero"`
	// Spoofable marks a scan whose probes anyone could send in the
	// source's name: reported, never blocked.
	Spoofable bool `json:"spoofable,omitempty"`
	// For is how long a block or an opened port lasts.
	For string `json:"for,omitempty"`
	// Message says more, for people.
	Message string `json:"message,omitempty"`
}
