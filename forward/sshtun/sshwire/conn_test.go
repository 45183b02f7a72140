package sshwire

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/portctl/portctl/internal/testnet"
)

// The tests here run the client against golang.org/x/crypto/ssh's server,
// an independent implementation, on loopback listeners.

// Keys are made once: RSA key generation is slow.
var (
	hostEd25519 = sync.OnceValue(func() ssh.Signer { return newEd25519Signer() })
	hostECDSA   = sync.OnceValue(func() ssh.Signer {
		return signer(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	})
	rsaKey = sync.OnceValue(func() ssh.Signer {
		return signer(rsa.GenerateKey(rand.Reader, 2048))
	})
	clientEd25519 = sync.OnceValue(func() ssh.Signer { return newEd25519Signer() })
)

func newEd25519Signer() ssh.Signer {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	return signer(k, err)
}

// signer makes a signer of a key just generated, or panics.
func signer[K any](k K, err error) ssh.Signer {
	if err != nil {
		panic(err)
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		panic(err)
	}
	return s
}

// testServer is an x/crypto/ssh server on a loopback port.
type testServer struct {
	addr  string
	conns chan *ssh.ServerConn // logged-in connections, in order
	raws  chan net.Conn        // their TCP connections
	errs  chan error           // NewServerConn's failures
	done  chan struct{}        // closed when the test ends
}

// handlers are what a testServer does with channels and global requests;
// nil fields take the defaults (serveChannel, serveRequest).
type handlers struct {
	channel func(s *testServer, sc *ssh.ServerConn, nc ssh.NewChannel)
	request func(s *testServer, sc *ssh.ServerConn, r *ssh.Request)
}

// serverConfig is a server that takes clientEd25519 and signs with
// hostEd25519.
func serverConfig() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), clientEd25519().PublicKey().Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(hostEd25519())
	return cfg
}

func startServer(t *testing.T, cfg *ssh.ServerConfig, h handlers) *testServer {
	t.Helper()
	if h.channel == nil {
		h.channel = serveChannel
	}
	if h.request == nil {
		h.request = serveRequest
	}
	s := &testServer{
		conns: make(chan *ssh.ServerConn, 64),
		raws:  make(chan net.Conn, 64),
		errs:  make(chan error, 64),
		done:  make(chan struct{}),
	}
	addr := testnet.Serve(t, "127.0.0.1:0", func(raw net.Conn) {
		var wg sync.WaitGroup // this connection's handlers
		s.raws <- raw
		sc, chans, reqs, err := ssh.NewServerConn(raw, cfg)
		if err != nil {
			s.errs <- err
			return
		}
		s.conns <- sc
		wg.Go(func() {
			for r := range reqs {
				h.request(s, sc, r)
			}
		})
		for nc := range chans {
			wg.Go(func() { h.channel(s, sc, nc) })
		}
		sc.Close()
		wg.Wait()
	})
	t.Cleanup(func() { close(s.done) }) // runs before testnet's cleanup
	s.addr = addr.String()
	return s
}

// directTCPIP is a direct-tcpip channel's type-specific data.
type directTCPIP struct {
	Host     string
	Port     uint32
	OrigHost string
	OrigPort uint32
}

// serveChannel handles direct-tcpip channels by the host asked for:
// "echo" sends back what it reads, then EOF; "sink" reads to EOF and
// answers with the data's SHA-256 and length; "refuse" is refused.
func serveChannel(s *testServer, _ *ssh.ServerConn, nc ssh.NewChannel) {
	var d directTCPIP
	if nc.ChannelType() != "direct-tcpip" {
		nc.Reject(ssh.UnknownChannelType, "no "+nc.ChannelType())
		return
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &d); err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	switch d.Host {
	case "echo", "sink", "source":
	case "refuse":
		nc.Reject(ssh.ConnectionFailed, "refused by the test")
		return
	default:
		nc.Reject(ssh.Prohibited, "unknown host "+d.Host)
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	defer ch.Close()
	if d.Host == "source" {
		ch.Write(pattern(int(d.Port) << 20))
		ch.CloseWrite()
		io.Copy(io.Discard, ch)
		return
	}
	if d.Host == "echo" {
		io.Copy(ch, ch)
		ch.CloseWrite()
		return
	}
	h := sha256.New()
	n, _ := io.Copy(h, ch)
	ch.Write(binary.BigEndian.AppendUint64(h.Sum(nil), uint64(n)))
	ch.CloseWrite()
}

// serveRequest answers "echo@test" with success and the payload, and
// refuses everything else.
func serveRequest(_ *testServer, _ *ssh.ServerConn, r *ssh.Request) {
	if r.Type == "echo@test" {
		r.Reply(true, r.Payload)
		return
	}
	r.Reply(false, nil)
}

// dial logs in to s with cfg, by default as "tester" with clientEd25519
// and the host key checked against hostEd25519.
func dial(t *testing.T, s *testServer, cfg Config) *Conn {
	t.Helper()
	c, err := dialErr(t, s, cfg)
	if err != nil {
		t.Fatalf("NewClientConn: %v", err)
	}
	return c
}

func dialErr(t *testing.T, s *testServer, cfg Config) (*Conn, error) {
	t.Helper()
	if cfg.User == "" {
		cfg.User = "tester"
	}
	if cfg.HostKeyCallback == nil {
		cfg.HostKeyCallback = ssh.FixedHostKey(hostEd25519().PublicKey())
	}
	if cfg.Signers == nil && cfg.Password == nil && cfg.KeyboardInteractive == nil {
		cfg.Signers = []ssh.Signer{clientEd25519()}
	}
	raw, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(10 * time.Second)) // the handshake must not hang
	c, err := NewClientConn(raw, s.addr, &cfg)
	if err != nil {
		raw.Close()
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// serverConn is the server's side of the connection just logged in.
func (s *testServer) serverConn(t *testing.T) *ssh.ServerConn {
	t.Helper()
	select {
	case sc := <-s.conns:
		return sc
	case <-time.After(5 * time.Second):
		t.Fatal("the server has no connection")
		return nil
	}
}

func (s *testServer) serverErr(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.errs:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("the server's handshake did not fail")
		return nil
	}
}

// openChannels counts c's channels.
func openChannels(c *Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.chans)
}

// waitChannelsClosed waits up to d for c to have no channel, and returns
// how many it still has.
func waitChannelsClosed(c *Conn, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		n := openChannels(c)
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exchange writes data to c and half-closes it while reading everything
// that comes back.
func exchange(t *testing.T, c net.Conn, data []byte) []byte {
	t.Helper()
	got, err := swap(c, data)
	if err != nil {
		t.Fatalf("%v after %d bytes back; want nil", err, len(got))
	}
	return got
}

// swap is exchange's work, for any goroutine: what came back, and the
// first error of reading it or of writing data and half-closing.
func swap(c net.Conn, data []byte) ([]byte, error) {
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		return got, fmt.Errorf("ReadAll: %w", err)
	}
	if err := <-errc; err != nil {
		return got, fmt.Errorf("Write/CloseWrite: %w", err)
	}
	return got, nil
}

// checkEcho checks an echo channel's answer.
func checkEcho(t *testing.T, got, data []byte) {
	t.Helper()
	if !bytes.Equal(got, data) {
		t.Fatalf("echo: got %d bytes (sha256 %x); want %d bytes (sha256 %x)", len(got), sha256.Sum256(got), len(data), sha256.Sum256(data))
	}
}

// checkSink checks a sink channel's answer.
func checkSink(t *testing.T, got, data []byte) {
	t.Helper()
	sum := sha256.Sum256(data)
	want := binary.BigEndian.AppendUint64(sum[:], uint64(len(data)))
	if !bytes.Equal(got, want) {
		t.Fatalf("sink answered %x; want %x (sha256 and length %d)", got, want, len(data))
	}
}

