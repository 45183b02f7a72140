package web

import (
	"cmp"
	"context"
	"encoding/json"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portctl/portctl/audit"
	"github.com/portctl/portctl/ephemeral"
	"github.com/portctl/portctl/forward"
	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/port"
	"github.com/portctl/portctl/portmap"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// Row is one socket as the API and the page show it. Its JSON field names
// are stable.
type Row struct {
	ID        string   `json:"id"`
	Proto     string   `json:"protocol"`
	Local     string   `json:"local"`
	Port      uint16   `json:"port"`
	Remote    string   `json:"remote,omitempty"`
	State     string   `json:"state"`
	Service   string   `json:"service,omitempty"`
	PID       int      `json:"pid,omitempty"`
	Process   string   `json:"process,omitempty"`
	Cmdline   []string `json:"cmdline,omitempty"`
	User      string   `json:"user,omitempty"`
	UID       uint32   `json:"uid"`
	Unit      string   `json:"unit,omitempty"`
	Container string   `json:"container,omitempty"`
	Cgroup    string   `json:"cgroup,omitempty"`
	Holders   int      `json:"holders"`
	RecvQ     uint32   `json:"recv_q"`
	SendQ     uint32   `json:"send_q"`
	// Reach says, for a listener, who the firewall lets reach it:
	// internet, lan, loopback, nobody, or unknown (also when the ruleset
	// cannot be read).
	Reach     string `json:"reach,omitempty"`
	listening bool
}

// EphemeralPoint is one sample of the ephemeral usage history.
type EphemeralPoint struct {
	Time     time.Time `json:"time"`
	InRange  int       `json:"sockets_in_range"`
	TimeWait int       `json:"time_wait"`
	// TopShare is the share of the usable range the busiest destination
	// uses, in percent.
	TopShare float64 `json:"top_share_percent"`
	TopDest  string  `json:"top_destination,omitempty"`
}

// state is one sample of the machine.
type state struct {
	seq        uint64
	time       time.Time
	rows       []Row               // listeners first, then by port
	total      int                 // sockets in the table, before MaxRows
	ids        map[string]struct{} // the rows' IDs, for diffs
	host       netconf.Host
	audit      audit.Report
	eph        ephemeral.Report
	history    []EphemeralPoint
	forwarders []forward.Process
	mappings   []portmap.Keeper // nil when the Source lists none
	fw         *fwState         // nil when the Source reads no firewall
	err        string
}

// fwState is what the firewall did at one sample.
type fwState struct {
	err   string // why the ruleset could not be read
	read  *FirewallRead
	reach *audit.Firewall // per listening port; nil when not read
	at    time.Time       // when read
	// listeners identifies the listening sockets reach was worked out
	// for.
	listeners string
}

// firewall reads the firewall and works out who may reach each listener,
// or keeps last's: the ruleset is read again every FirewallInterval (a
// ruleset of 10,000 rules takes a while to read), and reach is worked out
// again when the ruleset was read or the listeners changed.
func (s *Server) firewall(ctx context.Context, src FirewallSource, last *fwState, socks []sockets.Socket, eph registry.Range) *fwState {
	socks = servers(socks, eph)
	fw := &fwState{listeners: listenerKey(socks)}
	if last != nil && time.Since(last.at) < s.opts.FirewallInterval {
		fw.err, fw.read, fw.at = last.err, last.read, last.at
		if fw.listeners == last.listeners {
			fw.reach = last.reach
			return fw
		}
	} else {
		fw.at = time.Now()
		rd, err := src.Firewall(ctx)
		if err != nil {
			fw.err = err.Error()
			return fw
		}
		fw.read = rd
	}
	if fw.read != nil {
		fw.reach = audit.Reachability(fw.read.Ruleset, fw.read.Host, socks)
		fw.reach.Opened = audit.OpenedNetBIOS(fw.read.Ruleset, fw.read.Host, socks)
	}
	return fw
}

// clientUDP reports whether x is a client's unconnected UDP socket: one
// on a port the OS picked from the ephemeral range eph (a resolver's
// query, say). Who may reach it is no question, and such sockets come
// and go at every sample.
func clientUDP(x *sockets.Socket, eph registry.Range) bool {
	return x.Proto == sockets.UDP && eph.Contains(x.Local.Port())
}

// servers returns the listening sockets of socks that serve: listeners
// but clients' UDP sockets.
func servers(socks []sockets.Socket, eph registry.Range) []sockets.Socket {
	var out []sockets.Socket
	for i := range socks {
		if socks[i].Listening() && !clientUDP(&socks[i], eph) {
			out = append(out, socks[i])
		}
	}
	return out
}

// listenerKey names the listening sockets of socks, in order.
func listenerKey(socks []sockets.Socket) string {
	var keys []string
	for i := range socks {
		if x := &socks[i]; x.Listening() {
			keys = append(keys, x.Proto.String()+" "+x.Local.String()+" "+strconv.FormatBool(x.V6Only))
		}
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

// Run samples the Source until ctx ends: every Interval while a page
// follows the table or an API client asked in the last minute, else every
// IdleInterval (a request then gets a fresh sample first). The first
// sample is taken at once.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for sub := range s.subs {
				close(sub.done)
				delete(s.subs, sub)
			}
			s.mu.Unlock()
			return
		case <-t.C:
			s.sample(ctx)
		case <-s.wake:
			// A request after an idle spell: it may have sampled already.
			s.sampleOlder(ctx, s.opts.Interval)
		}
		next := s.opts.IdleInterval
		if s.watched() {
			next = s.opts.Interval
		}
		t.Reset(next)
	}
}

