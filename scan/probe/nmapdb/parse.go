package nmapdb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/portctl/portctl/registry"
)

// SyntaxError is a line Parse does not understand.
type SyntaxError struct {
	Line int // from 1
	Msg  string
}

// Error returns "nmapdb: line N: message".
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("nmapdb: line %d: %s", e.Line, e.Msg)
}

// maxLine bounds the length of a line; the longest in nmap's file is under
// 2 KB.
const maxLine = 1 << 20

// Parse reads a file in nmap-service-probes format
// (https://nmap.org/book/vscan-fileformat.html). A line it does not
// understand is a *SyntaxError that names the line, except a line that
// starts with an unknown directive, which is skipped so that a newer file
// still loads. Patterns are not compiled here but on first use; see
// Match.Err.
//
// The directives: Exclude (once, before the probes), Probe, and for the
// probe above them match, softmatch, ports, sslports, totalwaitms,
// tcpwrappedms, rarity and fallback. Blank lines and lines starting with #
// are comments.
func Parse(r io.Reader) (*DB, error) {
	p := parser{db: &DB{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for sc.Scan() {
		p.line++
		if err := p.parseLine(sc.Text()); err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				err = &SyntaxError{Line: p.line, Msg: err.Error()}
			}
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &SyntaxError{Line: p.line + 1, Msg: fmt.Sprintf("line longer than %d bytes", maxLine)}
		}
		return nil, fmt.Errorf("nmapdb: read: %w", err)
	}
	if err := p.checkFallbacks(); err != nil {
		return nil, err
	}
	return p.db, nil
}

type parser struct {
	db           *DB
	line         int
	probe        *Probe // the probe the lines belong to
	excludeSeen  bool
	fallbackLine map[*Probe]int
}

func (p *parser) parseLine(line string) error {
	line = strings.TrimSuffix(line, "\r")
	text := strings.TrimLeft(line, " \t")
	if text == "" || text[0] == '#' {
		return nil
	}
	directive, rest := cutWord(text)
	switch directive {
	case "Exclude":
		return p.exclude(rest)
	case "Probe":
		return p.newProbe(rest)
	case "match", "softmatch", "ports", "sslports", "totalwaitms", "tcpwrappedms", "rarity", "fallback":
		if p.probe == nil {
			return fmt.Errorf("%s before the first Probe", directive)
		}
	default:
		return nil // an unknown directive
	}
	switch directive {
	case "match", "softmatch":
		m, err := parseMatch(rest)
		if err != nil {
			return err
		}
		m.Soft = directive == "softmatch"
		m.Line = p.line
		m.probe = p.probe.Name
		p.probe.Matches = append(p.probe.Matches, m)
	case "ports", "sslports":
		ports, err := parsePortList(rest)
		if err != nil {
			return fmt.Errorf("%s: %w", directive, err)
		}
		set := &p.probe.Ports
		if directive == "sslports" {
			set = &p.probe.SSLPorts
		}
		*set = normalize(append(*set, ports...))
	case "totalwaitms", "tcpwrappedms":
		ms, err := strconv.Atoi(strings.TrimSpace(rest))
		if err != nil || ms < 100 || ms > 300000 {
			return fmt.Errorf("%s %q: want milliseconds from 100 to 300000", directive, strings.TrimSpace(rest))
		}
		if directive == "totalwaitms" {
			p.probe.TotalWait = time.Duration(ms) * time.Millisecond
		} else {
			p.probe.TCPWrapped = time.Duration(ms) * time.Millisecond
		}
	case "rarity":
		n, err := strconv.Atoi(strings.TrimSpace(rest))
		if err != nil || n < 1 || n > 9 {
			return fmt.Errorf("rarity %q: want 1 to 9", strings.TrimSpace(rest))
		}
		p.probe.Rarity = n
	case "fallback":
		names := strings.FieldsFunc(rest, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
		if len(names) == 0 {
			return errors.New("fallback names no probe")
		}
		p.probe.Fallback = append(p.probe.Fallback, names...)
		if p.fallbackLine == nil {
			p.fallbackLine = map[*Probe]int{}
		}
		p.fallbackLine[p.probe] = p.line
	}
	return nil
}

// checkFallbacks makes sure every fallback names a probe.
func (p *parser) checkFallbacks() error {
	for _, probe := range p.db.Probes {
		for _, name := range probe.Fallback {
			if p.db.fallback(probe, name) == nil {
				return &SyntaxError{Line: p.fallbackLine[probe], Msg: fmt.Sprintf("fallback %q: no probe of that name", name)}
			}
		}
	}
	return nil
}

// cutWord splits s at the first run of spaces or tabs.
func cutWord(s string) (word, rest string) {
	end := strings.IndexAny(s, " \t")
	if end < 0 {
		return s, ""
	}
	return s[:end], strings.TrimLeft(s[end:], " \t")
}

// delimited reads a field such as q|...|, m/.../i or cpe:/.../a at the start
// of s: the letters (and colons) that name it, a delimiter of any
// character but a space, the text up to the next delimiter, and the letters
// that follow it (flags). It returns the rest of s.
func delimited(s string) (name, body, flags, rest string, err error) {
	i := 0
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] == ':') {
		i++
	}
	name = s[:i]
	if name == "" {
		return "", "", "", "", fmt.Errorf("unexpected %.20q", s)
	}
	if i == len(s) || s[i] == ' ' || s[i] == '\t' {
		return "", "", "", "", fmt.Errorf("%s: missing delimiter after %q", name, name)
	}
	delim := s[i]
	end := strings.IndexByte(s[i+1:], delim)
	if end < 0 {
		return "", "", "", "", fmt.Errorf("%s: no closing %q", name, delim)
	}
	body = s[i+1 : i+1+end]
	j := i + 1 + end + 1
	k := j
	for k < len(s) && (s[k] >= 'a' && s[k] <= 'z' || s[k] >= 'A' && s[k] <= 'Z') {
		k++
	}
	return name, body, s[j:k], s[k:], nil
}

