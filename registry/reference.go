package registry

import "strings"

// References returns IANA's reference list, such as "[RFC3501][RFC9051]",
// as items to show: "RFC 3501", "RFC 9051". Other references (drafts,
// standards of other bodies, URLs) are kept as written, without their
// brackets; footnote marks such as "[1]", whose notes the CSV does not
// carry, are left out.
func References(ref string) []string {
	var out []string
	for _, item := range bracketed(ref) {
		if digits(item) {
			continue
		}
		if n, ok := strings.CutPrefix(item, "RFC"); ok && digits(n) {
			item = "RFC " + n
		}
		out = append(out, item)
	}
	return out
}

// People returns IANA's person and organisation ids, such as
// "[Eric_Soderberg_2][IESG]", as names to show: "Eric Soderberg", "IESG".
// The number IANA appends to tell two people of the same name apart is
// left out.
func People(ids string) []string {
	var out []string
	for _, item := range bracketed(ids) {
		words := strings.Split(item, "_")
		if len(words) > 1 && digits(words[len(words)-1]) {
			words = words[:len(words)-1]
		}
		if name := strings.Join(strings.Fields(strings.Join(words, " ")), " "); name != "" {
			out = append(out, name)
		}
	}
	return out
}

// bracketed splits "[a][b] c" into "a", "b" and "c", trimmed; empty items
// are left out. An unclosed bracket runs to the end of s.
func bracketed(s string) []string {
	var out []string
	for s != "" {
		var item string
		if rest, ok := strings.CutPrefix(s, "["); ok {
			item, s, _ = strings.Cut(rest, "]")
		} else if i := strings.IndexByte(s, '['); i >= 0 {
			item, s = s[:i], s[i:]
		} else {
			item, s = s, ""
		}
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// digits reports whether s is one or more ASCII digits.
func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
