package cli

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/portctl/portctl/forward"
)

func TestForwardRuntime(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer runtime.SetDefaultGOMAXPROCS()

	rule := func(s, via string) forward.Rule {
		t.Helper()
		r, err := forward.ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		r.Via = via
		return r
	}
	tunnels := []forward.Rule{rule("127.0.0.1:5432:db:5432", "ssh://bastion"), rule("127.0.0.1:6379:cache:6379", "ssh://bastion")}
	mixed := append(tunnels, rule("8080:127.0.0.1:80", ""))

	runtime.SetDefaultGOMAXPROCS()
	cpus := runtime.GOMAXPROCS(0)
	var fr forwardRuntime
	fr.apply(tunnels, true)
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("rules all through one SSH server: GOMAXPROCS %d, want 1", got)
	}
	if got := gcPercent(); got != tunnelGCPercent {
		t.Errorf("rules through SSH: GC percent %d, want %d", got, tunnelGCPercent)
	}
	fr.apply(mixed, false)
	if got := runtime.GOMAXPROCS(0); got != cpus {
		t.Errorf("after a reload adds a direct rule: GOMAXPROCS %d, want the default %d", got, cpus)
	}
	fr.apply(tunnels, false)
	if got := runtime.GOMAXPROCS(0); got != cpus {
		t.Errorf("a reload back to tunnels only lowered GOMAXPROCS to %d; the event loops may run", got)
	}

	fr.restore()

	var ended forwardRuntime
	ended.apply(tunnels, true)
	ended.restore()
	if got := runtime.GOMAXPROCS(0); got != cpus {
		t.Errorf("after the forward ended: GOMAXPROCS %d, want the default %d", got, cpus)
	}
	if got := gcPercent(); got != 100 {
		t.Errorf("after the forward ended: GC percent %d, want 100 again", got)
	}

	var direct forwardRuntime
	direct.apply(mixed[2:], true)
	if got := runtime.GOMAXPROCS(0); got != cpus {
		t.Errorf("direct rules: GOMAXPROCS %d, want the default %d", got, cpus)
	}
	if got := gcPercent(); got != 100 {
		t.Errorf("direct rules: GC percent %d, want 100", got)
	}

	t.Setenv("GOMAXPROCS", "2")
	t.Setenv("GOGC", "50")
	debug.SetGCPercent(50)
	var user forwardRuntime
	user.apply(tunnels, true)
	if got := runtime.GOMAXPROCS(0); got != cpus {
		t.Errorf("GOMAXPROCS set by the user: changed to %d", got)
	}
	if got := gcPercent(); got != 50 {
		t.Errorf("GOGC set by the user: changed to %d", got)
	}
}

// gcPercent reads the collector's setting.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}
