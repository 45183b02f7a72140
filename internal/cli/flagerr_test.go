package cli

import (
	"context"
	"testing"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/internal/term"
)

// TestFlagValueErrors: a bad or missing flag value, of any type and on
// any command, is one line that names the flag, the value and what the
// flag takes, without the parser's internals.
func TestFlagValueErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // all of stderr
	}{
		{"int: not a number", []string{"ls", "--pid", "abc"},
			`portctl: --pid "abc" is not a number (want a whole number)`},
		{"int: a fraction", []string{"ls", "--pid=1.5"},
			`portctl: --pid "1.5" is not a whole number (want a whole number)`},
		{"int: too large, by its shorthand", []string{"free", "-n", "99999999999999999999"},
			`portctl: --count "99999999999999999999" is out of range (want a whole number from -9223372036854775808 to 9223372036854775807)`},
		{"int: scan --rate", []string{"scan", "127.0.0.1", "--rate", "fast"},
			`portctl: --rate "fast" is not a number (want a whole number)`},
		{"int: missing", []string{"search", "ssh", "--limit"},
			`portctl: --limit needs a value (want a whole number)`},
		{"duration: no unit", []string{"scan", "127.0.0.1", "--timeout", "5"},
			`portctl: --timeout "5" is not a duration (want a duration such as 500ms, 2s, 1m)`},
		{"duration: by its shorthand", []string{"wait", "-t", "soon", "127.0.0.1:1"},
			`portctl: --timeout "soon" is not a duration (want a duration such as 500ms, 2s, 1m)`},
		{"duration: check", []string{"check", "127.0.0.1:1", "--timeout", "1x"},
			`portctl: --timeout "1x" is not a duration (want a duration such as 500ms, 2s, 1m)`},
		{"duration: missing", []string{"kill", "1", "--timeout"},
			`portctl: --timeout needs a value (want a duration such as 500ms, 2s, 1m)`},
		{"float: not a number", []string{"ephemeral", "--warn", "half"},
			`portctl: --warn "half" is not a number (want a number such as 2.5)`},
		{"float: too large", []string{"ephemeral", "--warn", "1e999"},
			`portctl: --warn "1e999" is out of range (want a number such as 2.5)`},
		{"bool", []string{"scan", "127.0.0.1", "--json=maybe"},
			`portctl: --json "maybe" is not true or false (want --json=true or --json=false)`},
		{"bool: the root's", []string{"ls", "--no-color=perhaps"},
			`portctl: --no-color "perhaps" is not true or false (want --no-color=true or --no-color=false)`},
		{"string: missing", []string{"scan", "--exclude"},
			`portctl: --exclude needs a value (see 'portctl scan --help')`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != ExitUsage || stderr != tt.want+"\n" {
				t.Errorf("portctl %q = exit %d, stderr %q; want exit 2, stderr %q", tt.args, code, stderr, tt.want+"\n")
			}
		})
	}
}

// TestFlagValueErrorsUint covers the unsigned types, which no command has
// yet, through a command added to the real root.
func TestFlagValueErrorsUint(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--port", "70000"}, `portctl: --port "70000" is out of range (want a whole number 0-65535)`},
		{[]string{"--port", "-1"}, `portctl: --port "-1" is negative (want a whole number 0-65535)`},
		{[]string{"--port", "http"}, `portctl: --port "http" is not a number (want a whole number 0-65535)`},
		{[]string{"--port", "80.5"}, `portctl: --port "80.5" is not a whole number (want a whole number 0-65535)`},
		{[]string{"--count", "-3"}, `portctl: --count "-3" is negative (want a whole number 0-18446744073709551615)`},
		{[]string{"--port"}, `portctl: --port needs a value (want a whole number 0-65535)`},
	}
	for _, tt := range tests {
		streams, _, errb := term.Test("")
		root := NewRootCmd(streams)
		var port uint16
		var count uint
		cmd := &cobra.Command{Use: "uints", RunE: func(*cobra.Command, []string) error { return nil }}
		cmd.Flags().Uint16Var(&port, "port", 0, "a port")
		cmd.Flags().UintVar(&count, "count", 0, "a count")
		root.AddCommand(cmd)
		args := append([]string{"uints"}, tt.args...)
		root.SetArgs(args)
		code := exitCode(classify(root, args, root.ExecuteContext(context.Background())), errb)
		if code != ExitUsage || errb.String() != tt.want+"\n" {
			t.Errorf("portctl %q = exit %d, stderr %q; want exit 2, stderr %q", args, code, errb.String(), tt.want+"\n")
		}
	}
}
