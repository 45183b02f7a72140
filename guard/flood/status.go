package flood

import (
	"cmp"
	"errors"
	"net/netip"
	"slices"
	"time"
)

// ErrNotImplemented is returned by Read where the OS keeps no such
// counters that portctl can read (everywhere but Linux).
var ErrNotImplemented = errors.New("flood: not implemented on this OS")

// Options say what Read reads.
type Options struct {
	// NetNS is a network namespace file (such as /run/netns/NAME) to read
	// instead of this process's namespace; "" reads this process's.
	NetNS string
	// Processes asks for the programs holding the listeners, for advice
	// that names them; it costs a walk of /proc.
	Processes bool
	// SkipListeners leaves Status.Listeners empty, for a caller that walks
	// the socket table itself (the Prometheus collector).
	SkipListeners bool
}

// Status is what Read found in one network namespace. Its JSON field names
// are stable. A Status is a plain value: Advise reads it, and nothing
// modifies it after Read.
type Status struct {
	// Time is when it was read; Advise works out rates between two.
	Time time.Time `json:"time"`
	// NetNS names the namespace: "host", an 'ip netns' name, or
	// "net:[INODE]".
	NetNS string `json:"netns"`
	// Inode identifies the namespace (0 when unknown): a Status whose
	// inode differs from the one before it starts counting afresh.
	Inode    uint64   `json:"netns_inode,omitempty"`
	Counters Counters `json:"counters"`
	Settings Settings `json:"settings"`
	// Listeners are the TCP listeners, fullest accept queue first.
	Listeners []Listener `json:"listeners"`
}

// Counters are the kernel's TCP counters of a namespace that tell of
// floods and overflowing queues, counted since the namespace was made
// (/proc/net/netstat's TcpExt group and /proc/net/snmp's Tcp group).
type Counters struct {
	// ListenOverflows counts connections a listener's full accept queue
	// turned away (the SYN, or the handshake's last ACK, was dropped).
	ListenOverflows uint64 `json:"listen_overflows"`
	// ListenDrops counts SYNs and ACKs a listener dropped for any reason,
	// overflows included.
	ListenDrops uint64 `json:"listen_drops"`
	// SyncookiesSent counts SYN-ACKs that carried a SYN cookie because the
	// SYN queue was full (or tcp_syncookies is 2).
	SyncookiesSent uint64 `json:"syncookies_sent"`
	// SyncookiesRecv counts ACKs with a valid cookie: clients that got
	// through while the SYN queue was full.
	SyncookiesRecv uint64 `json:"syncookies_recv"`
	// SyncookiesFailed counts ACKs with a cookie that did not check out:
	// forged ACKs, or cookies that had expired.
	SyncookiesFailed uint64 `json:"syncookies_failed"`
	// TCPReqQFullDrop counts SYNs dropped because the SYN queue was full
	// and cookies were off.
	TCPReqQFullDrop uint64 `json:"tcp_req_q_full_drop"`
	// TCPReqQFullDoCookies counts SYNs answered with a cookie because the
	// SYN queue was full.
	TCPReqQFullDoCookies uint64 `json:"tcp_req_q_full_do_cookies"`
	// PassiveOpens counts connections that listeners took in (snmp's Tcp
	// PassiveOpens): the load the counters above are out of.
	PassiveOpens uint64 `json:"passive_opens"`
}

// CountersFrom picks the Counters out of ParseNetstat's result for
// /proc/net/netstat, or for that and /proc/net/snmp merged. A counter the
// kernel does not have stays 0.
func CountersFrom(groups map[string]map[string]uint64) Counters {
	ext, tcp := groups["TcpExt"], groups["Tcp"]
	return Counters{
		ListenOverflows:      ext["ListenOverflows"],
		ListenDrops:          ext["ListenDrops"],
		SyncookiesSent:       ext["SyncookiesSent"],
		SyncookiesRecv:       ext["SyncookiesRecv"],
		SyncookiesFailed:     ext["SyncookiesFailed"],
		TCPReqQFullDrop:      ext["TCPReqQFullDrop"],
		TCPReqQFullDoCookies: ext["TCPReqQFullDoCookies"],
		PassiveOpens:         tcp["PassiveOpens"],
	}
}

// Sub returns c less before, counter by counter, for the counts in
// between; a counter that went down (the namespace was made again) keeps
// its own value.
func (c Counters) Sub(before Counters) Counters {
	d := func(now, then uint64) uint64 {
		if now < then {
			return now
		}
		return now - then
	}
	return Counters{
		ListenOverflows:      d(c.ListenOverflows, before.ListenOverflows),
		ListenDrops:          d(c.ListenDrops, before.ListenDrops),
		SyncookiesSent:       d(c.SyncookiesSent, before.SyncookiesSent),
		SyncookiesRecv:       d(c.SyncookiesRecv, before.SyncookiesRecv),
		SyncookiesFailed:     d(c.SyncookiesFailed, before.SyncookiesFailed),
		TCPReqQFullDrop:      d(c.TCPReqQFullDrop, before.TCPReqQFullDrop),
		TCPReqQFullDoCookies: d(c.TCPReqQFullDoCookies, before.TCPReqQFullDoCookies),
		PassiveOpens:         d(c.PassiveOpens, before.PassiveOpens),
	}
}

// Settings are the namespace's settings that bound the queues; -1 stands
// for a setting that could not be read.
type Settings struct {
	// Syncookies is net.ipv4.tcp_syncookies: 0 off, 1 when the SYN queue
	// is full, 2 always.
	Syncookies int `json:"tcp_syncookies"`
	// MaxSynBacklog is net.ipv4.tcp_max_syn_backlog, which bounds the SYN
	// queues.
	MaxSynBacklog int `json:"tcp_max_syn_backlog"`
	// Somaxconn is net.core.somaxconn, the most a listen backlog can be.
	Somaxconn int `json:"somaxconn"`
}

// UnknownSettings are Settings of which nothing could be read.
var UnknownSettings = Settings{Syncookies: -1, MaxSynBacklog: -1, Somaxconn: -1}

// Listener is a TCP listener and its accept queue.
type Listener struct {
	Local netip.AddrPort `json:"local"`
	// Queue is how many connections wait in its accept queue now, handshake
	// done, for the program to accept them (ss's Recv-Q).
	Queue uint32 `json:"queue"`
	// Backlog is its accept queue's size: the backlog it asked for in
	// listen(2), capped by net.core.somaxconn (ss's Send-Q).
	Backlog uint32 `json:"backlog"`
	// PID and Process name its first holder, with Options.Processes.
	PID     int    `json:"pid,omitempty"`
	Process string `json:"process,omitempty"`
}

// Full reports whether the accept queue holds as many connections as its
// backlog: the kernel turns away the next (it keeps one past the backlog).
func (l Listener) Full() bool { return l.Queue > 0 && l.Queue >= l.Backlog }

// NearlyFull reports whether the queue holds at least 80 % of its backlog
// and at least two connections.
func (l Listener) NearlyFull() bool { return l.Queue >= 2 && uint64(l.Queue)*5 >= uint64(l.Backlog)*4 }

// sortListeners orders listeners fullest first (by share of the backlog),
// then by port and address.
func sortListeners(ls []Listener) {
	fill := func(l Listener) float64 {
		if l.Backlog == 0 {
			return float64(l.Queue)
		}
		return float64(l.Queue) / float64(l.Backlog)
	}
	slices.SortFunc(ls, func(a, b Listener) int {
		return cmp.Or(cmp.Compare(fill(b), fill(a)), cmp.Compare(a.Local.Port(), b.Local.Port()), a.Local.Compare(b.Local))
	})
}
