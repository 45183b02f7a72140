package registry

import (
	"fmt"
	"io"
)

// MinAssignments is how many port assignments a complete registry CSV holds
// at least; IANA's file has over ten thousand.
const MinAssignments = 5000

// CheckComplete reports whether as looks like the whole IANA registry
// rather than an excerpt or another file: enough assignments, and the
// landmarks http 80/tcp and https 443/tcp.
func CheckComplete(as []Assignment) error {
	if len(as) < MinAssignments {
		return syntaxf("registry csv: %d port assignments, want at least %d for the whole registry", len(as), MinAssignments)
	}
	for _, want := range []struct {
		port uint16
		name string
	}{{80, "http"}, {443, "https"}} {
		found := false
		for _, a := range as {
			if a.Port == want.port && a.Proto == TCP && a.Name == want.name {
				found = true
				break
			}
		}
		if !found {
			return syntaxf("registry csv: no %s on %d/tcp: not the IANA registry", want.name, want.port)
		}
	}
	return nil
}

// FromCSV returns a registry whose assignments come from the IANA CSV read
// from r, checked with CheckComplete and merged over the built-in data, so
// that names and aliases only the built-in sources know stay.
func FromCSV(r io.Reader, version string, opts Options) (*Registry, error) {
	as, err := ParseCSV(r)
	if err != nil {
		return nil, err
	}
	if err := CheckComplete(as); err != nil {
		return nil, err
	}
	opts.Assignments = Merge(as, builtinAssignments)
	opts.Sources = append([]Source{{Name: "IANA service-names-port-numbers.csv (cached)", Version: version, License: "IANA registry"}}, builtinSources...)
	if len(opts.Assignments) == 0 {
		return nil, fmt.Errorf("registry: no assignments")
	}
	return New(opts), nil
}
