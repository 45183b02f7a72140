package nmapdb

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// errUnsupported marks PCRE constructs that regexp2 cannot express.
var errUnsupported = errors.New("unsupported PCRE construct")

// translatePCRE rewrites a pattern in the PCRE dialect nmap-service-probes
// uses into the .NET dialect regexp2 compiles, for subjects whose runes are
// bytes (0-255), so that it means what PCRE means in 8-bit, non-UTF mode:
//
//   - every literal character outside [A-Za-z0-9] becomes \xHH, so .NET's
//     different set of special characters does not matter, and a pattern
//     byte above 0x7f matches that byte of the response;
//   - \d \w \s \b and friends stay ASCII (in .NET they are Unicode-aware,
//     and é is a letter);
//   - character classes are rebuilt as explicit byte ranges, so POSIX
//     classes ([:alpha:]) work and .NET's class subtraction ([a-z-[aei]])
//     cannot be triggered by accident;
//   - \0 and \ddd are octal as in PCRE, \x takes one or two hex digits;
//   - named groups become plain groups, so that capture numbers stay in
//     PCRE's order (.NET numbers named groups after the unnamed ones);
//   - possessive quantifiers (a*+) become atomic groups, \Q...\E is quoted;
//   - case-insensitive matching (the i flag, or (?i) inside the pattern)
//     folds ASCII letters only, as PCRE does in non-UTF mode: the letters
//     are written as [aA], so the result must be compiled without
//     regexp2.IgnoreCase, which would also fold é and É.
//
// Recursion, conditionals, branch reset, \K, backtracking verbs and the x
// flag are not supported and return an error that wraps errUnsupported.
func translatePCRE(pat string, ignoreCase bool) (string, error) {
	// The first pass counts capture groups and learns their names, which
	// decide what \10 and \k<name> mean; the second writes the result.
	first := pcreTranslator{src: pat, atom: -1, icase: ignoreCase}
	if err := first.run(); err != nil {
		return "", err
	}
	t := pcreTranslator{src: pat, atom: -1, icase: ignoreCase, total: first.opened, names: first.names, final: true}
	if err := t.run(); err != nil {
		return "", err
	}
	return string(t.out), nil
}

// pcreTranslator holds the state of one pass of translatePCRE.
type pcreTranslator struct {
	src   string
	i     int    // next byte of src
	out   []byte // translated pattern
	final bool   // second pass: names and total are known

	total  int            // capture groups in the whole pattern (final pass)
	opened int            // capture groups opened so far
	names  map[string]int // group name -> number
	stack  []openGroup    // the open groups
	atom   int            // out offset of the last quantifiable item, or -1
	icase  bool           // case-insensitive here
}

// openGroup is a group whose ) is still to come.
type openGroup struct {
	start int  // out offset of its (
	icase bool // the case-insensitivity to restore at its )
}

func (t *pcreTranslator) errorf(format string, args ...any) error {
	return fmt.Errorf("regexp offset %d: "+format, append([]any{t.i}, args...)...)
}

func (t *pcreTranslator) unsupported(what string) error {
	return fmt.Errorf("regexp offset %d: %s: %w", t.i, what, errUnsupported)
}

func (t *pcreTranslator) run() error {
	for t.i < len(t.src) {
		var err error
		switch c := t.src[t.i]; c {
		case '\\':
			err = t.escape()
		case '[':
			err = t.class()
		case '(':
			err = t.open()
		case ')':
			err = t.close()
		case '*', '+', '?':
			t.i++
			err = t.quantified(string(c))
		case '{':
			if n := quantifierLen(t.src[t.i:]); n > 0 {
				q := t.src[t.i : t.i+n]
				t.i += n
				err = t.quantified(q)
			} else {
				t.i++
				t.literal('{')
			}
		case '.':
			t.i++
			t.item(".")
		case '^', '$', '|':
			t.i++
			t.out = append(t.out, c)
			t.atom = -1
		default:
			t.i++
			t.literal(c)
		}
		if err != nil {
			return err
		}
	}
	if len(t.stack) > 0 {
		return t.errorf("missing )")
	}
	return nil
}

