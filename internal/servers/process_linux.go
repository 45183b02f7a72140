package servers

import (
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// process is a server's main process, which leads its own process group.
type process struct {
	cmd *exec.Cmd
	sig syscall.Signal // its clean shutdown signal
}

// sysProcAttr puts a server in a process group of its own, so that it
// and the children it forks can be signalled together, kills it if the
// test binary dies, and runs it as user when not empty.
func sysProcAttr(user string) (*syscall.SysProcAttr, error) {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if user != "" {
		uid, gid, err := lookupUser(user)
		if err != nil {
			return nil, fmt.Errorf("run as %s: %w", user, err)
		}
		attr.Credential = &syscall.Credential{Uid: uid, Gid: gid}
	}
	return attr, nil
}

// exited reports whether the process has exited, without reaping it: its
// PID, which is also its process group ID, stays ours until Wait.
func (p *process) exited() bool {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, p.cmd.Process.Pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		return err != nil || info.Signo == int32(unix.SIGCHLD)
	}
}

// waitExit waits up to d for the process to exit, without reaping it.
func (p *process) waitExit(d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if p.exited() {
			return true
		}
	}
	return p.exited()
}

// signal sends sig to the process group, and to the process itself should
// it have left the group.
func (p *process) signal(sig syscall.Signal) {
	pid := p.cmd.Process.Pid
	if pgid, err := unix.Getpgid(pid); err == nil && pgid != pid {
		unix.Kill(pid, sig)
	}
	unix.Kill(-pid, sig)
}

// stop sends the process group the clean shutdown signal, then SIGKILL if
// the process has not exited after stopTimeout, then SIGKILL again to
// whatever is left of the group (session children that outlived their
// daemon), and reaps the process. Only the unreaped process keeps its PID
// from being reused, so the group is signalled before Wait.
func (p *process) stop() {
	if !p.exited() {
		p.signal(p.sig)
		if !p.waitExit(stopTimeout) {
			p.signal(unix.SIGKILL)
			p.waitExit(stopTimeout)
		}
	}
	unix.Kill(-p.cmd.Process.Pid, unix.SIGKILL)
	p.cmd.Wait()
}