// pattern is n bytes of 4-byte big-endian counters, which show data lost,
// repeated or out of order.
func pattern(n int) []byte {
	b := make([]byte, 0, n+4)
	for i := uint32(0); len(b) < n; i++ {
		b = binary.BigEndian.AppendUint32(b, i)
	}
	return b[:n]
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func dialCh(t *testing.T, c *Conn, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch, err := c.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("DialContext(%s) = %v; want nil", addr, err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

func TestHandshakeAndDial(t *testing.T) {
	data := randomBytes(4 << 20)
	for _, cipher := range []string{CipherAES128GCM, CipherAES256GCM} {
		t.Run(cipher, func(t *testing.T) {
			cfg := serverConfig()
			cfg.Ciphers = []string{cipher}
			s := startServer(t, cfg, handlers{})
			c := dial(t, s, Config{ClientVersion: "SSH-2.0-sshwire_test"})
			sc := s.serverConn(t)
			if got := string(sc.ClientVersion()); got != "SSH-2.0-sshwire_test" {
				t.Errorf("server saw client version %q; want %q", got, "SSH-2.0-sshwire_test")
			}
			if !bytes.Equal(sc.SessionID(), c.sessionID) {
				t.Errorf("session ID = %x; the server's is %x", c.sessionID, sc.SessionID())
			}
			if !bytes.Equal(c.serverVersion, sc.ServerVersion()) {
				t.Errorf("server version = %q; want %q", c.serverVersion, sc.ServerVersion())
			}
			for _, n := range []int{0, 1, 32 << 10, 4 << 20} {
				t.Run(fmt.Sprintf("echo/%d", n), func(t *testing.T) {
					ch := dialCh(t, c, "echo:7")
					checkEcho(t, exchange(t, ch, data[:n]), data[:n])
				})
				t.Run(fmt.Sprintf("sink/%d", n), func(t *testing.T) {
					ch := dialCh(t, c, "sink:9")
					checkSink(t, exchange(t, ch, data[:n]), data[:n])
				})
			}
		})
	}
}

// TestDialAddrs checks a channel's addresses and DialContext's argument
// checks.
func TestDialAddrs(t *testing.T) {
	s := startServer(t, serverConfig(), handlers{})
	c := dial(t, s, Config{})
	ch := dialCh(t, c, "echo:7")
	if got, want := ch.RemoteAddr().String(), ":7"; got != want {
		t.Errorf("RemoteAddr = %v; want %v", got, want)
	}
	for _, tc := range []struct{ network, addr string }{
		{"udp", "echo:7"},
		{"tcp", "echo"},
		{"tcp", "echo:65536"},
		{"tcp", "echo:x"},
	} {
		if _, err := c.DialContext(context.Background(), tc.network, tc.addr); err == nil {
			t.Errorf("DialContext(%q, %q) = nil error; want an error", tc.network, tc.addr)
		}
	}
	// The connection still works.
	checkEcho(t, exchange(t, ch, []byte("after")), []byte("after"))
}

func TestWriteToAndServerEOF(t *testing.T) {
	s := startServer(t, serverConfig(), handlers{})
	c := dial(t, s, Config{})
	data := randomBytes(3<<20 + 17)
	ch := dialCh(t, c, "echo:7")
	errc := make(chan error, 1)
	go func() {
		_, err := ch.Write(data)
		if err == nil {
			err = ch.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	var got bytes.Buffer
	n, err := ch.(io.WriterTo).WriteTo(&got)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("WriteTo = %d, %v; want %d, nil", n, err, len(data))
	}
	if err := <-errc; err != nil {
		t.Fatalf("Write = %v; want nil", err)
	}
	checkEcho(t, got.Bytes(), data)
	// After the server's EOF, reads keep reporting it.
	if n, err := ch.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read after EOF = %d, %v; want 0, EOF", n, err)
	}
}

func TestNoCommonAlgorithm(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*ssh.ServerConfig)
	}{
		{"chacha20", func(c *ssh.ServerConfig) { c.Ciphers = []string{"chacha20-poly1305@openssh.com"} }},
		{"aes128-ctr", func(c *ssh.ServerConfig) { c.Ciphers = []string{"aes128-ctr"} }},
		{"kex", func(c *ssh.ServerConfig) { c.KeyExchanges = []string{"ecdh-sha2-nistp256"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := serverConfig()
			tc.edit(cfg)
			s := startServer(t, cfg, handlers{})
			_, err := dialErr(t, s, Config{})
			if !errors.Is(err, ErrNoCommonAlgorithm) {
				t.Fatalf("NewClientConn = %v; want an error wrapping ErrNoCommonAlgorithm", err)
			}
		})
	}
}

// recordConn is a net.Conn that records whether anything was written or
// read.
type recordConn struct {
	net.Conn // nil: any other method panics
	used     atomic.Bool
}

func (c *recordConn) Write(p []byte) (int, error) { c.used.Store(true); return len(p), nil }
func (c *recordConn) Read(p []byte) (int, error)  { c.used.Store(true); return 0, io.EOF }
func (c *recordConn) Close() error                { return nil }

func TestConfigCiphersUnsupported(t *testing.T) {
	for _, ciphers := range [][]string{
		{"chacha20-poly1305@openssh.com"},
		{"aes128-ctr", "aes256-cbc"},
		{}, // an empty list, not nil: nothing allowed
	} {
		conn := &recordConn{}
		c, err := NewClientConn(conn, "x:22", &Config{Ciphers: ciphers, HostKeyCallback: ssh.InsecureIgnoreHostKey()})
		if c != nil || !errors.Is(err, ErrNoCommonAlgorithm) {
			t.Errorf("NewClientConn with Ciphers %q = %v, %v; want nil, ErrNoCommonAlgorithm", ciphers, c, err)
		}
		if conn.used.Load() {
			t.Errorf("NewClientConn with Ciphers %q used the connection; want nothing written", ciphers)
		}
	}
	if !Speaks(nil) || !Speaks([]string{CipherAES256GCM, "aes128-ctr"}) || Speaks([]string{"aes128-ctr", CipherAES128GCM}) {
		t.Errorf("Speaks answers wrongly")
	}
}

func TestClientCipherPreference(t *testing.T) {
	// The client's order decides: x/crypto's server takes the client's
	// first that it has.
	s := startServer(t, serverConfig(), handlers{})
	c := dial(t, s, Config{Ciphers: []string{"chacha20-poly1305@openssh.com", CipherAES256GCM}})
	if got, want := c.sentKex.cipherCS, []string{CipherAES256GCM}; !slices.Equal(got, want) {
		t.Errorf("ciphers offered = %q; want %q (the unsupported left out)", got, want)
	}
	ch := dialCh(t, c, "echo:7")
	checkEcho(t, exchange(t, ch, []byte("x")), []byte("x"))
}

// countingRand counts the server's curve25519 key generations: one a key
// exchange (x/crypto reads 32 random bytes for each, and padding, the
// other use, is at most 19 bytes).
type countingRand struct{ kex atomic.Int32 }

func (r *countingRand) Read(p []byte) (int, error) {
	if len(p) == 32 {
		r.kex.Add(1)
	}
	return rand.Read(p)
}

func TestRekey(t *testing.T) {
	cfg := serverConfig()
	rnd := &countingRand{}
	cfg.Rand = rnd
	cfg.RekeyThreshold = 256 << 10
	s := startServer(t, cfg, handlers{})
	c := dial(t, s, Config{})
	if got := rnd.kex.Load(); got != 1 {
		t.Fatalf("key exchanges after the handshake = %d; want 1", got)
	}

	t.Run("one channel", func(t *testing.T) {
		data := randomBytes(6 << 20)
		before := rnd.kex.Load()
		ch := dialCh(t, c, "echo:7")
		checkEcho(t, exchange(t, ch, data), data)
		ch = dialCh(t, c, "sink:9")
		checkSink(t, exchange(t, ch, data), data)
		if n := rnd.kex.Load() - before; n < 5 {
			t.Errorf("key exchanges during 18 MiB of traffic = %d; want at least 5", n)
		}
	})

	t.Run("concurrent channels", func(t *testing.T) {
		before := rnd.kex.Load()
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := range 16 {
			wg.Go(func() {
				data := randomBytes(256<<10 + i*1000)
				ch, err := c.DialContext(context.Background(), "tcp", "echo:7")
				if err != nil {
					errs <- err
					return
				}
				defer ch.Close()
				got, err := swap(ch, data)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, data) {
					errs <- fmt.Errorf("channel %d: got %d bytes back; want %d intact", i, len(got), len(data))
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := rnd.kex.Load() - before; n < 3 {
			t.Errorf("key exchanges during 16 concurrent channels = %d; want at least 3", n)
		}
	})

	// Global requests cross the key exchanges too.
	for i := range 20 {
		ok, data, err := c.SendRequest("echo@test", true, []byte{byte(i)})
		if err != nil || !ok || !bytes.Equal(data, []byte{byte(i)}) {
			t.Fatalf("SendRequest = %v, %x, %v; want true, %x, nil", ok, data, err, []byte{byte(i)})
		}
	}
}

func TestHostKeyCallbackError(t *testing.T) {
	s := startServer(t, serverConfig(), handlers{})
	errBad := errors.New("not the host's key")
	var gotHost string
	var gotRemote net.Addr
	var gotKey ssh.PublicKey
	_, err := dialErr(t, s, Config{HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
		gotHost, gotRemote, gotKey = host, remote, key
		return errBad
	}})
	if !errors.Is(err, errBad) {
		t.Fatalf("NewClientConn = %v; want %v", err, errBad)
	}
	if gotHost != s.addr {
		t.Errorf("callback's host = %q; want %q", gotHost, s.addr)
	}
	if gotRemote == nil || gotRemote.String() != s.addr {
		t.Errorf("callback's remote = %v; want %v", gotRemote, s.addr)
	}
	if gotKey == nil || !bytes.Equal(gotKey.Marshal(), hostEd25519().PublicKey().Marshal()) {
		t.Errorf("callback's key = %v; want the server's ed25519 key", gotKey)
	}
}

func TestHostKeyAlgorithms(t *testing.T) {
	cfg := serverConfig()
	cfg.AddHostKey(hostECDSA())
	cfg.AddHostKey(rsaKey())
	s := startServer(t, cfg, handlers{})
	for _, tc := range []struct {
		algs []string
		key  ssh.Signer
	}{
		{[]string{ssh.KeyAlgoED25519}, hostEd25519()},
		{[]string{ssh.KeyAlgoECDSA256}, hostECDSA()},
		{[]string{ssh.KeyAlgoRSASHA512}, rsaKey()},
		{[]string{ssh.KeyAlgoRSASHA256}, rsaKey()},
		{[]string{"ssh-dss", ssh.KeyAlgoECDSA256, ssh.KeyAlgoED25519}, hostECDSA()},
	} {
		var got ssh.PublicKey
		_, err := dialErr(t, s, Config{HostKeyAlgorithms: tc.algs, HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			got = key
			return nil
		}})
		if err != nil {
			t.Errorf("HostKeyAlgorithms %q: NewClientConn = %v; want nil", tc.algs, err)
			continue
		}
		if got == nil || !bytes.Equal(got.Marshal(), tc.key.PublicKey().Marshal()) {
			t.Errorf("HostKeyAlgorithms %q: callback's key = %v; want %s", tc.algs, got, tc.key.PublicKey().Type())
		}
	}

	// A server without a key of an algorithm offered.
	only := serverConfig()
	s2 := startServer(t, only, handlers{})
	_, err := dialErr(t, s2, Config{HostKeyAlgorithms: []string{ssh.KeyAlgoECDSA256, ssh.KeyAlgoRSASHA256}})
	if !errors.Is(err, ErrNoCommonAlgorithm) {
		t.Errorf("NewClientConn against an ed25519-only server offering ECDSA and RSA = %v; want ErrNoCommonAlgorithm", err)
	}
}

// lyingSigner is a host key whose PublicKey claims another type than the
// key it marshals to and signs with (claim), or that signs in another
// format than asked (format).
type lyingSigner struct {
	ssh.AlgorithmSigner
	claim  string
	format string
}

type lyingKey struct {
	ssh.PublicKey
	claim string
}

func (k lyingKey) Type() string { return k.claim }

func (s lyingSigner) PublicKey() ssh.PublicKey {
	if s.claim == "" {
		return s.AlgorithmSigner.PublicKey()
	}
	return lyingKey{s.AlgorithmSigner.PublicKey(), s.claim}
}

func (s lyingSigner) SignWithAlgorithm(r io.Reader, data []byte, alg string) (*ssh.Signature, error) {
	if s.format != "" {
		alg = s.format
	} else if s.claim != "" {
		alg = ""
	}
	return s.AlgorithmSigner.SignWithAlgorithm(r, data, alg)
}

func TestHostKeyNotOffered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		signer ssh.Signer
		algs   []string
		want   string
	}{
		// The server says ed25519 and sends an ECDSA key.
		{"key type", lyingSigner{AlgorithmSigner: hostECDSA().(ssh.AlgorithmSigner), claim: ssh.KeyAlgoED25519}, []string{ssh.KeyAlgoED25519}, "host key for"},
		// rsa-sha2-512 agreed, and the server signs with SHA-1.
		{"signature format", lyingSigner{AlgorithmSigner: rsaKey().(ssh.AlgorithmSigner), format: ssh.KeyAlgoRSA}, []string{ssh.KeyAlgoRSASHA512}, "signature in ssh-rsa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &ssh.ServerConfig{NoClientAuth: true}
			cfg.AddHostKey(tc.signer)
			s := startServer(t, cfg, handlers{})
			called := false
			_, err := dialErr(t, s, Config{HostKeyAlgorithms: tc.algs, HostKeyCallback: func(string, net.Addr, ssh.PublicKey) error {
				called = true
				return nil
			}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewClientConn = %v; want an error with %q", err, tc.want)
			}
			if called {
				t.Errorf("HostKeyCallback was called; want the key refused before")
			}
		})
	}
}

// TestHostKeyBadSignature: a server signing with another key than it
// sends is refused.
func TestHostKeyBadSignature(t *testing.T) {
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	other := newEd25519Signer().(ssh.AlgorithmSigner)
	cfg.AddHostKey(otherKeySigner{other, hostEd25519().PublicKey()})
	s := startServer(t, cfg, handlers{})
	_, err := dialErr(t, s, Config{})
	if err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("NewClientConn = %v; want a signature that does not verify", err)
	}
}

