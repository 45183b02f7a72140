package report_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/scan/report"
)

// recorder records each Write and counts Flush calls.
type recorder struct {
	writes  []string
	flushes int
}

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recorder) Flush() error {
	r.flushes++
	return nil
}

// Each call writes one whole line at once, and flushes it.
func TestJSONLStreams(t *testing.T) {
	rec := &recorder{}
	w := report.NewJSONL(rec)
	check := func(call string, wantType string) map[string]any {
		t.Helper()
		if len(rec.writes) != rec.flushes {
			t.Fatalf("after %s: %d writes, %d flushes; want a flush after each write", call, len(rec.writes), rec.flushes)
		}
		line := rec.writes[len(rec.writes)-1]
		if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
			t.Fatalf("after %s: last write %q is not one whole line", call, line)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("after %s: line %q: %v", call, line, err)
		}
		if v["type"] != wantType {
			t.Fatalf("after %s: line %q has type %v; want %q", call, line, v["type"], wantType)
		}
		return v
	}
	if err := w.Begin(meta); err != nil {
		t.Fatal(err)
	}
	check("Begin", "begin")
	results := fixture(3)
	for i, r := range results {
		if err := w.Result(r); err != nil {
			t.Fatal(err)
		}
		if len(rec.writes) != i+2 {
			t.Fatalf("after Result %d: %d writes; want %d (one a call)", i, len(rec.writes), i+2)
		}
		v := check("Result", "port")
		got := slices.Sorted(maps.Keys(v))
		want := []string{"addr", "host", "port", "protocol", "reason", "rtt_ms", "service", "state", "tries", "type"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("port line fields (-want +got):\n%s", diff)
		}
		if v["addr"] != r.Addr.String() || v["port"] != float64(r.Port) || v["state"] != r.State.String() ||
			v["protocol"] != r.Proto.String() || v["reason"] != string(r.Reason) || v["host"] != r.Host ||
			v["rtt_ms"] != float64(r.RTT.Microseconds())/1000 || v["tries"] != float64(r.Tries) {
			t.Fatalf("Result(%+v) wrote %v", r, v)
		}
	}
	if err := w.End(summary); err != nil {
		t.Fatal(err)
	}
	v := check("End", "end")
	if v["hosts"] != 6.0 || v["hosts_up"] != 3.0 || v["elapsed_ms"] != 2500.0 || v["exit"] != "success" {
		t.Errorf("end line %v; want 6 hosts, 3 up, 2500 ms, success", v)
	}
}

// Behind a bufio.Writer, each line still reaches the underlying writer at
// once.
func TestJSONLFlushesBufio(t *testing.T) {
	var under bytes.Buffer
	w := report.NewJSONL(bufio.NewWriter(&under))
	if err := w.Begin(meta); err != nil {
		t.Fatal(err)
	}
	for i, r := range fixture(1)[:5] {
		if err := w.Result(r); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(under.String(), "\n"); n != i+2 {
			t.Fatalf("after Result %d the underlying writer has %d lines; want %d", i, n, i+2)
		}
	}
}

func TestJSONLEscapes(t *testing.T) {
	var buf bytes.Buffer
	w := report.NewJSONL(&buf)
	r := fixture(1)[0]
	r.Host = "a\"b\\c\n<d>&é\xff"
	if err := w.Begin(meta); err != nil {
		t.Fatal(err)
	}
	if err := w.Result(r); err != nil {
		t.Fatal(err)
	}
	line := strings.Split(buf.String(), "\n")[1]
	var v struct{ Host string }
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	if want := "a\"b\\c\n<d>&é\uFFFD"; v.Host != want {
		t.Errorf("host %q round-trips as %q; want %q", r.Host, v.Host, want)
	}
}
