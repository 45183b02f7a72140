package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/registry"
)

// Exit codes, decided here and nowhere else. They are documented in the
// README and in `portctl --help`.
const (
	ExitOK       = 0 // success: the answer is yes
	ExitNegative = 1 // a negative answer: no such service, port is free, check failed
	ExitUsage    = 2 // a usage error: bad flag, bad port, bad range
	ExitFailure  = 3 // the work itself failed: I/O, network, permission
)

// usageError is bad input from the user.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// negativeError is a well-formed question whose answer is no. Its message,
// when not empty, goes to stderr.
type negativeError struct{ msg string }

func (e *negativeError) Error() string { return e.msg }

func negativef(format string, args ...any) error {
	return &negativeError{msg: fmt.Sprintf(format, args...)}
}

// statusError asks for a particular exit code: the exit code of the
// command `wait` ran after its targets were ready, or 130 after an
// interrupt. Its message, when not empty, goes to stderr.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// exitCode maps an error from a command to the process exit code, and
// writes its one-line message (with advice where there is some) to stderr.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var (
		ue *usageError
		ne *negativeError
		se *statusError
	)
	code := ExitFailure
	msg := err.Error()
	switch {
	case errors.As(err, &se):
		code = se.code
	case errors.As(err, &ne):
		code = ExitNegative
	case errors.As(err, &ue), errors.Is(err, registry.ErrSyntax):
		code = ExitUsage
	case errors.Is(err, os.ErrPermission), errors.Is(err, firewall.ErrPermission):
		// Which capability, and how to grant it (capability.go).
		msg += permissionAdvice(err)
	}
	if msg != "" {
		fmt.Fprintln(stderr, "portctl: "+oneLine(msg))
	}
	return code
}

// oneLine folds a message onto a single line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
