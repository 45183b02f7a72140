//go:build !linux

package forward

import (
	"errors"
	"net/netip"
)

// Outside Linux there are no event loops: every TCP rule runs on the
// goroutine path.

type loops struct{}

type listener struct{ addr netip.AddrPort }

type udpListener struct{ addr netip.AddrPort }

func loopsAvailable() bool { return false }

func newLoops() (*loops, error) { return nil, errors.New("forward: event loops need Linux") }

func (ls *loops) listen(run *running, addr netip.AddrPort) (*listener, error) {
	return nil, errors.New("forward: event loops need Linux")
}

func (ls *loops) unlisten(ln *listener) {}

func (ls *loops) listenUDP(run *running, addr netip.AddrPort) (*udpListener, error) {
	return nil, errors.New("forward: event loops need Linux")
}

func (ls *loops) unlistenUDP(u *udpListener) {}

func (ls *loops) cut(run *running) {}

func (ls *loops) stop() {}
