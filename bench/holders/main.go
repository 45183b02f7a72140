// Command holders checks portctl's attribution against ss's: socket by
// socket, matched by inode, the processes portctl names must be the ones
// ss -p names. It reads the output of an ss command run with -p and -e
// (for the inodes) and the JSON of a portctl command (ls --json, whose
// sockets are checked, or who --json, whose listeners are):
//
//	ss -tuanpe >ss.txt; portctl ls -a --json >ls.json
//	holders ss.txt ls.json
//
// Every socket with an inode in portctl's output must be in ss's, and,
// unless -first is given, every socket with an inode in ss's output must
// be in portctl's, with the same set of processes. With -first a socket's
// processes need only be some of ss's, at least one: `portctl ls` names
// the first holder of a listener that several processes share.
//
// It prints one line saying what was checked, or the first disagreements
// and exits with status 1.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
)

func main() {
	first := flag.Bool("first", false, "portctl may name only some of each socket's holders (at least one)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: holders [-first] SS_OUTPUT PORTCTL_JSON")
		os.Exit(2)
	}
	ssFile, err := os.Open(flag.Arg(0))
	if err != nil {
		fail(err)
	}
	ss, err := parseSS(ssFile)
	ssFile.Close()
	if err != nil {
		fail(err)
	}
	b, err := os.ReadFile(flag.Arg(1))
	if err != nil {
		fail(err)
	}
	pc, err := parsePortctl(b)
	if err != nil {
		fail(err)
	}
	r := check(ss, pc, *first)
	if len(r.problems) > 0 {
		for i, p := range r.problems {
			if i == 10 {
				fmt.Printf("… %d more\n", len(r.problems)-10)
				break
			}
			fmt.Println(p)
		}
		os.Exit(1)
	}
	how := "the processes ss -p names"
	if *first {
		how = "one or more of the processes ss -p names"
	}
	fmt.Printf("%d sockets, each with %s (%d processes in all; %d sockets held by several)\n", r.sockets, how, r.processes, r.shared)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "holders:", err)
	os.Exit(2)
}

var (
	inodeField = regexp.MustCompile(`\bino:(\d+)`)
	pidField   = regexp.MustCompile(`\bpid=(\d+)`)
)

// parseSS reads ss -p -e output: the holders' PIDs of each socket, by
// inode. Sockets without an inode (TIME-WAIT) are left out.
func parseSS(r io.Reader) (map[uint64][]int, error) {
	out := map[uint64][]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		m := inodeField.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ino, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil || ino == 0 {
			continue
		}
		var pids []int
		for _, p := range pidField.FindAllStringSubmatch(line, -1) {
			pid, err := strconv.Atoi(p[1])
			if err != nil {
				return nil, fmt.Errorf("ss: %q: %v", line, err)
			}
			pids = append(pids, pid)
		}
		slices.Sort(pids)
		out[ino] = slices.Compact(pids)
	}
	return out, sc.Err()
}

// portctlSocket is the part of portctl's socket JSON this checks.
type portctlSocket struct {
	Inode     uint64 `json:"inode"`
	Processes []struct {
		PID int `json:"pid"`
	} `json:"processes"`
}

// parsePortctl reads the JSON of portctl ls (sockets) or who (listeners
// and bound sockets): the holders' PIDs of each socket, by inode.
func parsePortctl(b []byte) (map[uint64][]int, error) {
	var doc struct {
		Sockets   []portctlSocket `json:"sockets"`
		Listeners []portctlSocket `json:"listeners"`
		Bound     []portctlSocket `json:"bound"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("portctl JSON: %w", err)
	}
	out := map[uint64][]int{}
	for _, s := range slices.Concat(doc.Sockets, doc.Listeners, doc.Bound) {
		if s.Inode == 0 {
			continue
		}
		var pids []int
		for _, p := range s.Processes {
			pids = append(pids, p.PID)
		}
		slices.Sort(pids)
		out[s.Inode] = pids
	}
	return out, nil
}

// report is what check found.
type report struct {
	sockets, processes, shared int
	problems                   []string
}

// check compares portctl's holders with ss's, socket by socket.
func check(ss, pc map[uint64][]int, first bool) report {
	var r report
	procs := map[int]bool{}
	for _, ino := range slices.Sorted(maps.Keys(pc)) {
		got := pc[ino]
		want, ok := ss[ino]
		switch {
		case !ok:
			r.problems = append(r.problems, fmt.Sprintf("inode %d: portctl lists it, ss does not", ino))
			continue
		case first && (len(got) == 0) != (len(want) == 0), first && !subset(got, want):
			r.problems = append(r.problems, fmt.Sprintf("inode %d: portctl names %v; want one or more of ss's %v", ino, got, want))
		case !first && !slices.Equal(got, want):
			r.problems = append(r.problems, fmt.Sprintf("inode %d: portctl names %v; ss names %v", ino, got, want))
		}
		r.sockets++
		if len(want) > 1 {
			r.shared++
		}
		for _, p := range want {
			procs[p] = true
		}
	}
	if !first {
		var missing []uint64
		for ino := range ss {
			if _, ok := pc[ino]; !ok {
				missing = append(missing, ino)
			}
		}
		slices.Sort(missing)
		for _, ino := range missing {
			r.problems = append(r.problems, fmt.Sprintf("inode %d: ss lists it (held by %v), portctl does not", ino, ss[ino]))
		}
	}
	r.processes = len(procs)
	return r
}

// subset reports whether every element of a (sorted) is in b (sorted).
func subset(a, b []int) bool {
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			return false
		}
	}
	return true
}
