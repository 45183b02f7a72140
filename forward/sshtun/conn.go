package sshtun

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// conn is a tunnelled connection: it counts bytes for its host and tells
// a broken link from the far end closing.
type conn struct {
	net.Conn
	h    *Host
	l    *link
	once sync.Once
}

// closeWriter is what ssh's channel connections implement.
type closeWriter interface{ CloseWrite() error }

func (h *Host) wrap(c net.Conn, l *link) *conn {
	h.conns.Add(1)
	h.active.Add(1)
	return &conn{Conn: c, h: h, l: l}
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.h.bytesIn.Add(uint64(n))
	if err == io.EOF && c.l.lost() {
		err = fmt.Errorf("ssh %s: link lost: %w", c.h.chain.last(), io.ErrUnexpectedEOF)
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
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
	c.once.Do(func() { c.h.active.Add(-1) })
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
	wg.Go(func() {
		ab, errAB = copyBuf(b, a)
		if errAB != nil || closeWrite(b) != nil {
			abort()
		}
	})
	ba, errBA = copyBuf(a, b)
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

// copyBuf is io.Copy through a pooled buffer. The ReaderFrom and WriterTo
// shortcuts are skipped: between a TCP connection and an SSH channel they
// only fall back to io.Copy with a buffer of their own.
func copyBuf(dst io.Writer, src io.Reader) (int64, error) {
	bp := relayBufs.Get().(*[]byte)
	defer relayBufs.Put(bp)
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *bp)
}
