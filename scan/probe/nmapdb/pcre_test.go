package nmapdb

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// pcreMatch compiles pattern with flags ("i", "s") and matches it against
// subject, returning the captures (group 1 on) or nil if it does not match.
func pcreMatch(t *testing.T, pattern, flags, subject string) ([]string, bool, error) {
	t.Helper()
	re, err := compilePCRE(pattern, strings.Contains(flags, "i"), strings.Contains(flags, "s"))
	if err != nil {
		return nil, false, err
	}
	m, err := re.FindRunesMatch(latin1([]byte(subject)))
	if err != nil || m == nil {
		return nil, false, err
	}
	var groups []string
	for _, g := range m.Groups()[1:] {
		groups = append(groups, string(bytesOf(g.Runes())))
	}
	return groups, true, nil
}

func TestPCREDialect(t *testing.T) {
	tests := []struct {
		name, pattern, flags, subject string
		match                         bool
		groups                        []string
	}{
		// Escapes for bytes.
		{"nul", `^a\0b`, "", "a\x00b", true, nil},
		{"nul with octal digits", `^\00$`, "", "\x00", true, nil},
		{"octal", `^a\012`, "", "a\n", true, nil},
		{"one hex digit", `^\x4$`, "", "\x04", true, nil},
		{"hex", `^\x41\xff$`, "", "A\xff", true, nil},
		{"braced hex", `^\x{41}$`, "", "A", true, nil},
		{"pattern bytes above 0x7f", "^\xe9t\xe9$", "", "\xe9t\xe9", true, nil},
		{"control", `^\cA\ca\e\a$`, "", "\x01\x01\x1b\x07", true, nil},
		{"back reference or octal", `^\10$`, "", "\x08", true, nil},
		{"unknown letter escape is the letter", `^\y\_\-\/\:$`, "", "y_-/:", true, nil},
		{"quoted", `^\Q.*[\E$`, "", ".*[", true, nil},
		{"quoted does not match", `^\Q.*\E$`, "", "ab", false, nil},
		{"characters .NET treats specially", `^# a'"<>!@%&~`, "", `# a'"<>!@%&~`, true, nil},

		// Any byte, newlines.
		{"dot matches any byte", `^.{3}$`, "", "\xff\x00\r", true, nil},
		{"dot stops at newline", `^a.b`, "", "a\nb", false, nil},
		{"s flag", `^a.b`, "s", "a\nb", true, nil},
		{"dollar before final newline", `^abc$`, "", "abc\n", true, nil},
		{"z at the very end", `^abc\z`, "", "abc\n", false, nil},
		{"Z before final newline", `^abc\Z`, "", "abc\n", true, nil},

		// Classes are ASCII.
		{"w is ASCII", `^\w$`, "", "\xe9", false, nil},
		{"d is ASCII", `^\d+$`, "", "0123456789", true, nil},
		{"s is not nbsp", `^\s$`, "", "\xa0", false, nil},
		{"s is vertical tab", `^\s$`, "", "\v", true, nil},
		{"W is e-acute", `^\W$`, "", "\xe9", true, nil},
		{"word boundary next to e-acute", `\bfoo\b`, "", "\xe9foo", true, nil},
		{"no word boundary", `\bfoo`, "", "afoo", false, nil},
		{"not a word boundary", `a\Bb`, "", "ab", true, nil},
		{"h", `^\h\h\h$`, "", "\t \xa0", true, nil},
		{"v", `^\v+$`, "", "\n\v\f\r\x85", true, nil},
		{"R", `^a\Rb\Rc$`, "", "a\r\nb\nc", true, nil},
		{"N", `^\N+$`, "", "ab\r", true, nil},
		{"unicode property", `^\p{Lu}\pL\P{L}$`, "", "\xc0a1", true, nil},

		// Character classes.
		{"posix", `^([[:alpha:]]+)([[:digit:]]+)([[:^alnum:]])`, "", "abc123-", true, []string{"abc", "123", "-"}},
		{"posix punct and xdigit", `^[[:punct:]][[:xdigit:]]+$`, "", "!0fA", true, nil},
		{"bracket first", `^[]a]+$`, "", "]a]", true, nil},
		{"negated bracket first", `^[^]a]$`, "", "b", true, nil},
		{"no .NET class subtraction", `^[a-z-[aei]]$`, "", "b]", true, nil},
		{"escapes in class", `^[\w.\-\]\\]+$`, "", `a.-]\`, true, nil},
		{"class escapes for bytes", `^[\x00-\x1f\0\n]+$`, "", "\x00\x1f\n", true, nil},
		{"range over punctuation", `^[ -_]$`, "", "Z", true, nil},
		{"range over punctuation excludes", `^[ -_]$`, "", "a", false, nil},
		{"negated class and case", `^[^a]$`, "i", "A", false, nil},
		{"class range and case", `^[a-c]+$`, "i", "AbC", true, nil},
		{"negated class escapes", `^[^\d\s]+$`, "", "ab\xe9", true, nil},
		{"class of not-digit", `^[\D]+$`, "", "ab", true, nil},
		{"dash after class escape is literal", `^[\d-z]+$`, "", "1-z", true, nil},
		{"class octal", `^[\1\101]+$`, "", "\x01A", true, nil},
		{"class backspace", `^[\b]$`, "", "\b", true, nil},

		// Groups and references.
		{"back reference", `^(a+)b\1$`, "", "aabaa", true, []string{"aa"}},
		{"back reference fails", `^(a+)b\1$`, "", "aaba", false, nil},
		{"back reference then digit", `^(a)\g{1}0$`, "", "aa0", true, []string{"a"}},
		{"octal, not a missing group", `^(a)\10$`, "", "a\x08", true, []string{"a"}},
		{"relative reference", `^(a)(b)\g{-2}\g2\g1$`, "", "ababa", true, []string{"a", "b"}},
		{"named groups keep PCRE numbers", `^(?<n>a)(b)\k<n>(?P<m>c)(?P=m)\k{n}\k'm'$`, "", "abacca" + "c", true, []string{"a", "b", "c"}},
		{"non-participating group", `^(a)?(b)`, "", "b", true, []string{"", "b"}},
		{"lookahead", `^a(?!b)`, "", "ab", false, nil},
		{"lookbehind", `(?<=a)b`, "", "ab", true, nil},
		{"negative lookbehind", `(?<!a)b`, "", "ab", false, nil},
		{"possessive star", `^a*+a`, "", "aaa", false, nil},
		{"possessive plus on group", `^(?:ab)++c$`, "", "ababc", true, nil},
		{"possessive brace", `^\d{1,3}+3`, "", "123", false, nil},
		{"lazy", `^(a+?)`, "", "aaa", true, []string{"a"}},
		{"atomic", `^(?>a*)a`, "", "aaa", false, nil},
		{"comment", `^a(?#note)b$`, "", "ab", true, nil},
		{"inline case flag", `^(?i)abc`, "", "ABC", true, nil},
		{"scoped flag", `^(?i:a)b`, "", "Ab", true, nil},
		{"scoped flag ends", `^(?i:a)b`, "", "AB", false, nil},
		{"inline dotall off", `^(?-s)a.b`, "s", "a\nb", false, nil},
		{"i flag", `^hello`, "i", "HELLO", true, nil},
		{"i folds ASCII only", `^\xe9$`, "i", "\xc9", false, nil},
		{"i folds classes, ASCII only", `^[\xc0-\xde]$`, "i", "\xe9", false, nil},
		{"i folds POSIX classes", `^[[:upper:]]+$`, "i", "aB", true, nil},
		{"i folds back references", `^(ab)\1$`, "i", "abAB", true, nil},
		{"case-sensitive back reference", `^(ab)\1$`, "", "abAB", false, nil},
		{"option turned off inside a group", `^(?-i:a)b`, "i", "aB", true, nil},
		{"option turned off, case matters", `^(?-i:a)b`, "i", "AB", false, nil},
		{"setting lasts to the end of its group", `^(a(?i)b)c`, "", "aBc", true, nil},
		{"setting ends with its group", `^(a(?i)b)c`, "", "aBC", false, nil},
		{"setting carries into later branches", `^(?:a(?i)b|c)$`, "", "C", true, nil},

		// Braces.
		{"literal brace", `^a{x}$`, "", "a{x}", true, nil},
		{"literal open-ended brace", `^a{,2}$`, "", "a{,2}", true, nil},
		{"quantifier", `^a{2}b{1,}c{1,2}$`, "", "aabbbcc", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			groups, ok, err := pcreMatch(t, tt.pattern, tt.flags, tt.subject)
			if err != nil {
				expr, _ := translatePCRE(tt.pattern, strings.Contains(tt.flags, "i"))
				t.Fatalf("match %q against %q: %v (translated %q)", tt.pattern, tt.subject, err, expr)
			}
			if ok != tt.match {
				expr, _ := translatePCRE(tt.pattern, strings.Contains(tt.flags, "i"))
				t.Fatalf("match %q/%s against %q = %v; want %v (translated %q)", tt.pattern, tt.flags, tt.subject, ok, tt.match, expr)
			}
			if tt.groups != nil {
				if diff := cmp.Diff(tt.groups, groups); diff != "" {
					t.Errorf("match %q against %q: groups mismatch (-want +got):\n%s", tt.pattern, tt.subject, diff)
				}
			}
		})
	}
}

func TestPCREErrors(t *testing.T) {
	tests := []struct {
		pattern     string
		unsupported bool
	}{
		{`(?R)`, true},
		{`(a)(?1)`, true},
		{`(?|a|b)`, true},
		{`(?(1)a|b)`, true},
		{`a\Kb`, true},
		{`(*UTF)a`, true},
		{`(?x) a b`, true},
		{`\g<1>`, true},
		{`[\Rx]`, true},
		{`[[.a.]]`, true},
		{`\p{NoSuchProperty}`, true},
		{`(a`, false},
		{`a)`, false},
		{`[a`, false},
		{`*a`, false},
		{`a\`, false},
		{`\x{100}`, false},
		{`\400`, false},
		{`[\400]`, false},
		{`[z-a]`, false},
		{`\1(a)\2`, false},
		{`\k<nope>`, false},
		{`[[:nope:]]`, false},
		{`\o5`, false},
		{`\c`, false},
		{`(?<n`, false},
	}
	for _, tt := range tests {
		_, err := compilePCRE(tt.pattern, false, false)
		if err == nil {
			expr, _ := translatePCRE(tt.pattern, false)
			t.Errorf("compilePCRE(%q) = nil error; want an error (translated %q)", tt.pattern, expr)
			continue
		}
		if got := errors.Is(err, errUnsupported); got != tt.unsupported {
			t.Errorf("compilePCRE(%q) = %v; want unsupported %v", tt.pattern, err, tt.unsupported)
		}
	}
}
