// Command firstlookup measures the first registry lookups in a fresh
// process, the cost a command-line user pays: the first lookup by port (with
// its de facto uses and security notes), the first by name and the first
// search. It starts itself -n times and prints the medians.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/portctl/portctl/registry"
)

func main() {
	n := flag.Int("n", 100, "processes to measure")
	once := flag.Bool("once", false, "measure this process and print the three times in nanoseconds")
	flag.Parse()
	if *once {
		measure()
		return
	}
	var port, name, search []int64
	for i := 0; i < *n; i++ {
		out, err := exec.Command(os.Args[0], "-once").Output()
		if err != nil {
			fmt.Fprintln(os.Stderr, "firstlookup:", err)
			os.Exit(1)
		}
		var p, m, s int64
		if _, err := fmt.Sscan(string(out), &p, &m, &s); err != nil {
			fmt.Fprintln(os.Stderr, "firstlookup:", err)
			os.Exit(1)
		}
		port, name, search = append(port, p), append(name, m), append(search, s)
	}
	fmt.Printf("first Port(443) + Uses + Notes  median %8.1f us  max %8.1f us\n", med(port), top(port))
	fmt.Printf("first Name(\"imaps\")             median %8.1f us  max %8.1f us\n", med(name), top(name))
	fmt.Printf("first Search(\"postgres\", 10)    median %8.1f us  max %8.1f us\n", med(search), top(search))
}

func measure() {
	t0 := time.Now()
	reg := registry.Builtin()
	port := reg.Port(443, 0)
	uses := registry.Uses(443, 0)
	notes := registry.Notes(443, 0)
	t1 := time.Now()
	name := reg.Name("imaps", 0)
	t2 := time.Now()
	found := reg.Search("postgres", 10)
	t3 := time.Now()
	if len(port) == 0 || len(name) == 0 || len(found) == 0 || len(uses)+len(notes) < 0 {
		fmt.Fprintln(os.Stderr, "firstlookup: lookups found nothing")
		os.Exit(1)
	}
	fmt.Println(t1.Sub(t0).Nanoseconds(), t2.Sub(t1).Nanoseconds(), t3.Sub(t2).Nanoseconds())
}

func med(xs []int64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return float64(s[len(s)/2]) / 1000
}

func top(xs []int64) float64 { return float64(slices.Max(xs)) / 1000 }
