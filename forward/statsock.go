package forward

import (
	"context"
	"os"

	"github.com/portctl/portctl/forward/sshtun"
	"github.com/portctl/portctl/statsock"
)

// Process is one running forwarder's counters, as its stats socket gives
// them.
type Process struct {
	PID   int     `json:"pid"`
	Rules []Stats `json:"rules"`
	// SSH is the state of the SSH servers its rules go through.
	SSH []sshtun.HostState `json:"ssh,omitempty"`
}

// StatsDir returns the directory where running forwarders publish their
// stats sockets: $XDG_RUNTIME_DIR/portctl, else /run/portctl for root, else
// a directory of the user's own under the temporary directory
// (statsock.Dir).
func StatsDir() string {
	return statsock.Dir(os.Getenv("XDG_RUNTIME_DIR"), os.Geteuid())
}

// PublishStats makes f's counters readable by CollectStats: it listens on
// a unix socket forward-PID.sock in dir and answers every connection with
// the counters as JSON. The returned function closes and removes the
// socket.
func PublishStats(f *Forwarder, dir string) (stop func(), err error) {
	return statsock.Publish(dir, "forward", func() any { return Process{PID: os.Getpid(), Rules: f.Stats(), SSH: f.Hosts()} })
}

// CollectStats asks every forwarder publishing in dir for its counters. A
// socket nobody answers on, left by a forwarder that did not end cleanly,
// is removed. It returns an empty, non-nil slice when none runs.
func CollectStats(ctx context.Context, dir string) []Process {
	return statsock.Collect[Process](ctx, dir, "forward")
}
