package registry

import (
	"cmp"
	"slices"
	"strings"
	"unicode"
)

// Match is one search result: a port (or range) with the names and uses
// that matched, merged over protocols.
type Match struct {
	Port        uint16   `json:"port"`
	Last        uint16   `json:"last_port,omitempty"`
	Protos      Protocol `json:"protocols"`
	Names       []string `json:"names"`
	Description string   `json:"description"`
	Uses        []string `json:"uses,omitempty"` // de facto uses of the port
	Score       int      `json:"score"`
}

// Scores of one field against the query. The numbers only rank results
// against each other.
const (
	scoreExactName  = 100 // the query is the service name or an alias
	scoreNamePrefix = 60  // the name starts with the query
	scoreNameWord   = 40  // a word of the name equals the query
	scorePhrase     = 25  // the query appears as written in a text
	scoreWordExact  = 10  // per query word found as a whole word
	scoreWordPrefix = 6   // per query word found at the start of a word
	scoreWordInside = 2   // per query word found inside a word
	scorePopular    = 12  // the port has a de facto use: people meet it
	scoreSystem     = 3   // a well-known port
	scoreNoted      = 2   // per security note (up to three): a port that matters
)

// Search ranks the ports whose names, aliases, descriptions or de facto uses
// match every word of query, best first, at most limit of them (0 for all).
func (r *Registry) Search(query string, limit int) []Match {
	q := normalize(query)
	words := strings.Fields(q)
	if len(words) == 0 {
		return nil
	}
	type key struct{ port, last uint16 }
	byPort := map[key]*Match{}
	get := func(port, last uint16) *Match {
		k := key{port, last}
		m := byPort[k]
		if m == nil {
			m = &Match{Port: port, Last: last}
			byPort[k] = m
		}
		return m
	}
	for i, n := 0, r.len(); i < n; i++ {
		name, desc, aliases := r.searchAt(i)
		if name == "" {
			continue // reserved entries
		}
		if !mayMatch(words, name, desc, aliases) {
			continue
		}
		a := r.at(i)
		s := scoreName(q, words, a.Name, a.Aliases)
		if t := scoreText(q, words, a.Name+" "+strings.Join(a.Aliases, " ")+" "+a.Description); t > s {
			s = t
		}
		if s == 0 {
			continue
		}
		m := get(a.Port, a.Last)
		m.Protos |= a.Proto
		if !slices.Contains(m.Names, a.Name) {
			m.Names = append(m.Names, a.Name)
		}
		if m.Description == "" {
			m.Description = a.Description
		}
		m.Score = max(m.Score, s)
	}
	for _, u := range uses {
		if !mayMatch(words, u.Text, "", nil) {
			continue
		}
		s := scoreText(q, words, u.Text)
		if s == 0 {
			continue
		}
		m := get(u.Port, u.Last)
		m.Protos |= u.Protos
		m.Uses = append(m.Uses, u.Text)
		m.Score = max(m.Score, s)
	}
	out := make([]Match, 0, len(byPort))
	for _, m := range byPort {
		if len(Uses(m.Port, 0)) > 0 {
			m.Score += scorePopular
		}
		if Classify(m.Port) == System {
			m.Score += scoreSystem
		}
		m.Score += min(len(Notes(m.Port, 0)), 3) * scoreNoted
		if len(m.Names) == 0 {
			for _, a := range r.Port(m.Port, m.Protos) {
				if a.Name != "" && !slices.Contains(m.Names, a.Name) {
					m.Names = append(m.Names, a.Name)
				}
			}
		}
		if len(m.Uses) == 0 {
			for _, u := range Uses(m.Port, m.Protos) {
				// A wide range (the ephemeral range, NodePorts) says little
				// about one port found by its name.
				if int(u.Last)-int(u.Port) < 64 {
					m.Uses = append(m.Uses, u.Text)
				}
			}
		}
		if m.Description == "" {
			if as := r.Port(m.Port, m.Protos); len(as) > 0 {
				m.Description = as[0].Description
			}
		}
		out = append(out, *m)
	}
	slices.SortFunc(out, func(a, b Match) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Last, b.Last))
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// scoreName scores the query against a service name and its aliases.
func scoreName(q string, words []string, name string, aliases []string) int {
	best := 0
	for _, n := range append([]string{name}, aliases...) {
		n = normalize(n)
		switch {
		case n == q:
			return scoreExactName
		case len(words) == 1 && strings.HasPrefix(n, q):
			// shorter names are closer to what was asked
			best = max(best, scoreNamePrefix-min(len(n)-len(q), 20))
		case len(words) == 1 && slices.Contains(strings.Fields(n), q):
			best = max(best, scoreNameWord)
		}
	}
	return best
}

