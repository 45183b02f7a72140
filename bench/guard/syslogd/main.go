//go:build linux

// Command syslogd is the benchmark's own /dev/log: it receives syslog(3)
// datagrams on a Unix socket and writes each on one line of stdout,
// prefixed with the time it arrived (Unix seconds, nanosecond digits), so
// that bench/guard can tell when psad and scanlogd reported a source.
//
//	syslogd -socket /tmp/x/log.sock -for 2h >/tmp/x/syslog.log
//
// It exits after -for, or on SIGINT or SIGTERM. It prints "ready" on
// stderr once the socket listens.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	path := flag.String("socket", "", "path of the Unix datagram socket to listen on")
	limit := flag.Duration("for", 2*time.Hour, "exit after this long")
	flag.Parse()
	if *path == "" {
		fmt.Fprintln(os.Stderr, "syslogd: -socket is required")
		os.Exit(2)
	}
	os.Remove(*path)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: *path, Net: "unixgram"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "syslogd: %v\n", err)
		os.Exit(1)
	}
	// Any user may log: scanlogd writes after it has dropped to its own user.
	os.Chmod(*path, 0o666)
	fmt.Fprintln(os.Stderr, "ready")

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-sig:
		case <-time.After(*limit):
		}
		conn.Close()
	}()

	out := bufio.NewWriter(os.Stdout)
	buf := make([]byte, 64<<10)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			break
		}
		now := time.Now()
		msg := strings.TrimRight(strings.ReplaceAll(string(buf[:n]), "\n", " "), " \x00")
		fmt.Fprintf(out, "%d.%09d %s\n", now.Unix(), now.Nanosecond(), msg)
		out.Flush()
	}
	os.Remove(*path)
}
