package cli

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/registry"
)

func TestFreeFlagsLandInOptions(t *testing.T) {
	r := registry.Range{First: 3000, Last: 3100}
	tests := []struct {
		args []string
		want freeOptions
	}{
		{nil, freeOptions{N: 1}},
		{[]string{"-n", "3", "--range", "3000-3100", "--near", "3050", "--both", "--json"},
			freeOptions{N: 3, Range: &r, Near: 3050, Both: true, JSON: true}},
		{[]string{"--near", "8080"}, freeOptions{N: 1, Near: 8080}},
	}
	for _, tt := range tests {
		streams, _, _ := term.Test("")
		var got freeOptions
		cmd := newFreeCmd(streams, func(o freeOptions) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("free %q: %v", tt.args, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("free %q options (-want +got):\n%s", tt.args, diff)
		}
	}
}

func TestFreeUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{"backwards range", []string{"free", "--range", "1-0"}, []string{"1-0", "A <= B"}},
		{"bad range", []string{"free", "--range", "abc"}, []string{"abc"}},
		{"port 0 only", []string{"free", "--range", "0-0"}, []string{"0-0"}},
		{"zero count", []string{"free", "-n", "0"}, []string{"-n 0", "1-65535"}},
		{"negative count", []string{"free", "-n", "-2"}, []string{"-2"}},
		{"near zero", []string{"free", "--near", "0"}, []string{"--near 0", "1-65535"}},
		{"near too large", []string{"free", "--near", "70000"}, []string{"70000"}},
		{"near outside range", []string{"free", "--near", "80", "--range", "3000-3010"}, []string{"80", "3000-3010"}},
		{"argument", []string{"free", "3000"}, []string{"3000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != ExitUsage || stdout != "" {
				t.Errorf("portctl %q exit = %d, stdout %q; want %d and nothing (stderr %q)", tt.args, code, stdout, ExitUsage, stderr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("portctl %q stderr = %q; want it to mention %q", tt.args, stderr, w)
				}
			}
		})
	}
}

// bindBoth binds p on 127.0.0.1 and ::1 for TCP (and UDP when udp is set)
// until the test ends, and reports the first failure.
func bindBoth(t *testing.T, p uint16, udp bool) error {
	t.Helper()
	for _, host := range []string{"127.0.0.1", "::1"} {
		addr := net.JoinHostPort(host, strconv.Itoa(int(p)))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		t.Cleanup(func() { l.Close() })
		if udp {
			c, err := net.ListenPacket("udp", addr)
			if err != nil {
				return err
			}
			t.Cleanup(func() { c.Close() })
		}
	}
	return nil
}

func TestFreeRun(t *testing.T) {
	code, out, stderr := runCLI(t, "free", "-n", "5", "--both", "--json")
	if code != ExitOK || stderr != "" {
		t.Fatalf("free -n 5 --both: exit %d, stderr %q", code, stderr)
	}
	var doc freeDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("free --json is not JSON: %v\n%s", err, out)
	}
	if doc.Protocols != "tcp/udp" || doc.Families != "ipv4/ipv6" || len(doc.Ports) != 5 || doc.Range == "" {
		t.Fatalf("free -n 5 --both --json = %+v; want 5 tcp/udp ports on ipv4/ipv6", doc)
	}
	seen := map[uint16]bool{}
	for _, p := range doc.Ports {
		if seen[p] {
			t.Errorf("port %d twice in %v", p, doc.Ports)
		}
		seen[p] = true
		if err := bindBoth(t, p, true); err != nil {
			t.Errorf("port %d from free is not free: %v", p, err)
		}
	}

	// Plain output is one port per line, so that PORT=$(portctl free) works.
	code, out, _ = runCLI(t, "free")
	if p, err := strconv.Atoi(strings.TrimSuffix(out, "\n")); code != ExitOK || err != nil || p < 1024 || p > 65535 {
		t.Errorf("free = %d, %q; want one port 1024-65535 and a newline", code, out)
	}
}

func TestFreeNear(t *testing.T) {
	_, out, _ := runCLI(t, "free")
	p := strings.TrimSpace(out)
	code, out, _ := runCLI(t, "free", "--near", p)
	if code != ExitOK || strings.TrimSpace(out) != p {
		t.Fatalf("free --near %s while it is free = %d, %q; want %s", p, code, out, p)
	}
	n, _ := strconv.Atoi(p)
	if err := bindBoth(t, uint16(n), false); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "free", "--near", p)
	got, err := strconv.Atoi(strings.TrimSpace(out))
	if code != ExitOK || err != nil || got == n || got < n-50 || got > n+50 {
		t.Errorf("free --near %s while we hold it = %d, %q; want a neighbour", p, code, out)
	}
}

func TestFreeRangeFullyHeld(t *testing.T) {
	// Three consecutive ports that we hold.
	var first uint16
	for attempt := 0; first == 0; attempt++ {
		if attempt == 20 {
			t.Skip("found no three consecutive free ports to hold")
		}
		_, out, _ := runCLI(t, "free")
		p, _ := strconv.Atoi(strings.TrimSpace(out))
		p = min(p, 65533)
		ok := true
		for q := p; q < p+3 && ok; q++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
			if ok = err == nil; ok {
				t.Cleanup(func() { l.Close() })
			}
		}
		if ok {
			first = uint16(p)
		}
	}
	rng := fmt.Sprintf("%d-%d", first, first+2)
	code, out, stderr := runCLI(t, "free", "--range", rng)
	if code != ExitNegative || out != "" {
		t.Errorf("free --range %s (all held) = %d, stdout %q; want %d and nothing", rng, code, out, ExitNegative)
	}
	if !strings.Contains(stderr, "no free tcp port in "+rng) {
		t.Errorf("free --range %s stderr = %q; want it to say no port is free there", rng, stderr)
	}
	// Asking for two when one is free prints that one and exits 1.
	code, out, stderr = runCLI(t, "free", "--range", fmt.Sprintf("%d-%d", first, first+3), "-n", "2")
	if code != ExitNegative || strings.Count(out, "\n") > 1 || !strings.Contains(stderr, "of 2") && !strings.Contains(stderr, "no free") {
		t.Errorf("free -n 2 with at most one free = %d, %q, %q; want exit 1, what was found, and a message", code, out, stderr)
	}
}

func TestFreeNearExcludedSaysWhy(t *testing.T) {
	code, out, stderr := runCLI(t, "free", "--near", "80")
	if code != ExitOK || out == "" || !strings.Contains(stderr, "80 is outside the default range") || !strings.Contains(stderr, "--range") {
		t.Errorf("free --near 80 = %d, %q, %q; want a port and a note on why 80 is not offered", code, out, stderr)
	}
}
