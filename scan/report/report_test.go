package report_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan"
	"github.com/portctl/portctl/scan/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	start = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

	meta = report.Meta{
		Args:        []string{"portctl", "scan", "-p", "T:1-2000,U:53,123,161", "--comment", "it's <here> & -- there", "example.net", "2001:db8::1", "198.51.100.0/30"},
		Start:       start,
		ScanType:    "connect",
		Protocol:    "tcp",
		Ports:       "1-2000",
		NumServices: 2000,
		Version:     "1.0.0",
		More:        []report.ScanInfo{{ScanType: "udp", Protocol: "udp", Ports: "53,123,161", NumServices: 3}},
	}

	summary = report.Summary{End: start.Add(2500 * time.Millisecond), Hosts: 6, HostsUp: 3}
)

// clock returns a fixed time after start, for hosts' start and end times.
func clock() time.Time { return start.Add(time.Second) }

// fixture returns the results of a small scan, in a random order drawn
// from seed:
//
//   - 192.0.2.10, named example.net: 22 and 443 open, 80 and 1000-1029
//     closed (31 closed: collapsed), 8000-8002 filtered (listed);
//   - 2001:db8::1: 8080 open, 1-5 closed (listed), 100-139 filtered (40:
//     collapsed, with two reasons);
//   - 198.51.100.7: 53/tcp and 53/udp open, 123/udp open|filtered, 161/udp
//     closed.
func fixture(seed uint64) []scan.Result {
	v4 := netip.MustParseAddr("192.0.2.10")
	v6 := netip.MustParseAddr("2001:db8::1")
	u := netip.MustParseAddr("198.51.100.7")
	tcp := func(a netip.Addr, p uint16, s scan.State, why scan.Reason, rtt time.Duration) scan.Result {
		return scan.Result{Addr: a, Port: p, Proto: registry.TCP, State: s, Reason: why, RTT: rtt, Tries: 1}
	}
	rs := []scan.Result{
		tcp(v4, 22, scan.Open, scan.ReasonSynAck, 412*time.Microsecond),
		tcp(v4, 443, scan.Open, scan.ReasonSynAck, 388*time.Microsecond),
		tcp(v4, 80, scan.Closed, scan.ReasonConnRefused, 401*time.Microsecond),
		tcp(v6, 8080, scan.Open, scan.ReasonSynAck, 2*time.Millisecond),
		tcp(u, 53, scan.Open, scan.ReasonSynAck, 0),
		{Addr: u, Port: 53, Proto: registry.UDP, State: scan.Open, Reason: scan.ReasonUDPResponse, RTT: 1500 * time.Microsecond, Tries: 1},
		{Addr: u, Port: 123, Proto: registry.UDP, State: scan.OpenFiltered, Reason: scan.ReasonNoResponse, Tries: 3},
		{Addr: u, Port: 161, Proto: registry.UDP, State: scan.Closed, Reason: scan.ReasonPortUnreach, RTT: 900 * time.Microsecond, Tries: 1},
	}
	for p := uint16(1000); p < 1030; p++ {
		rs = append(rs, tcp(v4, p, scan.Closed, scan.ReasonConnRefused, 0))
	}
	for p := uint16(8000); p < 8003; p++ {
		r := tcp(v4, p, scan.Filtered, scan.ReasonNoResponse, 0)
		r.Tries = 2
		rs = append(rs, r)
	}
	for p := uint16(1); p <= 5; p++ {
		rs = append(rs, tcp(v6, p, scan.Closed, scan.ReasonReset, 0))
	}
	for p := uint16(100); p < 140; p++ {
		why := scan.ReasonNoResponse
		if p >= 130 {
			why = scan.ReasonAdminProhibited
		}
		rs = append(rs, tcp(v6, p, scan.Filtered, why, 0))
	}
	for i := range rs {
		if rs[i].Addr == v4 {
			rs[i].Host = "example.net"
		}
	}
	rand.New(rand.NewPCG(seed, 0)).Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	return rs
}

// write runs w through a whole report of rs.
func write(t *testing.T, w report.Writer, m report.Meta, rs []scan.Result, s report.Summary) {
	t.Helper()
	if err := w.Begin(m); err != nil {
		t.Fatalf("Begin: %v", err)
	}
	for _, r := range rs {
		if err := w.Result(r); err != nil {
			t.Fatalf("Result(%v): %v", r, err)
		}
	}
	if err := w.End(s); err != nil {
		t.Fatalf("End: %v", err)
	}
}

var formats = []struct {
	name   string
	new    func(io.Writer) report.Writer
	golden string
	clock  bool // the writer keeps hosts and reads the clock
}{
	{"xml", report.NewXML, "report.xml", true},
	{"grepable", report.NewGrepable, "report.gnmap", true},
	{"json", report.NewJSON, "report.json", true},
	{"jsonl", report.NewJSONL, "report.jsonl", false},
}

