package sshtun

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/portctl/portctl/internal/testnet"
)

func TestNextBackoff(t *testing.T) {
	var d time.Duration
	var got []time.Duration
	for range 6 {
		d = nextBackoff(d, false, 500*time.Millisecond)
		got = append(got, d)
	}
	if fmt.Sprint(got) != "[100ms 200ms 400ms 500ms 500ms 500ms]" {
		t.Errorf("network back-off = %v", got)
	}
	d = 0
	for range 12 {
		d = nextBackoff(d, true, 500*time.Millisecond)
	}
	if d != maxAuthBackoff {
		t.Errorf("refused login back-off = %v; want %v", d, maxAuthBackoff)
	}
}

// TestBackoffDown: a host where nothing listens is retried with back-off,
// not in a tight loop; a Dial waits the connect timeout and fails with the
// last error, and Dials waiting make attempts sooner, but not more often
// than every 100 ms.
func TestBackoffDown(t *testing.T) {
	closed := testnet.ClosedPort(t, "127.0.0.1")
	m := NewManager(Options{LocalUser: "u", ConnectTimeout: 700 * time.Millisecond, MaxBackoff: 400 * time.Millisecond})
	defer m.Close()
	h, err := m.Host("ssh://" + closed.String())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	st := h.State()
	if st.Attempts < 4 || st.Attempts > 20 || st.State != StateReconnecting || !strings.Contains(st.LastError, "refused") {
		t.Errorf("after 2 s down: %+v; want 4-20 attempts, reconnecting, connection refused", st)
	}
	before := st.Attempts
	start := time.Now()
	_, err = h.Dial(context.Background(), "tcp", "127.0.0.1:1")
	el := time.Since(start)
	if !errors.Is(err, ErrLinkDown) || !strings.Contains(err.Error(), "refused") || strings.ContainsRune(err.Error(), '\n') {
		t.Errorf("Dial = %v; want ErrLinkDown with the last error, one line", err)
	}
	if el < 650*time.Millisecond || el > 2*time.Second {
		t.Errorf("Dial failed after %s; want the connect timeout, 700 ms", el)
	}
	n := h.State().Attempts - before
	if n < 2 || n > 9 {
		t.Errorf("%d attempts while a Dial waited 700 ms; want 2-9 (sooner than the back-off, at most one per 100 ms)", n)
	}
	// The caller's context ends the wait too, and says so.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := h.Dial(ctx, "tcp", "127.0.0.1:1"); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrLinkDown) {
		t.Errorf("Dial with a 100 ms context = %v; want ErrLinkDown and context.DeadlineExceeded", err)
	}
}

func TestSOCKSGreeting(t *testing.T) {
	tests := []struct {
		name  string
		in    []byte
		reply []byte
		ok    bool
	}{
		{"no auth", []byte{5, 2, 2, 0}, []byte{5, 0}, true},
		{"password only", []byte{5, 1, 2}, []byte{5, 0xff}, false},
		{"socks4", []byte{4, 1, 0, 80}, nil, false},
		{"short", []byte{5, 3, 0}, nil, false},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		err := socksGreeting(struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(tt.in), &out})
		if (err == nil) != tt.ok || !bytes.Equal(out.Bytes(), tt.reply) {
			t.Errorf("%s: socksGreeting = %v, replied %v; want ok %v, %v", tt.name, err, out.Bytes(), tt.ok, tt.reply)
		}
	}
}

// TestFlappingLink: a server that closes every connection right after
// the login is not reconnected to in a tight loop.
func TestFlappingLink(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	var logins atomic.Int32
	addr := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		sc, _, _, err := ssh.NewServerConn(c, cfg)
		if err != nil {
			return
		}
		logins.Add(1)
		sc.Close()
	})
	home := t.TempDir()
	m := NewManager(Options{LocalUser: "u", HomeDir: home, AcceptNew: true, KnownHostsFiles: []string{filepath.Join(home, "kh")},
		KeyboardInteractive: func(string, string, []string, []bool) ([]string, error) { return nil, nil }})
	defer m.Close()
	if _, err := m.Host("ssh://" + addr.String()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	n := logins.Load()
	t.Logf("%d logins in 2 s", n)
	if n < 3 || n > 20 {
		t.Errorf("%d logins in 2 s to a server that closes each at once; want 3-20 (back-off, not a tight loop)", n)
	}
}
