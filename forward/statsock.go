package forward

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Process is one running forwarder's counters, as its stats socket gives
// them.
type Process struct {
	PID   int     `json:"pid"`
	Rules []Stats `json:"rules"`
}

// StatsDir returns the directory where running forwarders publish their
// stats sockets: $XDG_RUNTIME_DIR/portctl, else /run/portctl for root, else
// a directory of the user's own under the temporary directory.
func StatsDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "portctl")
	}
	if os.Geteuid() == 0 {
		return "/run/portctl"
	}
	return filepath.Join(os.TempDir(), "portctl-"+strconv.Itoa(os.Geteuid()))
}

// PublishStats makes f's counters readable by CollectStats: it listens on
// a unix socket forward-PID.sock in dir and answers every connection with
// the counters as JSON. The returned function closes and removes the
// socket.
func PublishStats(f *Forwarder, dir string) (stop func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "forward-"+strconv.Itoa(os.Getpid())+".sock")
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			json.NewEncoder(c).Encode(Process{PID: os.Getpid(), Rules: f.Stats()})
			c.Close()
		}
	}()
	return func() {
		l.Close()
		os.Remove(path)
	}, nil
}

// CollectStats asks every forwarder publishing in dir for its counters. A
// socket nobody answers on, left by a forwarder that did not end cleanly,
// is removed. It returns an empty, non-nil slice when none runs.
func CollectStats(ctx context.Context, dir string) []Process {
	socks, _ := filepath.Glob(filepath.Join(dir, "forward-*.sock"))
	procs := []Process{}
	var d net.Dialer
	for _, s := range socks {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(dctx, "unix", s)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				os.Remove(s)
			}
			continue
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		var p Process
		err = json.NewDecoder(c).Decode(&p)
		c.Close()
		if err == nil {
			procs = append(procs, p)
		}
	}
	return procs
}
