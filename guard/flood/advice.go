package flood

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kind says what a piece of advice is about.
type Kind string

// The kinds of advice, from the most pressing.
const (
	// QueueFull: a listener's accept queue is at its backlog.
	QueueFull Kind = "queue-full"
	// QueueNearlyFull: a listener's accept queue is at 80 % of its backlog.
	QueueNearlyFull Kind = "queue-nearly-full"
	// SyncookiesOff: SYNs were dropped for a full SYN queue, or cookies are
	// off, so a SYN flood shuts real clients out.
	SyncookiesOff Kind = "syncookies-off"
	// SyncookiesSent: the SYN queue overflowed and cookies answered.
	SyncookiesSent Kind = "syncookies-sent"
	// ListenOverflows: full accept queues turned connections away.
	ListenOverflows Kind = "listen-overflows"
	// SyncookiesFailed: ACKs came with cookies that did not check out.
	SyncookiesFailed Kind = "syncookies-failed"
)

// Advice is one thing Advise found, with what to do about it.
type Advice struct {
	Kind Kind `json:"kind"`
	// Listener is the listener it is about, for QueueFull and
	// QueueNearlyFull.
	Listener *Listener `json:"listener,omitempty"`
	// Text says what was seen and what to do, in one line.
	Text string `json:"text"`
}

// Advise reads the signs in cur and says what to do about them, most
// pressing first. With prev, an earlier Status of the same namespace, the
// counters count what happened in between (and the texts say over how
// long); without it, since the namespace was made. It does no I/O.
func Advise(cur Status, prev *Status) []Advice {
	c, since := cur.Counters, Since(cur)
	if prev != nil && prev.Inode == cur.Inode && !prev.Time.IsZero() && cur.Time.After(prev.Time) {
		c = cur.Counters.Sub(prev.Counters)
		since = "in the last " + cur.Time.Sub(prev.Time).Round(time.Second).String()
	}
	s := cur.Settings
	var out []Advice
	anyFull := false
	for i := range cur.Listeners {
		l := cur.Listeners[i]
		kind, what := QueueFull, "full"
		switch {
		case l.Full():
			anyFull = true
		case l.NearlyFull():
			kind, what = QueueNearlyFull, "nearly full"
		default:
			continue
		}
		text := fmt.Sprintf("accept queue of %s on %s is %s (%d of %d): it accepts too slowly for its load; raise the backlog of %s on :%d (listen backlog %d, net.core.somaxconn %s)",
			l.name(), l.Local, what, l.Queue, l.Backlog, l.name(), l.Local.Port(), l.Backlog, setting(s.Somaxconn))
		if s.Somaxconn >= 0 && int64(l.Backlog) >= int64(s.Somaxconn) {
			text += fmt.Sprintf("; its backlog is capped by net.core.somaxconn: raise that too (sysctl -w net.core.somaxconn=%d)", max(2*s.Somaxconn, 4096))
		}
		out = append(out, Advice{Kind: kind, Listener: &l, Text: text})
	}
	if c.TCPReqQFullDrop > 0 || s.Syncookies == 0 {
		text := "net.ipv4.tcp_syncookies=0: a SYN flood fills the SYN queues and shuts real clients out"
		if c.TCPReqQFullDrop > 0 {
			text = fmt.Sprintf("%s SYNs dropped %s for a full SYN queue with SYN cookies off (TCPReqQFullDrop): a SYN flood or a backlog too small shuts clients out", count(c.TCPReqQFullDrop), since)
			if s.Syncookies >= 0 {
				text += fmt.Sprintf("; net.ipv4.tcp_syncookies=%d", s.Syncookies)
			}
		}
		out = append(out, Advice{Kind: SyncookiesOff, Text: text + "; set net.ipv4.tcp_syncookies=1"})
	}
	if c.SyncookiesSent > 0 {
		text := fmt.Sprintf("%s SYN cookies sent %s (the SYN queue overflowed; %s came back valid): a SYN flood or a backlog too small", count(c.SyncookiesSent), since, count(c.SyncookiesRecv))
		text += fmt.Sprintf("; net.ipv4.tcp_syncookies=%s keeps clients getting through", setting(s.Syncookies))
		text += fmt.Sprintf("; without a flood, raise net.ipv4.tcp_max_syn_backlog (now %s) and the listeners' backlogs", setting(s.MaxSynBacklog))
		out = append(out, Advice{Kind: SyncookiesSent, Text: text})
	}
	if c.ListenOverflows > 0 {
		text := fmt.Sprintf("%s connections turned away %s by a full accept queue (ListenOverflows)", count(c.ListenOverflows), since)
		if c.PassiveOpens > 0 {
			text += fmt.Sprintf(" against %s accepted", count(c.PassiveOpens))
		}
		if !anyFull {
			text += "; no accept queue is full now"
		}
		text += fmt.Sprintf(": a listener accepts too slowly or its backlog is too small; raise its listen backlog, and net.core.somaxconn (now %s)", setting(s.Somaxconn))
		out = append(out, Advice{Kind: ListenOverflows, Text: text})
	}
	if c.SyncookiesFailed > 0 {
		out = append(out, Advice{Kind: SyncookiesFailed, Text: fmt.Sprintf("%s ACKs carried a SYN cookie that did not check out %s (SyncookiesFailed): forged ACKs (an ACK flood) or clients slower than the cookie's lifetime", count(c.SyncookiesFailed), since)})
	}
	return out
}

// Since says since when the counters of st count: "since boot" for the
// host's namespace, "since the namespace was made" for another.
func Since(st Status) string {
	if st.NetNS == "host" {
		return "since boot"
	}
	return "since the namespace was made"
}

// name names a listener's program, or says it is unknown.
func (l Listener) name() string {
	if l.Process != "" {
		return l.Process
	}
	return "the listener"
}

// setting prints a setting, or "unknown" for -1.
func setting(v int) string {
	if v < 0 {
		return "unknown"
	}
	return strconv.Itoa(v)
}

// count prints n with thousands separated by commas.
func count(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
