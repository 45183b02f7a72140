package sshtun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Options configure a Manager. The library reads no environment variable
// and asks nothing on a terminal: the caller fills in what OpenSSH would
// take from the environment (HomeDir, LocalUser, AgentSocket) and, when it
// has a terminal, KeyboardInteractive or Password.
type Options struct {
	// Config is the user's ssh_config (see ParseConfig); nil means none.
	Config *Config
	// HomeDir expands ~ and %d in file names and holds the default
	// identity files (~/.ssh/id_ed25519, id_ecdsa, id_rsa) and known_hosts
	// (~/.ssh/known_hosts). Empty: no default files.
	HomeDir string
	// LocalUser is the login name used when neither the target nor the
	// config gives one (OpenSSH uses the local user's name).
	LocalUser string
	// AgentSocket is the path of ssh-agent's socket (SSH_AUTH_SOCK); empty
	// means no agent.
	AgentSocket string
	// KnownHostsFiles replace ~/.ssh/known_hosts (a UserKnownHostsFile in
	// the config replaces both). The first one is where AcceptNew adds keys.
	KnownHostsFiles []string
	// GlobalKnownHostsFiles are read too, never written
	// (/etc/ssh/ssh_known_hosts); files that do not exist are skipped.
	GlobalKnownHostsFiles []string
	// AcceptNew adds the key of a host that no known_hosts file knows and
	// connects, like StrictHostKeyChecking=accept-new. A changed key is
	// refused all the same. Without it, StrictHostKeyChecking from the
	// config decides, and by default an unknown host is refused; "no" and
	// "off" are taken as accept-new (a changed key is never accepted),
	// "ask" as yes (there is nobody to ask).
	AcceptNew bool
	// KeyboardInteractive answers keyboard-interactive challenges (a
	// terminal prompt); nil when there is no terminal.
	KeyboardInteractive ssh.KeyboardInteractiveChallenge
	// Password returns the password of user at host (a terminal prompt);
	// nil when there is no terminal.
	Password func(user, host string) (string, error)
	// Passphrase returns the passphrase of an encrypted identity file; nil
	// skips encrypted files (ssh-agent can hold them).
	Passphrase func(file string) ([]byte, error)
	// ConnectTimeout bounds a connection attempt (TCP connect and SSH
	// handshake over every hop), and how long Dial and Listen wait for a
	// link that is down. Zero: the config's ConnectTimeout, else 10 s.
	ConnectTimeout time.Duration
	// KeepAliveInterval is the time between keepalive requests, and
	// KeepAliveCountMax how many may go unanswered before the link is
	// declared dead. Zero: the config's ServerAliveInterval and
	// ServerAliveCountMax, else 15 s and 3.
	KeepAliveInterval time.Duration
	KeepAliveCountMax int
	// MaxBackoff caps the wait between reconnection attempts after a
	// network error (it doubles from 100 ms, with jitter). Zero: 1 s.
	// After a refused login or host key the wait grows to a minute.
	MaxBackoff time.Duration
	// DialContext makes the TCP connection to the first hop; nil uses a
	// net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

const (
	defaultConnectTimeout = 10 * time.Second
	defaultKeepAlive      = 15 * time.Second
	defaultKeepAliveCount = 3
	defaultMaxBackoff     = time.Second
	minBackoff            = 100 * time.Millisecond
	maxAuthBackoff        = time.Minute
)

// endpoint is one SSH server to log in to, with everything resolved from
// the target, the config and the options.
type endpoint struct {
	alias          string // the name in the target or the ProxyJump hop
	hostName       string // what to connect to
	port           uint16
	user           string
	identityFiles  []string
	identitiesOnly bool
	strict         string // yes, no, accept-new, ask
	knownHosts     []string
	ciphers        string
	connectTimeout time.Duration
	aliveInterval  time.Duration
	aliveCount     int
}

// addr is host:port to connect to and to look up in known_hosts.
func (e *endpoint) addr() string { return hostPort(e.hostName, e.port) }

// String names the endpoint in messages: user@host:port.
func (e *endpoint) String() string { return e.user + "@" + e.addr() }

// chain is the hops to go through and the endpoint at the end.
type chain struct {
	hops []*endpoint // jump hosts first, the target last
}

func (c *chain) last() *endpoint { return c.hops[len(c.hops)-1] }

// key identifies the connection a chain needs: rules whose targets
// resolve to the same chain share one.
func (c *chain) key() string {
	parts := make([]string, len(c.hops))
	for i, h := range c.hops {
		parts[i] = h.String()
	}
	return strings.Join(parts, ",")
}

// resolve turns a target into a chain of endpoints, applying the config
// to the target and, recursively, to its jump hosts.
func (o *Options) resolve(t Target) (*chain, error) {
	budget := maxHops + 1
	hops, err := o.resolveHops(t, &budget)
	if err != nil {
		return nil, err
	}
	return &chain{hops: hops}, nil
}

// resolveHops resolves t and its jump hosts, jump hosts first. budget is
// how many more endpoints the chain may have: each call adds one.
func (o *Options) resolveHops(t Target, budget *int) ([]*endpoint, error) {
	if *budget--; *budget < 0 {
		return nil, fmt.Errorf("ssh %s: more than %d jump hosts (a ProxyJump loop?)", t, maxHops)
	}
	hc := o.Config.Lookup(t.Host)
	e := &endpoint{alias: t.Host, hostName: t.Host, port: 22, user: o.LocalUser}
	if hc.HostName != "" {
		e.hostName = expandTokens(hc.HostName, map[byte]string{'h': t.Host})
		if !validHostName(e.hostName) {
			if a := strings.Trim(e.hostName, "[]"); strings.ContainsRune(a, ':') {
				e.hostName = a
			} else {
				return nil, fmt.Errorf("ssh %s: HostName %q is not a host name", t, e.hostName)
			}
		}
	}
	if hc.Port != 0 {
		e.port = hc.Port
	}
	if t.Port != 0 {
		e.port = t.Port
	}
	if hc.User != "" {
		e.user = hc.User
	}
	if t.User != "" {
		e.user = t.User
	}
	if e.user == "" {
		return nil, fmt.Errorf("ssh %s: no user name: give ssh://USER@%s, or User in the ssh config", t, t.Host)
	}
	tokens := map[byte]string{'h': e.hostName, 'p': fmt.Sprint(e.port), 'r': e.user, 'u': o.LocalUser, 'd': o.HomeDir, 'n': t.Host}
	for _, f := range hc.IdentityFiles {
		e.identityFiles = append(e.identityFiles, o.expandPath(f, tokens))
	}
	e.identitiesOnly = hc.IdentitiesOnly
	e.strict = hc.StrictHostKeyChecking
	if e.strict == "" {
		e.strict = "yes"
	}
	if o.AcceptNew && e.strict != "no" {
		e.strict = "accept-new"
	}
	switch {
	case len(hc.UserKnownHostsFiles) > 0:
		for _, f := range hc.UserKnownHostsFiles {
			if f == "none" {
				continue
			}
			e.knownHosts = append(e.knownHosts, o.expandPath(f, tokens))
		}
	case len(o.KnownHostsFiles) > 0:
		e.knownHosts = append(e.knownHosts, o.KnownHostsFiles...)
	case o.HomeDir != "":
		e.knownHosts = []string{filepath.Join(o.HomeDir, ".ssh", "known_hosts")}
	}
	e.ciphers = hc.Ciphers
	e.connectTimeout = firstNonZero(o.ConnectTimeout, hc.ConnectTimeout, defaultConnectTimeout)
	e.aliveInterval = firstNonZero(o.KeepAliveInterval, hc.ServerAliveInterval, defaultKeepAlive)
	e.aliveCount = o.KeepAliveCountMax
	if e.aliveCount <= 0 {
		e.aliveCount = hc.ServerAliveCountMax
	}
	if e.aliveCount <= 0 {
		e.aliveCount = defaultKeepAliveCount
	}
	if hc.ProxyJump == "" || strings.EqualFold(hc.ProxyJump, "none") {
		return []*endpoint{e}, nil
	}
	jumps, err := parseJumps(hc.ProxyJump)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: ProxyJump: %v", t, err)
	}
	var hops []*endpoint
	for _, j := range jumps {
		if strings.EqualFold(j.Host, t.Host) && j.Port == t.Port {
			return nil, fmt.Errorf("ssh %s: ProxyJump goes through the host itself", t)
		}
		jh, err := o.resolveHops(j, budget)
		if err != nil {
			return nil, err
		}
		hops = append(hops, jh...)
		if len(hops) > maxHops {
			return nil, fmt.Errorf("ssh %s: more than %d jump hosts", t, maxHops)
		}
	}
	return append(hops, e), nil
}

