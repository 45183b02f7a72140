//go:build !linux

package servers

import (
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// process is a server's main process; servers run on Linux only, and
// start skips the test elsewhere before it makes one.
type process struct {
	cmd *exec.Cmd
	sig syscall.Signal
}

func sysProcAttr(string) (*syscall.SysProcAttr, error) {
	return nil, errors.New("servers: needs Linux")
}

func (p *process) exited() bool                { return true }
func (p *process) waitExit(time.Duration) bool { return true }
func (p *process) stop()                       { p.cmd.Process.Kill(); p.cmd.Wait() }