// scoreText scores the query against free text; every query word must occur.
func scoreText(q string, words []string, text string) int {
	t := normalize(text)
	tw := strings.Fields(t)
	score := 0
	for _, w := range words {
		best := 0
		for _, x := range tw {
			switch {
			case x == w:
				best = scoreWordExact
			case strings.HasPrefix(x, w):
				best = max(best, scoreWordPrefix)
			case strings.Contains(x, w):
				best = max(best, scoreWordInside)
			}
			if best == scoreWordExact {
				break
			}
		}
		if best == 0 {
			return 0
		}
		score += best
	}
	if len(words) > 1 && strings.Contains(t, q) {
		score += scorePhrase
	}
	return score
}

// normalize lowercases s and turns everything but letters and digits into
// single spaces, so that "MS-WBT server" and "ms wbt server" compare equal.
func normalize(s string) string {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	return strings.Join(f, " ")
}

// Suggest returns up to n known service names closest to name: those that
// start with it or contain it, then those a few edits away.
func (r *Registry) Suggest(name string, n int) []string {
	name = strings.ToLower(strings.TrimSpace(name))
	if name == "" || n <= 0 {
		return nil
	}
	type cand struct {
		name string
		dist int
	}
	var cands []cand
	maxDist := max(1, min(3, len(name)/3))
	for _, s := range r.Names() {
		var d int
		switch {
		case strings.HasPrefix(s, name):
			d = 0
		case strings.Contains(s, name) && len(name) >= 3:
			d = 1
		default:
			if abs(len(s)-len(name)) > maxDist {
				continue
			}
			d = levenshtein(name, s)
			if d > maxDist {
				continue
			}
			d++ // an edit is a weaker hint than containment
		}
		cands = append(cands, cand{s, d})
	}
	slices.SortStableFunc(cands, func(a, b cand) int {
		return cmp.Or(cmp.Compare(a.dist, b.dist), cmp.Compare(len(a.name), len(b.name)), strings.Compare(a.name, b.name))
	})
	var out []string
	for _, c := range cands {
		if len(out) == n {
			break
		}
		out = append(out, c.name)
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// levenshtein returns the edit distance between a and b (bytes).
func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// mayMatch is a cheap test that every word occurs somewhere in the fields,
// ignoring ASCII case; only entries that pass are scored properly.
func mayMatch(words []string, a, b string, more []string) bool {
	for _, w := range words {
		if !isASCII(w) {
			// Rare: compare with full Unicode case folding.
			all := strings.ToLower(a + " " + b + " " + strings.Join(more, " "))
			if !strings.Contains(all, w) {
				return false
			}
			continue
		}
		if containsFold(a, w) || containsFold(b, w) {
			continue
		}
		found := false
		for _, m := range more {
			if containsFold(m, w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// containsFold reports whether sub, which is lowercase, occurs in s when
// ASCII letters of s are lowercased. It does not allocate.
func containsFold(s, sub string) bool {
	n := len(sub)
	if n == 0 {
		return true
	}
	for i := 0; i+n <= len(s); i++ {
		if lower(s[i]) != sub[0] {
			continue
		}
		j := 1
		for j < n && lower(s[i+j]) == sub[j] {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
