package forward

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRule(t *testing.T) {
	tests := []struct {
		in       string
		proto    Proto
		listen   string
		backends []string
	}{
		{"8080:127.0.0.1:80", TCP, "[::]:8080", []string{"127.0.0.1:80"}},
		{"udp/5353:10.0.0.1:53", UDP, "[::]:5353", []string{"10.0.0.1:53"}},
		{"[::]:443:[2001:db8::1]:443", TCP, "[::]:443", []string{"[2001:db8::1]:443"}},
		{"127.0.0.1:9000:backend.internal:9000", TCP, "127.0.0.1:9000", []string{"backend.internal:9000"}},
		{"tcp/8080:a:80,b:80", TCP, "[::]:8080", []string{"a:80", "b:80"}},
		{"127.0.0.1:0:localhost:1", TCP, "127.0.0.1:0", []string{"localhost:1"}},
	}
	for _, tt := range tests {
		r, err := ParseRule(tt.in)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", tt.in, err)
			continue
		}
		if r.Proto != tt.proto || r.Listen.String() != tt.listen || !slices.Equal(r.Backends, tt.backends) {
			t.Errorf("ParseRule(%q) = %s %s %v; want %s %s %v", tt.in, r.Proto, r.Listen, r.Backends, tt.proto, tt.listen, tt.backends)
		}
	}
	for _, bad := range []string{"", "8080", "8080:", "8080:host", "8080:host:0", "8080:host:70000", "sctp/80:a:1",
		"99999:a:1", "[::1:80:a:1", "[1.2.3.4]:80:a:1", "2001:db8::1:80:a:1", "8080:2001:db8::1:80", "8080:a b:80", "8080:[zz]:80"} {
		if r, err := ParseRule(bad); err == nil || !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseRule(%q) = %v, %v; want ErrSyntax", bad, r, err)
		} else if !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseRule(%q): error %q does not name the rule", bad, err)
		}
	}
}

func TestParseConfig(t *testing.T) {
	rules, err := ParseConfig([]byte(`
idle_timeout: 5m
rules:
  - rule: "8080:127.0.0.1:80"
  - listen: "[::1]:8443"
    backends: ["10.0.0.1:443", "10.0.0.2:443"]
    balance: leastconn
    max_conns: 100
    connect_timeout: 3s
    allow: ["10.0.0.0/8", "192.0.2.7"]
    deny: ["10.0.0.66/32"]
    proxy_protocol: 2
    health_check: 2s
    name: web
  - listen: "5353"
    proto: udp
    backends: ["127.0.0.1:53"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 3 {
		t.Fatalf("%d rules; want 3", len(rules))
	}
	w := rules[1]
	if w.Name != "web" || w.Balance != LeastConn || w.MaxConns != 100 || w.ConnectTimeout != 3*time.Second ||
		w.IdleTimeout != 5*time.Minute || w.ProxyProtocol != 2 || w.HealthCheck != 2*time.Second ||
		len(w.Allow) != 2 || w.Allow[1] != netip.MustParsePrefix("192.0.2.7/32") || len(w.Deny) != 1 {
		t.Errorf("rule web = %+v", w)
	}
	if rules[2].Proto != UDP || rules[2].Listen.Port() != 5353 || rules[0].IdleTimeout != 5*time.Minute {
		t.Errorf("rules = %+v", rules)
	}
	for _, bad := range []string{
		"rules:\n  - rule: nonsense",
		"rules:\n  - listen: 80\n",
		"rules:\n  - rule: 80:a:1\n    balance: random",
		"rules:\n  - rule: 80:a:1\n    idle_timeout: soon",
		"rules:\n  - rule: 80:a:1\n    allow: [10.0.0.0/33]",
		"rules:\n  - rule: udp/80:a:1\n    proxy_protocol: 1",
		"rules:\n  - rule: 80:a:1\n    colour: blue",
		"rules: [",
	} {
		if _, err := ParseConfig([]byte(bad)); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseConfig(%q) = %v; want ErrSyntax", bad, err)
		}
	}
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"8080:127.0.0.1:80", "udp/5353:10.0.0.1:53", "[::]:443:[2001:db8::1]:443", "1:a:1,b:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			return
		}
		if len(r.Backends) == 0 || !r.Listen.IsValid() {
			t.Fatalf("ParseRule(%q) = %+v without error", s, r)
		}
		again, err := ParseRule(r.String())
		if err != nil || again.Listen != r.Listen || !slices.Equal(again.Backends, r.Backends) {
			t.Fatalf("ParseRule(%q).String() = %q does not read back: %v", s, r.String(), err)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("rules:\n  - rule: 8080:127.0.0.1:80\n"))
	f.Add([]byte("max_conns: 3\nrules:\n  - listen: 80\n    backends: [a:1]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseConfig(b)
	})
}
