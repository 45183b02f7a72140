package nmapdb

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/portctl/portctl/registry"
)

// ignoreEvidence compares results without the matched bytes.
var ignoreEvidence = cmpopts.IgnoreFields(Result{}, "Matched")

func TestMatchLines(t *testing.T) {
	db := parseFile(t, "testdata/probes.txt")
	tests := []struct {
		name  string
		probe string
		line  int // of the match line to try
		resp  string
		want  *Result // nil: no match
	}{
		{
			name: "groups in version and cpe", probe: "NULL", line: 11, resp: "ECHOD 3.14 ready\r\n",
			want: &Result{Service: "echod", Product: "Echo daemon", Version: "3.14", VersionRead: true, CPE: []string{"cpe:/a:example:echod:3.14"}},
		},
		{
			name: "case-insensitive pattern, cpe escaping", probe: "NULL", line: 12, resp: "widget/2.0 (FreeBSD 14)\r\n",
			want: &Result{Service: "widget", Product: "Widget server", Version: "2.0", VersionRead: true, OS: "FreeBSD 14", CPE: []string{"cpe:/o:example:freebsd_14"}},
		},
		{
			name: "P collapses UTF-16", probe: "NULL", line: 13, resp: "U\x00S\x00E\x00R\x00:\x00h\x00o\x00s\x00t\x00\x00\x00",
			want: &Result{Service: "uniname", Product: "Unicode greeter", Hostname: "host"},
		},
		{
			name: "softmatch", probe: "NULL", line: 14, resp: "WIDGET/x",
			want: &Result{Service: "widget", Soft: true},
		},
		{
			name: "SUBST", probe: "HelloRequest", line: 23, resp: "HI alpha build 1_2_3\r\n",
			want: &Result{Service: "hello", Product: "Hello server", Version: "1.2.3", VersionRead: true, Hostname: "alpha"},
		},
		{
			name: "I big and little endian", probe: "HelloRequest", line: 24, resp: "HI\x00\x05\x01\x00 and more",
			want: &Result{Service: "hello", Product: "Binary hello", Version: "256", VersionRead: true, Info: "flags 5"},
		},
		{
			name: "dotall lets . match a newline byte", probe: "HelloRequest", line: 24, resp: "HI\x00\n\n\n",
			want: &Result{Service: "hello", Product: "Binary hello", Version: "2570", VersionRead: true, Info: "flags 10"},
		},
		{name: "anchored", probe: "NULL", line: 11, resp: "> ECHOD 3.14 ready\r\n"},
		{name: "case matters without i", probe: "HelloRequest", line: 23, resp: "hi alpha build 1\r\n"},
		{name: "empty response", probe: "NULL", line: 11, resp: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m *Match
			for _, c := range db.Probe(tt.probe).Matches {
				if c.Line == tt.line {
					m = c
				}
			}
			if m == nil {
				t.Fatalf("no match line %d in probe %s", tt.line, tt.probe)
			}
			got, ok := m.Match([]byte(tt.resp))
			if tt.want == nil {
				if ok {
					t.Errorf("Match(%q) = %+v; want no match", tt.resp, got)
				}
				return
			}
			if !ok {
				t.Fatalf("Match(%q) found nothing; want %+v", tt.resp, *tt.want)
			}
			tt.want.Probe, tt.want.Line = tt.probe, tt.line
			if diff := cmp.Diff(*tt.want, got, ignoreEvidence); diff != "" {
				t.Errorf("Match(%q) mismatch (-want +got):\n%s", tt.resp, diff)
			}
			if !strings.HasPrefix(tt.resp, string(got.Matched)) || len(got.Matched) == 0 {
				t.Errorf("Match(%q).Matched = %q; want a prefix of the response", tt.resp, got.Matched)
			}
		})
	}
}

