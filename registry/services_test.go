package registry_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/registry"
)

func TestParseServices(t *testing.T) {
	want := []registry.Assignment{
		{Port: 1, Proto: tcp, Name: "tcpmux", Description: "TCP port service multiplexer"},
		{Port: 7, Proto: tcp, Name: "echo"},
		{Port: 7, Proto: udp, Name: "echo"},
		{Port: 9, Proto: tcp, Name: "discard", Aliases: []string{"sink", "null"}, Description: "Discard"},
		{Port: 9, Proto: udp, Name: "discard", Aliases: []string{"sink", "null"}, Description: "Discard"},
		{Port: 9, Proto: sctp, Name: "discard", Aliases: []string{"sink", "null"}, Description: "Discard"},
		{Port: 9, Proto: dccp, Name: "discard", Aliases: []string{"sink", "null"}, Description: "Discard"},
		{Port: 80, Proto: tcp, Name: "http", Aliases: []string{"www"}, Description: "WorldWideWeb HTTP"},
		{Port: 8080, Proto: tcp, Name: "HTTP-Alt", Aliases: []string{"webcache"}},
		{Port: 6000, Last: 6063, Proto: tcp, Name: "x11", Description: "X Window System"},
		{Port: 6000, Last: 6063, Proto: udp, Name: "x11", Description: "X Window System"},
		{Port: 2, Proto: tcp, Name: "nbp", Aliases: []string{"nbp-alias"}},
	}
	got, err := registry.ParseServices(bytes.NewReader(readTestdata(t, "services")))
	if err != nil {
		t.Fatalf("ParseServices(testdata/services) error: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseServices(testdata/services) mismatch (-want +got):\n%s", diff)
	}
}

func TestParseServicesLines(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []registry.Assignment
	}{
		{"empty", "", nil},
		{"comments only", "# nothing\n   # here\n\n", nil},
		{"no final newline", "ssh 22/tcp", []registry.Assignment{{Port: 22, Proto: tcp, Name: "ssh"}}},
		{"crlf", "ssh 22/tcp\r\n", []registry.Assignment{{Port: 22, Proto: tcp, Name: "ssh"}}},
		{"comment without space", "ssh 22/tcp#Secure Shell", []registry.Assignment{{Port: 22, Proto: tcp, Name: "ssh", Description: "Secure Shell"}}},
		{"only ddp", "rtmp 1/ddp\n", nil},
		{"empty protocol", "foo 80/\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := registry.ParseServices(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("ParseServices(%q) error: %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseServices(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseServicesErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"name only", "foo"},
		{"port not a number", "foo bar/tcp"},
		{"port out of range", "foo 70000/tcp"},
		{"no protocol", "foo 80"},
		{"backwards range", "foo 6063-6000/tcp"},
		{"bad line after good ones", "http 80/tcp\nhttps 443/tcp\nfoo\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := registry.ParseServices(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("ParseServices(%q) = %v, nil; want an error", tt.in, got)
			}
			if !errors.Is(err, registry.ErrSyntax) {
				t.Errorf("ParseServices(%q) error %v does not match ErrSyntax", tt.in, err)
			}
		})
	}
}

// TestParseServicesCommaProtocols checks that every assignment ParseServices
// returns has one protocol, as Assignment documents and ParseCSV enforces.
func TestParseServicesCommaProtocols(t *testing.T) {
	in := "foo 80/tcp,udp\n"
	got, err := registry.ParseServices(strings.NewReader(in))
	if err != nil {
		return // refusing the line is fine too
	}
	for _, a := range got {
		if len(a.Proto.Each()) != 1 {
			t.Errorf("ParseServices(%q) returned %+v; want a single protocol per assignment", in, a)
		}
	}
}

func FuzzParseServices(f *testing.F) {
	f.Add(readTestdata(f, "services"))
	for _, s := range []string{"foo", "foo bar/tcp", "foo 70000/tcp", "http 80/tcp www # web\n",
		"x11 6000-6063/tcp/udp", "rtmp 1/ddp", "foo 80/", "foo 80/tcp,udp", "#\n\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		as, err := registry.ParseServices(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, registry.ErrSyntax) {
				t.Errorf("ParseServices(%q) error %v does not match ErrSyntax", b, err)
			}
			return
		}
		for _, a := range as {
			if len(a.Proto.Each()) != 1 || a.Proto&^registry.AnyProtocol != 0 {
				t.Errorf("ParseServices(%q) returned %+v; want one of tcp, udp, sctp, dccp", b, a)
			}
			if a.Last != 0 && a.Last <= a.Port {
				t.Errorf("ParseServices(%q) returned %+v; want Last == 0 or Last > Port", b, a)
			}
			if a.Name == "" || strings.ContainsAny(a.Name, " \t\n#") {
				t.Errorf("ParseServices(%q) returned %+v; want a name without space or #", b, a)
			}
		}
	})
}
