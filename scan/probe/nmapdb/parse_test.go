package nmapdb

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/portctl/portctl/registry"
)

// ignoreState leaves out what Parse does not set: the compiled pattern and
// the probe back-reference.
var ignoreState = cmpopts.IgnoreUnexported(Match{})

func parseFile(t testing.TB, name string) *DB {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	db, err := Parse(f)
	if err != nil {
		t.Fatalf("Parse(%s) = %v", name, err)
	}
	return db
}

func TestParseFile(t *testing.T) {
	db := parseFile(t, "testdata/probes.txt")
	want := &DB{
		Exclude: ProtoPorts{
			TCP: PortSet{{53, 53}, {9100, 9102}},
			UDP: PortSet{{53, 53}, {30000, 30010}},
		},
		Probes: []*Probe{
			{
				Name: "NULL", Proto: registry.TCP, Payload: []byte{},
				TotalWait: 6 * time.Second, TCPWrapped: 3 * time.Second, Rarity: DefaultRarity,
				Matches: []*Match{
					{
						Service: "echod", Line: 11, Pattern: `^ECHOD (\d+)\.(\d+) ready\r\n`,
						Product: "Echo daemon", Version: "$1.$2",
						CPE: []CPE{{Template: "cpe:/a:example:echod:$1.$2"}},
					},
					{
						Service: "widget", Line: 12, Pattern: `^WIDGET/([\w.]+) \(([^)]+)\)\r\n`, IgnoreCase: true,
						Product: "Widget server", Version: "$1", OS: "$2",
						CPE: []CPE{{Template: "cpe:/o:example:$2", A: true}},
					},
					{
						Service: "uniname", Line: 13, Pattern: `^U\0S\0E\0R\0:\0((?:[^\0]\0)+)\0\0`, DotAll: true,
						Product: "Unicode greeter", Hostname: "$P(1)",
					},
					{Service: "widget", Soft: true, Line: 14, Pattern: `^WIDGET/`},
				},
			},
			{
				Name: "HelloRequest", Proto: registry.TCP, Payload: []byte("HELLO\r\n\x00\x01\xff\\"), NoPayload: true,
				TotalWait: DefaultTotalWait, TCPWrapped: DefaultTCPWrapped, Rarity: 3,
				Ports: PortSet{{7000, 7002}, {7010, 7010}}, SSLPorts: PortSet{{7443, 7443}},
				Fallback: []string{"GetThing"},
				Matches: []*Match{
					{
						Service: "hello", Line: 23, Pattern: `^HI ([\w-]+) build ([\d_]+)\r\n`,
						Product: "Hello server", Version: `$SUBST(2,"_",".")`, Hostname: "$1",
					},
					{
						Service: "hello", Line: 24, Pattern: `^HI\x00(.)(..)`, DotAll: true,
						Product: "Binary hello", Version: `$I(2,">")`, Info: `flags $I(1,"<")`,
					},
					{Service: "hello", Soft: true, Line: 25, Pattern: `^HI\b`},
					{Service: "echod", Soft: true, Line: 26, Pattern: `^ECHOD`},
				},
			},
			{
				Name: "GetThing", Proto: registry.TCP, Payload: []byte("GET THING\r\n"),
				TotalWait: DefaultTotalWait, TCPWrapped: DefaultTCPWrapped, Rarity: 1,
				Ports: PortSet{{80, 80}, {8080, 8080}},
				Matches: []*Match{
					{
						Service: "thing", Line: 33, Pattern: `^THING ok server=([^\r\n]+)\r\n`,
						Product: "Thing server", Info: "$1", DeviceType: "media device",
					},
					{Service: "thing", Soft: true, Line: 34, Pattern: `^THING `},
				},
			},
			{
				Name: "Ping", Proto: registry.UDP, Payload: []byte("PING"),
				TotalWait: DefaultTotalWait, Rarity: 7, Ports: PortSet{{7000, 7000}},
				Matches: []*Match{
					{Service: "pingd", Line: 41, Pattern: `^PONG v(\d)`, Product: "Ping daemon", Version: "$1"},
				},
			},
			{
				Name: "Hello", Proto: registry.UDP, Payload: []byte("HELLO"),
				TotalWait: DefaultTotalWait, Rarity: 2, Fallback: []string{"Ping"},
			},
		},
	}
	if diff := cmp.Diff(want, db, ignoreState); diff != "" {
		t.Errorf("Parse(testdata/probes.txt) mismatch (-want +got):\n%s", diff)
	}
}

