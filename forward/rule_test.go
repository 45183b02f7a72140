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

func TestParseSOCKSAndRemote(t *testing.T) {
	for _, tt := range []struct {
		in, listen string
		remote     bool
	}{
		{"socks5://1080", "127.0.0.1:1080", false},
		{"SOCKS5://0.0.0.0:1080", "0.0.0.0:1080", false},
		{"socks5://[::1]:1080/", "[::1]:1080", false},
		{"8080:127.0.0.1:3000", "127.0.0.1:8080", true},
		{"tcp/0.0.0.0:8080:127.0.0.1:3000", "0.0.0.0:8080", true},
	} {
		parse := ParseRule
		if tt.remote {
			parse = ParseRemoteRule
		}
		r, err := parse(tt.in)
		if err != nil || r.Listen.String() != tt.listen {
			t.Errorf("parse(%q) = %v, %v; want listen %s", tt.in, r.Listen, err, tt.listen)
		}
		if (r.Mode == ModeRemote) != tt.remote || (r.Mode == ModeSOCKS) == tt.remote {
			t.Errorf("parse(%q): mode %q", tt.in, r.Mode)
		}
	}
	for _, bad := range []string{"socks5://", "socks5://host:1080", "socks5://1.2.3.4", "socks5://99999"} {
		if _, err := ParseRule(bad); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseRule(%q): %v; want ErrSyntax naming it", bad, err)
		}
	}
	if _, err := ParseRemoteRule("udp/53:127.0.0.1:53"); err == nil || !strings.Contains(err.Error(), "TCP only") {
		t.Errorf("a UDP remote rule: %v; want SSH carries TCP only", err)
	}
}

func TestValidate(t *testing.T) {
	rule := func(s string, change func(*Rule)) Rule {
		r, err := ParseRule(s)
		if err != nil {
			r, err = ParseRemoteRule(strings.TrimPrefix(s, "remote/"))
		}
		if err != nil {
			t.Fatal(err)
		}
		change(&r)
		return r
	}
	via := func(r *Rule) { r.Via = "ssh://deploy@bastion:2222" }
	for _, r := range []Rule{
		rule("8080:db:5432", via),
		rule("socks5://1080", via),
		rule("socks5://1080", func(*Rule) {}),
		rule("remote/8080:127.0.0.1:3000", via),
		rule("remote/8080:127.0.0.1:3000", func(r *Rule) { via(r); r.HealthCheck = time.Second }),
	} {
		if err := r.Validate(); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
	for _, tt := range []struct {
		r    Rule
		want string
	}{
		{rule("udp/53:10.0.0.1:53", via), "TCP only"},
		{rule("8080:db:5432", func(r *Rule) { r.Via = "bastion" }), "ssh://"},
		{rule("8080:db:5432", func(r *Rule) { via(r); r.HealthCheck = time.Second }), "health checks"},
		{rule("remote/8080:127.0.0.1:3000", func(*Rule) {}), "via ssh://"},
		{rule("socks5://1080", func(r *Rule) { r.ProxyProtocol = 1 }), "SOCKS5"},
		{rule("socks5://1080", func(r *Rule) { r.Backends = []string{"a:1"} }), "no targets"},
	} {
		if err := tt.r.Validate(); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want ErrSyntax with %q", tt.r, err, tt.want)
		}
	}
	rules, err := ParseConfig([]byte(`
via: ssh://bastion
rules:
  - rule: "127.0.0.1:5432:db.internal:5432"
  - rule: "8080:127.0.0.1:3000"
    remote: true
    via: ssh://devbox
  - listen: "9000"
    backends: ["127.0.0.1:9"]
    remote: true
  - rule: "socks5://1080"
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 4 || rules[0].Via != "ssh://bastion" || rules[1].Via != "ssh://devbox" || rules[1].Mode != ModeRemote ||
		rules[2].Listen.String() != "127.0.0.1:9000" || rules[2].Mode != ModeRemote || rules[3].Mode != ModeSOCKS {
		t.Errorf("rules = %+v", rules)
	}
	for _, bad := range []string{
		"remote: true\nrules:\n  - rule: 80:a:1\n",
		"rules:\n  - rule: udp/80:a:1\n    via: ssh://b\n",
		"rules:\n  - rule: 80:a:1\n    remote: true\n",
	} {
		if _, err := ParseConfig([]byte(bad)); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseConfig(%q) = %v; want ErrSyntax", bad, err)
		}
	}
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"8080:127.0.0.1:80", "udp/5353:10.0.0.1:53", "[::]:443:[2001:db8::1]:443", "1:a:1,b:2",
		"socks5://1080", "socks5://[::1]:1080"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, remote := range []bool{false, true} {
			parse := ParseRule
			if remote {
				parse = ParseRemoteRule
			}
			r, err := parse(s)
			if err != nil {
				continue
			}
			if len(r.Backends) == 0 && r.Mode != ModeSOCKS || !r.Listen.IsValid() {
				t.Fatalf("parse(%q) = %+v without error", s, r)
			}
			again, err := parse(strings.TrimPrefix(r.String(), "remote/"))
			if err != nil || again.Listen != r.Listen || again.Mode != r.Mode || !slices.Equal(again.Backends, r.Backends) {
				t.Fatalf("parse(%q).String() = %q does not read back: %v", s, r.String(), err)
			}
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
