package web

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
)

// TestIntegrationMetricsFlood serves a namespace of its own where a
// listener with backlog 1 that never accepts was sent 8 connections:
// /metrics counts the overflows for that namespace and the full queue.
func TestIntegrationMetricsFlood(t *testing.T) {
	name, _ := testnet.OverflowedListener(t)
	path := "/run/netns/" + name

	s, _ := serveMachine(t, Options{Source: Machine{NetNS: path, StatsDir: t.TempDir()}, Version: "test", Interval: time.Hour})
	var body string
	for deadline := time.Now().Add(5 * time.Second); ; {
		body = scrapeBody(t, s)
		if v, _ := sum(body, "portctl_tcp_listen_overflows_total", `netns="`+name+`"`); v > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	netnsLabel := `netns="` + name + `"`
	for _, tt := range []struct {
		name   string
		labels []string
		min    float64
		max    float64
	}{
		{"portctl_tcp_listen_overflows_total", []string{netnsLabel}, 1, 8},
		{"portctl_tcp_listen_drops_total", []string{netnsLabel}, 1, 8},
		{"portctl_tcp_syncookies_sent_total", []string{netnsLabel}, 0, 0},
		{"portctl_tcp_syncookies_recv_total", []string{netnsLabel}, 0, 0},
		{"portctl_tcp_syncookies_failed_total", []string{netnsLabel}, 0, 0},
		{"portctl_tcp_req_q_full_drops_total", []string{netnsLabel}, 0, 0},
		{"portctl_tcp_req_q_full_do_cookies_total", []string{netnsLabel}, 0, 0},
		{"portctl_tcp_full_accept_queues", nil, 1, 1},
	} {
		if got, n := sum(body, tt.name, tt.labels...); n != 1 || got < tt.min || got > tt.max {
			t.Errorf("%s%v = %g (%d series); want one series from %g to %g", tt.name, tt.labels, got, n, tt.min, tt.max)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("needs promtool (Debian's prometheus package; test-deps.sh installs it)")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
