package sshwire

import (
	"encoding/binary"
	"errors"
	"strings"
)

// Message numbers (RFC 4250, section 4.1).
const (
	msgDisconnect     = 1
	msgIgnore         = 2
	msgUnimplemented  = 3
	msgDebug          = 4
	msgServiceRequest = 5
	msgServiceAccept  = 6
	msgExtInfo        = 7
	msgKexInit        = 20
	msgNewKeys        = 21
	msgKexECDHInit    = 30
	msgKexECDHReply   = 31

	msgUserAuthRequest  = 50
	msgUserAuthFailure  = 51
	msgUserAuthSuccess  = 52
	msgUserAuthBanner   = 53
	msgUserAuthPKOK     = 60 // also keyboard-interactive's INFO_REQUEST and password's CHANGEREQ
	msgUserAuthInfoResp = 61

	msgGlobalRequest  = 80
	msgRequestSuccess = 81
	msgRequestFailure = 82
	msgChannelOpen    = 90
	msgOpenConfirm    = 91
	msgOpenFailure    = 92
	msgWindowAdjust   = 93
	msgChannelData    = 94
	msgExtendedData   = 95
	msgChannelEOF     = 96
	msgChannelClose   = 97
	msgChannelRequest = 98
	msgChannelSuccess = 99
	msgChannelFailure = 100
)

// errShort is what a reader reports for a message cut short or malformed.
var errShort = errors.New("ssh: malformed message")

// reader takes the fields of a received message in order. The first
// failure sticks: every later field reads as zero, and err says so.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	r.err = errShort
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) bool() bool { return r.byte() != 0 }

func (r *reader) uint32() uint32 {
	if len(r.b) < 4 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

// bytes reads a string field; the result aliases the message.
func (r *reader) bytes() []byte {
	n := r.uint32()
	if r.err != nil || uint64(n) > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string { return string(r.bytes()) }

// nameList reads a comma-separated name-list.
func (r *reader) nameList() []string {
	b := r.bytes()
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), ",")
}

// writer builds a message by appending its fields.
type writer []byte

func (w *writer) byte(v byte)     { *w = append(*w, v) }
func (w *writer) uint32(v uint32) { *w = binary.BigEndian.AppendUint32(*w, v) }
func (w *writer) bytes(v []byte) {
	w.uint32(uint32(len(v)))
	*w = append(*w, v...)
}
func (w *writer) string(v string) {
	w.uint32(uint32(len(v)))
	*w = append(*w, v...)
}

func (w *writer) bool(v bool) {
	if v {
		w.byte(1)
	} else {
		w.byte(0)
	}
}

func (w *writer) nameList(v []string) { w.string(strings.Join(v, ",")) }

// mpint appends a non-negative integer in the mpint encoding (RFC 4251,
// section 5) of its big-endian bytes.
func (w *writer) mpint(v []byte) {
	for len(v) > 0 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) > 0 && v[0]&0x80 != 0 {
		w.uint32(uint32(len(v) + 1))
		w.byte(0)
		*w = append(*w, v...)
		return
	}
	w.bytes(v)
}
