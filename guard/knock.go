package guard

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Target is a protocol and a port: one knock, or the port a sequence
// opens.
type Target struct {
	Proto uint8 // TCP or UDP
	Port  uint16
}

// String is the target as "tcp/22".
func (t Target) String() string { return protoName(t.Proto) + "/" + strconv.Itoa(int(t.Port)) }

// ParseTarget reads "tcp/22", "udp/53" or "22" (TCP).
func ParseTarget(s string) (Target, error) {
	proto, port, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		proto, port = "tcp", proto
	}
	var t Target
	switch strings.ToLower(proto) {
	case "tcp":
		t.Proto = TCP
	case "udp":
		t.Proto = UDP
	default:
		return Target{}, fmt.Errorf("%q: the protocol must be tcp or udp", s)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return Target{}, fmt.Errorf("%q: the port must be a number from 1 to 65535", s)
	}
	t.Port = uint16(n)
	return t, nil
}

// KnockRule is a knock sequence and the port it opens.
type KnockRule struct {
	Seq  []Target `json:"sequence"`
	Open Target   `json:"open"`
}

// String is the rule as ParseKnock reads it.
func (r KnockRule) String() string {
	parts := make([]string, len(r.Seq))
	for i, t := range r.Seq {
		parts[i] = t.String()
	}
	return strings.Join(parts, ",") + ":" + r.Open.String()
}

// ParseKnock reads a knock rule: the sequence, comma-separated, then a
// colon and the port to open, as "tcp/7000,udp/8000,tcp/9000:22". A bare
// port is TCP. A sequence has 1 to 16 knocks, and must not knock on the
// port it opens.
func ParseKnock(s string) (KnockRule, error) {
	seq, open, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(seq) == "" {
		return KnockRule{}, fmt.Errorf("knock %q: want SEQUENCE:PORT, as tcp/7000,udp/8000,tcp/9000:22", s)
	}
	var r KnockRule
	var err error
	if r.Open, err = ParseTarget(open); err != nil {
		return KnockRule{}, fmt.Errorf("knock %q: %w", s, err)
	}
	for f := range strings.SplitSeq(seq, ",") {
		t, err := ParseTarget(f)
		if err != nil {
			return KnockRule{}, fmt.Errorf("knock %q: %w", s, err)
		}
		if t == r.Open {
			return KnockRule{}, fmt.Errorf("knock %q: the sequence knocks on %s, the port it opens", s, t)
		}
		r.Seq = append(r.Seq, t)
	}
	if len(r.Seq) > 16 {
		return KnockRule{}, fmt.Errorf("knock %q: %d knocks; at most 16", s, len(r.Seq))
	}
	return r, nil
}

// Knocker follows, per source address, the progress of each knock rule.
// The exact sequence within Window opens the rule's port to that address;
// any other contact from the address in between (to any port, by any
// protocol) starts the sequence over, so a scan, however it orders its
// probes, never opens anything. A knock sent again (the same packet, as a
// TCP retransmission) is not another contact. It is not safe for
// concurrent use.
type Knocker struct {
	rules  []KnockRule
	window time.Duration
	state  map[netip.Addr]*knockState
}

// knockState is one address's progress.
type knockState struct {
	step  []int       // per rule: knocks done
	start []time.Time // per rule: when its first knock came
	last  Probe       // the last knock taken, to know it again
	seen  time.Time
}

// maxKnockers bounds the addresses followed at once; the oldest progress
// goes first.
const maxKnockers = 1 << 16

// NewKnocker returns a Knocker for rules; window is the time from a
// sequence's first knock to its last (default 10 s).
func NewKnocker(rules []KnockRule, window time.Duration) *Knocker {
	if window <= 0 {
		window = 10 * time.Second
	}
	return &Knocker{rules: rules, window: window, state: map[netip.Addr]*knockState{}}
}

// Guarded says whether t is a port some rule opens: closed to everyone
// else.
func (k *Knocker) Guarded(t Target) bool {
	for _, r := range k.rules {
		if r.Open == t {
			return true
		}
	}
	return false
}

// See takes one first contact and returns the port it opens to its source,
// if it ends a sequence (ok), and whether it is a knock on the way
// (knocked), which the detector should not count as a failure.
func (k *Knocker) See(p Probe) (open Target, ok, knocked bool) {
	if len(k.rules) == 0 || p.Kind == KindReset {
		return Target{}, false, false
	}
	src := p.Src.Addr().Unmap()
	st := k.state[src]
	if st != nil && p.Time.Sub(st.seen) > k.window {
		delete(k.state, src)
		st = nil
	}
	if st != nil && st.last.Proto == p.Proto && st.last.Src == p.Src && st.last.Dst == p.Dst {
		return Target{}, false, true // a retransmission of the last knock
	}
	knock := (p.Proto == TCP && p.Kind == KindSYN) || p.Proto == UDP
	t := Target{p.Proto, p.Dst.Port()}
	if st == nil {
		if !knock || !k.starts(t) {
			return Target{}, false, false
		}
		if len(k.state) >= maxKnockers {
			k.prune(p.Time)
		}
		st = &knockState{step: make([]int, len(k.rules)), start: make([]time.Time, len(k.rules))}
		k.state[src] = st
	}
	st.seen = p.Time
	st.last = p
	progress := false
	for i, r := range k.rules {
		switch {
		case knock && r.Seq[st.step[i]] == t && (st.step[i] == 0 || p.Time.Sub(st.start[i]) <= k.window):
			if st.step[i] == 0 {
				st.start[i] = p.Time
			}
			st.step[i]++
			if st.step[i] == len(r.Seq) {
				delete(k.state, src)
				return r.Open, true, true
			}
			progress = true
		case knock && r.Seq[0] == t:
			st.step[i], st.start[i] = 1, p.Time
			progress = true
		default:
			st.step[i] = 0
		}
	}
	if !progress {
		delete(k.state, src)
	}
	return Target{}, false, progress
}

// starts says whether t is the first knock of a rule.
func (k *Knocker) starts(t Target) bool {
	for _, r := range k.rules {
		if r.Seq[0] == t {
			return true
		}
	}
	return false
}

// prune forgets progress older than the window, and, if that is not
// enough, half of the rest.
func (k *Knocker) prune(now time.Time) {
	for a, st := range k.state {
		if now.Sub(st.seen) > k.window {
			delete(k.state, a)
		}
	}
	n := len(k.state) / 2
	for a := range k.state {
		if len(k.state) <= n {
			break
		}
		delete(k.state, a)
	}
}
