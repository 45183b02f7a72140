// Command mangen writes portctl's manual pages, one per command
// (portctl(1), portctl-who(1), portctl-firewall-block(1), …), generated
// from the commands themselves with cobra's doc package. packaging/build
// runs it:
//
//	go run ./packaging/mangen -out DIR -date 2026-01-02T15:04:05Z -version v1.2.3
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/portctl/portctl/internal/cli"
	"github.com/portctl/portctl/internal/term"
)

func main() {
	out := flag.String("out", "", "write the pages to this directory (made if missing)")
	date := flag.String("date", "", "the pages' date, RFC 3339 (the commit's date, so that a build is reproducible); default now")
	version := flag.String("version", "", "the version named in the pages' footer")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: mangen -out DIR [-date RFC3339] [-version V]")
		os.Exit(2)
	}
	when := time.Now().UTC()
	if *date != "" {
		t, err := time.Parse(time.RFC3339, *date)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mangen: -date %q is not an RFC 3339 time (want 2026-01-02T15:04:05Z)\n", *date)
			os.Exit(2)
		}
		when = t.UTC()
	}
	if err := write(*out, when, *version); err != nil {
		fmt.Fprintln(os.Stderr, "mangen:", err)
		os.Exit(1)
	}
}

// write generates the page of every command but the hidden ones and
// cobra's help command.
func write(dir string, date time.Time, version string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	streams, _, _ := term.Test("")
	root := cli.NewRootCmd(streams)
	root.InitDefaultCompletionCmd()
	root.DisableAutoGenTag = true
	visit(root, func(c *cobra.Command) { c.DisableAutoGenTag = true })
	source := "portctl"
	if version != "" {
		source += " " + footerVersion(version)
	}
	header := &doc.GenManHeader{Section: "1", Date: &date, Source: source, Manual: "portctl manual"}
	return doc.GenManTree(root, header, dir)
}

// pseudoVersion matches Go's pseudo-version of a commit:
// v0.0.0-20261207145600-0123456789ab, maybe with +dirty.
var pseudoVersion = regexp.MustCompile(`^v[0-9.]+-(?:[0-9a-z.]+\.)?[0-9]{14}-([0-9a-f]{12})(\+dirty)?$`)

// footerVersion shortens a pseudo-version to its commit for the pages'
// footer, which has room for some 30 characters beside the page's title
// and date: a release's version stays as it is.
func footerVersion(v string) string {
	if m := pseudoVersion.FindStringSubmatch(v); m != nil {
		return "commit " + m[1][:7]
	}
	return v
}

func visit(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		visit(sub, f)
	}
}
