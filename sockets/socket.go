package sockets

import (
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/portctl/portctl/netns"
)

// ErrNotImplemented is returned where the OS gives portctl no way to read
// the socket table.
var ErrNotImplemented = errors.New("sockets: not implemented on this OS")

// Proto is a transport protocol of a socket.
type Proto uint8

// The protocols the socket table holds.
const (
	TCP Proto = 1 << iota
	UDP
	MPTCP

	// AllProtos is every protocol.
	AllProtos = TCP | UDP | MPTCP
)

// String returns "tcp", "udp" or "mptcp" (sets are joined with "/").
func (p Proto) String() string {
	var parts []string
	for _, x := range []struct {
		p Proto
		s string
	}{{TCP, "tcp"}, {UDP, "udp"}, {MPTCP, "mptcp"}} {
		if p&x.p != 0 {
			parts = append(parts, x.s)
		}
	}
	return strings.Join(parts, "/")
}

// MarshalText encodes the protocol as its String form.
func (p Proto) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Family is an address family set.
type Family uint8

// The address families.
const (
	IPv4 Family = 1 << iota
	IPv6

	// AllFamilies is IPv4 and IPv6.
	AllFamilies = IPv4 | IPv6
)

// String returns "ipv4", "ipv6" or "ipv4/ipv6".
func (f Family) String() string {
	switch f {
	case IPv4:
		return "ipv4"
	case IPv6:
		return "ipv6"
	case AllFamilies:
		return "ipv4/ipv6"
	}
	return ""
}

// State is a socket state, numbered as the Linux kernel numbers TCP states.
// UDP sockets are Established when connected and Close ("unconnected")
// otherwise.
type State uint8

// The states, with the kernel's numbers (include/net/tcp_states.h).
const (
	Established State = 1
	SynSent     State = 2
	SynRecv     State = 3
	FinWait1    State = 4
	FinWait2    State = 5
	TimeWait    State = 6
	Close       State = 7
	CloseWait   State = 8
	LastAck     State = 9
	Listen      State = 10
	Closing     State = 11
	NewSynRecv  State = 12
)

var stateNames = [...]struct{ short, long string }{
	Established: {"ESTAB", "established"},
	SynSent:     {"SYN-SENT", "syn_sent"},
	SynRecv:     {"SYN-RECV", "syn_recv"},
	FinWait1:    {"FIN-WAIT-1", "fin_wait1"},
	FinWait2:    {"FIN-WAIT-2", "fin_wait2"},
	TimeWait:    {"TIME-WAIT", "time_wait"},
	Close:       {"UNCONN", "close"},
	CloseWait:   {"CLOSE-WAIT", "close_wait"},
	LastAck:     {"LAST-ACK", "last_ack"},
	Listen:      {"LISTEN", "listen"},
	Closing:     {"CLOSING", "closing"},
	NewSynRecv:  {"SYN-RECV", "new_syn_recv"},
}

// String returns the state as ss prints it: "ESTAB", "LISTEN", "UNCONN"…
func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s].short != "" {
		return stateNames[s].short
	}
	return "UNKNOWN"
}

// Name returns the state's stable lowercase name, used in JSON:
// "established", "listen", "time_wait", "close"…
func (s State) Name() string {
	if int(s) < len(stateNames) && stateNames[s].long != "" {
		return stateNames[s].long
	}
	return "unknown"
}

// MarshalText encodes the state as its Name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.Name()), nil }

// ParseState parses a state by its Name or String form, ignoring case and
// the difference between '-' and '_' ("time-wait", "TIME_WAIT", "estab").
func ParseState(s string) (State, error) {
	k := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_")
	for i, n := range stateNames {
		if n.short == "" {
			continue
		}
		if k == n.long || k == strings.ReplaceAll(strings.ToLower(n.short), "-", "_") {
			return State(i), nil
		}
	}
	switch k {
	case "unconnected", "bound":
		return Close, nil
	}
	return 0, errors.New("unknown state " + quote(s) + " (want listen, established, time-wait, syn-sent, syn-recv, fin-wait-1, fin-wait-2, close-wait, last-ack, closing or unconn)")
}

func quote(s string) string { return `"` + s + `"` }

// StateSet is a set of states, as the kernel's idiag_states bit mask.
type StateSet uint32

// Sets of states that queries commonly ask for.
const (
	AllStates StateSet = 0xfff << 1
)

// StatesOf returns the set holding the given states.
func StatesOf(states ...State) StateSet {
	var s StateSet
	for _, st := range states {
		s |= 1 << st
	}
	return s
}

// Has reports whether st is in the set.
func (s StateSet) Has(st State) bool { return s&(1<<st) != 0 }

// Socket is one entry of the socket table.
type Socket struct {
	Proto    Proto          `json:"protocol"`
	Local    netip.AddrPort `json:"local"`
	Remote   netip.AddrPort `json:"remote"`
	State    State          `json:"state"`
	UID      uint32         `json:"uid"`
	Inode    uint64         `json:"inode"`
	Cookie   uint64         `json:"-"`
	V6Only   bool           `json:"v6only,omitempty"`
	MPTCP    bool           `json:"mptcp,omitempty"` // a TCP listener that also accepts MPTCP (Go 1.24+ does this)
	CgroupID uint64         `json:"cgroup_id,omitempty"`
	RecvQ    uint32         `json:"recv_q"`
	SendQ    uint32         `json:"send_q"`
	// Expires is the time left on the socket's timer: for TIME_WAIT, how
	// long until the kernel forgets the connection.
	Expires time.Duration `json:"expires_ns,omitempty"`
	// NetNS is the inode of the network namespace the socket lives in, set
	// by ListAll (see Table.Namespaces); List leaves it 0.
	NetNS uint64 `json:"netns,omitempty"`
	// Processes hold the socket: several after a fork that followed listen.
	// Sockets with the same single holder share this slice: do not modify
	// it in place.
	Processes []*Process `json:"processes,omitempty"`
}

