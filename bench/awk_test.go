// Package bench holds the benchmarks' scripts and tools; this test checks
// that the awk programs in the scripts parse with mawk, the awk of a fresh
// Debian machine, where the benchmarks must run.
package bench

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// awkCall finds an awk command; its program is the first single-quoted
// word after it. The programs of these scripts hold no single quote, and
// no option value before the program starts a word with one.
var awkCall = regexp.MustCompile(`\bawk\b`)

// awkPrograms returns the awk programs of the shell scripts under dir,
// keyed by "file:line".
func awkPrograms(t *testing.T, dir string) map[string]string {
	t.Helper()
	progs := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil || !strings.HasPrefix(string(b), "#!") {
			return err
		}
		text := string(b)
		for _, at := range awkCall.FindAllStringIndex(text, -1) {
			rest := text[at[1]:]
			open := strings.Index(rest, " '")
			if open < 0 || !oneCommand(rest[:open]) {
				continue // no program on this command line: awk named in a comment
			}
			prog, _, ok := strings.Cut(rest[open+2:], "'")
			if !ok {
				t.Errorf("%s: an awk program that does not end", path)
				continue
			}
			line := 1 + strings.Count(text[:at[0]], "\n")
			progs[path+":"+strconv.Itoa(line)] = prog
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return progs
}

// oneCommand reports whether s stays on one command line: every line
// break in it is escaped with a backslash.
func oneCommand(s string) bool {
	lines := strings.Split(s, "\n")
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasSuffix(strings.TrimRight(l, " \t"), "\\") {
			return false
		}
	}
	return true
}

// TestAwkProgramsParse runs every awk program of the scripts through mawk
// and, when installed, gawk --posix, with a BEGIN and an END that exit
// first: only the parse is checked. mawk reads an unparenthesised ">" in
// printf's arguments as a redirection, which gawk lets pass.
func TestAwkProgramsParse(t *testing.T) {
	progs := awkPrograms(t, ".")
	if len(progs) < 10 {
		t.Fatalf("found %d awk programs under bench/; want the 20 or so of the scripts: %q", len(progs), progs)
	}
	t.Logf("%d awk programs", len(progs))
	var awks [][]string
	if _, err := exec.LookPath("mawk"); err != nil {
		t.Skip("needs mawk, Debian's default awk (apt-get install mawk)")
	}
	awks = append(awks, []string{"mawk"})
	if _, err := exec.LookPath("gawk"); err == nil {
		awks = append(awks, []string{"gawk", "--posix"})
	}
	for where, prog := range progs {
		for _, awk := range awks {
			cmd := exec.Command(awk[0], append(awk[1:], "BEGIN { exit } END { exit }\n"+prog)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: %s does not take the awk program: %v: %s\n%s", where, strings.Join(awk, " "), err, out, prog)
			}
		}
	}
}