// watched reports whether someone looks: a page following the table, or
// an API request in the last minute.
func (s *Server) watched() bool {
	s.mu.Lock()
	n := len(s.subs)
	s.mu.Unlock()
	return n > 0 || time.Since(time.Unix(0, s.lastUse.Load())) < time.Minute
}

// Ready is closed once the first sample is in.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// sample reads the machine once and tells the subscribers what changed.
// One sample runs at a time.
func (s *Server) sample(ctx context.Context) {
	s.sampling.Lock()
	defer s.sampling.Unlock()
	s.sampleLocked(ctx)
}

// sampleOlder samples unless the latest sample is younger than age, as it
// is when another request took one while this one waited its turn.
func (s *Server) sampleOlder(ctx context.Context, age time.Duration) {
	s.sampling.Lock()
	defer s.sampling.Unlock()
	s.mu.Lock()
	fresh := s.state != nil && time.Since(s.state.time) < age
	s.mu.Unlock()
	if !fresh {
		s.sampleLocked(ctx)
	}
}

// sampleLocked is sample, with s.sampling held.
func (s *Server) sampleLocked(ctx context.Context) {
	host := s.src.Host()
	next := &state{time: time.Now(), host: host}
	tab, err := s.src.Table(ctx)
	var socks []sockets.Socket
	if err != nil {
		next.err = err.Error()
	} else {
		socks = tab.Sockets
	}
	if fs, ok := s.src.(FirewallSource); ok {
		s.mu.Lock()
		prev := s.state
		s.mu.Unlock()
		var last *fwState
		if prev != nil {
			last = prev.fw
		}
		next.fw = s.firewall(ctx, fs, last, socks, host.Ephemeral)
	}
	next.rows, next.total = s.rows(socks, host.Ephemeral, next.fw)
	next.ids = make(map[string]struct{}, len(next.rows))
	for _, r := range next.rows {
		next.ids[r.ID] = struct{}{}
	}
	in := audit.Input{Sockets: socks, Host: host, OS: runtime.GOOS}
	if next.fw != nil {
		in.Firewall = next.fw.reach
	}
	if fs, ok := s.src.(FloodSource); ok {
		if st, err := fs.Flood(ctx); err == nil {
			in.Flood = &st.Counters
		}
	}
	next.audit = audit.Check(in, s.opts.Policy)
	next.eph = ephemeral.Usage(host, socks, 80, 10)
	next.forwarders = s.src.Forwarders(ctx)
	if ms, ok := s.src.(MapSource); ok {
		next.mappings = ms.Mappings(ctx)
	}

	s.mu.Lock()
	prev := s.state
	if prev != nil {
		next.seq = prev.seq + 1
		next.history = prev.history
	}
	pt := EphemeralPoint{Time: next.time, InRange: next.eph.InRange, TimeWait: next.eph.ByState["time_wait"]}
	if len(next.eph.Groups) > 0 {
		pt.TopShare, pt.TopDest = next.eph.Groups[0].Share, next.eph.Groups[0].Destination
	}
	next.history = append(next.history, pt)
	if over := len(next.history) - s.opts.History; over > 0 {
		next.history = slices.Clone(next.history[over:])
	}
	s.state = next
	var ev []byte
	if prev != nil && len(s.subs) > 0 {
		ev = diffEvent(prev, next)
	}
	for sub := range s.subs {
		select {
		case sub.ch <- ev:
		default:
			// A page too slow to keep up is dropped; its EventSource
			// reconnects and starts again from a snapshot.
			close(sub.done)
			delete(s.subs, sub)
		}
	}
	s.mu.Unlock()
	s.readyO.Do(func() { close(s.ready) })
}

