package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan/probe/nmapdb"
)

// Config tunes Detect. The zero value works: every field has a default.
type Config struct {
	// Timeout is how long one probe waits for an answer. By default it
	// adapts: half a second plus ten times the fastest TCP connect to the
	// port (a server answers a probe it understands about as fast), at
	// most 2 s; 1 s for UDP.
	Timeout time.Duration
	// BannerWait is how long to wait for a greeting before probing a TCP
	// port where servers do not usually speak first (default 300 ms;
	// ports where they do wait Timeout).
	BannerWait time.Duration
	// Budget bounds the whole detection of one port (default 12 s).
	Budget time.Duration
	// MaxProbes bounds the probes sent to one port, each on its own
	// connection for TCP. By default this package's own probes are
	// bounded by 48 and then every probe of DB up to rarity 7 is sent,
	// as nmap's default intensity does; Budget stops a port that stays
	// silent sooner.
	MaxProbes int
	// DB, when set, holds further probes and matches in nmap's
	// service-probes format, tried after this package's own.
	DB *nmapdb.DB
	// Dialer dials the TCP connections and UDP sockets; nil for a zero
	// net.Dialer.
	Dialer *net.Dialer
	// Now returns the current time, for certificate expiry (default
	// time.Now).
	Now func() time.Time
}

func (c Config) timeout() time.Duration    { return orDefault(c.Timeout, 2*time.Second) }
func (c Config) bannerWait() time.Duration { return orDefault(c.BannerWait, 300*time.Millisecond) }
func (c Config) budget() time.Duration     { return orDefault(c.Budget, 12*time.Second) }

func (c Config) maxProbes() int {
	if c.MaxProbes <= 0 {
		return defaultMaxProbes
	}
	return c.MaxProbes
}

// defaultMaxProbes bounds this package's own probes by default. The
// bound was 20, shared by this package's probes and DB's, so a server
// that answers only one of nmap's rarity-6 probes (OpenLDAP, which
// answers LDAPBindReq, 17th in nmap's order on a port its probes do not
// list) was never sent it, where nmap itself sends every probe up to
// rarity 7; DB's probes now have an allowance of their own (nmapProbes).
const defaultMaxProbes = 48

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Target is one port to identify.
type Target struct {
	Addr  netip.AddrPort
	Proto registry.Protocol // registry.TCP or registry.UDP
	// Host is the name the address came from, sent as TLS SNI and HTTP
	// Host when set.
	Host string
}

// Detect identifies what answers on the target port. It always returns a
// Service: when nothing matched, its Name is Unknown, its Evidence the
// first bytes received (if any) and its Extra says what happened. It
// returns within cfg.Budget, or sooner when ctx ends. Safe for concurrent
// use with the same Config.
func Detect(ctx context.Context, cfg Config, t Target) Service {
	ctx, cancel := context.WithTimeout(ctx, cfg.budget())
	defer cancel()
	d := &detector{cfg: cfg, t: t, ctx: ctx}
	if d.cfg.Dialer == nil {
		d.cfg.Dialer = &net.Dialer{}
	}
	if d.cfg.Now == nil {
		d.cfg.Now = time.Now
	}
	var s Service
	if t.Proto == registry.UDP {
		s = d.udp()
	} else {
		s = d.tcp()
	}
	if !s.Known() {
		s.Name = Unknown
		if s.Evidence == "" && d.seen != nil {
			s.Evidence = Escape(d.seen)
		}
		s.add("note", d.note())
	}
	return s
}

// detector is one Detect call's state.
type detector struct {
	cfg       Config
	t         Target
	ctx       context.Context
	probes    int           // probes sent
	limit     int           // when not 0, the bound on probes instead of cfg.maxProbes()
	seen      []byte        // the first bytes received, for an unknown service
	last      []byte        // the answer to the latest probe
	closed    int           // connections the peer closed without a byte
	silent    int           // probes that drew nothing before the timeout
	quiet     int           // the probes in a row, up to the latest, that drew nothing
	getAnswer []byte        // a non-HTTP answer to our GET, for nmap's GetRequest lines
	err       error         // the last network error
	rtt       time.Duration // the fastest TCP connect, 0 before one
}

