package sockets

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	modIPHlpAPI             = windows.NewLazySystemDLL("iphlpapi.dll")
	procGetExtendedTCPTable = modIPHlpAPI.NewProc("GetExtendedTcpTable")
	procGetExtendedUDPTable = modIPHlpAPI.NewProc("GetExtendedUdpTable")
)

// List returns the sockets q selects, attributed to processes when
// q.Processes is set.
//
// On Windows the table comes from iphlpapi's GetExtendedTcpTable and
// GetExtendedUdpTable, which need no privilege and name each socket's
// owning process; process details come from a Toolhelp snapshot (name,
// parent) and, where the process can be opened, from the process itself
// (executable, command line, start time, user). As a result:
//   - Every socket is listed, TIME_WAIT included (with no owner).
//   - The UDP tables hold no remote address, so every UDP socket is
//     reported bound and unconnected (Close).
//   - Windows has no UIDs: UID stays 0 and User is DOMAIN\name.
//   - Without administrator rights some processes (services, other
//     users') cannot be opened: they keep their name and parent, and the
//     Table is marked Partial.
//   - There is no MPTCP, no inode, cookie, queue sizes, timers, cgroup or
//     systemd unit, and NetNS is not supported.
func List(ctx context.Context, q Query) (*Table, error) {
	if q.NetNS != "" {
		return nil, fmt.Errorf("sockets: network namespaces: %w", ErrNotImplemented)
	}
	t := &Table{}
	var holders [][]int
	add := func(socks []Socket, pids []int) {
		for i := range socks {
			if !selects(q, &socks[i]) {
				continue
			}
			t.Sockets = append(t.Sockets, socks[i])
			var h []int
			if pids[i] != 0 { // PID 0, the idle process, stands for none
				h = []int{pids[i]}
			}
			holders = append(holders, h)
		}
	}
	for _, fam := range []struct {
		f  Family
		af uint32
	}{{IPv4, windows.AF_INET}, {IPv6, windows.AF_INET6}} {
		if q.Families&fam.f == 0 {
			continue
		}
		if wantTCP(q) {
			b, err := extendedTable(procGetExtendedTCPTable, fam.af, tcpTableClass(q.States))
			if err != nil {
				return nil, fmt.Errorf("sockets: tcp %v table: %w", fam.f, err)
			}
			socks, pids, err := parseTCPTable(b, fam.f)
			if err != nil {
				return nil, err
			}
			add(socks, pids)
		}
		if wantUDP(q) && udpStatesOf(q).Has(Close) {
			b, err := extendedTable(procGetExtendedUDPTable, fam.af, udpTableOwnerPID)
			if err != nil {
				return nil, fmt.Errorf("sockets: udp %v table: %w", fam.f, err)
			}
			socks, pids, err := parseUDPTable(b, fam.f)
			if err != nil {
				return nil, err
			}
			add(socks, pids)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if q.Processes {
		pr := newWinProcs()
		attachHolders(t, holders, pr.process)
		t.Partial = pr.partial
	}
	return t, ctx.Err()
}

// extendedTable calls GetExtendedTcpTable or GetExtendedUdpTable for one
// address family and table class, growing the buffer until the table fits.
func extendedTable(proc *windows.LazyProc, af, class uint32) ([]byte, error) {
	if err := proc.Find(); err != nil {
		return nil, err
	}
	size := uint32(16 << 10)
	for range 8 {
		buf := make([]byte, size)
		// DWORD GetExtendedTcpTable(PVOID pTcpTable, PDWORD pdwSize,
		// BOOL bOrder, ULONG ulAf, TCP_TABLE_CLASS TableClass, ULONG Reserved)
		r, _, _ := proc.Call(uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0, uintptr(af), uintptr(class), 0)
		switch windows.Errno(r) {
		case windows.ERROR_SUCCESS:
			return buf, nil
		case windows.ERROR_INSUFFICIENT_BUFFER:
			// The table may grow before the next call: leave room.
			size += size/4 + 1024
		default:
			// ERROR_ACCESS_DENIED matches os.ErrPermission (syscall.Errno.Is).
			return nil, windows.Errno(r)
		}
	}
	return nil, errors.New("the table kept growing")
}

// winProc is what a Toolhelp snapshot says of a process.
type winProc struct {
	ppid int
	name string
}

// winProcs reads process details and caches account names. It is not safe
// for concurrent use.
type winProcs struct {
	snap    map[int]winProc
	users   map[string]string // SID -> DOMAIN\name
	partial bool
}

// newWinProcs takes a snapshot of the process list.
func newWinProcs() *winProcs {
	r := &winProcs{snap: map[int]winProc{}, users: map[string]string{}}
	h, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		r.partial = true
		return r
	}
	defer windows.CloseHandle(h)
	var e windows.ProcessEntry32
	e.Size = uint32(unsafe.Sizeof(e))
	for err := windows.Process32First(h, &e); err == nil; err = windows.Process32Next(h, &e) {
		r.snap[int(e.ProcessID)] = winProc{ppid: int(e.ParentProcessID), name: windows.UTF16ToString(e.ExeFile[:])}
	}
	return r
}

// process returns the details of pid, or nil when it has gone.
func (r *winProcs) process(pid int) *Process {
	e, ok := r.snap[pid]
	if !ok {
		return nil
	}
	p := &Process{PID: pid, PPID: e.ppid, Name: e.name}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
			r.partial = true
		}
		return p
	}
	defer windows.CloseHandle(h)

	exe := make([]uint16, windows.MAX_LONG_PATH)
	n := uint32(len(exe))
	if windows.QueryFullProcessImageName(h, 0, &exe[0], &n) == nil {
		p.Exe = windows.UTF16ToString(exe[:n])
	}
	var created, exited, kernel, user windows.Filetime
	if windows.GetProcessTimes(h, &created, &exited, &kernel, &user) == nil {
		p.Start = time.Unix(0, created.Nanoseconds())
	}
	if args, err := commandLine(h); err == nil {
		p.Cmdline = args
	} else if errors.Is(err, windows.ERROR_ACCESS_DENIED) || errors.Is(err, windows.STATUS_ACCESS_DENIED) {
		r.partial = true
	}
	p.User = r.userOf(h)
	return p
}

