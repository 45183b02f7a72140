package sshtun

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// recorder is a net.Conn that keeps what is written to it.
type recorder struct {
	net.Conn
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes++
	return r.buf.Write(p)
}

// TestWireConnGCMWholePackets writes AES-GCM-shaped packets of every
// length as x/crypto does (the length, then the rest, through a 4 KiB
// bufio.Writer, flushed after each) and checks that each packet has gone
// out whole once it is flushed: a first part is held, nothing else is.
func TestWireConnGCMWholePackets(t *testing.T) {
	rec := &recorder{}
	w := &wireConn{Conn: rec}
	w.gcm.Store(true)
	bw := bufio.NewWriter(w)
	sent := 0
	for length := 16; length <= 40000; length += 16 {
		var prefix [4]byte
		binary.BigEndian.PutUint32(prefix[:], uint32(length))
		body := make([]byte, length+gcmTag)
		body[0] = byte(length) // something that is not a length
		bw.Write(prefix[:])
		bw.Write(body)
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		sent += 4 + length + gcmTag
		if got := rec.buf.Len(); got != sent {
			t.Fatalf("packet of length %d: %d bytes out after its flush, want %d (%d held)", length, got, sent, len(w.held))
		}
		if len(w.held) != 0 {
			t.Fatalf("packet of length %d: %d bytes still held", length, len(w.held))
		}
	}
	// Without AES-GCM (chacha20-poly1305 writes a packet in one piece,
	// the other ciphers' lengths are encrypted) nothing is held.
	w2 := &wireConn{Conn: &recorder{}}
	if n, err := w2.Write(make([]byte, bufWriterSize)); n != bufWriterSize || err != nil || len(w2.held) != 0 {
		t.Fatalf("without AES-GCM: Write = %d, %v, %d held; want all passed through", n, err, len(w2.held))
	}
}

func TestStartsLongGCMPacket(t *testing.T) {
	p := make([]byte, bufWriterSize)
	for _, c := range []struct {
		length uint32
		want   bool
	}{
		{32784, true},
		{4096, true},     // 4 + 4096 + 16 > 4096
		{4080, true},     // 4100 bytes in all
		{4064, false},    // 4084 bytes: it would have fitted in one write
		{32785, false},   // not a multiple of 16: not a length in clear
		{1 << 20, false}, // beyond any packet
	} {
		binary.BigEndian.PutUint32(p, c.length)
		if got := startsLongGCMPacket(p); got != c.want {
			t.Errorf("length %d: %v, want %v", c.length, got, c.want)
		}
	}
	if startsLongGCMPacket(make([]byte, 4000)) {
		t.Error("a write shorter than the buffer is a first part")
	}
}

// TestWireConnRealSSH runs x/crypto's client over a wireConn against
// x/crypto's server on loopback TCP, with each cipher, and echoes
// payloads of many sizes through a channel: every one comes back whole
// and in time (nothing held).
func TestWireConnRealSSH(t *testing.T) {
	_, hostKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, cipher := range []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM, ssh.CipherChaCha20Poly1305, ssh.CipherAES128CTR} {
		t.Run(cipher, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			scfg := &ssh.ServerConfig{NoClientAuth: true}
			scfg.AddHostKey(signer)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				sc, chans, reqs, err := ssh.NewServerConn(c, scfg)
				if err != nil {
					return
				}
				defer sc.Close()
				go ssh.DiscardRequests(reqs)
				for nc := range chans {
					ch, creqs, err := nc.Accept()
					if err != nil {
						return
					}
					go ssh.DiscardRequests(creqs)
					go func() {
						io.Copy(ch, ch)
						ch.CloseWrite()
					}()
				}
			}()
			raw, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			w := newWireConn(raw)
			ccfg := &ssh.ClientConfig{User: "u", HostKeyCallback: ssh.InsecureIgnoreHostKey()}
			ccfg.Ciphers = []string{cipher}
			c, chans, reqs, err := ssh.NewClientConn(w, ln.Addr().String(), ccfg)
			if err != nil {
				t.Fatal(err)
			}
			w.useGCM(c)
			gcm := cipher == ssh.CipherAES128GCM || cipher == ssh.CipherAES256GCM
			if w.gcm.Load() != gcm {
				t.Fatalf("gcm = %v, want %v", w.gcm.Load(), gcm)
			}
			client := ssh.NewClient(c, chans, reqs)
			defer client.Close()
			ch, creqs, err := client.OpenChannel("echo", nil)
			if err != nil {
				t.Fatal(err)
			}
			go ssh.DiscardRequests(creqs)
			raw.SetDeadline(time.Now().Add(20 * time.Second))
			buf := make([]byte, 70000)
			var sizes []int
			for size := 1; size <= len(buf); size = size*5/4 + 7 {
				sizes = append(sizes, size)
			}
			// Every size around x/crypto's 4 KiB write buffer, where
			// some packet is exactly that long with every cipher but
			// AES-GCM.
			for size := 4000; size < 4120; size++ {
				sizes = append(sizes, size)
			}
			for _, size := range sizes {
				msg := make([]byte, size)
				rand.Read(msg)
				if _, err := ch.Write(msg); err != nil {
					t.Fatal(err)
				}
				// Each echo must come back on its own: a held last part
				// would stall here until the deadline.
				done := make(chan error, 1)
				go func() {
					_, err := io.ReadFull(ch, buf[:size])
					done <- err
				}()
				select {
				case err := <-done:
					if err != nil {
						t.Fatalf("size %d: %v", size, err)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("size %d: no echo within 5 s (held?)", size)
				}
				if !bytes.Equal(buf[:size], msg) {
					t.Fatalf("size %d: echo differs", size)
				}
			}
			// A keepalive-like request, a small packet on its own.
			if _, _, err := client.SendRequest("keepalive@openssh.com", true, nil); err != nil {
				t.Fatal(err)
			}
			ch.Close()
		})
	}
}
