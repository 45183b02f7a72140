package sshwire

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Key exchange (RFC 4253, section 7) with curve25519-sha256 (RFC 8731),
// OpenSSH's strict key exchange (its PROTOCOL file, against the Terrapin
// attack) and the ext-info-c extension (RFC 8308).

const (
	kexCurve25519       = "curve25519-sha256"
	kexCurve25519LibSSH = "curve25519-sha256@libssh.org"
	kexExtInfoClient    = "ext-info-c"
	kexStrictClient     = "kex-strict-c-v00@openssh.com"
	kexStrictServer     = "kex-strict-s-v00@openssh.com"
)

// rekeyBytes starts a new key exchange after this much either way, as RFC
// 4253 recommends (section 9); a variable for the tests.
var rekeyBytes uint64 = 1 << 30

// ErrNoCommonAlgorithm is wrapped when the server shares no algorithm of
// a kind with this package, which speaks only curve25519-sha256 and
// AES-GCM: the caller may use a fuller implementation instead.
var ErrNoCommonAlgorithm = errors.New("no common algorithm")

// macs are offered for form's sake: with AES-GCM no MAC is used.
var macs = []string{"hmac-sha2-256-etm@openssh.com", "hmac-sha2-256"}

// kexInit is the part of a KEXINIT message that negotiation reads.
type kexInit struct {
	kex, hostKey, cipherCS, cipherSC []string
	follows                          bool // first_kex_packet_follows
}

// parseKexInit reads a KEXINIT message (with its message number).
func parseKexInit(p []byte) (kexInit, error) {
	r := reader{b: p}
	if r.byte() != msgKexInit || len(r.b) < 16 {
		return kexInit{}, errShort
	}
	r.b = r.b[16:] // the cookie
	var k kexInit
	k.kex = r.nameList()
	k.hostKey = r.nameList()
	k.cipherCS = r.nameList()
	k.cipherSC = r.nameList()
	for range 6 { // MACs, compression and languages, both ways
		r.nameList()
	}
	k.follows = r.bool()
	r.uint32()
	return k, r.err
}

// choose returns the first of ours that theirs has.
func choose(what string, ours, theirs []string) (string, error) {
	for _, a := range ours {
		if slices.Contains(theirs, a) {
			return a, nil
		}
	}
	return "", fmt.Errorf("ssh: %w for %s: we offer %s, the server %s", ErrNoCommonAlgorithm, what,
		strings.Join(ours, ","), strings.Join(theirs, ","))
}

// algorithms is what one key exchange settled.
type algorithms struct {
	kex, hostKey, cipherCS, cipherSC string
}

func negotiate(ours, theirs kexInit) (algorithms, error) {
	var a algorithms
	var err error
	if a.kex, err = choose("key exchange", ours.kex, theirs.kex); err != nil {
		return a, err
	}
	if a.hostKey, err = choose("host key", ours.hostKey, theirs.hostKey); err != nil {
		return a, err
	}
	if a.cipherCS, err = choose("cipher (client to server)", ours.cipherCS, theirs.cipherCS); err != nil {
		return a, err
	}
	a.cipherSC, err = choose("cipher (server to client)", ours.cipherSC, theirs.cipherSC)
	return a, err
}

// kexInitMsg builds our KEXINIT; the first one also offers the
// extensions that are only valid there.
func (c *Conn) kexInitMsg(first bool) ([]byte, kexInit) {
	k := kexInit{
		kex:      []string{kexCurve25519, kexCurve25519LibSSH},
		hostKey:  c.cfg.hostKeyAlgorithms(),
		cipherCS: c.cfg.ciphers(),
		cipherSC: c.cfg.ciphers(),
	}
	if first {
		k.kex = append(k.kex, kexExtInfoClient, kexStrictClient)
	}
	w := writer{msgKexInit}
	var cookie [16]byte
	rand.Read(cookie[:])
	w = append(w, cookie[:]...)
	w.nameList(k.kex)
	w.nameList(k.hostKey)
	w.nameList(k.cipherCS)
	w.nameList(k.cipherSC)
	w.nameList(macs)
	w.nameList(macs)
	w.nameList([]string{"none"})
	w.nameList([]string{"none"})
	w.nameList(nil)
	w.nameList(nil)
	w.bool(false)
	w.uint32(0)
	return w, k
}