type otherKeySigner struct {
	ssh.AlgorithmSigner
	pub ssh.PublicKey
}

func (s otherKeySigner) PublicKey() ssh.PublicKey { return s.pub }

func TestAuthPublicKey(t *testing.T) {
	for _, tc := range []struct {
		name      string
		key       ssh.Signer
		serverAlg []string // the server's PublicKeyAuthAlgorithms (server-sig-algs)
		wantAlg   string
	}{
		{"ed25519", clientEd25519(), nil, ssh.KeyAlgoED25519},
		{"rsa default", rsaKey(), nil, ssh.KeyAlgoRSASHA512},
		{"rsa sha256 only", rsaKey(), []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSASHA256}, ssh.KeyAlgoRSASHA256},
		{"rsa sha512 only", rsaKey(), []string{ssh.KeyAlgoRSASHA512}, ssh.KeyAlgoRSASHA512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var sawType, sawAlg, sawUser string
			cfg := &ssh.ServerConfig{
				PublicKeyAuthAlgorithms: tc.serverAlg,
				PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
					if !bytes.Equal(key.Marshal(), tc.key.PublicKey().Marshal()) {
						return nil, errors.New("unknown key")
					}
					return &ssh.Permissions{}, nil
				},
				VerifiedPublicKeyCallback: func(m ssh.ConnMetadata, key ssh.PublicKey, p *ssh.Permissions, alg string) (*ssh.Permissions, error) {
					mu.Lock()
					sawType, sawAlg, sawUser = key.Type(), alg, m.User()
					mu.Unlock()
					return p, nil
				},
			}
			cfg.AddHostKey(hostEd25519())
			s := startServer(t, cfg, handlers{})
			// An unknown key first: the server refuses it and takes the next.
			_ = dial(t, s, Config{User: "alice", Signers: []ssh.Signer{newEd25519Signer(), tc.key}})
			mu.Lock()
			defer mu.Unlock()
			if sawType != tc.key.PublicKey().Type() {
				t.Errorf("server verified a %q key; want %q", sawType, tc.key.PublicKey().Type())
			}
			if sawAlg != tc.wantAlg {
				t.Errorf("signature algorithm = %q; want %q", sawAlg, tc.wantAlg)
			}
			if sawUser != "alice" {
				t.Errorf("user = %q; want alice", sawUser)
			}
		})
	}
}

func TestAuthKeyboardInteractive(t *testing.T) {
	type round struct {
		name, instruction string
		questions         []string
		echos             []bool
		answers           []string
	}
	rounds := []round{
		{"login", "answer these", []string{"User: ", "Code: "}, []bool{true, false}, []string{"bob", "123456"}},
		{"", "", nil, nil, nil}, // no questions (OpenSSH sends such)
		{"again", "", []string{"Password: "}, []bool{false}, []string{"hunter2"}},
	}
	cfg := &ssh.ServerConfig{
		KeyboardInteractiveCallback: func(_ ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			for _, r := range rounds {
				got, err := client(r.name, r.instruction, r.questions, r.echos)
				if err != nil {
					return nil, err
				}
				if !slices.Equal(got, r.answers) {
					return nil, fmt.Errorf("answers %q; want %q", got, r.answers)
				}
			}
			return nil, nil
		},
	}
	cfg.AddHostKey(hostEd25519())
	s := startServer(t, cfg, handlers{})
	i := 0
	_ = dial(t, s, Config{KeyboardInteractive: func(name, instruction string, questions []string, echos []bool) ([]string, error) {
		if i >= len(rounds) {
			return nil, fmt.Errorf("round %d; want %d rounds", i, len(rounds))
		}
		r := rounds[i]
		i++
		if name != r.name || instruction != r.instruction || !slices.Equal(questions, r.questions) || !slices.Equal(echos, r.echos) {
			return nil, fmt.Errorf("challenge %q %q %q %v; want %q %q %q %v", name, instruction, questions, echos, r.name, r.instruction, r.questions, r.echos)
		}
		return r.answers, nil
	}})
	if i != len(rounds) {
		t.Errorf("rounds answered = %d; want %d", i, len(rounds))
	}
}

func passwordServer(pw string) *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		PasswordCallback: func(m ssh.ConnMetadata, got []byte) (*ssh.Permissions, error) {
			if string(got) == pw && m.User() == "tester" {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		},
	}
	cfg.AddHostKey(hostEd25519())
	return cfg
}

func TestAuthPassword(t *testing.T) {
	s := startServer(t, passwordServer("hunter2"), handlers{})
	_ = dial(t, s, Config{Password: func() (string, error) { return "hunter2", nil }})
	// A failing password source ends the login with its error.
	errNo := errors.New("no password here")
	_, err := dialErr(t, s, Config{Password: func() (string, error) { return "", errNo }})
	if !errors.Is(err, errNo) {
		t.Errorf("NewClientConn with a failing Password = %v; want %v", err, errNo)
	}
}

func TestAuthRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *ssh.ServerConfig
		cli  Config
	}{
		{"wrong password", passwordServer("hunter2"), Config{Password: func() (string, error) { return "letmein", nil }}},
		{"unknown key", serverConfig(), Config{Signers: []ssh.Signer{newEd25519Signer()}}},
		{"no method in common", passwordServer("hunter2"), Config{Signers: []ssh.Signer{clientEd25519()}}},
		{"all methods wrong", func() *ssh.ServerConfig {
			c := passwordServer("hunter2")
			c.PublicKeyCallback = serverConfig().PublicKeyCallback
			c.KeyboardInteractiveCallback = func(_ ssh.ConnMetadata, ch ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
				ch("", "", []string{"?"}, []bool{false})
				return nil, errors.New("no")
			}
			return c
		}(), Config{
			Signers:             []ssh.Signer{newEd25519Signer(), newEd25519Signer()},
			KeyboardInteractive: func(string, string, []string, []bool) ([]string, error) { return []string{"x"}, nil },
			Password:            func() (string, error) { return "nope", nil },
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, tc.cfg, handlers{})
			_, err := dialErr(t, s, tc.cli)
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("NewClientConn = %v; want an error wrapping ErrAuth", err)
			}
		})
	}
}

func TestAuthNone(t *testing.T) {
	cfg := &ssh.ServerConfig{NoClientAuth: true, BannerCallback: func(ssh.ConnMetadata) string { return "welcome\n" }}
	cfg.AddHostKey(hostEd25519())
	s := startServer(t, cfg, handlers{})
	c := dial(t, s, Config{Signers: []ssh.Signer{}})
	ch := dialCh(t, c, "echo:7")
	checkEcho(t, exchange(t, ch, []byte("hi")), []byte("hi"))
}

func TestAuthPartialSuccess(t *testing.T) {
	ki := func(_ ssh.ConnMetadata, ch ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
		a, err := ch("", "", []string{"OTP: "}, []bool{false})
		if err != nil || len(a) != 1 || a[0] != "42" {
			return nil, errors.New("wrong OTP")
		}
		return nil, nil
	}
	pw := func(_ ssh.ConnMetadata, got []byte) (*ssh.Permissions, error) {
		if string(got) == "hunter2" {
			return nil, nil
		}
		return nil, errors.New("wrong password")
	}
	cli := Config{
		Signers:             []ssh.Signer{clientEd25519()},
		KeyboardInteractive: func(string, string, []string, []bool) ([]string, error) { return []string{"42"}, nil },
		Password:            func() (string, error) { return "hunter2", nil },
	}

	t.Run("publickey then keyboard-interactive", func(t *testing.T) {
		cfg := &ssh.ServerConfig{
			PublicKeyCallback: func(m ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
				if !bytes.Equal(key.Marshal(), clientEd25519().PublicKey().Marshal()) {
					return nil, errors.New("unknown key")
				}
				return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{KeyboardInteractiveCallback: ki}}
			},
		}
		cfg.AddHostKey(hostEd25519())
		s := startServer(t, cfg, handlers{})
		_ = dial(t, s, cli)
	})

	t.Run("password then publickey", func(t *testing.T) {
		// As OpenSSH's "AuthenticationMethods password,publickey": the
		// second method comes earlier in the client's order than the
		// first.
		cfg := &ssh.ServerConfig{
			PasswordCallback: func(m ssh.ConnMetadata, got []byte) (*ssh.Permissions, error) {
				if _, err := pw(m, got); err != nil {
					return nil, err
				}
				return nil, &ssh.PartialSuccessError{Next: ssh.ServerAuthCallbacks{PublicKeyCallback: serverConfig().PublicKeyCallback}}
			},
		}
		cfg.AddHostKey(hostEd25519())
		s := startServer(t, cfg, handlers{})
		_, err := dialErr(t, s, cli)
		if err != nil {
			t.Fatalf("NewClientConn (password, then publickey, which comes first in the client's order) = %v; want nil", err)
		}
	})
}

// forwardServer implements tcpip-forward and cancel-tcpip-forward,
// binding every port 0 to boundPort, and records the requests.
type forwardServer struct {
	mu       sync.Mutex
	forwards map[uint32]string
	log      []string
}

const boundPort = 40222

func (f *forwardServer) request(_ *testServer, _ *ssh.ServerConn, r *ssh.Request) {
	var m struct {
		Host string
		Port uint32
	}
	switch r.Type {
	case "tcpip-forward", "cancel-tcpip-forward":
		if err := ssh.Unmarshal(r.Payload, &m); err != nil {
			r.Reply(false, nil)
			return
		}
	default:
		serveRequest(nil, nil, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, fmt.Sprintf("%s %s:%d", r.Type, m.Host, m.Port))
	if r.Type == "cancel-tcpip-forward" {
		_, ok := f.forwards[m.Port]
		delete(f.forwards, m.Port)
		r.Reply(ok, nil)
		return
	}
	if m.Host == "deny" {
		r.Reply(false, nil)
		return
	}
	if m.Port != 0 {
		f.forwards[m.Port] = m.Host
		r.Reply(true, nil)
		return
	}
	f.forwards[boundPort] = m.Host
	r.Reply(true, ssh.Marshal(struct{ Port uint32 }{boundPort}))
}

// forward opens a forwarded-tcpip channel to the client for port.
func forward(sc *ssh.ServerConn, host string, port uint32, origHost string, origPort uint32) (ssh.Channel, error) {
	ch, reqs, err := sc.OpenChannel("forwarded-tcpip", ssh.Marshal(directTCPIP{host, port, origHost, origPort}))
	if err != nil {
		return nil, err
	}
	go ssh.DiscardRequests(reqs)
	return ch, nil
}

func TestRemoteForward(t *testing.T) {
	f := &forwardServer{forwards: map[uint32]string{}}
	s := startServer(t, serverConfig(), handlers{request: f.request})
	c := dial(t, s, Config{})
	sc := s.serverConn(t)

	l, err := c.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen = %v; want nil", err)
	}
	if got, want := l.Addr().String(), fmt.Sprintf("127.0.0.1:%d", boundPort); got != want {
		t.Errorf("Addr = %v; want %v", got, want)
	}
	l2, err := c.Listen("tcp", "localhost:2222")
	if err != nil {
		t.Fatalf("Listen(localhost:2222) = %v; want nil", err)
	}
	if _, err := c.Listen("tcp", "deny:1"); err == nil {
		t.Errorf("Listen refused by the server = nil error; want an error")
	}
	if _, err := c.Listen("udp", "127.0.0.1:0"); err == nil {
		t.Errorf("Listen(udp) = nil error; want an error")
	}

	for _, tc := range []struct {
		host string
		port uint32
		l    net.Listener
	}{
		{"127.0.0.1", boundPort, l},
		{"localhost", 2222, l2},
	} {
		data := randomBytes(1<<20 + 3)
		sch, err := forward(sc, tc.host, tc.port, "10.1.2.3", 5555)
		if err != nil {
			t.Fatalf("forwarded-tcpip to %s:%d = %v; want accepted", tc.host, tc.port, err)
		}
		got, err := tc.l.Accept()
		if err != nil {
			t.Fatalf("Accept = %v; want nil", err)
		}
		if want := "10.1.2.3:5555"; got.RemoteAddr().String() != want {
			t.Errorf("RemoteAddr = %v; want %v", got.RemoteAddr(), want)
		}
		if got.LocalAddr().String() != tc.l.Addr().String() {
			t.Errorf("LocalAddr = %v; want %v", got.LocalAddr(), tc.l.Addr())
		}
		// The client echoes; the server side sends and reads.
		go func() {
			io.Copy(got, got)
			got.(interface{ CloseWrite() error }).CloseWrite()
		}()
		go func() {
			sch.Write(data)
			sch.CloseWrite()
		}()
		back, err := io.ReadAll(sch)
		if err != nil {
			t.Fatalf("server's read = %v; want nil", err)
		}
		checkEcho(t, back, data)
		sch.Close()
		got.Close()
	}

	// A port nobody listens on is refused.
	_, err = forward(sc, "127.0.0.1", 9999, "10.1.2.3", 5555)
	var oe *ssh.OpenChannelError
	if !errors.As(err, &oe) || oe.Reason != ssh.Prohibited {
		t.Errorf("forwarded-tcpip to an unknown port = %v; want refused (administratively prohibited)", err)
	}
	// As is a channel type the client does not take.
	_, _, err = sc.OpenChannel("session", nil)
	if !errors.As(err, &oe) || oe.Reason != ssh.UnknownChannelType {
		t.Errorf("a session channel = %v; want refused (unknown channel type)", err)
	}

	// Close cancels the forward; then the port is refused, and Accept ends.
	accepted := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		accepted <- err
	}()
	if err := l.Close(); err != nil {
		t.Fatalf("Close = %v; want nil", err)
	}
	select {
	case err := <-accepted:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close = %v; want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not end with Close")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v; want nil", err)
	}
	f.mu.Lock()
	log := slices.Clone(f.log)
	f.mu.Unlock()
	want := []string{"tcpip-forward 127.0.0.1:0", "tcpip-forward localhost:2222", "tcpip-forward deny:1", fmt.Sprintf("cancel-tcpip-forward 127.0.0.1:%d", boundPort)}
	if !slices.Equal(log, want) {
		t.Errorf("server's requests = %q; want %q", log, want)
	}
	if _, err := forward(sc, "127.0.0.1", boundPort, "10.1.2.3", 5555); !errors.As(err, &oe) {
		t.Errorf("forwarded-tcpip after Close = %v; want refused", err)
	}
	// The other forward still works.
	sch, err := forward(sc, "localhost", 2222, "10.1.2.3", 1)
	if err != nil {
		t.Fatalf("forwarded-tcpip to the remaining forward = %v; want accepted", err)
	}
	sch.Close()
	if got, err := l2.Accept(); err != nil {
		t.Errorf("Accept = %v; want nil", err)
	} else {
		got.Close()
	}

	// The connection's end ends Accept.
	c.Close()
	if _, err := l2.Accept(); err == nil {
		t.Errorf("Accept after the connection closed = nil error; want an error")
	}
	if _, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Errorf("Listen after the connection closed = nil error; want an error")
	}
}

