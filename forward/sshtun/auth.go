package sshtun

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// ErrAuth is wrapped when the server refuses every way we have to log in.
var ErrAuth = errors.New("login refused")

// defaultIdentities are tried, when they exist, where the config names no
// IdentityFile, as OpenSSH does.
var defaultIdentities = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// credentials are the ways to log in to one endpoint, and what was
// missing, to explain a refusal.
type credentials struct {
	signers             []ssh.Signer
	keyboardInteractive ssh.KeyboardInteractiveChallenge // nil: no terminal
	password            func() (string, error)           // nil: no terminal

	keys  []string // what the public key method offers, for messages
	notes []string // what could not be used, and why
	agent net.Conn // closed after the handshake
	asked bool     // the terminal was asked something (and the answer refused)
}

func (c *credentials) close() {
	if c.agent != nil {
		c.agent.Close()
	}
}

// credentials gathers the keys (agent first, then identity files) and the
// interactive methods the caller allows.
func (o *Options) credentials(e *endpoint) *credentials {
	cr := &credentials{}
	var signers []ssh.Signer
	var agentSigners []ssh.Signer
	if o.AgentSocket == "" {
		cr.notes = append(cr.notes, "no ssh-agent (SSH_AUTH_SOCK not set)")
	} else if conn, err := net.Dial("unix", o.AgentSocket); err != nil {
		cr.notes = append(cr.notes, fmt.Sprintf("ssh-agent at %s: %v", o.AgentSocket, errors.Unwrap(err)))
	} else {
		cr.agent = conn
		s, err := agent.NewClient(conn).Signers()
		switch {
		case err != nil:
			cr.notes = append(cr.notes, fmt.Sprintf("ssh-agent: %v", err))
		case len(s) == 0:
			cr.notes = append(cr.notes, "ssh-agent holds no key")
		}
		agentSigners = s
		if len(s) > 0 {
			cr.keys = append(cr.keys, fmt.Sprintf("%d from ssh-agent", len(s)))
		}
	}
	files := e.identityFiles
	explicit := len(files) > 0
	if !explicit && o.HomeDir != "" {
		for _, n := range defaultIdentities {
			files = append(files, filepath.Join(o.HomeDir, ".ssh", n))
		}
	}
	var fileSigners []ssh.Signer
	var missing []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			if explicit || !os.IsNotExist(err) {
				missing = append(missing, fmt.Sprintf("%s: %v", f, errors.Unwrap(err)))
			}
			continue
		}
		s, err := ssh.ParsePrivateKey(data)
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			if o.Passphrase == nil {
				cr.notes = append(cr.notes, f+" is encrypted and there is no terminal for its passphrase (add it to ssh-agent)")
				continue
			}
			pass, perr := o.Passphrase(f)
			if perr != nil {
				cr.notes = append(cr.notes, fmt.Sprintf("%s: passphrase: %v", f, perr))
				continue
			}
			s, err = ssh.ParsePrivateKeyWithPassphrase(data, pass)
		}
		if err != nil {
			cr.notes = append(cr.notes, fmt.Sprintf("%s: %v", f, err))
			continue
		}
		fileSigners = append(fileSigners, s)
		cr.keys = append(cr.keys, filepath.Base(f))
	}
	if len(files) == 0 {
		cr.notes = append(cr.notes, "no identity file (no home directory given)")
	} else if len(fileSigners) == 0 && len(missing) == 0 && !explicit {
		cr.notes = append(cr.notes, "no key in "+filepath.Join(o.HomeDir, ".ssh")+" ("+strings.Join(defaultIdentities, ", ")+")")
	}
	cr.notes = append(cr.notes, missing...)
	if e.identitiesOnly && explicit {
		// Only the agent's keys that match a configured file; without the
		// public halves at hand, keep the files' own keys first.
		signers = append(fileSigners, matching(agentSigners, fileSigners)...)
	} else {
		signers = append(agentSigners, fileSigners...)
	}
	cr.signers = signers
	if ask := o.KeyboardInteractive; ask != nil {
		cr.keyboardInteractive = func(name, instruction string, questions []string, echos []bool) ([]string, error) {
			cr.asked = cr.asked || len(questions) > 0
			return ask(name, instruction, questions, echos)
		}
	}
	if o.Password != nil {
		user, host := e.user, e.addr()
		cr.password = func() (string, error) {
			cr.asked = true
			return o.Password(user, host)
		}
	}
	if o.KeyboardInteractive == nil && o.Password == nil {
		cr.notes = append(cr.notes, "no terminal to ask for a password")
	}
	return cr
}

// methods are the credentials as x/crypto/ssh takes them.
func (c *credentials) methods() []ssh.AuthMethod {
	var m []ssh.AuthMethod
	if len(c.signers) > 0 {
		m = append(m, ssh.PublicKeys(c.signers...))
	}
	if c.keyboardInteractive != nil {
		m = append(m, ssh.KeyboardInteractive(c.keyboardInteractive))
	}
	if c.password != nil {
		m = append(m, ssh.PasswordCallback(c.password))
	}
	return m
}

// matching returns the signers of a whose public keys are among b's.
func matching(a, b []ssh.Signer) []ssh.Signer {
	var out []ssh.Signer
	for _, s := range a {
		for _, t := range b {
			if string(s.PublicKey().Marshal()) == string(t.PublicKey().Marshal()) {
				out = append(out, s)
			}
		}
	}
	return out
}

// authError explains a refused login in one line: what was offered and
// what was missing.
func (c *credentials) authError(e *endpoint) error {
	offered := "no key"
	if len(c.keys) > 0 {
		offered = "keys: " + strings.Join(c.keys, ", ")
	}
	msg := "offered " + offered
	if c.asked {
		msg += ", and answers on the terminal"
	}
	if len(c.notes) > 0 {
		msg += "; " + strings.Join(c.notes, "; ")
	}
	return fmt.Errorf("ssh %s: %w (%s)", e, ErrAuth, msg)
}
