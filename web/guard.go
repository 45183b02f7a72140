package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portctl/portctl/guard"
)

// The follower of guard's events file (portctl guard --events FILE,
// Options.GuardEvents) reads the file as tail -F does: at start its last
// guardTailLines lines, then each line appended, through truncation,
// rotation by rename, and a file that appears later. Memory is bounded:
// guardKeepEvents events, the counts, and one unfinished line of at most
// guardMaxLine bytes.
const (
	// guardTailLines is how many of the file's last lines are read at
	// start; guardTailBytes bounds how far back they are looked for.
	guardTailLines = 500
	guardTailBytes = 16 << 20
	// guardKeepEvents is how many of the latest events are kept for the
	// API and the page.
	guardKeepEvents = 200
	// guardMaxLine bounds a line: a longer one is skipped as malformed.
	// (A scan's event lists at most 1,024 ports: some 6 KB.)
	guardMaxLine = 256 << 10
	// guardPoll is how often the file is looked at for new lines.
	guardPoll = 500 * time.Millisecond
	// An event kept for the API lists at most guardKeepList ports and
	// hosts (guard's own default bound), and a message of at most
	// guardKeepMessage bytes: 200 kept events take a few MB at most.
	guardKeepList    = 1024
	guardKeepMessage = 4 << 10
)

// guardTypes are the event types guard writes; any other is counted as
// "other", so that a file cannot make up label values without end.
var guardTypes = []string{guard.EventStart, guard.EventScan, guard.EventSweep, guard.EventBlock, guard.EventKnock,
	guard.EventSPA, guard.EventRefused, guard.EventTarpit, guard.EventReload, guard.EventStop, guard.EventError}

// guardKinds are the kinds of scan guard reports; any other is "other".
var guardKinds = []guard.Kind{guard.KindSYN, guard.KindNull, guard.KindFIN, guard.KindXmas, guard.KindACK,
	guard.KindMaimon, guard.KindFlags, guard.KindUDP}

// errGuardLine is the error of a line that is not one of guard's events.
var errGuardLine = errors.New("not an event of portctl guard")

// parseGuardLine reads one line of guard's events file: a JSON object
// with at least a time and a type. Fields it does not know are ignored,
// as a newer guard may write more.
func parseGuardLine(line []byte) (guard.Event, error) {
	var ev guard.Event
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return ev, errGuardLine
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		return guard.Event{}, err
	}
	if ev.Time.IsZero() || !validGuardType(ev.Type) {
		return guard.Event{}, errGuardLine
	}
	return ev, nil
}

// validGuardType reports whether t looks like an event type: a short
// lowercase word.
func validGuardType(t string) bool {
	if t == "" || len(t) > 32 {
		return false
	}
	for _, c := range []byte(t) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// guardKey is an event's type and, for a scan, its kind, as the metrics
// label them: "other" for types and kinds guard does not write.
type guardKey struct{ typ, kind string }

func guardKeyOf(ev *guard.Event) guardKey {
	k := guardKey{typ: "other"}
	for _, t := range guardTypes {
		if ev.Type == t {
			k.typ = t
		}
	}
	if k.typ != guard.EventScan {
		return k
	}
	k.kind = "other"
	for _, kd := range guardKinds {
		if ev.Kind == kd {
			k.kind = string(kd)
		}
	}
	return k
}

// guardFeed is what has been read of guard's events file: the latest
// events and the counts. It is safe for concurrent use.
type guardFeed struct {
	path string
	poll time.Duration

	mu        sync.Mutex
	ring      [guardKeepEvents]guard.Event
	next, n   int // where the next event goes in ring; how many it holds
	counts    map[guardKey]uint64
	blocked   uint64
	malformed uint64
	last      time.Time // the latest time an event carried
	err       string    // why the file cannot be read now
}

func newGuardFeed(path string) *guardFeed {
	return &guardFeed{path: path, poll: guardPoll, counts: map[guardKey]uint64{}}
}

// line takes one line of the file; a blank one is nothing.
func (g *guardFeed) line(b []byte) {
	if len(bytes.TrimSpace(b)) == 0 {
		return
	}
	ev, err := parseGuardLine(b)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.malformed++
		return
	}
	g.ring[g.next] = trimGuardEvent(ev)
	g.next = (g.next + 1) % len(g.ring)
	g.n = min(g.n+1, len(g.ring))
	g.counts[guardKeyOf(&ev)]++
	if ev.Type == guard.EventBlock {
		g.blocked++
	}
	if ev.Time.After(g.last) {
		g.last = ev.Time
	}
}

// trimGuardEvent bounds what an event kept holds.
func trimGuardEvent(ev guard.Event) guard.Event {
	if len(ev.Ports) > guardKeepList {
		ev.Ports = slices.Clone(ev.Ports[:guardKeepList]) // the rest's memory goes
	}
	if len(ev.Hosts) > guardKeepList {
		ev.Hosts = slices.Clone(ev.Hosts[:guardKeepList])
	}
	if len(ev.Message) > guardKeepMessage {
		ev.Message = strings.ToValidUTF8(ev.Message[:guardKeepMessage], "") + "…"
	}
	return ev
}

