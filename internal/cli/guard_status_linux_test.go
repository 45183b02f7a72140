package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/internal/testnet"
)

// TestIntegrationGuardStatusOverflow: guard --status and audit, in a
// namespace where a listener's accept queue overflowed, name the listener
// and the overflows.
func TestIntegrationGuardStatusOverflow(t *testing.T) {
	name, l := testnet.OverflowedListener(t)

	streams, out, _ := term.Test("")
	if err := runGuardStatus(context.Background(), streams, "/run/netns/"+name, false); err != nil {
		t.Fatalf("runGuardStatus(%s) error = %v", name, err)
	}
	for _, want := range []string{
		"SYN-flood signs in network namespace " + name,
		fmt.Sprintf("%s  cli.test/", l),
		"full",
		fmt.Sprintf("raise the backlog of cli.test on :%d (listen backlog 1, net.core.somaxconn", l.Port()),
		"turned away since the namespace was made by a full accept queue (ListenOverflows)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("runGuardStatus(%s) output lacks %q:\n%s", name, want, out)
		}
	}

	_, js, stderr := runCLI(t, "audit", "--netns", name, "--json", "--fail-on", "never")
	d := parseAuditJSON(t, js)
	found := map[string]bool{}
	for _, f := range d.Findings {
		switch {
		case f.Rule == "accept-queue-full" && f.Socket.Local == l.String() && f.Severity == "medium":
			found[f.Rule] = true
		case f.Rule == "listen-overflows" && f.Severity == "low":
			found[f.Rule] = true
		}
	}
	if !found["accept-queue-full"] || !found["listen-overflows"] {
		t.Errorf("audit --netns %s found %v; want accept-queue-full for %s and listen-overflows (stderr %q)\n%s", name, found, l, stderr, js)
	}
}
