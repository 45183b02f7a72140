package scan

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/portctl/portctl/registry"
)

func testResume() Resume {
	return Resume{
		Seed:     0xfedcba9876543210,
		Shard:    "2/3",
		Targets:  []string{"10.0.0.0/24", "web.example", "2001:db8::/120"},
		Excludes: []string{"10.0.0.1"},
		Family:   0,
		Ports:    "T:1-1024,U:53",
		Proto:    registry.TCP,
		Total:    (256 + 1 + 256) * 1025,
		Done:     1234,
	}
}

func TestResumeRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Resume)
	}{
		{"full", func(*Resume) {}},
		{"whole scan, nothing done", func(r *Resume) { r.Shard, r.Done, r.Excludes = "", 0, nil }},
		{"shard finished", func(r *Resume) { start, end := NewOrder(r.Total, r.Seed).Shard(2, 3); r.Done = end - start }},
		{"empty index space", func(r *Resume) { r.Total, r.Done = 0, 0 }},
		{"both protocols, IPv6", func(r *Resume) { r.Proto, r.Family = registry.TCP|registry.UDP, 6 }},
		{"largest seed", func(r *Resume) { r.Seed = ^uint64(0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := testResume()
			tc.edit(&want)
			var buf bytes.Buffer
			if err := WriteResume(&buf, want); err != nil {
				t.Fatalf("WriteResume(%+v) = %v", want, err)
			}
			got, err := ReadResume(&buf)
			if err != nil {
				t.Fatalf("ReadResume(WriteResume(%+v)) = %v", want, err)
			}
			want.Version = 1
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ReadResume(WriteResume()) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadResumeGolden(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "resume-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ReadResume(f)
	if err != nil {
		t.Fatalf("ReadResume(testdata/resume-v1.json) = %v", err)
	}
	want := testResume()
	want.Version = 1
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadResume(testdata/resume-v1.json) mismatch (-want +got):\n%s", diff)
	}
}

func TestReadResumeRejects(t *testing.T) {
	var good bytes.Buffer
	if err := WriteResume(&good, testResume()); err != nil {
		t.Fatal(err)
	}
	valid := good.String()
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "truncated"},
		{"truncated", valid[:len(valid)/2], "truncated"},
		{"not json", "seed=1\n", "resume file: invalid character"},
		{"null", "null", "version 0 is not supported"},
		{"array", "[]", "wrong type"},
		{"trailing data", valid + "{}", "unexpected data after the JSON object"},
		{"two objects", valid + valid, "unexpected data after the JSON object"},
		{"future version", strings.Replace(valid, `"version": 1`, `"version": 2`, 1), "version 2 is not supported (want 1)"},
		{"no seed", strings.Replace(valid, `"seed": "18364758544493064720",`, ``, 1), "resume file: no seed"},
		{"null seed", strings.Replace(valid, `"seed": "18364758544493064720"`, `"seed": null`, 1), "resume file: no seed"},
		{"seed too big", strings.Replace(valid, `"seed": "18364758544493064720"`, `"seed": "18446744073709551616"`, 1), `seed "18446744073709551616" is not a whole number`},
		{"seed negative", strings.Replace(valid, `"seed": "18364758544493064720"`, `"seed": -1`, 1), "seed -1 is not a whole number"},
		{"seed fraction", strings.Replace(valid, `"seed": "18364758544493064720"`, `"seed": 1.5`, 1), "seed 1.5"},
		{"seed signed string", strings.Replace(valid, `"seed": "18364758544493064720"`, `"seed": "+1"`, 1), `seed "+1"`},
		{"seed empty string", strings.Replace(valid, `"seed": "18364758544493064720"`, `"seed": ""`, 1), `seed ""`},
		{"seed object", strings.Replace(valid, `"seed": "18364758544493064720"`, `"seed": {}`, 1), `seed {}`},
		{"seed with quote inside", strings.Replace(valid, `"seed": "18364758544493064720"`, `"seed": "1\""`, 1), `seed "1\"" is not`},
		{"done negative", strings.Replace(valid, `"done": 1234`, `"done": -1`, 1), `field "done" has the wrong type`},
		{"done beyond shard", strings.Replace(valid, `"done": 1234`, `"done": 175276`, 1), "done 175276 is beyond the 175275 positions of shard 2/3"},
		{"bad shard", strings.Replace(valid, `"shard": "2/3"`, `"shard": "4/3"`, 1), `shard "4/3"`},
		{"no targets", strings.Replace(valid, `"targets": [`, `"targets": [], "x": [`, 1), "no targets"},
		{"no ports", strings.Replace(valid, `"ports": "T:1-1024,U:53"`, `"ports": ""`, 1), "no ports"},
		{"bad family", strings.Replace(valid, `"protocol"`, `"family": 5, "protocol"`, 1), "family 5"},
		{"bad protocol", strings.Replace(valid, `"protocol": "tcp"`, `"protocol": "icmp"`, 1), `unknown protocol "icmp"`},
		{"sctp", strings.Replace(valid, `"protocol": "tcp"`, `"protocol": "sctp"`, 1), `protocol "sctp"`},
		{"no protocol", strings.Replace(valid, `"protocol": "tcp",`, ``, 1), `protocol ""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadResume(strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("ReadResume(%q) = %+v; want an error containing %q", tc.in, got, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("ReadResume(%q) = %q; want one line containing %q", tc.in, err, tc.want)
			}
			if !errors.Is(err, registry.ErrSyntax) {
				t.Errorf("ReadResume(%q) = %v; want an error matching registry.ErrSyntax", tc.in, err)
			}
		})
	}

	boom := errors.New("disk on fire")
	_, err := ReadResume(iotest.TimeoutReader(iotest.OneByteReader(strings.NewReader(valid))))
	if errors.Is(err, registry.ErrSyntax) || !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("ReadResume(failing reader) = %v; want the reader's error, not a syntax error", err)
	}
	_, err = ReadResume(iotest.ErrReader(boom))
	if !errors.Is(err, boom) {
		t.Errorf("ReadResume(failing reader) = %v; want it to wrap %v", err, boom)
	}
}

func TestReadResumeSeedNumber(t *testing.T) {
	// A hand-written file may give the seed as a plain number.
	in := `{"version": 1, "seed": 18446744073709551615, "targets": ["10.0.0.1"], "ports": "22", "protocol": "tcp", "total": 1, "done": 0}`
	got, err := ReadResume(strings.NewReader(in))
	if err != nil || got.Seed != ^uint64(0) {
		t.Errorf("ReadResume(%q) = %+v, %v; want seed 18446744073709551615", in, got, err)
	}
}

func TestReadResumeTooLarge(t *testing.T) {
	defer func(n int64) { resumeMaxSize = n }(resumeMaxSize)
	resumeMaxSize = 1 << 20
	// A valid file, padded with white space past the limit.
	var buf bytes.Buffer
	if err := WriteResume(&buf, testResume()); err != nil {
		t.Fatal(err)
	}
	r := io.MultiReader(&buf, strings.NewReader(strings.Repeat(" ", int(resumeMaxSize))))
	if _, err := ReadResume(r); err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Errorf("ReadResume(oversized) = %v; want a size error", err)
	}
}

func TestWriteResumeRejects(t *testing.T) {
	r := testResume()
	r.Done = r.Total // beyond shard 2/3
	var buf bytes.Buffer
	if err := WriteResume(&buf, r); !errors.Is(err, registry.ErrSyntax) {
		t.Errorf("WriteResume(done beyond the shard) = %v; want a syntax error", err)
	}
	if buf.Len() != 0 {
		t.Errorf("WriteResume(invalid) wrote %q; want nothing", buf.String())
	}
	boom := errors.New("disk full")
	if err := WriteResume(errWriter{boom}, testResume()); !errors.Is(err, boom) {
		t.Errorf("WriteResume(failing writer) = %v; want it to wrap %v", err, boom)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func FuzzReadResume(f *testing.F) {
	var buf bytes.Buffer
	if err := WriteResume(&buf, testResume()); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"version":1,"seed":"1","targets":["10.0.0.1"],"ports":"22","protocol":"tcp","total":1,"done":1}`))
	f.Add([]byte(`{"version":1,"seed":"1","shard":"1/2","targets":["a"],"ports":"-","protocol":"tcp/udp","total":131070,"done":3}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"version":1} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ReadResume(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, registry.ErrSyntax) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("ReadResume(%q) = %q; want one line matching ErrSyntax", data, err)
			}
			return
		}
		// What is accepted writes back and reads back the same.
		var out bytes.Buffer
		if err := WriteResume(&out, got); err != nil {
			t.Fatalf("WriteResume(ReadResume(%q)) = %v", data, err)
		}
		again, err := ReadResume(&out)
		if err != nil {
			t.Fatalf("ReadResume(WriteResume(ReadResume(%q))) = %v", data, err)
		}
		if diff := cmp.Diff(got, again); diff != "" {
			t.Fatalf("resume round trip of %q mismatch (-first +second):\n%s", data, diff)
		}
		k, n := uint64(1), uint64(1)
		if got.Shard != "" {
			k, n, _ = ParseShard(got.Shard)
		}
		start, end := NewOrder(got.Total, got.Seed).Shard(k, n)
		if got.Done > end-start {
			t.Fatalf("ReadResume(%q) accepted done %d beyond the shard's %d positions", data, got.Done, end-start)
		}
	})
}
