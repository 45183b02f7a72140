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
// passing on half-closes (CloseWrite), then closes both. It returns the
// bytes copied from a to b and from b to a, and the first error other
// than the ends closing normally.
func Relay(a, b net.Conn) (ab, ba int64, err error) {
	var wg sync.WaitGroup
	var errAB, errBA error
	wg.Go(func() {
		ab, errAB = io.Copy(b, a)
		halfClose(b, errAB)
	})
	ba, errBA = io.Copy(a, b)
	halfClose(a, errBA)
	wg.Wait()
	a.Close()
	b.Close()
	if errAB != nil {
		return ab, ba, errAB
	}
	return ab, ba, errBA
}

// halfClose passes the end of one direction on: EOF as CloseWrite, an
// error by closing (so the peer sees a failure, not a clean end).
func halfClose(c net.Conn, err error) {
	if err == nil {
		if cw, ok := c.(closeWriter); ok && cw.CloseWrite() == nil {
			return
		}
	}
	if tc, ok := c.(*net.TCPConn); ok && err != nil {
		tc.SetLinger(0) // a reset: the peer learns the transfer failed
	}
	c.Close()
}
