package web

import (
	"context"

	"github.com/portctl/portctl/containers"
	"github.com/portctl/portctl/forward"
	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/sockets"
)

// Source is where a Server gets its data. Machine is the real one.
type Source interface {
	// Table lists every TCP and UDP socket, attributed to processes.
	Table(ctx context.Context) (*sockets.Table, error)
	// Walk calls fn for every TCP and UDP socket without keeping them.
	Walk(ctx context.Context, fn func(*sockets.Socket)) error
	// Host returns the port settings of the machine.
	Host() netconf.Host
	// Forwarders returns the counters of the forwarders running here.
	Forwarders(ctx context.Context) []forward.Process
}

// Machine is the Source of this machine, or of the network namespace
// NetNS (a path such as /run/netns/NAME) when it is set. Forwarders are
// read from StatsDir (forward.StatsDir() when empty).
type Machine struct {
	NetNS    string
	StatsDir string
	// ContainerHosts are the container engines asked for the names of the
	// containers behind sockets (containers.DefaultHosts); none when empty.
	ContainerHosts []string
}

func (m Machine) query() sockets.Query {
	return sockets.Query{Protos: sockets.TCP | sockets.UDP, Families: sockets.AllFamilies,
		States: sockets.AllStates, UDPStates: sockets.AllStates, NetNS: m.NetNS}
}

// Table lists every socket with its holders, and the containers behind
// them named when an engine can be asked.
func (m Machine) Table(ctx context.Context) (*sockets.Table, error) {
	q := m.query()
	q.Processes = true
	t, err := sockets.List(ctx, q)
	if err == nil && len(m.ContainerHosts) > 0 {
		containers.Name(ctx, containers.Config{Hosts: m.ContainerHosts}, t) // without an engine, IDs stay
	}
	return t, err
}

// Walk streams every socket.
func (m Machine) Walk(ctx context.Context, fn func(*sockets.Socket)) error {
	return sockets.Walk(ctx, m.query(), fn)
}

// Host reads the machine's (or the namespace's) port settings; what cannot
// be read keeps the OS's defaults.
func (m Machine) Host() netconf.Host {
	if m.NetNS != "" {
		if h, err := netconf.ReadNetNS(m.NetNS); err == nil {
			return h
		}
	}
	h, _ := netconf.Read()
	return h
}

// Forwarders asks the running forwarders for their counters.
func (m Machine) Forwarders(ctx context.Context) []forward.Process {
	dir := m.StatsDir
	if dir == "" {
		dir = forward.StatsDir()
	}
	return forward.CollectStats(ctx, dir)
}
