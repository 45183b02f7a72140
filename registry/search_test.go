package registry_test

import (
	"slices"
	"testing"

	"github.com/portctl/portctl/registry"
)

func TestSearchTop(t *testing.T) {
	tests := []struct {
		query string
		limit int
		want  uint16 // port of the first result
	}{
		{"postgres", 5, 5432},
		{"remote desktop", 3, 3389},
		{"imaps", 1, 993},
		{"IMAPS", 1, 993},
		{"redis", 1, 6379},
		{"ssh", 1, 22},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got := registry.Builtin().Search(tt.query, tt.limit)
			if len(got) == 0 || got[0].Port != tt.want {
				t.Errorf("Search(%q, %d) = %+v; want port %d first", tt.query, tt.limit, got, tt.want)
			}
		})
	}
}

func TestSearchEmpty(t *testing.T) {
	for _, q := range []string{"", "  ", "\t\n", "---", "zzzzqqq"} {
		if got := registry.Builtin().Search(q, 5); len(got) != 0 {
			t.Errorf("Search(%q, 5) = %+v; want none", q, got)
		}
	}
}

// TestSearchNonASCII searches for a word written with a letter outside ASCII:
// the built-in data describes 4413 as "FORTÉ Vision Monitoring platform".
func TestSearchNonASCII(t *testing.T) {
	for _, q := range []string{"forté", "FORTÉ", "forté vision"} {
		got := registry.Builtin().Search(q, 3)
		if len(got) == 0 || got[0].Port != 4413 {
			t.Errorf("Search(%q, 3) = %+v; want port 4413 first", q, got)
		}
	}
}

func TestSearchLimitAndOrder(t *testing.T) {
	r := registry.Builtin()
	all := r.Search("http", 0)
	if len(all) <= 10 {
		t.Fatalf("Search(%q, 0) returned %d results; want more than 10", "http", len(all))
	}
	for _, limit := range []int{1, 3, 10} {
		got := r.Search("http", limit)
		if len(got) != limit {
			t.Errorf("len(Search(%q, %d)) = %d; want %d", "http", limit, len(got), limit)
		}
		for i := range got {
			if got[i].Port != all[i].Port || got[i].Score != all[i].Score {
				t.Errorf("Search(%q, %d)[%d] = %+v; want the prefix of the unlimited result, %+v", "http", limit, i, got[i], all[i])
			}
		}
	}
	for _, q := range []string{"http", "web server", "database", "remote desktop"} {
		got := r.Search(q, 0)
		if !slices.IsSortedFunc(got, func(a, b registry.Match) int { return b.Score - a.Score }) {
			t.Errorf("Search(%q, 0) is not sorted by Score, highest first", q)
		}
		for _, m := range got {
			if m.Score <= 0 || m.Protos == 0 || (m.Last != 0 && m.Last <= m.Port) {
				t.Errorf("Search(%q, 0) returned %+v; want a positive score, protocols and a proper range", q, m)
			}
		}
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"htps", 5, "https"},
		{"postgre", 3, "postgresql"},
		{"HTTPS", 1, "https"},
		{"imap", 3, "imap"},
	}
	for _, tt := range tests {
		got := registry.Builtin().Suggest(tt.in, tt.n)
		if !slices.Contains(got, tt.want) {
			t.Errorf("Suggest(%q, %d) = %q; want it to contain %q", tt.in, tt.n, got, tt.want)
		}
		if len(got) > tt.n {
			t.Errorf("Suggest(%q, %d) returned %d names; want at most %d", tt.in, tt.n, len(got), tt.n)
		}
	}
}

func TestSuggestNone(t *testing.T) {
	tests := []struct {
		in string
		n  int
	}{
		{"", 5},
		{"   ", 5},
		{"https", 0},
		{"https", -1},
		{"qqqqqqqqqqqqqqqqqqqq", 5},
	}
	for _, tt := range tests {
		if got := registry.Builtin().Suggest(tt.in, tt.n); len(got) != 0 {
			t.Errorf("Suggest(%q, %d) = %q; want none", tt.in, tt.n, got)
		}
	}
}

func FuzzSearch(f *testing.F) {
	for _, s := range []string{"postgres", "remote desktop", "imaps", "", "  ", "zzzzqqq", "MS-WBT server",
		"\xff\xfe", "ß", "İstanbul", "x11 6000"} {
		f.Add(s)
	}
	r := registry.Builtin()
	f.Fuzz(func(t *testing.T, q string) {
		got := r.Search(q, 3)
		if len(got) > 3 {
			t.Errorf("Search(%q, 3) returned %d results", q, len(got))
		}
		if !slices.IsSortedFunc(got, func(a, b registry.Match) int { return b.Score - a.Score }) {
			t.Errorf("Search(%q, 3) is not sorted by Score", q)
		}
		if s := r.Suggest(q, 3); len(s) > 3 {
			t.Errorf("Suggest(%q, 3) returned %d names", q, len(s))
		}
	})
}
