package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"

	xterm "golang.org/x/term"

	"github.com/portctl/portctl/forward"
	"github.com/portctl/portctl/forward/sshtun"
	"github.com/portctl/portctl/internal/term"
)

// usesSSH reports whether a rule goes through SSH.
func usesSSH(rules []forward.Rule) bool {
	for _, r := range rules {
		if r.Via != "" {
			return true
		}
	}
	return false
}

// newSSHManager makes the SSH transport of --via rules from what OpenSSH
// would read: the ssh_config (--ssh-config, else ~/.ssh/config), the home
// directory's keys and known_hosts, /etc/ssh/ssh_known_hosts, ssh-agent
// (SSH_AUTH_SOCK), the login name; with a terminal on stdin, prompts for
// keyboard-interactive, passwords and passphrases. Without one, nothing
// is asked: a login that needs an answer fails.
func newSSHManager(streams *term.IO, opts forwardOptions) (*sshtun.Manager, error) {
	home, _ := os.UserHomeDir()
	local := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		local = u.Username
	}
	o := sshtun.Options{HomeDir: home, LocalUser: local, AgentSocket: os.Getenv("SSH_AUTH_SOCK"),
		GlobalKnownHostsFiles: []string{"/etc/ssh/ssh_known_hosts"}, AcceptNew: opts.AcceptNew}
	// The config: --ssh-config (it must exist), else ~/.ssh/config (its
	// absence is an empty config, as for ssh).
	path, label := opts.SSHConfig, "--ssh-config "+opts.SSHConfig
	switch {
	case path == "" && home != "":
		path = filepath.Join(home, ".ssh", "config")
		label = path
	case path != "" && path != "none":
		if _, err := os.Stat(path); err != nil {
			return nil, usageErrorf("%s: %v", label, errors.Unwrap(err))
		}
	}
	if path != "" && path != "none" {
		cfg, err := sshtun.ParseConfigFile(path, home)
		if err != nil {
			return nil, usageErrorf("%s: %v", label, strings.TrimPrefix(err.Error(), sshtun.ErrConfig.Error()+": "))
		}
		o.Config = cfg
	}
	if f, ok := streams.In.(*os.File); ok && streams.IsInTerminal() {
		p := &prompter{in: f, out: streams.Err}
		o.KeyboardInteractive = p.keyboardInteractive
		o.Password = func(user, host string) (string, error) {
			b, err := p.ask(fmt.Sprintf("%s@%s's password: ", user, host), false)
			return string(b), err
		}
		o.Passphrase = func(file string) ([]byte, error) {
			return p.ask(fmt.Sprintf("Enter passphrase for key '%s': ", file), false)
		}
	}
	return sshtun.NewManager(o), nil
}

// prompter asks questions on the terminal, one at a time (several SSH
// connections may log in at once).
type prompter struct {
	mu  sync.Mutex
	in  *os.File
	out interface{ Write([]byte) (int, error) }
}

func (p *prompter) ask(q string, echo bool) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.askLocked(q, echo)
}

func (p *prompter) askLocked(q string, echo bool) ([]byte, error) {
	fmt.Fprint(p.out, q)
	if !echo {
		b, err := xterm.ReadPassword(int(p.in.Fd()))
		fmt.Fprintln(p.out)
		return b, err
	}
	line, err := bufio.NewReader(p.in).ReadString('\n')
	return []byte(strings.TrimRight(line, "\r\n")), err
}

func (p *prompter) keyboardInteractive(name, instruction string, questions []string, echos []bool) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range []string{name, instruction} {
		if s != "" {
			fmt.Fprintln(p.out, s)
		}
	}
	answers := make([]string, len(questions))
	for i, q := range questions {
		b, err := p.askLocked(q, echos[i])
		if err != nil {
			return nil, err
		}
		answers[i] = string(b)
	}
	return answers, nil
}

// waitSSH waits for the first login to every SSH server the rules go
// through, as ssh does before it forwards anything: a refused host key or
// login, or a server that cannot be reached, is the error, in one line.
// Later losses are reconnected by the manager.
func waitSSH(ctx context.Context, m *sshtun.Manager, rules []forward.Rule) error {
	for _, r := range rules {
		if r.Via == "" {
			continue
		}
		h, err := m.Host(r.Via)
		if err == nil {
			err = h.Ready(ctx)
		}
		if err != nil {
			return fmt.Errorf("%s: %s", r.Via, strings.TrimPrefix(err.Error(), "ssh "))
		}
	}
	return nil
}

// logSSH logs every change of an SSH server's state until ctx ends: a
// lost link with its error, each failed attempt's new error, and the
// reconnection with how long the link was down (what autossh's log says).
func logSSH(ctx context.Context, m *sshtun.Manager, every time.Duration, logf func(string, ...any)) {
	last := map[string]sshtun.HostState{}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for _, h := range m.States() {
			prev, seen := last[h.Target]
			last[h.Target] = h
			switch {
			case !seen && h.State == sshtun.StateConnected:
				logf("%s: connected as %s", h.Target, h.Address)
			case !seen:
			case h.State == sshtun.StateConnected && h.Connects != prev.Connects:
				down := prev.Since // since when it was reconnecting
				if prev.State == sshtun.StateConnected {
					// Lost and back between two looks.
					logf("%s: %s", h.Target, strings.TrimPrefix(h.LastError, "ssh "))
					down = h.ErrorAt
				}
				logf("%s: connected again as %s (down %v)", h.Target, h.Address, h.Since.Sub(down).Round(time.Millisecond))
			case h.State == sshtun.StateReconnecting && (prev.State != sshtun.StateReconnecting || h.LastError != prev.LastError):
				logf("%s: %s; reconnecting", h.Target, strings.TrimPrefix(h.LastError, "ssh "))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sshHostsTable shows the SSH servers of the running forwarders.
func sshHostsTable(procs []forward.Process, st term.Style) *term.Table {
	t := term.NewTable("PID", "SSH", "STATE", "SINCE", "RTT", "CONNS", "ACTIVE", "SENT", "RECEIVED", "LAST ERROR")
	for _, p := range procs {
		for _, h := range p.SSH {
			state := h.State.String()
			switch h.State {
			case sshtun.StateConnected:
				state = st.Green(state)
			case sshtun.StateReconnecting:
				state = st.Red(state)
			}
			rtt := "-"
			if h.RTT > 0 {
				rtt = h.RTT.Round(10 * time.Microsecond).String()
			}
			name := h.Target
			if h.Address != "" {
				name += " (" + h.Address + ")"
			}
			lastErr := h.LastError
			if lastErr == "" {
				lastErr = "-"
			}
			t.Row(fmt.Sprint(p.PID), name, state, h.Since.Format(time.DateTime), rtt, fmt.Sprint(h.Conns),
				fmt.Sprint(h.Active), humanBytes(h.BytesOut), humanBytes(h.BytesIn), lastErr)
		}
	}
	return t
}
