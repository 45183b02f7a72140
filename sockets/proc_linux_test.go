package sockets

import (
	"net"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// socketFDs opens n UDP sockets in this process, closes every seventh
// again to leave holes in the descriptor table, and moves one to the
// unused descriptor high, beyond a run of unused numbers. It returns the
// inodes of those left open; they are closed when the test ends.
func socketFDs(t *testing.T, n, high int) []uint64 {
	t.Helper()
	var fds []int
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	for i := range n {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if i%7 == 3 {
			unix.Close(fd)
			continue
		}
		fds = append(fds, fd)
	}
	var st unix.Stat_t
	if unix.Fstat(high, &st) == nil {
		t.Fatalf("descriptor %d is in use already", high)
	}
	if err := unix.Dup3(fds[len(fds)-1], high, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	unix.Close(fds[len(fds)-1])
	fds[len(fds)-1] = high
	var inodes []uint64
	for _, fd := range fds {
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
		inodes = append(inodes, st.Ino)
	}
	return inodes
}

// sockets calls fn with the inode of every socket among pid's open files,
// in descriptor order, until fn returns false: attribution's use of each
// and socket, without its slots.
func (r *fdReader) sockets(pid int, fn func(inode uint64) bool) error {
	return r.each(pid, func(dfd, fd int, name *byte) (bool, bool) {
		inode, open, ok := r.socket(dfd, name)
		if !ok {
			return open, true
		}
		return true, fn(inode)
	})
}

// procSockets is the reference the fdReader must agree with: the inodes
// of the sockets among pid's open files, read the plain way.
func procSockets(t *testing.T, pid int) []uint64 {
	t.Helper()
	dir := procRoot + "/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, e := range ents {
		l, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		if ino, ok := socketInode([]byte(l)); ok {
			out = append(out, ino)
		}
	}
	return out
}

func TestFDReaderSockets(t *testing.T) {
	mine := socketFDs(t, 300, 1500)
	want := procSockets(t, os.Getpid())
	slices.Sort(want)
	for _, m := range mine {
		if _, ok := slices.BinarySearch(want, m); !ok {
			t.Fatalf("the reference scan misses socket inode %d", m)
		}
	}
	modes := []struct {
		name    string
		countOK bool
	}{{"listing /proc/PID/fd", false}}
	if fdCountWorks() {
		modes = append(modes, struct {
			name    string
			countOK bool
		}{"by number, from the count of open files", true})
	} else {
		t.Log("stat of /proc/PID/fd gives no count of open files here (Linux before 6.2): only listing is tested")
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			r := newFDReader(m.countOK)
			var got []uint64
			if err := r.sockets(os.Getpid(), func(ino uint64) bool { got = append(got, ino); return true }); err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("fdReader.sockets(self) found %d sockets; want the %d of /proc/self/fd (missing %v, extra or twice %v)",
					len(got), len(want), minus(want, got), minus(got, want))
			}

			// fn returning false ends the scan.
			calls := 0
			r.sockets(os.Getpid(), func(uint64) bool { calls++; return false })
			if calls != 1 {
				t.Errorf("fdReader.sockets called fn %d times after it returned false; want 1", calls)
			}

			// A process that has gone, and one that never was.
			if err := r.sockets(1<<22+1, func(uint64) bool { return true }); err != nil {
				t.Errorf("fdReader.sockets(no such process) = %v; want nil", err)
			}
		})
	}
}

// TestFDReaderProbeStops checks that reading by number gives up on a
// sparse table, and goes on from where it stopped.
func TestFDReaderProbeStops(t *testing.T) {
	if !fdCountWorks() {
		t.Skip("stat of /proc/PID/fd gives no count of open files here (Linux before 6.2)")
	}
	socketFDs(t, 100, 1700)
	dfd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstat(dfd, &st); err != nil {
		t.Fatal(err)
	}
	r := newFDReader(true)
	next, done := r.probe(dfd, int(st.Size), func(dfd, fd int, name *byte) (bool, bool) {
		_, open, _ := r.socket(dfd, name)
		return open, true
	})
	if done || next == 0 || next >= 1700 {
		t.Errorf("probe of a table with descriptor 1700 among %d = (%d, %v); want to give up before 1700", st.Size, next, done)
	}
}

