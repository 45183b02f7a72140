package nmapdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A template is a version field (p/.../, v/.../, cpe:/.../ ...) parsed into
// literal text and substitutions:
//
//	$1 .. $9             capture group n, as matched
//	$P(n)                group n with every byte that is not printable ASCII removed
//	$SUBST(n,"from","to") group n with every "from" replaced by "to"
//	$I(n,">") $I(n,"<")  group n (1 to 8 bytes) read as a big- or little-endian
//	                     unsigned integer, written in decimal
//
// The quoted strings of $SUBST take C escapes (\n, \r, \t, \xHH, \0, \\, \").
type template struct {
	parts []tmplPart
	err   error // why the template cannot be filled; the field is left empty
}

type partKind uint8

const (
	partLiteral   partKind = iota
	partGroup              // $n
	partPrintable          // $P(n)
	partSubst              // $SUBST(n,"from","to")
	partUnpack             // $I(n,">")
)

type tmplPart struct {
	kind   partKind
	text   string // literal text, or the "from" of $SUBST
	to     string // the "to" of $SUBST
	group  int
	little bool // $I(n,"<")
}

// parseTemplate parses a version field template. Malformed templates are
// not an error of the file (nmap reads them and leaves the field empty when
// it fills it in); the template remembers why in err.
func parseTemplate(s string) template {
	var t template
	for s != "" {
		dollar := strings.IndexByte(s, '$')
		if dollar < 0 {
			t.parts = append(t.parts, tmplPart{kind: partLiteral, text: s})
			break
		}
		if dollar > 0 {
			t.parts = append(t.parts, tmplPart{kind: partLiteral, text: s[:dollar]})
		}
		part, n, err := parseSubst(s[dollar:])
		if err != nil {
			t.err = err
			t.parts = nil
			return t
		}
		t.parts = append(t.parts, part)
		s = s[dollar+n:]
	}
	return t
}

// parseSubst parses the substitution at the start of s (which starts with
// $) and returns it and its length.
func parseSubst(s string) (tmplPart, int, error) {
	if len(s) >= 2 && s[1] >= '0' && s[1] <= '9' {
		n := int(s[1] - '0')
		if n == 0 {
			return tmplPart{}, 0, errors.New("$0 is not a capture group (use $1 to $9)")
		}
		return tmplPart{kind: partGroup, group: n}, 2, nil
	}
	paren := strings.IndexByte(s, '(')
	if paren < 0 {
		return tmplPart{}, 0, fmt.Errorf("%.12q: want $1 to $9, $P(n), $SUBST(n,\"from\",\"to\") or $I(n,\">\")", s)
	}
	name := s[1:paren]
	args, n, err := parseArgs(s[paren+1:])
	if err != nil {
		return tmplPart{}, 0, fmt.Errorf("$%s: %w", name, err)
	}
	n += paren + 1
	group := func() (int, error) {
		g, ok := args[0].(int)
		if !ok || g < 1 || g > 9 {
			return 0, fmt.Errorf("$%s: first argument must be a group number from 1 to 9", name)
		}
		return g, nil
	}
	switch name {
	case "P":
		if len(args) != 1 {
			return tmplPart{}, 0, errors.New("$P takes one argument, a group number")
		}
		g, err := group()
		return tmplPart{kind: partPrintable, group: g}, n, err
	case "SUBST":
		if len(args) != 3 {
			return tmplPart{}, 0, errors.New(`$SUBST takes three arguments: a group number, "from" and "to"`)
		}
		g, err := group()
		from, ok1 := args[1].(string)
		to, ok2 := args[2].(string)
		if err == nil && (!ok1 || !ok2) {
			err = errors.New(`$SUBST: "from" and "to" must be quoted strings`)
		}
		return tmplPart{kind: partSubst, group: g, text: from, to: to}, n, err
	case "I":
		if len(args) != 2 {
			return tmplPart{}, 0, errors.New(`$I takes two arguments: a group number and ">" or "<"`)
		}
		g, err := group()
		order, _ := args[1].(string)
		if err == nil && order != ">" && order != "<" {
			err = fmt.Errorf(`$I: byte order %q: want ">" (big-endian) or "<" (little-endian)`, args[1])
		}
		return tmplPart{kind: partUnpack, group: g, little: order == "<"}, n, err
	}
	return tmplPart{}, 0, fmt.Errorf("unknown template function $%s", name)
}

