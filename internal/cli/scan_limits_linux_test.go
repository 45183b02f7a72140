package cli

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/internal/testnet"
)

// TestIntegrationScanRefusesBeforeProbing runs scans that must be refused
// (a CIDR with bits beyond its prefix, more than 2^24 addresses) through
// the real command line, alone in a namespace of its own whose default
// routes lead into a veth pair with both ends in that namespace, so that
// a probe, had one started, would go out and be counted by an nftables
// rule on the output hook and by the kernel's TCP OutSegs. First a scan
// that is allowed shows that both count; then every refusal must leave
// them where they were.
func TestIntegrationScanRefusesBeforeProbing(t *testing.T) {
	if testnet.Isolated(t) {
		return
	}
	// Both ends here: what is routed out stays in this namespace.
	testnet.Run(t, "ip", "link", "add", "ptout0", "type", "veth", "peer", "name", "ptout1")
	testnet.Run(t, "ip", "link", "set", "ptout0", "up")
	testnet.Run(t, "ip", "link", "set", "ptout1", "up")
	testnet.Run(t, "ip", "addr", "add", "192.0.2.1/24", "dev", "ptout0")
	testnet.Run(t, "ip", "neigh", "replace", "192.0.2.2", "lladdr", "02:00:00:00:00:02", "dev", "ptout0", "nud", "permanent")
	testnet.Run(t, "ip", "route", "add", "default", "via", "192.0.2.2", "dev", "ptout0")
	v6 := os.WriteFile("/proc/sys/net/ipv6/conf/ptout0/accept_dad", []byte("0"), 0) == nil
	if v6 {
		testnet.Run(t, "ip", "-6", "addr", "add", "2001:db8:ffff::1/64", "dev", "ptout0", "nodad")
		testnet.Run(t, "ip", "-6", "neigh", "replace", "2001:db8:ffff::2", "lladdr", "02:00:00:00:00:02", "dev", "ptout0", "nud", "permanent")
		testnet.Run(t, "ip", "-6", "route", "add", "default", "via", "2001:db8:ffff::2", "dev", "ptout0")
	}
	// Only TCP, so that neighbour discovery and the like do not count.
	testnet.Run(t, "nft", "add", "chain", "inet", "t", "out", "{", "type", "filter", "hook", "output", "priority", "0", ";", "}")
	testnet.Run(t, "nft", "add", "rule", "inet", "t", "out", "meta", "l4proto", "tcp", "counter")

	// Allowed scans are counted: the connect engine's SYN in both, and
	// the SYN engine's raw one in the nftables counter.
	before := tcpSent(t)
	code, _, stderr := runCLI(t, "scan", "-sT", "198.51.100.7", "-p", "80", "--timeout", "100ms", "--max-retries", "0")
	after := tcpSent(t)
	if code != ExitOK || after.nft <= before.nft || after.outSegs <= before.outSegs {
		t.Fatalf("an allowed connect scan: exit %d (stderr %q), TCP packets counted %+v before, %+v after; want exit 0 and both counts up", code, stderr, before, after)
	}
	t.Logf("an allowed connect scan of one port: %d TCP packets through nftables, %d TCP segments out", after.nft-before.nft, after.outSegs-before.outSegs)
	before = after
	code, _, stderr = runCLI(t, "scan", "-sS", "198.51.100.7", "-p", "80", "--timeout", "100ms", "--max-retries", "0")
	after = tcpSent(t)
	if code != ExitOK || after.nft <= before.nft {
		t.Fatalf("an allowed SYN scan: exit %d (stderr %q), TCP packets counted %+v before, %+v after; want exit 0 and the nftables count up", code, stderr, before, after)
	}

	tests := []struct {
		name string
		args []string
		want string // a part of the one line on stderr
		v6   bool
	}{
		{"bits beyond /0", []string{"10.0.0.0/0"}, `"10.0.0.0/0" has bits set beyond its /0 prefix: it would be 0.0.0.0/0 (every IPv4 address); did you mean 10.0.0.0/8?`, false},
		{"bits beyond /16", []string{"192.168.1.0/16"}, "did you mean 192.168.1.0/24?", false},
		{"bits beyond in an exclusion", []string{"198.51.100.0/24", "--exclude", "198.51.100.1/24"}, `exclusion "198.51.100.1/24" has bits set beyond its /24 prefix`, false},
		{"bits beyond, IPv6", []string{"2001:db8::/16"}, "did you mean 2001:db8::/32?", true},
		{"the whole internet", []string{"0.0.0.0/0"}, `target "0.0.0.0/0" is 2^32 addresses, more than the 2^24 (an IPv4 /8) a scan takes without --allow-large`, false},
		{"a /7", []string{"198.0.0.0/7"}, "2^25 addresses", false},
		{"two /8s", []string{"198.0.0.0/8", "199.0.0.0/8"}, `targets "198.0.0.0/8", "199.0.0.0/8" are 2^25 addresses`, false},
		{"IPv6 /100", []string{"2001:db8::/100"}, "2^28 addresses", true},
	}
	for _, engine := range []string{"-sT", "-sS"} {
		for _, tt := range tests {
			if tt.v6 && !v6 {
				continue
			}
			t.Run(engine+" "+tt.name, func(t *testing.T) {
				args := append([]string{"scan", engine, "-p", "80", "--timeout", "100ms"}, tt.args...)
				before := tcpSent(t)
				code, out, stderr := runCLI(t, args...)
				after := tcpSent(t)
				if code != ExitUsage || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 || out != "" {
					t.Errorf("portctl %q = exit %d, stderr %q, stdout %q; want exit 2 and one line containing %q", args, code, stderr, out, tt.want)
				}
				if after != before {
					t.Errorf("portctl %q sent TCP packets: counted %+v before, %+v after; want none", args, before, after)
				}
			})
		}
	}

	// With --allow-large the large scan passes the check: here it starts
	// with its context already cancelled, and ends as interrupted.
	streams, _, errb := term.Test("")
	root := NewRootCmd(streams)
	args := []string{"scan", "-sT", "198.0.0.0/7", "-p", "80", "--allow-large"}
	root.SetArgs(rewriteNmapArgs(args))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if code := exitCode(classify(root, args, root.ExecuteContext(ctx)), errb); code != 130 {
		t.Errorf("portctl %q with a cancelled context = exit %d, stderr %q; want 130 (interrupted)", args, code, errb)
	}
}

// tcpCounts are this namespace's counts of TCP packets sent.
type tcpCounts struct {
	nft     int // matched by the rule in inet t out
	outSegs int // the kernel's TCP OutSegs
}

var nftPackets = regexp.MustCompile(`counter packets (\d+)`)

// tcpSent reads the counts.
func tcpSent(t *testing.T) tcpCounts {
	t.Helper()
	var c tcpCounts
	out, err := exec.Command("nft", "list", "chain", "inet", "t", "out").CombinedOutput()
	m := nftPackets.FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("reading the nftables counter: %v: %s", err, out)
	}
	c.nft, _ = strconv.Atoi(string(m[1]))
	snmp, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for line := range strings.Lines(string(snmp)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, name := range names {
			if name == "OutSegs" && i < len(f) {
				c.outSegs, _ = strconv.Atoi(f[i])
			}
		}
	}
	return c
}
