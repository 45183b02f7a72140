package registry

import (
	"strings"
	"testing"
)

// FuzzCleanText checks that cleanText's shortcut for text that needs no
// folding gives what folding gives.
func FuzzCleanText(f *testing.F) {
	for _, s := range []string{"", "Echo", "World Wide Web HTTP", " lead", "trail ", "two  spaces", "a\nb", "a\tb", "Ari\u00ebn", "nbsp\u00a0here", "nel\u0085here"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := cleanText(s), strings.Join(strings.Fields(s), " "); got != want {
			t.Errorf("cleanText(%q) = %q; want %q", s, got, want)
		}
	})
}
