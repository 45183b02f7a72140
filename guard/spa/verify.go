package spa

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Defaults of a Verifier.
const (
	DefaultMaxAge = 120 * time.Second // how far a timestamp may be from now
	DefaultFor    = 30 * time.Second  // what a request for 0 gets
	DefaultMaxFor = time.Hour         // the most a request gets
)

// Grant is what an accepted packet asks for: open Proto/Port to Addr for
// For.
type Grant struct {
	Proto string // "tcp" or "udp"
	Port  uint16
	// Addr is whom to open for: the packet's source, or the address the
	// packet names (for a client behind NAT).
	Addr   netip.Addr
	For    time.Duration
	Format string // "portctl" or "fwknop"
	// User is the user name an fwknop packet carries; empty for portctl's.
	User string
}

// Verifier checks packets against a set of keys. Its exported fields may
// be set after NewVerifier and before the first Check; after that it is
// safe for concurrent use.
type Verifier struct {
	// DefaultFor is what a request for 0 gets (DefaultFor when 0).
	DefaultFor time.Duration
	// MaxFor caps what a request gets (DefaultMaxFor when 0).
	MaxFor time.Duration

	maxAge time.Duration
	cache  *ReplayCache
	byID   map[[8]byte][]Key
	fwknop []FwknopKey
}

// NewVerifier returns a Verifier of packets authenticated by keys (HMAC
// secrets, Ed25519 public keys, fwknop key pairs; an Ed25519 private key
// counts as its public key) whose timestamp
// lies within maxAge of now (DefaultMaxAge when maxAge <= 0). Accepted
// packets are recorded in cache; a nil cache is a new one of the default
// size.
func NewVerifier(keys Keys, cache *ReplayCache, maxAge time.Duration) *Verifier {
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	if cache == nil {
		cache = NewReplayCache(0)
	}
	v := &Verifier{maxAge: maxAge, cache: cache, byID: make(map[[8]byte][]Key)}
	for _, k := range keys {
		switch k.Kind {
		case HMACSHA256, Ed25519Public, Ed25519Private:
			v.byID[k.ID()] = append(v.byID[k.ID()], k)
		}
	}
	// LoadKeys has checked the pairing; unpaired keys made in code are
	// left out.
	v.fwknop, _ = keys.FwknopPairs()
	return v
}

// Check authenticates payload, a datagram from the address from, checks
// that it is fresh and not replayed, records it, and returns what it
// asks for. Errors wrap ErrFormat, ErrAuth, ErrStale, ErrReplay,
// ErrReplayCacheFull or ErrUnsupported.
func (v *Verifier) Check(payload []byte, from netip.Addr, now time.Time) (Grant, error) {
	var (
		g   Grant
		ts  int64
		id  []byte
		req Request
	)
	if IsPortctl(payload) {
		p, err := decodePortctl(payload)
		if err != nil {
			return g, err
		}
		if !v.authenticate(p) {
			return g, fmt.Errorf("%w: no key of this server's has the packet's key ID %x, or its tag does not match", ErrAuth, p.keyID)
		}
		ts, req, g.Format = p.timestamp, p.req, "portctl"
		id = append([]byte{'p'}, p.nonce[:]...)
	} else {
		m, err := v.decodeFwknop(payload)
		if err != nil {
			return g, err
		}
		ts, req, g.Format, g.User = m.timestamp, m.req, "fwknop", m.user
		id = append([]byte{'f'}, m.digest...)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > v.maxAge || d < -v.maxAge {
		return g, fmt.Errorf("%w: timestamp %s is %s from now (allowed: %s)", ErrStale,
			time.Unix(ts, 0).UTC().Format(time.RFC3339), d.Round(time.Second), v.maxAge)
	}
	if err := v.cache.add(id, now.Add(2*v.maxAge), now); err != nil {
		if errors.Is(err, ErrReplay) {
			return g, fmt.Errorf("%w: this %s packet was accepted before", ErrReplay, g.Format)
		}
		return g, err
	}
	g.Proto, g.Port, g.Addr = req.Proto, req.Port, from.Unmap()
	if req.Addr.IsValid() {
		g.Addr = req.Addr
	}
	g.For = req.For
	if g.For == 0 {
		g.For = v.DefaultFor
		if g.For <= 0 {
			g.For = DefaultFor
		}
	}
	maxFor := v.MaxFor
	if maxFor <= 0 {
		maxFor = DefaultMaxFor
	}
	g.For = min(g.For, maxFor)
	return g, nil
}

// authenticate reports whether a key of the packet's key ID authenticates it.
func (v *Verifier) authenticate(p packet) bool {
	for _, k := range v.byID[p.keyID] {
		if p.authenticate(k) {
			return true
		}
	}
	return false
}

// decodeFwknop tries each fwknop key pair on payload.
func (v *Verifier) decodeFwknop(payload []byte) (fwknopMsg, error) {
	if len(v.fwknop) == 0 {
		// Say what the datagram looks like, though no key could check it.
		if _, err := decodeFwknop(payload, FwknopKey{}); errors.Is(err, ErrFormat) {
			return fwknopMsg{}, err
		}
		return fwknopMsg{}, fmt.Errorf("%w: an fwknop packet, and this server has no fwknop key", ErrAuth)
	}
	var err error
	for _, k := range v.fwknop {
		var m fwknopMsg
		if m, err = decodeFwknop(payload, k); !errors.Is(err, ErrAuth) {
			return m, err
		}
	}
	return fwknopMsg{}, err
}