// current returns the latest sample, waiting for the first. A request
// after an idle spell, when samples are sparse, gets a fresh one, and wakes
// Run to sample at the Interval again.
func (s *Server) current(ctx context.Context) *state {
	// Mark the use before waking Run, so that Run, once it has sampled,
	// sees someone looking and keeps to the Interval.
	idle := !s.watched()
	s.lastUse.Store(time.Now().UnixNano())
	if idle {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		return &state{}
	}
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	if time.Since(st.time) > 2*s.opts.Interval {
		s.sampleOlder(context.WithoutCancel(ctx), 2*s.opts.Interval)
		s.mu.Lock()
		st = s.state
		s.mu.Unlock()
	}
	return st
}

// rows turns the table into rows: listeners and bound sockets first, at
// most MaxRows of them.
func (s *Server) rows(socks []sockets.Socket, eph registry.Range, fw *fwState) ([]Row, int) {
	rows := make([]Row, 0, min(len(socks), s.opts.MaxRows))
	order := make([]int, len(socks))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		x, y := &socks[a], &socks[b]
		if lx, ly := x.Listening(), y.Listening(); lx != ly {
			if lx {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(x.Local.Port(), y.Local.Port()), cmp.Compare(x.Proto, y.Proto),
			x.Local.Addr().Compare(y.Local.Addr()), x.Remote.Compare(y.Remote))
	})
	for _, i := range order[:min(len(order), s.opts.MaxRows)] {
		r := s.row(&socks[i], eph)
		if fw != nil && r.listening && !clientUDP(&socks[i], eph) {
			r.Reach = audit.FromUnknown
			if pr := fw.reach.Port(socks[i].Proto, r.Port); pr != nil {
				r.Reach = pr.Summary()
			}
			// A change of reach is a new row for the pages that follow the
			// table.
			r.ID += " " + r.Reach
		}
		rows = append(rows, r)
	}
	return rows, len(socks)
}

