// Command echo is the TCP (with -udp, UDP) echo server of the forwarding benchmark
// (bench/forward/run): it writes back whatever a connection sends, one
// goroutine per connection, and closes the connection once it has written
// back -close-after bytes, or once the client has closed its side. It prints
// "ready" on stdout once it listens, and exits after -hold at the latest (or
// on SIGINT or SIGTERM).
//
// Closing first, the server keeps the TIME_WAIT state of each connection on
// its own side, on the port it listens on, so a client that opens tens of
// thousands of short connections a second (bench/forward/connrate) does not
// run out of ephemeral ports; through a forwarder, neither does the
// forwarder's connection to the server.
//
//	echo -addr 127.0.0.1:7000 -close-after 64 -hold 30m
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "`host:port` to listen on")
	closeAfter := flag.Int64("close-after", 0, "close a connection once this many `bytes` are echoed (0: when the client closes)")
	hold := flag.Duration("hold", 30*time.Minute, "exit after this long at the latest")
	udp := flag.Bool("udp", false, "echo UDP datagrams instead, each back to its sender")
	flag.Parse()
	if flag.NArg() > 0 || *closeAfter < 0 || *hold <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *udp {
		pc, err := net.ListenPacket("udp", *addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo:", err)
			os.Exit(1)
		}
		time.AfterFunc(*hold, func() { os.Exit(0) })
		fmt.Println("ready")
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				continue
			}
			pc.WriteTo(buf[:n], from)
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
	time.AfterFunc(*hold, func() { os.Exit(0) })
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of descriptors or an aborted handshake: the client
			// sees a failure and counts it; keep serving the others.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go echo(c, *closeAfter)
	}
}

// echo copies what c sends back to it until it has copied limit bytes (if
// limit > 0), c's client closes its side, or an error, then closes c. It
// copies through a buffer of its own rather than io.Copy(c, c), which would
// splice the socket into itself.
func echo(c net.Conn, limit int64) {
	defer c.Close()
	buf := make([]byte, 4096)
	var done int64
	for limit == 0 || done < limit {
		p := buf
		if limit > 0 {
			p = buf[:min(int64(len(buf)), limit-done)]
		}
		n, err := c.Read(p)
		if n > 0 {
			if _, werr := c.Write(p[:n]); werr != nil {
				return
			}
			done += int64(n)
		}
		if err != nil {
			return
		}
	}
}
