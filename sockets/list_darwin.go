package sockets

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"time"

	psnet "github.com/shirou/gopsutil/v4/net"
	"github.com/shirou/gopsutil/v4/process"
	"golang.org/x/sys/unix"
)

// List returns the sockets q selects, attributed to processes when
// q.Processes is set.
//
// On macOS the table comes from gopsutil, which runs lsof (/usr/sbin/lsof,
// part of macOS) and parses its output; process details come from the
// kernel through sysctl (kern.proc, kern.procargs2) and libproc. As a
// result:
//   - Only sockets that some process holds are listed: TIME_WAIT and other
//     orphaned connections are missing.
//   - Without root, lsof sees only this user's processes, so other users'
//     sockets are missing and the Table is marked Partial.
//   - A socket held by several processes is one Socket with several
//     Processes; distinct sockets with the same addresses and state
//     (SO_REUSEPORT) are merged the same way.
//   - UDP sockets are Established when lsof shows a peer, Close otherwise.
//   - There is no MPTCP, no inode, cookie, queue sizes, timers, cgroup or
//     systemd unit, and NetNS is not supported.
func List(ctx context.Context, q Query) (*Table, error) {
	if q.NetNS != "" {
		return nil, fmt.Errorf("sockets: network namespaces: %w", ErrNotImplemented)
	}
	t := &Table{Partial: os.Geteuid() != 0}
	kind := lsofKind(q)
	if kind == "" {
		return t, nil
	}
	stats, err := psnet.ConnectionsWithContext(ctx, kind)
	if err != nil {
		return nil, fmt.Errorf("sockets: list %s sockets with lsof: %w", kind, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows := make([]connRow, 0, len(stats))
	for _, c := range stats {
		r := connRow{
			LocalIP: c.Laddr.IP, LocalPort: c.Laddr.Port,
			RemoteIP: c.Raddr.IP, RemotePort: c.Raddr.Port,
			Status: c.Status, PID: c.Pid,
		}
		switch c.Type {
		case unix.SOCK_STREAM:
			r.Proto = TCP
		case unix.SOCK_DGRAM:
			r.Proto = UDP
		default:
			continue
		}
		switch c.Family {
		case unix.AF_INET:
			r.Family = IPv4
		case unix.AF_INET6:
			r.Family = IPv6
		default:
			continue
		}
		rows = append(rows, r)
	}
	var holders [][]int
	t.Sockets, holders = socketsFromRows(q, rows)

	pr := &darwinProcs{ctx: ctx, users: map[uint32]string{}, uids: map[int]uint32{}}
	if q.Processes {
		attachHolders(t, holders, pr.process)
		return t, ctx.Err()
	}
	// The kernel reports no owner of a socket here; the first holder's
	// effective UID stands in, as it does with attribution.
	for i, pids := range holders {
		if len(pids) > 0 {
			if uid, ok := pr.uid(pids[0]); ok {
				t.Sockets[i].UID = uid
			}
		}
	}
	return t, ctx.Err()
}

// darwinProcs reads process details with gopsutil and caches UIDs and
// user names. It is not safe for concurrent use.
type darwinProcs struct {
	ctx   context.Context
	users map[uint32]string
	uids  map[int]uint32
}

// uid returns the effective UID of pid.
func (r *darwinProcs) uid(pid int) (uint32, bool) {
	if u, ok := r.uids[pid]; ok {
		return u, true
	}
	p, err := process.NewProcessWithContext(r.ctx, int32(pid))
	if err != nil {
		return 0, false
	}
	uids, err := p.UidsWithContext(r.ctx)
	if err != nil || len(uids) == 0 {
		return 0, false
	}
	r.uids[pid] = uids[0]
	return uids[0], true
}

// process returns the details of pid, or nil when it has gone. Fields the
// caller may not read (another user's command line, without root) stay
// empty.
func (r *darwinProcs) process(pid int) *Process {
	p, err := process.NewProcessWithContext(r.ctx, int32(pid))
	if err != nil {
		return nil
	}
	out := &Process{PID: pid}
	if name, err := p.NameWithContext(r.ctx); err == nil {
		out.Name = name
	} else {
		return nil // kern.proc answers for any live process
	}
	if ppid, err := p.PpidWithContext(r.ctx); err == nil {
		out.PPID = int(ppid)
	}
	if args, err := p.CmdlineSliceWithContext(r.ctx); err == nil {
		out.Cmdline = args
	}
	if exe, err := p.ExeWithContext(r.ctx); err == nil {
		out.Exe = exe
	}
	if uids, err := p.UidsWithContext(r.ctx); err == nil && len(uids) > 0 {
		out.UID = uids[0]
		out.User = r.userName(uids[0])
	}
	if ms, err := p.CreateTimeWithContext(r.ctx); err == nil && ms > 0 {
		out.Start = time.UnixMilli(ms)
	}
	return out
}

func (r *darwinProcs) userName(uid uint32) string {
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
