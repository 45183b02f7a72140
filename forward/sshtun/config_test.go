package sshtun

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const sampleConfig = `# a user's ~/.ssh/config
Host bastion bastion.example
    HostName 192.0.2.10
    User ops
    Port 2222
    IdentityFile ~/.ssh/id_bastion
    ServerAliveInterval 20
    ServerAliveCountMax=5

Host db-* !db-public
  ProxyJump bastion
  User dbadmin
  StrictHostKeyChecking accept-new

Host "quoted"
  HostName %h.internal
  UserKnownHostsFile ~/.ssh/kh_one "/tmp/kh two"

Match host foo
  User matched

Host *.example
  IdentityFile = ~/.ssh/id_example
  ConnectTimeout 1m30s
  Ciphers aes128-gcm@openssh.com,chacha20-poly1305@openssh.com
  SendEnv LANG

Host *
  User everyone
  ServerAliveInterval 60
  IdentitiesOnly yes
  StrictHostKeyChecking off
`

func TestConfigLookup(t *testing.T) {
	c, err := ParseConfig(strings.NewReader(sampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want HostConfig
	}{
		{"bastion", HostConfig{HostName: "192.0.2.10", User: "ops", Port: 2222, IdentityFiles: []string{"~/.ssh/id_bastion"},
			ServerAliveInterval: 20 * time.Second, ServerAliveCountMax: 5, IdentitiesOnly: true, StrictHostKeyChecking: "no"}},
		{"BASTION.example", HostConfig{HostName: "192.0.2.10", User: "ops", Port: 2222, IdentityFiles: []string{"~/.ssh/id_bastion", "~/.ssh/id_example"},
			ServerAliveInterval: 20 * time.Second, ServerAliveCountMax: 5, IdentitiesOnly: true, StrictHostKeyChecking: "no",
			ConnectTimeout: 90 * time.Second, Ciphers: "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com"}},
		{"db-orders", HostConfig{ProxyJump: "bastion", User: "dbadmin", StrictHostKeyChecking: "accept-new",
			ServerAliveInterval: 60 * time.Second, IdentitiesOnly: true}},
		{"db-public", HostConfig{User: "everyone", ServerAliveInterval: 60 * time.Second, IdentitiesOnly: true, StrictHostKeyChecking: "no"}},
		{"quoted", HostConfig{HostName: "%h.internal", UserKnownHostsFiles: []string{"~/.ssh/kh_one", "/tmp/kh two"},
			User: "everyone", ServerAliveInterval: 60 * time.Second, IdentitiesOnly: true, StrictHostKeyChecking: "no"}},
		{"foo", HostConfig{User: "everyone", ServerAliveInterval: 60 * time.Second, IdentitiesOnly: true, StrictHostKeyChecking: "no"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, c.Lookup(tt.host)); diff != "" {
			t.Errorf("Lookup(%q) (-want +got):\n%s", tt.host, diff)
		}
	}
	var none *Config
	if got := none.Lookup("x"); !cmp.Equal(got, HostConfig{}) {
		t.Errorf("nil Config: Lookup = %+v; want zero", got)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct{ in, err string }{
		{"Port abc", "line 1: Port: \"abc\": want a number 1-65535"},
		{"\nHost x\n  Port 0", "line 3: Port"},
		{"Host", "line 1: Host without a pattern"},
		{"ServerAliveInterval 1x", "want seconds"},
		{"ServerAliveCountMax -1", "want a count"},
		{"StrictHostKeyChecking maybe", "want yes, accept-new"},
		{"ProxyJump a:b:c", "jump host"},
		{"ProxyJump a,,b", "jump host"},
		{"User \"a b\"", "not a login name"},
		{"HostName \"unterminated", "unterminated quote"},
		{"IdentityFile", "want a file name"},
		{"User a b", "want one value"},
		{"IdentitiesOnly maybe", "want yes or no"},
	}
	for _, tt := range tests {
		_, err := ParseConfig(strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrConfig) {
			t.Errorf("ParseConfig(%q) = %v; want an error with %q", tt.in, err, tt.err)
		}
	}
}

func TestWildMatch(t *testing.T) {
	tests := []struct {
		p, s string
		want bool
	}{
		{"*", "anything", true}, {"*.example", "a.example", true}, {"*.example", "example", false},
		{"db-?", "db-1", true}, {"db-?", "db-12", false}, {"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false},
		{"[x]", "[x]", true}, {"[x]", "x", false}, {"", "", true}, {"**", "", true},
	}
	for _, tt := range tests {
		if got := wildMatch(tt.p, tt.s); got != tt.want {
			t.Errorf("wildMatch(%q, %q) = %v; want %v", tt.p, tt.s, got, tt.want)
		}
	}
}

func TestResolve(t *testing.T) {
	c, err := ParseConfig(strings.NewReader(`
Host target
  HostName 127.0.0.1
  Port 2201
  ProxyJump jump1,ssh://root@jump2:2203
  IdentityFile %d/.ssh/id_%h_%r
Host jump1
  HostName 127.0.0.2
  User j1
Host loop
  ProxyJump loop2
Host loop2
  ProxyJump loop
`))
	if err != nil {
		t.Fatal(err)
	}
	o := &Options{Config: c, HomeDir: "/home/me", LocalUser: "me", AcceptNew: true}
	ch, err := o.resolve(Target{Host: "target"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range ch.hops {
		got = append(got, h.String())
	}
	if want := []string{"j1@127.0.0.2:22", "root@jump2:2203", "me@127.0.0.1:2201"}; !cmp.Equal(got, want) {
		t.Errorf("hops = %q; want %q", got, want)
	}
	last := ch.last()
	if want := []string{"/home/me/.ssh/id_127.0.0.1_me"}; !cmp.Equal(last.identityFiles, want) {
		t.Errorf("identity files = %q; want %q", last.identityFiles, want)
	}
	if last.strict != "accept-new" || last.knownHosts[0] != "/home/me/.ssh/known_hosts" || last.aliveInterval != defaultKeepAlive || last.aliveCount != 3 {
		t.Errorf("endpoint = %+v", last)
	}
	if _, err := o.resolve(Target{Host: "loop"}); err == nil || !strings.Contains(err.Error(), "jump hosts") {
		t.Errorf("resolve(loop) = %v; want a loop error", err)
	}
	if _, err := (&Options{}).resolve(Target{Host: "x"}); err == nil || !strings.Contains(err.Error(), "no user name") {
		t.Errorf("resolve without a user = %v; want 'no user name'", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add(sampleConfig)
	f.Add("Host a !b\n Port=22\nProxyJump x@y:1,ssh://z")
	f.Add("Host *\n\tHostName \"%h\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConfig(strings.NewReader(s))
		if err != nil {
			if strings.ContainsRune(err.Error(), '\n') {
				t.Fatalf("error of several lines: %q", err)
			}
			return
		}
		for _, h := range []string{"a", "bastion", "db-1", "x.example", ""} {
			hc := c.Lookup(h)
			if hc.ProxyJump != "" && !strings.EqualFold(hc.ProxyJump, "none") {
				if _, err := parseJumps(hc.ProxyJump); err != nil {
					t.Fatalf("Lookup(%q).ProxyJump %q was accepted but does not parse: %v", h, hc.ProxyJump, err)
				}
			}
			o := &Options{Config: c, LocalUser: "u", HomeDir: "/h"}
			o.resolve(Target{Host: "a"}) // must not panic or loop
		}
	})
}

func TestParseConfigFileInclude(t *testing.T) {
	home := t.TempDir()
	ssh := filepath.Join(home, ".ssh")
	os.MkdirAll(filepath.Join(ssh, "config.d"), 0o700)
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(ssh, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("config", `Include config.d/*.conf
Host outer
  Include ~/.ssh/inner
  Port 2200
Host *
  User fallback
`)
	write("config.d/10-a.conf", "Host a\n  HostName 10.0.0.1\n")
	write("config.d/20-b.conf", "Host b\n  HostName 10.0.0.2\n  Include loop\n")
	write("loop", "Include loop\n")
	write("inner", "User inner-user\nHost innerhost\n  User other\n")
	_, err := ParseConfigFile(filepath.Join(ssh, "config"), home)
	if err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Fatalf("ParseConfigFile with an Include loop = %v; want the nesting error", err)
	}
	write("loop", "")
	c, err := ParseConfigFile(filepath.Join(ssh, "config"), home)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		host string
		want HostConfig
	}{
		{"a", HostConfig{HostName: "10.0.0.1", User: "fallback"}},
		{"b", HostConfig{HostName: "10.0.0.2", User: "fallback"}},
		// The included file's first lines belong to Host outer, and after it
		// Host outer goes on (Port).
		{"outer", HostConfig{User: "inner-user", Port: 2200}},
		{"innerhost", HostConfig{User: "other"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, c.Lookup(tt.host)); diff != "" {
			t.Errorf("Lookup(%q) (-want +got):\n%s", tt.host, diff)
		}
	}
	// A missing file is an empty config; a bad line names the file.
	if c, err := ParseConfigFile(filepath.Join(home, "none"), home); err != nil || len(c.blocks) != 1 {
		t.Errorf("ParseConfigFile(missing) = %v, %v; want an empty config", c, err)
	}
	write("config.d/30-bad.conf", "Port x\n")
	if _, err := ParseConfigFile(filepath.Join(ssh, "config"), home); err == nil || !strings.Contains(err.Error(), "30-bad.conf line 1") {
		t.Errorf("bad included line: %v; want the file and line named", err)
	}
}
