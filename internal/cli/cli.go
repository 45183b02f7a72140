// Package cli is portctl's command line: the root command, one file per
// command, and the single place (exit.go) where errors become exit codes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/portctl/portctl/internal/term"
)

// Run executes the command line args against the streams and returns the
// process exit code.
func Run(args []string, streams *term.IO) int {
	root := NewRootCmd(streams)
	root.SetArgs(rewriteNmapArgs(args))
	// Ctrl-C and SIGTERM cancel the context: long commands stop cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	return exitCode(classify(root, args, err), streams.Err)
}

const rootLong = `portctl makes the ports of this machine and network visible and controllable.

Exit codes:
  0  success
  1  a negative answer (no such service, the port is free, a check failed)
  2  a usage error (a bad flag, port, range or name)
  3  the work failed (I/O, network, permission)
  wait -- CMD exits with CMD's own code (127 when CMD is not found, 130
  after Ctrl-C)

Set NO_COLOR or pass --no-color to turn colour off.`

// NewRootCmd builds the root command and its subcommands.
func NewRootCmd(streams *term.IO) *cobra.Command {
	var noColor bool
	root := &cobra.Command{
		Use:           "portctl",
		Short:         "Ports, made visible and controllable",
		Long:          rootLong,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			if noColor {
				streams.DisableColor()
			}
		},
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	root.SetIn(streams.In)
	root.SetVersionTemplate("portctl {{.Version}}\n")
	root.PersistentFlags().BoolVar(&noColor, "no-color", false, "turn colour off (as NO_COLOR does)")
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(
		newInfoCmd(streams, nil),
		newSearchCmd(streams, nil),
		newRegistryCmd(streams, nil),
		newCheckCmd(streams, nil),
		newWaitCmd(streams, nil),
		newFreeCmd(streams, nil),
		newVersionCmd(streams),
		newLsCmd(streams, nil),
		newWhoCmd(streams, nil),
		newKillCmd(streams, nil),
		newEphemeralCmd(streams, nil),
		newScanCmd(streams, nil),
		newForwardCmd(streams, nil),
		newAuditCmd(streams, nil),
		newServeCmd(streams, nil),
		newReachCmd(streams, nil),
		newFirewallCmd(streams, nil),
		newGuardCmd(streams, nil),
		newReflectCmd(streams, nil),
		newMapCmd(streams),
		newKnockCmd(streams, nil),
	)
	return root
}

// flagError is the root's flag error function, which every command
// inherits: a bad or missing flag value becomes one line naming the flag,
// the value and what the flag accepts, in place of pflag's message with
// the parser's internals ("strconv.ParseInt: parsing …"); other flag
// errors point at the command's help.
func flagError(c *cobra.Command, err error) error {
	if e, ok := errors.AsType[*pflag.InvalidValueError](err); ok {
		return flagValueError(e.GetFlag(), e.GetValue(), e.Unwrap())
	}
	if e, ok := errors.AsType[*pflag.ValueRequiredError](err); ok {
		f := e.GetFlag()
		if want := flagWants(f); want != "" {
			return usageErrorf("--%s needs a value (want %s)", f.Name, want)
		}
		return usageErrorf("--%s needs a value (see 'portctl %s --help')", f.Name, strings.TrimPrefix(c.CommandPath(), "portctl "))
	}
	return usageErrorf("%s: %v (see 'portctl %s --help')", c.Name(), err, strings.TrimPrefix(c.CommandPath(), "portctl "))
}