func (p *parser) newProbe(rest string) error {
	protoName, rest := cutWord(rest)
	var proto registry.Protocol
	switch protoName {
	case "TCP":
		proto = registry.TCP
	case "UDP":
		proto = registry.UDP
	default:
		return fmt.Errorf("probe protocol %q: want TCP or UDP", protoName)
	}
	name, rest := cutWord(rest)
	if name == "" || !isAlnum(name[0]) {
		return fmt.Errorf("probe name %q: want a name that starts with a letter or digit", name)
	}
	q, body, _, rest, err := delimited(rest)
	if err == nil && q != "q" {
		err = fmt.Errorf("probe string starts with %q: want q|...|", q)
	}
	if err != nil {
		return err
	}
	payload, err := unescape(body)
	if err != nil {
		return fmt.Errorf("probe string: %w", err)
	}
	probe := &Probe{
		Name:      name,
		Proto:     proto,
		Payload:   payload,
		TotalWait: DefaultTotalWait,
		Rarity:    DefaultRarity,
	}
	if proto == registry.TCP {
		probe.TCPWrapped = DefaultTCPWrapped
	}
	// Options after the probe string. nmap knows no-payload; others, from
	// newer files, are skipped like unknown directives.
	for _, opt := range strings.Fields(rest) {
		if opt == "no-payload" {
			probe.NoPayload = true
		}
	}
	p.db.Probes = append(p.db.Probes, probe)
	p.probe = probe
	return nil
}

// parseMatch parses what follows "match" or "softmatch":
//
//	<service> m<d><pattern><d>[is] [p/.../] [v/.../] [i/.../] [h/.../] [o/.../] [d/.../] [cpe:/.../[a]]...
func parseMatch(rest string) (*Match, error) {
	service, rest := cutWord(rest)
	if service == "" {
		return nil, errors.New("match without a service name")
	}
	m := &Match{Service: service}
	mode, pattern, flags, rest, err := delimited(rest)
	if err == nil && mode != "m" {
		err = fmt.Errorf("pattern starts with %q: want m|...|", mode)
	}
	if err != nil {
		return nil, err
	}
	m.Pattern = pattern
	for _, f := range flags {
		switch f {
		case 'i':
			m.IgnoreCase = true
		case 's':
			m.DotAll = true
		default:
			return nil, fmt.Errorf("pattern flag %q: want i or s", f)
		}
	}
	for {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			return m, nil
		}
		var field, body, flags string
		field, body, flags, rest, err = delimited(rest)
		if err != nil {
			return nil, err
		}
		// A field given twice keeps the last, as in nmap.
		switch field {
		case "p":
			m.Product = body
		case "v":
			m.Version = body
		case "i":
			m.Info = body
		case "h":
			m.Hostname = body
		case "o":
			m.OS = body
		case "d":
			m.DeviceType = body
		case "cpe:":
			m.CPE = append(m.CPE, CPE{Template: "cpe:/" + body, A: strings.Contains(flags, "a")})
		default:
			return nil, fmt.Errorf("unknown version field %q (want p, v, i, h, o, d or cpe:)", field)
		}
	}
}