// item appends a quantifiable item.
func (t *pcreTranslator) item(s string) {
	t.atom = len(t.out)
	t.out = append(t.out, s...)
}

// literal appends a quantifiable literal byte.
func (t *pcreTranslator) literal(b byte) {
	t.atom = len(t.out)
	if other, ok := otherCase(b); ok && t.icase {
		t.out = append(t.out, '[', b, other, ']')
		return
	}
	t.out = appendLiteral(t.out, b)
}

// otherCase returns the other case of an ASCII letter.
func otherCase(b byte) (byte, bool) {
	switch {
	case b >= 'a' && b <= 'z':
		return b - 'a' + 'A', true
	case b >= 'A' && b <= 'Z':
		return b - 'A' + 'a', true
	}
	return 0, false
}

// appendLiteral appends byte b as a .NET pattern that matches exactly it.
func appendLiteral(out []byte, b byte) []byte {
	if isAlnum(b) {
		return append(out, b)
	}
	return fmt.Appendf(out, `\x%02x`, b)
}

// quantifierLen returns the length of the {n}, {n,} or {n,m} quantifier at
// the start of s, or 0 if s does not start with one (PCRE then reads the
// brace literally).
func quantifierLen(s string) int {
	i := 1
	digits := func() int {
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - start
	}
	if digits() == 0 {
		return 0
	}
	if i < len(s) && s[i] == ',' {
		i++
		digits()
	}
	if i < len(s) && s[i] == '}' {
		return i + 1
	}
	return 0
}

// quantified appends quantifier q, and turns a following + (possessive) into
// an atomic group around the quantified item.
func (t *pcreTranslator) quantified(q string) error {
	if t.atom < 0 {
		return t.errorf("quantifier %q does not follow a repeatable item", q)
	}
	t.out = append(t.out, q...)
	if t.i < len(t.src) {
		switch t.src[t.i] {
		case '+':
			t.i++
			wrapped := append([]byte("(?>"), t.out[t.atom:]...)
			t.out = append(append(t.out[:t.atom], wrapped...), ')')
		case '?':
			t.i++
			t.out = append(t.out, '?')
		}
	}
	t.atom = -1
	return nil
}

