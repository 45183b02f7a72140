// Command stamp copies its standard input to standard output line by
// line, each line prefixed with the time it was read (Unix seconds,
// nanosecond digits): bench/guard times portctl guard's events by when
// they reach it, as it times psad's and scanlogd's syslog lines.
//
//	portctl guard --json | stamp >guard.log
package main

import (
	"bufio"
	"fmt"
	"os"
	"time"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		now := time.Now()
		fmt.Fprintf(out, "%d.%09d %s\n", now.Unix(), now.Nanosecond(), in.Text())
		out.Flush()
	}
}
