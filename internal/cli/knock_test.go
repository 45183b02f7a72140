package cli

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/guard/spa"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/probe"
)

func TestKnockFlagsLandInOptions(t *testing.T) {
	base := knockOptions{Delay: 200 * time.Millisecond, For: 30 * time.Second, Port: 62201}
	with := func(f func(*knockOptions)) knockOptions {
		o := base
		f(&o)
		return o
	}
	tests := []struct {
		args []string
		want knockOptions
	}{
		{[]string{"gate.example", "tcp/7000,udp/8000,9000"}, with(func(o *knockOptions) {
			o.Host = "gate.example"
			o.Sequence = []knockStep{{"tcp", 7000}, {"udp", 8000}, {"tcp", 9000}}
		})},
		{[]string{"[::1]", "UDP/1", "--delay", "1s", "-6", "--quiet", "--json"}, with(func(o *knockOptions) {
			o.Host, o.Sequence, o.Delay, o.Family, o.Quiet, o.JSON = "::1", []knockStep{{"udp", 1}}, time.Second, probe.IPv6, true, true
		})},
		{[]string{"-4", "192.0.2.1", "65535", "--delay", "0s"}, with(func(o *knockOptions) {
			o.Host, o.Sequence, o.Delay, o.Family = "192.0.2.1", []knockStep{{"tcp", 65535}}, 0, probe.IPv4
		})},
		{[]string{"gate.example", "--spa", "--key", "k", "--open", "tcp/22"}, with(func(o *knockOptions) {
			o.Host, o.SPA, o.KeyFile, o.Open = "gate.example", true, "k", knockStep{"tcp", 22}
		})},
		{[]string{"2001:db8::1", "--spa", "--key", "k", "--open", "udp/51820", "--for", "5m", "--port", "4000", "--addr", "203.0.113.9"}, with(func(o *knockOptions) {
			o.Host, o.SPA, o.KeyFile, o.Open, o.For, o.Port, o.Addr = "2001:db8::1", true, "k", knockStep{"udp", 51820}, 5*time.Minute, 4000, netip.MustParseAddr("203.0.113.9")
		})},
		{[]string{"--new-key", "ed25519", "spa.key"}, with(func(o *knockOptions) { o.NewKey, o.KeyPath = "ed25519", "spa.key" })},
		{[]string{"--new-key", "hmac", "spa.key"}, with(func(o *knockOptions) { o.NewKey, o.KeyPath = "hmac", "spa.key" })},
	}
	for _, tt := range tests {
		streams, _, _ := term.Test("")
		var got knockOptions
		cmd := newKnockCmd(streams, func(_ context.Context, o knockOptions) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("knock %q: %v", tt.args, err)
		}
		if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("knock %q options (-want +got):\n%s", tt.args, diff)
		}
	}
}

