package statsock

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

type state struct {
	PID  int    `json:"pid"`
	Name string `json:"name"`
}

// TestPublishCollect: a published state is read back; a socket left by a
// process that is gone is removed; another kind is not read.
func TestPublishCollect(t *testing.T) {
	dir := t.TempDir()
	stop, err := Publish(dir, "thing", func() any { return state{PID: os.Getpid(), Name: "a"} })
	if err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "thing-999999.sock")
	if err := os.WriteFile(stale, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got := Collect[state](context.Background(), dir, "thing")
	if len(got) != 1 || got[0].PID != os.Getpid() || got[0].Name != "a" {
		t.Errorf("Collect = %+v; want the one published state", got)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale socket %s is still there (%v)", stale, err)
	}
	if got := Collect[state](context.Background(), dir, "other"); got == nil || len(got) != 0 {
		t.Errorf("Collect of another kind = %#v; want empty, not nil", got)
	}
	stop()
	if _, err := os.Stat(filepath.Join(dir, "thing-"+strconv.Itoa(os.Getpid())+".sock")); !os.IsNotExist(err) {
		t.Errorf("the socket is still there after stop (%v)", err)
	}
	if got := Collect[state](context.Background(), dir, "thing"); len(got) != 0 {
		t.Errorf("Collect after stop = %+v; want none", got)
	}
}

func TestDir(t *testing.T) {
	for _, c := range []struct {
		xdg  string
		euid int
		want string
	}{
		{"/run/user/1000", 1000, "/run/user/1000/portctl"},
		{"", 0, "/run/portctl"},
		{"", 1000, filepath.Join(os.TempDir(), "portctl-1000")},
	} {
		if got := Dir(c.xdg, c.euid); got != c.want {
			t.Errorf("Dir(%q, %d) = %q; want %q", c.xdg, c.euid, got, c.want)
		}
	}
}
