package nmapdb

import (
	"os"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds Parse arbitrary files: it must never panic, and what it
// accepts must compile (or fail to) and match without panicking.
func FuzzParse(f *testing.F) {
	seed, err := os.ReadFile("testdata/probes.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(seed))
	for _, s := range []string{
		"Exclude 53,T:9100-9107,U:30000-40000\n",
		"Probe TCP NULL q||\nmatch a m|^(a)\\1(?<n>b)\\k<n>[[:alpha:]]\\x{41}|si p/$P(1)/ v/$SUBST(1,\"a\",\"b\")/ i/$I(1,\">\")/\n",
		"Probe UDP P q|\\x00\\0\\r\\n| no-payload\nports 1-5,7\nsslports 443\nrarity 2\ntotalwaitms 500\ntcpwrappedms 100\nfallback P\n",
		"Probe TCP P q|x|\nsoftmatch s m=^[^\\]]++\\Q.*\\E(?#c)= cpe:/a:b:$1/a h|x| o/y/ d/z/\n",
		"Probe TCP P q|x|\nmatch s m|(?R)(?|a)|\n",
	} {
		f.Add(s)
	}
	subject := latin1([]byte("HTTP/1.0 200 OK\r\nServer: x/1.0\r\n\r\n\x00\xff"))
	f.Fuzz(func(t *testing.T, file string) {
		db, err := Parse(strings.NewReader(file))
		if err != nil {
			return
		}
		tried := 0
		for _, p := range db.Probes {
			for _, m := range p.Matches {
				if tried++; tried > 20 {
					return
				}
				_ = m.Err()
				m.match(subject)
			}
			db.MatchAll(p, []byte("x"))
			db.ForPort(p.Proto, 80)
		}
	})
}

// fuzzMatchExtra adds to the testdata file a few lines that exercise the
// translation (backreferences, lookaround, classes, possessive) and the
// template functions.
const fuzzMatchExtra = `
Probe TCP Extra q|x|
match a m|^(\w+)\s(\d+)\s\1\b| p/$1/ v/$2/
match b m|^(?<=)(?!X)([\x00-\x1f]{2,})(..)|s p/$P(1)/ v/$I(2,">")/ i/$I(2,"<")/
match c m|^([[:alpha:][:digit:]_-]+)/([^\s]++)\r?\n|i p/$SUBST(1,"_"," ")/ v/$SUBST(2,"-",".")/ cpe:/a:x:$1:$2/
match d m|(?i)^\QHELLO*\E(.*?)$| p/$1/
match e m=^(?:(a)|b)+c(\1)?= p/$1$2/ h/$2/
softmatch f m|^\x80|
`

// FuzzMatch tries arbitrary responses against the test database: matching
// must never panic, and never run much past MatchTimeout.
func FuzzMatch(f *testing.F) {
	seed, err := os.ReadFile("testdata/probes.txt")
	if err != nil {
		f.Fatal(err)
	}
	file := string(seed) + fuzzMatchExtra
	db, err := Parse(strings.NewReader(file))
	if err != nil {
		f.Fatalf("Parse(test database) = %v", err)
	}
	for _, p := range db.Probes {
		for _, m := range p.Matches {
			if err := m.Err(); err != nil {
				f.Fatalf("test database: %v", err)
			}
		}
	}
	for _, s := range []string{
		"", "ECHOD 3.14 ready\r\n", "widget/2.0 (FreeBSD 14)\r\n", "U\x00S\x00E\x00R\x00:\x00h\x00\x00\x00",
		"HI alpha build 1_2_3\r\n", "HI\x00\x05\x01\x00", "THING ok server=x\r\n", "PONG v3",
		"abc 12 abc!", "\x01\x02\x03\xff", "a-b_c/1-2\r\n", "HELLO*there", "abac", "\x80",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, resp []byte) {
		for _, p := range db.Probes {
			start := time.Now()
			res, ok := db.MatchAll(p, resp)
			if elapsed := time.Since(start); elapsed > 50*MatchTimeout {
				t.Errorf("MatchAll(%s, %q) took %v", p.Name, resp, elapsed)
			}
			if ok && res.Service == "" {
				t.Errorf("MatchAll(%s, %q) = %+v: a match without a service", p.Name, resp, res)
			}
		}
	})
}

// FuzzTranslatePCRE feeds the PCRE translation arbitrary patterns: it must
// never panic, and what it produces must compile or fail cleanly.
func FuzzTranslatePCRE(f *testing.F) {
	for _, s := range []string{
		`^a\0b\x4\x{41}\cA\e`, `[[:alpha:]\d\W-z]`, `(?<n>a)\k<n>\g{-1}\1`, `a*+b{2}+(?:c)++`,
		`\Q[.*\E`, `(?i:a)(?-s)(?#x)`, `[]a-]`, `[^]]`, `\p{Lu}\PL`, `(?P<x>a)(?P=x)`,
	} {
		f.Add(s, false, false)
	}
	subject := latin1([]byte("abc ABC 123 \x00\xff\r\n"))
	f.Fuzz(func(t *testing.T, pattern string, ignoreCase, dotAll bool) {
		re, err := compilePCRE(pattern, ignoreCase, dotAll)
		if err != nil {
			return
		}
		re.FindRunesMatch(subject)
	})
}
