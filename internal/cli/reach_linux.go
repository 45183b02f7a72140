package cli

import (
	"net"
	"time"

	"github.com/portctl/portctl/netns"
)

// dialIn connects to addr from inside the network namespace whose file is
// ns (this one when empty), as a client there would.
func dialIn(ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	if ns == "" {
		return net.DialTimeout(network, addr, timeout)
	}
	var c net.Conn
	var err error
	if nerr := netns.Do(ns, func() { c, err = net.DialTimeout(network, addr, timeout) }); nerr != nil {
		return nil, nerr
	}
	return c, err
}