func TestKnockUsageErrors(t *testing.T) {
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists")
	os.WriteFile(exists, []byte("x"), 0o600)
	tests := []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{"no arguments", []string{"knock"}, []string{"HOST SEQUENCE"}},
		{"no sequence", []string{"knock", "127.0.0.1"}, []string{"HOST SEQUENCE", "got 1"}},
		{"port 0", []string{"knock", "127.0.0.1", "tcp/0"}, []string{`"tcp/0"`, "out of range", "1-65535"}},
		{"port too large", []string{"knock", "127.0.0.1", "7000,70000"}, []string{`"70000"`, "out of range", "PROTO/PORT"}},
		{"unknown protocol", []string{"knock", "127.0.0.1", "sctp/7000"}, []string{`"sctp"`, "tcp or udp"}},
		{"not a port", []string{"knock", "127.0.0.1", "tcp/ssh"}, []string{`"ssh"`, "not a number"}},
		{"empty knock", []string{"knock", "127.0.0.1", "7000,,8000"}, []string{"no port"}},
		{"empty sequence", []string{"knock", "127.0.0.1", ""}, []string{"empty SEQUENCE"}},
		{"negative delay", []string{"knock", "127.0.0.1", "7000", "--delay=-1s"}, []string{"--delay", "-1s"}},
		{"bad delay", []string{"knock", "127.0.0.1", "7000", "--delay", "soon"}, []string{"--delay", "soon"}},
		{"IPv6 literal with -4", []string{"knock", "::1", "7000", "-4"}, []string{`"::1"`, "-4"}},
		{"IPv4 literal with -6", []string{"knock", "127.0.0.1", "7000", "-6"}, []string{`"127.0.0.1"`, "-6"}},
		{"--open without --spa", []string{"knock", "127.0.0.1", "7000", "--open", "tcp/22"}, []string{"--open is for --spa"}},
		{"--spa without --open", []string{"knock", "127.0.0.1", "--spa", "--key", exists}, []string{"--open PROTO/PORT"}},
		{"--spa without --key", []string{"knock", "127.0.0.1", "--spa", "--open", "tcp/22"}, []string{"--key FILE"}},
		{"--spa with a sequence", []string{"knock", "127.0.0.1", "7000", "--spa", "--key", exists, "--open", "22"}, []string{"one HOST", "got 2"}},
		{"bad --open", []string{"knock", "127.0.0.1", "--spa", "--key", exists, "--open", "icmp/1"}, []string{`--open "icmp/1"`, "tcp or udp"}},
		{"--open port 0", []string{"knock", "127.0.0.1", "--spa", "--key", exists, "--open", "tcp/0"}, []string{`--open "tcp/0"`, "1-65535"}},
		{"--port 0", []string{"knock", "127.0.0.1", "--spa", "--key", exists, "--open", "22", "--port", "0"}, []string{"--port 0", "1-65535"}},
		{"--port too large", []string{"knock", "127.0.0.1", "--spa", "--key", exists, "--open", "22", "--port", "70000"}, []string{`--port "70000"`, "0-65535"}},
		{"--for too long", []string{"knock", "127.0.0.1", "--spa", "--key", exists, "--open", "22", "--for", "48h"}, []string{"--for 48h0m0s", "1s to 24h"}},
		{"bad --addr", []string{"knock", "127.0.0.1", "--spa", "--key", exists, "--open", "22", "--addr", "home"}, []string{`--addr "home"`, "address"}},
		{"missing key file", []string{"knock", "127.0.0.1", "--spa", "--key", filepath.Join(dir, "none"), "--open", "22"}, []string{"none", "no such file", "--new-key"}},
		{"bad --new-key", []string{"knock", "--new-key", "rsa", filepath.Join(dir, "k")}, []string{`"rsa"`, "hmac or ed25519"}},
		{"--new-key without FILE", []string{"knock", "--new-key", "hmac"}, []string{"one FILE"}},
		{"--new-key with --open", []string{"knock", "--new-key", "hmac", filepath.Join(dir, "k"), "--open", "22"}, []string{"leave out --open"}},
		{"--spa with --delay", []string{"knock", "127.0.0.1", "--spa", "--key", exists, "--open", "22", "--delay", "1s"}, []string{"--delay is for a knock sequence"}},
		{"--new-key over a file", []string{"knock", "--new-key", "hmac", exists}, []string{exists, "never overwritten"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			if code != ExitUsage {
				t.Errorf("portctl %q exit = %d; want %d (stderr %q)", tt.args, code, ExitUsage, stderr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("portctl %q stderr = %q; want it to mention %q", tt.args, stderr, w)
				}
			}
			if strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 || stdout != "" {
				t.Errorf("portctl %q: stdout %q, stderr %q; want one line on stderr only", tt.args, stdout, stderr)
			}
		})
	}
}

// TestKnockKeyFileUnreadable: a key file that is there but cannot be
// read as keys is a failure, exit 3.
func TestKnockKeyFileUnreadable(t *testing.T) {
	dir := t.TempDir()
	garbled := filepath.Join(dir, "garbled")
	os.WriteFile(garbled, []byte("portctl-spa hmac-sha256 nope!\n"), 0o600)
	pub := filepath.Join(dir, "pub")
	_, public, _ := spa.GenerateEd25519()
	os.WriteFile(pub, []byte(public), 0o600)
	for _, tt := range []struct{ file, want string }{
		{dir, "is a directory"},
		{garbled, "line 1"},
		{pub, "for the server"},
	} {
		code, _, stderr := runCLI(t, "knock", "127.0.0.1", "--spa", "--key", tt.file, "--open", "tcp/22", "--port", "9")
		if code != ExitFailure || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("knock --spa --key %s: exit %d, stderr %q; want exit 3 and one line mentioning %q", tt.file, code, stderr, tt.want)
		}
	}
}

// knockArrival is a knock as the loopback listeners saw it.
type knockArrival struct {
	step knockStep
	at   time.Time
}

