package probe

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/portctl/portctl/registry"
)

func TestCheckOpenClosed(t *testing.T) {
	checkGoroutines(t)
	open4 := listen(t, "127.0.0.1:0")
	open6 := listen(t, "[::1]:0")
	closed4 := closedPort(t, "127.0.0.1")
	closed6 := closedPort(t, "::1")
	targets := []Target{target(open4), target(closed4), target(open6), target(closed6)}
	start := time.Now()
	// Every target answers at once: none may wait for the timeout (the
	// margin is for a busy machine).
	got, err := Check(context.Background(), targets, Config{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("Check of four loopback targets took %v; want answers at once, not the 30 s timeout", elapsed)
	}
	want := []struct {
		addr   netip.AddrPort
		state  State
		reason string
	}{{open4, StateOpen, ""}, {closed4, StateClosed, ReasonRefused}, {open6, StateOpen, ""}, {closed6, StateClosed, ReasonRefused}}
	if len(got) != len(want) {
		t.Fatalf("Check returned %d results; want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		r := got[i]
		if r.Addr != w.addr || r.State != w.state || r.Reason != w.reason || r.Target != targets[i] {
			t.Errorf("result %d = %v %v %q (target %v); want %v %v %q", i, r.Addr, r.State, r.Reason, r.Target, w.addr, w.state, w.reason)
		}
		if r.Latency <= 0 || r.Latency > time.Second {
			t.Errorf("result %d latency = %v; want a positive time under a second", i, r.Latency)
		}
		if (r.Err == nil) != (w.state == StateOpen) {
			t.Errorf("result %d Err = %v; want an error exactly when not open", i, r.Err)
		}
	}
}

// dualName resolves, through the test's own DNS server, to 127.0.0.1 and ::1.
const dualName = "dual.portctl.test"

func TestCheckHostNameAndFamily(t *testing.T) {
	open4 := listen(t, "127.0.0.1:0")
	res := stubResolver(t, map[string][]netip.Addr{
		dualName: {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
	})
	tg := Target{Host: dualName, Port: open4.Port()}
	v6 := netip.AddrPortFrom(netip.MustParseAddr("::1"), open4.Port())
	tests := []struct {
		name  string
		cfg   Config
		addrs []netip.AddrPort // in any order
	}{
		{"first address", Config{}, nil},
		{"IPv4", Config{Family: IPv4}, []netip.AddrPort{open4}},
		{"IPv6", Config{Family: IPv6}, []netip.AddrPort{v6}},
		{"all addresses", Config{AllAddresses: true}, []netip.AddrPort{open4, v6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Resolver = res
			got, err := Check(context.Background(), []Target{tg}, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tt.addrs == nil {
				if len(got) != 1 || got[0].Addr != open4 && got[0].Addr != v6 {
					t.Fatalf("Check(%s) = %+v; want one result at %v or %v", tg, got, open4, v6)
				}
				return
			}
			if len(got) != len(tt.addrs) {
				t.Fatalf("Check(%s) = %+v; want results at %v", tg, got, tt.addrs)
			}
			for _, r := range got {
				want := StateClosed // nothing listens on ::1 at that port
				if r.Addr == open4 {
					want = StateOpen
				}
				if r.State != want {
					t.Errorf("Check(%s) at %v = %v (%s); want %v", tg, r.Addr, r.State, r.Reason, want)
				}
			}
		})
	}
}

func TestCheckNoAddressOfFamily(t *testing.T) {
	res := stubResolver(t, map[string][]netip.Addr{"v4only.portctl.test": {netip.MustParseAddr("127.0.0.1")}})
	for _, tg := range []Target{{Host: "127.0.0.1", Port: 1}, {Host: "v4only.portctl.test", Port: 1}} {
		got, _ := Check(context.Background(), []Target{tg}, Config{Family: IPv6, Resolver: res})
		if got[0].State != StateError || got[0].Reason != "no IPv6 address" {
			t.Errorf("Check(%v, IPv6) = %v %q; want error \"no IPv6 address\"", tg, got[0].State, got[0].Reason)
		}
	}
}

func TestCheckUnknownName(t *testing.T) {
	res := stubResolver(t, nil)
	got, err := Check(context.Background(), []Target{{Host: "nowhere.portctl.test", Port: 80}}, Config{Resolver: res})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].State != StateError || got[0].Reason != ReasonNoHost || got[0].Addr.IsValid() {
		t.Errorf("Check(nowhere.portctl.test:80) = %+v; want state error, %q, no address", got[0], ReasonNoHost)
	}
}

func TestCheckServiceName(t *testing.T) {
	open := listen(t, "127.0.0.1:0")
	reg := registry.New(registry.Options{Assignments: []registry.Assignment{
		{Port: open.Port(), Proto: registry.TCP, Name: "portctl-test"},
	}})
	tg, err := ParseTarget("127.0.0.1:portctl-test")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Check(context.Background(), []Target{tg}, Config{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	r := got[0]
	if r.State != StateOpen || r.Addr != open || r.Target.Port != open.Port() || r.Target.Service != "portctl-test" {
		t.Errorf("Check(127.0.0.1:portctl-test) = %+v; want open at %v with the service name kept", r, open)
	}
	tg, _ = ParseTarget("127.0.0.1:no-such-service-x")
	got, _ = Check(context.Background(), []Target{tg}, Config{Registry: reg})
	if got[0].State != StateError {
		t.Errorf("Check(unknown service) = %+v; want state error", got[0])
	}
}

func TestCheckCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err := Check(ctx, []Target{target(closedPort(t, "127.0.0.1"))}, Config{})
	if err == nil || len(got) != 1 || got[0].State == StateOpen {
		t.Errorf("Check(canceled) = %+v, %v; want a non-open result and the context's error", got, err)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{StateOpen: "open", StateClosed: "closed", StateFiltered: "filtered", StateError: "error", 0: "State(0)", 9: "State(9)"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q; want %q", s, got, want)
		}
	}
}

func TestStateText(t *testing.T) {
	for _, s := range []State{StateOpen, StateClosed, StateFiltered, StateError} {
		b, _ := s.MarshalText()
		var got State
		if err := got.UnmarshalText(b); err != nil || got != s {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", b, got, err, s)
		}
	}
	var s State
	if err := s.UnmarshalText([]byte("ajar")); err == nil {
		t.Errorf("UnmarshalText(ajar) = %v, nil; want an error", s)
	}
}