// startKexLocked sends our KEXINIT unless an exchange is already under
// way, and holds back everything but the exchange's own messages until
// it ends. The caller holds t.wmu.
func (c *Conn) startKexLocked() error {
	if c.kexing {
		return nil
	}
	msg, k := c.kexInitMsg(c.sessionID == nil)
	c.kexing = true
	c.sentInit, c.sentKex = msg, k
	return c.sendLocked(msg)
}

// sendLocked writes one message; the caller holds t.wmu.
func (c *Conn) sendLocked(msg []byte) error {
	return c.sealLocked(append(c.t.packet(), msg...))
}

// sealLocked sends a packet begun with t.packet, and records a failure,
// after which nothing more is sent. The caller holds t.wmu.
func (c *Conn) sealLocked(p writer) error {
	if c.werr != nil {
		return c.werr
	}
	if err := c.t.send(p); err != nil {
		c.werr = err
		return err
	}
	return nil
}

// sendKex writes a message of the key exchange, which goes out while
// other messages wait.
func (c *Conn) sendKex(msg []byte) error {
	c.t.wmu.Lock()
	defer c.t.wmu.Unlock()
	return c.sendLocked(msg)
}

// readKex reads the next message of a key exchange, with message number
// want. Before strict mode, IGNORE and DEBUG may come between.
func (c *Conn) readKex(want byte, strictNow bool) ([]byte, error) {
	for {
		p, err := c.t.readPacket()
		if err != nil {
			return nil, err
		}
		switch {
		case p[0] == want:
			return p, nil
		case p[0] == msgDisconnect:
			return nil, disconnectError(p)
		case !strictNow && (p[0] == msgIgnore || p[0] == msgDebug):
			continue
		}
		return nil, fmt.Errorf("ssh: message %d during the key exchange (expected %d)", p[0], want)
	}
}

// kex runs one key exchange after the server's KEXINIT (theirsMsg; it
// must not alias the read buffer). It is run by the one goroutine that
// reads: during the handshake, and later from the read loop.
func (c *Conn) kex(theirsMsg []byte) error {
	first := c.sessionID == nil
	theirs, err := parseKexInit(theirsMsg)
	if err != nil {
		return fmt.Errorf("ssh: server's KEXINIT: %w", err)
	}
	c.t.wmu.Lock()
	err = c.startKexLocked()
	ourMsg, ours := c.sentInit, c.sentKex
	c.t.wmu.Unlock()
	if err != nil {
		return err
	}
	if first {
		c.strict = slices.Contains(theirs.kex, kexStrictServer)
		if c.strict && c.t.r.seq != 1 {
			return errors.New("ssh: strict key exchange: the server's KEXINIT was not its first packet")
		}
	}
	algs, err := negotiate(ours, theirs)
	if err != nil {
		return err
	}
	strictNow := c.strict && first
	if theirs.follows && (len(theirs.kex) == 0 || theirs.kex[0] != algs.kex || len(theirs.hostKey) == 0 || theirs.hostKey[0] != algs.hostKey) {
		// The server guessed wrong: its guessed packet is dropped.
		if _, err := c.t.readPacket(); err != nil {
			return err
		}
	}

	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	qc := priv.PublicKey().Bytes()
	init := writer{msgKexECDHInit}
	init.bytes(qc)
	if err := c.sendKex(init); err != nil {
		return err
	}
	p, err := c.readKex(msgKexECDHReply, strictNow)
	if err != nil {
		return err
	}
	r := reader{b: p[1:]}
	ks := bytes.Clone(r.bytes())
	qs := r.bytes()
	sigBlob := r.bytes()
	if r.err != nil {
		return fmt.Errorf("ssh: KEX_ECDH_REPLY: %w", r.err)
	}
	peer, err := ecdh.X25519().NewPublicKey(qs)
	if err != nil {
		return fmt.Errorf("ssh: server's curve25519 key: %w", err)
	}
	secret, err := priv.ECDH(peer) // fails on the all-zero result
	if err != nil {
		return fmt.Errorf("ssh: curve25519: %w", err)
	}
	var kw writer
	kw.mpint(secret)
	K := []byte(kw)

	h := sha256.New()
	for _, s := range [][]byte{c.clientVersion, c.serverVersion, ourMsg, theirsMsg, ks, qc, qs} {
		var w writer
		w.bytes(s)
		h.Write(w)
	}
	h.Write(K)
	H := h.Sum(nil)

	if err := c.verifyHostKey(algs.hostKey, ks, sigBlob, H, first); err != nil {
		return err
	}
	if first {
		c.sessionID = H
	}
	keyCS := deriveKey(K, H, c.sessionID, 'C', cipherKeyLen[algs.cipherCS])
	ivCS := deriveKey(K, H, c.sessionID, 'A', gcmIVSize)
	keySC := deriveKey(K, H, c.sessionID, 'D', cipherKeyLen[algs.cipherSC])
	ivSC := deriveKey(K, H, c.sessionID, 'B', gcmIVSize)

	c.t.wmu.Lock()
	err = c.sendLocked([]byte{msgNewKeys})
	if err == nil {
		err = c.t.w.setKey(keyCS, ivCS)
	}
	if err == nil && c.strict {
		c.t.w.seq = 0
	}
	c.kexing = false
	c.sentInit = nil
	held := c.held
	c.held = nil
	for _, m := range held {
		if err == nil {
			err = c.sendLocked(m)
		}
	}
	c.kexDone.Broadcast()
	c.t.wmu.Unlock()
	if err != nil {
		return err
	}

	if _, err := c.readKex(msgNewKeys, strictNow); err != nil {
		return err
	}
	if err := c.t.r.setKey(keySC, ivSC); err != nil {
		return err
	}
	if c.strict {
		c.t.r.seq = 0
	}
	c.kexes.Add(1)
	return nil
}

