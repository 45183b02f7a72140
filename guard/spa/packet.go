package spa

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// Errors a packet is refused with. Check's errors wrap one of them.
var (
	// ErrFormat: the datagram is not a well-formed packet of either format.
	ErrFormat = errors.New("spa: malformed packet")
	// ErrAuth: no key of the Verifier's authenticates the packet.
	ErrAuth = errors.New("spa: packet not authenticated")
	// ErrStale: the packet's timestamp is too far from now.
	ErrStale = errors.New("spa: packet too old or from the future")
	// ErrReplay: the packet was accepted before.
	ErrReplay = errors.New("spa: packet replayed")
	// ErrUnsupported: a well-formed, authenticated fwknop request of a
	// kind this package does not grant.
	ErrUnsupported = errors.New("spa: request not supported")
)

// Magic is the first four bytes of a portctl packet.
const Magic = "pSPA"

const (
	version = 1

	algHMAC    = 1
	algEd25519 = 2

	protoTCP = 6
	protoUDP = 17

	headerLen = 46 // through the address length byte
	nonceLen  = 16
)

// Request is what a client asks for.
type Request struct {
	Proto string // "tcp" or "udp"
	Port  uint16
	// For is how long the port should stay open; 0 asks for the server's
	// default. It is sent in whole seconds, rounded up.
	For time.Duration
	// Addr, when valid, is the address to open for: the client's address
	// as the server will see it, when NAT hides it from the client's own
	// sockets. When not valid, the server opens for the packet's source.
	Addr netip.Addr
}

// packet is a decoded portctl packet.
type packet struct {
	alg       byte
	keyID     [8]byte
	timestamp int64
	nonce     [nonceLen]byte
	req       Request
	signed    []byte // the bytes the tag covers
	tag       []byte
}

// Encode builds a portctl packet for req, authenticated with key (an
// HMACSHA256 or Ed25519Private key), stamped with now and a fresh random
// nonce.
func Encode(req Request, key Key, now time.Time) ([]byte, error) {
	var nonce [nonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("spa: nonce: %w", err)
	}
	return encode(req, key, now, nonce)
}

func encode(req Request, key Key, now time.Time, nonce [nonceLen]byte) ([]byte, error) {
	var alg byte
	switch key.Kind {
	case HMACSHA256:
		alg = algHMAC
	case Ed25519Private:
		alg = algEd25519
	default:
		return nil, fmt.Errorf("spa: encode: a %s key cannot sign (want hmac-sha256 or ed25519-private)", key.Kind)
	}
	proto, err := protoNumber(req.Proto)
	if err != nil {
		return nil, fmt.Errorf("spa: encode: %w", err)
	}
	if req.Port == 0 {
		return nil, errors.New("spa: encode: port 0 (want 1-65535)")
	}
	if req.For < 0 {
		return nil, fmt.Errorf("spa: encode: negative duration %s", req.For)
	}
	secs := (req.For + time.Second - 1) / time.Second
	if secs > math.MaxUint32 {
		return nil, fmt.Errorf("spa: encode: duration %s is too long", req.For)
	}
	b := make([]byte, 0, headerLen+16+ed25519.SignatureSize)
	b = append(b, Magic...)
	b = append(b, version, alg)
	id := key.ID()
	b = append(b, id[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(now.Unix()))
	b = append(b, nonce[:]...)
	b = append(b, proto)
	b = binary.BigEndian.AppendUint16(b, req.Port)
	b = binary.BigEndian.AppendUint32(b, uint32(secs))
	switch addr := req.Addr; {
	case !addr.IsValid():
		b = append(b, 0)
	case addr.Is4() || addr.Is4In6():
		a := addr.Unmap().As4()
		b = append(b, 4)
		b = append(b, a[:]...)
	default:
		a := addr.As16()
		b = append(b, 16)
		b = append(b, a[:]...)
	}
	if alg == algHMAC {
		m := hmac.New(sha256.New, key.Material)
		m.Write(b)
		return m.Sum(b), nil
	}
	return append(b, ed25519.Sign(ed25519.NewKeyFromSeed(key.Material), b)...), nil
}

// IsPortctl reports whether payload starts with portctl's magic.
func IsPortctl(payload []byte) bool {
	return bytes.HasPrefix(payload, []byte(Magic))
}

// decodePortctl parses a portctl packet without authenticating it.
func decodePortctl(b []byte) (packet, error) {
	var p packet
	if len(b) < headerLen || !IsPortctl(b) {
		return p, fmt.Errorf("%w: %d bytes, not a portctl packet", ErrFormat, len(b))
	}
	if b[4] != version {
		return p, fmt.Errorf("%w: portctl packet version %d (want %d)", ErrFormat, b[4], version)
	}
	p.alg = b[5]
	var tagLen int
	switch p.alg {
	case algHMAC:
		tagLen = sha256.Size
	case algEd25519:
		tagLen = ed25519.SignatureSize
	default:
		return p, fmt.Errorf("%w: algorithm %d (want 1 for HMAC-SHA-256 or 2 for Ed25519)", ErrFormat, p.alg)
	}
	copy(p.keyID[:], b[6:14])
	p.timestamp = int64(binary.BigEndian.Uint64(b[14:22]))
	copy(p.nonce[:], b[22:38])
	switch b[38] {
	case protoTCP:
		p.req.Proto = "tcp"
	case protoUDP:
		p.req.Proto = "udp"
	default:
		return p, fmt.Errorf("%w: protocol %d (want 6 for TCP or 17 for UDP)", ErrFormat, b[38])
	}
	p.req.Port = binary.BigEndian.Uint16(b[39:41])
	if p.req.Port == 0 {
		return p, fmt.Errorf("%w: port 0", ErrFormat)
	}
	p.req.For = time.Duration(binary.BigEndian.Uint32(b[41:45])) * time.Second
	addrLen := int(b[45])
	if addrLen != 0 && addrLen != 4 && addrLen != 16 {
		return p, fmt.Errorf("%w: address length %d (want 0, 4 or 16)", ErrFormat, addrLen)
	}
	if want := headerLen + addrLen + tagLen; len(b) != want {
		return p, fmt.Errorf("%w: %d bytes (want %d)", ErrFormat, len(b), want)
	}
	if addrLen > 0 {
		p.req.Addr, _ = netip.AddrFromSlice(b[headerLen : headerLen+addrLen])
		if p.req.Addr.Is4In6() {
			return p, fmt.Errorf("%w: IPv4-mapped address %s (send it as 4 bytes)", ErrFormat, p.req.Addr)
		}
	}
	end := headerLen + addrLen
	p.signed, p.tag = b[:end], b[end:]
	return p, nil
}

// authenticate checks p's tag with key, which must be the key p names.
func (p packet) authenticate(key Key) bool {
	switch {
	case p.alg == algHMAC && key.Kind == HMACSHA256:
		m := hmac.New(sha256.New, key.Material)
		m.Write(p.signed)
		return hmac.Equal(m.Sum(nil), p.tag)
	case p.alg == algEd25519 && (key.Kind == Ed25519Public || key.Kind == Ed25519Private):
		return ed25519.Verify(key.public(), p.signed, p.tag)
	}
	return false
}

// protoNumber returns the IANA number of "tcp" or "udp".
func protoNumber(proto string) (byte, error) {
	switch proto {
	case "tcp":
		return protoTCP, nil
	case "udp":
		return protoUDP, nil
	}
	return 0, fmt.Errorf("protocol %q (want tcp or udp)", proto)
}
