package web

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/forward"
	"github.com/portctl/portctl/internal/testnet"
)

// TestForwarderCounters runs a real forwarder publishing its counters, as
// `portctl forward` does, and reads them back from the API and /metrics.
func TestForwarderCounters(t *testing.T) {
	backend := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) { io.Copy(c, c) })
	rule, err := forward.ParseRule("127.0.0.1:0:" + backend.String())
	if err != nil {
		t.Fatal(err)
	}
	rule.Name = "echo"
	addr, dir := publishForwarder(t, forward.Config{}, rule)
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello"))
	buf := make([]byte, 5)
	io.ReadFull(c, buf)
	c.Close()

	src := &machineStats{tableSource: &tableSource{}, dir: dir}
	s, ts := newTestServer(t, src, Options{})
	// Byte counts are the copies' results: they land once the connection
	// has ended on both sides, and the dashboard samples every 50 ms.
	var procs []forward.Process
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, body := get(t, ts, "/api/v1/forwarders", nil)
		if err := json.Unmarshal([]byte(body), &procs); err != nil || len(procs) != 1 || len(procs[0].Rules) != 1 || procs[0].Rules[0].Name != "echo" {
			t.Fatalf("GET /api/v1/forwarders = %s (%v); want the one forwarder's rule", body, err)
		}
		if procs[0].Rules[0].Active == 0 || time.Now().After(deadline) {
			break
		}
	}
	if r := procs[0].Rules[0]; r.Conns != 1 || r.BytesIn != 5 {
		t.Errorf("the rule's counters = %+v; want 1 connection and 5 bytes in", r)
	}
	m := scrapeBody(t, s)
	for _, want := range []string{`protocol="tcp",rule="echo"} 1`, `portctl_forward_bytes_total{direction="in"`, `portctl_forward_backend_up{backend="` + backend.String() + `"`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, m)
		}
	}
}

// publishForwarder runs a forwarder with cfg and rule until the test
// ends, publishing its counters in a directory of its own, as `portctl
// forward` does; it returns where the rule listens, and the directory.
func publishForwarder(t *testing.T, cfg forward.Config, rule forward.Rule) (netip.AddrPort, string) {
	t.Helper()
	f := forward.New(cfg)
	t.Cleanup(func() { f.Shutdown(context.Background()) })
	if err := f.Apply([]forward.Rule{rule}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stop, err := forward.PublishStats(f, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	addr, _ := f.Addr(rule.Key())
	return addr, dir
}

// machineStats is a table the test writes, with the real forwarders of a
// stats directory.
type machineStats struct {
	*tableSource
	dir string
}

func (m *machineStats) Forwarders(ctx context.Context) []forward.Process {
	return Machine{StatsDir: m.dir}.Forwarders(ctx)
}