func TestMatchAll(t *testing.T) {
	db := parseFile(t, "testdata/probes.txt")
	tests := []struct {
		name, probe string
		proto       registry.Protocol
		resp        string
		want        *Result // Service, Soft, Probe and Line only
	}{
		{"own match", "HelloRequest", registry.TCP, "HI alpha build 1\r\n", &Result{Service: "hello", Probe: "HelloRequest", Line: 23}},
		{"fallback directive", "HelloRequest", registry.TCP, "THING ok server=x\r\n", &Result{Service: "thing", Probe: "GetThing", Line: 33}},
		{"softmatch when nothing matches hard", "HelloRequest", registry.TCP, "HI there", &Result{Service: "hello", Soft: true, Probe: "HelloRequest", Line: 25}},
		{"fallback softmatch", "HelloRequest", registry.TCP, "THING else", &Result{Service: "thing", Soft: true, Probe: "GetThing", Line: 34}},
		{"hard NULL match beats own softmatch", "HelloRequest", registry.TCP, "ECHOD 1.0 ready\r\n", &Result{Service: "echod", Probe: "NULL", Line: 11}},
		{"TCP falls back on NULL", "GetThing", registry.TCP, "widget/1 (x)\r\n", &Result{Service: "widget", Probe: "NULL", Line: 12}},
		{"NULL alone", "NULL", registry.TCP, "WIDGET/?", &Result{Service: "widget", Soft: true, Probe: "NULL", Line: 14}},
		{"UDP fallback", "Hello", registry.UDP, "PONG v3", &Result{Service: "pingd", Probe: "Ping", Line: 41}},
		{"UDP never falls back on NULL", "Hello", registry.UDP, "ECHOD 1.0 ready\r\n", nil},
		{"no match", "HelloRequest", registry.TCP, "nothing to see", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := db.ProbeFor(tt.proto, tt.probe)
			got, ok := db.MatchAll(p, []byte(tt.resp))
			if tt.want == nil {
				if ok {
					t.Errorf("MatchAll(%s, %q) = %+v; want no match", tt.probe, tt.resp, got)
				}
				return
			}
			short := Result{Service: got.Service, Soft: got.Soft, Probe: got.Probe, Line: got.Line}
			if !ok || !cmp.Equal(short, *tt.want) {
				t.Errorf("MatchAll(%s, %q) = %+v, %v; want %+v", tt.probe, tt.resp, short, ok, *tt.want)
			}
		})
	}
}

func TestMatchAllFallbackProtocols(t *testing.T) {
	const file = `Probe UDP DNS q|x|
match dns m|^DNS|
Probe TCP DNS q|x|
Probe TCP DNSTCP q|y|
fallback DNS, NULL
Probe TCP NULL q||
match banner m|^220 |
`
	db, err := Parse(strings.NewReader(file))
	if err != nil {
		t.Fatalf("Parse(%q) = %v", file, err)
	}
	p := db.ProbeFor(registry.TCP, "DNSTCP")
	// DNS resolves to the TCP probe of that name, which has no matches.
	if got, ok := db.MatchAll(p, []byte("DNS!")); ok {
		t.Errorf("MatchAll(DNSTCP, %q) = %+v; want no match (TCP DNS has no match lines)", "DNS!", got)
	}
	if got, ok := db.MatchAll(p, []byte("220 hi")); !ok || got.Service != "banner" {
		t.Errorf("MatchAll(DNSTCP, %q) = %+v, %v; want banner", "220 hi", got, ok)
	}

	const cross = "Probe UDP U q|x|\nmatch u m|^U|\nProbe TCP T q|x|\nfallback U\n"
	db, err = Parse(strings.NewReader(cross))
	if err != nil {
		t.Fatalf("Parse(%q) = %v", cross, err)
	}
	if got, ok := db.MatchAll(db.Probe("T"), []byte("U!")); !ok || got.Service != "u" {
		t.Errorf("MatchAll(T, %q) = %+v, %v; want u from the UDP probe", "U!", got, ok)
	}
}

func names(ps []*Probe) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func TestForPort(t *testing.T) {
	db := parseFile(t, "testdata/probes.txt")
	tests := []struct {
		proto registry.Protocol
		port  uint16
		want  []string
	}{
		{registry.TCP, 7001, []string{"NULL", "HelloRequest", "GetThing"}},
		{registry.TCP, 7443, []string{"NULL", "HelloRequest", "GetThing"}},
		{registry.TCP, 80, []string{"NULL", "GetThing", "HelloRequest"}},
		{registry.TCP, 1, []string{"NULL", "GetThing", "HelloRequest"}},
		{registry.UDP, 7000, []string{"Ping", "Hello"}},
		{registry.UDP, 1, []string{"Hello", "Ping"}},
		{registry.SCTP, 1, nil},
	}
	for _, tt := range tests {
		if got := names(db.ForPort(tt.proto, tt.port)); !cmp.Equal(got, tt.want) {
			t.Errorf("ForPort(%v, %d) = %v; want %v", tt.proto, tt.port, got, tt.want)
		}
	}
}

