package registry_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/registry"
)

func TestMerge(t *testing.T) {
	first := []registry.Assignment{
		{Port: 80, Proto: tcp, Name: "http", Description: "World Wide Web HTTP", Reference: "[RFC9110]"},
		{Port: 81, Proto: tcp, Name: "foo"},
		{Port: 82, Proto: tcp, Description: "Reserved"},
		{Port: 83, Proto: tcp, Description: "Reserved"},
	}
	second := []registry.Assignment{
		{Port: 80, Proto: tcp, Name: "HTTP", Aliases: []string{"www", "http"}, Description: "Web", Reference: "[RFC2616]"},
		{Port: 80, Proto: udp, Name: "http", Aliases: []string{"www-udp"}},
		{Port: 81, Proto: tcp, Name: "foo", Description: "Foo service", Reference: "[Foo]"},
		{Port: 82, Proto: tcp, Name: "bar", Description: "Bar"},
		{Port: 8008, Proto: tcp, Name: "http", Description: "HTTP alternate"},
		{Port: 6000, Last: 6063, Proto: tcp, Name: "x11", Aliases: []string{"x11-0"}},
	}
	third := []registry.Assignment{
		{Port: 80, Proto: tcp, Name: "http", Aliases: []string{"www", "web"}},
		{Port: 6000, Proto: tcp, Name: "x11"},
	}
	want := []registry.Assignment{
		// The first description and reference win; aliases come from every input.
		{Port: 80, Proto: tcp, Name: "http", Aliases: []string{"www", "web"}, Description: "World Wide Web HTTP", Reference: "[RFC9110]"},
		{Port: 80, Proto: udp, Name: "http", Aliases: []string{"www-udp"}},
		// An empty description and reference are filled from a later input.
		{Port: 81, Proto: tcp, Name: "foo", Description: "Foo service", Reference: "[Foo]"},
		// The Reserved entry on 82 gives way to the name bar; 83 keeps it.
		{Port: 82, Proto: tcp, Name: "bar", Description: "Bar"},
		{Port: 83, Proto: tcp, Description: "Reserved"},
		// A single port and a range starting there are different entries.
		{Port: 6000, Proto: tcp, Name: "x11", Aliases: []string{"x11-0"}},
		{Port: 6000, Last: 6063, Proto: tcp, Name: "x11", Aliases: []string{"x11-0"}},
		// Aliases name a service: http/tcp on 8008 gets them too.
		{Port: 8008, Proto: tcp, Name: "http", Aliases: []string{"www", "web"}, Description: "HTTP alternate"},
	}
	firstCopy, secondCopy := clone(first), clone(second)
	got := registry.Merge(first, second, third)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Merge mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(firstCopy, first); diff != "" {
		t.Errorf("Merge changed its first input (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(secondCopy, second); diff != "" {
		t.Errorf("Merge changed its second input (-before +after):\n%s", diff)
	}
}

func TestMergeEdgeCases(t *testing.T) {
	reserved := registry.Assignment{Port: 1023, Proto: udp, Description: "Reserved"}
	tests := []struct {
		name   string
		inputs [][]registry.Assignment
		want   []registry.Assignment
	}{
		{"nothing", nil, nil},
		{"empty inputs", [][]registry.Assignment{{}, {}}, nil},
		{"duplicates in one input", [][]registry.Assignment{{
			{Port: 7, Proto: tcp, Name: "echo"}, {Port: 7, Proto: tcp, Name: "ECHO", Description: "Echo"},
		}}, []registry.Assignment{{Port: 7, Proto: tcp, Name: "echo", Description: "Echo"}}},
		{"IANA fields from the first input that has them", [][]registry.Assignment{
			{{Port: 80, Proto: tcp, Name: "http", Reference: "[RFC9110]", Assignee: "[IESG]", Modified: "2021-10-01"}},
			{{Port: 80, Proto: tcp, Name: "http", Reference: "[RFC2616]", Assignee: "[Tim_Berners_Lee]", Contact: "[IETF_Chair]",
				Registered: "1990-01", Modified: "2000-01-01", Notes: "n", UnauthorizedUse: "u"}},
		}, []registry.Assignment{{Port: 80, Proto: tcp, Name: "http", Reference: "[RFC9110]", Assignee: "[IESG]", Contact: "[IETF_Chair]",
			Registered: "1990-01", Modified: "2021-10-01", Notes: "n", UnauthorizedUse: "u"}}},
		{"reserved alone", [][]registry.Assignment{{reserved}, {reserved}}, []registry.Assignment{reserved}},
		{"reserved on another protocol", [][]registry.Assignment{
			{reserved}, {{Port: 1023, Proto: tcp, Name: "named"}},
		}, []registry.Assignment{{Port: 1023, Proto: tcp, Name: "named"}, reserved}},
		{"de-assigned in the first input withdraws older names", [][]registry.Assignment{
			{{Port: 2, Proto: tcp, Description: "Reserved", Notes: "De-assigned on 2025-02-13, previously compressnet by [Bernie_Volz]"}},
			{{Port: 2, Proto: tcp, Name: "compressnet", Description: "Management Utility"}, {Port: 2, Proto: udp, Name: "compressnet"}},
		}, []registry.Assignment{
			{Port: 2, Proto: tcp, Description: "Reserved", Notes: "De-assigned on 2025-02-13, previously compressnet by [Bernie_Volz]"},
			{Port: 2, Proto: udp, Name: "compressnet"},
		}},
		{"de-assigned only counts in the first input", [][]registry.Assignment{
			{{Port: 2, Proto: tcp, Name: "compressnet"}},
			{{Port: 2, Proto: tcp, Notes: "De-assigned"}},
		}, []registry.Assignment{{Port: 2, Proto: tcp, Name: "compressnet"}}},
		{"sorted by port", [][]registry.Assignment{
			{{Port: 9, Proto: udp, Name: "b"}}, {{Port: 9, Proto: tcp, Name: "b"}, {Port: 1, Proto: tcp, Name: "a"}},
		}, []registry.Assignment{{Port: 1, Proto: tcp, Name: "a"}, {Port: 9, Proto: tcp, Name: "b"}, {Port: 9, Proto: udp, Name: "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := registry.Merge(tt.inputs...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Merge mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func clone(as []registry.Assignment) []registry.Assignment {
	out := make([]registry.Assignment, len(as))
	for i, a := range as {
		a.Aliases = append([]string(nil), a.Aliases...)
		out[i] = a
	}
	return out
}
