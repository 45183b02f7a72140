package sshtun

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want Target
		err  string // part of the error; "" for none
	}{
		{in: "ssh://bastion", want: Target{Host: "bastion"}},
		{in: "SSH://bastion/", want: Target{Host: "bastion"}},
		{in: "ssh://me@bastion:2222", want: Target{User: "me", Host: "bastion", Port: 2222}},
		{in: "ssh://10.0.0.1:22", want: Target{Host: "10.0.0.1", Port: 22}},
		{in: "ssh://[2001:db8::1]:2200", want: Target{Host: "2001:db8::1", Port: 2200}},
		{in: "ssh://ops@[::1]", want: Target{User: "ops", Host: "::1"}},
		{in: "ssh://a.b-c_d.example", want: Target{Host: "a.b-c_d.example"}},
		{in: "bastion", err: "want ssh://"},
		{in: "http://bastion", err: "want ssh://"},
		{in: "ssh://", err: "no host"},
		{in: "ssh://me:secret@bastion", err: "password"},
		{in: "ssh://@bastion", err: "empty user"},
		{in: "ssh://bastion:0", err: "1-65535"},
		{in: "ssh://bastion:65536", err: "1-65535"},
		{in: "ssh://bastion:+22", err: "1-65535"},
		{in: "ssh://bastion:", err: "empty port"},
		{in: "ssh://bastion/path", err: "no path"},
		{in: "ssh://bastion?x=1", err: "no path"},
		{in: "ssh://2001:db8::1", err: "brackets"},
		{in: "ssh://[2001:db8::1", err: "missing ]"},
		{in: "ssh://[10.0.0.1]:22", err: "not an IPv6"},
		{in: "ssh://[fe80::1%eth0]", err: "not an IPv6"},
		{in: "ssh://-oProxyCommand=x", err: "want a name"},
		{in: "ssh://b astion", err: "want a name"},
		{in: "ssh://me@[::1]x", err: "unexpected"},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrTarget) {
				t.Errorf("ParseTarget(%q) = %+v, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTarget(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"ssh://bastion", "ssh://me@h:22", "ssh://[::1]:2", "ssh://a:b@c", "ssh://[", "ssh://h:99999/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			if strings.ContainsRune(err.Error(), '\n') {
				t.Fatalf("ParseTarget(%q): error of several lines: %q", s, err)
			}
			if _, ok := err.(*TargetError); !ok { // forward and the CLI rely on it
				t.Fatalf("ParseTarget(%q): error %T, want *TargetError", s, err)
			}
			return
		}
		// A parsed target prints back to one that parses the same.
		again, err := ParseTarget(tg.String())
		if err != nil || again != tg {
			t.Fatalf("ParseTarget(%q) = %+v; its String %q parses as %+v, %v", s, tg, tg.String(), again, err)
		}
		if tg.Host == "" || strings.ContainsAny(tg.User, ":@/ ") {
			t.Fatalf("ParseTarget(%q) = %+v: bad fields", s, tg)
		}
	})
}
