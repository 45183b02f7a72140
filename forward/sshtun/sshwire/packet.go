package sshwire

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
)

// The binary packet protocol (RFC 4253, section 6) with the AES-GCM
// ciphers of RFC 5647 as OpenSSH names them.

const (
	// maxPacket bounds a packet's length field: OpenSSH sends up to
	// 256 KiB, and RFC 4253 asks every implementation for 35,000 bytes.
	maxPacket = 256<<10 + 1024
	// readBufSize is the read buffer: many packets a read(2).
	readBufSize = 512 << 10
	gcmTagSize  = 16
	gcmIVSize   = 12
)

// Cipher names this transport speaks; others fall back to x/crypto/ssh.
const (
	CipherAES128GCM = "aes128-gcm@openssh.com"
	CipherAES256GCM = "aes256-gcm@openssh.com"
)

// cipherKeyLen is the key length of each cipher this transport speaks.
var cipherKeyLen = map[string]int{CipherAES128GCM: 16, CipherAES256GCM: 32}

// direction is one way's keys and counters.
type direction struct {
	aead cipher.AEAD // nil before the first NEWKEYS: packets in clear
	iv   [gcmIVSize]byte
	seq  uint32
	n    uint64 // bytes since the last key exchange
}

// setKey switches to AES-GCM with key and iv.
func (d *direction) setKey(key, iv []byte) error {
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	d.aead = aead
	copy(d.iv[:], iv)
	d.n = 0
	return nil
}

// nextIV steps the 64-bit invocation counter in the IV's last 8 bytes.
func (d *direction) nextIV() {
	c := binary.BigEndian.Uint64(d.iv[4:])
	binary.BigEndian.PutUint64(d.iv[4:], c+1)
}

// transport reads and writes packets over conn. Reading is for one
// goroutine at a time (the handshake, then the read loop); writing is
// serialised by wmu.
type transport struct {
	conn net.Conn

	rbuf         []byte
	rstart, rend int // the unread bytes are rbuf[rstart:rend]
	r            direction

	wmu  sync.Mutex
	wbuf []byte
	w    direction
}

func newTransport(conn net.Conn) *transport {
	return &transport{conn: conn, rbuf: make([]byte, readBufSize), wbuf: make([]byte, 0, 64<<10)}
}

// fill makes at least n unread bytes available, reading as much as the
// connection has at a time.
func (t *transport) fill(n int) error {
	for t.rend-t.rstart < n {
		if t.rstart+n > len(t.rbuf) {
			t.rend = copy(t.rbuf, t.rbuf[t.rstart:t.rend])
			t.rstart = 0
		}
		m, err := t.conn.Read(t.rbuf[t.rend:])
		t.rend += m
		if err != nil {
			if err == io.EOF && t.rend-t.rstart >= n {
				return nil
			}
			if err == io.EOF && t.rend > t.rstart {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// readPacket returns the next packet's payload. It aliases the read
// buffer and is good until the next call.
func (t *transport) readPacket() ([]byte, error) {
	if err := t.fill(4); err != nil {
		return nil, err
	}
	b := t.rbuf[t.rstart:t.rend]
	length := int(binary.BigEndian.Uint32(b))
	if length < 5 || length > maxPacket {
		return nil, fmt.Errorf("ssh: packet length %d out of range", length)
	}
	total := 4 + length
	if t.r.aead != nil {
		if length%aes.BlockSize != 0 {
			return nil, fmt.Errorf("ssh: packet length %d is not a multiple of %d", length, aes.BlockSize)
		}
		total += gcmTagSize
	}
	if err := t.fill(total); err != nil {
		return nil, err
	}
	b = t.rbuf[t.rstart : t.rstart+total]
	t.rstart += total
	body := b[4 : 4+length]
	if t.r.aead != nil {
		var err error
		body, err = t.r.aead.Open(b[4:4], t.r.iv[:], b[4:], b[:4])
		if err != nil {
			return nil, errors.New("ssh: packet authentication failed")
		}
		t.r.nextIV()
	}
	t.r.seq++
	t.r.n += uint64(total)
	pad := int(body[0])
	if pad < 4 || 1+pad >= len(body) {
		return nil, fmt.Errorf("ssh: padding length %d in a packet of %d bytes", pad, length)
	}
	return body[1 : len(body)-pad], nil
}

// packet starts a packet in the write buffer; the caller appends the
// payload and hands it to send. The caller holds wmu.
func (t *transport) packet() writer {
	return writer(t.wbuf[:5])
}

// send pads, seals and writes a packet begun with packet. The caller holds
// wmu.
func (t *transport) send(p writer) error {
	block, clear := 8, 5 // AES-GCM leaves the length in clear, out of the blocks
	if t.w.aead != nil {
		block, clear = aes.BlockSize, 1
	}
	pad := block - (clear+len(p)-5)%block
	if pad < 4 {
		pad += block
	}
	p = append(p, zeros[:pad]...)
	length := len(p) - 4
	binary.BigEndian.PutUint32(p, uint32(length))
	p[4] = byte(pad)
	if t.w.aead != nil {
		p = slices.Grow(p, gcmTagSize)
		t.w.aead.Seal(p[4:4], t.w.iv[:], p[4:], p[:4]) // in place: p has room for the tag
		p = p[:len(p)+gcmTagSize]
		t.w.nextIV()
	}
	t.wbuf = p[:0]
	t.w.seq++
	t.w.n += uint64(len(p))
	_, err := t.conn.Write(p)
	return err
}

// zeros pads packets: the padding is encrypted with the rest, or, before
// the first key exchange, carries nothing secret.
var zeros [2 * aes.BlockSize]byte
