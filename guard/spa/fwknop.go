package spa

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// fwknop's packet: see the package documentation.
const (
	fwknopSaltB64   = "U2FsdGVkX1" // base64 of "Salted__", left off on the wire
	fwknopSalted    = "Salted__"
	fwknopMACLen    = 43 // base64 of an HMAC-SHA-256, without padding
	fwknopDigestLen = 43 // base64 of a SHA-256 digest, without padding
	fwknopMinLen    = fwknopMACLen + 32
	fwknopMaxLen    = 1500 // libfko's MAX_SPA_ENCODED_MSG_SIZE
	fwknopVersion   = "3.0.0"

	fwknopAccess        = 1 // FKO_ACCESS_MSG
	fwknopTimeoutAccess = 3 // FKO_CLIENT_TIMEOUT_ACCESS_MSG
)

// fwknopTypes names libfko's message types, for errors.
var fwknopTypes = []string{
	0: "command", 1: "access", 2: "NAT access", 3: "access with client timeout",
	4: "NAT access with client timeout", 5: "local NAT access", 6: "local NAT access with client timeout",
}

var b64 = base64.RawStdEncoding.Strict()

// fwknopMsg is a decoded, authenticated fwknop packet.
type fwknopMsg struct {
	user      string
	timestamp int64
	req       Request
	digest    []byte // the SHA-256 digest of the fields
}

// decodeFwknop authenticates payload with key, decrypts it and parses
// its fields. A payload that key does not authenticate is ErrAuth; one
// that is not fwknop's format at all is ErrFormat.
func decodeFwknop(payload []byte, key FwknopKey) (fwknopMsg, error) {
	var m fwknopMsg
	if len(payload) < fwknopMinLen || len(payload) > fwknopMaxLen {
		return m, fmt.Errorf("%w: %d bytes, not a portctl packet nor an fwknop one (%d-%d bytes)", ErrFormat, len(payload), fwknopMinLen, fwknopMaxLen)
	}
	for _, c := range payload {
		if !isBase64Char(c) {
			return m, fmt.Errorf("%w: byte %#x: not a portctl packet nor an fwknop one (base64 text)", ErrFormat, c)
		}
	}
	enc, mac := payload[:len(payload)-fwknopMACLen], payload[len(payload)-fwknopMACLen:]
	want := fwknopMAC(key.HMAC, enc)
	if !hmac.Equal(want, mac) {
		return m, fmt.Errorf("%w: fwknop HMAC does not match", ErrAuth)
	}
	raw, err := b64.DecodeString(fwknopSaltB64 + string(enc))
	if err != nil {
		return m, fmt.Errorf("%w: fwknop ciphertext: %v", ErrFormat, err)
	}
	if len(raw) < 32 || !bytes.HasPrefix(raw, []byte(fwknopSalted)) || (len(raw)-16)%aes.BlockSize != 0 {
		return m, fmt.Errorf("%w: fwknop ciphertext of %d bytes (want Salted__, a salt and whole AES blocks)", ErrFormat, len(raw))
	}
	k, iv := fwknopKeyIV(key.Rijndael, raw[8:16])
	block, _ := aes.NewCipher(k)
	pt := make([]byte, len(raw)-16)
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, raw[16:])
	n := int(pt[len(pt)-1])
	if n < 1 || n > aes.BlockSize || !bytes.Equal(pt[len(pt)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		return m, fmt.Errorf("%w: fwknop plaintext padding (is the Rijndael key the client's?)", ErrFormat)
	}
	return parseFwknopFields(string(pt[:len(pt)-n]))
}

