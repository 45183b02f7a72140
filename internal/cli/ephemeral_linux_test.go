package cli

import (
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/portctl/portctl/internal/testnet"
)

// TestIntegrationEphemeralNetNS: with --netns, ephemeral reports the
// namespace's own port range, not this one's.
func TestIntegrationEphemeralNetNS(t *testing.T) {
	requireRoot(t)
	n := testnet.NewNamespace(t)
	if out, err := exec.Command("ip", "netns", "exec", n.Name, "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=40000 40999").CombinedOutput(); err != nil {
		t.Fatalf("sysctl in %s: %v %s", n.Name, err, out)
	}
	code, out, stderr := runCLI(t, "ephemeral", "--netns", n.Name, "--json")
	var res struct {
		Range string `json:"range"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.Range != "40000-40999" {
		t.Errorf("ephemeral --netns %s: exit %d, range %q (%v, stderr %q); want the namespace's 40000-40999", n.Name, code, res.Range, err, stderr)
	}
}
