package web

import (
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portctl/portctl/forward"
	"github.com/portctl/portctl/forward/sshtun"
	"github.com/portctl/portctl/internal/sshtest"
	"github.com/portctl/portctl/internal/testnet"
)

// TestIntegrationForwarderSSH runs a real forwarder whose rule goes
// through a real sshd, publishing its counters as `portctl forward`
// does: the SSH server's state and counters reach the API, /metrics and
// the Forwarding view.
func TestIntegrationForwarderSSH(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	m := sshtest.Manager(t, d, "bastion")
	echo := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) { io.Copy(c, c) })
	rule, err := forward.ParseRule("127.0.0.1:0:" + echo.String())
	if err != nil {
		t.Fatal(err)
	}
	rule.Name, rule.Via = "db", "ssh://bastion"
	addr, dir := publishForwarder(t, forward.Config{SSH: m}, rule)
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hello"))
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		t.Fatalf("through the tunnel: %v", err)
	}
	c.Close()

	src := &machineStats{tableSource: &tableSource{}, dir: dir}
	s, ts := newTestServer(t, src, Options{})
	var procs []forward.Process
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, body := get(t, ts, "/api/v1/forwarders", nil)
		if err := json.Unmarshal([]byte(body), &procs); err != nil || len(procs) != 1 || len(procs[0].SSH) != 1 {
			t.Fatalf("GET /api/v1/forwarders = %s (%v); want the forwarder and its SSH server", body, err)
		}
		if h := procs[0].SSH[0]; h.State == sshtun.StateConnected && h.Active == 0 || time.Now().After(deadline) {
			break
		}
	}
	if h := procs[0].SSH[0]; h.State != sshtun.StateConnected || h.Conns != 1 || h.BytesOut != 5 || h.BytesIn != 5 || h.Connects != 1 {
		t.Errorf("the SSH server's state = %+v; want connected, 1 connection, 5 bytes each way", h)
	}
	if r := procs[0].Rules[0]; r.Via != "ssh://bastion" || r.BytesIn != 5 || r.BytesOut != 5 {
		t.Errorf("the rule = %+v; want via ssh://bastion and 5 bytes each way", r)
	}
	body := scrapeBody(t, s)
	for _, want := range []string{`portctl_forward_ssh_up{address="root@` + d.Addr.String() + `"`, `ssh="ssh://bastion"} 1`,
		`portctl_forward_ssh_bytes_total{direction="sent",pid=`, `portctl_forward_ssh_logins_total{`, `portctl_forward_ssh_rtt_seconds{`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}

	ctx := browser(t)
	do(t, ctx, chromedp.Navigate(ts.URL+"/#/forward"))
	waitJS(t, ctx, "the SSH servers table", `document.querySelector('#ssh-hosts tbody tr')`)
	row := evalJS[[]string](t, ctx, `[...document.querySelector('#ssh-hosts tbody tr').children].map(c => c.textContent)`)
	if len(row) != 10 || !strings.HasPrefix(row[1], "ssh://bastion (root@") || row[2] != "connected" || row[5] != "1" {
		t.Errorf("the SSH server's row: %q", row)
	}
	rules := evalJS[[]string](t, ctx, `[...document.querySelector('#view-forward tbody tr').children].map(c => c.textContent)`)
	if len(rules) != 10 || !strings.Contains(rules[9], "via ssh://bastion") {
		t.Errorf("the rule's row: %q; want its targets via ssh://bastion", rules)
	}
	screenshot(t, ctx, "15-forward-ssh")
}