func TestSlotIndex(t *testing.T) {
	socks := func(inodes ...uint64) []Socket {
		var out []Socket
		for _, ino := range inodes {
			out = append(out, Socket{Inode: ino, State: Established})
		}
		return out
	}
	tests := []struct {
		name   string
		socks  []Socket
		want   func(*Socket) bool
		flat   bool
		slots  int
		absent []uint64
	}{
		{"close together", socks(1000, 1002, 1001, 1005), nil, true, 4, []uint64{0, 999, 1003, 1006, 1 << 40}},
		{"a listed socket twice", socks(1000, 1001, 1000), nil, true, 2, []uint64{1002}},
		{"no inode", socks(0, 7, 0), nil, true, 1, []uint64{0, 6, 8}},
		{"far apart", socks(10, 1<<30, 5<<30), nil, false, 3, []uint64{0, 11, 1<<30 + 1}},
		{"selected", socks(1, 2, 3, 4), func(s *Socket) bool { return s.Inode%2 == 0 }, true, 2, []uint64{1, 3}},
		{"none", socks(0), nil, false, 0, []uint64{0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newSlotIndex(tt.socks, tt.want)
			if x.n != tt.slots {
				t.Fatalf("newSlotIndex: %d slots; want %d", x.n, tt.slots)
			}
			if tt.slots > 0 && (x.flat != nil) != tt.flat {
				t.Errorf("newSlotIndex: flat table %v; want %v", x.flat != nil, tt.flat)
			}
			seen := map[int32]uint64{}
			for _, s := range tt.socks {
				if s.Inode == 0 || (tt.want != nil && !tt.want(&s)) {
					continue
				}
				i, ok := x.slot(s.Inode)
				if !ok || i < 0 || int(i) >= x.n {
					t.Fatalf("slot(%d) = %d, %v; want a slot below %d", s.Inode, i, ok, x.n)
				}
				if other, dup := seen[i]; dup && other != s.Inode {
					t.Errorf("slot(%d) = slot(%d) = %d", s.Inode, other, i)
				}
				seen[i] = s.Inode
			}
			for _, ino := range tt.absent {
				if i, ok := x.slot(ino); ok {
					t.Errorf("slot(%d) = %d; want none", ino, i)
				}
			}
		})
	}
}

// minus returns the elements of a (sorted) not in b, as often as they are
// in a more than in b.
func minus(a, b []uint64) []uint64 {
	var out []uint64
	b = slices.Clone(b)
	for _, x := range a {
		if i := slices.Index(b, x); i >= 0 {
			b = slices.Delete(b, i, i+1)
			continue
		}
		out = append(out, x)
	}
	return out
}

// TestFileRefs compares a child's descriptors with this process's
// descriptor of a listener by kcmp: only the child's copy of it matches.
func TestFileRefs(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lf, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	fi, err := lf.Stat()
	if err != nil {
		t.Fatal(err)
	}
	inode := fi.Sys().(*syscall.Stat_t).Ino
	other, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	of, err := other.(*net.UDPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer of.Close()
	// The child holds the UDP socket as descriptor 3 and the listener as 4.
	child := StartHelper(t, "hold", os.Args[0], []string{"-test.run=^$"}, of, lf).Process.Pid

	refs := newFileRefs(1)
	if refs.ready() {
		t.Fatal("fileRefs ready before any reference")
	}
	refs.offer(0, int32(os.Getpid()), int32(lf.Fd()), inode)
	if !refs.ready() {
		t.Fatal("fileRefs not ready with a reference for its one socket")
	}
	for fd, want := range map[int]int32{3: -1, 4: 0} {
		open, slot, ok := refs.compare(child, fd)
		if !ok && refs.broken.Load() {
			t.Skip("kcmp(2) is not available here (no CONFIG_KCMP, or a seccomp filter)")
		}
		if !ok || !open || slot != want {
			t.Errorf("compare(child, %d) = open %v, slot %d, ok %v; want open, slot %d", fd, open, slot, ok, want)
		}
	}
	if open, _, ok := refs.compare(child, 900); !ok || open {
		t.Errorf("compare(child, 900) = open %v, ok %v; want a descriptor that is not open", open, ok)
	}
	if !refs.used() || !refs.valid() {
		t.Errorf("fileRefs used %v, valid %v; want both", refs.used(), refs.valid())
	}
	// A reference closed (or its number reused) is no longer valid.
	lf.Close()
	if refs.valid() {
		t.Error("fileRefs valid after its descriptor was closed")
	}
}
