package cli

import (
	"errors"
	"testing"

	"github.com/portctl/portctl/registry"
)

func TestParseQuery(t *testing.T) {
	tests := []struct {
		in      string
		want    query
		wantErr bool
	}{
		{"443", query{Kind: queryPort, Range: registry.Range{First: 443, Last: 443}}, false},
		{" 0 ", query{Kind: queryPort, Range: registry.Range{}}, false},
		{"65535", query{Kind: queryPort, Range: registry.Range{First: 65535, Last: 65535}}, false},
		{"53/udp", query{Kind: queryPort, Range: registry.Range{First: 53, Last: 53}, Proto: registry.UDP}, false},
		{"20-25", query{Kind: queryRange, Range: registry.Range{First: 20, Last: 25}}, false},
		{"25-25", query{Kind: queryPort, Range: registry.Range{First: 25, Last: 25}}, false},
		{"https", query{Kind: queryName, Name: "https"}, false},
		{"https/TCP", query{Kind: queryName, Name: "https", Proto: registry.TCP}, false},
		{"3com-tsmux", query{Kind: queryName, Name: "3com-tsmux"}, false},
		{"", query{}, true},
		{"70000", query{}, true},
		{"-1", query{}, true},
		{"80-20", query{}, true},
		{"abc!?", query{}, true},
		{"80/", query{}, true},
		{"/tcp", query{}, true},
		{"80/tcp/udp", query{}, true},
		{"-http", query{}, true},
	}
	for _, tt := range tests {
		got, err := parseQuery(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseQuery(%q) error = %v; want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Errorf("parseQuery(%q) error %v is not a usage error", tt.in, err)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("parseQuery(%q) = %+v; want %+v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"443", "20-25", "https/tcp", "", "-1", "abc!?", "80-", "1-2-3", "\x00", "65535/dccp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := parseQuery(s)
		if err != nil {
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("parseQuery(%q) error %v is not a usage error", s, err)
			}
			return
		}
		switch q.Kind {
		case queryPort:
			if q.Range.First != q.Range.Last {
				t.Fatalf("parseQuery(%q) port query with range %v", s, q.Range)
			}
		case queryRange:
			if q.Range.First > q.Range.Last {
				t.Fatalf("parseQuery(%q) backwards range %v", s, q.Range)
			}
		case queryName:
			if !isServiceName(q.Name) {
				t.Fatalf("parseQuery(%q) accepted name %q", s, q.Name)
			}
		default:
			t.Fatalf("parseQuery(%q) kind %v", s, q.Kind)
		}
	})
}
