package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/registry"
)

// cacheFileName is the cached copy of IANA's CSV that `registry update` writes.
const cacheFileName = "service-names-port-numbers.csv"

// cachePath returns where `registry update` keeps its copy of the registry.
func cachePath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache directory: %w", err)
	}
	return filepath.Join(dir, "portctl", cacheFileName), nil
}

// servicesPath returns the OS's services(5) file.
func servicesPath() string {
	if runtime.GOOS == "windows" {
		return filepath.Join(os.Getenv("SystemRoot"), "System32", "drivers", "etc", "services")
	}
	return "/etc/services"
}

// loadRegistry returns the registry commands use: the cached IANA CSV that
// `registry update` wrote when there is one (else the copy built into the
// binary), with the OS's services file as a lazily read overlay for names.
// A broken cache is reported on stderr and passed over.
func loadRegistry(streams *term.IO) *registry.Registry {
	path := servicesPath()
	opts := registry.Options{Services: func() ([]byte, error) { return os.ReadFile(path) }}
	cp, err := cachePath()
	if err != nil {
		return registry.New(opts)
	}
	f, err := os.Open(cp)
	if err != nil {
		return registry.New(opts)
	}
	defer f.Close()
	version := ""
	if st, err := f.Stat(); err == nil {
		version = "fetched " + st.ModTime().UTC().Format("2006-01-02")
	}
	r, err := registry.FromCSV(f, version, opts)
	if err != nil {
		fmt.Fprintf(streams.Err, "portctl: ignoring the cached registry %s: %v (run 'portctl registry update' to refresh it)\n", cp, err)
		return registry.New(opts)
	}
	return r
}