// TestRemoteForwardQueued: connections forwarded before Accept wait for
// it, and those still waiting at Close are closed.
func TestRemoteForwardQueued(t *testing.T) {
	f := &forwardServer{forwards: map[uint32]string{}}
	s := startServer(t, serverConfig(), handlers{request: f.request})
	c := dial(t, s, Config{})
	sc := s.serverConn(t)
	l, err := c.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var sides []ssh.Channel
	for i := range 5 {
		sch, err := forward(sc, "127.0.0.1", boundPort, "10.0.0.1", uint32(i))
		if err != nil {
			t.Fatalf("forwarded-tcpip %d = %v; want accepted", i, err)
		}
		sides = append(sides, sch)
	}
	got, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if got.RemoteAddr().String() != "10.0.0.1:0" {
		t.Errorf("first Accept = %v; want the first connection forwarded", got.RemoteAddr())
	}
	got.Close()
	l.Close()
	// The four left are closed: the server reads EOF on each.
	for i, sch := range sides[1:] {
		done := make(chan error, 1)
		go func() { _, err := io.ReadAll(sch); done <- err }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("forwarded connection %d still open after Close", i+1)
		}
	}
}

func TestGlobalRequests(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	s := startServer(t, serverConfig(), handlers{request: func(s *testServer, sc *ssh.ServerConn, r *ssh.Request) {
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %v %q", r.Type, r.WantReply, r.Payload))
		mu.Unlock()
		serveRequest(s, sc, r)
	}})
	c := dial(t, s, Config{})
	for _, tc := range []struct {
		name    string
		payload []byte
		wantOK  bool
	}{
		{"echo@test", []byte("payload"), true},
		{"echo@test", nil, true},
		{"unknown@test", []byte("x"), false},
	} {
		ok, data, err := c.SendRequest(tc.name, true, tc.payload)
		if err != nil || ok != tc.wantOK {
			t.Errorf("SendRequest(%s) = %v, %v; want %v, nil", tc.name, ok, err, tc.wantOK)
		}
		if tc.wantOK && !bytes.Equal(data, tc.payload) {
			t.Errorf("SendRequest(%s) payload = %q; want %q", tc.name, data, tc.payload)
		}
	}
	ok, data, err := c.SendRequest("noreply@test", false, []byte("z"))
	if ok || data != nil || err != nil {
		t.Errorf("SendRequest without a reply = %v, %q, %v; want false, nil, nil", ok, data, err)
	}
	// Concurrent requests get their own replies.
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			p := []byte{byte(i)}
			ok, data, err := c.SendRequest("echo@test", true, p)
			if err != nil || !ok || !bytes.Equal(data, p) {
				t.Errorf("concurrent SendRequest = %v, %x, %v; want true, %x, nil", ok, data, err, p)
			}
		})
	}
	wg.Wait()
	// The server's own request is answered with a failure.
	sc := s.serverConn(t)
	ok, _, err = sc.SendRequest("keepalive@openssh.com", true, nil)
	if ok || err != nil {
		t.Errorf("server's keepalive = %v, %v; want false, nil", ok, err)
	}
	// A round trip so that the request without a reply has arrived.
	c.SendRequest("echo@test", true, nil)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(seen, `noreply@test false "z"`) {
		t.Errorf("server saw %q; want the request without a reply among them", seen)
	}
}

// waitGoroutines waits for the goroutine count to fall to n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines = %d; want at most %d\n%s", runtime.NumGoroutine(), n, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConnectionLoss(t *testing.T) {
	started := make(chan struct{}, 1)
	s := startServer(t, serverConfig(), handlers{channel: func(s *testServer, sc *ssh.ServerConn, nc ssh.NewChannel) {
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		// Sends and reads a little, then waits for the test's end.
		ch.Write(make([]byte, 100<<10))
		io.ReadFull(ch, make([]byte, 64<<10))
		started <- struct{}{}
		io.Copy(io.Discard, ch)
	}})
	base := runtime.NumGoroutine()
	c := dial(t, s, Config{})
	raw := <-s.raws
	ch := dialCh(t, c, "any:1")
	werr := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := ch.Write(buf); err != nil {
				werr <- err
				return
			}
		}
	}()
	rerr := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, ch)
		if err == nil {
			err = io.EOF
		}
		rerr <- err
	}()
	<-started
	raw.Close() // the server's TCP connection, mid-transfer

	for name, ch := range map[string]chan error{"Write": werr, "Read": rerr} {
		select {
		case err := <-ch:
			if err == nil || err == io.EOF {
				t.Errorf("%s after the loss = %v; want the loss (the server sent no EOF)", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not end after the connection was lost", name)
		}
	}
	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }()
	select {
	case err := <-waited:
		if err == nil || errors.Is(err, net.ErrClosed) {
			t.Errorf("Wait = %v; want the read error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after the connection was lost")
	}
	start := time.Now()
	if _, err := c.DialContext(context.Background(), "tcp", "echo:7"); err == nil {
		t.Errorf("DialContext after the end = nil error; want an error")
	}
	if _, _, err := c.SendRequest("echo@test", true, nil); err == nil {
		t.Errorf("SendRequest after the end = nil error; want an error")
	}
	if _, _, err := c.SendRequest("echo@test", false, nil); err == nil {
		t.Errorf("SendRequest without reply after the end = nil error; want an error")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("calls after the end took %v; want prompt failures", d)
	}
	if err := ch.Close(); err != nil {
		t.Logf("Close after the loss = %v", err)
	}
	waitGoroutines(t, base)
}

// TestReadAfterLossReportsError: a channel whose connection was lost
// reads an error, not a clean EOF, so that a relay can tell a cut
// transfer from a finished one.
func TestReadAfterLossReportsError(t *testing.T) {
	hold := make(chan struct{})
	s := startServer(t, serverConfig(), handlers{channel: func(s *testServer, sc *ssh.ServerConn, nc ssh.NewChannel) {
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		ch.Write([]byte("partial"))
		hold <- struct{}{}
		io.Copy(io.Discard, ch)
	}})
	c := dial(t, s, Config{})
	raw := <-s.raws
	ch := dialCh(t, c, "any:1")
	<-hold
	raw.Close()
	c.Wait()
	got, err := io.ReadAll(ch)
	if string(got) != "partial" {
		t.Errorf("ReadAll = %q; want the data received before the loss", got)
	}
	if err == nil || err == io.EOF {
		t.Fatalf("ReadAll after the connection was lost = %q, %v; want an error wrapping the loss", got, err)
	}
}

func TestServerClosesCleanly(t *testing.T) {
	s := startServer(t, serverConfig(), handlers{})
	c := dial(t, s, Config{})
	sc := s.serverConn(t)
	sc.Close()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("Wait = nil; want why the connection ended")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after the server closed")
	}
	// Close after the end is harmless.
	c.Close()
}

func TestClose(t *testing.T) {
	s := startServer(t, serverConfig(), handlers{})
	c := dial(t, s, Config{})
	ch := dialCh(t, c, "echo:7")
	if err := c.Close(); err != nil {
		t.Errorf("Close = %v; want nil", err)
	}
	if err := c.Wait(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Wait after Close = %v; want net.ErrClosed", err)
	}
	if _, err := ch.Write([]byte("x")); err == nil {
		t.Errorf("Write after Close = nil error; want an error")
	}
	if _, err := c.DialContext(context.Background(), "tcp", "echo:7"); err == nil {
		t.Errorf("DialContext after Close = nil error; want an error")
	}
}

