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

// markLimit is the most sockets for which, when every holder is wanted, a
// process's scan ends as soon as it has shown to hold all of them (who's
// listener in each of a server's workers, each with thousands of
// connections): each worker keeps a mark per socket.
const markLimit = 4096

// kcmpMax is the most sockets for which, when every holder is wanted and
// a holder of each is known, the other processes' descriptors are
// compared with that holder's by kcmp(2) instead of read with readlink.
// KCMP_FILE tells whether two descriptors refer to the same open file,
// and a socket has one open file, whoever holds it: a comparison costs the
// kernel no path lookup, about a quarter of a readlink, so up to 3 of them
// per descriptor still cost less. This is what who asks: every holder of a
// listener, when thousands of connections in other processes must be
// ruled out one by one.
const kcmpMax = 3

// attribute finds the processes holding the table's sockets (those
// AttributeIf selects). It scans /proc/*/fd with several workers and, unless
// all is set, stops once every socket has a holder.
func attribute(ctx context.Context, t *Table, all bool, want func(*Socket) bool) error {
	slots := newSlotIndex(t.Sockets, want)
	if slots.n == 0 {
		return nil
	}
	pids, err := listPIDs()
	if err != nil {
		return err
	}
	useKcmp := all && slots.n <= kcmpMax
	h, partial, refs := scanHolders(ctx, pids, slots, all, useKcmp)
	if err := ctx.Err(); err != nil {
		return err
	}
	if refs.used() && !refs.valid() {
		// A process compared against has let go of the socket, or gone,
		// while the others were compared with it: read them all again.
		h, partial, _ = scanHolders(ctx, pids, slots, all, false)
		if err := ctx.Err(); err != nil {
			return err
		}
	}

	pr := newProcReader()
	// Sockets held by one process share one read-only slice.
	single := map[int32][]*Process{}
	for i := range t.Sockets {
		s := &t.Sockets[i]
		if s.Inode == 0 {
			continue
		}
		si, ok := slots.slot(s.Inode)
		if !ok {
			continue
		}
		pid := h.first[si].Load()
		if pid == 0 {
			t.Unattributed++
			continue
		}
		extra := h.more[si]
		if len(extra) == 0 {
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
		for _, pid := range append([]int32{pid}, extra...) {
			if p := pr.process(int(pid)); p != nil {
				s.Processes = append(s.Processes, p)
			}
		}
		slices.SortFunc(s.Processes, func(a, b *Process) int { return a.PID - b.PID })
	}
	t.Partial = partial
	return nil
}

// holders are the processes a scan found holding each slot's socket.
// Safe for concurrent use.
type holders struct {
	// Most sockets have one holder: the first found goes in a flat table,
	// and only the rare further holders (fork after listen) in a map.
	first     []atomic.Int32
	mu        sync.Mutex
	more      map[int32][]int32
	remaining atomic.Int64 // slots without a holder yet
}

func newHolders(n int) *holders {
	h := &holders{first: make([]atomic.Int32, n), more: map[int32][]int32{}}
	h.remaining.Store(int64(n))
	return h
}

// add records that pid holds slot's socket. It reports whether that was
// the last socket without a holder.
func (h *holders) add(slot, pid int32) bool {
	if h.first[slot].CompareAndSwap(0, pid) {
		return h.remaining.Add(-1) == 0
	}
	if h.first[slot].Load() != pid {
		h.mu.Lock()
		if !slices.Contains(h.more[slot], pid) {
			h.more[slot] = append(h.more[slot], pid)
		}
		h.mu.Unlock()
	}
	return false
}

// scanHolders reads the open files of pids with several workers and finds
// the holders of the sockets in slots; unless all is set it stops once
// each has one. With useKcmp, once a holder of every socket is known, the
// remaining descriptors are compared with the holders' (see kcmpMax); the
// references it compared with are returned, to be checked once done.
func scanHolders(ctx context.Context, pids []int, slots *slotIndex, all, useKcmp bool) (h *holders, partial bool, refs *fileRefs) {
	h = newHolders(slots.n)
	if useKcmp {
		refs = newFileRefs(slots.n)
	}
	var part atomic.Bool
	stop := func() bool { return ctx.Err() != nil || (!all && h.remaining.Load() == 0) }

	workers := min(max(runtime.GOMAXPROCS(0)*2, 4), 16, len(pids))
	jobs := make(chan int, len(pids))
	for _, p := range pids {
		jobs <- p
	}
	close(jobs)
	countOK := fdCountWorks()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := newFDReader(countOK)
			// mark[slot] is the last process seen holding the socket:
			// with every holder wanted, a process that has shown to hold
			// every socket has nothing more to tell.
			var mark []int32
			if all && slots.n <= markLimit {
				mark = make([]int32, slots.n)
			}
			for pid := range jobs {
				if stop() {
					return
				}
				pid32 := int32(pid)
				held, n := 0, 0
				compare := refs != nil // until kcmp refuses this process
				// found records a descriptor of slot's socket and says
				// whether to go on with this process.
				found := func(slot int32) bool {
					if mark != nil {
						if mark[slot] == pid32 {
							return true // another descriptor of the same socket
						}
						mark[slot] = pid32
						held++
					}
					if h.add(slot, pid32) && !all {
						return false
					}
					return held < slots.n
				}
				err := r.each(pid, func(dfd, fd int, name *byte) (open, more bool) {
					if n++; n%256 == 0 && stop() {
						return true, false
					}
					if compare && refs.ready() {
						open, slot, ok := refs.compare(pid, fd)
						if ok {
							if slot < 0 {
								return open, true
							}
							return true, found(slot)
						}
						compare = false
					}
					inode, open, isSocket := r.socket(dfd, name)
					if !isSocket {
						return open, true
					}
					slot, ok := slots.slot(inode)
					if !ok {
						return true, true
					}
					refs.offer(slot, pid32, int32(fd), inode)
					return true, found(slot)
				})
				if err != nil && errors.Is(err, os.ErrPermission) {
					part.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return h, part.Load(), refs
}

// fileRefs are, for each wanted socket, a descriptor of a process found
// holding it. Once every socket has one, the descriptors of other
// processes are compared with these by kcmp(2). A nil *fileRefs is never
// ready. Safe for concurrent use.
type fileRefs struct {
	mu      sync.Mutex
	refs    []fileRef // by slot; pid 0 for none yet
	unset   int
	isSet   atomic.Bool  // every slot has a reference
	refused atomic.Int32 // processes kcmp refused
	broken  atomic.Bool  // kcmp is not to be had: no more comparisons
	usedAt  atomic.Bool  // a comparison was made
}

// kcmpRefusals is how many processes kcmp may refuse before no more are
// compared: a seccomp filter refuses every one, while a process can be
// out of reach on its own (here, PID 1 of a VM's guest agent).
const kcmpRefusals = 8

// fileRef is a process's descriptor of a socket with the given inode.
type fileRef struct {
	pid, fd int32
	inode   uint64
}

func newFileRefs(n int) *fileRefs {
	return &fileRefs{refs: make([]fileRef, n), unset: n}
}

// offer records a holder's descriptor of slot's socket, if it has none.
func (f *fileRefs) offer(slot, pid, fd int32, inode uint64) {
	if f == nil || f.isSet.Load() {
		return
	}
	f.mu.Lock()
	if f.refs[slot].pid == 0 {
		f.refs[slot] = fileRef{pid, fd, inode}
		if f.unset--; f.unset == 0 {
			f.isSet.Store(true)
		}
	}
	f.mu.Unlock()
}

// ready reports whether descriptors can be compared now.
func (f *fileRefs) ready() bool {
	return f != nil && f.isSet.Load() && !f.broken.Load()
}

// compare compares pid's descriptor fd with each reference: whether it is
// open, and the slot of the socket it is (-1 for none). ok is false when
// kcmp cannot tell for this process: the caller reads its descriptors
// instead.
func (f *fileRefs) compare(pid, fd int) (open bool, slot int32, ok bool) {
	f.usedAt.Store(true)
	for i, ref := range f.refs {
		r, _, errno := unix.Syscall6(unix.SYS_KCMP, uintptr(pid), uintptr(ref.pid), kcmpFile, uintptr(fd), uintptr(ref.fd), 0)
		switch errno {
		case 0:
			if r == 0 {
				return true, int32(i), true
			}
		case unix.EBADF, unix.ESRCH:
			// Not open, or the process has gone. (Were it the reference
			// that had, valid says so once the scan is done.)
			return false, -1, true
		case unix.ENOSYS: // a kernel without CONFIG_KCMP
			f.broken.Store(true)
			return false, -1, false
		default:
			// EPERM from a seccomp filter (a container's default), or
			// for a process kcmp's ptrace check refuses though its
			// descriptors can be read.
			if f.refused.Add(1) >= kcmpRefusals {
				f.broken.Store(true)
			}
			return false, -1, false
		}
	}
	return true, -1, true
}

// kcmpFile is KCMP_FILE (include/uapi/linux/kcmp.h): compare two
// processes' descriptors.
const kcmpFile = 0

// used reports whether any comparison was made.
func (f *fileRefs) used() bool { return f != nil && f.usedAt.Load() }

// valid reports whether every reference still is what it was when found:
// if one was closed, or its number reused, during the scan, comparisons
// with it may have been wrong.
func (f *fileRefs) valid() bool {
	r := newFDReader(false)
	for _, ref := range f.refs {
		dfd, err := unix.Open(procRoot+"/"+strconv.Itoa(int(ref.pid))+"/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return false
		}
		r.name = append(strconv.AppendInt(r.name[:0], int64(ref.fd), 10), 0)
		inode, _, ok := r.socket(dfd, &r.name[0])
		unix.Close(dfd)
		if !ok || inode != ref.inode {
			return false
		}
	}
	return true
}

// slotIndex numbers the inodes of the sockets to attribute 0, 1, 2, … (a
// socket listed twice, as MPTCP merging can leave it, has one slot).
// Socket inodes come from one counter and a table's are usually close
// together: then the index is a flat table over their range, faster than a
// map at tens of thousands of lookups; else a map. It is read-only once
// made, and safe for concurrent reads.
type slotIndex struct {
	n      int // how many slots
	base   uint64
	flat   []int32 // slot+1 by inode-base; 0 for none
	byNode map[uint64]int32
}

// newSlotIndex indexes the inodes of the sockets want selects (all, if
// want is nil).
func newSlotIndex(socks []Socket, want func(*Socket) bool) *slotIndex {
	x := &slotIndex{}
	wanted := func(s *Socket) bool { return s.Inode != 0 && (want == nil || want(s)) }
	var lo, hi uint64
	count := 0
	for i := range socks {
		if s := &socks[i]; wanted(s) {
			if count == 0 || s.Inode < lo {
				lo = s.Inode
			}
			hi = max(hi, s.Inode)
			count++
		}
	}
	if count == 0 {
		return x
	}
	if span := hi - lo + 1; span <= uint64(4*count+4096) {
		x.base, x.flat = lo, make([]int32, span)
	} else {
		x.byNode = make(map[uint64]int32, count)
	}
	for i := range socks {
		s := &socks[i]
		if !wanted(s) {
			continue
		}
		if x.flat != nil {
			if x.flat[s.Inode-lo] == 0 {
				x.n++
				x.flat[s.Inode-lo] = int32(x.n)
			}
		} else if _, ok := x.byNode[s.Inode]; !ok {
			x.byNode[s.Inode] = int32(x.n)
			x.n++
		}
	}
	return x
}

// slot returns the slot of a wanted socket's inode.
func (x *slotIndex) slot(inode uint64) (int32, bool) {
	if x.flat != nil {
		if inode < x.base || inode-x.base >= uint64(len(x.flat)) {
			return 0, false
		}
		s := x.flat[inode-x.base]
		return s - 1, s != 0
	}
	s, ok := x.byNode[inode]
	return s, ok
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

// fdCountWorks reports whether stat of a /proc/PID/fd directory gives the
// number of open files as its size (Linux 6.2 and later; earlier, 0).
// This process has at least stdin, stdout and the directory itself open.
func fdCountWorks() bool {
	var st unix.Stat_t
	return unix.Stat(procRoot+"/self/fd", &st) == nil && st.Size > 0
}

// fdReader reads a process's open files. Each attribution worker has one;
// it is not safe for concurrent use.
type fdReader struct {
	countOK bool   // fdCountWorks
	dents   []byte // for getdents
	link    []byte // a link's target
	name    []byte // a file descriptor's number, NUL-terminated
}

func newFDReader(countOK bool) *fdReader {
	return &fdReader{countOK: countOK, dents: make([]byte, 32*1024), link: make([]byte, 64), name: make([]byte, 0, 24)}
}

// probeMin is the fewest open files for which fdReader.each reads the
// descriptors by number rather than listing the directory first; a small
// table is often sparse (a shell keeps fd 255), and listing it costs
// little.
const probeMin = 64

// fdVisit is called with each of a process's descriptors: its number, and
// its NUL-terminated name in the process's /proc/PID/fd, open as dfd. It
// reports whether the descriptor was open after all, and whether to go on.
type fdVisit func(dfd, fd int, name *byte) (open, more bool)

// each calls visit with pid's descriptors, in order, until it returns
// false.
//
// Listing /proc/PID/fd costs the kernel a lookup per entry, about as much
// as reading the entry's link, so where the directory's size tells how
// many files are open, a large table is read by number, 0, 1, 2, …, until
// that many were found; a table with many unused numbers is listed after
// all.
func (r *fdReader) each(pid int, visit fdVisit) error {
	dfd, err := unix.Open(procRoot+"/"+strconv.Itoa(pid)+"/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.EACCES || err == unix.EPERM {
			return os.ErrPermission
		}
		return nil // the process has gone
	}
	defer unix.Close(dfd)
	from := 0 // the lowest descriptor not visited yet
	if r.countOK {
		var st unix.Stat_t
		if unix.Fstat(dfd, &st) != nil || st.Size == 0 {
			return nil // gone, or no files (a kernel thread)
		}
		if st.Size >= probeMin {
			var done bool
			if from, done = r.probe(dfd, int(st.Size), visit); done {
				return nil
			}
		}
	}
	r.list(dfd, from, visit)
	return nil
}

// socket reads the link of the descriptor name in dfd with readlinkat,
// relative to the directory: no path building, no string per entry. (A
// readlink never touches the file's own filesystem, so a hung network
// mount cannot block it, as a stat could.) It returns whether the
// descriptor is open, and whether it is a socket and the socket's inode.
func (r *fdReader) socket(dfd int, name *byte) (inode uint64, open, ok bool) {
	n, err := readlinkat(dfd, name, r.link)
	if err != nil {
		return 0, false, false
	}
	inode, ok = socketInode(r.link[:n])
	return inode, true, ok
}

// probe visits descriptors 0, 1, 2, … until count of them were open or
// visit says to stop (done), or it has met more unused numbers than a
// dense table would have; then it returns the number to go on from.
func (r *fdReader) probe(dfd, count int, visit fdVisit) (next int, done bool) {
	misses, maxMisses := 0, count/8+16
	for fd, open := 0, 0; open < count; fd++ {
		r.name = append(strconv.AppendInt(r.name[:0], int64(fd), 10), 0)
		ok, more := visit(dfd, fd, &r.name[0])
		if !more {
			return 0, true
		}
		if ok {
			open++
		} else if misses++; misses > maxMisses {
			return fd + 1, false
		}
	}
	return 0, true
}

// list reads the directory with getdents and visits its descriptors
// numbered from and above.
func (r *fdReader) list(dfd, from int, visit fdVisit) {
	buf := r.dents
	for {
		n, err := unix.Getdents(dfd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		// struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name.
		for off := 0; off+19 < n; {
			reclen := int(binary.NativeEndian.Uint16(buf[off+16 : off+18]))
			if reclen < 20 || off+reclen > n {
				break
			}
			name := buf[off+19 : off+reclen]
			end := bytes.IndexByte(name, 0)
			off += reclen
			if end <= 0 || name[0] == '.' {
				continue // no NUL to end the name with, or . and ..
			}
			fd, err := strconv.Atoi(unsafe.String(&name[0], end))
			if err != nil || fd < from {
				continue
			}
			if _, more := visit(dfd, fd, &name[0]); !more {
				return
			}
		}
	}
}

// readlinkat reads the target of the link named by the NUL-terminated
// name in the directory dfd into buf. unix.Readlinkat would copy the name
// into a new NUL-terminated string on every call.
func readlinkat(dfd int, name *byte, buf []byte) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_READLINKAT, uintptr(dfd), uintptr(unsafe.Pointer(name)),
		uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
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
