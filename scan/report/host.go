package report

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"time"

	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan"
	"github.com/portctl/portctl/scan/probe"
)

// maxListed is how many ports of a state other than open a host lists;
// beyond it the state is collapsed into a count, as nmap does.
const maxListed = 25

// numStates bounds the scan.State values, which index the per-state arrays.
const numStates = int(scan.OpenFiltered) + 1

// port is one listed port of a host.
type port struct {
	port   uint16
	proto  registry.Protocol
	state  scan.State
	reason scan.Reason
	tries  int32
	rtt    time.Duration
	svc    *probe.Service // service detection's answer, nil without
}

// reasonCount counts the ports of one state, reason and protocol.
type reasonCount struct {
	state  scan.State
	reason scan.Reason
	proto  registry.Protocol
	n      int
}

// host is what a report keeps of one address.
type host struct {
	addr    netip.Addr
	name    string
	open    []port            // every open port
	few     [numStates][]port // other states' ports, while at most maxListed
	counts  [numStates]int    // ports per state
	reasons []reasonCount     // ports per state, reason and protocol
	first   time.Time         // when the first result came
	last    time.Time         // when the last result came
	rtts    rttStats          // of the results that carry a round trip
}

// rttStats sums round trips in microseconds, exactly, so that the mean and
// deviation do not depend on the order results come in.
type rttStats struct {
	n          uint64
	sum        uint64
	sqHi, sqLo uint64 // the sum of squares, 128 bits
}

func (s *rttStats) add(d time.Duration) {
	us := uint64(d.Microseconds())
	s.n++
	s.sum += us
	hi, lo := bits.Mul64(us, us)
	var carry uint64
	s.sqLo, carry = bits.Add64(s.sqLo, lo, 0)
	s.sqHi += hi + carry
}

// meanDev returns the mean round trip and its standard deviation.
func (s *rttStats) meanDev() (mean, dev time.Duration) {
	if s.n == 0 {
		return 0, 0
	}
	n := float64(s.n)
	m := float64(s.sum) / n
	sq := (float64(s.sqHi)*(1<<64) + float64(s.sqLo)) / n
	v := math.Sqrt(max(sq-m*m, 0))
	return time.Duration(math.Round(m)) * time.Microsecond, time.Duration(math.Round(v)) * time.Microsecond
}

// hosts collects results per address.
type hosts struct {
	m   map[netip.Addr]*host
	now func() time.Time
}

func newHosts() hosts {
	return hosts{m: make(map[netip.Addr]*host), now: time.Now}
}

// checkResult reports whether r can be collected.
func checkResult(r scan.Result) error {
	if r.State < scan.Open || r.State > scan.OpenFiltered {
		return fmt.Errorf("%v port %d/%v: unknown state %d", r.Addr, r.Port, r.Proto, r.State)
	}
	if !r.Addr.IsValid() {
		return fmt.Errorf("port %d/%v: no address", r.Port, r.Proto)
	}
	return nil
}

// add records r, which checkResult accepted.
func (hs *hosts) add(r scan.Result) {
	now := hs.now()
	h := hs.m[r.Addr]
	if h == nil {
		h = &host{addr: r.Addr, first: now}
		hs.m[r.Addr] = h
	}
	h.last = now
	if h.name == "" {
		h.name = r.Host
	}
	p := port{port: r.Port, proto: r.Proto, state: r.State, reason: r.Reason, tries: int32(r.Tries), rtt: r.RTT, svc: r.Service}
	h.counts[r.State]++
	switch n := h.counts[r.State]; {
	case r.State == scan.Open:
		h.open = append(h.open, p)
	case n <= maxListed:
		h.few[r.State] = append(h.few[r.State], p)
	case n == maxListed+1:
		h.few[r.State] = nil
	}
	h.countReason(r)
	if r.RTT > 0 {
		h.rtts.add(r.RTT)
	}
}

func (h *host) countReason(r scan.Result) {
	for i := range h.reasons {
		if c := &h.reasons[i]; c.state == r.State && c.reason == r.Reason && c.proto == r.Proto {
			c.n++
			return
		}
	}
	h.reasons = append(h.reasons, reasonCount{r.State, r.Reason, r.Proto, 1})
}

// take removes and returns the host of addr, or nil.
func (hs *hosts) take(addr netip.Addr) *host {
	h := hs.m[addr]
	delete(hs.m, addr)
	return h
}

// drain removes and returns every host, in address order.
func (hs *hosts) drain() []*host {
	out := make([]*host, 0, len(hs.m))
	for _, h := range hs.m {
		out = append(out, h)
	}
	clear(hs.m)
	slices.SortFunc(out, func(a, b *host) int { return a.addr.Compare(b.addr) })
	return out
}

// collapsed reports whether state s is counted rather than listed.
func (h *host) collapsed(s scan.State) bool {
	return s != scan.Open && h.counts[s] > maxListed
}

// listed returns the ports to list (open ports and those of states not
// collapsed), in port and protocol order.
func (h *host) listed() []port {
	out := slices.Clone(h.open)
	for s := range h.few {
		if !h.collapsed(scan.State(s)) {
			out = append(out, h.few[s]...)
		}
	}
	sortPorts(out)
	return out
}

// openPorts returns the open ports in port and protocol order.
func (h *host) openPorts() []port {
	out := slices.Clone(h.open)
	sortPorts(out)
	return out
}

func sortPorts(ps []port) {
	slices.SortFunc(ps, func(a, b port) int {
		return cmp.Or(cmp.Compare(a.port, b.port), cmp.Compare(a.proto, b.proto))
	})
}

// collapsedStates returns the collapsed states, largest count first (ties
// in state order).
func (h *host) collapsedStates() []scan.State {
	var out []scan.State
	for s := scan.Open; s <= scan.OpenFiltered; s++ {
		if h.collapsed(s) {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b scan.State) int { return cmp.Compare(h.counts[b], h.counts[a]) })
	return out
}

// reasonsOf returns the reason counts of state s, largest first.
func (h *host) reasonsOf(s scan.State) []reasonCount {
	var out []reasonCount
	for _, c := range h.reasons {
		if c.state == s {
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b reasonCount) int {
		return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.proto, b.proto), cmp.Compare(a.reason, b.reason))
	})
	return out
}
