// Command profile is portctl with a CPU profile: the same command line
// interface (internal/cli.Run), its arguments passed through, and the
// profile written to $BENCH_CPUPROFILE. A run that lasts longer than
// $BENCH_PROFILE_LIMIT (a Go duration; none by default) is cut there: the
// profile covers what ran so far and the exit status is 124, as timeout(1)
// gives. The firewall benchmark uses it to show where portctl firewall
// spends its time.
//
//	BENCH_CPUPROFILE=/tmp/fw.prof profile firewall --json >/dev/null
//	go tool pprof -top profile /tmp/fw.prof
package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/portctl/portctl/internal/cli"
	"github.com/portctl/portctl/internal/term"
)

func main() {
	path := os.Getenv("BENCH_CPUPROFILE")
	if path == "" {
		fmt.Fprintln(os.Stderr, "profile: set BENCH_CPUPROFILE to the file the profile goes to")
		os.Exit(2)
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(2)
	}
	if s := os.Getenv("BENCH_PROFILE_LIMIT"); s != "" {
		limit, err := time.ParseDuration(s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "profile: BENCH_PROFILE_LIMIT=%q is not a duration\n", s)
			os.Exit(2)
		}
		time.AfterFunc(limit, func() {
			pprof.StopCPUProfile()
			f.Close()
			fmt.Fprintf(os.Stderr, "profile: cut after %s\n", limit)
			os.Exit(124)
		})
	}
	code := cli.Run(os.Args[1:], term.System())
	pprof.StopCPUProfile()
	f.Close()
	os.Exit(code)
}
