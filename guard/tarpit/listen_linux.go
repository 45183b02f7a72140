package tarpit

import (
	"fmt"
	"net"

	"github.com/portctl/portctl/netns"
)

// listen opens the listeners of o, inside o.NetNS when it is set: a
// socket belongs to the namespace of the thread that made it.
func listen(o Options) ([]net.Listener, error) {
	if o.NetNS == "" {
		return listenAll(o)
	}
	var (
		ls  []net.Listener
		err error
	)
	if derr := netns.Do(o.NetNS, func() { ls, err = listenAll(o) }); derr != nil {
		return nil, fmt.Errorf("tarpit: %w", derr)
	}
	return ls, err
}
