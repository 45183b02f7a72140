package sockets

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/user"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// procRoot is where the process table is read from.
const procRoot = "/proc"

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// holder records that a process holds the socket in a slot.
type holder struct {
	pid  int32
	slot int32
}

// attribute finds the processes holding the table's sockets (those
// AttributeIf selects). It scans /proc/*/fd with several workers and, unless
// all is set, stops once every socket has a holder.
func attribute(ctx context.Context, t *Table, all bool, want func(*Socket) bool) error {
	slot := make(map[uint64]int32) // inode -> slot
	for i := range t.Sockets {
		s := &t.Sockets[i]
		if s.Inode != 0 && (want == nil || want(s)) {
			if _, ok := slot[s.Inode]; !ok {
				slot[s.Inode] = int32(len(slot))
			}
		}
	}
	if len(slot) == 0 {
		return nil
	}
	pids, err := listPIDs()
	if err != nil {
		return err
	}
	found := make([]atomic.Bool, len(slot))
	var remaining atomic.Int64
	remaining.Store(int64(len(slot)))
	var partial atomic.Bool
	stop := func() bool { return ctx.Err() != nil || (!all && remaining.Load() == 0) }

	workers := min(max(runtime.GOMAXPROCS(0)*2, 4), 16, len(pids))
	jobs := make(chan int, len(pids))
	for _, p := range pids {
		jobs <- p
	}
	close(jobs)
	results := make([][]holder, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			link := make([]byte, 64)
			buf := make([]byte, 32*1024)
			for pid := range jobs {
				if stop() {
					return
				}
				err := scanFDs(pid, buf, link, func(inode uint64) {
					i, ok := slot[inode]
					if !ok {
						return
					}
					results[w] = append(results[w], holder{int32(pid), i})
					if found[i].CompareAndSwap(false, true) {
						remaining.Add(-1)
					}
				})
				if err != nil && errors.Is(err, os.ErrPermission) {
					partial.Store(true)
				}
			}
		}(w)
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}

	// Most sockets have one holder: keep it in a flat table, and only the
	// rare further holders (fork after listen) in a map.
	first := make([]int32, len(slot))
	more := map[int32][]int32{}
	for _, rs := range results {
		for _, h := range rs {
			switch {
			case first[h.slot] == 0:
				first[h.slot] = h.pid
			case first[h.slot] != h.pid && !slices.Contains(more[h.slot], h.pid):
				more[h.slot] = append(more[h.slot], h.pid)
			}
		}
	}
	pr := newProcReader()
	// Sockets held by one process share one read-only slice.
	single := map[int32][]*Process{}
	for i := range t.Sockets {
		s := &t.Sockets[i]
		si, ok := slot[s.Inode]
		if s.Inode == 0 || !ok {
			continue
		}
		pid := first[si]
		if pid == 0 {
			t.Unattributed++
			continue
		}
		if extra := more[si]; len(extra) == 0 {
			ps, ok := single[pid]
			if !ok {
				if p := pr.process(int(pid)); p != nil {
					ps = []*Process{p}
				}
				single[pid] = ps
			}
			s.Processes = ps
			continue
		}
		for _, pid := range append([]int32{pid}, more[si]...) {
			if p := pr.process(int(pid)); p != nil {
				s.Processes = append(s.Processes, p)
			}
		}
		slices.SortFunc(s.Processes, func(a, b *Process) int { return a.PID - b.PID })
	}
	t.Partial = partial.Load()
	return nil
}

// listPIDs returns the numeric entries of /proc.
func listPIDs() ([]int, error) {
	d, err := os.Open(procRoot)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		if pid, err := strconv.Atoi(n); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// scanFDs calls fn with the inode of every socket among pid's open files.
// It reads the directory with getdents into buf and each link with
// readlinkat relative to it: no path building, no string per entry. (A
// readlink never touches the file's own filesystem, so a hung network
// mount cannot block it, as a stat could.)
func scanFDs(pid int, buf, link []byte, fn func(inode uint64)) error {
	dfd, err := unix.Open(procRoot+"/"+strconv.Itoa(pid)+"/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.EACCES || err == unix.EPERM {
			return os.ErrPermission
		}
		return nil // the process has gone
	}
	defer unix.Close(dfd)
	for {
		n, err := unix.Getdents(dfd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return nil
		}
		// struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name.
		for off := 0; off+19 < n; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16 : off+18]))
			if reclen < 20 || off+reclen > n {
				break
			}
			name := buf[off+19 : off+reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			off += reclen
			if len(name) == 0 || name[0] == '.' {
				continue
			}
			k, err := unix.Readlinkat(dfd, unsafe.String(&name[0], len(name)), link)
			if err != nil || k <= 0 {
				continue
			}
			if inode, ok := socketInode(link[:k]); ok {
				fn(inode)
			}
		}
	}
}

// procReader reads process details once per PID and caches user names.
type procReader struct {
	boot  time.Time
	procs map[int]*Process
	users map[uint32]string
}

func newProcReader() *procReader {
	r := &procReader{procs: map[int]*Process{}, users: map[uint32]string{}}
	if b, err := os.ReadFile(procRoot + "/stat"); err == nil {
		if sec, err := parseBootTime(b); err == nil {
			r.boot = time.Unix(sec, 0)
		}
	}
	return r
}

// process returns the details of pid, or nil when it has gone.
func (r *procReader) process(pid int) *Process {
	if p, ok := r.procs[pid]; ok {
		return p
	}
	base := procRoot + "/" + strconv.Itoa(pid)
	b, err := os.ReadFile(base + "/stat")
	if err != nil {
		r.procs[pid] = nil
		return nil
	}
	st, err := parseStat(b)
	if err != nil {
		r.procs[pid] = nil
		return nil
	}
	p := &Process{PID: pid, PPID: st.PPID, Name: st.Comm}
	if !r.boot.IsZero() {
		p.Start = r.boot.Add(time.Duration(st.StartTime) * time.Second / clockTicks)
	}
	if b, err := os.ReadFile(base + "/cmdline"); err == nil {
		p.Cmdline = parseCmdline(b)
	}
	if exe, err := os.Readlink(base + "/exe"); err == nil {
		p.Exe = exe
	}
	var sst unix.Stat_t
	if unix.Stat(base, &sst) == nil {
		p.UID = sst.Uid
		p.User = r.userName(sst.Uid)
	}
	if b, err := os.ReadFile(base + "/cgroup"); err == nil {
		c := parseCgroup(b)
		p.Cgroup, p.Unit, p.Container, p.Runtime, p.Pod = c.Path, c.Unit, c.Container, c.Runtime, c.Pod
	}
	if d, ok := ParseDockerProxy(p.Cmdline); ok {
		p.DockerProxy = &d
	}
	if b, err := os.ReadFile(base + "/environ"); err == nil {
		p.SocketActivated = hasListenFDs(b)
	}
	r.procs[pid] = p
	return p
}

func (r *procReader) userName(uid uint32) string {
	if n, ok := r.users[uid]; ok {
		return n
	}
	n := ""
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		n = u.Username
	}
	r.users[uid] = n
	return n
}
