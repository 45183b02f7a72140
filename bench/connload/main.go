//go:build linux

// Command connload holds a bounded number of established TCP connections
// over loopback, for benchmarking socket-table tools under load. It opens
// one listener, then starts itself as K worker processes that share the
// listener: each worker dials its share of the connections and accepts its
// share, so the client and server ends of all connections are spread over
// the workers and none of them needs more file descriptors than the
// per-process limit allows (20,000 connections are 40,000 sockets). Once
// every connection is established it prints "ready PORT" on stdout, where
// PORT is the listener's port; the listener itself stays open in the
// parent process, the only one holding it once the workers have accepted
// their share.
//
// With -connect ADDR:PORT it listens on nothing and dials a server someone
// else runs (nginx, say), only from workers, one socket per connection;
// with -http too, each connection then makes one HTTP/1.1 keep-alive
// request and holds the connection idle once the answer is read, as a
// browser does between requests. It prints "ready PORT" with the server's
// port.
//
// It is bounded in count and time: it never opens more than -n
// connections, gives up if they are not all established within -setup,
// and exits after -hold, when its stdin reaches end of file, or on SIGINT
// or SIGTERM, whichever comes first. Workers die with it (they get SIGKILL
// when it exits, and end of file on their stdin).
//
//	ip netns exec NS connload -n 20000 -hold 10m
//	ip netns exec NS connload -n 20000 -connect 127.0.0.1:28080 -http
//
// Run it inside a network namespace of its own: 20,000 connections to one
// port use 20,000 ephemeral ports of that namespace.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// socketsPerWorker is how many sockets one worker holds at most, well
// below a per-process descriptor limit of 20,000.
const socketsPerWorker = 10000

// dialers is how many connections one worker dials at a time: enough to
// be quick, few enough that the accepting workers keep the listener's
// accept queue short.
const dialers = 4

func main() {
	log := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "connload: "+format+"\n", a...)
	}
	n := flag.Int("n", 20000, "established connections to hold (each is two sockets)")
	addr := flag.String("addr", "127.0.0.1", "loopback address to listen on and dial")
	port := flag.Int("port", 0, "port to listen on (0: let the kernel choose)")
	workers := flag.Int("workers", 0, fmt.Sprintf("worker processes (0: one per %d sockets)", socketsPerWorker))
	hold := flag.Duration("hold", 10*time.Minute, "exit this long after the connections are established")
	setup := flag.Duration("setup", 2*time.Minute, "give up if the connections are not established within this time")
	worker := flag.Bool("worker", false, "internal: run as a worker, on the listener passed as fd 3 unless -connect is given")
	dial := flag.Int("dial", 0, "internal: connections a worker dials")
	accept := flag.Int("accept", 0, "internal: connections a worker accepts")
	connect := flag.String("connect", "", "dial the server at `ADDR:PORT` instead of listening (one socket per connection, all in workers)")
	useHTTP := flag.Bool("http", false, "with -connect: make one HTTP/1.1 keep-alive request on each connection, then hold it idle")
	flag.Parse()
	var target netip.AddrPort
	if *connect != "" {
		var err error
		if target, err = netip.ParseAddrPort(*connect); err != nil || target.Port() == 0 {
			log("-connect %q: want ADDR:PORT", *connect)
			os.Exit(2)
		}
	}
	if flag.NArg() > 0 || *n < 1 || *n > 1000000 || *port < 0 || *port > 65535 || *workers < 0 || *hold <= 0 || *setup <= 0 || (*useHTTP && *connect == "") {
		flag.Usage()
		os.Exit(2)
	}
	raiseNOFILE()
	var err error
	switch {
	case *worker && *connect != "":
		err = runWorker(nil, *connect, *useHTTP, *dial, 0, *setup, *hold)
	case *worker:
		lf := os.NewFile(3, "listener")
		ln, lerr := net.FileListener(lf)
		lf.Close()
		if lerr != nil {
			err = lerr
			break
		}
		err = runWorker(ln, net.JoinHostPort(*addr, strconv.Itoa(*port)), false, *dial, *accept, *setup, *hold)
	default:
		err = runParent(*n, *addr, *port, target, *useHTTP, *workers, *setup, *hold)
	}
	if err != nil {
		log("%v", err)
		os.Exit(1)
	}
}

// raiseNOFILE raises the soft limit on open files to the hard limit.
func raiseNOFILE() {
	var l unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		unix.Setrlimit(unix.RLIMIT_NOFILE, &l)
	}
}

// share splits n into k parts that differ by at most one.
func share(n, k, i int) int {
	s := n / k
	if i < n%k {
		s++
	}
	return s
}

