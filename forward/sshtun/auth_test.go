package sshtun

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// kbdServer is an SSH server that lets in only keyboard-interactive
// logins answering "portctl" to its one question. Debian's sshd does
// keyboard-interactive through PAM, with the machine's own accounts, so
// this hook is tested against x/crypto's server instead.
func kbdServer(t *testing.T) (addr string, hostKey ssh.PublicKey) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{
		KeyboardInteractiveCallback: func(c ssh.ConnMetadata, ask ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			ans, err := ask("", "one question", []string{"Word: "}, []bool{false})
			if err != nil || len(ans) != 1 || ans[0] != "portctl" {
				return nil, errors.New("wrong")
			}
			return nil, nil
		},
	}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				defer sc.Close()
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					ch.Reject(ssh.Prohibited, "no channels here")
				}
			}()
		}
	}()
	return ln.Addr().String(), signer.PublicKey()
}

func TestKeyboardInteractive(t *testing.T) {
	addr, key := kbdServer(t)
	home := t.TempDir()
	known := filepath.Join(home, "known_hosts")
	// No trailing newline: AcceptNew's line must not join it.
	os.WriteFile(known, []byte("# a comment"), 0o600)
	var asked []string
	o := Options{
		LocalUser: "me", HomeDir: home, KnownHostsFiles: []string{known}, AcceptNew: true, ConnectTimeout: 5 * time.Second,
		KeyboardInteractive: func(name, instruction string, questions []string, echos []bool) ([]string, error) {
			asked = append(asked, questions...)
			return []string{"portctl"}, nil
		},
	}
	m := NewManager(o)
	defer m.Close()
	h, err := m.Host("ssh://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	// Logged in: the server refuses the channel itself.
	_, err = h.Dial(context.Background(), "tcp", "127.0.0.1:1")
	var oe *ssh.OpenChannelError
	if !errors.As(err, &oe) || oe.Reason != ssh.Prohibited {
		t.Fatalf("Dial = %v; want the server's refusal of the channel after a keyboard-interactive login", err)
	}
	if fmt.Sprint(asked) != "[Word: ]" {
		t.Errorf("questions asked = %q; want [Word: ]", asked)
	}
	kh, _ := os.ReadFile(known)
	if lines := strings.Split(strings.TrimSpace(string(kh)), "\n"); len(lines) != 2 || !strings.HasSuffix(lines[1], strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))) {
		t.Errorf("known_hosts = %q; want the comment, then the accepted key on a line of its own", kh)
	}
	if st := h.State(); st.State != StateConnected || st.Failed != 1 {
		t.Errorf("State = %+v", st)
	}

	// Without the hook there is nothing to log in with: one line, at once.
	o.KeyboardInteractive = nil
	m2 := NewManager(o)
	defer m2.Close()
	_, err = m2.Dial(context.Background(), "ssh://"+addr, "tcp", "127.0.0.1:1")
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "no terminal") || strings.ContainsRune(err.Error(), '\n') {
		t.Errorf("without a terminal: %v; want ErrAuth naming the missing terminal", err)
	}
}

// TestBadKnownHosts: a known_hosts file that does not parse fails the
// connection at once, naming the file.
func TestBadKnownHosts(t *testing.T) {
	addr, _ := kbdServer(t)
	known := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(known, []byte("127.0.0.1 ssh-ed25519 not-base64!\n"), 0o600)
	m := NewManager(Options{LocalUser: "me", KnownHostsFiles: []string{known}, ConnectTimeout: 5 * time.Second})
	defer m.Close()
	start := time.Now()
	_, err := m.Dial(context.Background(), "ssh://"+addr, "tcp", "127.0.0.1:1")
	if !errors.Is(err, ErrKnownHosts) || !strings.Contains(err.Error(), known) || strings.Contains(err.Error(), "handshake failed") {
		t.Errorf("Dial with a bad known_hosts = %v; want ErrKnownHosts naming %s", err, known)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %s; want at once", el)
	}
	t.Log(err)
}
