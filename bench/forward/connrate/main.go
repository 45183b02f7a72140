// Command connrate measures how many short TCP round trips per second a
// server, or a forwarder in front of it, completes: -c workers each, in a
// loop, connect to -addr, write -size bytes, read the same bytes back (the
// server must echo them: bench/forward/echo does), wait for the server to
// close the connection (with -server-close, the default) and close it too.
// Letting the server close first keeps the TIME_WAIT state on its side, so
// tens of thousands of connections a second do not use up the client's
// ephemeral ports (run the server with -close-after SIZE). Workers stop
// starting connections after -d, or once -max connections have been started
// in all, whichever comes first; every connection has a deadline of
// -timeout, so a run lasts at most -d plus -timeout.
//
// With -udp, each worker instead sends -size byte datagrams from a socket
// of its own to -addr and waits up to -timeout for each to come back (the
// server must echo them: bench/forward/echo -udp does): datagram round
// trips a second, one at a time per worker.
//
// It prints one line on stdout, the round trips that completed and those
// that failed, the seconds from start until the last worker finished,
// their rate, and the 50th and 99th percentiles of the completed round
// trips' times in microseconds (from dial to close; UDP: from send to
// reply):
//
//	ok 123456 failed 0 seconds 5.002 rate 24681.3 p50 512.0 p99 2048.5
//
// and on standard error how many failed of each kind (dial, write, read,
// reply, close), with the first error of each, and whether -max cut the run short.
//
//	connrate -addr 127.0.0.1:7000 -c 16 -d 5s
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// tally is what one worker counted. It is not safe for concurrent use: each
// worker has its own, merged at the end.
type tally struct {
	ok     int64
	times  []time.Duration  // of the round trips that completed
	failed map[string]int64 // by kind: dial, write, read, reply, close
	first  map[string]error // the first error of each kind
}

func (t *tally) fail(kind string, err error) {
	t.failed[kind]++
	if t.first[kind] == nil {
		t.first[kind] = err
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7000", "`host:port` of an echo server or a forwarder to one")
	workers := flag.Int("c", 16, "concurrent connections (workers)")
	dur := flag.Duration("d", 5*time.Second, "how long to keep starting connections")
	limit := flag.Int64("max", 1_000_000, "connections to start at most, over all workers")
	size := flag.Int("size", 64, "bytes written and read back on each connection")
	timeout := flag.Duration("timeout", 2*time.Second, "deadline of each connection, from dial to close")
	serverClose := flag.Bool("server-close", true, "after the reply, wait for the server to close before closing")
	udp := flag.Bool("udp", false, "send datagrams, each worker from a socket of its own, instead of connecting")
	flag.Parse()
	if flag.NArg() > 0 || *workers < 1 || *workers > 10000 || *dur <= 0 || *limit < 1 ||
		*size < 1 || *size > 1<<20 || *timeout <= 0 {
		flag.Usage()
		os.Exit(2)
	}

	var started atomic.Int64
	tallies := make([]tally, *workers)
	begin := time.Now()
	end := begin.Add(*dur)
	var wg sync.WaitGroup
	for i := range tallies {
		t := &tallies[i]
		t.failed, t.first = map[string]int64{}, map[string]error{}
		wg.Go(func() {
			req := make([]byte, *size)
			for j := range req {
				req[j] = byte('a' + (i+j)%26)
			}
			resp := make([]byte, *size+1)
			var uc net.Conn
			if *udp {
				var err error
				if uc, err = net.Dial("udp", *addr); err != nil {
					t.fail("dial", err)
					return
				}
				defer uc.Close()
			}
			for time.Now().Before(end) && started.Add(1) <= *limit {
				t0 := time.Now()
				var kind string
				var err error
				if *udp {
					kind, err = datagram(uc, req, resp, *timeout)
				} else {
					kind, err = roundTrip(*addr, req, resp[:*size], *timeout, *serverClose)
				}
				if err != nil {
					t.fail(kind, err)
				} else {
					t.ok++
					t.times = append(t.times, time.Since(t0))
				}
			}
		})
	}
	wg.Wait()
	secs := time.Since(begin).Seconds()

	var ok, failed int64
	var times []time.Duration
	for _, t := range tallies {
		ok += t.ok
		times = append(times, t.times...)
	}
	slices.Sort(times)
	pct := func(p float64) float64 {
		if len(times) == 0 {
			return 0
		}
		return float64(times[min(len(times)-1, int(p*float64(len(times))))].Nanoseconds()) / 1e3
	}
	for _, kind := range []string{"dial", "write", "read", "reply", "close"} {
		var n int64
		var first error
		for _, t := range tallies {
			n += t.failed[kind]
			if first == nil {
				first = t.first[kind]
			}
		}
		if n > 0 {
			fmt.Fprintf(os.Stderr, "connrate: %s failed %d times, first: %v\n", kind, n, first)
		}
		failed += n
	}
	if started.Load() > *limit {
		fmt.Fprintf(os.Stderr, "connrate: stopped at -max %d connections before -d %v\n", *limit, *dur)
	}
	fmt.Printf("ok %d failed %d seconds %.3f rate %.1f p50 %.1f p99 %.1f\n", ok, failed, secs, float64(ok)/secs, pct(0.50), pct(0.99))
}

// roundTrip connects to addr, writes req, reads len(resp) bytes back into
// resp, with serverClose waits for the server's end of file, and closes, all
// within timeout. On failure it says at which step.
func roundTrip(addr string, req, resp []byte, timeout time.Duration, serverClose bool) (kind string, err error) {
	deadline := time.Now().Add(timeout)
	d := net.Dialer{Deadline: deadline}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return "dial", err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := c.Write(req); err != nil {
		return "write", err
	}
	if _, err := io.ReadFull(c, resp); err != nil {
		return "read", err
	}
	if !bytes.Equal(req, resp) {
		return "reply", errors.New("the reply differs from the request")
	}
	if serverClose {
		var b [1]byte
		switch n, err := c.Read(b[:]); {
		case n > 0:
			return "close", errors.New("more bytes after the reply")
		case err != io.EOF:
			return "close", fmt.Errorf("waiting for the server to close: %w", err)
		}
	}
	return "", nil
}

// datagram sends req on c and waits until timeout for it to come back
// whole; a late reply to an earlier datagram is skipped.
func datagram(c net.Conn, req, resp []byte, timeout time.Duration) (kind string, err error) {
	if _, err := c.Write(req); err != nil {
		return "write", err
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	for {
		n, err := c.Read(resp)
		if err != nil {
			return "read", err
		}
		if n == len(req) && bytes.Equal(resp[:n], req) {
			return "", nil
		}
	}
}