// row turns a socket into a row; eph, the host's ephemeral range, tells a
// connection's server end (port.ServicePort), whose service names it.
func (s *Server) row(x *sockets.Socket, eph registry.Range) Row {
	r := Row{Proto: x.Proto.String(), Local: addrString(x.Local), Port: x.Local.Port(), State: x.State.String(),
		UID: x.UID, RecvQ: x.RecvQ, SendQ: x.SendQ, Holders: len(x.Processes), listening: x.Listening(),
		Service: port.ServiceName(s.reg, port.ServicePort(x, eph), x.Proto)}
	if x.Remote.Port() != 0 {
		r.Remote = addrString(x.Remote)
	}
	if len(x.Processes) > 0 {
		p := x.Processes[0]
		r.PID, r.Process, r.Cmdline, r.User, r.Unit, r.Container, r.Cgroup = p.PID, p.Name, p.Cmdline, p.User, p.Unit, p.Container, p.Cgroup
		if p.ContainerInfo != nil {
			r.Container = p.ContainerInfo.Name // the container it runs in, or docker-proxy's
		}
	}
	r.ID = r.Proto + " " + r.Local + " " + r.Remote + " " + r.State + " " + strconv.FormatUint(x.Inode, 10) + " " + strconv.Itoa(r.PID)
	return r
}

// addrString prints an address:port, an IPv4-mapped IPv6 address as IPv4.
func addrString(ap netip.AddrPort) string {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
}

// summary is what every event carries besides the rows: the counters the
// page's header shows, and the newest ephemeral point.
type summary struct {
	Seq       uint64         `json:"seq"`
	Time      time.Time      `json:"time"`
	Total     int            `json:"total"`
	Shown     int            `json:"shown"`
	Listening int            `json:"listening"`
	Findings  map[string]int `json:"findings"`
	Ephemeral EphemeralPoint `json:"ephemeral"`
	Error     string         `json:"error,omitempty"`
}

func (st *state) summary() summary {
	sm := summary{Seq: st.seq, Time: st.time, Total: st.total, Shown: len(st.rows), Findings: map[string]int{}, Error: st.err}
	for _, r := range st.rows {
		if r.listening {
			sm.Listening++
		}
	}
	for sev, n := range st.audit.Counts() {
		sm.Findings[sev.String()] = n
	}
	if n := len(st.history); n > 0 {
		sm.Ephemeral = st.history[n-1]
	}
	return sm
}

// event is what /api/v1/events sends: a snapshot first, then diffs.
type event struct {
	summary
	Snapshot []Row    `json:"snapshot,omitempty"`
	Added    []Row    `json:"added,omitempty"`
	Removed  []string `json:"removed,omitempty"`
}

func diffEvent(prev, next *state) []byte {
	ev := event{summary: next.summary()}
	for _, r := range next.rows {
		if _, ok := prev.ids[r.ID]; !ok {
			ev.Added = append(ev.Added, r)
		}
	}
	for _, r := range prev.rows {
		if _, ok := next.ids[r.ID]; !ok {
			ev.Removed = append(ev.Removed, r.ID)
		}
	}
	b, _ := json.Marshal(ev)
	return b
}

func snapshotEvent(st *state) []byte {
	b, _ := json.Marshal(event{summary: st.summary(), Snapshot: st.rows})
	return b
}

// rowFilter is the API's filters, normalised once per request.
type rowFilter struct {
	proto string
	state string // lower case, "-" as "_"; "" for all
	text  string // lower case
}

func newRowFilter(proto, state, text string) rowFilter {
	state = strings.ReplaceAll(strings.ToLower(state), "-", "_")
	if state == "all" {
		state = ""
	}
	return rowFilter{proto: proto, state: state, text: strings.ToLower(text)}
}

// matches reports whether r passes the filters.
func (f rowFilter) matches(r *Row) bool {
	if f.proto != "" && !strings.EqualFold(r.Proto, f.proto) {
		return false
	}
	switch f.state {
	case "":
	case "listening":
		if !r.listening {
			return false
		}
	default:
		if !strings.EqualFold(strings.ReplaceAll(r.State, "-", "_"), f.state) {
			return false
		}
	}
	if f.text == "" {
		return true
	}
	for _, s := range []string{r.Local, r.Remote, r.Service, r.Process, strings.Join(r.Cmdline, " "), r.User, r.Unit, r.Container, strconv.Itoa(r.PID)} {
		if strings.Contains(strings.ToLower(s), f.text) {
			return true
		}
	}
	return false
}
