// Command listen holds TCP listeners on the given ports of an address until
// its standard input closes (at most -hold): the open ports of a scan
// benchmark.
//
//	listen -addr 127.0.0.1 -hold 10m 22 80 443 8080
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1", "address to listen on")
	hold := flag.Duration("hold", 10*time.Minute, "exit after this long at the latest")
	flag.Parse()
	for _, p := range flag.Args() {
		l, err := net.Listen("tcp", net.JoinHostPort(*addr, p))
		if err != nil {
			fmt.Fprintln(os.Stderr, "listen:", err)
			os.Exit(1)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	fmt.Println("ready")
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-time.After(*hold):
	}
}
