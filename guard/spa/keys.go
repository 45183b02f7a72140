package spa

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// KeyKind is what a key is for.
type KeyKind uint8

// The kinds of key a key file holds.
const (
	HMACSHA256       KeyKind = iota + 1 // a shared secret for portctl's packet
	Ed25519Private                      // a client's Ed25519 seed
	Ed25519Public                       // a client's Ed25519 public key, for the server
	FwknopRijndael                      // fwknop's Rijndael (AES) key
	FwknopHMACSHA256                    // fwknop's HMAC-SHA-256 key
)

// keyKinds are the kinds by their key-file words, and the sizes they take.
var keyKinds = []struct {
	kind     KeyKind
	word     string
	min, max int
}{
	{HMACSHA256, "portctl-spa hmac-sha256", 16, 64},
	{Ed25519Private, "portctl-spa ed25519-private", ed25519.SeedSize, ed25519.SeedSize},
	{Ed25519Public, "portctl-spa ed25519-public", ed25519.PublicKeySize, ed25519.PublicKeySize},
	{FwknopRijndael, "fwknop-rijndael", 1, 32},
	{FwknopHMACSHA256, "fwknop-hmac-sha256", 1, 128},
}

// fwknopWords are fwknop's own names for its keys, as `fwknop --key-gen`
// prints them and fwknopd's access.conf spells them.
var fwknopWords = map[string]KeyKind{
	"KEY_BASE64":      FwknopRijndael,
	"HMAC_KEY_BASE64": FwknopHMACSHA256,
}

// String returns the kind as the key file names it, without the
// "portctl-spa " prefix: hmac-sha256, ed25519-private, ed25519-public,
// fwknop-rijndael, fwknop-hmac-sha256.
func (k KeyKind) String() string {
	for _, kk := range keyKinds {
		if kk.kind == k {
			return strings.TrimPrefix(kk.word, "portctl-spa ")
		}
	}
	return fmt.Sprintf("KeyKind(%d)", uint8(k))
}

// ErrKeyFile is wrapped by every error about a key file's contents.
var ErrKeyFile = errors.New("spa: bad key file")

// Key is one key of a key file.
type Key struct {
	Kind KeyKind
	// Material is the HMAC secret, the Ed25519 seed or public key, or the
	// fwknop key, as raw bytes.
	Material []byte
	// Comment is the text after the key on its line, if any.
	Comment string
	// Line is the line of the file the key was read from; 0 for a key
	// made in code.
	Line int
}

// String returns the key as a line of a key file, without a newline.
func (k Key) String() string {
	word := k.Kind.String()
	for _, kk := range keyKinds {
		if kk.kind == k.Kind {
			word = kk.word
		}
	}
	s := word + " " + base64.StdEncoding.EncodeToString(k.Material)
	if k.Comment != "" {
		s += " " + k.Comment
	}
	return s
}

// ID is the key ID a portctl packet names the key by: for an HMAC
// secret, from the secret; for an Ed25519 key, from its public key. It is
// the zero array for fwknop keys.
func (k Key) ID() [8]byte {
	var material []byte
	switch k.Kind {
	case HMACSHA256, Ed25519Public:
		material = k.Material
	case Ed25519Private:
		material = k.public()
	default:
		return [8]byte{}
	}
	h := sha256.New()
	h.Write([]byte("portctl-spa key id\x00"))
	h.Write(material)
	var id [8]byte
	copy(id[:], h.Sum(nil))
	return id
}

// public returns the Ed25519 public key of an Ed25519 key, nil for others.
func (k Key) public() ed25519.PublicKey {
	switch k.Kind {
	case Ed25519Public:
		return ed25519.PublicKey(k.Material)
	case Ed25519Private:
		return ed25519.NewKeyFromSeed(k.Material).Public().(ed25519.PublicKey)
	}
	return nil
}

// Keys are the keys of a key file, in file order.
type Keys []Key

// Signer returns the key a client signs its packets with: the file's one
// HMAC secret or Ed25519 private key.
func (ks Keys) Signer() (Key, error) {
	var found []Key
	for _, k := range ks {
		if k.Kind == HMACSHA256 || k.Kind == Ed25519Private {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return Key{}, fmt.Errorf("%w: no hmac-sha256 or ed25519-private key to sign with (an ed25519-public key is for the server)", ErrKeyFile)
	case 1:
		return found[0], nil
	}
	return Key{}, fmt.Errorf("%w: lines %d and %d both hold a key to sign with; keep one", ErrKeyFile, found[0].Line, found[1].Line)
}

// maxKeyLine bounds a key file's line: the longest key is 128 bytes.
const maxKeyLine = 4096

// LoadKeys reads a key file (see the package documentation). An error
// names the line and wraps ErrKeyFile. A file with no key is an error.
func LoadKeys(r io.Reader) (Keys, error) {
	var ks Keys
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxKeyLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := parseKeyLine(line)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrKeyFile, n, err)
		}
		k.Line = n
		ks = append(ks, k)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: line %d is longer than %d bytes", ErrKeyFile, n+1, maxKeyLine)
		}
		return nil, fmt.Errorf("spa: read key file: %w", err)
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("%w: no key in it (want lines such as \"portctl-spa hmac-sha256 BASE64\")", ErrKeyFile)
	}
	if _, err := ks.FwknopPairs(); err != nil {
		return nil, err
	}
	return ks, nil
}