func TestParseLines(t *testing.T) {
	const probe = "Probe TCP P q|x|\n"
	tests := []struct {
		name string
		in   string
		want *Probe // the first probe
	}{
		{
			name: "defaults",
			in:   "Probe UDP Q q|\\x00|\n",
			want: &Probe{Name: "Q", Proto: registry.UDP, Payload: []byte{0}, TotalWait: DefaultTotalWait, Rarity: DefaultRarity},
		},
		{
			name: "any delimiter, CRLF lines, indented comments",
			in:   "Probe TCP Q q=a|b=\r\n   # comment\r\n\t\r\nrarity 9\r\n",
			want: &Probe{Name: "Q", Proto: registry.TCP, Payload: []byte("a|b"), TotalWait: DefaultTotalWait, TCPWrapped: DefaultTCPWrapped, Rarity: 9},
		},
		{
			name: "escapes",
			in:   `Probe TCP Q q|\0\00\a\b\f\n\r\t\v\xAb\\\"|` + "\n",
			want: &Probe{
				Name: "Q", Proto: registry.TCP, Payload: []byte("\x00\x000\a\b\f\n\r\t\v\xab\\\""),
				TotalWait: DefaultTotalWait, TCPWrapped: DefaultTCPWrapped, Rarity: DefaultRarity,
			},
		},
		{
			name: "unknown probe options and directives are skipped",
			in:   "Probe TCP P q|x| some-future-option\nnewdirective 1 2 3\nports 1, 3-4 ,2\nports 10\nsslports 443\n",
			want: &Probe{
				Name: "P", Proto: registry.TCP, Payload: []byte("x"),
				TotalWait: DefaultTotalWait, TCPWrapped: DefaultTCPWrapped, Rarity: DefaultRarity,
				Ports: PortSet{{1, 4}, {10, 10}}, SSLPorts: PortSet{{443, 443}},
			},
		},
		{
			name: "match fields in any order, any delimiters, last one wins",
			in: probe + `match svc m%^a(b)%si v/1/ d|router| h=$1= o,Linux, i/x/ p/P/ p/Q/ v/2/ cpe:|a:v:p:$1| cpe:/o:v:os/a` + "\n" +
				"softmatch svc m|^a|\n",
			want: &Probe{
				Name: "P", Proto: registry.TCP, Payload: []byte("x"),
				TotalWait: DefaultTotalWait, TCPWrapped: DefaultTCPWrapped, Rarity: DefaultRarity,
				Matches: []*Match{
					{
						Service: "svc", Line: 2, Pattern: "^a(b)", IgnoreCase: true, DotAll: true,
						Product: "Q", Version: "2", Info: "x", Hostname: "$1", OS: "Linux", DeviceType: "router",
						CPE: []CPE{{Template: "cpe:/a:v:p:$1"}, {Template: "cpe:/o:v:os", A: true}},
					},
					{Service: "svc", Soft: true, Line: 3, Pattern: "^a"},
				},
			},
		},
		{
			name: "fallback list",
			in:   probe + "fallback P, P\nfallback P\n",
			want: &Probe{
				Name: "P", Proto: registry.TCP, Payload: []byte("x"),
				TotalWait: DefaultTotalWait, TCPWrapped: DefaultTCPWrapped, Rarity: DefaultRarity,
				Fallback: []string{"P", "P", "P"},
			},
		},
		{
			name: "waits",
			in:   probe + "totalwaitms 100\ntcpwrappedms 300000\n",
			want: &Probe{
				Name: "P", Proto: registry.TCP, Payload: []byte("x"),
				TotalWait: 100 * time.Millisecond, TCPWrapped: 300 * time.Second, Rarity: DefaultRarity,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tt.in, err)
			}
			if len(db.Probes) == 0 {
				t.Fatalf("Parse(%q) found no probe", tt.in)
			}
			if diff := cmp.Diff(tt.want, db.Probes[0], ignoreState); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseExclude(t *testing.T) {
	tests := []struct {
		in   string
		want ProtoPorts
	}{
		{"Exclude 53,T:9100-9107,U:30000-40000", ProtoPorts{
			TCP: PortSet{{53, 53}, {9100, 9107}},
			UDP: PortSet{{53, 53}, {30000, 40000}},
		}},
		{"Exclude T:1,2,U:3,S:4", ProtoPorts{TCP: PortSet{{1, 2}}, UDP: PortSet{{3, 3}}, SCTP: PortSet{{4, 4}}}},
		{"Exclude T:-10,U:65530-", ProtoPorts{TCP: PortSet{{0, 10}}, UDP: PortSet{{65530, 65535}}}},
		{"Exclude T:", ProtoPorts{}},
		{"Exclude 5-6,1-4", ProtoPorts{TCP: PortSet{{1, 6}}, UDP: PortSet{{1, 6}}}},
	}
	for _, tt := range tests {
		db, err := Parse(strings.NewReader(tt.in))
		if err != nil {
			t.Errorf("Parse(%q) = %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, db.Exclude); diff != "" {
			t.Errorf("Parse(%q).Exclude mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseErrors(t *testing.T) {
	const probe = "Probe TCP P q|x|\n"
	tests := []struct {
		name, in string
		line     int
		msg      string // a part of the message
	}{
		{"match before probe", "match a m|x|", 1, "before the first Probe"},
		{"bad protocol", "Probe SCTP P q|x|", 1, "want TCP or UDP"},
		{"lower-case protocol", "Probe tcp P q|x|", 1, "want TCP or UDP"},
		{"no probe name", "Probe TCP", 1, "probe name"},
		{"bad probe name", "Probe TCP -P q|x|", 1, "probe name"},
		{"no probe string", "Probe TCP P", 1, "unexpected"},
		{"probe string not q", "Probe TCP P s|x|", 1, "want q|...|"},
		{"unterminated probe string", "Probe TCP P q|x", 1, "no closing"},
		{"bad hex escape", `Probe TCP P q|\x4|`, 1, `want \xHH`},
		{"octal escape", `Probe TCP P q|\1|`, 1, `unknown escape \1`},
		{"trailing backslash", `Probe TCP P q|\|`, 1, `ends with \`},
		{"second exclude", "Exclude 1\nExclude 2", 2, "second Exclude"},
		{"exclude after probe", probe + "Exclude 1", 2, "must come before the first Probe"},
		{"exclude name", "Exclude T:http", 1, "want a number"},
		{"exclude prefix", "Exclude X:1", 1, "unknown protocol prefix"},
		{"match without service", probe + "match", 2, "without a service"},
		{"match without pattern", probe + "match svc", 2, "unexpected"},
		{"match pattern not m", probe + "match svc r|x|", 2, "want m|...|"},
		{"match unterminated", probe + "match svc m|x", 2, "no closing"},
		{"match space delimiter", probe + "match svc m x ", 2, "missing delimiter"},
		{"match bad flag", probe + "match svc m|x|g", 2, "want i or s"},
		{"match unknown field", probe + "match svc m|x| q/y/", 2, "unknown version field"},
		{"match unterminated field", probe + "match svc m|x| p/y", 2, "no closing"},
		{"match junk", probe + "match svc m|x| ???", 2, "unexpected"},
		{"ports name", probe + "ports http", 2, "want a number"},
		{"ports too big", probe + "ports 65536", 2, "want a number"},
		{"ports backwards", probe + "ports 9-1", 2, "backwards"},
		{"ports empty item", probe + "ports 1,,2", 2, "want a number"},
		{"ports open range", probe + "ports 1-", 2, "want a number"},
		{"rarity 0", probe + "rarity 0", 2, "want 1 to 9"},
		{"rarity text", probe + "rarity often", 2, "want 1 to 9"},
		{"totalwaitms small", probe + "totalwaitms 99", 2, "from 100 to 300000"},
		{"tcpwrappedms big", probe + "tcpwrappedms 300001", 2, "from 100 to 300000"},
		{"empty fallback", probe + "fallback ,", 2, "names no probe"},
		{"unknown fallback", probe + "fallback Nope\n" + probe, 2, `fallback "Nope"`},
		{"line too long", probe + "match svc m|" + strings.Repeat("x", maxLine) + "|", 2, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Parse(strings.NewReader(tt.in))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%.60q) = %v, %v; want a *SyntaxError", tt.in, db, err)
			}
			if se.Line != tt.line || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("Parse(%.60q) = %v; want line %d and a message with %q", tt.in, err, tt.line, tt.msg)
			}
		})
	}
}

// errReader fails after its data.
type errReader struct{ data string }

func (r *errReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, errors.New("disk on fire")
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestParseReadError(t *testing.T) {
	_, err := Parse(&errReader{data: "Probe TCP NULL q||\n"})
	var se *SyntaxError
	if err == nil || errors.As(err, &se) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Parse(failing reader) = %v; want the read error", err)
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{``, "", true},
		{`plain`, "plain", true},
		{`\0\01`, "\x00\x001", true},
		{`\x00\xFF\xaB`, "\x00\xff\xab", true},
		{`\a\b\f\n\r\t\v`, "\a\b\f\n\r\t\v", true},
		{`\\\"\'\|\/\ `, `\"'|/ `, true},
		{`\x`, "", false},
		{`\xG0`, "", false},
		{`\q`, "", false},
		{`\9`, "", false},
		{`a\`, "", false},
	}
	for _, tt := range tests {
		got, err := unescape(tt.in)
		if (err == nil) != tt.ok || string(got) != tt.want {
			t.Errorf("unescape(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