// render writes the fixture in seed's order with the given format.
func render(t *testing.T, newW func(io.Writer) report.Writer, clocked bool, seed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := newW(&buf)
	if clocked {
		report.SetClock(w, clock)
	}
	write(t, w, meta, fixture(seed), summary)
	return buf.Bytes()
}

func TestGolden(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			got := render(t, f.new, f.clock, 1)
			path := filepath.Join("testdata", f.golden)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s output differs from %s (-want +got):\n%s", f.name, path, diff)
			}
		})
	}
}

// The per-host formats do not depend on the order results come in.
func TestOrderIndependent(t *testing.T) {
	for _, f := range formats {
		if !f.clock {
			continue
		}
		t.Run(f.name, func(t *testing.T) {
			want := render(t, f.new, true, 1)
			for seed := uint64(2); seed < 6; seed++ {
				if got := render(t, f.new, true, seed); !bytes.Equal(got, want) {
					t.Errorf("seed %d: output differs from seed 1's (-want +got):\n%s", seed, cmp.Diff(string(want), string(got)))
				}
			}
		})
	}
}

func TestJSONDocument(t *testing.T) {
	var doc struct {
		Scan struct {
			ScanType string `json:"scan_type"`
			More     []report.ScanInfo
		}
		Hosts []struct {
			Addr         string
			Host         string
			Ports        []map[string]any
			Closed       int
			Filtered     int
			OpenFiltered int `json:"open_filtered"`
		}
		Summary struct {
			Hosts   int
			HostsUp int `json:"hosts_up"`
			Exit    string
		}
	}
	out := render(t, report.NewJSON, true, 7)
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("json.Unmarshal: %v\n%s", err, out)
	}
	type hostSum struct {
		Addr, Host                     string
		Open                           []float64
		Closed, Filtered, OpenFiltered int
	}
	var got []hostSum
	for _, h := range doc.Hosts {
		hs := hostSum{h.Addr, h.Host, nil, h.Closed, h.Filtered, h.OpenFiltered}
		for _, p := range h.Ports {
			if p["state"] != "open" {
				t.Errorf("host %s lists port %v in state %v; want only open ports", h.Addr, p["port"], p["state"])
			}
			hs.Open = append(hs.Open, p["port"].(float64))
		}
		got = append(got, hs)
	}
	want := []hostSum{
		{"192.0.2.10", "example.net", []float64{22, 443}, 31, 3, 0},
		{"198.51.100.7", "", []float64{53, 53}, 1, 0, 1},
		{"2001:db8::1", "", []float64{8080}, 5, 40, 0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
	if doc.Scan.ScanType != "connect" || len(doc.Scan.More) != 1 || doc.Summary.Hosts != 6 || doc.Summary.HostsUp != 3 || doc.Summary.Exit != "success" {
		t.Errorf("scan %+v, summary %+v; want connect with one more protocol, 6 hosts, 3 up, success", doc.Scan, doc.Summary)
	}
}

// nmap lists a state's ports up to 25 of them, and collapses more.
func TestCollapse(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		name        string
		closed      int
		wantListed  int
		wantIgnored string
	}{
		{"none", 0, 1, ""},
		{"25 listed", 25, 26, ""},
		{"26 collapsed", 26, 1, "\tIgnored State: closed (26)"},
		{"all ports", 65534, 1, "\tIgnored State: closed (65534)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := report.NewGrepable(&buf)
			rs := []scan.Result{{Addr: a, Port: 65535, Proto: registry.TCP, State: scan.Open, Reason: scan.ReasonSynAck}}
			for i := range tc.closed {
				rs = append(rs, scan.Result{Addr: a, Port: uint16(i + 1), Proto: registry.TCP, State: scan.Closed, Reason: scan.ReasonConnRefused})
			}
			if err := w.Begin(meta); err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if err := w.Result(r); err != nil {
					t.Fatal(err)
				}
			}
			if kept := report.Kept(w); kept > 1+25 {
				t.Errorf("writer keeps %d ports; want at most 26", kept)
			}
			if err := w.End(summary); err != nil {
				t.Fatal(err)
			}
			line := strings.Split(buf.String(), "\n")[2]
			ports, ignored, _ := strings.Cut(strings.SplitN(line, "\tPorts: ", 2)[1], "\t")
			if ignored != "" {
				ignored = "\t" + ignored
			}
			if n := strings.Count(ports, "/tcp/"); n != tc.wantListed || ignored != tc.wantIgnored {
				t.Errorf("grepable line %q lists %d ports, ignored %q; want %d, %q", line, n, ignored, tc.wantListed, tc.wantIgnored)
			}
		})
	}
}

