package web

import (
	"context"
	"os"

	"github.com/portctl/portctl/containers"
	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/forward"
	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/portmap"
	"github.com/portctl/portctl/sockets"
	"github.com/portctl/portctl/statsock"
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
	return forward.CollectStats(ctx, m.statsDir())
}

// statsDir is where running portctl processes publish their state.
func (m Machine) statsDir() string {
	if m.StatsDir != "" {
		return m.StatsDir
	}
	return forward.StatsDir()
}

// MapSource is a Source that can also list the port mappings that
// `portctl map add` processes keep at the router. Machine is one.
type MapSource interface {
	Mappings(ctx context.Context) []portmap.Keeper
}

// Mappings asks the running `portctl map add` processes for the
// mappings they keep.
func (m Machine) Mappings(ctx context.Context) []portmap.Keeper {
	return statsock.Collect[portmap.Keeper](ctx, m.statsDir(), "map")
}

// FirewallSource is a Source that can also read the packet filter: the
// dashboard then shows who may reach each listening port, and a firewall
// page. Machine is one.
type FirewallSource interface {
	Firewall(ctx context.Context) (*FirewallRead, error)
}

// FirewallRead is what a FirewallSource read: the ruleset with its rules'
// owners named, what the evaluator needs of the host, and the blocks of
// portctl's own table.
type FirewallRead struct {
	Ruleset *firewall.Ruleset
	Host    *firewall.Host
	Blocks  []firewall.PortBlock
}

// ufwRulesFiles are where ufw keeps the rules it was given, which name
// the ufw rule behind each rule of its user chains.
var ufwRulesFiles = []string{"/etc/ufw/user.rules", "/etc/ufw/user6.rules"}

// Firewall reads the ruleset of the machine (or of NetNS), the host's
// interfaces, routes and sysctls, and portctl's blocks, and names the
// owner of every rule. Reading the ruleset needs root or CAP_NET_ADMIN
// (firewall.ErrPermission).
func (m Machine) Firewall(ctx context.Context) (*FirewallRead, error) {
	opts := firewall.Options{NetNS: m.NetNS}
	rs, err := firewall.Read(ctx, opts)
	if err != nil {
		return nil, err
	}
	h, err := firewall.ReadHost(opts)
	if err != nil {
		return nil, err
	}
	var hints firewall.OwnerHints
	for _, f := range ufwRulesFiles {
		if b, err := os.ReadFile(f); err == nil {
			hints.UFW = append(hints.UFW, firewall.ParseUFWRules(string(b))...)
			hints.UFWRead = true
		}
	}
	firewall.Attribute(rs, hints)
	blocks, _ := firewall.Blocks(ctx, opts) // no table of portctl's: no blocks
	return &FirewallRead{Ruleset: rs, Host: h, Blocks: blocks}, nil
}
