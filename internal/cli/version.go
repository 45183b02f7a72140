package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/internal/term"
)

// Version, when set at link time with -ldflags "-X
// github.com/portctl/portctl/internal/cli.Version=v1.2.3", overrides the
// version the build info gives.
var Version = ""

// buildInfo is what portctl knows of its own build: the module version
// (a release tag, or Go's pseudo-version of the commit when built from a
// checkout), the commit, its date and whether the tree had changes.
type buildInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Date     string `json:"date,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
}

// readBuildInfo reads the build info the Go toolchain embeds in the binary.
func readBuildInfo() buildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return buildInfoFrom(bi, Version)
}

// buildInfoFrom turns the toolchain's build info into portctl's; override,
// when not empty, is the version set at link time. The version is
// "dev" when neither says more.
func buildInfoFrom(bi *debug.BuildInfo, override string) buildInfo {
	b := buildInfo{Version: "dev", Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			b.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.time":
				b.Date = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if override != "" {
		b.Version = override
	}
	return b
}

// version is the version string of `portctl --version`.
func version() string { return readBuildInfo().Version }

// String is the one line `portctl version` prints: the version, then the
// commit (12 digits) and its date when the build recorded them.
func (b buildInfo) String() string {
	var extra []string
	if b.Commit != "" {
		c := b.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if b.Modified {
			c += " with changes"
		}
		extra = append(extra, "commit "+c)
	}
	if b.Date != "" {
		extra = append(extra, b.Date)
	}
	extra = append(extra, b.Go, b.OS+"/"+b.Arch)
	return fmt.Sprintf("portctl %s (%s)", b.Version, strings.Join(extra, ", "))
}

func newVersionCmd(streams *term.IO) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print portctl's version, commit and its date",
		Long: `Print portctl's version, the commit it was built from and that commit's
date, as the Go toolchain recorded them in the binary. A build from a
checkout without a release tag has Go's pseudo-version of its commit
(v0.0.0-YYYYMMDDhhmmss-COMMIT); the .deb and .rpm carry the same version.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b := readBuildInfo()
			if asJSON {
				return writeJSON(streams.Out, b)
			}
			_, err := fmt.Fprintln(streams.Out, b.String())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (version, commit, date, modified, go, os, arch)")
	return cmd
}