// HostDone writes a host at once, and End does not write it again.
func TestHostDone(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	for _, f := range formats {
		if !f.clock {
			continue
		}
		t.Run(f.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := report.Multi(f.new(&buf))
			if err := w.Begin(meta); err != nil {
				t.Fatal(err)
			}
			for _, addr := range []netip.Addr{a, b} {
				if err := w.Result(scan.Result{Addr: addr, Port: 22, Proto: registry.TCP, State: scan.Open, Reason: scan.ReasonSynAck}); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.(report.HostDoner).HostDone(b); err != nil {
				t.Fatalf("HostDone: %v", err)
			}
			if got := buf.String(); !strings.Contains(got, "192.0.2.2") || strings.Contains(got, "192.0.2.1") {
				t.Errorf("after HostDone(%v) the output is\n%s\nwant that host only", b, got)
			}
			if err := w.(report.HostDoner).HostDone(netip.MustParseAddr("192.0.2.3")); err != nil {
				t.Errorf("HostDone of a host without results: %v", err)
			}
			if err := w.End(report.Summary{End: summary.End}); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			want := map[string]struct {
				lines int    // lines a host takes
				count string // the host count, from the hosts seen
			}{
				"xml":      {1, `<hosts up="2" down="0" total="2"/>`},
				"grepable": {2, "2 IP addresses (2 hosts up)"},
				"json":     {1, `"hosts_up": 2`},
			}[f.name]
			if n := strings.Count(out, "192.0.2.2"); n != want.lines {
				t.Errorf("192.0.2.2 appears %d times; want %d:\n%s", n, want.lines, out)
			}
			if !strings.Contains(out, "192.0.2.1") || !strings.Contains(out, want.count) {
				t.Errorf("output after End lacks the other host or %q:\n%s", want.count, out)
			}
			if f.name == "json" && !json.Valid(buf.Bytes()) {
				t.Errorf("JSON after HostDone and End is not valid:\n%s", out)
			}
		})
	}
}

func TestEmptyScan(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			var buf bytes.Buffer
			write(t, f.new(&buf), report.Meta{ScanType: "syn"}, nil, report.Summary{Exit: "error", Error: "interrupted"})
			out := buf.String()
			switch f.name {
			case "xml":
				checkWellFormed(t, buf.Bytes())
			case "json":
				var doc struct{ Hosts []any }
				if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || doc.Hosts == nil {
					t.Errorf("empty JSON report %s: %v, hosts %v; want an empty list", out, err, doc.Hosts)
				}
			}
			if !strings.Contains(out, "interrupted") {
				t.Errorf("report of a failed scan does not say why:\n%s", out)
			}
		})
	}
}

func TestMisuse(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	good := scan.Result{Addr: a, Port: 1, Proto: registry.TCP, State: scan.Open, Reason: scan.ReasonSynAck}
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			w := f.new(io.Discard)
			if err := w.Result(good); err == nil {
				t.Errorf("Result before Begin: nil error")
			}
			if err := w.Begin(meta); err != nil {
				t.Fatal(err)
			}
			if err := w.Begin(meta); err == nil {
				t.Errorf("second Begin: nil error")
			}
			bad := good
			bad.State = 0
			if err := w.Result(bad); err == nil {
				t.Errorf("Result with state 0: nil error")
			}
			if err := w.End(summary); err != nil {
				t.Fatal(err)
			}
			if err := w.Result(good); !errors.Is(err, report.ErrEnded) {
				t.Errorf("Result after End = %v; want ErrEnded", err)
			}
			if err := w.End(summary); !errors.Is(err, report.ErrEnded) {
				t.Errorf("End after End = %v; want ErrEnded", err)
			}
		})
	}
}

func TestXMLRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		meta report.Meta
		r    scan.Result
	}{
		{"scan type", report.Meta{ScanType: "ping"}, scan.Result{}},
		{"protocol", report.Meta{ScanType: "connect", Protocol: "dccp"}, scan.Result{}},
		{"result protocol", meta, scan.Result{Addr: netip.MustParseAddr("192.0.2.1"), Port: 1, Proto: registry.DCCP, State: scan.Open}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := report.NewXML(io.Discard)
			err := w.Begin(tc.meta)
			if err == nil && tc.r.Addr.IsValid() {
				err = w.Result(tc.r)
			}
			if err == nil {
				t.Errorf("NewXML accepted %s %+v %+v; want an error (nmap's DTD has no such value)", tc.name, tc.meta, tc.r)
			}
		})
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestMulti(t *testing.T) {
	var x, l bytes.Buffer
	w := report.Multi(report.NewXML(&x), report.NewJSONL(failWriter{}), report.NewJSONL(&l))
	err := w.Begin(meta)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Begin = %v; want the failing writer's error", err)
	}
	for _, r := range fixture(1) {
		w.Result(r)
	}
	w.End(summary)
	checkWellFormed(t, x.Bytes())
	if n := strings.Count(l.String(), "\n"); n != len(fixture(1))+2 {
		t.Errorf("the JSONL writer behind a failing one wrote %d lines; want %d", n, len(fixture(1))+2)
	}
}

// checkWellFormed parses doc with encoding/xml.
func checkWellFormed(t *testing.T, doc []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("XML is not well-formed: %v\n%s", err, doc)
		}
	}
}

func BenchmarkResult(b *testing.B) {
	rs := fixture(1)
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) {
			w := f.new(io.Discard)
			w.Begin(meta)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				w.Result(rs[i%len(rs)])
			}
		})
	}
}
