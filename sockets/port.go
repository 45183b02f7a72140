package sockets

import (
	"cmp"
	"slices"
	"time"
)

// PortUse is what holds one local port, sorted into the reasons a bind to
// it would fail. Build it with ClassifyPort.
type PortUse struct {
	Port uint16 `json:"port"`
	// Listeners are listening TCP sockets and bound, unconnected UDP
	// sockets.
	Listeners []Socket `json:"listeners"`
	// Served are connections a listener on the port accepted.
	Served []Socket `json:"served"`
	// Clients are outgoing connections that use the port as their source
	// (ephemeral) port.
	Clients []Socket `json:"clients"`
	// TimeWait are closed connections the kernel still remembers.
	TimeWait []Socket `json:"time_wait"`
	// Bound are TCP sockets bound to the port but neither listening nor
	// connected (bind without listen), and other states.
	Bound []Socket `json:"bound"`
}

// Verdict is the one-word answer to "why is this port busy?".
type Verdict string

// The verdicts, in the order ClassifyPort prefers them.
const (
	VerdictListening Verdict = "listening" // a process listens on it
	VerdictClient    Verdict = "client"    // an outgoing connection uses it as source port
	VerdictBound     Verdict = "bound"     // bound without listening
	VerdictTimeWait  Verdict = "time_wait" // only TIME_WAIT remnants
	VerdictFree      Verdict = "free"      // nothing holds it
)

// ClassifyPort sorts the sockets bound to port into a PortUse. Sockets on
// other ports are ignored. Listeners and Bound are ordered by protocol,
// family and address; the others keep the order of socks.
func ClassifyPort(socks []Socket, port uint16) PortUse {
	u := PortUse{Port: port, Listeners: []Socket{}, Served: []Socket{}, Clients: []Socket{}, TimeWait: []Socket{}, Bound: []Socket{}}
	listening := map[Proto]bool{}
	for _, s := range socks {
		if s.Local.Port() == port && s.Listening() {
			listening[s.Proto] = true
		}
	}
	for _, s := range socks {
		if s.Local.Port() != port {
			continue
		}
		switch {
		case s.Listening():
			u.Listeners = append(u.Listeners, s)
		case s.State == TimeWait:
			u.TimeWait = append(u.TimeWait, s)
		case s.Remote.Port() != 0 && listening[s.Proto]:
			u.Served = append(u.Served, s)
		case s.Remote.Port() != 0:
			u.Clients = append(u.Clients, s)
		default:
			u.Bound = append(u.Bound, s)
		}
	}
	// The kernel lists a port's listeners in the order of its hash
	// tables, IPv4 and IPv6 mixed; people read them in a stable one.
	byAddr := func(a, b Socket) int {
		if a.Proto != b.Proto {
			return cmp.Compare(a.Proto, b.Proto)
		}
		return a.Local.Compare(b.Local)
	}
	slices.SortStableFunc(u.Listeners, byAddr)
	slices.SortStableFunc(u.Bound, byAddr)
	return u
}

// Verdict says why the port is busy, or that it is free.
func (u PortUse) Verdict() Verdict {
	switch {
	case len(u.Listeners) > 0:
		return VerdictListening
	case len(u.Clients) > 0 || len(u.Served) > 0:
		return VerdictClient
	case len(u.Bound) > 0:
		return VerdictBound
	case len(u.TimeWait) > 0:
		return VerdictTimeWait
	}
	return VerdictFree
}

// LastExpiry returns how long until the last TIME_WAIT remnant expires.
func (u PortUse) LastExpiry() time.Duration {
	var d time.Duration
	for _, s := range u.TimeWait {
		d = max(d, s.Expires)
	}
	return d
}

// Holders returns the distinct processes holding the port's listening and
// bound sockets (or, when it has none, its connections), by PID.
func (u PortUse) Holders() []*Process {
	var out []*Process
	add := func(ss []Socket) {
		for _, s := range ss {
			for _, p := range s.Processes {
				if !slices.ContainsFunc(out, func(q *Process) bool { return q.PID == p.PID }) {
					out = append(out, p)
				}
			}
		}
	}
	// Holders of the listening or bound sockets are the ones that block a
	// bind; connections count only when there are none of those.
	add(u.Listeners)
	add(u.Bound)
	if len(u.Listeners)+len(u.Bound) == 0 {
		add(u.Clients)
		add(u.Served)
	}
	slices.SortFunc(out, func(a, b *Process) int { return a.PID - b.PID })
	return out
}
