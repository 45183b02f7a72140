package cli

import (
	"runtime"
	"testing"

	"github.com/portctl/portctl/forward"
)

func TestForwardRuntime(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
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
	fr.apply(mixed, false)
	if got := runtime.GOMAXPROCS(0); got != cpus {
		t.Errorf("after a reload adds a direct rule: GOMAXPROCS %d, want the default %d", got, cpus)
	}
	fr.apply(tunnels, false)
	if got := runtime.GOMAXPROCS(0); got != cpus {
		t.Errorf("a reload back to tunnels only lowered GOMAXPROCS to %d; the event loops may run", got)
	}

	var ended forwardRuntime
	ended.apply(tunnels, true)
	ended.restore()
	if got := runtime.GOMAXPROCS(0); got != cpus {
		t.Errorf("after the forward ended: GOMAXPROCS %d, want the default %d", got, cpus)
	}

	var direct forwardRuntime
	direct.apply(mixed[2:], true)
	if got := runtime.GOMAXPROCS(0); got != cpus {
		t.Errorf("direct rules: GOMAXPROCS %d, want the default %d", got, cpus)
	}

	t.Setenv("GOMAXPROCS", "2")
	var user forwardRuntime
	user.apply(tunnels, true)
	if got := runtime.GOMAXPROCS(0); got != cpus {
		t.Errorf("GOMAXPROCS set by the user: changed to %d", got)
	}
}