// unescape decodes a probe string or template string: \\ \0 \a \b \f \n
// \r \t \v and \xHH (two hex digits). \0 is a NUL byte, and a digit after
// it is a digit, as nmap reads it. A backslash before any other letter or
// digit is an error; before another character it stands for that
// character.
func unescape(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i == len(s) {
			return nil, errors.New(`ends with \`)
		}
		c = s[i]
		if k := strings.IndexByte("0abfnrtv", c); k >= 0 {
			out = append(out, "\x00\a\b\f\n\r\t\v"[k])
			continue
		}
		switch {
		case c == 'x':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return nil, fmt.Errorf(`bad escape %.4q: want \xHH`, s[i-1:])
			}
			out = append(out, byte(hexVal(s[i+1])<<4|hexVal(s[i+2])))
			i += 2
		case isAlnum(c):
			return nil, fmt.Errorf(`unknown escape \%c`, c)
		default:
			out = append(out, c)
		}
	}
	return out, nil
}

// parsePortList parses a ports or sslports list: ports and ranges
// separated by commas, "21-25,53,80".
func parsePortList(s string) ([]PortRange, error) {
	var out []PortRange
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		first, last, err := parseRange(item, false)
		if err != nil {
			return nil, err
		}
		out = append(out, PortRange{first, last})
	}
	return out, nil
}

// parseRange parses "80" or "80-90"; with open, also "-90", "80-" and "-"
// (as nmap's -p does).
func parseRange(item string, open bool) (first, last uint16, err error) {
	lo, hi, isRange := strings.Cut(item, "-")
	if !isRange {
		hi = lo
	}
	num := func(s string, def uint16) (uint16, error) {
		s = strings.TrimSpace(s)
		if s == "" && open && isRange {
			return def, nil
		}
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("port %q: want a number from 0 to 65535 or a range such as 21-25", item)
		}
		return uint16(n), nil
	}
	if first, err = num(lo, 0); err != nil {
		return 0, 0, err
	}
	if last, err = num(hi, 65535); err != nil {
		return 0, 0, err
	}
	if last < first {
		return 0, 0, fmt.Errorf("port range %q is backwards", item)
	}
	return first, last, nil
}

// exclude parses the Exclude directive, which has the syntax of nmap's -p:
// items separated by commas, each a port or range ("-" open ends allowed),
// with T:, U: or S: prefixes that hold for the items after them. Items
// before any prefix are for TCP and UDP. P: (IP protocol numbers) items
// are skipped.
func (p *parser) exclude(rest string) error {
	if p.excludeSeen {
		return errors.New("a second Exclude directive (only one is allowed)")
	}
	if len(p.db.Probes) > 0 {
		return errors.New("the Exclude directive must come before the first Probe")
	}
	p.excludeSeen = true
	var tcp, udp, sctp []PortRange
	prefix := byte(0)
	for item := range strings.SplitSeq(strings.TrimSpace(rest), ",") {
		item = strings.TrimSpace(item)
		if len(item) >= 2 && item[1] == ':' {
			if strings.IndexByte("TUSP", item[0]) < 0 {
				return fmt.Errorf("unknown protocol prefix %q in Exclude (want T:, U: or S:)", item[:2])
			}
			prefix = item[0]
			item = strings.TrimSpace(item[2:])
		}
		if item == "" && prefix != 0 {
			continue // "T:" alone, as nmap allows
		}
		first, last, err := parseRange(item, true)
		if err != nil {
			return fmt.Errorf("in Exclude: %w", err)
		}
		r := PortRange{first, last}
		switch prefix {
		case 0:
			tcp, udp = append(tcp, r), append(udp, r)
		case 'T':
			tcp = append(tcp, r)
		case 'U':
			udp = append(udp, r)
		case 'S':
			sctp = append(sctp, r)
		}
	}
	p.db.Exclude = ProtoPorts{TCP: normalize(tcp), UDP: normalize(udp), SCTP: normalize(sctp)}
	return nil
}
