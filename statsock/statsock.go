// Package statsock lets a long-running portctl process (a forwarder, a
// port mapping kept at the router) publish its live state, and others
// (the dashboard) read it: each process listens on a unix socket
// KIND-PID.sock in a runtime directory and answers every connection with
// its state as one JSON value.
package statsock

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Dir is the directory where running processes publish their sockets,
// from the environment's XDG_RUNTIME_DIR (xdg) and the effective user ID:
// xdg/portctl, else /run/portctl for root, else a directory of the
// user's own under the temporary directory.
func Dir(xdg string, euid int) string {
	if xdg != "" {
		return filepath.Join(xdg, "portctl")
	}
	if euid == 0 {
		return "/run/portctl"
	}
	return filepath.Join(os.TempDir(), "portctl-"+strconv.Itoa(euid))
}

// Publish listens on the unix socket dir/KIND-PID.sock and answers every
// connection with state() encoded as JSON. state is called from another
// goroutine and must be safe for that. The returned function closes and
// removes the socket.
func Publish(dir, kind string, state func() any) (stop func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, kind+"-"+strconv.Itoa(os.Getpid())+".sock")
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
			json.NewEncoder(c).Encode(state())
			c.Close()
		}
	}()
	return func() {
		l.Close()
		os.Remove(path)
	}, nil
}

// Collect asks every process publishing KIND in dir for its state, each
// decoded into a T. A socket nobody answers on, left by a process that
// did not end cleanly, is removed. It returns an empty, non-nil slice
// when none runs.
func Collect[T any](ctx context.Context, dir, kind string) []T {
	socks, _ := filepath.Glob(filepath.Join(dir, kind+"-*.sock"))
	out := []T{}
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
		var v T
		err = json.NewDecoder(c).Decode(&v)
		c.Close()
		if err == nil {
			out = append(out, v)
		}
	}
	return out
}
