package nmapdb

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/dlclark/regexp2"
)

// MatchTimeout bounds the time one pattern may spend on one response. A
// pattern that backtracks for longer is taken not to match.
const MatchTimeout = 100 * time.Millisecond

// Match is one match or softmatch line of a probe. The pattern is compiled
// on first use, so that parsing a file of thousands of lines stays cheap;
// after Parse returns, a Match is safe for concurrent use as long as its
// fields are not changed.
type Match struct {
	Service string // the service the line identifies: "ssh", "http", ...
	Soft    bool   // a softmatch line: the service, but probing should go on for the version
	Line    int    // line number in the file, from 1

	Pattern    string // the regular expression between the delimiters, in PCRE syntax, as written
	IgnoreCase bool   // the i flag
	DotAll     bool   // the s flag: . also matches a newline

	// The version templates (p/ v/ i/ h/ o/ d/), as written; empty when
	// the line has none.
	Product, Version, Info, Hostname, OS, DeviceType string
	// CPE holds the cpe:/.../ templates, in file order.
	CPE []CPE

	probe string // name of the probe the line belongs to

	once      sync.Once
	re        *regexp2.Regexp
	err       error
	templates [6]template // Product, Version, Info, Hostname, OS, DeviceType
	cpe       []template
}

// CPE is a cpe:/.../ template of a match line.
type CPE struct {
	// Template is the CPE name with the "cpe:/" prefix and $ substitutions:
	// "cpe:/a:openbsd:openssh:$2".
	Template string
	// A reports the optional a flag after the closing delimiter
	// (cpe:/o:microsoft:windows/a). nmap reads it but fills the name in
	// the same way either way.
	A bool
}

// Result is what a match line found in a response. The text fields are
// the line's templates filled in: captured bytes that are not printable
// UTF-8 are written as \xHH, trailing spaces and commas are dropped, and
// in CPE names captured text is lower-cased, with spaces written as _ and
// the characters CPE reserves percent-encoded, as nmap does.
type Result struct {
	Service    string
	Product    string
	Version    string
	Info       string // nmap's "extra info"
	Hostname   string
	OS         string
	DeviceType string
	CPE        []string // CPE names, such as "cpe:/a:openbsd:openssh:9.2p1"
	Soft       bool     // from a softmatch line
	// VersionRead reports whether Version was filled from the response
	// (its template captures, $1…), not written into the line as is
	// ("2.2.X - 2.3.X", or a release the line's author saw).
	VersionRead bool
	Matched     []byte // the bytes the whole pattern matched: the evidence
	Probe       string // the probe whose match line matched
	Line        int    // the line of that match line in the file
}

// Err reports why the pattern cannot be used (a PCRE construct the
// translation does not support, or one regexp2 rejects), or nil. Such a
// line never matches. Err compiles the pattern if that has not happened.
func (m *Match) Err() error {
	m.compile()
	return m.err
}

// Match tries the pattern against a response, which may hold any bytes, and
// on a match returns the version fields filled in from the captures. A
// field whose template cannot be filled (it names a group the pattern does
// not have, say) is left empty, as nmap does.
func (m *Match) Match(resp []byte) (Result, bool) {
	return m.match(latin1(resp))
}

// latin1 maps each byte to the rune of the same value, so that patterns
// match bytes: \xe9 matches byte 0xe9 and . matches any single byte.
func latin1(b []byte) []rune {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return r
}

// bytesOf reverses latin1.
func bytesOf(r []rune) []byte {
	b := make([]byte, len(r))
	for i, c := range r {
		b[i] = byte(c)
	}
	return b
}

func (m *Match) compile() {
	m.once.Do(func() {
		m.templates = [6]template{
			parseTemplate(m.Product), parseTemplate(m.Version), parseTemplate(m.Info),
			parseTemplate(m.Hostname), parseTemplate(m.OS), parseTemplate(m.DeviceType),
		}
		m.cpe = make([]template, len(m.CPE))
		for i, c := range m.CPE {
			m.cpe[i] = parseTemplate(c.Template)
		}
		re, err := compilePCRE(m.Pattern, m.IgnoreCase, m.DotAll)
		if err != nil {
			m.err = fmt.Errorf("nmapdb: line %d: pattern %.40q: %w", m.Line, m.Pattern, err)
			return
		}
		m.re = re
	})
}

// compilePCRE compiles a PCRE pattern for subjects made by latin1.
func compilePCRE(pattern string, ignoreCase, dotAll bool) (re *regexp2.Regexp, err error) {
	expr, err := translatePCRE(pattern, ignoreCase)
	if err != nil {
		return nil, err
	}
	// Case-insensitivity is written into expr: see translatePCRE.
	opts := regexp2.RegexOptions(regexp2.None)
	if dotAll {
		opts |= regexp2.Singleline
	}
	// regexp2 is a large parser of outside input; a bug in it must not
	// take the caller down.
	defer func() {
		if p := recover(); p != nil {
			re, err = nil, fmt.Errorf("regexp2 panicked: %v", p)
		}
	}()
	re, err = regexp2.Compile(expr, opts)
	if err != nil {
		return nil, err
	}
	re.MatchTimeout = MatchTimeout
	return re, nil
}

// match is Match for a subject already made by latin1.
func (m *Match) match(subject []rune) (res Result, ok bool) {
	m.compile()
	if m.re == nil {
		return Result{}, false
	}
	rm, err := m.find(subject)
	if err != nil || rm == nil {
		return Result{}, false
	}
	group := func(n int) ([]byte, error) {
		g := rm.GroupByNumber(n)
		if g == nil {
			return nil, errNoGroup
		}
		if len(g.Captures) == 0 {
			return nil, nil
		}
		return bytesOf(g.Runes()), nil
	}
	res = Result{
		Service: m.Service,
		Soft:    m.Soft,
		Matched: bytesOf(rm.Runes()),
		Probe:   m.probe,
		Line:    m.Line,
	}
	res.VersionRead = strings.Contains(m.Version, "$")
	fields := [6]*string{&res.Product, &res.Version, &res.Info, &res.Hostname, &res.OS, &res.DeviceType}
	for i := range m.templates {
		*fields[i], _ = m.templates[i].fill(group, false)
	}
	for i := range m.cpe {
		if name, ok := m.cpe[i].fill(group, true); ok && name != "" {
			res.CPE = append(res.CPE, name)
		}
	}
	return res, true
}

// find runs the compiled pattern; a timeout is an error.
func (m *Match) find(subject []rune) (rm *regexp2.Match, err error) {
	defer func() {
		if p := recover(); p != nil {
			rm, err = nil, fmt.Errorf("regexp2 panicked: %v", p)
		}
	}()
	return m.re.FindRunesMatch(subject)
}
