package probe

import (
	"strconv"
	"strings"
)

// maxEvidence bounds the bytes of evidence kept.
const maxEvidence = 256

// Escape renders bytes received from a server for display: printable
// ASCII as is, \r \n \t and \\ escaped, every other byte as \xHH, and at
// most 256 bytes of input, with "…" when there was more.
func Escape(b []byte) string {
	var s strings.Builder
	more := len(b) > maxEvidence
	if more {
		b = b[:maxEvidence]
	}
	for _, c := range b {
		switch {
		case c == '\\':
			s.WriteString(`\\`)
		case c == '\r':
			s.WriteString(`\r`)
		case c == '\n':
			s.WriteString(`\n`)
		case c == '\t':
			s.WriteString(`\t`)
		case c >= 0x20 && c < 0x7f:
			s.WriteByte(c)
		default:
			s.WriteString(`\x`)
			if c < 0x10 {
				s.WriteByte('0')
			}
			s.WriteString(strconv.FormatUint(uint64(c), 16))
		}
	}
	if more {
		s.WriteString("…")
	}
	return s.String()
}

// printable returns s with every byte outside printable ASCII dropped and
// surrounding space trimmed: what a server names itself may be anything.
func printable(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			out = append(out, c)
		}
	}
	return strings.TrimSpace(string(out))
}

// firstLine returns b up to its first CR or LF.
func firstLine(b []byte) []byte {
	for i, c := range b {
		if c == '\r' || c == '\n' {
			return b[:i]
		}
	}
	return b
}
