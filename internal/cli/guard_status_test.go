package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/guard/flood"
	"github.com/portctl/portctl/internal/term"
)

// TestPrintGuardStatus prints a namespace under a SYN flood with a full
// listener: counters, settings, listeners, then advice.
func TestPrintGuardStatus(t *testing.T) {
	st := flood.Status{
		Time:  time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC),
		NetNS: "web",
		Counters: flood.Counters{ListenOverflows: 1200, ListenDrops: 1200, SyncookiesSent: 45128,
			TCPReqQFullDoCookies: 45128, PassiveOpens: 50000},
		Settings: flood.Settings{Syncookies: 1, MaxSynBacklog: 512, Somaxconn: 4096},
		Listeners: []flood.Listener{
			{Local: netip.MustParseAddrPort("0.0.0.0:80"), Queue: 511, Backlog: 511, PID: 42, Process: "nginx"},
			{Local: netip.MustParseAddrPort("0.0.0.0:22"), Queue: 0, Backlog: 128, PID: 7, Process: "sshd"},
		},
	}
	streams, out, _ := term.Test("")
	printGuardStatus(streams, guardStatus{Status: st, Advice: flood.Advise(st, nil)})
	got := out.String()
	for _, want := range []string{
		"SYN-flood signs in network namespace web (counted since the namespace was made)",
		"ListenOverflows       1200",
		"SyncookiesSent        45128",
		"net.ipv4.tcp_syncookies=1 (when the SYN queue is full), net.ipv4.tcp_max_syn_backlog=512, net.core.somaxconn=4096",
		"TCP listeners: 2",
		"0.0.0.0:80  nginx/42  511    511      full",
		"0.0.0.0:22  sshd/7    0      128",
		"raise the backlog of nginx on :80 (listen backlog 511, net.core.somaxconn 4096)",
		"45,128 SYN cookies sent since the namespace was made",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("printGuardStatus() output lacks %q:\n%s", want, got)
		}
	}
	// The sections come in order: counters, settings, listeners, advice.
	idx := func(s string) int { return strings.Index(got, s) }
	if !(idx("COUNTER") < idx("Settings:") && idx("Settings:") < idx("TCP listeners:") && idx("TCP listeners:") < idx("Advice:")) {
		t.Errorf("printGuardStatus() sections out of order:\n%s", got)
	}

	streams, out, _ = term.Test("")
	printGuardStatus(streams, guardStatus{Status: flood.Status{NetNS: "host", Settings: flood.Settings{Syncookies: 1, MaxSynBacklog: 512, Somaxconn: 4096}}, Advice: []flood.Advice{}})
	if want := "Advice: none"; !strings.Contains(out.String(), want) {
		t.Errorf("printGuardStatus(quiet) output lacks %q:\n%s", want, out)
	}
}

// TestRunGuardStatus reads this process's namespace, where a loopback
// listener that never accepts holds three connections in its queue, as a
// table and as JSON.
func TestRunGuardStatus(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("cannot listen on loopback: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	for range 3 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	local := l.Addr().(*net.TCPAddr).AddrPort()

	// The server's end of a handshake joins the queue as its last ACK
	// arrives: read until it shows, for a second at most.
	var out *bytes.Buffer
	for try := 0; ; try++ {
		var streams *term.IO
		streams, out, _ = term.Test("")
		err = runGuardStatus(context.Background(), streams, "", true)
		if errors.Is(err, flood.ErrNotImplemented) {
			t.Skip(err)
		}
		if err != nil {
			t.Fatalf("runGuardStatus(json) error = %v", err)
		}
		if strings.Contains(out.String(), `"queue": 3`) || try == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var got struct {
		NetNS    string `json:"netns"`
		Counters struct {
			ListenOverflows *uint64 `json:"listen_overflows"`
			SyncookiesSent  *uint64 `json:"syncookies_sent"`
		} `json:"counters"`
		Settings struct {
			Somaxconn int `json:"somaxconn"`
		} `json:"settings"`
		Listeners []struct {
			Local   string `json:"local"`
			Queue   uint32 `json:"queue"`
			Backlog uint32 `json:"backlog"`
			PID     int    `json:"pid"`
		} `json:"listeners"`
		Advice []json.RawMessage `json:"advice"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("runGuardStatus(json) printed %v:\n%s", err, out)
	}
	if got.NetNS == "" || got.Counters.ListenOverflows == nil || got.Counters.SyncookiesSent == nil || got.Settings.Somaxconn <= 0 || got.Advice == nil {
		t.Errorf("runGuardStatus(json) = %s; want netns, counters, settings and an advice list", out)
	}
	found := false
	for _, gl := range got.Listeners {
		if gl.Local == local.String() {
			found = true
			if gl.Queue != 3 || gl.Backlog == 0 {
				t.Errorf("listener %s: queue %d, backlog %d; want queue 3 (three connections not accepted)", local, gl.Queue, gl.Backlog)
			}
		}
	}
	if !found {
		t.Errorf("runGuardStatus(json) lists no listener %s:\n%s", local, out)
	}

	streams, out, _ := term.Test("")
	if err := runGuardStatus(context.Background(), streams, "", false); err != nil {
		t.Fatalf("runGuardStatus(table) error = %v", err)
	}
	for _, want := range []string{"SYN-flood signs in network namespace", "COUNTER", "ListenOverflows", "TCP listeners:", local.String(), "Advice:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("runGuardStatus(table) output lacks %q:\n%s", want, out)
		}
	}
}

// TestRunGuardStatusMissingNamespace: a namespace file that is not there
// is an error naming it.
func TestRunGuardStatusMissingNamespace(t *testing.T) {
	streams, out, _ := term.Test("")
	err := runGuardStatus(context.Background(), streams, "/run/netns/portctl-no-such-namespace", false)
	if errors.Is(err, flood.ErrNotImplemented) {
		t.Skip(err)
	}
	if err == nil || !strings.Contains(err.Error(), "portctl-no-such-namespace") {
		t.Errorf("runGuardStatus(missing namespace) error = %v; want one naming it", err)
	}
	if out.Len() != 0 {
		t.Errorf("runGuardStatus(missing namespace) printed %q; want nothing", out)
	}
}
