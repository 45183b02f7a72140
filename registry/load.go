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

// LastChanged returns the newest registration or modification date in as,
// such as "2025-03-28": how current a copy of the registry is. It returns ""
// when as has no dates; text that is not a date (YYYY-MM or YYYY-MM-DD) is
// passed over.
func LastChanged(as []Assignment) string {
	newest := ""
	for _, a := range as {
		for _, d := range []string{a.Registered, a.Modified} {
			if d > newest && isDate(d) {
				newest = d
			}
		}
	}
	return newest
}

// isDate reports whether s is YYYY-MM or YYYY-MM-DD, the forms IANA's dates
// take.
func isDate(s string) bool {
	if len(s) != len("2006-01") && len(s) != len("2006-01-02") {
		return false
	}
	for i, c := range []byte(s) {
		if i == 4 || i == 7 {
			if c != '-' {
				return false
			}
		} else if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// FromCSV returns a registry whose assignments come from the IANA CSV read
// from r, checked with CheckComplete and merged over the built-in data, so
// that names and aliases only the built-in sources know stay. The source's
// version is the CSV's LastChanged date, followed by version when that is
// not empty (such as "fetched 2025-06-01").
func FromCSV(r io.Reader, version string, opts Options) (*Registry, error) {
	as, err := ParseCSV(r)
	if err != nil {
		return nil, err
	}
	if err := CheckComplete(as); err != nil {
		return nil, err
	}
	switch d := LastChanged(as); {
	case d != "" && version != "":
		version = d + ", " + version
	case d != "":
		version = d
	}
	opts.Assignments = Merge(as, Builtin().All())
	opts.Sources = append([]Source{{Name: "IANA service-names-port-numbers.csv (cached)", Version: version, License: "IANA registry"}}, builtinSources...)
	if len(opts.Assignments) == 0 {
		return nil, fmt.Errorf("registry: no assignments")
	}
	return New(opts), nil
}
