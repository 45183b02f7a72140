//go:build !windows

// Command compare times whole commands side by side in one run: each
// command is started -runs times, the commands interleaved so that a noisy
// moment hurts all of them alike, and the medians and their ratio to the
// last command (the baseline) are printed.
//
//	go run ./bench/compare -runs 300 'portctl info 443' 'getent services 443'
//
// A command is split into words at blanks; single or double quotes keep
// blanks inside one word ("ss -tlnp 'sport = :80'").
//
// With -rss it also prints each command's peak resident set size (the
// largest ru_maxrss the kernel reported for it over all runs) with its
// ratio to the baseline's, and how many lines the last run printed on
// stdout. Linux counts the RSS a process had just before exec in
// ru_maxrss, so no figure reads below compare's own peak RSS (about 3 MiB;
// it is printed): compare counts the commands' output rather than keeping
// it, to stay that small.
//
// With -netns NAME the commands run inside the network namespace
// /run/netns/NAME: compare enters it once at start, by executing itself
// again under "ip netns exec NAME", so the timed commands are still its
// own children and neither their times nor their RSS include ip's. -prefix
// instead puts words before every command (a wrapper such as "nice -n 0");
// the wrapper's start-up time is then part of each measurement, and the
// peak RSS reported is the larger of the wrapper's and the command's.
//
// -tsv FILE writes one line per command for scripts: the command, then
// the median, p10 and p90 in nanoseconds, then the peak RSS in KiB, tab
// separated.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// netnsEnv marks a compare that ip netns exec has started, so that a
// failure to enter the namespace is reported rather than retried forever.
const netnsEnv = "BENCH_COMPARE_NETNS"

func main() {
	runs := flag.Int("runs", 200, "timed runs of each command")
	warmup := flag.Int("warmup", 20, "untimed runs of each command first")
	rss := flag.Bool("rss", false, "also report each command's peak RSS and output lines")
	netns := flag.String("netns", "", "run the commands inside the network namespace `NAME` (as in ip netns)")
	prefix := flag.String("prefix", "", "words to put before every command, such as a wrapper (it is timed too)")
	tsv := flag.String("tsv", "", "also write the results to `FILE`, tab separated")
	flag.Parse()
	cmds := flag.Args()
	if len(cmds) < 1 || *runs < 1 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "usage: compare [-runs N] [-warmup N] [-rss] [-netns NAME] [-prefix WORDS] [-tsv FILE] 'COMMAND' ... 'BASELINE COMMAND'")
		os.Exit(2)
	}
	if *netns != "" {
		if err := enterNetns(*netns); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
	}
	args := make([][]string, len(cmds))
	for j, c := range cmds {
		a, err := split(*prefix + " " + c)
		if err != nil || len(a) == 0 {
			fmt.Fprintf(os.Stderr, "compare: %q: cannot split into words\n", c)
			os.Exit(2)
		}
		args[j] = a
	}

	times := make([][]time.Duration, len(cmds))
	peak := make([]int64, len(cmds))
	lines := make([]int, len(cmds))
	for i := 0; i < *warmup+*runs; i++ {
		for j, c := range cmds {
			r, err := runOnce(args[j])
			if err != nil {
				fmt.Fprintf(os.Stderr, "compare: %s: %v\n", c, err)
				os.Exit(1)
			}
			if i >= *warmup {
				times[j] = append(times[j], r.wall)
				peak[j] = max(peak[j], r.maxRSS)
				lines[j] = r.lines
			}
		}
	}
	base := median(times[len(cmds)-1])
	baseRSS := peak[len(cmds)-1]
	var table strings.Builder
	for j, c := range cmds {
		ts := times[j]
		slices.Sort(ts)
		m := median(ts)
		p10, p90 := ts[len(ts)/10], ts[len(ts)*9/10]
		fmt.Printf("%-40s median %7.3f ms  p10 %7.3f  p90 %7.3f  ratio %.2fx", c, ms(m), ms(p10), ms(p90), float64(m)/float64(base))
		if *rss {
			fmt.Printf("  peak RSS %7.1f MiB  ratio %.2fx  lines %d", float64(peak[j])/1024, float64(peak[j])/float64(max(baseRSS, 1)), lines[j])
		}
		fmt.Println()
		fmt.Fprintf(&table, "%s\t%d\t%d\t%d\t%d\n", c, m, p10, p90, peak[j])
	}
	if *rss {
		fmt.Printf("(peak RSS floor about %.1f MiB: compare's own peak, which Linux counts in the ru_maxrss of every command it starts)\n", float64(selfPeakRSS())/1024)
	}
	if *tsv != "" {
		if err := os.WriteFile(*tsv, []byte(table.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "compare:", err)
			os.Exit(1)
		}
	}
}

// result is what one run of a command measured.
type result struct {
	wall   time.Duration
	maxRSS int64 // KiB: ru_maxrss of the command (and of children it waited for)
	lines  int
}

// runOnce runs a command once. Its output is counted, not kept: Linux
// counts the RSS a process had just before it executed a program in that
// program's ru_maxrss, and a child forked from compare starts with
// compare's memory, so compare must stay small.
func runOnce(argv []string) (result, error) {
	var out lineCounter
	var errOut headBuffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return result{}, fmt.Errorf("%v: %s", err, strings.TrimSpace(string(errOut.b)))
	}
	r := result{wall: d, lines: out.n}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss // KiB on Linux
	}
	return r, nil
}

// lineCounter counts the lines written to it.
type lineCounter struct{ n int }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

// headBuffer keeps the first 4 KiB written to it.
type headBuffer struct{ b []byte }

func (h *headBuffer) Write(p []byte) (int, error) {
	h.b = append(h.b, p[:min(len(p), max(0, 4096-len(h.b)))]...)
	return len(p), nil
}

// selfPeakRSS returns this process's own peak RSS in KiB (VmHWM), which
// Linux counts in the ru_maxrss of every program this process starts.
func selfPeakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kib int64
			fmt.Sscan(v, &kib)
			return kib
		}
	}
	return 0
}

// enterNetns makes sure this process runs in the network namespace
// /run/netns/name, by executing itself again under ip netns exec if it
// does not yet. The process keeps its PID.
func enterNetns(name string) error {
	want, err := os.Stat("/run/netns/" + name)
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	have, err := os.Stat("/proc/self/ns/net")
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	if os.SameFile(want, have) {
		return nil
	}
	if os.Getenv(netnsEnv) == name {
		return fmt.Errorf("netns %s: not in it after ip netns exec", name)
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	argv := append([]string{"ip", "netns", "exec", name, self}, os.Args[1:]...)
	err = syscall.Exec(ip, argv, append(os.Environ(), netnsEnv+"="+name))
	return fmt.Errorf("netns %s: exec ip: %w", name, err)
}

// split splits s into words at blanks, the way a shell would for words
// without variables, globs or escapes: single or double quotes keep
// blanks inside a word.
func split(s string) ([]string, error) {
	var (
		words []string
		w     strings.Builder
		in    bool // inside a word
		quote rune
	)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if in {
		words = append(words, w.String())
	}
	return words, nil
}

func median(ts []time.Duration) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