// parseArgs parses the arguments of a template function, which follow its
// "(": integers and double-quoted strings, separated by commas, up to ")".
// It returns them (int or string) and the length read, ")" included.
func parseArgs(s string) ([]any, int, error) {
	var args []any
	i := 0
	skipSpace := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	for {
		skipSpace()
		if i >= len(s) {
			return nil, 0, errors.New("missing )")
		}
		if s[i] == ')' && len(args) == 0 {
			return nil, 0, errors.New("no arguments")
		}
		if s[i] == '"' {
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, 0, errors.New("unterminated string")
			}
			str, err := unescape(s[i+1 : j])
			if err != nil {
				return nil, 0, err
			}
			args = append(args, string(str))
			i = j + 1
		} else {
			j := i
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			n, err := strconv.Atoi(s[i:j])
			if err != nil {
				return nil, 0, fmt.Errorf("argument %.8q: want a number or a quoted string", s[i:])
			}
			args = append(args, n)
			i = j
		}
		skipSpace()
		switch {
		case i >= len(s):
			return nil, 0, errors.New("missing )")
		case s[i] == ',':
			i++
		case s[i] == ')':
			return args, i + 1, nil
		default:
			return nil, 0, fmt.Errorf("unexpected %q in arguments", s[i])
		}
	}
}

// errNoGroup is returned by a captures function for a group the pattern
// does not have.
var errNoGroup = errors.New("no such capture group")

// fill fills the template in with the captures of a match. group(n)
// returns the bytes group n matched (nil if it took no part in the match),
// or errNoGroup. With cpe, substituted text is escaped for a CPE name.
// It reports false if the template cannot be filled: nmap then leaves the
// field empty.
func (t *template) fill(group func(n int) ([]byte, error), cpe bool) (string, bool) {
	if t.err != nil {
		return "", false
	}
	var out []byte
	for _, p := range t.parts {
		if p.kind == partLiteral {
			out = append(out, p.text...)
			continue
		}
		g, err := group(p.group)
		if err != nil {
			return "", false
		}
		var sub []byte
		switch p.kind {
		case partGroup:
			sub = g
		case partPrintable:
			for _, b := range g {
				if b >= 0x20 && b <= 0x7e {
					sub = append(sub, b)
				}
			}
		case partSubst:
			if p.text == "" {
				sub = g
				break
			}
			sub = []byte(strings.ReplaceAll(string(g), p.text, p.to))
		case partUnpack:
			if len(g) == 0 || len(g) > 8 {
				return "", false
			}
			var buf [8]byte
			var v uint64
			if p.little {
				copy(buf[:], g)
				v = binary.LittleEndian.Uint64(buf[:])
			} else {
				copy(buf[8-len(g):], g)
				v = binary.BigEndian.Uint64(buf[:])
			}
			sub = strconv.AppendUint(nil, v, 10)
		}
		if cpe {
			sub = cpeEscape(sub)
		}
		out = append(out, sub...)
	}
	return printable(bytes.TrimRight(out, " \t\r\n\v\f,")), true
}

// printable turns b into text: valid UTF-8 that prints is kept, any other
// byte is written as \xHH.
func printable(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if (r != utf8.RuneError || size > 1) && unicode.IsPrint(r) {
			sb.Write(b[:size])
		} else {
			for _, c := range b[:size] {
				fmt.Fprintf(&sb, `\x%02x`, c)
			}
		}
		b = b[size:]
	}
	return sb.String()
}

// cpeEscape makes substituted text safe inside a CPE name, as nmap does:
// the characters CPE 2.2 reserves are percent-encoded, spaces become
// underscores and letters lower case. Control and non-ASCII bytes are
// percent-encoded too.
func cpeEscape(b []byte) []byte {
	const reserved = `:/?#[]@!$&'()*+,;=%<>"`
	out := make([]byte, 0, len(b))
	for _, c := range b {
		switch {
		case c == ' ':
			out = append(out, '_')
		case c < 0x20 || c >= 0x7f || strings.IndexByte(reserved, c) >= 0:
			out = fmt.Appendf(out, "%%%02X", c)
		case c >= 'A' && c <= 'Z':
			out = append(out, c+'a'-'A')
		default:
			out = append(out, c)
		}
	}
	return out
}