// knockListeners opens, on addr's loopback, a TCP listener or a UDP
// socket for each protocol in protos, and reports each connection or
// datagram on the returned channel.
func knockListeners(t *testing.T, addr string, protos ...string) ([]knockStep, <-chan knockArrival) {
	t.Helper()
	ch := make(chan knockArrival, 16)
	var steps []knockStep
	for _, proto := range protos {
		switch proto {
		case "tcp":
			l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
			if err != nil {
				t.Skipf("no %s loopback: %v", addr, err)
			}
			t.Cleanup(func() { l.Close() })
			step := knockStep{"tcp", uint16(l.Addr().(*net.TCPAddr).Port)}
			steps = append(steps, step)
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					ch <- knockArrival{step, time.Now()}
					c.Close()
				}
			}()
		case "udp":
			c, err := net.ListenPacket("udp", net.JoinHostPort(addr, "0"))
			if err != nil {
				t.Skipf("no %s loopback: %v", addr, err)
			}
			t.Cleanup(func() { c.Close() })
			step := knockStep{"udp", uint16(c.LocalAddr().(*net.UDPAddr).Port)}
			steps = append(steps, step)
			go func() {
				buf := make([]byte, 64)
				for {
					if _, _, err := c.ReadFrom(buf); err != nil {
						return
					}
					ch <- knockArrival{step, time.Now()}
				}
			}()
		}
	}
	return steps, ch
}

func TestKnockSequenceRun(t *testing.T) {
	const delay = 150 * time.Millisecond
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			steps, arrivals := knockListeners(t, host, "tcp", "udp", "udp", "tcp")
			var seq []string
			for _, s := range steps {
				seq = append(seq, s.String())
			}
			code, stdout, stderr := runCLI(t, "knock", host, strings.Join(seq, ","), "--delay", delay.String(), "--json")
			if code != ExitOK {
				t.Fatalf("knock: exit %d, stderr %q", code, stderr)
			}
			var got []knockArrival
			timeout := time.After(2 * time.Second)
			for len(got) < len(steps) {
				select {
				case a := <-arrivals:
					got = append(got, a)
				case <-timeout:
					t.Fatalf("only %d of %d knocks arrived: %v", len(got), len(steps), got)
				}
			}
			for i, a := range got {
				if a.step != steps[i] {
					t.Errorf("knock %d arrived at %s; want %s", i, a.step, steps[i])
				}
				if i > 0 {
					if gap := a.at.Sub(got[i-1].at); gap < delay-30*time.Millisecond || gap > delay+150*time.Millisecond {
						t.Errorf("knock %d came %s after the one before; want about %s", i, gap, delay)
					}
				}
			}
			for i, s := range steps {
				line := "knock " + strconv.Itoa(i+1) + "/4: " + s.String() + " to " + netip.AddrPortFrom(netip.MustParseAddr(host), s.Port).String()
				if !strings.Contains(stderr, line) {
					t.Errorf("stderr lacks %q:\n%s", line, stderr)
				}
			}
			var doc knockDoc
			if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
				t.Fatalf("knock --json is not JSON: %v\n%s", err, stdout)
			}
			if doc.Address != host || doc.DelayMS != 150 || len(doc.Knocks) != 4 || doc.Knocks[0].Answer != "open" || doc.Knocks[1].Answer != "none" {
				t.Errorf("knock --json = %+v", doc)
			}
		})
	}
}

// TestKnockClosedAndQuiet: a knock on a closed TCP port is sent all the
// same (the refusal is its answer); --quiet says nothing.
func TestKnockClosedAndQuiet(t *testing.T) {
	closed := probeClosedPort(t, "127.0.0.1")
	code, stdout, stderr := runCLI(t, "knock", "127.0.0.1", strconv.Itoa(int(closed.Port())), "--quiet")
	if code != ExitOK || stdout != "" || stderr != "" {
		t.Errorf("knock --quiet on a closed port: exit %d, stdout %q, stderr %q; want 0 and nothing", code, stdout, stderr)
	}
	code, _, stderr = runCLI(t, "knock", "127.0.0.1", strconv.Itoa(int(closed.Port())))
	if code != ExitOK || !strings.Contains(stderr, "refused") {
		t.Errorf("knock on a closed port: exit %d, stderr %q; want 0 and refused", code, stderr)
	}
}

