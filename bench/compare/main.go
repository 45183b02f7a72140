// Command compare times whole commands side by side in one run: each
// command is started -runs times, the commands interleaved so that a noisy
// moment hurts all of them alike, and the medians and their ratio to the
// last command (the baseline) are printed.
//
//	go run ./bench/compare -runs 300 'portctl info 443' 'getent services 443'
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

func main() {
	runs := flag.Int("runs", 200, "timed runs of each command")
	warmup := flag.Int("warmup", 20, "untimed runs of each command first")
	flag.Parse()
	cmds := flag.Args()
	if len(cmds) < 2 || *runs < 1 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "usage: compare [-runs N] [-warmup N] 'COMMAND' ... 'BASELINE COMMAND'")
		os.Exit(2)
	}
	times := make([][]time.Duration, len(cmds))
	for i := 0; i < *warmup+*runs; i++ {
		for j, c := range cmds {
			d, err := timeOnce(c)
			if err != nil {
				fmt.Fprintf(os.Stderr, "compare: %s: %v\n", c, err)
				os.Exit(1)
			}
			if i >= *warmup {
				times[j] = append(times[j], d)
			}
		}
	}
	base := median(times[len(cmds)-1])
	for j, c := range cmds {
		ts := times[j]
		slices.Sort(ts)
		m := median(ts)
		fmt.Printf("%-40s median %7.3f ms  p10 %7.3f  p90 %7.3f  ratio %.2fx\n", c, ms(m), ms(ts[len(ts)/10]), ms(ts[len(ts)*9/10]), float64(m)/float64(base))
	}
}

func timeOnce(command string) (time.Duration, error) {
	f := strings.Fields(command)
	cmd := exec.Command(f[0], f[1:]...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return d, nil
}

func median(ts []time.Duration) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
