package registry_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/portctl/portctl/registry"
)

func TestFromCSV(t *testing.T) {
	var calls int
	r, err := registry.FromCSV(bytes.NewReader(builtinCSV(t)), "2024-01-01", registry.Options{
		Services: func() ([]byte, error) { calls++; return []byte("myapp 9999/tcp\n"), nil },
	})
	if err != nil {
		t.Fatalf("FromCSV(WriteCSV(Builtin().All())) error: %v", err)
	}
	if r.Len() != registry.Builtin().Len() {
		t.Errorf("Len() = %d; want %d, the built-in count", r.Len(), registry.Builtin().Len())
	}
	// WriteCSV drops aliases; merging over the built-in data brings them back.
	if got := r.Name("www", 0); len(got) == 0 || got[0].Port != 80 {
		t.Errorf("Name(%q, 0) = %v; want port 80", "www", got)
	}
	if got := r.Port(443, registry.TCP); len(got) != 1 || got[0].Name != "https" {
		t.Errorf("Port(443, tcp) = %v; want https", got)
	}
	if got := r.Name("myapp", 0); len(got) != 1 || got[0].Port != 9999 || calls != 1 {
		t.Errorf("Name(%q, 0) = %v after %d Services calls; want port 9999 from the overlay", "myapp", got, calls)
	}
	srcs := r.Sources()
	want := "2024-01-01" // after the newest date in the CSV, if any
	if d := registry.LastChanged(registry.Builtin().All()); d != "" {
		want = d + ", " + want
	}
	if len(srcs) == 0 || srcs[0].Version != want || !strings.Contains(srcs[0].Name, "IANA") {
		t.Errorf("Sources() = %v; want the IANA CSV, version %q, first", srcs, want)
	}
	if len(srcs) != len(registry.Builtin().Sources())+1 {
		t.Errorf("Sources() = %v; want the built-in sources after the CSV", srcs)
	}
}

func TestFromCSVKeepsNewEntries(t *testing.T) {
	var buf bytes.Buffer
	as := append(append([]registry.Assignment(nil), registry.Builtin().All()...),
		registry.Assignment{Port: 65001, Proto: registry.TCP, Name: "brand-new", Description: "Registered after the build"})
	if err := registry.WriteCSV(&buf, as); err != nil {
		t.Fatal(err)
	}
	r, err := registry.FromCSV(&buf, "next", registry.Options{})
	if err != nil {
		t.Fatalf("FromCSV error: %v", err)
	}
	if got := r.Name("brand-new", 0); len(got) != 1 || got[0].Port != 65001 {
		t.Errorf("Name(%q, 0) = %v; want port 65001", "brand-new", got)
	}
	if got := registry.Builtin().Name("brand-new", 0); len(got) != 0 {
		t.Errorf("Builtin().Name(%q, 0) = %v; FromCSV must not change the built-in registry", "brand-new", got)
	}
}

func TestFromCSVErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"excerpt", readTestdata(t, "iana-excerpt.csv")},
		{"html page", readTestdata(t, "bad-html.csv")},
		{"empty file", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := registry.FromCSV(bytes.NewReader(tt.in), "v", registry.Options{})
			if err == nil || r != nil {
				t.Fatalf("FromCSV(%s) = %v, %v; want nil and an error", tt.name, r, err)
			}
			if !errors.Is(err, registry.ErrSyntax) {
				t.Errorf("FromCSV(%s) error %v does not match ErrSyntax", tt.name, err)
			}
		})
	}
}

func TestLastChanged(t *testing.T) {
	tests := []struct {
		name string
		as   []registry.Assignment
		want string
	}{
		{"none", nil, ""},
		{"no dates", []registry.Assignment{{Port: 1}}, ""},
		{"registered", []registry.Assignment{{Registered: "2001-02-03"}, {Registered: "1999-12"}}, "2001-02-03"},
		{"modified is newer", []registry.Assignment{{Registered: "2001-02-03", Modified: "2024-12-20"}}, "2024-12-20"},
		{"month only", []registry.Assignment{{Registered: "2025-04"}, {Modified: "2025-03-28"}}, "2025-04"},
		{"not dates passed over", []registry.Assignment{{Registered: "soon"}, {Modified: "9999-99-9x"}, {Modified: "2020-01-01 "}, {Registered: "2020-01-01"}}, "2020-01-01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := registry.LastChanged(tt.as); got != tt.want {
				t.Errorf("LastChanged(%v) = %q; want %q", tt.as, got, tt.want)
			}
		})
	}
}
