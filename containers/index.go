package containers

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/portctl/portctl/sockets"
)

// Index finds containers by ID, address and published port. It is safe
// for concurrent reads.
type Index struct {
	all    []Container
	byID   map[string]int
	byAddr map[netip.Addr]int
}

// NewIndex indexes cs.
func NewIndex(cs []Container) *Index {
	x := &Index{all: cs, byID: make(map[string]int, len(cs)), byAddr: map[netip.Addr]int{}}
	for i, c := range cs {
		x.byID[c.ID] = i
		for _, a := range c.Addrs {
			x.byAddr[a] = i
		}
	}
	return x
}

// Len returns how many containers the index holds.
func (x *Index) Len() int {
	if x == nil {
		return 0
	}
	return len(x.all)
}

// ByID finds a container by its full ID, or by a prefix of at least 12
// hex digits (as docker ps shows it).
func (x *Index) ByID(id string) *Container {
	if x == nil || id == "" {
		return nil
	}
	if i, ok := x.byID[id]; ok {
		return &x.all[i]
	}
	if len(id) < 12 {
		return nil
	}
	for i := range x.all {
		if strings.HasPrefix(x.all[i].ID, id) {
			return &x.all[i]
		}
	}
	return nil
}

// ByAddr finds the container that has address a.
func (x *Index) ByAddr(a netip.Addr) *Container {
	if x == nil {
		return nil
	}
	if i, ok := x.byAddr[a.Unmap()]; ok {
		return &x.all[i]
	}
	return nil
}

// Publication is one container's port published on a host port.
type Publication struct {
	Container *Container
	Port      Port
}

// Publishing returns the containers that publish host port port for proto
// ("tcp", "udp"; "" for any).
func (x *Index) Publishing(proto string, port uint16) []Publication {
	if x == nil {
		return nil
	}
	var out []Publication
	for i := range x.all {
		for _, p := range x.all[i].Ports {
			if p.Host.Port() == port && (proto == "" || p.Proto == proto) {
				out = append(out, Publication{Container: &x.all[i], Port: p})
			}
		}
	}
	return out
}

// Annotate sets ContainerInfo on the table's processes that run in a
// container the index knows, on docker-proxy processes (for the container
// they forward to, whose name also goes into DockerProxy.ContainerName),
// and on its namespaces. It reports how many processes and namespaces it
// named.
func (x *Index) Annotate(t *sockets.Table) int {
	if x == nil || t == nil {
		return 0
	}
	named := 0
	seen := map[*sockets.Process]bool{}
	for i := range t.Sockets {
		for _, p := range t.Sockets[i].Processes {
			if seen[p] {
				continue
			}
			seen[p] = true
			if x.AnnotateProcess(p) {
				named++
			}
		}
	}
	for i := range t.Namespaces {
		if c := x.ByID(t.Namespaces[i].Container); c != nil {
			info := c.ContainerInfo
			t.Namespaces[i].ContainerInfo = &info
			named++
		}
	}
	return named
}

// AnnotateProcess sets p's ContainerInfo when p runs in a container the
// index knows or is a docker-proxy forwarding to one, and reports whether
// it did.
func (x *Index) AnnotateProcess(p *sockets.Process) bool {
	if x == nil {
		return false
	}
	var c *Container
	switch {
	case p.DockerProxy != nil:
		if c = x.proxied(p.DockerProxy); c != nil {
			p.DockerProxy.ContainerName = c.Name
		}
	case p.Container != "":
		c = x.ByID(p.Container)
	}
	if c == nil {
		return false
	}
	info := c.ContainerInfo
	p.ContainerInfo = &info
	return true
}

// AnnotateHolder names the container behind p, a holder of host port port
// for proto ("tcp", "udp"): the one p runs in or forwards to
// (AnnotateProcess), else the one an engine's process holds the port for
// (Publisher). A process already named is left as it is. It reports
// whether p is named.
func (x *Index) AnnotateHolder(p *sockets.Process, proto string, port uint16) bool {
	if p.ContainerInfo != nil || x.AnnotateProcess(p) {
		return true
	}
	if c := x.Publisher(p, proto, port); c != nil {
		info := c.ContainerInfo
		p.ContainerInfo = &info
		return true
	}
	return false
}

// engineProcesses are the programs that hold a host port on a container's
// behalf: Docker's proxy and, since Docker 28 without it, the daemon
// itself; Podman's rootless port forwarder and its conmon.
var engineProcesses = []string{"docker-proxy", "dockerd", "rootlessport", "conmon", "podman"}

// IsEngine reports whether p is a container engine's own process, one that
// may hold host ports for containers.
func IsEngine(p *sockets.Process) bool {
	return p.DockerProxy != nil || slices.Contains(engineProcesses, p.Name)
}

// Publisher returns the container for which p, an engine's process (see
// IsEngine), holds host port port for proto ("tcp", "udp"), or nil.
func (x *Index) Publisher(p *sockets.Process, proto string, port uint16) *Container {
	if x == nil || !IsEngine(p) {
		return nil
	}
	if p.DockerProxy != nil {
		return x.proxied(p.DockerProxy)
	}
	pubs := x.Publishing(proto, port)
	if len(pubs) == 0 {
		return nil
	}
	return pubs[0].Container
}

// proxied finds the container a docker-proxy forwards to: by its address
// and its published port, else by its address alone.
func (x *Index) proxied(d *sockets.DockerProxy) *Container {
	for i := range x.all {
		c := &x.all[i]
		if !slices.Contains(c.Addrs, d.Container.Addr().Unmap()) {
			continue
		}
		for _, p := range c.Ports {
			if p.Host.Port() == d.Host.Port() && p.Container == d.Container.Port() && p.Proto == d.Proto {
				return c
			}
		}
	}
	return x.ByAddr(d.Container.Addr())
}

// Nameable reports whether only an engine can name what is behind p: p is
// an engine's own process, or runs in a Docker or Podman container.
func Nameable(p *sockets.Process) bool {
	return IsEngine(p) || (p.Container != "" && (p.Runtime == "docker" || p.Runtime == "podman"))
}

// Wanted reports whether the table has something only an engine can name:
// a process in a Docker or Podman container, a docker-proxy, or a
// namespace of such a container. Without one, no engine need be asked.
func Wanted(t *sockets.Table) bool {
	for i := range t.Sockets {
		if slices.ContainsFunc(t.Sockets[i].Processes, Nameable) {
			return true
		}
	}
	for _, n := range t.Namespaces {
		if n.Container != "" {
			return true
		}
	}
	return false
}
