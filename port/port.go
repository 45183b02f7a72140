// Package port gathers what is known about one port number: its range
// class (RFC 6335), its IANA assignments, what it is used for in practice,
// its security notes, and how this host treats it (privileged, inside the
// ephemeral range, reserved). `portctl info` prints it and the dashboard's
// port pages show it. The package only combines: the caller passes the
// registry and the host's settings.
package port

import (
	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/registry"
)

// Info is everything known about one port. Its JSON field names are a
// stable contract (`portctl info --json`, /api/v1/ports/PORT).
type Info struct {
	Port              uint16                  `json:"port"`
	Class             registry.Class          `json:"class"`
	ClassRange        string                  `json:"class_range"`
	Privileged        bool                    `json:"privileged"`
	UnprivilegedStart int                     `json:"unprivileged_port_start"`
	Ephemeral         bool                    `json:"ephemeral"`
	EphemeralRange    string                  `json:"ephemeral_range"`
	Reserved          bool                    `json:"reserved"`
	Assignments       []registry.Assignment   `json:"assignments"`
	Uses              []registry.Use          `json:"uses"`
	SecurityNotes     []registry.SecurityNote `json:"security_notes"`
}

// Describe returns what reg and host say about port p for the protocols
// protos. The lists are empty, not nil, so that JSON readers can iterate
// without checks.
func Describe(reg *registry.Registry, host netconf.Host, p uint16, protos registry.Protocol) Info {
	c := registry.Classify(p)
	return Info{
		Port:              p,
		Class:             c,
		ClassRange:        c.Range().String(),
		Privileged:        host.Privileged(p),
		UnprivilegedStart: host.UnprivilegedStart,
		Ephemeral:         host.InEphemeral(p),
		EphemeralRange:    host.Ephemeral.String(),
		Reserved:          host.IsReserved(p),
		Assignments:       orEmpty(reg.Port(p, protos)),
		Uses:              orEmpty(registry.Uses(p, protos)),
		SecurityNotes:     orEmpty(registry.Notes(p, protos)),
	}
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
