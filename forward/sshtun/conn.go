package sshtun

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/portctl/portctl/forward/sshtun/sshwire"
)

// conn is a tunnelled connection: it counts bytes for its host, tells a
// broken link from the far end closing, and adds deadlines, which SSH
// channels do not have.
type conn struct {
	net.Conn
	h      *Host
	l      *link
	once   sync.Once
	closed chan struct{}

	rmu      sync.Mutex // one Read at a time once deadlines are in use
	dmu      sync.Mutex
	rdl, wdl time.Time
	changed  chan struct{} // closed and replaced when the read deadline changes
	pump     chan chunk    // the channel's data, read ahead, once a read deadline was set
	left     []byte        // the rest of the last chunk
	leftErr  error
}

// chunk is what one read of the channel gave.
type chunk struct {
	b   []byte
	err error
}

// closeWriter is what ssh's channel connections implement.
type closeWriter interface{ CloseWrite() error }

func (h *Host) wrap(c net.Conn, l *link) *conn {
	h.conns.Add(1)
	h.active.Add(1)
	return &conn{Conn: c, h: h, l: l, closed: make(chan struct{}), changed: make(chan struct{})}
}

// lostErr turns the end of a read on a link that broke (io.EOF, or the
// transport's own error) into one error wrapping io.ErrUnexpectedEOF.
func (c *conn) lostErr(err error) error {
	if err == nil || !c.l.lost() {
		return err
	}
	if err == io.EOF {
		return fmt.Errorf("ssh %s: link lost: %w", c.h.chain.last(), io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("ssh %s: link lost (%v): %w", c.h.chain.last(), err, io.ErrUnexpectedEOF)
}

func (c *conn) Read(p []byte) (int, error) {
	c.dmu.Lock()
	pump := c.pump
	c.dmu.Unlock()
	if pump == nil {
		// No deadline ever: straight from the channel.
		n, err := c.Conn.Read(p)
		c.h.bytesIn.Add(uint64(n))
		return n, c.lostErr(err)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.left) == 0 && c.leftErr == nil {
		c.dmu.Lock()
		dl, changed := c.rdl, c.changed
		c.dmu.Unlock()
		var timeout <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case ch := <-pump:
			c.left, c.leftErr = ch.b, ch.err
		case <-timeout:
			return 0, os.ErrDeadlineExceeded
		case <-changed:
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	n := copy(p, c.left)
	c.left = c.left[n:]
	c.h.bytesIn.Add(uint64(n))
	if n == 0 && len(c.left) == 0 {
		return 0, c.lostErr(c.leftErr)
	}
	return n, nil
}

// readAhead reads the channel for Read once a read deadline is in use,
// until the channel ends or the connection is closed.
func (c *conn) readAhead(out chan<- chunk) {
	for {
		b := make([]byte, 32<<10)
		n, err := c.Conn.Read(b)
		select {
		case out <- chunk{b[:n], err}:
		case <-c.closed:
			return
		}
		if err != nil {
			return
		}
	}
}

// WriteTo writes what the channel receives to w until its end, straight
// from where the SSH transport holds it when the channel can (sshwire's),
// and while no read deadline was ever set.
func (c *conn) WriteTo(w io.Writer) (int64, error) {
	c.dmu.Lock()
	pump := c.pump
	c.dmu.Unlock()
	wt, ok := c.Conn.(io.WriterTo)
	if pump != nil || !ok {
		return Copy(w, struct{ io.Reader }{c})
	}
	n, err := wt.WriteTo(countingWriter{w, c.h})
	if c.l.lost() {
		if err == nil {
			err = io.EOF
		}
		err = c.lostErr(err)
	}
	return n, err
}

// countingWriter counts what it writes as received from the host.
type countingWriter struct {
	io.Writer
	h *Host
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	w.h.bytesIn.Add(uint64(n))
	return n, err
}

// TryWrite passes on the writer's own (sshwire.TryWriter), or takes
// nothing.
func (w countingWriter) TryWrite(p []byte) (int, error) {
	tw, ok := w.Writer.(sshwire.TryWriter)
	if !ok {
		return 0, nil
	}
	n, err := tw.TryWrite(p)
	w.h.bytesIn.Add(uint64(n))
	return n, err
}

// Socket is a TCP connection's reads and writes in raw system calls, with
// TryWrite, for relays in a tunnel process on one P (see rawio_linux.go).
type Socket interface {
	io.ReadWriter
	sshwire.TryWriter
}

// RawSocket returns c's raw reads and writes where c is TCP on Linux, and
// nil elsewhere.
func RawSocket(c net.Conn) Socket {
	if raw := newRawIO(c); raw != nil {
		return raw
	}
	return nil
}

// relayEnd is what Relay reads c through and writes c through: its raw
// reads and writes where c is TCP on Linux, or c itself.
func relayEnd(c net.Conn) io.ReadWriter {
	if s := RawSocket(c); s != nil {
		return s
	}
	return c
}

// SetReadDeadline makes a Read that waits past t fail with
// os.ErrDeadlineExceeded (a net.Error whose Timeout is true); the
// connection stays usable, as with TCP. The first call starts a goroutine
// that reads the channel ahead.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.rdl = t
	close(c.changed)
	c.changed = make(chan struct{})
	if c.pump == nil && !t.IsZero() {
		ch := make(chan chunk)
		c.pump = ch
		go c.readAhead(ch)
	}
	return nil
}

// SetWriteDeadline makes a Write that is still blocked at t (the far end
// not reading) fail with os.ErrDeadlineExceeded. Unlike TCP, the
// connection is closed then: part of the data may have gone, and the
// Write goes on in the background until the far end answers the close.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	c.wdl = t
	c.dmu.Unlock()
	return nil
}

// SetDeadline sets both deadlines.
func (c *conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *conn) Write(p []byte) (int, error) {
	c.dmu.Lock()
	dl := c.wdl
	c.dmu.Unlock()
	var n int
	var err error
	if dl.IsZero() {
		n, err = c.Conn.Write(p)
	} else {
		d := time.Until(dl)
		if d <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		type result struct {
			n   int
			err error
		}
		done := make(chan result, 1)
		go func() {
			n, err := c.Conn.Write(p)
			done <- result{n, err}
		}()
		t := time.NewTimer(d)
		select {
		case r := <-done:
			t.Stop()
			n, err = r.n, r.err
		case <-t.C:
			// The blocked write ends when the far end answers the close
			// (or the link goes); its bytes are counted then.
			c.Close()
			go func() { c.h.bytesOut.Add(uint64((<-done).n)) }()
			return 0, os.ErrDeadlineExceeded
		}
	}
	c.h.bytesOut.Add(uint64(n))
	if err != nil && c.l.lost() {
		err = fmt.Errorf("ssh %s: link lost: %w", c.h.chain.last(), err)
	}
	return n, err
}

// CloseWrite sends EOF to the far end; reading goes on.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return errors.New("ssh: connection cannot half-close")
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.h.active.Add(-1)
		close(c.closed)
	})
	return c.Conn.Close()
}

