package port

import (
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// ServicePort picks the port that names a socket's service: its local port
// for a listener; for a connection, the port at the server's end — the one
// outside the host's ephemeral range eph, or the lower of the two.
func ServicePort(s *sockets.Socket, eph registry.Range) uint16 {
	local, remote := s.Local.Port(), s.Remote.Port()
	if remote == 0 || s.State == sockets.Listen {
		return local
	}
	switch le, re := eph.Contains(local), eph.Contains(remote); {
	case le && !re:
		return remote
	case re && !le:
		return local
	}
	return min(local, remote)
}

// ServiceName returns the first IANA service name the registry gives port
// p for the socket protocol proto (UDP, else TCP), or "".
func ServiceName(reg *registry.Registry, p uint16, proto sockets.Proto) string {
	rp := registry.TCP
	if proto == sockets.UDP {
		rp = registry.UDP
	}
	for _, a := range reg.Port(p, rp) {
		if a.Name != "" {
			return a.Name
		}
	}
	return ""
}
