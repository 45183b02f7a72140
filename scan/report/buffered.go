package report

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/portctl/portctl/scan"
)

// format is one of the formats that collect results per host and write a
// host at a time.
type format interface {
	name() string
	// checkMeta and checkResult report whether the format can write a
	// scan's meta or a result.
	checkMeta(Meta) error
	checkResult(scan.Result) error
	// begin, host and end write; errors of w stay in w, they return
	// those of encoding.
	begin(w *bufio.Writer, meta Meta) error
	host(w *bufio.Writer, h *host) error
	end(w *bufio.Writer, s Summary, total, up int) error
}

// buffered is a Writer over a format: it collects results per host and
// writes each host whole.
type buffered struct {
	mu     sync.Mutex
	f      format
	w      *bufio.Writer
	hosts  hosts
	start  time.Time // Meta.Start
	seen   int       // hosts written so far
	begun  bool
	ended  bool
	failed error // the first write error
}

func newBuffered(w io.Writer, f format) *buffered {
	return &buffered{f: f, w: bufio.NewWriter(w), hosts: newHosts()}
}

// Begin writes the report's header.
func (b *buffered) Begin(meta Meta) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return err
	}
	if b.begun {
		return fmt.Errorf("report: %s: Begin called twice", b.f.name())
	}
	if err := b.f.checkMeta(meta); err != nil {
		return fmt.Errorf("report: %s: %w", b.f.name(), err)
	}
	b.begun = true
	b.start = meta.Start
	return b.flush(b.f.begin(b.w, meta))
}

// Result collects r.
func (b *buffered) Result(r scan.Result) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return err
	}
	if err := b.started(); err != nil {
		return err
	}
	if err := checkResult(r); err != nil {
		return fmt.Errorf("report: %s: %w", b.f.name(), err)
	}
	if err := b.f.checkResult(r); err != nil {
		return fmt.Errorf("report: %s: %w", b.f.name(), err)
	}
	b.hosts.add(r)
	return nil
}

// HostDone writes the host of addr now, if it has results.
func (b *buffered) HostDone(addr netip.Addr) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return err
	}
	if err := b.started(); err != nil {
		return err
	}
	h := b.hosts.take(addr)
	if h == nil {
		return nil
	}
	b.seen++
	return b.flush(b.f.host(b.w, h))
}

// End writes the hosts not yet written and the footer.
func (b *buffered) End(s Summary) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.usable(); err != nil {
		return err
	}
	if err := b.started(); err != nil {
		return err
	}
	b.ended = true
	for _, h := range b.hosts.drain() {
		b.seen++
		if err := b.f.host(b.w, h); err != nil {
			return b.flush(err)
		}
	}
	if s.End.IsZero() {
		s.End = b.hosts.now()
	}
	s.Elapsed = elapsed(s, b.start)
	s.Exit = exit(s)
	total, up := hostCounts(s, b.seen)
	return b.flush(b.f.end(b.w, s, total, up))
}

func (b *buffered) usable() error {
	if b.ended {
		return ErrEnded
	}
	return b.failed
}

func (b *buffered) started() error {
	if !b.begun {
		return fmt.Errorf("report: %s: called before Begin", b.f.name())
	}
	return nil
}

// flush flushes w, unless encoding failed with err; the first error sticks.
func (b *buffered) flush(err error) error {
	if err != nil {
		b.failed = fmt.Errorf("report: %s: %w", b.f.name(), err)
	} else if err := b.w.Flush(); err != nil {
		b.failed = fmt.Errorf("report: %s: write: %w", b.f.name(), err)
	}
	return b.failed
}
