package cli

import (
	"fmt"
	"testing"

	"github.com/portctl/portctl/internal/testnet"
)

// TestIntegrationScanFilteredAndMany scans a namespace with many addresses
// and a DROP rule: exact states on every address.
func TestIntegrationScanFilteredAndMany(t *testing.T) {
	n := testnet.NewNamespace(t)
	open := n.Listen(t, 0)
	n.Nft(t, "add rule inet t in tcp dport 7001 drop")
	code, out, stderr := runCLI(t, "scan", "-sT", n.Peer.String(), "-p", fmt.Sprintf("7000-7002,%d", open.Port()), "--timeout", "300ms", "--jsonl")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := jsonlPorts(t, out)
	p := n.Peer.String()
	want := map[string]string{p + ":7000": "closed", p + ":7001": "filtered", p + ":7002": "closed", fmt.Sprintf("%s:%d", p, open.Port()): "open"}
	if !maps2Equal(got, want) {
		t.Errorf("scan of the namespace = %v; want %v", got, want)
	}
}