// parseFwknopFields parses fwknop's decrypted, colon-separated fields.
func parseFwknopFields(pt string) (fwknopMsg, error) {
	var m fwknopMsg
	bad := func(format string, args ...any) (fwknopMsg, error) {
		return m, fmt.Errorf("%w: fwknop "+format, append([]any{ErrFormat}, args...)...)
	}
	for i := 0; i < len(pt); i++ {
		if pt[i] < 0x20 || pt[i] > 0x7e {
			return bad("plaintext byte %#x (want printable text; is the Rijndael key the client's?)", pt[i])
		}
	}
	last := strings.LastIndexByte(pt, ':')
	if last < 0 {
		return bad("plaintext has no fields")
	}
	body, digest := pt[:last], pt[last+1:]
	if len(digest) != fwknopDigestLen {
		return m, fmt.Errorf("%w: fwknop digest of %d characters: only SHA-256 (43) is supported", ErrUnsupported, len(digest))
	}
	sum := sha256.Sum256([]byte(body))
	if !hmac.Equal([]byte(b64.EncodeToString(sum[:])), []byte(digest)) {
		return bad("SHA-256 digest does not match its fields (SHA3-256 digests are not supported)")
	}
	m.digest = sum[:]
	f := strings.Split(body, ":")
	if len(f) < 6 {
		return bad("packet has %d fields (want 6 to 8 before the digest)", len(f))
	}
	if len(f[0]) != 16 || !allDigits(f[0]) {
		return bad("random value %q (want 16 digits)", f[0])
	}
	user, err := b64.DecodeString(f[1])
	if err != nil || len(user) == 0 || len(user) > 64 {
		return bad("user name %q (want base64 of 1 to 64 bytes)", f[1])
	}
	m.user = string(user)
	if len(f[2]) == 0 || len(f[2]) > 12 || !allDigits(f[2]) {
		return bad("timestamp %q (want Unix seconds)", f[2])
	}
	m.timestamp, _ = strconv.ParseInt(f[2], 10, 64)
	if len(f[3]) == 0 || len(f[3]) > 8 {
		return bad("version %q", f[3])
	}
	typ, err := strconv.Atoi(f[4])
	if err != nil || len(f[4]) > 2 || typ < 0 || typ >= len(fwknopTypes) {
		return bad("message type %q (want 0-%d)", f[4], len(fwknopTypes)-1)
	}
	switch typ {
	case fwknopAccess:
		if len(f) != 6 {
			return m, fmt.Errorf("%w: fwknop access message with server auth", ErrUnsupported)
		}
	case fwknopTimeoutAccess:
		if len(f) != 7 {
			return m, fmt.Errorf("%w: fwknop access message with server auth", ErrUnsupported)
		}
		if len(f[6]) == 0 || len(f[6]) > 9 || !allDigits(f[6]) {
			return bad("client timeout %q (want seconds)", f[6])
		}
		secs, _ := strconv.Atoi(f[6])
		m.req.For = time.Duration(secs) * time.Second
	default:
		return m, fmt.Errorf("%w: fwknop %s message (type %d); only access messages (types 1 and 3) are granted", ErrUnsupported, fwknopTypes[typ], typ)
	}
	msg, err := b64.DecodeString(f[5])
	if err != nil {
		return bad("message %q is not base64", f[5])
	}
	if m.req, err = parseFwknopAccess(string(msg), m.req.For); err != nil {
		return m, err
	}
	return m, nil
}

