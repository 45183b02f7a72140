package term

import (
	"bytes"
	"strings"
	"testing"
)

func TestVisibleLen(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"abc", 3},
		{"\x1b[1mbold\x1b[0m", 4},
		{"→ é", 3},
		{"\x1b[31mHIGH\x1b[0m x", 6},
	}
	for _, tt := range tests {
		if got := VisibleLen(tt.in); got != tt.want {
			t.Errorf("VisibleLen(%q) = %d; want %d", tt.in, got, tt.want)
		}
	}
}

func TestTableAlignsAndWraps(t *testing.T) {
	tb := NewTable("PORT", "NAME", "DESCRIPTION")
	tb.Row("22", "ssh", "The Secure Shell (SSH) Protocol")
	tb.Row("443", "https", "http protocol over TLS/SSL, the web's encrypted transport")
	var b bytes.Buffer
	if err := tb.Render(&b, 40, Style{}); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"PORT  NAME   DESCRIPTION",
		"22    ssh    The Secure Shell (SSH)",
		"             Protocol",
		"443   https  http protocol over TLS/SSL,",
		"             the web's encrypted",
		"             transport",
		"",
	}, "\n")
	if b.String() != want {
		t.Errorf("Render =\n%s\nwant\n%s", b.String(), want)
	}
}

func TestTableNoWidthNoWrap(t *testing.T) {
	tb := NewTable().Indent("  ")
	tb.Row("a", strings.Repeat("x", 300))
	var b bytes.Buffer
	tb.Render(&b, 0, Style{})
	if strings.Count(b.String(), "\n") != 1 || !strings.HasPrefix(b.String(), "  a  x") {
		t.Errorf("Render without width = %q; want one indented line", b.String())
	}
}

func TestStyleOffWritesPlainText(t *testing.T) {
	s, _, _ := Test("")
	if got := s.Style().Red("HIGH"); got != "HIGH" {
		t.Errorf("Red without colour = %q", got)
	}
	s.SetTerminal(true, true, 80)
	if got := s.Style().Red("HIGH"); got == "HIGH" || !strings.Contains(got, "HIGH") {
		t.Errorf("Red with colour = %q", got)
	}
	s.DisableColor()
	if s.Color() {
		t.Error("DisableColor left colour on")
	}
}