func firstNonZero(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d > 0 {
			return d
		}
	}
	return 0
}

// expandPath expands a leading ~ and the % tokens of an ssh_config file
// name.
func (o *Options) expandPath(p string, tokens map[byte]string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = o.HomeDir + p[1:]
	}
	return expandTokens(p, tokens)
}

// expandTokens replaces %x by tokens[x] and %% by %; unknown tokens stay.
func expandTokens(s string, tokens map[byte]string) string {
	if !strings.ContainsRune(s, '%') {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		if s[i] == '%' {
			b.WriteByte('%')
		} else if v, ok := tokens[s[i]]; ok {
			b.WriteString(v)
		} else {
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// ciphers turns a Ciphers value into x/crypto's list: a plain list as is,
// "+a,b" appended to the defaults, "-a,b" removed from them, "^a,b" put
// first. Unknown names are left to the handshake to refuse.
func ciphers(v string) ([]string, error) {
	if v == "" {
		return nil, nil
	}
	def := ssh.SupportedAlgorithms().Ciphers
	list := strings.Split(strings.TrimLeft(v, "+-^"), ",")
	switch v[0] {
	case '+':
		return append(append([]string(nil), def...), list...), nil
	case '^':
		return append(list, def...), nil
	case '-':
		var out []string
		for _, c := range def {
			drop := false
			for _, l := range list {
				if ok := globMatch(l, c); ok {
					drop = true
				}
			}
			if !drop {
				out = append(out, c)
			}
		}
		if len(out) == 0 {
			return nil, errors.New("Ciphers removes every cipher")
		}
		return out, nil
	}
	return list, nil
}