// flagValueError says why value is not one flag f takes.
func flagValueError(f *pflag.Flag, value string, cause error) error {
	name, want := "--"+f.Name, flagWants(f)
	outOfRange := errors.Is(cause, strconv.ErrRange)
	_, floatErr := strconv.ParseFloat(value, 64)
	switch kind, size := flagKind(f); kind {
	case "int", "uint":
		switch {
		case kind == "uint" && strings.HasPrefix(strings.TrimSpace(value), "-") && floatErr == nil:
			return usageErrorf("%s %q is negative (want %s)", name, value, want)
		case kind == "int" && outOfRange:
			return usageErrorf("%s %q is out of range (want a whole number from %d to %d)", name, value, int64(-1)<<(size-1), int64(1<<(size-1)-1))
		case outOfRange:
			return usageErrorf("%s %q is out of range (want %s)", name, value, want)
		case floatErr == nil:
			return usageErrorf("%s %q is not a whole number (want %s)", name, value, want)
		}
		return usageErrorf("%s %q is not a number (want %s)", name, value, want)
	case "float":
		if outOfRange {
			return usageErrorf("%s %q is out of range (want %s)", name, value, want)
		}
		return usageErrorf("%s %q is not a number (want %s)", name, value, want)
	case "duration":
		return usageErrorf("%s %q is not a duration (want %s)", name, value, want)
	case "bool":
		return usageErrorf("%s %q is not true or false (want %s)", name, value, want)
	case "ip":
		return usageErrorf("%s %q is not an IP address (want %s)", name, value, want)
	}
	return usageErrorf("%s %q is not accepted: %v", name, value, cause)
}

// flagKind sorts a flag's pflag type into int, uint, float, duration, bool
// or ip, with its size in bits for numbers; "" for the others.
func flagKind(f *pflag.Flag) (kind string, size int) {
	t := f.Value.Type()
	for _, k := range []string{"uint", "int", "float"} {
		if rest, ok := strings.CutPrefix(t, k); ok {
			if rest == "" {
				return k, strconv.IntSize
			}
			if n, err := strconv.Atoi(rest); err == nil {
				return k, n
			}
		}
	}
	switch t {
	case "count":
		return "int", strconv.IntSize
	case "duration", "bool", "ip":
		return t, 0
	}
	return "", 0
}

// flagWants says what values flag f takes, in the words of the other
// messages; "" when its type says nothing more than "a string".
func flagWants(f *pflag.Flag) string {
	switch kind, size := flagKind(f); kind {
	case "int":
		return "a whole number"
	case "uint":
		return fmt.Sprintf("a whole number 0-%d", uint64(1<<size-1))
	case "float":
		return "a number such as 2.5"
	case "duration":
		return "a duration such as 500ms, 2s, 1m"
	case "bool":
		return fmt.Sprintf("--%s=true or --%s=false", f.Name, f.Name)
	case "ip":
		return "an address such as 192.0.2.1 or 2001:db8::1"
	}
	return ""
}

// isNegativeNumber reports whether s looks like "-1", which the flag parser
// takes for a flag.
func isNegativeNumber(s string) bool {
	return len(s) > 1 && s[0] == '-' && '0' <= s[1] && s[1] <= '9'
}

// classify turns cobra's own errors (unknown command, bad flag, wrong
// number of arguments) into usage errors with one clear line.
func classify(root *cobra.Command, args []string, err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	// A negative number looks like a flag to the parser; say what it is.
	if strings.Contains(msg, "unknown shorthand flag") {
		for _, a := range args {
			if isNegativeNumber(a) {
				return usageErrorf("port %s is negative (want a port 0-65535, a range A-B or a service name)", a)
			}
		}
	}
	switch err.(type) {
	case *usageError, *negativeError:
		return err
	}
	if strings.HasPrefix(msg, "unknown command") {
		// cobra says: unknown command "NAME" for "PATH".
		name, parent := "", "portctl"
		if _, rest, ok := strings.Cut(msg, `unknown command "`); ok {
			name, rest, _ = strings.Cut(rest, `"`)
			if _, p, ok := strings.Cut(rest, `for "`); ok {
				parent, _, _ = strings.Cut(p, `"`)
			}
		}
		if parent != "portctl" {
			return usageErrorf("%s takes no argument %q; see '%s --help'", parent, name, parent)
		}
		s := fmt.Sprintf("unknown command %q", name)
		if sug := root.SuggestionsFor(name); len(sug) > 0 {
			s += fmt.Sprintf(" (did you mean %q?)", sug[0])
		}
		return usageErrorf("%s; see 'portctl --help' for the commands", s)
	}
	if isCobraUsage(msg) {
		return usageErrorf("%s", msg)
	}
	return err
}

// isCobraUsage recognises the argument-count errors of cobra's validators.
func isCobraUsage(msg string) bool {
	for _, p := range []string{"accepts ", "requires at least", "requires at most", "invalid argument", "unknown flag", "flag needs"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
