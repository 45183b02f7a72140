package probe

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
)

// listen and closedPort are the shared loopback helpers.
var (
	listen     = testnet.Listen
	closedPort = testnet.ClosedPort
)

// target returns the Target for ap.
func target(ap netip.AddrPort) Target {
	return Target{Host: ap.Addr().String(), Port: ap.Port()}
}

// checkGoroutines fails the test when more goroutines run at its end than
// at its start, after a grace period for those still winding down.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
	})
}
