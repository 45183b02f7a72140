package cli

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/internal/testnet"
)

// The refusals of too many addresses and of CIDRs with bits beyond their
// prefix are run in a namespace of their own
// (TestIntegrationScanRefusesBeforeProbing): were they to fail, the scan
// would go out to the internet.

// TestScanNumericFlags: a negative --rate, --concurrency, --timeout or
// --max-retries is one line naming the value and what is accepted.
func TestScanNumericFlags(t *testing.T) {
	for _, tt := range []struct {
		flag, value, want string
	}{
		{"--rate", "-1", "portctl: --rate -1 is negative (want probes a second, or 0 for no cap)\n"},
		{"--concurrency", "-5", "portctl: --concurrency -5 is negative (want probes in flight, or 0 for the default 1024)\n"},
		{"--timeout", "-2s", "portctl: --timeout -2s is negative (want a duration such as 500ms, 2s, 1m, or 0 to adapt to round trips)\n"},
		{"--max-retries", "-1", "portctl: --max-retries -1 is negative (want 0 or more; 0 for none)\n"},
	} {
		args := []string{"scan", "-sT", "127.0.0.1", "-p", "1", tt.flag, tt.value}
		code, out, stderr := runCLI(t, args...)
		if code != ExitUsage || stderr != tt.want || out != "" {
			t.Errorf("portctl %q = exit %d, stderr %q, stdout %q; want exit 2, stderr %q and no output", args, code, stderr, out, tt.want)
		}
	}
}

// TestScanZeroMeansDefault: 0 is the documented default of --rate (no
// cap), --concurrency (1024), --timeout (adaptive) and --max-retries
// (none), and such a scan probes: an open port is found, and a host with
// only a closed port is counted in the summary, though not listed.
func TestScanZeroMeansDefault(t *testing.T) {
	open := testnet.Listen(t, "127.0.0.1:0")
	zeros := []string{"--rate", "0", "--concurrency", "0", "--timeout", "0", "--max-retries", "0"}
	code, out, stderr := runCLI(t, append([]string{"scan", "-sT", "127.0.0.1", "-p", strconv.Itoa(int(open.Port()))}, zeros...)...)
	want := regexp.MustCompile(fmt.Sprintf(`(?m)^  %d/tcp +open .*\n(.*\n)*^1 open port on 1 of 1 host scanned in [0-9.]+s$`, open.Port()))
	if code != ExitOK || !want.MatchString(out) {
		t.Errorf("scan of an open port with zeros: exit %d, stderr %q, output:\n%s\nwant port %d open", code, stderr, out, open.Port())
	}
	closed := testnet.ClosedPort(t, "127.0.0.1")
	code, out, stderr = runCLI(t, append([]string{"scan", "-sT", "127.0.0.1", "-p", strconv.Itoa(int(closed.Port()))}, zeros...)...)
	want = regexp.MustCompile(`^0 open ports on 0 of 1 host scanned in [0-9.]+s; 1 host without open ports: 1 closed \(-a lists them\)\n$`)
	if code != ExitOK || !want.MatchString(out) {
		t.Errorf("scan of a closed port with zeros: exit %d, stderr %q, output %q; want the closed port counted", code, stderr, out)
	}
}

func TestScanAllowLargeLandsInOptions(t *testing.T) {
	streams, _, _ := term.Test("")
	var got scanOptions
	cmd := newScanCmd(streams, func(_ context.Context, o scanOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"10.0.0.0/8", "--allow-large"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !got.AllowLarge {
		t.Errorf("scan --allow-large: AllowLarge = false; want true")
	}
}

func TestAddrCountAndQuoteSpecs(t *testing.T) {
	for n, want := range map[uint64]string{1: "1", 3: "3", 1 << 24: "2^24", 1<<24 + 1: "16777217", 1 << 32: "2^32"} {
		if got := addrCount(n); got != want {
			t.Errorf("addrCount(%d) = %q; want %q", n, got, want)
		}
	}
	for _, tt := range []struct {
		specs []string
		want  string
	}{
		{[]string{"0.0.0.0/0"}, `"0.0.0.0/0"`},
		{[]string{"a", "b", "c"}, `"a", "b", "c"`},
		{[]string{"a", "b", "c", "d", "e"}, `"a", "b", "c", and 2 more`},
	} {
		if got := quoteSpecs(tt.specs); got != tt.want {
			t.Errorf("quoteSpecs(%q) = %q; want %q", tt.specs, got, tt.want)
		}
	}
}