// parseKeyLine parses one line that is neither blank nor a comment.
func parseKeyLine(line string) (Key, error) {
	fields := strings.Fields(line)
	var (
		kind KeyKind
		word string
		rest []string
	)
	if k, ok := fwknopWords[strings.TrimSuffix(fields[0], ":")]; ok {
		kind, word, rest = k, fields[0], fields[1:]
	} else {
		for _, kk := range keyKinds {
			w := strings.Fields(kk.word)
			if len(fields) >= len(w) && strings.Join(fields[:len(w)], " ") == kk.word {
				kind, word, rest = kk.kind, kk.word, fields[len(w):]
				break
			}
		}
	}
	if kind == 0 {
		name := fields[0]
		if name == "portctl-spa" && len(fields) > 1 {
			name += " " + fields[1]
		}
		return Key{}, fmt.Errorf("unknown key type %q (want portctl-spa hmac-sha256, portctl-spa ed25519-private, portctl-spa ed25519-public, fwknop-rijndael or fwknop-hmac-sha256, each followed by BASE64)", name)
	}
	if len(rest) == 0 {
		return Key{}, fmt.Errorf("%s has no key after it (want %s BASE64)", word, word)
	}
	material, err := decodeBase64(rest[0])
	if err != nil {
		return Key{}, fmt.Errorf("%s: the key is not base64: %v", word, err)
	}
	for _, kk := range keyKinds {
		if kk.kind != kind {
			continue
		}
		if len(material) < kk.min || len(material) > kk.max {
			if kk.min == kk.max {
				return Key{}, fmt.Errorf("%s: the key is %d bytes; want %d", word, len(material), kk.min)
			}
			return Key{}, fmt.Errorf("%s: the key is %d bytes; want %d to %d", word, len(material), kk.min, kk.max)
		}
	}
	return Key{Kind: kind, Material: material, Comment: strings.Join(rest[1:], " ")}, nil
}

// decodeBase64 decodes standard base64 with or without padding.
func decodeBase64(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.StdEncoding.Strict().DecodeString(s)
	}
	return base64.RawStdEncoding.Strict().DecodeString(s)
}

// FwknopKey is a pair of fwknop keys: the Rijndael key encrypts, the HMAC
// key authenticates.
type FwknopKey struct {
	Rijndael, HMAC []byte
}

// FwknopPairs returns the fwknop keys, each fwknop-rijndael key paired
// with the fwknop-hmac-sha256 key after it (or before it: fwknop's
// --key-gen prints the HMAC key second, access.conf takes either order).
// A key without its pair is an error naming its line.
func (ks Keys) FwknopPairs() ([]FwknopKey, error) {
	var (
		pairs   []FwknopKey
		pending *Key
	)
	for i := range ks {
		k := &ks[i]
		if k.Kind != FwknopRijndael && k.Kind != FwknopHMACSHA256 {
			continue
		}
		switch {
		case pending == nil:
			pending = k
		case pending.Kind == k.Kind:
			return nil, fmt.Errorf("%w: line %d: %s key without its %s key (pair each fwknop-rijndael line with a fwknop-hmac-sha256 line)", ErrKeyFile, pending.Line, pending.Kind, otherFwknop(pending.Kind))
		default:
			p := FwknopKey{Rijndael: pending.Material, HMAC: k.Material}
			if k.Kind == FwknopRijndael {
				p = FwknopKey{Rijndael: k.Material, HMAC: pending.Material}
			}
			pairs = append(pairs, p)
			pending = nil
		}
	}
	if pending != nil {
		return nil, fmt.Errorf("%w: line %d: %s key without its %s key (pair each fwknop-rijndael line with a fwknop-hmac-sha256 line)", ErrKeyFile, pending.Line, pending.Kind, otherFwknop(pending.Kind))
	}
	return pairs, nil
}

func otherFwknop(k KeyKind) KeyKind {
	if k == FwknopRijndael {
		return FwknopHMACSHA256
	}
	return FwknopRijndael
}

// GenerateHMAC returns a key file holding a new 32-byte HMAC-SHA-256
// secret; the client and the server both keep a copy.
func GenerateHMAC() (string, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", fmt.Errorf("spa: generate key: %w", err)
	}
	return Key{Kind: HMACSHA256, Material: secret}.String() + "\n", nil
}

// GenerateEd25519 returns a key file holding a new Ed25519 private key,
// for the client, and one holding its public key, for the server.
func GenerateEd25519() (private, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("spa: generate key: %w", err)
	}
	private = Key{Kind: Ed25519Private, Material: priv.Seed()}.String() + "\n"
	public = Key{Kind: Ed25519Public, Material: pub}.String() + "\n"
	return private, public, nil
}
