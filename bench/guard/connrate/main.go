//go:build linux

// Command connrate makes and serves new TCP connections at a set rate,
// for bench/guard's CPU measurement: a host serving 10,000 new
// connections a second, with and without portctl guard watching.
//
//	connrate -serve 0.0.0.0:8081 -for 10m          # prints "ready"
//	connrate -dial 10.9.0.1:8081 -rate 10000 -for 20s
//
// The server writes "ok\n" on each connection and closes it. The client
// opens connections on a schedule of -rate a second spread over -workers
// goroutines, reads the answer and closes with a reset (SO_LINGER 0), so
// that neither side keeps TIME_WAIT sockets; at the end it prints one line:
// connections tried, answered, failed, the rate answered, and the
// latency's median and 99th percentile. Both are bounded by -for.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	serve := flag.String("serve", "", "listen on this address and serve")
	dial := flag.String("dial", "", "connect to this address")
	rate := flag.Int("rate", 10000, "new connections a second (-dial)")
	workers := flag.Int("workers", 256, "connections in flight at most (-dial)")
	limit := flag.Duration("for", 20*time.Second, "how long to run")
	flag.Parse()
	switch {
	case *serve != "":
		if err := runServer(*serve, *limit); err != nil {
			fmt.Fprintf(os.Stderr, "connrate: %v\n", err)
			os.Exit(1)
		}
	case *dial != "":
		runClient(*dial, *rate, *workers, *limit)
	default:
		fmt.Fprintln(os.Stderr, "connrate: -serve or -dial is required")
		os.Exit(2)
	}
}

func runServer(addr string, limit time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-sig:
		case <-time.After(limit):
		}
		ln.Close()
	}()
	answer := []byte("ok\n")
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			continue
		}
		go func() {
			c.Write(answer)
			c.Close()
		}()
	}
}

func runClient(addr string, rate, workers int, limit time.Duration) {
	var (
		next     atomic.Int64 // the next connection's number in the schedule
		ok, fail atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
	)
	start := time.Now()
	end := start.Add(limit)
	interval := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1024)
			buf := make([]byte, 16)
			d := net.Dialer{Timeout: time.Second}
			for {
				at := start.Add(time.Duration(next.Add(1)-1) * interval)
				if at.After(end) {
					break
				}
				time.Sleep(time.Until(at))
				t := time.Now()
				c, err := d.Dial("tcp", addr)
				if err != nil {
					fail.Add(1)
					continue
				}
				c.SetDeadline(t.Add(time.Second))
				_, err = io.ReadFull(c, buf[:3])
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
				if err != nil {
					fail.Add(1)
					continue
				}
				ok.Add(1)
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(p*float64(len(lat)-1))]
	}
	fmt.Printf("tried %d answered %d failed %d rate %.0f p50_us %d p99_us %d\n",
		ok.Load()+fail.Load(), ok.Load(), fail.Load(), float64(ok.Load())/took.Seconds(),
		pct(0.5).Microseconds(), pct(0.99).Microseconds())
}
