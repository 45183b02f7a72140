package flood

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/portctl/portctl/netns"
	"github.com/portctl/portctl/sockets"
)

// Read returns the signs of the namespace o.NetNS names (this process's
// when empty): the kernel's counters and settings, read on a thread that
// has entered the namespace, and its TCP listeners. Entering another
// namespace needs root or CAP_SYS_ADMIN; the error then wraps
// os.ErrPermission.
func Read(ctx context.Context, o Options) (Status, error) {
	st := Status{Time: time.Now(), Settings: UnknownSettings}
	var rerr error
	fetch := func() { rerr = readKernel(&st) }
	if o.NetNS == "" {
		fetch()
	} else if err := netns.Do(o.NetNS, fetch); err != nil {
		return Status{}, fmt.Errorf("flood: %w", err)
	}
	if rerr != nil {
		return Status{}, rerr
	}
	st.NetNS = label(o.NetNS, st.Inode)
	st.Listeners = []Listener{}
	if o.SkipListeners {
		return st, nil
	}
	t, err := sockets.List(ctx, sockets.Query{Protos: sockets.TCP, Families: sockets.AllFamilies,
		States: sockets.StatesOf(sockets.Listen), Processes: o.Processes, NetNS: o.NetNS})
	if err != nil {
		return Status{}, fmt.Errorf("flood: listeners: %w", err)
	}
	for _, s := range t.Sockets {
		l := Listener{Local: s.Local, Queue: s.RecvQ, Backlog: s.SendQ}
		if len(s.Processes) > 0 {
			l.PID, l.Process = s.Processes[0].PID, s.Processes[0].Name
		}
		st.Listeners = append(st.Listeners, l)
	}
	sortListeners(st.Listeners)
	return st, nil
}

// readKernel reads the counters, the settings and the namespace's inode
// as the calling thread sees them. /proc/thread-self/net is the thread's
// namespace; /proc/self/net, the main thread's, may be another.
func readKernel(st *Status) error {
	groups := map[string]map[string]uint64{}
	for _, f := range []string{"netstat", "snmp"} {
		b, err := os.ReadFile("/proc/thread-self/net/" + f)
		if err != nil {
			return fmt.Errorf("flood: %w", err)
		}
		g, err := ParseNetstat(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("flood: /proc/net/%s: %w", f, err)
		}
		maps.Copy(groups, g)
	}
	st.Counters = CountersFrom(groups)
	for _, s := range []struct {
		path string
		v    *int
	}{
		{"/proc/sys/net/ipv4/tcp_syncookies", &st.Settings.Syncookies},
		{"/proc/sys/net/ipv4/tcp_max_syn_backlog", &st.Settings.MaxSynBacklog},
		{"/proc/sys/net/core/somaxconn", &st.Settings.Somaxconn},
	} {
		if b, err := os.ReadFile(s.path); err == nil {
			if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v >= 0 {
				*s.v = v
			}
		}
	}
	if link, err := os.Readlink("/proc/thread-self/ns/net"); err == nil {
		st.Inode, _ = netns.ParseLink([]byte(link))
	}
	return nil
}

// label names the namespace at path (this process's when empty) whose
// inode is ino: "host" for PID 1's (or this process's, when PID 1's cannot
// be read), its name under /run/netns, or "net:[INODE]".
func label(path string, ino uint64) string {
	if link, err := os.Readlink("/proc/1/ns/net"); err == nil {
		if host, ok := netns.ParseLink([]byte(link)); ok && host == ino {
			return "host"
		}
	} else if path == "" {
		return "host"
	}
	if dir, name := filepath.Split(path); filepath.Clean(dir) == "/run/netns" {
		return name
	}
	return (netns.Namespace{Inode: ino}).Label()
}
