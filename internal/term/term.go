// Package term holds the command line's streams: stdin, stdout and stderr,
// whether they are terminals, colour, terminal width and the table printer.
// Tests build streams over buffers with Test.
package term

import (
	"bytes"
	"io"
	"os"
	"strconv"

	xterm "golang.org/x/term"
)

// IO is the set of streams a command talks to. It is not safe for
// concurrent use.
type IO struct {
	In  io.Reader
	Out io.Writer // results
	Err io.Writer // diagnostics

	outTTY  bool
	errTTY  bool
	inTTY   bool
	color   bool
	width   int
	outFile *os.File
}

// System returns the process's own streams. Colour is on when stdout is a
// terminal, NO_COLOR is unset or empty and TERM is not "dumb".
func System() *IO {
	outTTY := xterm.IsTerminal(int(os.Stdout.Fd()))
	s := &IO{
		In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		outTTY:  outTTY,
		errTTY:  xterm.IsTerminal(int(os.Stderr.Fd())),
		inTTY:   xterm.IsTerminal(int(os.Stdin.Fd())),
		outFile: os.Stdout,
	}
	s.color = outTTY && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
	return s
}

// Test returns streams over buffers: stdin reads in, stdout and stderr are
// returned. The streams are not terminals and have no colour unless
// SetTerminal is called.
func Test(in string) (s *IO, stdout, stderr *bytes.Buffer) {
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	return &IO{In: bytes.NewBufferString(in), Out: stdout, Err: stderr, width: 100}, stdout, stderr
}

// SetTerminal makes the streams behave as terminals (for tests).
func (s *IO) SetTerminal(tty, color bool, width int) {
	s.outTTY, s.errTTY, s.inTTY, s.color, s.width = tty, tty, tty, color, width
}

// IsInTerminal reports whether stdin is a terminal, so a question can be
// asked there.
func (s *IO) IsInTerminal() bool { return s.inTTY }

// DisableColor turns colour off, as --no-color asks.
func (s *IO) DisableColor() { s.color = false }

// IsTerminal reports whether stdout is a terminal.
func (s *IO) IsTerminal() bool { return s.outTTY }

// IsErrTerminal reports whether stderr is a terminal (progress bars go there).
func (s *IO) IsErrTerminal() bool { return s.errTTY }

// Color reports whether output may be coloured.
func (s *IO) Color() bool { return s.color }

// Width returns the terminal width in columns; when stdout is not a
// terminal it is COLUMNS or, failing that, 0 (no limit).
func (s *IO) Width() int {
	if s.width > 0 {
		return s.width
	}
	if s.outTTY && s.outFile != nil {
		if w, _, err := xterm.GetSize(int(s.outFile.Fd())); err == nil && w > 0 {
			return w
		}
	}
	if c, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && c > 0 {
		return c
	}
	return 0
}