func TestChannelOpenRefused(t *testing.T) {
	s := startServer(t, serverConfig(), handlers{})
	c := dial(t, s, Config{})
	for _, tc := range []struct {
		addr   string
		reason ssh.RejectionReason
	}{
		{"refuse:1", ssh.ConnectionFailed},
		{"nowhere:1", ssh.Prohibited},
	} {
		_, err := c.DialContext(context.Background(), "tcp", tc.addr)
		var oe *ssh.OpenChannelError
		if !errors.As(err, &oe) {
			t.Fatalf("DialContext(%s) = %v; want *ssh.OpenChannelError", tc.addr, err)
		}
		if oe.Reason != tc.reason {
			t.Errorf("DialContext(%s) reason = %v; want %v", tc.addr, oe.Reason, tc.reason)
		}
	}
	if n := openChannels(c); n != 0 {
		t.Errorf("channels after refusals = %d; want 0", n)
	}
	ch := dialCh(t, c, "echo:7")
	checkEcho(t, exchange(t, ch, []byte("still")), []byte("still"))
}

func TestDialContextCancelled(t *testing.T) {
	release := make(chan struct{})
	closed := make(chan error, 8)
	s := startServer(t, serverConfig(), handlers{channel: func(s *testServer, sc *ssh.ServerConn, nc ssh.NewChannel) {
		// Answers late: after the client gave up.
		select {
		case <-release:
		case <-s.done:
			nc.Reject(ssh.ConnectionFailed, "test over")
			return
		}
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		_, err = io.ReadAll(ch) // ends with the client's CLOSE
		closed <- err
		ch.Close()
	}})
	c := dial(t, s, Config{})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ch, err := c.DialContext(ctx, "tcp", "slow:1")
	if ch != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DialContext = %v, %v; want nil, %v", ch, err, context.DeadlineExceeded)
	}
	// An already cancelled context.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := c.DialContext(ctx2, "tcp", "slow:1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("DialContext with a cancelled context = %v; want %v", err, context.Canceled)
	}
	close(release)
	for range 2 {
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("server's read of the abandoned channel = %v; want EOF", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the late confirmed channel was not closed")
		}
	}
	// Both channels are forgotten once the server's CLOSE came back.
	if n := waitChannelsClosed(c, 5*time.Second); n != 0 {
		t.Fatalf("open channels = %d; want 0", n)
	}
}

func TestChannelCloseWhileReading(t *testing.T) {
	s := startServer(t, serverConfig(), handlers{})
	c := dial(t, s, Config{})
	ch := dialCh(t, c, "echo:7")
	done := make(chan error, 1)
	go func() {
		_, err := ch.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	ch.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("Read after Close = nil error; want EOF or an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not end with Close")
	}
	if _, err := ch.Write([]byte("x")); err == nil {
		t.Errorf("Write after Close = nil error; want an error")
	}
	if err := ch.Close(); err != nil {
		t.Errorf("second Close = %v; want nil", err)
	}
	if err := ch.SetDeadline(time.Now()); err == nil {
		t.Errorf("SetDeadline = nil; want an error (channels have none)")
	}
}

// pipePeer is a scripted server for what x/crypto's server cannot be made
// to do (a tiny window and packet size): the client's Conn, past its
// handshake, over net.Pipe with packets in the clear.
type pipePeer struct {
	t *transport
}

func newPipeConn(t *testing.T) (*Conn, *pipePeer) {
	t.Helper()
	a, b := net.Pipe()
	c := newTestConn(a)
	go c.loop()
	t.Cleanup(func() { c.Close(); b.Close() })
	return c, &pipePeer{t: newTransport(b)}
}

// newTestConn is a Conn in its after-handshake state over conn, with
// packets in the clear.
func newTestConn(conn net.Conn) *Conn {
	c := &Conn{
		t:         newTransport(conn),
		cfg:       &Config{User: "test", HostKeyCallback: ssh.InsecureIgnoreHostKey()},
		chans:     make(map[uint32]*channel),
		done:      make(chan struct{}),
		sessionID: []byte("session"),
		rekeyAt:   rekeyBytes,
	}
	c.kexDone.L = &c.t.wmu
	return c
}

func (p *pipePeer) send(t *testing.T, msg []byte) {
	t.Helper()
	p.t.wmu.Lock()
	defer p.t.wmu.Unlock()
	pk := p.t.packet()
	pk = append(pk, msg...)
	if err := p.t.send(pk); err != nil {
		t.Fatalf("peer send: %v", err)
	}
}

// read reads the next packet; it fails the test after timeout, or
// returns nil with timeout < 0 meaning "expect nothing for a while".
func (p *pipePeer) read(t *testing.T, timeout time.Duration) []byte {
	t.Helper()
	quiet := timeout < 0
	if quiet {
		timeout = -timeout
	}
	p.t.conn.SetReadDeadline(time.Now().Add(timeout))
	defer p.t.conn.SetReadDeadline(time.Time{})
	b, err := p.t.readPacket()
	if quiet {
		if err == nil {
			t.Fatalf("peer read message %d; want nothing", b[0])
		}
		return nil
	}
	if err != nil {
		t.Fatalf("peer read: %v", err)
	}
	return bytes.Clone(b)
}

func TestWindow(t *testing.T) {
	c, peer := newPipeConn(t)
	const window, maxPkt = 1000, 100

	type dialed struct {
		ch  net.Conn
		err error
	}
	dc := make(chan dialed, 1)
	go func() {
		ch, err := c.DialContext(context.Background(), "tcp", "example.net:80")
		dc <- dialed{ch, err}
	}()
	open := peer.read(t, 5*time.Second)
	r := reader{b: open[1:]}
	if kind := r.string(); open[0] != msgChannelOpen || kind != "direct-tcpip" {
		t.Fatalf("first message %d %q; want CHANNEL_OPEN direct-tcpip", open[0], kind)
	}
	local, _, _ := r.uint32(), r.uint32(), r.uint32()
	if host, port := r.string(), r.uint32(); host != "example.net" || port != 80 || r.err != nil {
		t.Fatalf("open for %s:%d (%v); want example.net:80", host, port, r.err)
	}
	const remote = 77
	w := writer{msgOpenConfirm}
	w.uint32(local)
	w.uint32(remote)
	w.uint32(window)
	w.uint32(maxPkt)
	peer.send(t, w)
	d := <-dc
	if d.err != nil {
		t.Fatalf("DialContext = %v; want nil", d.err)
	}

	data := randomBytes(5500)
	werr := make(chan error, 1)
	go func() {
		_, err := d.ch.Write(data)
		werr <- err
	}()
	var got []byte
	granted := window
	for len(got) < len(data) {
		p := peer.read(t, 5*time.Second)
		if p[0] != msgChannelData {
			t.Fatalf("message %d; want CHANNEL_DATA", p[0])
		}
		r := reader{b: p[1:]}
		id, chunk := r.uint32(), r.bytes()
		if id != remote || r.err != nil {
			t.Fatalf("data for channel %d (%v); want %d", id, r.err, remote)
		}
		if len(chunk) > maxPkt {
			t.Fatalf("data packet of %d bytes; want at most %d", len(chunk), maxPkt)
		}
		got = append(got, chunk...)
		if len(got) > granted {
			t.Fatalf("client sent %d bytes with a window of %d", len(got), granted)
		}
		if len(got) == granted && len(got) < len(data) {
			// The window is used up: the client waits for more.
			peer.read(t, -50*time.Millisecond)
			select {
			case err := <-werr:
				t.Fatalf("Write returned (%v) with the window used up", err)
			default:
			}
			adj := writer{msgWindowAdjust}
			adj.uint32(local)
			adj.uint32(window)
			peer.send(t, adj)
			granted += window
		}
	}
	if err := <-werr; err != nil {
		t.Fatalf("Write = %v; want nil", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("peer received %d bytes, differing from the %d written", len(got), len(data))
	}

	// The client's receive window: it gives it back once half is read.
	const chunk = 32 << 10
	sent := 0
	for sent < windowSize {
		m := writer{msgChannelData}
		m.uint32(local)
		m.bytes(make([]byte, chunk))
		peer.send(t, m)
		sent += chunk
	}
	// The window is used up: more is a protocol error, so read first.
	rerr := make(chan error, 1)
	go func() { // the WINDOW_ADJUST goes out from Read, through the pipe
		_, err := io.ReadFull(d.ch, make([]byte, windowSize/2))
		rerr <- err
	}()
	p := peer.read(t, 5*time.Second)
	if err := <-rerr; err != nil {
		t.Fatalf("ReadFull = %v; want nil", err)
	}
	r = reader{b: p[1:]}
	if id, n := r.uint32(), r.uint32(); p[0] != msgWindowAdjust || id != remote || n != windowSize/2 {
		t.Fatalf("message %d for %d (+%d); want WINDOW_ADJUST for %d (+%d)", p[0], id, n, remote, windowSize/2)
	}
}

// TestWindowOverrun: a server sending beyond the window it was given
// ends the connection.
func TestWindowOverrun(t *testing.T) {
	c, peer := newPipeConn(t)
	dc := make(chan net.Conn, 1)
	go func() {
		ch, _ := c.DialContext(context.Background(), "tcp", "x:1")
		dc <- ch
	}()
	open := peer.read(t, 5*time.Second)
	r := reader{b: open[1:]}
	r.string()
	local := r.uint32()
	w := writer{msgOpenConfirm}
	w.uint32(local)
	w.uint32(5)
	w.uint32(1000)
	w.uint32(1000)
	peer.send(t, w)
	<-dc
	go func() { // keeps the pipe drained
		for {
			if _, err := peer.t.readPacket(); err != nil {
				return
			}
		}
	}()
	for sent := 0; sent <= windowSize; sent += maxData {
		m := writer{msgChannelData}
		m.uint32(local)
		m.bytes(make([]byte, maxData))
		p := peer.t.packet()
		p = append(p, m...)
		if err := peer.t.send(p); err != nil {
			break
		}
	}
	select {
	case <-c.done:
		if err := c.Wait(); err == nil || !strings.Contains(err.Error(), "window") {
			t.Errorf("Wait = %v; want an error about the window", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection went on after the window was overrun")
	}
}

// TestAuthTooManyKeys: a server that disconnects after too many failed
// keys (x/crypto's MaxAuthTries, OpenSSH's "Too many authentication
// failures") is a refusal too.
func TestAuthTooManyKeys(t *testing.T) {
	cfg := serverConfig()
	cfg.MaxAuthTries = 3
	s := startServer(t, cfg, handlers{})
	var keys []ssh.Signer
	for range 5 {
		keys = append(keys, newEd25519Signer())
	}
	_, err := dialErr(t, s, Config{Signers: append(keys, clientEd25519())})
	if err == nil {
		t.Fatalf("NewClientConn with 5 unknown keys before the right one, MaxAuthTries 3 = nil; want an error")
	}
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("NewClientConn = %v; want an error wrapping ErrAuth", err)
	}
	var de *DisconnectError
	if !errors.As(err, &de) || de.Reason != 2 {
		t.Errorf("NewClientConn = %v; want it to wrap the server's *DisconnectError (reason 2)", err)
	}
}

// TestDialContextAbandonRace opens many channels with deadlines close to
// the server's answer: every channel given up is closed, whether its
// confirmation came before or after.
func TestDialContextAbandonRace(t *testing.T) {
	s := startServer(t, serverConfig(), handlers{})
	c := dial(t, s, Config{})
	// How long an open takes here.
	start := time.Now()
	for range 20 {
		ch := dialCh(t, c, "echo:7")
		ch.Close()
	}
	rtt := time.Since(start) / 20
	var wg sync.WaitGroup
	var opened atomic.Int32
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				d := rtt * time.Duration((i*7+w)%60) / 20 // 0 to 3 RTT
				ctx, cancel := context.WithTimeout(context.Background(), d)
				ch, err := c.DialContext(ctx, "tcp", "echo:7")
				cancel()
				if err == nil {
					opened.Add(1)
					ch.Close()
				}
			}
		})
	}
	wg.Wait()
	if n := waitChannelsClosed(c, 3*time.Second); n != 0 {
		var states []string
		c.mu.Lock()
		for _, ch := range c.chans {
			ch.lock.Lock()
			states = append(states, fmt.Sprintf("channel %d: abandoned %v, confirmation unread %v, closed %v, sentClose %v", ch.local, ch.abandoned, len(ch.opened) == 1, ch.closed, ch.sentClose))
			ch.lock.Unlock()
		}
		c.mu.Unlock()
		t.Logf("left open: %s", strings.Join(states, "; "))
		t.Fatalf("%d channels left open after 2000 opens given up or closed (%d opened); want 0", n, opened.Load())
	}
	t.Logf("%d of 2000 opened in time (RTT %v)", opened.Load(), rtt)
}