// wait is how long a probe waits for its answer (see Config.Timeout).
func (d *detector) wait() time.Duration {
	switch {
	case d.cfg.Timeout > 0:
		return d.cfg.Timeout
	case d.t.Proto == registry.UDP || d.rtt == 0:
		return time.Second
	}
	w := min(500*time.Millisecond+10*d.rtt, 2*time.Second)
	if d.quiet >= 4 {
		// Four protocols drew nothing, neither an answer nor a close: a
		// server that waits for one thing only. Half the wait each from
		// here leaves the budget for more probes, its own among them.
		w = max(w/2, 250*time.Millisecond)
	}
	return w
}

// note says, for an unknown service, what the probes drew.
func (d *detector) note() string {
	switch {
	case d.seen != nil:
		return "answers not recognised"
	case d.err != nil && d.probes == 0:
		return "could not connect: " + d.err.Error()
	case d.closed > 0 && d.silent == 0:
		return "closes the connection without sending anything"
	case d.probes > 0:
		return "never answered " + strconv.Itoa(d.probes) + " probes"
	}
	return "not probed"
}

// saw records the first bytes a probe drew.
func (d *detector) saw(b []byte) {
	if d.seen == nil && len(b) > 0 {
		d.seen = slices.Clone(b[:min(len(b), maxEvidence+1)])
	}
}

// more reports whether another probe may be sent.
func (d *detector) more() bool {
	limit := d.cfg.maxProbes()
	if d.limit > 0 {
		limit = d.limit
	}
	return d.ctx.Err() == nil && d.probes < limit
}

// dial connects to the target over network ("tcp" or "udp").
func (d *detector) dial(network string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.timeout())
	defer cancel()
	start := time.Now()
	c, err := d.cfg.Dialer.DialContext(ctx, network, d.t.Addr.String())
	if err != nil {
		d.err = err
	} else if rtt := time.Since(start); network == "tcp" && (d.rtt == 0 || rtt < d.rtt) {
		d.rtt = rtt
	}
	return c, err
}

// readAnswer reads what the peer sends: it waits up to wait for the first
// bytes, then keeps reading while more arrive within a short gap, until
// done says the answer is complete, the peer closes, or 64 KiB. It
// returns what it read and whether the peer closed.
func (d *detector) readAnswer(c net.Conn, wait time.Duration, done func([]byte) bool) ([]byte, bool) {
	const gap = 150 * time.Millisecond
	buf := make([]byte, 0, 4096)
	deadline := time.Now().Add(wait)
	if dl, ok := d.ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	for len(buf) < 64<<10 {
		c.SetReadDeadline(deadline)
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, len(buf))
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 && done != nil && done(buf) {
			return buf, false
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return buf, false
			}
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, os.ErrClosed) {
				return buf, true
			}
			d.err = err
			return buf, true
		}
		if n > 0 {
			deadline = time.Now().Add(gap)
		}
	}
	return buf, false
}

// exchange sends req on c and reads the answer, counting the probe.
func (d *detector) exchange(c net.Conn, req []byte, done func([]byte) bool) []byte {
	return d.exchangeFor(c, req, d.wait(), done)
}

// exchangeFor is exchange waiting up to wait for the answer.
func (d *detector) exchangeFor(c net.Conn, req []byte, wait time.Duration, done func([]byte) bool) []byte {
	d.probes++
	c.SetWriteDeadline(time.Now().Add(d.cfg.timeout()))
	if len(req) > 0 {
		if _, err := c.Write(req); err != nil {
			d.err = err
			return nil
		}
	}
	b, closed := d.readAnswer(c, wait, done)
	d.last = b
	switch {
	case len(b) > 0:
		d.saw(b)
		d.quiet = 0
	case closed:
		d.closed++
		d.quiet = 0
	default:
		d.silent++
		d.quiet++
	}
	return b
}
