// Command listeners holds TCP listeners and UDP sockets until its standard
// input closes (at most -hold): the listening ports the firewall benchmark
// has portctl firewall evaluate. Each argument is PROTO:ADDR:PORT, with an
// IPv6 address in brackets. It prints "ready" once every socket is bound.
//
//	listeners tcp:0.0.0.0:22 tcp:127.0.0.1:5432 tcp:[::]:80 udp:0.0.0.0:53
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

func main() {
	hold := flag.Duration("hold", 30*time.Minute, "exit after this long at the latest")
	flag.Parse()
	var keep []io.Closer
	for _, spec := range flag.Args() {
		proto, addr, ok := strings.Cut(spec, ":")
		var err error
		switch {
		case ok && proto == "tcp":
			var l net.Listener
			l, err = net.Listen("tcp", addr)
			if err == nil {
				keep = append(keep, l)
				go accept(l)
			}
		case ok && proto == "udp":
			var c net.PacketConn
			c, err = net.ListenPacket("udp", addr)
			keep = append(keep, c)
		default:
			err = fmt.Errorf("%q is not PROTO:ADDR:PORT with PROTO tcp or udp", spec)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "listeners:", err)
			os.Exit(1)
		}
	}
	fmt.Println("ready")
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-time.After(*hold):
	}
	for _, k := range keep {
		k.Close()
	}
}

func accept(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}
