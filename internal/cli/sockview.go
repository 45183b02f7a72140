package cli

import (
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// socketJSON is one socket as `ls --json`, `who --json` and others print
// it. Its field names are a stable contract.
type socketJSON struct {
	Protocol      string             `json:"protocol"`
	Family        string             `json:"family"`
	State         string             `json:"state"`
	LocalAddress  string             `json:"local_address"`
	LocalPort     uint16             `json:"local_port"`
	RemoteAddress string             `json:"remote_address"`
	RemotePort    uint16             `json:"remote_port"`
	UID           uint32             `json:"uid"`
	Inode         uint64             `json:"inode"`
	MPTCP         bool               `json:"mptcp,omitempty"`
	V6Only        bool               `json:"v6only,omitempty"`
	RecvQ         uint32             `json:"recv_q"`
	SendQ         uint32             `json:"send_q"`
	ExpiresMS     int64              `json:"expires_ms,omitempty"`
	Service       string             `json:"service,omitempty"`
	Processes     []*sockets.Process `json:"processes"`
}

func toJSON(s sockets.Socket, reg *registry.Registry) socketJSON {
	j := socketJSON{
		Protocol:      s.Proto.String(),
		Family:        s.Family().String(),
		State:         s.State.Name(),
		LocalAddress:  s.Local.Addr().String(),
		LocalPort:     s.Local.Port(),
		RemoteAddress: s.Remote.Addr().String(),
		RemotePort:    s.Remote.Port(),
		UID:           s.UID,
		Inode:         s.Inode,
		MPTCP:         s.MPTCP,
		V6Only:        s.V6Only,
		RecvQ:         s.RecvQ,
		SendQ:         s.SendQ,
		ExpiresMS:     s.Expires.Milliseconds(),
		Service:       serviceName(reg, s),
		Processes:     s.Processes,
	}
	if j.Processes == nil {
		j.Processes = []*sockets.Process{}
	}
	return j
}

func socketsJSON(socks []sockets.Socket, reg *registry.Registry) []socketJSON {
	out := make([]socketJSON, 0, len(socks))
	for _, s := range socks {
		out = append(out, toJSON(s, reg))
	}
	return out
}

// serviceName names the service of a socket: its local port's for a
// listener, else the remote port's when that one is well known.
func serviceName(reg *registry.Registry, s sockets.Socket) string {
	proto := registry.TCP
	if s.Proto == sockets.UDP {
		proto = registry.UDP
	}
	port := s.Local.Port()
	if s.Remote.Port() != 0 && s.State != sockets.Listen {
		// For a connection, the lower-numbered end is usually the service.
		if r := s.Remote.Port(); r < port {
			port = r
		}
	}
	for _, a := range reg.Port(port, proto) {
		if a.Name != "" {
			return a.Name
		}
	}
	return ""
}

// addrString prints an address:port the way ss does, with "*" for an
// unspecified peer.
func addrString(ap netip.AddrPort) string {
	if ap.Port() == 0 && ap.Addr().IsUnspecified() {
		return "*"
	}
	return ap.String()
}

// processCell names the processes holding a socket: "nginx/1234".
func processCell(ps []*sockets.Process) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s/%d", p.Name, p.PID))
	}
	if len(parts) > 3 {
		parts = append(parts[:3], fmt.Sprintf("+%d", len(parts)-3))
	}
	return strings.Join(parts, ",")
}

// whereCell names where the first holder runs: its container, pod or
// systemd unit.
func whereCell(ps []*sockets.Process) string {
	if len(ps) == 0 {
		return ""
	}
	p := ps[0]
	switch {
	case p.DockerProxy != nil:
		return "docker-proxy→" + p.DockerProxy.Container.String()
	case p.Container != "":
		id := p.Container
		if len(id) > 12 {
			id = id[:12]
		}
		return p.Runtime + ":" + id
	case p.Unit != "":
		return p.Unit
	}
	return ""
}

// userCell names the owner: the holder's user, else the socket's uid.
func userCell(s sockets.Socket, users map[uint32]string) string {
	if len(s.Processes) > 0 && s.Processes[0].User != "" {
		return s.Processes[0].User
	}
	if n, ok := users[s.UID]; ok {
		return n
	}
	n := fmt.Sprint(s.UID)
	if u, err := user.LookupId(n); err == nil {
		n = u.Username
	}
	users[s.UID] = n
	return n
}

// sortSockets orders the table: protocol, local port, local address,
// remote end.
func sortSockets(socks []sockets.Socket) {
	slices.SortStableFunc(socks, func(a, b sockets.Socket) int {
		if a.Proto != b.Proto {
			return int(a.Proto) - int(b.Proto)
		}
		if a.Local.Port() != b.Local.Port() {
			return int(a.Local.Port()) - int(b.Local.Port())
		}
		if c := a.Local.Addr().Compare(b.Local.Addr()); c != 0 {
			return c
		}
		return a.Remote.Compare(b.Remote)
	})
}

// renderSockets prints the socket table.
func renderSockets(streams *term.IO, socks []sockets.Socket, reg *registry.Registry, withProcs bool) error {
	showRemote := slices.ContainsFunc(socks, func(s sockets.Socket) bool { return s.Remote.Port() != 0 })
	header := []string{"PROTO", "STATE", "LOCAL"}
	if showRemote {
		header = append(header, "REMOTE")
	}
	if withProcs {
		header = append(header, "PROCESS", "USER", "WHERE")
	} else {
		header = append(header, "UID")
	}
	header = append(header, "SERVICE")
	t := term.NewTable(header...)
	st := streams.Style()
	users := map[uint32]string{}
	for _, s := range socks {
		proto := s.Proto.String()
		if s.MPTCP {
			proto += "+mp"
		}
		if s.Family() == sockets.IPv6 {
			proto += "6"
		}
		state := s.State.String()
		if s.State == sockets.TimeWait && s.Expires > 0 {
			state += " " + s.Expires.Round(time.Second).String()
		}
		row := []string{proto, state, addrString(s.Local)}
		if showRemote {
			row = append(row, addrString(s.Remote))
		}
		if withProcs {
			pc := processCell(s.Processes)
			if pc == "" && s.Inode != 0 {
				pc = st.Dim("?")
			}
			row = append(row, pc, userCell(s, users), whereCell(s.Processes))
		} else {
			row = append(row, fmt.Sprint(s.UID))
		}
		row = append(row, serviceName(reg, s))
		t.Row(row...)
	}
	return t.Render(streams.Out, streams.Width(), st)
}

// attributionHint explains, on stderr, sockets that no visible process
// holds.
func attributionHint(streams *term.IO, unattributed int) {
	if unattributed == 0 {
		return
	}
	if runtime.GOOS != "windows" && os.Geteuid() != 0 {
		fmt.Fprintf(streams.Err, "portctl: %s of other users' processes shown with '?'; run as root (sudo portctl …) to see who holds them\n", plural(unattributed, "socket"))
		return
	}
	fmt.Fprintf(streams.Err, "portctl: %s held by processes not visible here (another PID namespace, or kernel-owned) shown with '?'\n", plural(unattributed, "socket"))
}

// plural writes "1 socket" or "3 sockets".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