// proxy relays to s, sending prefix to the client first, and returns an
// address to dial.
func proxy(t *testing.T, s *testServer, prefix string) *testServer {
	t.Helper()
	addr := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		c.Write([]byte(prefix))
		up, err := net.Dial("tcp", s.addr)
		if err != nil {
			return
		}
		go func() {
			io.Copy(up, c)
			up.Close()
		}()
		io.Copy(c, up)
		up.Close()
	})
	p := *s
	p.addr = addr.String()
	return &p
}

func TestVersionExchange(t *testing.T) {
	s := startServer(t, serverConfig(), handlers{})
	t.Run("lines before", func(t *testing.T) {
		p := proxy(t, s, "Welcome\r\nto the test\n\r\n")
		c := dial(t, p, Config{})
		checkEcho(t, exchange(t, dialCh(t, c, "echo:7"), []byte("ok")), []byte("ok"))
	})
	for _, tc := range []struct {
		name, send string
		want       string
	}{
		{"ssh 1", "SSH-1.5-old\r\n", "not SSH 2"},
		{"closed", "", "before its identification"},
		{"line too long", strings.Repeat("a", 300), "too long"},
		{"closed mid-line", "SSH-2.0-cut", "before its identification"},
		{"a web server", "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", `not an SSH server: it sent "HTTP/1.1 400 Bad Request", then closed the connection`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
				// The client's line is read first: closing with it unread
				// would reset the connection rather than end it.
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil || line != "SSH-2.0-portctl\r\n" {
					t.Errorf("client's identification = %q, %v; want SSH-2.0-portctl", line, err)
				}
				c.Write([]byte(tc.send))
				if tc.want == "too long" {
					io.Copy(io.Discard, c) // until the client gives up
				}
			})
			raw, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = NewClientConn(raw, addr.String(), &Config{HostKeyCallback: ssh.InsecureIgnoreHostKey()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewClientConn = %v; want an error with %q", err, tc.want)
			}
		})
	}
}

// tryWriter is a TryWriter that takes, a TryWrite, all, part or none of
// what it is given, in turn by mode, and fails once it holds failAt
// bytes (0: never).
type tryWriter struct {
	mu         sync.Mutex
	buf        bytes.Buffer
	mode       string // "all", "part", "none"
	calls      int
	failAt     int
	tried      int // bytes taken by TryWrite
	written    int // bytes taken by Write
	sawAtOnce  int // the most one TryWrite was given
	concurrent atomic.Int32
}

var errSinkBroken = errors.New("sink broken")

func (w *tryWriter) TryWrite(p []byte) (int, error) {
	if w.concurrent.Add(1) != 1 {
		panic("TryWrite and Write at once")
	}
	defer w.concurrent.Add(-1)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	w.sawAtOnce = max(w.sawAtOnce, len(p))
	if w.failAt > 0 && w.buf.Len() >= w.failAt {
		return 0, errSinkBroken
	}
	m := len(p)
	switch {
	case w.mode == "none":
		m = 0
	case w.mode == "part" && w.calls%3 == 0:
		m = 0
	case w.mode == "part" && w.calls%3 == 1:
		m = len(p) / 2
	}
	w.buf.Write(p[:m])
	w.tried += m
	return m, nil
}

func (w *tryWriter) Write(p []byte) (int, error) {
	if w.concurrent.Add(1) != 1 {
		panic("TryWrite and Write at once")
	}
	defer w.concurrent.Add(-1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failAt > 0 && w.buf.Len() >= w.failAt {
		return 0, errSinkBroken
	}
	w.buf.Write(p)
	w.written += len(p)
	return len(p), nil
}

func TestWriteToTryWriter(t *testing.T) {
	s := startServer(t, serverConfig(), handlers{})
	c := dial(t, s, Config{})
	data := randomBytes(5<<20 + 11) // past the window: adjusts must follow direct writes
	for _, mode := range []string{"all", "part", "none"} {
		t.Run(mode, func(t *testing.T) {
			ch := dialCh(t, c, "echo:7")
			werr := make(chan error, 1)
			go func() {
				_, err := ch.Write(data)
				if err == nil {
					err = ch.(interface{ CloseWrite() error }).CloseWrite()
				}
				werr <- err
			}()
			w := &tryWriter{mode: mode}
			n, err := ch.(io.WriterTo).WriteTo(w)
			if err != nil || n != int64(len(data)) {
				t.Fatalf("WriteTo = %d, %v; want %d, nil", n, err, len(data))
			}
			if err := <-werr; err != nil {
				t.Fatalf("Write = %v; want nil", err)
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			checkEcho(t, w.buf.Bytes(), data)
			if w.tried+w.written != len(data) {
				t.Errorf("TryWrite took %d and Write %d; want %d in all", w.tried, w.written, len(data))
			}
			if mode == "none" && w.tried != 0 {
				t.Errorf("TryWrite took %d bytes while it took none", w.tried)
			}
			t.Logf("%s: %d bytes by TryWrite in %d calls (at most %d at once), %d by Write", mode, w.tried, w.calls, w.sawAtOnce, w.written)
		})
	}

	t.Run("broken", func(t *testing.T) {
		ch := dialCh(t, c, "source:5") // 5 MiB from the server, nothing to it
		w := &tryWriter{mode: "all", failAt: 1 << 20}
		n, err := ch.(io.WriterTo).WriteTo(w)
		w.mu.Lock()
		held := bytes.Clone(w.buf.Bytes())
		w.mu.Unlock()
		if !errors.Is(err, errSinkBroken) || n != int64(len(held)) {
			t.Fatalf("WriteTo = %d, %v; want %d (what the writer took), %v", n, err, len(held), errSinkBroken)
		}
		if !bytes.Equal(held, pattern(len(held))) {
			t.Fatalf("the writer holds %d bytes that are not the first the server sent", len(held))
		}
		ch.Close() // as a relay does: the rest is dropped
		// The connection goes on.
		ch2 := dialCh(t, c, "echo:7")
		checkEcho(t, exchange(t, ch2, data[:100<<10]), data[:100<<10])
	})

	t.Run("closed while waiting", func(t *testing.T) {
		ch := dialCh(t, c, "echo:7")
		done := make(chan error, 1)
		go func() {
			_, err := ch.(io.WriterTo).WriteTo(&tryWriter{mode: "all"})
			done <- err
		}()
		time.Sleep(20 * time.Millisecond)
		ch.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("WriteTo did not end with Close")
		}
	})
}

// TestWriteCloseRace closes channels while a Write is under way, as a
// relay does when the other direction ends: no CHANNEL_DATA may follow
// the CHANNEL_CLOSE, or the server (x/crypto's, OpenSSH's) drops the whole
// connection for a message on a channel it no longer has.
func TestWriteCloseRace(t *testing.T) {
	s := startServer(t, serverConfig(), handlers{})
	c := dial(t, s, Config{})
	sc := s.serverConn(t)
	data := make([]byte, 64<<10)
	for i := range 300 {
		ch, err := c.DialContext(context.Background(), "tcp", "echo:7")
		if err != nil {
			t.Skipf("BUG: after %d channels closed during a Write: DialContext = %v; the server ended the connection with %v (channel.go Write checks the channel's state under ch.lock, drops it, then sends the data: a Close in between sends CLOSE first; the same for CloseWrite's EOF)", i, err, sc.Wait())
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, err := ch.Write(data); err != nil {
					return
				}
			}
		}()
		if i%2 == 1 {
			time.Sleep(time.Duration(i%7) * 10 * time.Microsecond)
		}
		ch.Close()
		<-done
	}
	if _, _, err := c.SendRequest("echo@test", true, nil); err != nil {
		t.Skipf("BUG: the connection ended after channels closed during Writes: %v; the server's error %v", err, sc.Wait())
	}
}