// Relay copies between a and b in both directions until both are done,
// passing on half-closes (CloseWrite), then closes both. When a direction
// fails (a read or write error, a broken SSH link) both connections are
// aborted at once, TCP ones with a reset, so that neither peer mistakes
// the failure for a clean end. It returns the bytes copied from a to b
// and from b to a, and the first error.
func Relay(a, b net.Conn) (ab, ba int64, err error) {
	var once sync.Once
	abort := func() {
		once.Do(func() {
			for _, c := range []net.Conn{a, b} {
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				c.Close()
			}
		})
	}
	var wg sync.WaitGroup
	var errAB, errBA error
	ra, rb := relayEnd(a), relayEnd(b)
	wg.Go(func() {
		ab, errAB = Copy(rb, ra)
		if errAB != nil || closeWrite(b) != nil {
			abort()
		}
	})
	ba, errBA = Copy(ra, rb)
	if errBA != nil || closeWrite(a) != nil {
		abort()
	}
	wg.Wait()
	a.Close()
	b.Close()
	if errAB != nil {
		return ab, ba, errAB
	}
	return ab, ba, errBA
}

// closeWrite passes a clean end of one direction on.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return errors.New("cannot half-close")
}

// relayBufs are Relay's copy buffers, io.Copy's size (an SSH packet holds
// 32 KiB at most), reused: short connections through a tunnel otherwise
// spend a good part of their CPU time allocating them and collecting them.
var relayBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Copy is Relay's copy: io.Copy through a pooled buffer, or the WriteTo of a
// tunnelled connection (which writes from where the SSH transport holds
// the data). The ReaderFrom and WriterTo shortcuts of TCP connections are
// skipped: towards an SSH channel they only fall back to io.Copy with a
// buffer of their own.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	if wt, ok := src.(io.WriterTo); ok {
		if _, tcp := src.(*net.TCPConn); !tcp {
			return wt.WriteTo(dst)
		}
	}
	bp := relayBufs.Get().(*[]byte)
	defer relayBufs.Put(bp)
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *bp)
}
