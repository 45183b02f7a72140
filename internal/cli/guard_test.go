package cli

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/guard"
	"github.com/portctl/portctl/internal/term"
)

func TestGuardFlags(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "guard.yaml")
	os.WriteFile(conf, []byte("block: 10m\ngroup4: 24\nknock: [\"tcp/7000,udp/8000:22\"]\nopen_for: 45s\ntarpit: {ports: [2222]}\n"), 0o600)
	parse := func(args ...string) (guardOptions, error) {
		streams, _, _ := term.Test("")
		var got guardOptions
		cmd := newGuardCmd(streams, func(_ context.Context, o guardOptions) error { got = o; return nil })
		cmd.SetArgs(args)
		err := cmd.Execute()
		return got, err
	}
	o, err := parse("--block", "5m", "--allow", "192.0.2.10,10.1.0.0/16", "--knock", "tcp/7000,udp/8000,tcp/9000:22", "--open-for", "1m")
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.Block != 5*time.Minute || len(o.cfg.Detect.Allow) != 2 || o.cfg.Detect.Allow[1] != netip.MustParsePrefix("10.1.0.0/16") ||
		len(o.cfg.Knocks) != 1 || o.cfg.Knocks[0].Open != (guard.Target{Proto: guard.TCP, Port: 22}) || o.cfg.OpenFor != time.Minute {
		t.Errorf("flags: %+v", o.cfg)
	}
	// The config file fills what the flags leave; a flag given wins.
	o, err = parse("--config", conf, "--block", "1m")
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.Block != time.Minute || o.cfg.Detect.Group4 != 24 || len(o.cfg.Knocks) != 1 || o.cfg.OpenFor != 45*time.Second ||
		len(o.tarpits) != 1 || o.tarpits[0] != 2222 {
		t.Errorf("config file: %+v, tarpits %v", o.cfg, o.tarpits)
	}
	o, err = parse("--spa-key", "/k", "--spa-open", "tcp/22,udp/500")
	if err != nil || o.cfg.SPAPort != 62201 || len(o.cfg.Guarded) != 2 {
		t.Errorf("spa: %+v, %v", o.cfg, err)
	}
}

func TestGuardBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("blok: 1m\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--knock", "tcp/7000"}, `--knock "tcp/7000": want SEQUENCE:PORT`},
		{[]string{"--knock", "tcp/7000:0"}, "the port must be a number from 1 to 65535"},
		{[]string{"--allow", "nowhere"}, `--allow "nowhere": want an address or a prefix`},
		{[]string{"--group4", "33"}, "--group4 33: want a prefix length from 0 to 32"},
		{[]string{"--tarpit", "0"}, `--tarpit "0": want ports from 1 to 65535`},
		{[]string{"--config", bad}, "field blok not found"},
		{[]string{"--config", filepath.Join(dir, "missing.yaml")}, "no such file or directory"},
		{[]string{"--spa-key", "/k", "--spa-open", "sctp/22"}, "the protocol must be tcp or udp"},
		{[]string{"--netns", "no-such-namespace-here"}, "no-such-namespace-here"},
		{[]string{"--spa-key", filepath.Join(dir, "missing.keys")}, "--spa-key " + filepath.Join(dir, "missing.keys") + ": no such file"},
		{[]string{"--spa-key", bad}, "--spa-key " + bad + ": "},
	} {
		streams, _, errOut := term.Test("")
		code := Run(append([]string{"guard"}, tc.args...), streams)
		msg := errOut.String()
		if code != 2 || !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") != 1 {
			t.Errorf("guard %q: exit %d, stderr %q; want exit 2 and one line with %q", tc.args, code, msg, tc.want)
		}
	}
}

func TestGuardEventLine(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 0, 3, 0, time.Local)
	ev := guard.Event{Time: at, Type: guard.EventScan, Source: "10.9.0.2", Kind: guard.KindFIN, Proto: "tcp",
		Ports: []uint16{1, 2, 3, 4}, Probes: 4, Failures: 4, First: at.Add(-3 * time.Second), Spoofable: true}
	want := "12:00:03 scan 10.9.0.2: fin scan, 4 of 4 first contacts failed, closed tcp ports 1,2,3,4 (since 12:00:00); not blocked: such probes can be forged"
	if got := eventLine(ev); got != want {
		t.Errorf("eventLine = %q\nwant        %q", got, want)
	}
}