// runParent starts the workers and waits for them to be ready. Unless
// target is valid, it listens first, on addr and port, and the workers
// share the listener; else they only dial target, with useHTTP as -http.
func runParent(n int, addr string, port int, target netip.AddrPort, useHTTP bool, k int, setup, hold time.Duration) error {
	sockets := 2 * n // per connection: the dialled socket and the accepted one
	if target.IsValid() {
		sockets = n
	}
	if k == 0 {
		k = (sockets + socketsPerWorker - 1) / socketsPerWorker
	}
	if k > n {
		k = n
	}
	var lf *os.File
	if !target.IsValid() {
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		defer ln.Close()
		if lf, err = ln.(*net.TCPListener).File(); err != nil {
			return err
		}
		port = ln.Addr().(*net.TCPAddr).Port
	} else {
		port = int(target.Port())
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
	}
	var children []child
	stopAll := func() {
		for _, c := range children {
			c.stdin.Close()
			c.cmd.Process.Kill()
		}
		for _, c := range children {
			c.cmd.Wait()
		}
		children = nil
	}
	defer stopAll()

	oks := make(chan error, k)
	for i := range k {
		args := []string{"-worker", "-addr", addr, "-port", strconv.Itoa(port),
			"-dial", strconv.Itoa(share(n, k, i)), "-setup", setup.String(), "-hold", (hold + setup).String()}
		if target.IsValid() {
			args = append(args, "-connect", target.String())
			if useHTTP {
				args = append(args, "-http")
			}
		} else {
			args = append(args, "-accept", strconv.Itoa(share(n, k, i)))
		}
		cmd := exec.Command(self, args...)
		if lf != nil {
			cmd.ExtraFiles = []*os.File{lf}
		}
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		children = append(children, child{cmd, stdin})
		go func() {
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err == nil && line != "ok\n" {
				err = fmt.Errorf("worker said %q", line)
			} else if err != nil {
				err = fmt.Errorf("worker %d exited before its connections were established", cmd.Process.Pid)
			}
			oks <- err
			io.Copy(io.Discard, stdout)
		}()
	}
	if lf != nil {
		lf.Close()
	}

	// Like any background job of a shell script, keep ignoring SIGINT if
	// started so: the script decides when the load ends.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	if !signal.Ignored(syscall.SIGINT) {
		signal.Notify(sigs, syscall.SIGINT)
	}
	deadline := time.NewTimer(setup)
	for range k {
		select {
		case err := <-oks:
			if err != nil {
				return err
			}
		case <-deadline.C:
			return fmt.Errorf("%d connections not established within %v", n, setup)
		case s := <-sigs:
			return fmt.Errorf("%v during setup", s)
		}
	}
	fmt.Printf("ready %d\n", port)

	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-time.After(hold):
	case <-sigs:
	}
	return nil
}

// runWorker dials nDial connections to target and, when ln is not nil,
// accepts nAccept on ln, then holds them all. With useHTTP each dialled
// connection makes one keep-alive request first.
func runWorker(ln net.Listener, target string, useHTTP bool, nDial, nAccept int, setup, hold time.Duration) error {
	// A Ctrl-C reaches the whole process group; the parent decides.
	signal.Ignore(syscall.SIGINT)
	ctx, cancel := context.WithTimeout(context.Background(), setup)
	defer cancel()

	var (
		mu    sync.Mutex
		conns = make([]net.Conn, 0, nDial+nAccept)
		keep  = func(c net.Conn) {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
		errs = make(chan error, dialers+1)
		wg   sync.WaitGroup
	)
	// Accept exactly this worker's share, then let go of the listener so
	// that only the parent holds it.
	if ln != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ln.Close()
			for range nAccept {
				c, err := ln.Accept()
				if err != nil {
					errs <- fmt.Errorf("accept: %w", err)
					return
				}
				c.(*net.TCPConn).SetKeepAlive(false)
				keep(c)
			}
		}()
	}
	next := make(chan struct{})
	go func() {
		defer close(next)
		for range nDial {
			select {
			case next <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	// No TCP keep-alive probes: tens of thousands of connections set up
	// within a second would all probe at the same moments, a burst that
	// overflows loopback's backlog, and the lost probes end connections
	// (TCPAbortOnTimeout) while the benchmark runs.
	d := net.Dialer{KeepAlive: -1}
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				c, err := d.DialContext(ctx, "tcp", target)
				if err == nil && useHTTP {
					err = request(ctx, c)
				}
				if err != nil {
					if c != nil {
						c.Close()
					}
					errs <- fmt.Errorf("dial: %w", err)
					cancel()
					return
				}
				keep(c)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case err := <-errs:
		return err
	case <-ctx.Done():
		return errors.New("setup timed out")
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	if len(conns) != nDial+nAccept {
		return fmt.Errorf("holding %d connections, want %d", len(conns), nDial+nAccept)
	}
	fmt.Println("ok")

	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	select {
	case <-eof:
	case <-time.After(hold):
	}
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// request makes one HTTP/1.1 request on c and reads the whole answer,
// which must keep the connection open: the connection is then idle
// between requests, as a keep-alive client leaves it.
func request(ctx context.Context, c net.Conn) error {
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
		defer c.SetDeadline(time.Time{})
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: connload\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 || resp.Close {
		return fmt.Errorf("GET / answered %q, close %v: want 2xx and keep-alive", resp.Status, resp.Close)
	}
	return nil
}