// userOf returns the DOMAIN\name of the account the process runs as.
func (r *winProcs) userOf(h windows.Handle) string {
	var tok windows.Token
	if err := windows.OpenProcessToken(h, windows.TOKEN_QUERY, &tok); err != nil {
		if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
			r.partial = true
		}
		return ""
	}
	defer tok.Close()
	tu, err := tok.GetTokenUser()
	if err != nil {
		return ""
	}
	sid := tu.User.Sid.String()
	if n, ok := r.users[sid]; ok {
		return n
	}
	n := ""
	if account, domain, _, err := tu.User.Sid.LookupAccount(""); err == nil {
		n = account
		if domain != "" {
			n = domain + `\` + account
		}
	}
	r.users[sid] = n
	return n
}

// commandLine reads a process's command line with
// NtQueryInformationProcess(ProcessCommandLineInformation), which Windows
// 8.1 and later answer for a handle with PROCESS_QUERY_LIMITED_INFORMATION,
// and splits it as the C runtime does.
func commandLine(h windows.Handle) ([]string, error) {
	size := uint32(1024)
	for range 4 {
		buf := make([]byte, size)
		var ret uint32
		err := windows.NtQueryInformationProcess(h, windows.ProcessCommandLineInformation, unsafe.Pointer(&buf[0]), size, &ret)
		switch {
		case err == nil:
			s, err := parseUnicodeString(buf, uint64(uintptr(unsafe.Pointer(&buf[0]))), int(unsafe.Sizeof(uintptr(0))))
			if err != nil || s == "" {
				return nil, err
			}
			return windows.DecomposeCommandLine(s)
		case errors.Is(err, windows.STATUS_INFO_LENGTH_MISMATCH), errors.Is(err, windows.STATUS_BUFFER_TOO_SMALL), errors.Is(err, windows.STATUS_BUFFER_OVERFLOW):
			size = max(ret, 2*size)
		default:
			return nil, err
		}
	}
	return nil, errors.New("sockets: command line kept growing")
}
