package spa

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultReplayLimit is how many packets a ReplayCache remembers at most,
// unless NewReplayCache is told otherwise.
const DefaultReplayLimit = 65536

// ErrReplayCacheFull: the cache holds its limit of unexpired entries, so
// a new packet is refused rather than an old one forgotten (which would
// let that one be replayed). Only authenticated packets fill the cache.
var ErrReplayCacheFull = errors.New("spa: replay cache full")

// replayHeader is the first line of a saved ReplayCache.
const replayHeader = "portctl-spa-replay 1"

// maxReplayID bounds the length of a remembered ID, in bytes.
const maxReplayID = 64

// ReplayCache remembers the packets a Verifier accepted (a portctl
// packet's nonce, an fwknop packet's digest) until each expires, twice
// the Verifier's maximum age after it was accepted. It is bounded in size
// and safe for concurrent use. Save and LoadReplayCache keep it across a
// restart.
type ReplayCache struct {
	mu     sync.Mutex
	limit  int
	seen   map[string]time.Time // ID to when it may be forgotten
	nextGC time.Time
}

// NewReplayCache returns an empty cache that remembers at most limit
// packets (DefaultReplayLimit when limit <= 0).
func NewReplayCache(limit int) *ReplayCache {
	if limit <= 0 {
		limit = DefaultReplayLimit
	}
	return &ReplayCache{limit: limit, seen: make(map[string]time.Time)}
}

// Len returns how many packets the cache remembers, expired ones that have
// not been dropped yet included.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// add records id until expires, unless it is there already (ErrReplay)
// or the cache is full (ErrReplayCacheFull).
func (c *ReplayCache) add(id []byte, expires, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.seen[string(id)]; ok && now.Before(e) {
		return ErrReplay
	}
	if len(c.seen) >= c.limit || now.After(c.nextGC) {
		c.dropExpired(now)
		c.nextGC = now.Add(time.Minute)
	}
	if len(c.seen) >= c.limit {
		return fmt.Errorf("%w: %d packets in the last few minutes", ErrReplayCacheFull, len(c.seen))
	}
	c.seen[string(id)] = expires
	return nil
}

func (c *ReplayCache) dropExpired(now time.Time) {
	for id, e := range c.seen {
		if !now.Before(e) {
			delete(c.seen, id)
		}
	}
}

// Save writes the cache as text: a header line, then one line per packet,
// its ID in hex and the Unix second it expires.
func (c *ReplayCache) Save(w io.Writer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%s limit=%d\n", replayHeader, c.limit)
	for id, e := range c.seen {
		fmt.Fprintf(bw, "%s %d\n", hex.EncodeToString([]byte(id)), e.Unix())
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("spa: save replay cache: %w", err)
	}
	return nil
}

// LoadReplayCache reads what Save wrote, forgetting the packets expired
// by now. An error names the line.
func LoadReplayCache(r io.Reader, now time.Time) (*ReplayCache, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), 1024)
	bad := func(n int, format string, args ...any) error {
		return fmt.Errorf("spa: replay cache line %d: "+format, append([]any{n}, args...)...)
	}
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("spa: read replay cache: %w", err)
		}
		return nil, errors.New("spa: replay cache is empty (want a first line " + replayHeader + ")")
	}
	head, limitField, _ := strings.Cut(sc.Text(), " limit=")
	if head != replayHeader {
		return nil, bad(1, "%q is not a replay cache header (want %q)", sc.Text(), replayHeader)
	}
	limit, err := strconv.Atoi(limitField)
	if err != nil || limit <= 0 || limit > 1<<24 {
		return nil, bad(1, "limit %q (want a whole number from 1 to %d)", limitField, 1<<24)
	}
	c := NewReplayCache(limit)
	for n := 2; sc.Scan(); n++ {
		idHex, expField, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			return nil, bad(n, "%q (want HEX-ID UNIX-SECONDS)", sc.Text())
		}
		id, err := hex.DecodeString(idHex)
		if err != nil || len(id) == 0 || len(id) > maxReplayID {
			return nil, bad(n, "ID %q (want 1 to %d bytes in hex)", idHex, maxReplayID)
		}
		exp, err := strconv.ParseInt(expField, 10, 64)
		if err != nil || !allDigits(expField) {
			return nil, bad(n, "expiry %q (want Unix seconds)", expField)
		}
		if _, dup := c.seen[string(id)]; dup {
			return nil, bad(n, "ID %s is there twice", idHex)
		}
		if e := time.Unix(exp, 0); now.Before(e) {
			if len(c.seen) >= c.limit {
				return nil, bad(n, "more entries than the limit of %d", c.limit)
			}
			c.seen[string(id)] = e
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("spa: read replay cache: %w", err)
	}
	return c, nil
}
