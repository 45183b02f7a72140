package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/guard"
)

var guardT0 = time.Date(2026, 12, 7, 12, 0, 3, 0, time.UTC)

const scanLine = `{"time":"2026-12-07T12:00:03Z","type":"scan","source":"10.9.0.2","kind":"syn","proto":"tcp","ports":[1,2,3,4],"probes":4,"failures":4,"first":"2026-12-07T12:00:01Z"}`

func TestParseGuardLine(t *testing.T) {
	for _, tt := range []struct {
		name string
		line string
		want guard.Event
		ok   bool
	}{
		{"scan", scanLine, guard.Event{Time: guardT0, Type: "scan", Source: "10.9.0.2", Kind: guard.KindSYN, Proto: "tcp",
			Ports: []uint16{1, 2, 3, 4}, Probes: 4, Failures: 4, First: guardT0.Add(-2 * time.Second)}, true},
		{"block", `{"time":"2026-12-07T12:00:03Z","type":"block","source":"10.9.0.2","for":"10m0s"}`,
			guard.Event{Time: guardT0, Type: "block", Source: "10.9.0.2", For: "10m0s"}, true},
		{"carriage return and spaces", "  " + `{"time":"2026-12-07T12:00:03Z","type":"stop"}` + " \r",
			guard.Event{Time: guardT0, Type: "stop"}, true},
		{"unknown fields and types", `{"time":"2026-12-07T12:00:03Z","type":"newer-thing","extra":{"a":[1]}}`,
			guard.Event{Time: guardT0, Type: "newer-thing"}, true},
		{"empty", "", guard.Event{}, false},
		{"not JSON", "12:00:03 scan 10.9.0.2: syn scan", guard.Event{}, false},
		{"array", `[{"time":"2026-12-07T12:00:03Z","type":"scan"}]`, guard.Event{}, false},
		{"null", "null", guard.Event{}, false},
		{"empty object", "{}", guard.Event{}, false},
		{"no time", `{"type":"scan"}`, guard.Event{}, false},
		{"no type", `{"time":"2026-12-07T12:00:03Z"}`, guard.Event{}, false},
		{"markup type", `{"time":"2026-12-07T12:00:03Z","type":"<b>x</b>"}`, guard.Event{}, false},
		{"long type", `{"time":"2026-12-07T12:00:03Z","type":"` + strings.Repeat("a", 33) + `"}`, guard.Event{}, false},
		{"port out of range", `{"time":"2026-12-07T12:00:03Z","type":"scan","ports":[70000]}`, guard.Event{}, false},
		{"two objects", `{"time":"2026-12-07T12:00:03Z","type":"stop"}{"time":"2026-12-07T12:00:03Z","type":"stop"}`, guard.Event{}, false},
		{"cut short", scanLine[:60], guard.Event{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseGuardLine([]byte(tt.line))
			if (err == nil) != tt.ok {
				t.Fatalf("parseGuardLine(%q) error = %v; want ok %v", tt.line, err, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseGuardLine(%q) (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

func FuzzParseGuardLine(f *testing.F) {
	f.Add([]byte(scanLine))
	f.Add([]byte(`{"time":"2026-12-07T12:00:03Z","type":"sweep","source":"10.9.0.0/24","hosts":["10.9.0.1","fd00::1"]}`))
	f.Add([]byte(`{"time":"2026-12-07T12:00:03+01:00","type":"knock","proto":"tcp","ports":[22],"for":"30s","spoofable":true}`))
	f.Add([]byte(`{"time":"2026-12-07T12:00:03Z","type":"error","message":"nflog: \u00e9\ud800"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, err := parseGuardLine(line)
		if err != nil {
			return
		}
		if ev.Time.IsZero() || !validGuardType(ev.Type) {
			t.Fatalf("parseGuardLine(%q) = %+v: want a time and a type, or an error", line, ev)
		}
		k := guardKeyOf(&ev)
		if (k.kind != "") != (k.typ == guard.EventScan) {
			t.Fatalf("guardKeyOf(%+v) = %+v: want a kind for scans only", ev, k)
		}
		// What is read is written again the same way.
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("parseGuardLine(%q) = %+v, which does not marshal: %v", line, ev, err)
		}
		again, err := parseGuardLine(b)
		if err != nil {
			t.Fatalf("parseGuardLine(%q) = %v; it read %q before", b, err, line)
		}
		if b2, _ := json.Marshal(again); !bytes.Equal(b, b2) {
			t.Fatalf("read again, %s became %s", b, b2)
		}
	})
}

func TestTailStart(t *testing.T) {
	for _, tt := range []struct {
		name    string
		data    string
		n       int
		max     int64
		want    int64
		wantMid bool
	}{
		{"empty", "", 2, 100, 0, false},
		{"fewer lines", "a\nb\n", 5, 100, 0, false},
		{"exactly n", "a\nb\n", 2, 100, 0, false},
		{"last two", "a\nb\nc\n", 2, 100, 2, false},
		{"unfinished last line", "a\nb\nc\nd", 2, 100, 2, false},
		{"last one", "aaa\nbbb\n", 1, 100, 4, false},
		{"max cuts a line", "aaaa\nbb\ncc\n", 5, 7, 5, false},
		{"max holds no newline", "aaaaaaaaaa", 5, 4, 10, true},
		{"max holds one newline", "aaaaaaaaaa\n", 5, 4, 11, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, mid, err := tailStart(strings.NewReader(tt.data), int64(len(tt.data)), tt.n, tt.max)
			if err != nil || got != tt.want || mid != tt.wantMid {
				t.Errorf("tailStart(%q, n %d, max %d) = %d, %v, %v; want %d, %v", tt.data, tt.n, tt.max, got, mid, err, tt.want, tt.wantMid)
			}
		})
	}
	// Past one read of 64 KiB.
	var b strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&b, "%05d\n", i)
	}
	data := b.String()
	got, _, _ := tailStart(strings.NewReader(data), int64(len(data)), 500, guardTailBytes)
	if want := int64(len(data) - 500*6); got != want {
		t.Errorf("tailStart(20,000 lines, n 500) = %d; want %d", got, want)
	}
}

// FuzzTailerSplit: whatever the data and however it arrives, in one
// piece or in two, the tailer hands over the same lines as splitting the
// whole at its newlines, and counts each line past its bound once (an
// unfinished one as soon as it is past it).
func FuzzTailerSplit(f *testing.F) {
	f.Add([]byte("a\nbb\n\nccc"), 1, 8)
	f.Add([]byte("aaaaaaaaaaaa\nb\n"), 5, 4)
	f.Add([]byte("\n\n\n"), 0, 1)
	f.Fuzz(func(t *testing.T, data []byte, cut, max int) {
		if max <= 0 || max > 64 {
			max = 8
		}
		if cut < 0 || cut > len(data) {
			cut = len(data) / 2
		}
		var want []string
		wantLong := 0
		lines := bytes.Split(data, []byte("\n"))
		for i, l := range lines {
			switch {
			case len(l) > max:
				wantLong++ // counted once past max, finished or not
			case i < len(lines)-1: // the last is unfinished
				want = append(want, string(l))
			}
		}
		var got []string
		long := 0
		tl := &tailer{max: max, line: func(b []byte) { got = append(got, string(b)) }, tooLong: func() { long++ }}
		tl.split(data[:cut])
		tl.split(data[cut:])
		if diff := cmp.Diff(want, got); diff != "" || long != wantLong {
			t.Errorf("split(%q | %q), max %d: lines (-want +got):\n%s\nlong lines %d; want %d", data[:cut], data[cut:], max, diff, long, wantLong)
		}
	})
}

// eventLine is an event as a line of guard's events file.
func eventLine(typ, source string, kind guard.Kind, at time.Time) string {
	b, _ := json.Marshal(guard.Event{Time: at, Type: typ, Source: source, Kind: kind, Ports: []uint16{22, 80}, Message: "<b>m</b>"})
	return string(b) + "\n"
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// followGuard makes a Server following path every 5 ms; the test ends
// with the follower stopped (a follower still running after its context
// ended fails it).
func followGuard(t *testing.T, path string, opts Options) *Server {
	t.Helper()
	opts.GuardEvents = path
	if opts.Source == nil {
		opts.Source = &tableSource{}
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.guard.poll = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.FollowGuard(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Errorf("FollowGuard still runs 2 s after its context ended")
		}
	})
	return s
}

// waitGuard waits until the feed's answer satisfies ok.
func waitGuard(t *testing.T, s *Server, what string, ok func(guardAnswer) bool) guardAnswer {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ans := s.guard.answer()
		if ok(ans) {
			return ans
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(ans)
			t.Fatalf("waited 5 s for %s; the feed holds %s", what, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sources(ans guardAnswer) string {
	var s []string
	for _, ev := range ans.Events {
		s = append(s, ev.Source)
	}
	return strings.Join(s, ",")
}

// TestGuardFollowAppend: the lines in the file at start, then each line
// appended, a line written in two parts read once whole, malformed lines
// counted and skipped.
func TestGuardFollowAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events")
	appendFile(t, path, eventLine("start", "", "", guardT0)+"not json\n\n"+eventLine("scan", "a", guard.KindSYN, guardT0))
	s := followGuard(t, path, Options{})
	waitGuard(t, s, "the file's events", func(a guardAnswer) bool { return sources(a) == ",a" && a.MalformedLines == 1 })

	line := eventLine("block", "b", "", guardT0.Add(time.Second))
	appendFile(t, path, line[:20])
	time.Sleep(30 * time.Millisecond) // several polls see the line unfinished
	if a := s.guard.answer(); len(a.Events) != 2 || a.MalformedLines != 1 {
		t.Fatalf("after half a line: %d events, %d malformed; want 2 and 1: an unfinished line waits", len(a.Events), a.MalformedLines)
	}
	appendFile(t, path, line[20:]+"{\"type\":\n"+eventLine("scan", "c", guard.KindUDP, guardT0.Add(2*time.Second)))
	ans := waitGuard(t, s, "the appended events", func(a guardAnswer) bool { return sources(a) == ",a,b,c" })
	want := map[string]uint64{"start": 1, "scan": 2, "block": 1}
	if diff := cmp.Diff(want, ans.Counts); diff != "" || ans.MalformedLines != 2 || ans.Error != "" {
		t.Errorf("counts (-want +got):\n%s; malformed %d (want 2), error %q", diff, ans.MalformedLines, ans.Error)
	}
}

// TestGuardFollowTail: of a long file, the last 500 lines are read at
// start, and the latest 200 events kept, newest last.
func TestGuardFollowTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events")
	var b strings.Builder
	for i := range 1200 {
		b.WriteString(eventLine("scan", strconv.Itoa(i), guard.KindSYN, guardT0))
	}
	appendFile(t, path, b.String())
	s := followGuard(t, path, Options{})
	ans := waitGuard(t, s, "the file's last lines", func(a guardAnswer) bool { return a.Counts["scan"] == 500 })
	if len(ans.Events) != guardKeepEvents || ans.Events[0].Source != "1000" || ans.Events[199].Source != "1199" {
		t.Errorf("kept %d events, %s to %s; want 200, 1000 to 1199", len(ans.Events), ans.Events[0].Source, ans.Events[len(ans.Events)-1].Source)
	}
}

// TestGuardFollowTruncate: a truncated file (logrotate's copytruncate)
// is read again from its top.
func TestGuardFollowTruncate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events")
	appendFile(t, path, eventLine("scan", "a", guard.KindSYN, guardT0)+eventLine("scan", "b", guard.KindSYN, guardT0))
	s := followGuard(t, path, Options{})
	waitGuard(t, s, "the file's events", func(a guardAnswer) bool { return sources(a) == "a,b" })
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	appendFile(t, path, eventLine("scan", "c", guard.KindSYN, guardT0))
	ans := waitGuard(t, s, "the event after the truncation", func(a guardAnswer) bool { return sources(a) == "a,b,c" })
	if ans.MalformedLines != 0 {
		t.Errorf("%d malformed lines; want 0", ans.MalformedLines)
	}
}

// TestGuardFollowRotate: the file renamed away (guard still writing into
// it) and a new one made under the name: the old file is read to its end,
// then the new one from its top, every line once.
func TestGuardFollowRotate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events")
	appendFile(t, path, eventLine("scan", "a", guard.KindSYN, guardT0))
	s := followGuard(t, path, Options{})
	waitGuard(t, s, "the file's event", func(a guardAnswer) bool { return sources(a) == "a" })

	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	w.WriteString(eventLine("scan", "b", guard.KindSYN, guardT0)) // the writer has not reopened yet
	waitGuard(t, s, "the renamed file's new event", func(a guardAnswer) bool { return sources(a) == "a,b" })
	w.WriteString(eventLine("scan", "c", guard.KindSYN, guardT0))
	appendFile(t, path, eventLine("scan", "d", guard.KindSYN, guardT0))
	waitGuard(t, s, "both files' events", func(a guardAnswer) bool { return sources(a) == "a,b,c,d" })
	appendFile(t, path, eventLine("scan", "e", guard.KindSYN, guardT0))
	ans := waitGuard(t, s, "the new file's next event", func(a guardAnswer) bool { return sources(a) == "a,b,c,d,e" })
	if ans.Counts["scan"] != 5 {
		t.Errorf("counted %d scans; want 5", ans.Counts["scan"])
	}
}

// TestGuardFollowLate: a file that is not there yet is waited for, and
// read from its top when it comes.
func TestGuardFollowLate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events")
	s := followGuard(t, path, Options{})
	waitGuard(t, s, "the error of the missing file", func(a guardAnswer) bool { return strings.Contains(a.Error, "no such file") })
	appendFile(t, path, eventLine("start", "", "", guardT0)+eventLine("scan", "a", guard.KindFIN, guardT0))
	ans := waitGuard(t, s, "the late file's events", func(a guardAnswer) bool { return sources(a) == ",a" })
	if ans.Error != "" {
		t.Errorf("error %q once the file is there; want none", ans.Error)
	}
}

// TestGuardFollowLongLine: a line past 256 KiB is skipped as malformed,
// however it arrives, and the next line is read.
func TestGuardFollowLongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events")
	appendFile(t, path, strings.Repeat("x", guardMaxLine+10)+"\n")
	s := followGuard(t, path, Options{})
	waitGuard(t, s, "the long line at start", func(a guardAnswer) bool { return a.MalformedLines == 1 })
	appendFile(t, path, `{"time":"2026-12-07T12:00:03Z","type":"error","message":"`)
	for range 3 {
		appendFile(t, path, strings.Repeat("y", guardMaxLine/2))
		time.Sleep(15 * time.Millisecond)
	}
	appendFile(t, path, "\"}\n"+eventLine("scan", "a", guard.KindSYN, guardT0))
	ans := waitGuard(t, s, "the event after the long line", func(a guardAnswer) bool { return sources(a) == "a" })
	if ans.MalformedLines != 2 {
		t.Errorf("%d malformed lines; want 2", ans.MalformedLines)
	}
}

// TestGuardKeepsEventsSmall: an event kept for the API holds at most
// 1,024 ports and hosts and 4 KiB of message; the counts are whole.
func TestGuardKeepsEventsSmall(t *testing.T) {
	ev := guard.Event{Time: guardT0, Type: "scan", Kind: guard.KindSYN, Ports: make([]uint16, 5000), Hosts: make([]netip.Addr, 2000),
		Message: strings.Repeat("é", 3000)}
	b, _ := json.Marshal(ev)
	g := newGuardFeed("")
	g.line(b)
	ans := g.answer()
	if len(ans.Events) != 1 || ans.Counts["scan"] != 1 {
		t.Fatalf("answer = %d events, counts %v; want 1 scan", len(ans.Events), ans.Counts)
	}
	got := ans.Events[0]
	if len(got.Ports) != 1024 || cap(got.Ports) != 1024 || len(got.Hosts) != 1024 || len(got.Message) > 4<<10+len("…") || !utf8.ValidString(got.Message) {
		t.Errorf("kept %d ports (cap %d), %d hosts, a message of %d bytes (valid UTF-8 %v); want 1,024, 1,024, at most 4 KiB",
			len(got.Ports), cap(got.Ports), len(got.Hosts), len(got.Message), utf8.ValidString(got.Message))
	}
}

// TestAPIGuard asks /api/v1/guard through the handler, with the token
// the other endpoints need.
func TestAPIGuard(t *testing.T) {
	const token = "0123456789abcdef0123"
	path := filepath.Join(t.TempDir(), "events")
	appendFile(t, path, eventLine("scan", "10.9.0.2", guard.KindSYN, guardT0)+eventLine("block", "10.9.0.2", "", guardT0)+"junk\n")
	s := followGuard(t, path, Options{Token: token})
	waitGuard(t, s, "the file's events", func(a guardAnswer) bool { return len(a.Events) == 2 })

	call := func(s *Server, path string, auth bool) (int, string) {
		req, _ := http.NewRequest("GET", "http://127.0.0.1"+path, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, _ := call(s, "/api/v1/guard", false); code != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/guard without the token: %d; want 401", code)
	}
	code, body := call(s, "/api/v1/guard", true)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/guard: %d %s", code, body)
	}
	var ans struct {
		Events []map[string]any `json:"events"`
		Counts map[string]int   `json:"counts"`
		Bad    int              `json:"malformed_lines"`
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatalf("GET /api/v1/guard: %v\n%s", err, body)
	}
	if len(ans.Events) != 2 || ans.Events[0]["type"] != "scan" || ans.Events[0]["kind"] != "syn" || ans.Events[1]["type"] != "block" ||
		ans.Events[0]["source"] != "10.9.0.2" || ans.Bad != 1 {
		t.Errorf("GET /api/v1/guard = %s; want the scan, then the block, and one malformed line", body)
	}
	if diff := cmp.Diff(map[string]int{"scan": 1, "block": 1}, ans.Counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if _, body := call(s, "/api/v1/session", true); !strings.Contains(body, `"guard": true`) {
		t.Errorf("the session = %s; want guard true", body)
	}

	// Without --guard-events: no such data, and the page is told.
	plain, err := New(Options{Source: &tableSource{}})
	if err != nil {
		t.Fatal(err)
	}
	plain.FollowGuard(context.Background()) // returns at once
	if code, body := call(plain, "/api/v1/guard", false); code != http.StatusNotFound || !strings.Contains(body, "--guard-events") {
		t.Errorf("GET /api/v1/guard without GuardEvents: %d %s; want 404 naming --guard-events", code, body)
	}
	if _, body := call(plain, "/api/v1/session", false); !strings.Contains(body, `"guard": false`) {
		t.Errorf("the session = %s; want guard false", body)
	}
	if strings.Contains(scrapeBody(t, plain), "portctl_guard_") {
		t.Errorf("/metrics without GuardEvents has portctl_guard_ metrics")
	}
}

// metricValue returns the value of the sample of name with exactly the
// labels given (as /metrics writes them), and whether there is one.
func metricValue(body, name, labels string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name+labels) + ` (\S+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	return v, err == nil
}

// TestGuardMetrics reads the guard's counters from the text of /metrics,
// and lints it with promtool.
func TestGuardMetrics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events")
	appendFile(t, path, eventLine("start", "", "", guardT0))
	s := followGuard(t, path, Options{})
	waitGuard(t, s, "the start event", func(a guardAnswer) bool { return a.Counts["start"] == 1 })
	body := scrapeBody(t, s)
	if v, ok := metricValue(body, "portctl_guard_events_total", `{kind="syn",type="scan"}`); !ok || v != 0 {
		t.Errorf("before any scan, portctl_guard_events_total{scan,syn} = %v, %v; want 0, a series", v, ok)
	}
	later := guardT0.Add(90 * time.Second)
	appendFile(t, path, eventLine("scan", "a", guard.KindSYN, guardT0)+eventLine("scan", "b", guard.KindSYN, guardT0)+
		eventLine("scan", "c", guard.KindUDP, guardT0)+eventLine("block", "a", "", later)+eventLine("block", "b", "", guardT0)+
		eventLine("knock", "d", guard.KindSYN, guardT0)+eventLine("invented", "e", "", guardT0)+"{broken\n")
	waitGuard(t, s, "the appended events", func(a guardAnswer) bool { return a.MalformedLines == 1 })
	body = scrapeBody(t, s)
	for _, tt := range []struct {
		name, labels string
		want         float64
	}{
		{"portctl_guard_events_total", `{kind="",type="start"}`, 1},
		{"portctl_guard_events_total", `{kind="syn",type="scan"}`, 2},
		{"portctl_guard_events_total", `{kind="udp",type="scan"}`, 1},
		{"portctl_guard_events_total", `{kind="xmas",type="scan"}`, 0},
		{"portctl_guard_events_total", `{kind="",type="block"}`, 2},
		{"portctl_guard_events_total", `{kind="",type="knock"}`, 1}, // a kind only for scans
		{"portctl_guard_events_total", `{kind="",type="other"}`, 1},
		{"portctl_guard_events_total", `{kind="",type="refused"}`, 0},
		{"portctl_guard_sources_blocked_total", "", 2},
		{"portctl_guard_malformed_lines_total", "", 1},
		{"portctl_guard_last_event_timestamp_seconds", "", float64(later.Unix())},
	} {
		if got, ok := metricValue(body, tt.name, tt.labels); !ok || got != tt.want {
			t.Errorf("%s%s = %v (present %v); want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	for _, help := range []string{"# TYPE portctl_guard_events_total counter", "# TYPE portctl_guard_last_event_timestamp_seconds gauge", "last 500 lines when serve started"} {
		if !strings.Contains(body, help) {
			t.Errorf("/metrics lacks %q", help)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("needs promtool (Debian's prometheus package; test-deps.sh installs it)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