func TestKnockSPA(t *testing.T) {
	for _, kind := range []string{"hmac", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			keyFile := filepath.Join(dir, "spa.key")
			code, stdout, stderr := runCLI(t, "knock", "--new-key", kind, keyFile)
			if code != ExitOK || stderr != "" || !strings.Contains(stdout, "wrote "+keyFile) {
				t.Fatalf("knock --new-key %s: exit %d, stdout %q, stderr %q", kind, code, stdout, stderr)
			}
			serverFile := keyFile
			if kind == "ed25519" {
				serverFile += ".pub"
				if !strings.Contains(stdout, "wrote "+serverFile) {
					t.Errorf("knock --new-key ed25519 output %q does not name %s", stdout, serverFile)
				}
			}
			if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("key file mode = %v, %v; want 0600", fi.Mode(), err)
			}
			f, err := os.Open(serverFile)
			if err != nil {
				t.Fatal(err)
			}
			serverKeys, err := spa.LoadKeys(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			if kind == "ed25519" && serverKeys[0].Kind != spa.Ed25519Public {
				t.Errorf("%s holds a %s key; want ed25519-public", serverFile, serverKeys[0].Kind)
			}

			for _, host := range []string{"127.0.0.1", "::1"} {
				conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(host), 0)))
				if err != nil {
					t.Skipf("no %s loopback: %v", host, err)
				}
				t.Cleanup(func() { conn.Close() })
				port := strconv.Itoa(conn.LocalAddr().(*net.UDPAddr).Port)
				v := spa.NewVerifier(serverKeys, nil, 0)
				for _, tt := range []struct {
					extra []string
					want  spa.Grant
				}{
					{nil, spa.Grant{Proto: "tcp", Port: 22, Addr: netip.MustParseAddr(host), For: 30 * time.Second, Format: "portctl"}},
					{[]string{"--addr", "203.0.113.5", "--for", "45s"}, spa.Grant{Proto: "tcp", Port: 22, Addr: netip.MustParseAddr("203.0.113.5"), For: 45 * time.Second, Format: "portctl"}},
				} {
					args := append([]string{"knock", host, "--spa", "--key", keyFile, "--open", "tcp/22", "--port", port}, tt.extra...)
					code, _, stderr := runCLI(t, args...)
					if code != ExitOK || !strings.Contains(stderr, "sent an SPA packet") {
						t.Fatalf("portctl %q: exit %d, stderr %q", args, code, stderr)
					}
					conn.SetReadDeadline(time.Now().Add(2 * time.Second))
					buf := make([]byte, 2048)
					n, from, err := conn.ReadFromUDPAddrPort(buf)
					if err != nil {
						t.Fatalf("portctl %q: no datagram: %v", args, err)
					}
					g, err := v.Check(buf[:n], from.Addr(), time.Now())
					if err != nil || g != tt.want {
						t.Errorf("portctl %q: Check = %+v, %v; want %+v", args, g, err, tt.want)
					}
					if _, err := v.Check(buf[:n], from.Addr(), time.Now()); err == nil {
						t.Errorf("portctl %q: the same datagram again was accepted", args)
					}
				}
			}
		})
	}
}

// TestKnockSPAFwknop: a key file with fwknop's keys sends fwknop's packet.
func TestKnockSPAFwknop(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "fwknop.keys")
	text := "KEY_BASE64: QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=\nHMAC_KEY_BASE64: YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8=\n"
	if err := os.WriteFile(keyFile, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := spa.LoadKeys(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	port := strconv.Itoa(conn.LocalAddr().(*net.UDPAddr).Port)
	args := []string{"knock", "127.0.0.1", "--spa", "--key", keyFile, "--open", "udp/1194", "--for", "2m", "--port", port, "--addr", "192.0.2.8"}
	code, _, stderr := runCLI(t, args...)
	if code != ExitOK || !strings.Contains(stderr, "fwknop") {
		t.Fatalf("portctl %q: exit %d, stderr %q", args, code, stderr)
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2048)
	n, from, err := conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	g, err := spa.NewVerifier(keys, nil, 0).Check(buf[:n], from.Addr(), time.Now())
	want := spa.Grant{Proto: "udp", Port: 1194, Addr: netip.MustParseAddr("192.0.2.8"), For: 2 * time.Minute, Format: "fwknop", User: g.User}
	if err != nil || g != want || g.User == "" {
		t.Errorf("Check = %+v, %v; want %+v", g, err, want)
	}
}
