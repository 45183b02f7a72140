package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/user"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portctl/portctl/containers"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/port"
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
	NetNS         uint64             `json:"netns,omitempty"` // the namespace's inode, with --all-netns
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
		NetNS:         s.NetNS,
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

// serviceName names the service of a socket (port.ServicePort).
func serviceName(reg *registry.Registry, s sockets.Socket) string {
	return port.ServiceName(reg, port.ServicePort(&s, ephemeralRange()), s.Proto)
}

// netnsPath turns a --netns NAME into its file under /run/netns, where
// 'ip netns add' puts it; a path (anything with a "/") stays as it is.
func netnsPath(s string) string {
	if s != "" && !strings.Contains(s, "/") {
		return "/run/netns/" + s
	}
	return s
}

// checkNetNS turns a --netns value into the namespace's file, checking
// that it exists.
func checkNetNS(s string) (string, error) {
	path := netnsPath(s)
	if path == "" {
		return "", nil
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return "", usageErrorf("--netns %q: no such network namespace (want a name under /run/netns, as 'ip netns list' shows, or a path such as /proc/PID/ns/net)", s)
	}
	return path, nil
}

// ephemeralRange is this host's client port range, read once.
var ephemeralRange = sync.OnceValue(func() registry.Range {
	h, _ := netconf.Read()
	return h.Ephemeral
})

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
// systemd unit; or, for a container engine's process, the container it
// holds the port for, when idx knows.
func whereCell(s *sockets.Socket, idx *containers.Index) string {
	if len(s.Processes) == 0 {
		return ""
	}
	p := s.Processes[0]
	if p.DockerProxy == nil && p.ContainerInfo == nil {
		if c := idx.Publisher(p, s.Proto.String(), s.Local.Port()); c != nil {
			return p.Name + "→" + c.Name
		}
	}
	switch {
	case p.DockerProxy != nil && p.ContainerInfo != nil:
		return fmt.Sprintf("docker-proxy→%s:%d", p.ContainerInfo.Name, p.DockerProxy.Container.Port())
	case p.DockerProxy != nil:
		return "docker-proxy→" + p.DockerProxy.Container.String()
	case p.ContainerInfo != nil:
		return p.ContainerInfo.Runtime + ":" + p.ContainerInfo.Name
	case p.Container != "":
		return p.Runtime + ":" + shortID(p.Container)
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

// sortSockets orders the table: namespace (in the order of nss, when
// given), protocol, local port, local address, remote end. It sorts
// indexes, not the (large) sockets themselves.
func sortSockets(socks []sockets.Socket, nss []sockets.Namespace) []int32 {
	idx := make([]int32, len(socks))
	for i := range idx {
		idx[i] = int32(i)
	}
	rank := make(map[uint64]int, len(nss))
	for i, n := range nss {
		rank[n.Inode] = i
	}
	slices.SortFunc(idx, func(i, j int32) int {
		a, b := &socks[i], &socks[j]
		if a.NetNS != b.NetNS {
			return rank[a.NetNS] - rank[b.NetNS]
		}
		if a.Proto != b.Proto {
			return int(a.Proto) - int(b.Proto)
		}
		if a.Local.Port() != b.Local.Port() {
			return int(a.Local.Port()) - int(b.Local.Port())
		}
		if c := a.Local.Addr().Compare(b.Local.Addr()); c != 0 {
			return c
		}
		if c := a.Remote.Compare(b.Remote); c != 0 {
			return c
		}
		return int(i) - int(j)
	})
	return idx
}

// sockRenderer prints the socket table row by row, straight to the
// output: tens of thousands of sockets are never turned into a table of
// strings. Cells that repeat (processes, users, services) are cached.
type sockRenderer struct {
	reg      *registry.Registry
	st       term.Style
	procs    bool
	remote   bool
	netns    map[uint64]string           // namespace labels, when the table spans namespaces
	engines  *containers.Index           // names the containers engines hold ports for
	procCell map[*sockets.Process]string // first holder -> cell, for single holders
	users    map[uint32]string
	services map[uint32]string // proto<<16 | port -> name
	buf      []byte
}

const sockColumns = 9

// cells writes the row's cells into the renderer's buffer and returns
// their end offsets; the cells are valid until the next call.
func (r *sockRenderer) cells(s *sockets.Socket) [sockColumns]int {
	var ends [sockColumns]int
	b := r.buf[:0]
	col := 0
	end := func() { ends[col] = len(b); col++ }
	if r.netns != nil {
		b = append(b, r.netns[s.NetNS]...)
	}
	end()
	b = append(b, s.Proto.String()...)
	if s.MPTCP {
		b = append(b, "+mp"...)
	}
	if s.Family() == sockets.IPv6 {
		b = append(b, '6')
	}
	end()
	b = append(b, s.State.String()...)
	if s.State == sockets.TimeWait && s.Expires > 0 {
		b = append(b, ' ')
		b = append(b, s.Expires.Round(time.Second).String()...)
	}
	end()
	b = appendAddr(b, s.Local)
	end()
	if r.remote {
		b = appendAddr(b, s.Remote)
	}
	end()
	if r.procs {
		b = append(b, r.processCell(s)...)
		end()
		b = append(b, r.userCell(s)...)
		end()
		b = append(b, whereCell(s, r.engines)...)
		end()
	} else {
		b = strconv.AppendUint(b, uint64(s.UID), 10)
		end()
		end()
		end()
	}
	b = append(b, r.service(s)...)
	end()
	r.buf = b
	return ends
}

func appendAddr(b []byte, ap netip.AddrPort) []byte {
	if ap.Port() == 0 && ap.Addr().IsUnspecified() {
		return append(b, '*')
	}
	return ap.AppendTo(b)
}

func (r *sockRenderer) processCell(s *sockets.Socket) string {
	switch len(s.Processes) {
	case 0:
		if s.Inode != 0 {
			return r.st.Dim("?")
		}
		return ""
	case 1:
		p := s.Processes[0]
		c, ok := r.procCell[p]
		if !ok {
			c = processCell(s.Processes)
			r.procCell[p] = c
		}
		return c
	}
	return processCell(s.Processes)
}

func (r *sockRenderer) userCell(s *sockets.Socket) string {
	if len(s.Processes) > 0 && s.Processes[0].User != "" {
		return s.Processes[0].User
	}
	return userCell(*s, r.users)
}

func (r *sockRenderer) service(s *sockets.Socket) string {
	p := port.ServicePort(s, ephemeralRange())
	key := uint32(s.Proto)<<16 | uint32(p)
	if name, ok := r.services[key]; ok {
		return name
	}
	name := port.ServiceName(r.reg, p, s.Proto)
	r.services[key] = name
	return name
}

// renderSockets prints the socket table in the order idx gives, with a
// NETNS column when nss, the namespaces of a table that spans several, is
// given.
func renderSockets(streams *term.IO, socks []sockets.Socket, idx []int32, reg *registry.Registry, withProcs bool, nss []sockets.Namespace, engines *containers.Index) error {
	r := &sockRenderer{
		reg: reg, st: streams.Style(), procs: withProcs, engines: engines,
		remote:   slices.ContainsFunc(socks, func(s sockets.Socket) bool { return s.Remote.Port() != 0 }),
		procCell: map[*sockets.Process]string{}, users: map[uint32]string{}, services: map[uint32]string{},
	}
	if nss != nil {
		r.netns = make(map[uint64]string, len(nss))
		for _, n := range nss {
			r.netns[n.Inode] = namespaceLabel(n)
		}
	}
	header := [sockColumns]string{"NETNS", "PROTO", "STATE", "LOCAL", "REMOTE", "PROCESS", "USER", "WHERE", "SERVICE"}
	if !withProcs {
		header[5], header[6], header[7] = "UID", "", ""
	}
	show := [sockColumns]bool{nss != nil, true, true, true, r.remote, true, withProcs, withProcs, true}
	// First pass: column widths.
	var widths [sockColumns]int
	for c, h := range header {
		widths[c] = len(h)
	}
	for _, i := range idx {
		ends := r.cells(&socks[i])
		start := 0
		for c, e := range ends {
			widths[c] = max(widths[c], term.VisibleLenBytes(r.buf[start:e]))
			start = e
		}
	}
	w := bufio.NewWriterSize(streams.Out, 64*1024)
	line := make([]byte, 0, 256)
	last := sockColumns - 1
	writeRow := func(cells func(c int) []byte, bold bool) error {
		line = line[:0]
		for c := 0; c < sockColumns; c++ {
			if !show[c] {
				continue
			}
			cell := cells(c)
			pad := widths[c] - term.VisibleLenBytes(cell) + 2
			if bold {
				cell = []byte(r.st.Bold(string(cell)))
			}
			line = append(line, cell...)
			if c < last {
				for ; pad > 0; pad-- {
					line = append(line, ' ')
				}
			}
		}
		line = append(bytes.TrimRight(line, " "), '\n')
		_, err := w.Write(line)
		return err
	}
	if err := writeRow(func(c int) []byte { return []byte(header[c]) }, true); err != nil {
		return err
	}
	for _, i := range idx {
		ends := r.cells(&socks[i])
		if err := writeRow(func(c int) []byte {
			start := 0
			if c > 0 {
				start = ends[c-1]
			}
			return r.buf[start:ends[c]]
		}, false); err != nil {
			return err
		}
	}
	return w.Flush()
}

// namespaceLabel names a network namespace for the NETNS column: "host",
// the container's name, its runtime and short ID, the pod, the 'ip netns'
// name, or net:[INODE].
func namespaceLabel(n sockets.Namespace) string {
	switch {
	case n.Host:
		return "host"
	case n.ContainerInfo != nil:
		return n.ContainerInfo.Runtime + ":" + n.ContainerInfo.Name
	case n.Container != "":
		return n.Runtime + ":" + shortID(n.Container)
	case n.Pod != "":
		return "pod:" + n.Pod
	}
	return n.Label()
}

// shortID shortens a container ID to the 12 digits docker ps shows.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// attributionHint explains, on stderr, sockets that no visible process
// holds.
func attributionHint(streams *term.IO, unattributed int) {
	if unattributed == 0 {
		return
	}
	if runtime.GOOS != "windows" && os.Geteuid() != 0 {
		fmt.Fprintf(streams.Err, "portctl: %s of other users' processes shown with '?'; to see who holds them, %s\n", plural(unattributed, "socket"), seeOtherUsers("portctl …"))
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