// escape translates the backslash sequence at t.i, outside a class.
func (t *pcreTranslator) escape() error {
	t.i++ // the backslash
	if t.i >= len(t.src) {
		return t.errorf(`pattern ends with \`)
	}
	c := t.src[t.i]
	t.i++
	if set, ok := shorthand(c); ok {
		t.item(string(set.appendClass(nil, false)))
		return nil
	}
	switch c {
	case 'N':
		t.item(`[^\n]`)
	case 'R':
		t.item(`(?>\r\n|` + string(setVert.appendClass(nil, false)) + `)`)
	case 'b':
		t.out = append(t.out, `(?:(?<=`+wordChar+`)(?!`+wordChar+`)|(?<!`+wordChar+`)(?=`+wordChar+`))`...)
		t.atom = -1
	case 'B':
		t.out = append(t.out, `(?:(?<=`+wordChar+`)(?=`+wordChar+`)|(?<!`+wordChar+`)(?!`+wordChar+`))`...)
		t.atom = -1
	case 'A', 'z', 'Z', 'G':
		t.out = append(t.out, '\\', c)
		t.atom = -1
	case 'Q':
		end := strings.Index(t.src[t.i:], `\E`)
		quoted := t.src[t.i:]
		if end >= 0 {
			quoted = quoted[:end]
			t.i += end + 2
		} else {
			t.i = len(t.src)
		}
		for j := 0; j < len(quoted); j++ {
			t.literal(quoted[j])
		}
	case 'E':
		// \E without \Q does nothing.
	case 'g':
		return t.backrefG()
	case 'k':
		return t.backrefK()
	case 'p', 'P':
		set, err := t.property(c == 'P')
		if err != nil {
			return err
		}
		t.item(string(set.appendClass(nil, false)))
	case 'K', 'X', 'C':
		return t.unsupported(`\` + string(c))
	case '1', '2', '3', '4', '5', '6', '7', '8', '9':
		t.i--
		return t.decimalEscape()
	default:
		t.i--
		b, ok, err := t.charEscape()
		if err != nil {
			return err
		}
		if !ok {
			// An unknown escape stands for the character itself.
			b = c
			t.i++
		}
		t.literal(b)
	}
	return nil
}

// charEscape reads an escape that stands for one byte, with t.i just past
// the backslash: \a \e \f \n \r \t, \xHH, \x{H..}, \0oo, \o{o..}, \cX. It
// reports false, without moving, for other escapes.
func (t *pcreTranslator) charEscape() (byte, bool, error) {
	c := t.src[t.i]
	if k := strings.IndexByte("aefnrt", c); k >= 0 {
		t.i++
		return "\a\x1b\f\n\r\t"[k], true, nil
	}
	switch c {
	case 'x':
		t.i++
		if t.i < len(t.src) && t.src[t.i] == '{' {
			return t.braced(16)
		}
		v := 0
		for n := 0; n < 2 && t.i < len(t.src) && isHex(t.src[t.i]); n++ {
			v = v*16 + hexVal(t.src[t.i])
			t.i++
		}
		return byte(v), true, nil
	case 'o':
		t.i++
		if t.i >= len(t.src) || t.src[t.i] != '{' {
			return 0, false, t.errorf(`\o must be followed by {`)
		}
		return t.braced(8)
	case '0':
		// \0 and up to two more octal digits.
		v, err := t.octal()
		return v, true, err
	case 'c':
		t.i++
		if t.i >= len(t.src) || t.src[t.i] > 0x7e {
			return 0, false, t.errorf(`\c must be followed by a printable ASCII character`)
		}
		x := t.src[t.i]
		t.i++
		if x >= 'a' && x <= 'z' {
			x -= 'a' - 'A'
		}
		return x ^ 0x40, true, nil
	}
	return 0, false, nil
}

// braced reads {digits} in the given base, at t.i, as a byte value.
func (t *pcreTranslator) braced(base int) (byte, bool, error) {
	end := strings.IndexByte(t.src[t.i:], '}')
	if end < 0 {
		return 0, false, t.errorf("missing } in escape")
	}
	digits := t.src[t.i+1 : t.i+end]
	v, err := strconv.ParseUint(digits, base, 32)
	if err != nil {
		return 0, false, t.errorf("bad number %q in escape", digits)
	}
	if v > 0xff {
		return 0, false, t.errorf("character value %#x is above 0xff in 8-bit mode", v)
	}
	t.i += end + 1
	return byte(v), true, nil
}

// decimalEscape reads \N (N not starting with 0) outside a class: a back
// reference if N < 10 or there are that many groups, else an octal
// character, else the digit itself.
func (t *pcreTranslator) decimalEscape() error {
	start := t.i
	for t.i < len(t.src) && t.src[t.i] >= '0' && t.src[t.i] <= '9' {
		t.i++
	}
	n, err := strconv.Atoi(t.src[start:t.i])
	if err == nil && (n < 10 || n <= t.total) {
		return t.backref(n)
	}
	t.i = start
	if !isOctal(t.src[t.i]) {
		t.i++
		t.literal(t.src[start])
		return nil
	}
	v, err := t.octal()
	if err != nil {
		return err
	}
	t.literal(v)
	return nil
}

// octal reads up to three octal digits at t.i as a byte value.
func (t *pcreTranslator) octal() (byte, error) {
	v := 0
	for k := 0; k < 3 && t.i < len(t.src) && isOctal(t.src[t.i]); k++ {
		v = v*8 + int(t.src[t.i]-'0')
		t.i++
	}
	if v > 0xff {
		return 0, t.errorf("octal value %#o is above 0377 in 8-bit mode", v)
	}
	return byte(v), nil
}

// backref appends a reference to group n.
func (t *pcreTranslator) backref(n int) error {
	if n <= 0 {
		return t.errorf("back reference to group %d", n)
	}
	if t.final && n > t.total {
		return t.errorf("back reference to group %d, which does not exist", n)
	}
	if t.icase {
		t.item(`(?i:\` + strconv.Itoa(n) + `)`)
	} else {
		t.item(`(?:\` + strconv.Itoa(n) + `)`)
	}
	return nil
}

// backrefName appends a reference to the group called name.
func (t *pcreTranslator) backrefName(name string) error {
	if !t.final {
		t.item(`(?:)`)
		return nil
	}
	n, ok := t.names[name]
	if !ok {
		return t.errorf("back reference to group %q, which does not exist", name)
	}
	return t.backref(n)
}

// backrefG reads the rest of \gN, \g{N}, \g{-N}, \g-N or \g{name}.
func (t *pcreTranslator) backrefG() error {
	ref := ""
	switch {
	case t.i < len(t.src) && t.src[t.i] == '{':
		end := strings.IndexByte(t.src[t.i:], '}')
		if end < 0 {
			return t.errorf(`missing } in \g{`)
		}
		ref = t.src[t.i+1 : t.i+end]
		t.i += end + 1
	case t.i < len(t.src) && (t.src[t.i] == '<' || t.src[t.i] == '\''):
		return t.unsupported(`subroutine call \g<...>`)
	default:
		start := t.i
		if t.i < len(t.src) && (t.src[t.i] == '-' || t.src[t.i] == '+') {
			t.i++
		}
		for t.i < len(t.src) && t.src[t.i] >= '0' && t.src[t.i] <= '9' {
			t.i++
		}
		ref = t.src[start:t.i]
	}
	n, err := strconv.Atoi(ref)
	switch {
	case err != nil:
		return t.backrefName(ref)
	case strings.HasPrefix(ref, "-"):
		return t.backref(t.opened + 1 + n)
	case strings.HasPrefix(ref, "+"):
		return t.errorf(`forward relative reference \g%s`, ref)
	}
	return t.backref(n)
}

// backrefK reads the rest of \k<name>, \k'name' or \k{name}.
func (t *pcreTranslator) backrefK() error {
	if t.i >= len(t.src) {
		return t.errorf(`\k must be followed by a name`)
	}
	closer := map[byte]byte{'<': '>', '\'': '\'', '{': '}'}[t.src[t.i]]
	if closer == 0 {
		return t.errorf(`\k must be followed by <name>, 'name' or {name}`)
	}
	end := strings.IndexByte(t.src[t.i+1:], closer)
	if end < 0 {
		return t.errorf(`unterminated \k name`)
	}
	name := t.src[t.i+1 : t.i+1+end]
	t.i += end + 2
	return t.backrefName(name)
}

// open translates the group opening at t.i.
func (t *pcreTranslator) open() error {
	start := len(t.out)
	rest := t.src[t.i:]
	capture := func(name string, skip int) error {
		t.opened++
		if name != "" {
			if t.names == nil {
				t.names = map[string]int{}
			}
			if _, dup := t.names[name]; !dup {
				t.names[name] = t.opened
			}
		}
		t.i += skip
		t.stack = append(t.stack, openGroup{start, t.icase})
		t.out = append(t.out, '(')
		t.atom = -1
		return nil
	}
	plain := func(open string) error {
		t.i += len(open)
		t.stack = append(t.stack, openGroup{start, t.icase})
		t.out = append(t.out, open...)
		t.atom = -1
		return nil
	}
	named := func(prefix string, closer byte) error {
		end := strings.IndexByte(rest[len(prefix):], closer)
		if end < 0 {
			return t.errorf("unterminated group name")
		}
		return capture(rest[len(prefix):len(prefix)+end], len(prefix)+end+1)
	}
	switch {
	case strings.HasPrefix(rest, "(*"):
		return t.unsupported("backtracking verb or option (*...)")
	case !strings.HasPrefix(rest, "(?"):
		return capture("", 1)
	case strings.HasPrefix(rest, "(?#"):
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return t.errorf("unterminated comment (?#")
		}
		t.i += end + 1
		return nil
	case strings.HasPrefix(rest, "(?:"), strings.HasPrefix(rest, "(?="), strings.HasPrefix(rest, "(?!"),
		strings.HasPrefix(rest, "(?>"):
		return plain(rest[:3])
	case strings.HasPrefix(rest, "(?<="), strings.HasPrefix(rest, "(?<!"):
		return plain(rest[:4])
	case strings.HasPrefix(rest, "(?<"):
		return named("(?<", '>')
	case strings.HasPrefix(rest, "(?'"):
		return named("(?'", '\'')
	case strings.HasPrefix(rest, "(?P<"):
		return named("(?P<", '>')
	case strings.HasPrefix(rest, "(?P="):
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return t.errorf("unterminated (?P=")
		}
		t.i += end + 1
		return t.backrefName(rest[4:end])
	}
	// Option settings: (?i) (?-s) (?is:...). The i is done here (see
	// literal); m and s are left to regexp2.
	j := 2
	icase, on := t.icase, true
	var on2, off2 []byte // the options other than i
	for ; j < len(rest) && (rest[j] == 'i' || rest[j] == 'm' || rest[j] == 's' || rest[j] == '-'); j++ {
		switch c := rest[j]; {
		case c == '-':
			on = false
		case c == 'i':
			icase = on
		case on:
			on2 = append(on2, c)
		default:
			off2 = append(off2, c)
		}
	}
	if j == len(rest) || (rest[j] != ')' && rest[j] != ':') {
		return t.unsupported(fmt.Sprintf("group %.4q", rest))
	}
	opts := string(on2)
	if len(off2) > 0 {
		opts += "-" + string(off2)
	}
	if rest[j] == ':' {
		start := len(t.out)
		t.i += j + 1
		t.stack = append(t.stack, openGroup{start, t.icase})
		t.out = append(t.out, "(?"+opts+":"...)
		t.atom = -1
		t.icase = icase
		return nil
	}
	// A setting holds to the end of the enclosing group.
	t.i += j + 1
	if opts != "" {
		t.out = append(t.out, "(?"+opts+")"...)
	}
	t.icase = icase
	t.atom = -1
	return nil
}

// close translates the ) at t.i.
func (t *pcreTranslator) close() error {
	if len(t.stack) == 0 {
		return t.errorf("unmatched )")
	}
	t.i++
	g := t.stack[len(t.stack)-1]
	t.stack = t.stack[:len(t.stack)-1]
	t.atom, t.icase = g.start, g.icase
	t.out = append(t.out, ')')
	return nil
}

// byteSet is a set of byte values.
type byteSet [4]uint64

func (s *byteSet) add(b byte)      { s[b/64] |= 1 << (b % 64) }
func (s *byteSet) has(b byte) bool { return s[b/64]&(1<<(b%64)) != 0 }
func (s *byteSet) union(o byteSet) {
	s[0], s[1], s[2], s[3] = s[0]|o[0], s[1]|o[1], s[2]|o[2], s[3]|o[3]
}
func (s byteSet) invert() byteSet { return byteSet{^s[0], ^s[1], ^s[2], ^s[3]} }
func (s byteSet) empty() bool     { return s == byteSet{} }
func (s *byteSet) addRange(lo, hi int) {
	for b := lo; b <= hi; b++ {
		s.add(byte(b))
	}
}

// addString adds every byte of a class body written with ranges such as
// "0-9A-Z_" (only plain characters, no escapes).
func (s *byteSet) addString(body string) {
	for i := 0; i < len(body); i++ {
		if i+2 < len(body) && body[i+1] == '-' {
			s.addRange(int(body[i]), int(body[i+2]))
			i += 2
			continue
		}
		s.add(body[i])
	}
}

// appendClass appends s as a .NET character class of byte ranges.
func (s byteSet) appendClass(out []byte, negate bool) []byte {
	if s.empty() {
		if negate {
			return append(out, `[\x00-\xff]`...)
		}
		return append(out, `(?!)`...)
	}
	out = append(out, '[')
	if negate {
		out = append(out, '^')
	}
	for lo := 0; lo < 256; lo++ {
		if !s.has(byte(lo)) {
			continue
		}
		hi := lo
		for hi < 255 && s.has(byte(hi+1)) {
			hi++
		}
		out = fmt.Appendf(out, `\x%02x`, lo)
		if hi > lo {
			if hi > lo+1 {
				out = append(out, '-')
			}
			out = fmt.Appendf(out, `\x%02x`, hi)
		}
		lo = hi
	}
	return append(out, ']')
}

// asciiSet returns the set written by a class body of plain ranges.
func asciiSet(body string) byteSet {
	var s byteSet
	s.addString(body)
	return s
}

// wordChar is PCRE's \w in non-UCP mode as a .NET class, for \b and \B.
var wordChar = string(setWord.appendClass(nil, false))

// shorthand returns the set of the class escape \d, \w, \s, \h or \v
// (ASCII only, as PCRE's in non-UCP mode), or of its complement \D, \W,
// \S, \H or \V.
func shorthand(c byte) (byteSet, bool) {
	set, ok := shorthands[c|0x20]
	if ok && c >= 'A' && c <= 'Z' {
		set = set.invert()
	}
	return set, ok
}

var (
	shorthands = map[byte]byteSet{'d': setDigit, 'w': setWord, 's': setSpace, 'h': setHoriz, 'v': setVert}

	setDigit = asciiSet("0-9")
	setWord  = asciiSet("0-9A-Za-z_")
	setSpace = asciiSet("\t\n\x0b\f\r ")
	setHoriz = asciiSet("\t \xa0")
	setVert  = asciiSet("\n\x0b\f\r\x85")

	posixClasses = map[string]byteSet{
		"alnum":  asciiSet("0-9A-Za-z"),
		"alpha":  asciiSet("A-Za-z"),
		"ascii":  asciiSet("\x00-\x7f"),
		"blank":  asciiSet("\t "),
		"cntrl":  asciiSet("\x00-\x1f\x7f"),
		"digit":  setDigit,
		"graph":  asciiSet("!-~"),
		"lower":  asciiSet("a-z"),
		"print":  asciiSet(" -~"),
		"punct":  asciiSet("!-/:-@[-`{-~"),
		"space":  setSpace,
		"upper":  asciiSet("A-Z"),
		"word":   setWord,
		"xdigit": asciiSet("0-9A-Fa-f"),
	}
)

// class translates the character class starting at t.i.
func (t *pcreTranslator) class() error {
	start := t.i
	t.i++ // [
	negate := false
	if t.i < len(t.src) && t.src[t.i] == '^' {
		negate = true
		t.i++
	}
	var set byteSet
	quoted := false // inside \Q...\E
	for first := true; ; first = false {
		if t.i >= len(t.src) {
			t.i = start
			return t.errorf("missing ] for character class")
		}
		if !quoted && t.src[t.i] == ']' && !first {
			t.i++
			break
		}
		lo, cls, err := t.classItem(&quoted)
		if err != nil {
			return err
		}
		if cls != nil {
			set.union(*cls)
			continue
		}
		if lo < 0 { // \Q or \E
			continue
		}
		// A range lo-hi, unless the - is last or hi is a class.
		if t.i+1 < len(t.src) && t.src[t.i] == '-' && (quoted || t.src[t.i+1] != ']') {
			save := t.i
			t.i++
			hi, hiCls, err := t.classItem(&quoted)
			if err != nil {
				return err
			}
			if hiCls == nil && hi >= 0 {
				if hi < lo {
					return t.errorf("range out of order in character class")
				}
				set.addRange(lo, hi)
				continue
			}
			t.i = save // [a-\d]: the - is literal
		}
		set.add(byte(lo))
	}
	if t.icase {
		for b := 0; b < 256; b++ {
			if other, ok := otherCase(byte(b)); ok && set.has(byte(b)) {
				set.add(other)
			}
		}
	}
	t.atom = len(t.out)
	t.out = set.appendClass(t.out, negate)
	return nil
}

// classItem reads one item of a class at t.i: a byte (returned as 0-255),
// a set (\d, [:alpha:]...), or nothing (-1, for \Q and \E).
func (t *pcreTranslator) classItem(quoted *bool) (int, *byteSet, error) {
	c := t.src[t.i]
	if *quoted {
		if strings.HasPrefix(t.src[t.i:], `\E`) {
			t.i += 2
			*quoted = false
			return -1, nil, nil
		}
		t.i++
		return int(c), nil, nil
	}
	if c == '[' && t.i+1 < len(t.src) && strings.IndexByte(":.=", t.src[t.i+1]) >= 0 {
		if set, n, err := t.posixClass(); err != nil {
			return 0, nil, err
		} else if n > 0 {
			t.i += n
			return 0, &set, nil
		}
	}
	if c != '\\' {
		t.i++
		return int(c), nil, nil
	}
	t.i++ // the backslash
	if t.i >= len(t.src) {
		return 0, nil, t.errorf(`pattern ends with \`)
	}
	e := t.src[t.i]
	if set, ok := shorthand(e); ok {
		t.i++
		return 0, &set, nil
	}
	switch e {
	case 'p', 'P':
		t.i++
		set, err := t.property(e == 'P')
		return 0, &set, err
	case 'Q':
		t.i++
		*quoted = true
		return -1, nil, nil
	case 'E':
		t.i++
		return -1, nil, nil
	case 'b':
		t.i++
		return '\b', nil, nil
	case '1', '2', '3', '4', '5', '6', '7':
		v, err := t.octal()
		return int(v), nil, err
	case 'N', 'R', 'X', 'K', 'C', 'g', 'k', 'B', 'A', 'z', 'Z', 'G':
		return 0, nil, t.unsupported(`\` + string(e) + ` in a character class`)
	default:
		b, ok, err := t.charEscape()
		if err != nil {
			return 0, nil, err
		}
		if ok {
			return int(b), nil, nil
		}
		t.i++
		return int(e), nil, nil // \] \- \\ and unknown escapes
	}
}

// posixClass reads [:name:] or [:^name:] at t.i and returns its set and
// length, or length 0 if t.i does not start one (the [ is then literal).
func (t *pcreTranslator) posixClass() (byteSet, int, error) {
	rest := t.src[t.i:]
	kind := rest[1]
	end := strings.Index(rest[2:], string(kind)+"]")
	if end < 0 {
		return byteSet{}, 0, nil
	}
	name := rest[2 : 2+end]
	for _, r := range name {
		if !(r == '^' || r >= 'a' && r <= 'z') {
			return byteSet{}, 0, nil
		}
	}
	if kind != ':' {
		return byteSet{}, 0, t.unsupported("POSIX collating element [" + string(kind))
	}
	negate := strings.HasPrefix(name, "^")
	set, ok := posixClasses[strings.TrimPrefix(name, "^")]
	if !ok {
		return byteSet{}, 0, t.errorf("unknown POSIX class [:%s:]", name)
	}
	if negate {
		set = set.invert()
	}
	return set, end + 4, nil
}

// property reads the rest of \p{Name}, \pL, \p{^Name} (t.i just past the p
// or P) and returns the bytes whose code points have the property.
func (t *pcreTranslator) property(negate bool) (byteSet, error) {
	if t.i >= len(t.src) {
		return byteSet{}, t.errorf(`\p must be followed by a property`)
	}
	name := t.src[t.i : t.i+1]
	if name == "{" {
		end := strings.IndexByte(t.src[t.i:], '}')
		if end < 0 {
			return byteSet{}, t.errorf(`missing } in \p{`)
		}
		name = t.src[t.i+1 : t.i+end]
		t.i += end + 1
	} else {
		t.i++
	}
	if strings.HasPrefix(name, "^") {
		negate = !negate
		name = name[1:]
	}
	var in func(r rune) bool
	switch name {
	case "Any":
		in = func(rune) bool { return true }
	case "L&", "LC":
		in = func(r rune) bool { return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt) }
	default:
		table, ok := unicode.Categories[name]
		if !ok {
			table, ok = unicode.Scripts[name]
		}
		if !ok {
			return byteSet{}, t.unsupported(`property \p{` + name + `}`)
		}
		in = func(r rune) bool { return unicode.Is(table, r) }
	}
	var set byteSet
	for b := 0; b < 256; b++ {
		if in(rune(b)) != negate {
			set.add(byte(b))
		}
	}
	return set, nil
}

func isAlnum(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

func isHex(b byte) bool { return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F' }

func isOctal(b byte) bool { return b >= '0' && b <= '7' }

func hexVal(b byte) int {
	switch {
	case b >= '0' && b <= '9':
		return int(b - '0')
	case b >= 'a' && b <= 'f':
		return int(b-'a') + 10
	}
	return int(b-'A') + 10
}