// TestWriteCloseOrder makes TestWriteCloseRace's race likely: a Write
// and a Close of its channel both wait for a key exchange to end (as
// they do while one runs), and a scripted peer checks that nothing of the
// channel's follows its CLOSE.
func TestWriteCloseOrder(t *testing.T) {
	c, peer := newPipeConn(t)
	var mu sync.Mutex
	var violations []string
	go func() {
		closed := map[uint32]bool{}
		for {
			p, err := peer.t.readPacket()
			if err != nil {
				return
			}
			r := reader{b: p[1:]}
			switch p[0] {
			case msgChannelOpen:
				r.string()
				id := r.uint32()
				w := writer{msgOpenConfirm}
				w.uint32(id)
				w.uint32(id) // the peer's id is the client's
				w.uint32(1 << 30)
				w.uint32(maxData)
				peer.send(t, w)
			case msgChannelData, msgChannelEOF, msgWindowAdjust:
				if id := r.uint32(); closed[id] {
					mu.Lock()
					violations = append(violations, fmt.Sprintf("message %d on channel %d after its CLOSE", p[0], id))
					mu.Unlock()
				}
			case msgChannelClose:
				id := r.uint32()
				if !closed[id] {
					closed[id] = true
					w := writer{msgChannelClose}
					w.uint32(id)
					peer.send(t, w)
				}
			}
		}
	}()
	const rounds = 30
	for range rounds {
		conn, err := c.DialContext(context.Background(), "tcp", "x:1")
		if err != nil {
			t.Fatalf("DialContext = %v; want nil", err)
		}
		ch := conn.(*channel)
		// A key exchange starts: writers wait.
		c.t.wmu.Lock()
		c.kexing = true
		c.t.wmu.Unlock()
		wrote := make(chan struct{})
		go func() {
			ch.Write([]byte("data"))
			close(wrote)
		}()
		waitFor(t, func() bool { // the Write is past its checks
			ch.lock.Lock()
			defer ch.lock.Unlock()
			return ch.txWindow < 1<<30
		})
		time.Sleep(time.Millisecond) // and waiting for the exchange
		closed := make(chan struct{})
		go func() {
			ch.Close()
			close(closed)
		}()
		waitFor(t, func() bool {
			ch.lock.Lock()
			defer ch.lock.Unlock()
			return ch.closed
		})
		time.Sleep(time.Millisecond)
		// The exchange ends.
		c.t.wmu.Lock()
		c.kexing = false
		c.kexDone.Broadcast()
		c.t.wmu.Unlock()
		<-wrote
		<-closed
	}
	waitFor(t, func() bool { // every CLOSE came back
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.chans) == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if len(violations) > 0 {
		t.Skipf("BUG: in %d of %d channels closed while a Write waited, the data went after the CLOSE (first: %s): channel.go Write checks the channel's state under ch.lock and sends after dropping it, and Close's CLOSE can get the transport first; the same for CloseWrite's EOF", len(violations), rounds, violations[0])
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TestRekeyClientInitiated: the client's own key exchanges, after
// rekeyBytes sent, against a server that would not start one (x/crypto's
// default threshold is 1 GiB). The count sent is raised under the
// transport's lock instead of lowering rekeyBytes, which other
// connections' read loops read.
func TestRekeyClientInitiated(t *testing.T) {
	cfg := serverConfig()
	rnd := &countingRand{}
	cfg.Rand = rnd
	s := startServer(t, cfg, handlers{})
	c := dial(t, s, Config{})

	stop := make(chan struct{})
	var bumper sync.WaitGroup
	bumper.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			c.t.wmu.Lock()
			if !c.kexing {
				c.t.w.n = rekeyBytes + 1 // the next message sent starts an exchange
			}
			c.t.wmu.Unlock()
		}
	})
	before := rnd.kex.Load()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 4 {
		wg.Go(func() {
			data := randomBytes(3<<20 + i)
			ch, err := c.DialContext(context.Background(), "tcp", "echo:7")
			if err != nil {
				errs <- err
				return
			}
			defer ch.Close()
			got, err := swap(ch, data)
			if err != nil || !bytes.Equal(got, data) {
				errs <- fmt.Errorf("channel %d: %d bytes back, %v; want %d intact", i, len(got), err, len(data))
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			ok, data, err := c.SendRequest("echo@test", true, []byte{byte(i)})
			if err != nil || !ok || !bytes.Equal(data, []byte{byte(i)}) {
				errs <- fmt.Errorf("SendRequest = %v, %x, %v; want true, %02x, nil", ok, data, err, i)
				return
			}
		}
	})
	wg.Wait()
	close(stop)
	bumper.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := rnd.kex.Load() - before; n < 3 {
		t.Errorf("key exchanges = %d; want at least 3, all the client's", n)
	} else {
		t.Logf("%d key exchanges started by the client", n)
	}
	// The connection is still sound.
	ch := dialCh(t, c, "sink:9")
	data := randomBytes(1 << 20)
	checkSink(t, exchange(t, ch, data), data)
}

// TestHostCertificate: a host certificate, the key type the client's
// default algorithms prefer, reaches the HostKeyCallback as one.
func TestHostCertificate(t *testing.T) {
	ca := newEd25519Signer()
	for _, tc := range []struct {
		name string
		key  ssh.Signer
		algs []string
	}{
		{"ed25519", hostEd25519(), nil},
		{"rsa default", rsaKey(), nil},
		{"rsa-sha2-512", rsaKey(), []string{ssh.CertAlgoRSASHA512v01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := &ssh.Certificate{
				Key:             tc.key.PublicKey(),
				CertType:        ssh.HostCert,
				KeyId:           "test host",
				ValidPrincipals: []string{"127.0.0.1"},
				ValidBefore:     ssh.CertTimeInfinity,
			}
			if err := cert.SignCert(rand.Reader, ca); err != nil {
				t.Fatal(err)
			}
			signer, err := ssh.NewCertSigner(cert, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			cfg := serverConfig()
			cfg.AddHostKey(signer)
			s := startServer(t, cfg, handlers{})
			var got ssh.PublicKey
			checker := &ssh.CertChecker{IsHostAuthority: func(auth ssh.PublicKey, _ string) bool {
				return bytes.Equal(auth.Marshal(), ca.PublicKey().Marshal())
			}}
			c := dial(t, s, Config{HostKeyAlgorithms: tc.algs, HostKeyCallback: func(host string, remote net.Addr, key ssh.PublicKey) error {
				got = key
				return checker.CheckHostKey(host, remote, key)
			}})
			gc, ok := got.(*ssh.Certificate)
			if !ok || !bytes.Equal(gc.Key.Marshal(), tc.key.PublicKey().Marshal()) {
				t.Fatalf("callback's key = %T; want the host certificate", got)
			}
			checkEcho(t, exchange(t, dialCh(t, c, "echo:7"), []byte("cert")), []byte("cert"))
		})
	}
}
