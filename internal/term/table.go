package term

import (
	"io"
	"strings"
)

// Table prints rows in aligned columns. The last column wraps at the
// terminal width when there is one, so long descriptions stay readable.
type Table struct {
	header []string
	rows   [][]string
	indent string
}

// NewTable starts a table with the given column headers (none for no
// header row).
func NewTable(header ...string) *Table { return &Table{header: header} }

// Indent sets a prefix written before every line.
func (t *Table) Indent(prefix string) *Table { t.indent = prefix; return t }

// Row adds a row; missing cells are empty.
func (t *Table) Row(cells ...string) { t.rows = append(t.rows, cells) }

// Len returns the number of rows.
func (t *Table) Len() int { return len(t.rows) }

// Render writes the table to w, wrapping the last column to fit width
// columns (0 for no limit). Header cells are styled with st.
func (t *Table) Render(w io.Writer, width int, st Style) error {
	all := t.rows
	if len(t.header) > 0 {
		all = append([][]string{t.header}, t.rows...)
	}
	ncol := 0
	for _, r := range all {
		ncol = max(ncol, len(r))
	}
	if ncol == 0 {
		return nil
	}
	widths := make([]int, ncol)
	for _, r := range all {
		for i := 0; i < len(r) && i < ncol-1; i++ {
			widths[i] = max(widths[i], VisibleLen(r[i]))
		}
	}
	lead := len(t.indent)
	for i := 0; i < ncol-1; i++ {
		lead += widths[i] + 2
	}
	lastWidth := 0
	if width > 0 && width-lead >= 20 {
		lastWidth = width - lead
	}
	var b strings.Builder
	for ri, r := range all {
		var lines []string
		if len(r) == ncol {
			lines = wrap(r[ncol-1], lastWidth)
		} else {
			lines = []string{""}
		}
		for li, line := range lines {
			b.WriteString(t.indent)
			for i := 0; i < ncol-1; i++ {
				cell := ""
				if li == 0 && i < len(r) {
					cell = r[i]
				}
				if ri == 0 && len(t.header) > 0 {
					cell = st.Bold(cell)
				}
				b.WriteString(cell)
				b.WriteString(strings.Repeat(" ", widths[i]-VisibleLen(cell)+2))
			}
			if ri == 0 && len(t.header) > 0 {
				line = st.Bold(line)
			}
			b.WriteString(line)
			s := strings.TrimRight(b.String(), " ")
			b.Reset()
			if _, err := io.WriteString(w, s+"\n"); err != nil {
				return err
			}
		}
	}
	return nil
}

// VisibleLen returns the width of s on a terminal: runes, not counting ANSI
// escape sequences.
func VisibleLen(s string) int { return visibleLen(s) }

// VisibleLenBytes is VisibleLen for a byte slice, without copying it.
func VisibleLenBytes(b []byte) int { return visibleLen(b) }

func visibleLen[T ~string | ~[]byte](s T) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j + 1
			continue
		}
		if s[i]&0xc0 != 0x80 { // not a UTF-8 continuation byte: a new rune
			n++
		}
		i++
	}
	return n
}

// wrap breaks s into lines of at most width runes at spaces (0: no limit).
func wrap(s string, width int) []string {
	if width <= 0 || VisibleLen(s) <= width {
		return []string{s}
	}
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		switch {
		case line == "":
			line = word
		case VisibleLen(line)+1+VisibleLen(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