// tooLong counts a line past guardMaxLine as malformed.
func (g *guardFeed) tooLong() {
	g.mu.Lock()
	g.malformed++
	g.mu.Unlock()
}

func (g *guardFeed) setErr(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case err == nil:
		g.err = ""
	case errors.Is(err, fs.ErrNotExist):
		g.err = err.Error() + " (yet: portctl guard --events FILE makes it)"
	default:
		g.err = err.Error()
	}
}

// guardAnswer is the body of /api/v1/guard.
type guardAnswer struct {
	// Events are the latest events, newest last (each with at most 1,024
	// ports and hosts and 4 KiB of message).
	Events []guard.Event `json:"events"`
	// Counts are the events read by type (those in the file when serve
	// started, at most its last 500 lines, and all appended since).
	Counts         map[string]uint64 `json:"counts"`
	MalformedLines uint64            `json:"malformed_lines"`
	// Error says why the file cannot be read now (it may not be there
	// yet): the events above are those read before.
	Error string `json:"error,omitempty"`
}

func (g *guardFeed) answer() guardAnswer {
	g.mu.Lock()
	defer g.mu.Unlock()
	ans := guardAnswer{Events: make([]guard.Event, 0, g.n), Counts: map[string]uint64{}, MalformedLines: g.malformed, Error: g.err}
	for i := range g.n {
		ans.Events = append(ans.Events, g.ring[(g.next-g.n+i+len(g.ring))%len(g.ring)])
	}
	for k, n := range g.counts {
		ans.Counts[k.typ] += n
	}
	return ans
}

func (s *Server) apiGuard(w http.ResponseWriter, r *http.Request) {
	if s.guard == nil {
		writeError(w, http.StatusNotFound, "no guard events: serve --guard-events FILE follows the file of portctl guard --events FILE")
		return
	}
	writeJSON(w, http.StatusOK, s.guard.answer())
}

// FollowGuard reads Options.GuardEvents, as tail -F does, until ctx
// ends, for /api/v1/guard, the page and /metrics; run it beside Run. It
// returns at once without Options.GuardEvents.
func (s *Server) FollowGuard(ctx context.Context) {
	if s.guard == nil {
		return
	}
	t := &tailer{path: s.guard.path, line: s.guard.line, tooLong: s.guard.tooLong, max: guardMaxLine}
	defer t.close()
	s.guard.setErr(t.start(ctx))
	tick := time.NewTicker(s.guard.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.guard.setErr(t.poll(ctx))
		}
	}
}

// tailer follows a file of lines by its name: it reads what is
// appended, starts again from the top of a truncated file, and moves to
// the new file when the name is given to another (after it read the old
// one to its end). It hands each line to line, without its newline; the
// slice is only valid during the call.
type tailer struct {
	path    string
	line    func([]byte)
	tooLong func() // a line past max was skipped
	max     int    // the longest line handed over (guardMaxLine when 0)

	f       *os.File
	off     int64  // how far f has been read
	partial []byte // the start of a line whose end has not been read
	skip    bool   // drop what comes up to the next newline
	buf     []byte
}

// start opens the file and reads its last guardTailLines lines. A file
// that is not there is opened by a later poll, and read from its top.
func (t *tailer) start(ctx context.Context) error {
	f, err := os.Open(t.path)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	off, mid, err := tailStart(f, fi.Size(), guardTailLines, guardTailBytes)
	if err != nil {
		f.Close()
		return err
	}
	t.f, t.off, t.skip = f, off, mid
	return t.read(ctx)
}

// poll reads what was appended since the last poll, and follows a
// truncation or a rotation.
func (t *tailer) poll(ctx context.Context) error {
	if t.f == nil {
		f, err := os.Open(t.path)
		if err != nil {
			return err
		}
		t.f, t.off = f, 0
		t.reset()
	}
	fi, err := t.f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() < t.off { // truncated (logrotate's copytruncate)
		t.off = 0
		t.reset()
	}
	if err := t.read(ctx); err != nil {
		return err
	}
	cur, err := os.Stat(t.path)
	if err != nil || os.SameFile(cur, fi) {
		// The name is gone (renamed, not yet made again): whoever writes
		// still writes into the file held open.
		return nil
	}
	// Another file has the name: read the old one to its end (what was
	// written since the read above), then the new one from its top.
	if err := t.read(ctx); err != nil {
		return err
	}
	if len(t.partial) > 0 && !t.skip {
		t.line(t.partial)
	}
	t.close()
	return t.poll(ctx)
}

