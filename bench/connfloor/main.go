//go:build linux

// Command connfloor is the physical floor of a TCP connect scan: every port
// of an address tried with a blocking socket(), connect() and close(), one
// thread per CPU each taking its share of the ports, three system calls a
// port and nothing else (no epoll, no timeouts, no retries, no results kept
// beyond a count). It prints the wall time and how many ports accepted.
//
//	connfloor -addr 127.0.0.1
//
// A blocking connect that nothing answers would wait for the kernel's SYN
// retries (minutes): this is a floor for loopback and other addresses that
// answer every port, not a scanner.
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	addr := flag.String("addr", "127.0.0.1", "IPv4 `address` to connect to")
	first := flag.Int("first", 1, "first port")
	last := flag.Int("last", 65535, "last port")
	threads := flag.Int("threads", runtime.NumCPU(), "threads, each with its share of the ports")
	reuse := flag.Bool("reuse", false, "keep a refused socket for the next port: connect() alone for a closed port")
	flag.Parse()
	a, err := netip.ParseAddr(*addr)
	if err != nil || !a.Is4() || *first < 1 || *last > 65535 || *first > *last || *threads < 1 {
		fmt.Fprintln(os.Stderr, "usage: connfloor [-addr IPv4] [-first P] [-last P] [-threads N]")
		os.Exit(2)
	}
	ip := a.As4()
	n := *last - *first + 1
	var open, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for t := 0; t < *threads; t++ {
		lo, hi := *first + n*t / *threads, *first + n*(t+1) / *threads
		wg.Go(func() {
			// One OS thread each: the goroutine never moves, and blocking
			// system calls are what this measures.
			runtime.LockOSThread()
			fd := -1
			for p := lo; p < hi; p++ {
				if fd < 0 {
					var err error
					if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
						failed.Add(1)
						continue
					}
				}
				err := unix.Connect(fd, &unix.SockaddrInet4{Port: p, Addr: ip})
				if err == nil {
					open.Add(1)
				}
				// A refused socket is unconnected again and takes another
				// connect.
				if !*reuse || err != unix.ECONNREFUSED {
					unix.Close(fd)
					fd = -1
				}
			}
			if fd >= 0 {
				unix.Close(fd)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	fmt.Printf("%d ports in %.3f s on %d threads, %d accepted (self-connects included)\n", n, wall.Seconds(), *threads, open.Load())
	if failed.Load() > 0 {
		fmt.Fprintf(os.Stderr, "connfloor: %d sockets could not be made\n", failed.Load())
		os.Exit(1)
	}
}
