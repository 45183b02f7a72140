package probe

import (
	"errors"
	"strings"
	"testing"

	"github.com/portctl/portctl/registry"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Target
	}{
		{"name and port", "localhost:5432", Target{Host: "localhost", Port: 5432}},
		{"IPv4", "127.0.0.1:22", Target{Host: "127.0.0.1", Port: 22}},
		{"IPv6 in brackets", "[::1]:22", Target{Host: "::1", Port: 22}},
		{"IPv6 with zone", "[fe80::1%eth0]:443", Target{Host: "fe80::1%eth0", Port: 443}},
		{"IPv4-mapped IPv6", "[::ffff:127.0.0.1]:80", Target{Host: "::ffff:127.0.0.1", Port: 80}},
		{"service name", "localhost:ssh", Target{Host: "localhost", Service: "ssh"}},
		{"service name with dash", "db:http-alt", Target{Host: "db", Service: "http-alt"}},
		{"fully qualified name", "db.example.com.:5432", Target{Host: "db.example.com.", Port: 5432}},
		{"underscore in name", "my_db:1", Target{Host: "my_db", Port: 1}},
		{"leading zeros", "h:0080", Target{Host: "h", Port: 80}},
		{"highest port", "h:65535", Target{Host: "h", Port: 65535}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTarget(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseTargetErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // a substring of the message besides the input itself
	}{
		{"empty", "", "empty target"},
		{"no port", "host", "no port"},
		{"empty port", "host:", "no port"},
		{"port too large", "host:70000", "out of range"},
		{"port far too large", "host:99999999999999999999", "out of range"},
		{"port zero", "host:0", "port 0"},
		{"negative port", "host:-1", "not a number"},
		{"no host", ":80", "no host"},
		{"unclosed bracket", "[::1", "closing ']'"},
		{"bracket without port", "[::1]", "no port"},
		{"bracket then junk", "[::1]x:22", "no port"},
		{"IPv6 without brackets", "::1:22", "brackets"},
		{"IPv4 in brackets", "[127.0.0.1]:22", "not an IPv6"},
		{"name in brackets", "[localhost]:22", "not an IPv6"},
		{"URL", "http://example.com:80", "URL"},
		{"space in host", "my host:80", "not a host name"},
		{"label starts with dash", "-x:80", "not a host name"},
		{"bad service", "host:ss h", "not a number or a service name"},
		{"bad service char", "host:a!b", "not a number or a service name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTarget(tt.in)
			if err == nil {
				t.Fatalf("ParseTarget(%q) = %+v, nil; want an error", tt.in, got)
			}
			msg := err.Error()
			if !errors.Is(err, registry.ErrSyntax) {
				t.Errorf("ParseTarget(%q) error %v does not match registry.ErrSyntax", tt.in, err)
			}
			if !strings.Contains(msg, tt.want) || !strings.Contains(msg, "HOST:PORT") {
				t.Errorf("ParseTarget(%q) error = %q; want it to mention %q and HOST:PORT", tt.in, msg, tt.want)
			}
			if tt.in != "" && !strings.Contains(msg, tt.in) {
				t.Errorf("ParseTarget(%q) error = %q; want it to name the input", tt.in, msg)
			}
		})
	}
}

func TestTargetString(t *testing.T) {
	for _, s := range []string{"localhost:5432", "[::1]:22", "localhost:ssh", "[fe80::1%eth0]:80", "10.0.0.1:1"} {
		tg, err := ParseTarget(s)
		if err != nil {
			t.Fatalf("ParseTarget(%q): %v", s, err)
		}
		if got := tg.String(); got != s {
			t.Errorf("ParseTarget(%q).String() = %q; want %q", s, got, s)
		}
	}
}

func TestResolved(t *testing.T) {
	reg := registry.Builtin()
	tg, _ := ParseTarget("localhost:SSH")
	got, err := tg.Resolved(reg)
	if err != nil || got.Port != 22 || got.Service != "SSH" {
		t.Errorf("Resolved(localhost:SSH) = %+v, %v; want port 22 with the name kept", got, err)
	}
	tg, _ = ParseTarget("localhost:no-such-service-x")
	if _, err := tg.Resolved(reg); err == nil || !errors.Is(err, registry.ErrSyntax) || !strings.Contains(err.Error(), "no-such-service-x") {
		t.Errorf("Resolved(unknown) error = %v; want a syntax error naming it", err)
	}
	tg, _ = ParseTarget("localhost:80")
	if got, err := tg.Resolved(reg); err != nil || got != tg {
		t.Errorf("Resolved(localhost:80) = %+v, %v; want it unchanged", got, err)
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"localhost:5432", "[::1]:22", "[fe80::1%eth0]:443", "host", ":80", "[::1", "host:70000",
		"", "localhost:ssh", "::1:22", "a.b.c:0", "[::ffff:1.2.3.4]:1", "x:-1", "[]:1", "h:00000080"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			if !errors.Is(err, registry.ErrSyntax) {
				t.Fatalf("ParseTarget(%q) error %v is not a syntax error", s, err)
			}
			if strings.Contains(err.Error(), "\n") && !strings.Contains(s, "\n") {
				t.Fatalf("ParseTarget(%q) error has several lines: %q", s, err)
			}
			return
		}
		if tg.Host == "" || (tg.Port == 0) == (tg.Service == "") {
			t.Fatalf("ParseTarget(%q) = %+v: want a host and exactly one of port and service", s, tg)
		}
		// What String writes parses back to the same target.
		again, err := ParseTarget(tg.String())
		if err != nil || again != tg {
			t.Fatalf("ParseTarget(%q) = %+v; its String %q parses to %+v, %v", s, tg, tg.String(), again, err)
		}
	})
}