// read reads f from off to its end, handing over each complete line.
func (t *tailer) read(ctx context.Context) error {
	if t.buf == nil {
		t.buf = make([]byte, 64<<10)
	}
	for ctx.Err() == nil {
		n, err := t.f.ReadAt(t.buf, t.off)
		t.off += int64(n)
		t.split(t.buf[:n])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// split hands over the lines b completes.
func (t *tailer) split(b []byte) {
	if t.max == 0 {
		t.max = guardMaxLine
	}
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if !t.skip {
				t.partial = append(t.partial, b...)
				if len(t.partial) > t.max {
					t.tooLong()
					t.reset()
					t.skip = true
				}
			}
			return
		}
		line := b[:i]
		b = b[i+1:]
		if t.skip {
			t.skip = false
			continue
		}
		if len(t.partial) > 0 {
			t.partial = append(t.partial, line...)
			line = t.partial
		}
		if len(line) > t.max {
			t.tooLong()
		} else {
			t.line(line)
		}
		t.reset()
	}
}

// reset forgets an unfinished line.
func (t *tailer) reset() {
	t.partial, t.skip = t.partial[:0], false
	if cap(t.partial) > 64<<10 {
		t.partial = nil // a long line's buffer is not kept
	}
}

func (t *tailer) close() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	t.reset()
}

// tailStart returns the offset of the first of the last n lines of the
// size bytes r holds, looking back at most max bytes: the byte after the
// (n+1)-th newline from the end (an unfinished last line is not one of
// the n). mid is true when the offset may fall inside a line, as it does
// when max bytes hold no newline: what comes before the next newline is
// then no line.
func tailStart(r io.ReaderAt, size int64, n int, max int64) (off int64, mid bool, err error) {
	buf := make([]byte, 64<<10)
	lowest := size - max
	if lowest < 0 {
		lowest = 0
	}
	newlines := 0
	for end := size; end > lowest; {
		start := end - int64(len(buf))
		if start < lowest {
			start = lowest
		}
		chunk := buf[:end-start]
		if _, err := r.ReadAt(chunk, start); err != nil && err != io.EOF {
			return 0, false, err
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' {
				continue
			}
			newlines++
			off = start + int64(i) + 1
			if newlines == n+1 {
				return off, false, nil
			}
		}
		end = start
	}
	switch {
	case lowest == 0:
		return 0, false, nil
	case newlines == 0:
		return size, true, nil
	}
	return off, false, nil // the earliest newline found: all of its lines are past max
}

var (
	descGuardEvents = prometheus.NewDesc("portctl_guard_events_total",
		"Events portctl guard wrote to the --guard-events file, by type and, for scans, kind: "+
			"those of the file's last 500 lines when serve started, and every one appended since.",
		[]string{"type", "kind"}, nil)
	descGuardBlocked = prometheus.NewDesc("portctl_guard_sources_blocked_total",
		"Sources portctl guard blocked (its block events in the --guard-events file: "+
			"those of the file's last 500 lines when serve started, and every one appended since).", nil, nil)
	descGuardMalformed = prometheus.NewDesc("portctl_guard_malformed_lines_total",
		"Lines of the --guard-events file skipped as no event of portctl guard (not JSON, no time or type, longer than 256 KiB), "+
			"of the file's last 500 lines when serve started and every one appended since.", nil, nil)
	descGuardLast = prometheus.NewDesc("portctl_guard_last_event_timestamp_seconds",
		"The latest time an event of the --guard-events file carries, in seconds since the Unix epoch; absent before the first event.", nil, nil)
)

// guardCollector exports the counts of a guardFeed.
type guardCollector struct{ g *guardFeed }

func (c guardCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGuardEvents, descGuardBlocked, descGuardMalformed, descGuardLast} {
		ch <- d
	}
}

// Collect exports every type (and every scan kind) guard writes, so a
// query sees 0 rather than no series.
func (c guardCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.g
	g.mu.Lock()
	counts := make(map[guardKey]uint64, len(g.counts)+len(guardTypes)+len(guardKinds))
	for k, n := range g.counts {
		counts[k] = n
	}
	blocked, malformed, last := g.blocked, g.malformed, g.last
	g.mu.Unlock()
	for _, t := range guardTypes {
		if t != guard.EventScan {
			counts[guardKey{typ: t}] += 0
		}
	}
	for _, k := range guardKinds {
		counts[guardKey{guard.EventScan, string(k)}] += 0
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(descGuardEvents, prometheus.CounterValue, float64(n), k.typ, k.kind)
	}
	ch <- prometheus.MustNewConstMetric(descGuardBlocked, prometheus.CounterValue, float64(blocked))
	ch <- prometheus.MustNewConstMetric(descGuardMalformed, prometheus.CounterValue, float64(malformed))
	if !last.IsZero() {
		ch <- prometheus.MustNewConstMetric(descGuardLast, prometheus.GaugeValue, float64(last.UnixNano())/1e9)
	}
}