func TestProbeLookup(t *testing.T) {
	db := parseFile(t, "testdata/probes.txt")
	if p := db.Probe("Ping"); p == nil || p.Proto != registry.UDP {
		t.Errorf("Probe(Ping) = %v; want the UDP probe", p)
	}
	if p := db.ProbeFor(registry.TCP, "Ping"); p != nil {
		t.Errorf("ProbeFor(tcp, Ping) = %v; want nil", p)
	}
	if p := db.Probe("Nope"); p != nil {
		t.Errorf("Probe(Nope) = %v; want nil", p)
	}
	exclude := []struct {
		proto registry.Protocol
		port  uint16
		want  bool
	}{
		{registry.TCP, 9101, true},
		{registry.UDP, 9101, false},
		{registry.UDP, 53, true},
		{registry.SCTP, 53, false},
		{0, 53, false},
	}
	for _, tt := range exclude {
		if got := db.Exclude.Contains(tt.proto, tt.port); got != tt.want {
			t.Errorf("Exclude.Contains(%v, %d) = %v; want %v", tt.proto, tt.port, got, tt.want)
		}
	}
}

func TestPortSet(t *testing.T) {
	set := normalize([]PortRange{{80, 80}, {20, 25}, {26, 30}, {8000, 8100}, {8050, 8060}, {0, 0}})
	if got, want := set.String(), "0,20-30,80,8000-8100"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	tests := []struct {
		port uint16
		want bool
	}{
		{0, true}, {1, false}, {19, false}, {20, true}, {25, true}, {26, true}, {30, true}, {31, false},
		{80, true}, {81, false}, {8000, true}, {8055, true}, {8100, true}, {8101, false}, {65535, false},
	}
	for _, tt := range tests {
		if got := set.Contains(tt.port); got != tt.want {
			t.Errorf("%v.Contains(%d) = %v; want %v", set, tt.port, got, tt.want)
		}
	}
	if (PortSet{}).Contains(0) {
		t.Error("empty set contains 0")
	}
}

func TestMatchErr(t *testing.T) {
	const file = "Probe TCP P q||\nmatch x m|(?R)|\nmatch y m|^ok|\n"
	db, err := Parse(strings.NewReader(file))
	if err != nil {
		t.Fatalf("Parse(%q) = %v", file, err)
	}
	bad, good := db.Probes[0].Matches[0], db.Probes[0].Matches[1]
	if err := bad.Err(); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Err() of %q = %v; want an error naming line 2", bad.Pattern, err)
	}
	if _, ok := bad.Match([]byte("anything")); ok {
		t.Errorf("a pattern that does not compile matched")
	}
	if err := good.Err(); err != nil {
		t.Errorf("Err() of %q = %v", good.Pattern, err)
	}
	if got, ok := db.MatchAll(db.Probes[0], []byte("ok")); !ok || got.Service != "y" {
		t.Errorf("MatchAll(%q) = %+v, %v; want y, past the broken line", "ok", got, ok)
	}
}

func TestMatchTimeout(t *testing.T) {
	const file = "Probe TCP P q||\nmatch slow m|^(a+)+$|\n"
	db, err := Parse(strings.NewReader(file))
	if err != nil {
		t.Fatalf("Parse(%q) = %v", file, err)
	}
	resp := []byte(strings.Repeat("a", 40) + "b")
	start := time.Now()
	_, ok := db.MatchAll(db.Probes[0], resp)
	if elapsed := time.Since(start); ok || elapsed > 50*MatchTimeout {
		t.Errorf("MatchAll(catastrophic backtracking) = %v after %v; want no match within about %v", ok, elapsed, MatchTimeout)
	}
}

// TestConcurrentMatch runs matches from many goroutines on a fresh DB, so
// that the race detector sees the lazy compilation.
func TestConcurrentMatch(t *testing.T) {
	db := parseFile(t, "testdata/probes.txt")
	resps := map[string]string{
		"HI alpha build 1_2\r\n":  "1.2",
		"ECHOD 2.5 ready\r\n":     "2.5",
		"widget/9 (Linux)\r\n":    "9",
		"THING ok server=abc\r\n": "",
	}
	p := db.Probe("HelloRequest")
	var wg sync.WaitGroup
	for range 8 {
		for resp, version := range resps {
			wg.Go(func() {
				got, ok := db.MatchAll(p, []byte(resp))
				if !ok || got.Version != version {
					t.Errorf("MatchAll(%q) = %+v, %v; want version %q", resp, got, ok, version)
				}
			})
		}
	}
	wg.Wait()
}

func TestVersionRead(t *testing.T) {
	db, err := Parse(strings.NewReader("Probe TCP NULL q||\nmatch x m|^X (\\d+)| p/X/ v/$1/\nmatch y m|^Y| p/Y/ v/4.6.2/\n"))
	if err != nil {
		t.Fatal(err)
	}
	for resp, want := range map[string]bool{"X 7": true, "Y": false} {
		r, ok := db.MatchAll(db.Probe(NullProbe), []byte(resp))
		if !ok || r.VersionRead != want {
			t.Errorf("MatchAll(%q) = %+v, %v; want VersionRead %v", resp, r, ok, want)
		}
	}
}
