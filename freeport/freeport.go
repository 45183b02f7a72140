package freeport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"

	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/registry"
)

// ErrNotEnough is returned (wrapped) when fewer ports than asked for are
// free; the Result then holds those that are.
var ErrNotEnough = errors.New("freeport: not enough free ports")

// DefaultRange is the range searched when Config.Range is not set, before
// the ephemeral range, reserved ports and (when the caller may not bind
// them) privileged ports are taken out.
var DefaultRange = registry.Range{First: 1024, Last: 65535}

// Config says which ports Find may return. The zero value asks for one
// TCP port in DefaultRange, excluding nothing but port 0 (set Host to
// exclude this host's ephemeral and reserved ports).
type Config struct {
	// N is the number of ports wanted (0: 1).
	N int
	// Range, when not nil, is searched as given, less the reserved
	// ports: the ephemeral and privileged ports in it are kept.
	Range *registry.Range
	// Near, when not 0, returns the free ports closest to Near (Near,
	// Near+1, Near-1, Near+2, ...) instead of random ones.
	Near uint16
	// UDP asks for ports free for UDP as well as TCP.
	UDP bool
	// Host gives the ephemeral range, the reserved ports and the
	// unprivileged port start (netconf.Read).
	Host netconf.Host
	// Privileged says the caller may bind ports below
	// Host.UnprivilegedStart (it runs as root).
	Privileged bool
	// Rand orders the search when Near is 0 (nil: a random source).
	Rand *rand.Rand
}

// Result is what Find found.
type Result struct {
	// Ports are the free ports, in the order found: random, or by
	// distance from Config.Near.
	Ports []uint16
	// Protocols is TCP, or TCP|UDP.
	Protocols registry.Protocol
	// IPv6 is true when the ports were proven free on IPv6 as well as
	// IPv4; false on a host without IPv6.
	IPv6 bool
	// Range is the range searched.
	Range registry.Range
	// Excluded are the ranges inside Range that were not searched:
	// ephemeral, reserved and privileged ports.
	Excluded []registry.Range
	// Candidates is the number of ports in Range that were not
	// excluded; Tried is how many of them were bound.
	Candidates, Tried int
}

// Find returns cfg.N ports that are free on this host. When fewer are, it
// returns those with an error wrapping ErrNotEnough. Other errors (no
// socket can be made at all) are returned as they are.
func Find(cfg Config) (Result, error) {
	return find(cfg, osBinder{})
}

// binder binds a port for a moment and says whether it could.
type binder interface {
	// bind tries network ("tcp4", "tcp6", "udp4", "udp6") on the
	// wildcard address and port p, and closes it again.
	bind(network string, p uint16) error
}

func find(cfg Config, b binder) (Result, error) {
	n := max(cfg.N, 1)
	res := Result{Protocols: registry.TCP, IPv6: true}
	if cfg.UDP {
		res.Protocols |= registry.UDP
	}
	set := candidates(cfg)
	res.Range, res.Excluded, res.Candidates = set.within, set.excludedRanges(), set.count()

	// A host without IPv6 cannot bind "::" at all: prove it once, then
	// search IPv4 only.
	if err := b.bind("tcp6", 0); err != nil {
		if !noFamily(err) {
			return res, fmt.Errorf("freeport: bind tcp6: %w", err)
		}
		res.IPv6 = false
	}
	var networks []string
	for _, p := range res.Protocols.Each() {
		networks = append(networks, p.String()+"4")
		if res.IPv6 {
			networks = append(networks, p.String()+"6")
		}
	}

	next := set.random(cfg.Rand)
	if cfg.Near != 0 {
		next = set.near(cfg.Near)
	}
	for len(res.Ports) < n {
		p, ok := next()
		if !ok {
			break
		}
		res.Tried++
		free := true
		for _, nw := range networks {
			if err := b.bind(nw, p); err != nil {
				if !busy(err) {
					return res, fmt.Errorf("freeport: bind %s port %d: %w", nw, p, err)
				}
				free = false
				break
			}
		}
		if free {
			res.Ports = append(res.Ports, p)
		}
	}
	if len(res.Ports) < n {
		return res, fmt.Errorf("freeport: %d of %d ports free in %s: %w", len(res.Ports), n, res.Range, ErrNotEnough)
	}
	return res, nil
}

// osBinder binds real sockets.
type osBinder struct{}

func (osBinder) bind(network string, p uint16) error {
	lc := net.ListenConfig{Control: noReuseAddr}
	host := "0.0.0.0"
	if network[len(network)-1] == '6' {
		host = "::"
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(p)))
	if network[:3] == "tcp" {
		l, err := lc.Listen(context.Background(), network, addr)
		if err != nil {
			return err
		}
		return l.Close()
	}
	c, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return err
	}
	return c.Close()
}
