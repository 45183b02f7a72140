package sshwire

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/portctl/portctl/internal/testnet"
)

// dialSSHD logs in to d with its client key, checking its host key.
func dialSSHD(t *testing.T, d *testnet.SSHD, cfg Config) *Conn {
	t.Helper()
	key, err := os.ReadFile(d.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(d.HostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User = "root"
	if cfg.HostKeyCallback == nil {
		cfg.HostKeyCallback = ssh.FixedHostKey(hostKey)
	}
	if cfg.Signers == nil {
		cfg.Signers = []ssh.Signer{signer}
	}
	raw, err := net.DialTimeout("tcp", d.Addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClientConn(raw, d.Addr.String(), &cfg)
	if err != nil {
		raw.Close()
		t.Fatalf("NewClientConn: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sinkServer answers every connection with the SHA-256 of what it read,
// after the client's end, then the data again.
func sinkServer(t *testing.T) string {
	t.Helper()
	return testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		h := sha256.New()
		var buf bytes.Buffer
		if _, err := io.Copy(io.MultiWriter(h, &buf), c); err != nil {
			return
		}
		c.Write(h.Sum(nil))
		c.Write(buf.Bytes())
	}).String()
}

// roundTrip sends data through c, half-closes, and checks what comes back.
func roundTrip(t *testing.T, c net.Conn, data []byte) {
	t.Helper()
	if err := sinkRoundTrip(c, data); err != nil {
		t.Fatal(err)
	}
}

// sinkRoundTrip is roundTrip's work, for any goroutine.
func sinkRoundTrip(c net.Conn, data []byte) error {
	got, err := swap(c, data)
	if err != nil {
		return fmt.Errorf("%v after %d bytes back", err, len(got))
	}
	want := sha256.Sum256(data)
	if len(got) != 32+len(data) || !bytes.Equal(got[:32], want[:]) || !bytes.Equal(got[32:], data) {
		return fmt.Errorf("got %d bytes back, want %d (digest %x, want %x)", len(got), 32+len(data), got[:min(32, len(got))], want)
	}
	return nil
}

func TestIntegrationDial(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	c := dialSSHD(t, d, Config{})
	sink := sinkServer(t)
	data := make([]byte, 5<<20)
	rand.Read(data)
	for _, n := range []int{0, 1, 100, 32 << 10, len(data)} {
		ch, err := c.DialContext(context.Background(), "tcp", sink)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, ch, data[:n])
		ch.Close()
	}
	if ok, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err != nil {
		t.Fatalf("keepalive: %v (ok %v)", err, ok)
	}
	_, err := c.DialContext(context.Background(), "tcp", "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "connect failed") {
		t.Fatalf("dial to a closed port: %v; want the server's refusal", err)
	}
}

// TestIntegrationRekey: 16 MiB each way through sshd set to rekey every
// 256 KiB (RekeyLimit), and again with our side starting the exchanges,
// on four channels at once; the data arrives whole.
func TestIntegrationRekey(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server []string
		ours   uint64
	}{
		{"server starts", []string{"RekeyLimit 256K"}, rekeyBytes},
		{"client starts", nil, 256 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testnet.StartSSHD(t, testnet.SSHDOptions{Extra: tc.server})
			saved := rekeyBytes
			rekeyBytes = tc.ours
			t.Cleanup(func() { rekeyBytes = saved })
			c := dialSSHD(t, d, Config{})
			sink := sinkServer(t)
			data := make([]byte, 4<<20)
			rand.Read(data)
			done := make(chan struct{})
			for range 4 {
				go func() {
					defer func() { done <- struct{}{} }()
					ch, err := c.DialContext(context.Background(), "tcp", sink)
					if err != nil {
						t.Error(err)
						return
					}
					defer ch.Close()
					if err := sinkRoundTrip(ch, data); err != nil {
						t.Error(err)
					}
				}()
			}
			for range 4 {
				<-done
			}
			// 32 MiB in all, a key exchange every 256 KiB one way or the other.
			if n := c.kexes.Load(); n < 64 {
				t.Fatalf("%d key exchanges; want 64 or more", n)
			}
		})
	}
}