// verifyHostKey checks the server's signature of the exchange hash with
// the host key it sent, in the algorithm negotiated; the first time, the
// caller's HostKeyCallback decides whether the key is the host's, and
// later exchanges must show the same key.
func (c *Conn) verifyHostKey(alg string, blob, sigBlob, H []byte, first bool) error {
	key, err := ssh.ParsePublicKey(blob)
	if err != nil {
		return fmt.Errorf("ssh: server's host key: %w", err)
	}
	keyType, sigFormat := hostKeyForms(alg)
	if key.Type() != keyType {
		return fmt.Errorf("ssh: server sent a %s host key for %s", key.Type(), alg)
	}
	r := reader{b: sigBlob}
	sig := &ssh.Signature{Format: r.string(), Blob: r.bytes()}
	if len(r.b) > 0 {
		sig.Rest = r.b
	}
	if r.err != nil {
		return fmt.Errorf("ssh: host key signature: %w", r.err)
	}
	if sig.Format != sigFormat {
		return fmt.Errorf("ssh: host key signature in %s, negotiated %s", sig.Format, sigFormat)
	}
	if err := key.Verify(H, sig); err != nil {
		return fmt.Errorf("ssh: host key signature does not verify: %w", err)
	}
	if !first {
		if !bytes.Equal(blob, c.hostKey) {
			return errors.New("ssh: the server's host key changed in a later key exchange")
		}
		return nil
	}
	if err := c.cfg.HostKeyCallback(c.addr, c.t.conn.RemoteAddr(), key); err != nil {
		return err
	}
	c.hostKey = blob
	return nil
}

// hostKeyForms gives the key type a host key algorithm takes and the
// signature format it signs in: rsa-sha2-256 is an ssh-rsa key signing
// with SHA-256, and a certificate's algorithm signs as its key does.
func hostKeyForms(alg string) (keyType, sigFormat string) {
	const cert = "-cert-v01@openssh.com"
	base, isCert := strings.CutSuffix(alg, cert)
	keyType = base
	if base == ssh.KeyAlgoRSASHA256 || base == ssh.KeyAlgoRSASHA512 {
		keyType = ssh.KeyAlgoRSA
	}
	if isCert {
		keyType += cert
	}
	return keyType, base
}

// deriveKey is RFC 4253's key derivation (section 7.2) with SHA-256.
func deriveKey(K, H, sessionID []byte, letter byte, n int) []byte {
	h := sha256.New()
	h.Write(K)
	h.Write(H)
	h.Write([]byte{letter})
	h.Write(sessionID)
	out := h.Sum(nil)
	for len(out) < n {
		h.Reset()
		h.Write(K)
		h.Write(H)
		h.Write(out)
		out = h.Sum(out)
	}
	return out[:n]
}

// disconnectError reads a DISCONNECT message.
func disconnectError(p []byte) error {
	r := reader{b: p[1:]}
	reason := r.uint32()
	msg := r.string()
	return &DisconnectError{Reason: reason, Message: msg}
}

// DisconnectError is the server's reason for closing the connection.
type DisconnectError struct {
	Reason  uint32
	Message string
}

func (e *DisconnectError) Error() string {
	return fmt.Sprintf("ssh: disconnected by the server (reason %d): %s", e.Reason, e.Message)
}
