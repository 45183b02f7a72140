package netns

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// List returns every network namespace of the host that a process is in
// (found through /proc/*/ns/net) or that has a name under /run/netns: the
// host's first, then the named ones by name, then the rest by inode.
// Unreadable counts the processes whose namespace could not be read (other
// users' processes, without root); they are left out.
func List() (nss []Namespace, unreadable int, err error) {
	return list("/proc", "/run/netns")
}

func list(procRoot, runDir string) ([]Namespace, int, error) {
	d, err := os.Open(procRoot)
	if err != nil {
		return nil, 0, fmt.Errorf("netns: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, 0, fmt.Errorf("netns: %w", err)
	}
	byInode := map[uint64]*Namespace{}
	var order []uint64
	add := func(ino uint64) *Namespace {
		n, ok := byInode[ino]
		if !ok {
			n = &Namespace{Inode: ino}
			byInode[ino] = n
			order = append(order, ino)
		}
		return n
	}
	unreadable := 0
	buf := make([]byte, 64)
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		k, err := unix.Readlink(procRoot+"/"+name+"/ns/net", buf)
		if err != nil {
			if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
				unreadable++
			}
			continue // or the process has gone, or it is a kernel thread
		}
		ino, ok := ParseLink(buf[:k])
		if !ok {
			continue
		}
		n := add(ino)
		n.PIDs = append(n.PIDs, pid)
		if pid == 1 {
			n.Host = true
		}
	}
	if ents, err := os.ReadDir(runDir); err == nil {
		for _, e := range ents {
			var st unix.Stat_t
			if unix.Stat(runDir+"/"+e.Name(), &st) != nil || st.Ino == 0 {
				continue // not a namespace bind mount, or being deleted
			}
			if n := add(st.Ino); n.Name == "" {
				n.Name, n.Path = e.Name(), runDir+"/"+e.Name()
			}
		}
	}
	if k, err := unix.Readlink(procRoot+"/self/ns/net", buf); err == nil {
		if ino, ok := ParseLink(buf[:k]); ok {
			if n, ok := byInode[ino]; ok {
				n.Self = true
				// PID 1 can refuse even root (a sandbox's non-dumpable
				// init): this process's namespace stands for the host's.
				n.Host = n.Host || !slices.ContainsFunc(order, func(ino uint64) bool { return byInode[ino].Host })
			}
		}
	}
	out := make([]Namespace, 0, len(order))
	for _, ino := range order {
		n := byInode[ino]
		slices.Sort(n.PIDs)
		if n.Path == "" {
			n.Path = procRoot + "/" + strconv.Itoa(n.PIDs[0]) + "/ns/net"
		}
		out = append(out, *n)
	}
	// The host's first, then named ones by name, then the rest by inode.
	rank := func(n Namespace) int {
		switch {
		case n.Host:
			return 0
		case n.Name != "":
			return 1
		}
		return 2
	}
	slices.SortFunc(out, func(a, b Namespace) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Inode, b.Inode))
	})
	return out, unreadable, nil
}