// Family returns IPv4 or IPv6.
func (s *Socket) Family() Family {
	if s.Local.Addr().Is4() {
		return IPv4
	}
	return IPv6
}

// Listening reports whether s accepts new peers: a TCP (or MPTCP) socket
// in Listen, or an unconnected UDP socket.
func (s *Socket) Listening() bool {
	return s.State == Listen || (s.Proto == UDP && s.State == Close)
}

// Process is a process holding one or more sockets.
type Process struct {
	PID       int       `json:"pid"`
	PPID      int       `json:"ppid"`
	Name      string    `json:"name"`              // the command name (comm)
	Cmdline   []string  `json:"cmdline,omitempty"` // empty for kernel threads and unreadable processes
	Exe       string    `json:"exe,omitempty"`     // path of the executable, when readable
	UID       uint32    `json:"uid"`
	User      string    `json:"user,omitempty"`
	Start     time.Time `json:"start"`
	Cgroup    string    `json:"cgroup,omitempty"` // cgroup v2 path (or the systemd name=… v1 path)
	Unit      string    `json:"unit,omitempty"`   // systemd unit, such as nginx.service
	Container string    `json:"container,omitempty"`
	Runtime   string    `json:"runtime,omitempty"` // docker, podman, containerd, cri-o, kubernetes
	Pod       string    `json:"pod,omitempty"`     // Kubernetes pod UID
	// DockerProxy is set when the process is Docker's userland proxy.
	DockerProxy *DockerProxy `json:"docker_proxy,omitempty"`
	// SocketActivated is set when systemd passed the socket in (LISTEN_FDS).
	SocketActivated bool `json:"socket_activated,omitempty"`
	// ContainerInfo names the container the process runs in or, for
	// docker-proxy, the one it forwards to, as the container engine's API
	// tells. List never sets it; package containers fills it in.
	ContainerInfo *ContainerInfo `json:"container_info,omitempty"`
}

// ContainerInfo is what a container engine's API says of a container.
type ContainerInfo struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Image string `json:"image,omitempty"`
	// Runtime is "docker" or "podman".
	Runtime string `json:"runtime,omitempty"`
	// ComposeProject and ComposeService come from Compose's labels.
	ComposeProject string `json:"compose_project,omitempty"`
	ComposeService string `json:"compose_service,omitempty"`
}

// Namespace is a network namespace of the host (see ListAll), with the
// container or pod whose processes are in it, where their cgroups tell.
type Namespace struct {
	netns.Namespace
	Container string `json:"container,omitempty"`
	Runtime   string `json:"runtime,omitempty"`
	Pod       string `json:"pod,omitempty"`
	// ContainerInfo names the container through its engine's API; package
	// containers fills it in.
	ContainerInfo *ContainerInfo `json:"container_info,omitempty"`
}

// Query selects sockets. The zero Query selects nothing: set Protos,
// Families and States (or start from ListeningQuery). With MPTCP in Protos,
// MPTCP sockets are listed and TCP listeners that accept MPTCP are marked.
type Query struct {
	Protos   Proto
	Families Family
	// States selects TCP and MPTCP sockets by state.
	States StateSet
	// UDPStates selects UDP sockets: Close for bound, unconnected sockets,
	// Established for connected ones. Zero means the same as States.
	UDPStates StateSet
	// LocalPort, when not zero, keeps sockets bound to that port; the
	// kernel does the filtering.
	LocalPort uint16
	// RemotePort, when not zero, keeps sockets connected to that port.
	RemotePort uint16
	// Processes asks for attribution of sockets to processes.
	Processes bool
	// AllHolders makes attribution scan every process, to find every holder
	// of a shared socket, instead of stopping once each socket has one.
	AllHolders bool
	// AttributeIf, when set, limits attribution to the sockets it selects:
	// finding the holder of one listener among 40,000 connections is much
	// cheaper than finding every connection's. Other OSes may attribute
	// every socket regardless.
	AttributeIf func(*Socket) bool
	// NetNS, when set, is a network namespace file (such as
	// /run/netns/NAME) whose sockets are listed instead of this process's.
	NetNS string
}

// ListeningQuery returns the query `portctl ls` runs by default: listening
// TCP and MPTCP sockets and bound UDP sockets, IPv4 and IPv6.
func ListeningQuery() Query {
	return Query{Protos: AllProtos, Families: AllFamilies, States: StatesOf(Listen), UDPStates: StatesOf(Close)}
}

// Table is the result of List.
type Table struct {
	Sockets []Socket `json:"sockets"`
	// Unattributed counts sockets with an inode that no readable process
	// holds: without privilege, those of other users' processes.
	Unattributed int `json:"unattributed"`
	// Partial is true when some /proc entries could not be read.
	Partial bool `json:"partial"`
	// Namespaces describes the network namespaces whose sockets ListAll
	// listed, by the inode in Socket.NetNS.
	Namespaces []Namespace `json:"namespaces,omitempty"`
}
