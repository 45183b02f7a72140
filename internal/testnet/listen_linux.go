//go:build linux

package testnet

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Listen opens a TCP listener inside the namespace on its address and the
// given port (0 for any), accepting and closing connections until the test
// ends. The socket is made by one locked thread that enters the namespace
// and comes back.
func (n *Namespace) Listen(t testing.TB, port uint16) netip.AddrPort {
	t.Helper()
	l, err := n.inside(func() (net.Listener, error) {
		return net.Listen("tcp", netip.AddrPortFrom(n.Peer, port).String())
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", n.Name, err)
	}
	return serve(t, l)
}

// inside runs fn on a thread inside the namespace.
func (n *Namespace) inside(fn func() (net.Listener, error)) (net.Listener, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return nil, err
	}
	defer orig.Close()
	ns, err := os.Open("/run/netns/" + n.Name)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, err
	}
	l, lerr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		panic("testnet: cannot return to the test's network namespace: " + err.Error())
	}
	return l, lerr
}
