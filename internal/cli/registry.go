package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/registry"
)

// ianaCSV is where IANA publishes the registry in CSV form.
const ianaCSV = "https://www.iana.org/assignments/service-names-port-numbers/service-names-port-numbers.csv"

// maxRegistrySize bounds what `registry update` reads (IANA's file is about 4 MB).
const maxRegistrySize = 64 << 20

func newRegistryCmd(streams *term.IO, updateF func(registryUpdateOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Show or refresh the port registry portctl uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRegistrySources(streams, false)
		},
	}
	var asJSON bool
	sources := &cobra.Command{
		Use:   "sources",
		Short: "List the sources of the registry data, with versions and licenses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRegistrySources(streams, asJSON)
		},
	}
	sources.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(sources, newRegistryUpdateCmd(streams, updateF))
	return cmd
}

// registryUpdateOptions are the flags of `portctl registry update`.
type registryUpdateOptions struct {
	From    string        // URL or file
	Dest    string        // cache file to write
	Timeout time.Duration // for a download
}

// newRegistryUpdateCmd builds `registry update`; runF, when not nil,
// replaces the real run.
func newRegistryUpdateCmd(streams *term.IO, runF func(registryUpdateOptions) error) *cobra.Command {
	opts := registryUpdateOptions{From: ianaCSV, Timeout: 60 * time.Second}
	cmd := &cobra.Command{
		Use:   "update [--from URL|FILE]",
		Short: "Refresh the registry from IANA's official CSV into the user cache",
		Long: `Download (or read) IANA's service-names-port-numbers.csv, check that it is the
whole registry, and store it in the user cache directory, replacing the old
copy atomically. Later lookups use it; the copy built into portctl remains
the fallback. A file that is not the registry is refused and the cache is
left as it was.`,
		Example: `  portctl registry update
  portctl registry update --from ./service-names-port-numbers.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Timeout <= 0 {
				return usageErrorf("--timeout %s: want a positive duration such as 30s", opts.Timeout)
			}
			dest, err := cachePath()
			if err != nil {
				return err
			}
			opts.Dest = dest
			if runF != nil {
				return runF(opts)
			}
			return runRegistryUpdate(cmd.Context(), streams, opts)
		},
	}
	cmd.Flags().StringVar(&opts.From, "from", opts.From, "URL (http or https) or file to read the CSV from")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", opts.Timeout, "give up a download after this long")
	return cmd
}

func runRegistryUpdate(ctx context.Context, streams *term.IO, opts registryUpdateOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	data, err := fetch(ctx, opts.From, opts.Timeout)
	if err != nil {
		return err
	}
	as, err := registry.ParseCSV(bytes.NewReader(data))
	if err == nil {
		err = registry.CheckComplete(as)
	}
	if err != nil {
		return usageErrorf("%s is not the IANA port registry CSV: %v; the cached copy is unchanged", opts.From, err)
	}
	if err := writeAtomic(opts.Dest, data); err != nil {
		return fmt.Errorf("registry update: %w", err)
	}
	newest := ""
	if d := registry.LastChanged(as); d != "" {
		newest = ", newest entry " + d
	}
	fmt.Fprintf(streams.Out, "registry updated: %d port assignments from %s%s\nsaved to %s\n", len(as), opts.From, newest, opts.Dest)
	return nil
}

// fetch reads from an http(s) URL or a file, at most maxRegistrySize bytes.
func fetch(ctx context.Context, from string, timeout time.Duration) ([]byte, error) {
	if strings.HasPrefix(from, "http://") || strings.HasPrefix(from, "https://") {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, from, nil)
		if err != nil {
			return nil, usageErrorf("--from %q: %v", from, err)
		}
		req.Header.Set("User-Agent", "portctl/"+version())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("registry update: download %s: %w", from, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("registry update: download %s: HTTP %s", from, resp.Status)
		}
		return readLimited(resp.Body, from)
	}
	if strings.Contains(from, "://") {
		return nil, usageErrorf("--from %q: want an http:// or https:// URL or a file", from)
	}
	f, err := os.Open(from)
	if err != nil {
		return nil, fmt.Errorf("registry update: %w", err)
	}
	defer f.Close()
	return readLimited(f, from)
}

func readLimited(r io.Reader, from string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxRegistrySize+1))
	if err != nil {
		return nil, fmt.Errorf("registry update: read %s: %w", from, err)
	}
	if len(data) > maxRegistrySize {
		return nil, usageErrorf("%s is larger than %d MiB: not the IANA port registry CSV; the cached copy is unchanged", from, maxRegistrySize>>20)
	}
	return data, nil
}

// writeAtomic writes data to path through a temporary file in the same
// directory and a rename, so readers see the old or the new file, whole.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".registry-*.csv")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // harmless after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// sourcesResult is the JSON document `registry sources --json` prints.
type sourcesResult struct {
	Assignments int               `json:"assignments"`
	Uses        int               `json:"de_facto_uses"`
	Notes       int               `json:"security_notes"`
	Cache       string            `json:"cache,omitempty"`
	Sources     []registry.Source `json:"sources"`
}

func runRegistrySources(streams *term.IO, asJSON bool) error {
	reg := loadRegistry(streams)
	res := sourcesResult{Assignments: reg.Len(), Uses: len(registry.AllUses()), Notes: len(registry.AllNotes()), Sources: reg.Sources()}
	if cp, err := cachePath(); err == nil {
		if _, err := os.Stat(cp); err == nil {
			res.Cache = cp
		}
	}
	if asJSON {
		return writeJSON(streams.Out, res)
	}
	st := streams.Style()
	fmt.Fprintf(streams.Out, "%d IANA assignments, %d de facto uses, %d security notes\n", res.Assignments, res.Uses, res.Notes)
	if res.Cache != "" {
		fmt.Fprintf(streams.Out, "using the cached registry %s\n", res.Cache)
	} else {
		fmt.Fprintln(streams.Out, "using the copy built into portctl ('portctl registry update' fetches a newer one)")
	}
	fmt.Fprintln(streams.Out)
	t := term.NewTable("SOURCE", "VERSION", "LICENSE")
	for _, s := range res.Sources {
		t.Row(s.Name, s.Version, s.License)
	}
	return t.Render(streams.Out, streams.Width(), st)
}
