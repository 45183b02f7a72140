package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portctl/portctl/guard"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/internal/testnet"
)

// guardRun is `portctl guard` running in a test, writing its events to a
// file.
type guardRun struct {
	events string
	stop   func()
}

// startGuardCmd runs `portctl guard ARGS --events FILE` until stop, and
// waits for its start event.
func startGuardCmd(t *testing.T, args ...string) *guardRun {
	t.Helper()
	g := &guardRun{events: filepath.Join(t.TempDir(), "events.jsonl")}
	streams, _, _ := term.Test("")
	var opts guardOptions
	cmd := newGuardCmd(streams, func(_ context.Context, o guardOptions) error { opts = o; return nil })
	cmd.SetArgs(append(args, "--events", g.events))
	if err := cmd.Execute(); err != nil {
		t.Fatalf("guard %q: %v", args, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runGuard(ctx, streams, opts) }()
	stopped := false
	g.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("guard: %v", err)
			}
		}
	}
	t.Cleanup(g.stop)
	if _, ok := g.wait(t, 10*time.Second, func(e guard.Event) bool { return e.Type == guard.EventStart }); !ok {
		t.Fatal("guard did not start in 10s")
	}
	return g
}

// wait returns the first event of the file that match selects, waiting up
// to limit.
func (g *guardRun) wait(t *testing.T, limit time.Duration, match func(guard.Event) bool) (guard.Event, bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if f, err := os.Open(g.events); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var ev guard.Event
				if json.Unmarshal(sc.Bytes(), &ev) == nil && match(ev) {
					f.Close()
					return ev, true
				}
			}
			f.Close()
		}
		if time.Now().After(deadline) {
			return guard.Event{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIntegrationGuardSPA: a packet signed by `portctl knock --spa`, and
// one from Debian's fwknop client, open port 22 to the right source alone
// (IPv4 and IPv6) for --open-for; a packet sent again is refused, also
// after guard restarts.
func TestIntegrationGuardSPA(t *testing.T) {
	p := testnet.NewPair(t, 3)
	for _, a := range []netip.Addr{p.Target4, p.Target6} {
		testnet.ListenIn(t, p.Target, netip.AddrPortFrom(a, 22))
	}
	dir := t.TempDir()
	client := filepath.Join(dir, "spa.key")
	streams, _, errOut := term.Test("")
	if code := Run([]string{"knock", "--new-key", "ed25519", client}, streams); code != 0 {
		t.Fatalf("knock --new-key: exit %d: %s", code, errOut)
	}
	pub, err := os.ReadFile(client + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	rij, mac := make([]byte, 32), make([]byte, 64)
	rand.Read(rij)
	rand.Read(mac)
	rijB64, macB64 := base64.StdEncoding.EncodeToString(rij), base64.StdEncoding.EncodeToString(mac)
	server := filepath.Join(dir, "server.keys")
	os.WriteFile(server, append(pub, []byte("fwknop-rijndael "+rijB64+"\nfwknop-hmac-sha256 "+macB64+"\n")...), 0o600)
	nonces := filepath.Join(dir, "nonces")
	args := []string{"--netns", p.Target, "--spa-key", server, "--spa-open", "tcp/22", "--spa-port", "62201",
		"--open-for", "3s", "--spa-nonces", nonces}
	g := startGuardCmd(t, args...)

	knock := func(target netip.Addr) {
		t.Helper()
		streams, _, errOut := term.Test("")
		var code int
		testnet.In(t, p.Scanner, func() {
			code = Run([]string{"knock", target.String(), "--spa", "--key", client, "--open", "tcp/22", "--for", "3s"}, streams)
		})
		if code != 0 {
			t.Fatalf("knock --spa: exit %d: %s", code, errOut)
		}
	}
	for _, fam := range []struct {
		name          string
		target        netip.Addr
		sender, other netip.Addr
	}{
		{"IPv4", p.Target4, p.Sources4[0], p.Sources4[1]},
		{"IPv6", p.Target6, p.Sources6[0], p.Sources6[1]},
	} {
		t.Run("portctl knock "+fam.name, func(t *testing.T) {
			ssh := netip.AddrPortFrom(fam.target, 22)
			if p.Connects(t, fam.sender, ssh, 500*time.Millisecond) {
				t.Fatal("port 22 is open before the signed packet")
			}
			p.SourceFor(t, fam.target, fam.sender) // the packet leaves from the sender's address
			knock(fam.target)
			if _, ok := g.wait(t, 5*time.Second, func(e guard.Event) bool { return e.Type == guard.EventSPA && e.Source == fam.sender.String() }); !ok {
				all, _ := os.ReadFile(g.events)
				t.Fatalf("no spa event from %s; events:\n%s", fam.sender, all)
			}
			p.OpenToOnly(t, fam.sender, fam.other, ssh, 3*time.Second)
		})
	}

	t.Run("fwknop client", func(t *testing.T) {
		if _, err := exec.LookPath("fwknop"); err != nil {
			t.Skip("needs fwknop (Debian package fwknop-client; test-deps.sh installs it)")
		}
		allow := p.Sources4[2]
		home := t.TempDir()
		save := filepath.Join(home, "packet")
		cmd := exec.Command("ip", "netns", "exec", p.Scanner, "fwknop", "--no-save-args", "--rc-file", home+"/fwknoprc",
			"-A", "tcp/22", "-a", allow.String(), "-D", p.Target4.String(), "-p", "62201",
			"--key-base64-rijndael", rijB64, "--key-base64-hmac", macB64, "--save-packet", save)
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("fwknop: %v\n%s", err, out)
		}
		ev, ok := g.wait(t, 5*time.Second, func(e guard.Event) bool { return e.Type == guard.EventSPA && e.Source == allow.String() })
		if !ok {
			t.Fatal("no spa event for fwknop's packet")
		}
		if !strings.Contains(ev.Message, p.Sources4[0].String()) {
			t.Errorf("event %+v does not say it was sent from %s", ev, p.Sources4[0])
		}
		if !p.Connects(t, allow, netip.AddrPortFrom(p.Target4, 22), time.Second) {
			t.Error("port 22 is not open to the address fwknop's packet names")
		}
		packet, err := os.ReadFile(save)
		if err != nil {
			t.Fatal(err)
		}
		// The same packet again, and after a restart: refused.
		for _, restart := range []bool{false, true} {
			if restart {
				g.stop()
				g = startGuardCmd(t, args...)
			}
			var c net.Conn
			testnet.In(t, p.Scanner, func() {
				c, err = net.Dial("udp", netip.AddrPortFrom(p.Target4, 62201).String())
			})
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte(strings.TrimSpace(string(packet))))
			c.Close()
			if ev, ok := g.wait(t, 5*time.Second, func(e guard.Event) bool { return e.Type == guard.EventRefused }); !ok {
				t.Errorf("a replayed packet (restart %v) was not refused", restart)
			} else {
				t.Logf("replay refused (restart %v): %s", restart, ev.Message)
			}
		}
	})
}

// TestIntegrationGuardReload: SIGHUP reads --config again: a knock
// sequence changed in the file is the one that opens the port.
func TestIntegrationGuardReload(t *testing.T) {
	p := testnet.NewPair(t, 1)
	testnet.ListenIn(t, p.Target, netip.AddrPortFrom(p.Target4, 22))
	conf := filepath.Join(t.TempDir(), "guard.yaml")
	os.WriteFile(conf, []byte("knock: [\"tcp/7000:22\"]\nopen_for: 30s\n"), 0o600)
	g := startGuardCmd(t, "--netns", p.Target, "--config", conf)
	os.WriteFile(conf, []byte("knock: [\"udp/7100,tcp/7200:22\"]\nopen_for: 30s\n"), 0o600)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.wait(t, 5*time.Second, func(e guard.Event) bool { return e.Type == guard.EventReload }); !ok {
		t.Fatal("no reload event after SIGHUP")
	}
	src, ssh := p.Sources4[0], netip.AddrPortFrom(p.Target4, 22)
	knock := func(seq string) {
		streams, _, errOut := term.Test("")
		var code int
		testnet.In(t, p.Scanner, func() { code = Run([]string{"knock", "-q", p.Target4.String(), seq}, streams) })
		if code != 0 {
			t.Fatalf("knock %s: exit %d: %s", seq, code, errOut)
		}
	}
	knock("tcp/7000")
	if p.Connects(t, src, ssh, 500*time.Millisecond) {
		t.Error("the sequence of the old config still opens the port")
	}
	knock("udp/7100,tcp/7200")
	if _, ok := g.wait(t, 5*time.Second, func(e guard.Event) bool { return e.Type == guard.EventKnock }); !ok {
		t.Fatal("the new sequence opened nothing")
	}
	if !p.Connects(t, src, ssh, time.Second) {
		t.Error("port 22 is not open after the new sequence")
	}
}