// parseFwknopAccess parses an access message, "IP,proto/port".
func parseFwknopAccess(msg string, d time.Duration) (Request, error) {
	req := Request{For: d}
	ip, access, ok := strings.Cut(msg, ",")
	if !ok {
		return req, fmt.Errorf("%w: fwknop access message %q (want IP,proto/port)", ErrFormat, msg)
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil || addr.Zone() != "" {
		return req, fmt.Errorf("%w: fwknop access message %q: %q is not an IP address", ErrFormat, msg, ip)
	}
	if !addr.IsUnspecified() {
		req.Addr = addr.Unmap()
	}
	if strings.Contains(access, ",") {
		return req, fmt.Errorf("%w: fwknop access message %q asks for several ports; send one packet a port", ErrUnsupported, msg)
	}
	proto, port, ok := strings.Cut(access, "/")
	if !ok || (proto != "tcp" && proto != "udp") {
		return req, fmt.Errorf("%w: fwknop access %q (want tcp/PORT or udp/PORT)", ErrUnsupported, access)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || !allDigits(port) {
		return req, fmt.Errorf("%w: fwknop access %q: port %q (want 1-65535)", ErrFormat, access, port)
	}
	req.Proto, req.Port = proto, uint16(n)
	return req, nil
}

// fwknopMAC returns the base64 HMAC-SHA-256 fwknop appends to enc, the
// ciphertext's base64 without its "U2FsdGVkX1".
func fwknopMAC(key, enc []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(fwknopSaltB64))
	h.Write(enc)
	return []byte(b64.EncodeToString(h.Sum(nil)))
}

// fwknopKeyIV derives the AES-256 key and the IV from the Rijndael key
// and the salt as OpenSSL's EVP_BytesToKey does with MD5 and one round:
// D1 = MD5(key || salt), Di = MD5(Di-1 || key || salt), key || IV = D1 D2 D3.
func fwknopKeyIV(pass, salt []byte) (key, iv []byte) {
	var out, prev []byte
	for len(out) < 48 {
		h := md5.New()
		h.Write(prev)
		h.Write(pass)
		h.Write(salt)
		prev = h.Sum(nil)
		out = append(out, prev...)
	}
	return out[:32], out[32:48]
}

// EncodeFwknop builds a packet as fwknop's client does (an access
// message, of type 3 with a client timeout when req.For is set), for
// user, encrypted and authenticated with key. An invalid req.Addr is sent
// as 0.0.0.0: open for the packet's source.
func EncodeFwknop(req Request, key FwknopKey, user string, now time.Time) ([]byte, error) {
	if _, err := protoNumber(req.Proto); err != nil {
		return nil, fmt.Errorf("spa: encode fwknop: %w", err)
	}
	if req.Port == 0 {
		return nil, errors.New("spa: encode fwknop: port 0 (want 1-65535)")
	}
	if len(key.Rijndael) == 0 || len(key.Rijndael) > 32 || len(key.HMAC) == 0 {
		return nil, errors.New("spa: encode fwknop: want a Rijndael key of 1 to 32 bytes and an HMAC key")
	}
	if user == "" || len(user) > 64 || strings.ContainsAny(user, ":\x00") {
		return nil, fmt.Errorf("spa: encode fwknop: user name %q (want 1 to 64 bytes, no colon)", user)
	}
	r, err := rand.Int(rand.Reader, big.NewInt(1e16))
	if err != nil {
		return nil, fmt.Errorf("spa: encode fwknop: %w", err)
	}
	addr := "0.0.0.0"
	if req.Addr.IsValid() {
		addr = req.Addr.String()
	}
	typ := fwknopAccess
	if req.For > 0 {
		typ = fwknopTimeoutAccess
	}
	fields := []string{
		fmt.Sprintf("%016d", r), b64.EncodeToString([]byte(user)), strconv.FormatInt(now.Unix(), 10), fwknopVersion,
		strconv.Itoa(typ), b64.EncodeToString(fmt.Appendf(nil, "%s,%s/%d", addr, req.Proto, req.Port)),
	}
	if typ == fwknopTimeoutAccess {
		fields = append(fields, strconv.FormatInt(int64((req.For+time.Second-1)/time.Second), 10))
	}
	body := strings.Join(fields, ":")
	sum := sha256.Sum256([]byte(body))
	pt := []byte(body + ":" + b64.EncodeToString(sum[:]))
	pad := aes.BlockSize - len(pt)%aes.BlockSize
	pt = append(pt, bytes.Repeat([]byte{byte(pad)}, pad)...)

	raw := make([]byte, 16+len(pt))
	copy(raw, fwknopSalted)
	if _, err := rand.Read(raw[8:16]); err != nil {
		return nil, fmt.Errorf("spa: encode fwknop: %w", err)
	}
	k, iv := fwknopKeyIV(key.Rijndael, raw[8:16])
	block, _ := aes.NewCipher(k)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(raw[16:], pt)
	enc := []byte(strings.TrimPrefix(b64.EncodeToString(raw), fwknopSaltB64))
	return append(enc, fwknopMAC(key.HMAC, enc)...), nil
}

func isBase64Char(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/'
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
