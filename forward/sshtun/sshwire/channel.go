package sshwire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Channels (RFC 4254, section 5).

const (
	// windowSize and maxData are what we let the server send on a channel
	// before it hears from us, and in one packet: OpenSSH's own for these
	// channels (2 MiB, 32 KiB).
	windowSize = 2 << 20
	maxData    = 32 << 10
	// blockSize is the size of the blocks received data waits in.
	blockSize = 32 << 10
)

// blocks holds the blocks that received data waits in, for reuse.
var blocks = sync.Pool{New: func() any { return new([blockSize]byte) }}

// channel is one SSH channel, as a net.Conn. Safe for concurrent use: one
// reader and one writer at a time, and Close from anywhere.
type channel struct {
	c             *Conn
	local, remote uint32
	laddr, raddr  net.Addr
	opened        chan error // the server's answer to our open, once

	mu   sync.Cond // its L guards the fields below; signalled on every change
	lock sync.Mutex

	// Receiving: data waits in blocks, the first read from head on.
	queue    [][]byte // each a block's filled part
	head     int
	window   uint32 // what the server may still send
	consumed uint32 // read since our last WINDOW_ADJUST
	eof      bool   // the server sent EOF or CLOSE
	err      error  // the connection's end, if it came first

	// Sending.
	txWindow  uint32
	maxPacket uint32
	sentEOF   bool
	closed    bool // Close was called: reading ends, data is dropped
	sentClose bool
	gotClose  bool
	abandoned bool // the opener gave up before the server answered

	// smu orders what goes out on the channel: data a Write checked the
	// channel open for goes before the EOF or CLOSE that follows; a CLOSE
	// owed to the server's, which the read loop cannot wait for smu to
	// send, is sent by whoever holds it next (see owe).
	smu       sync.Mutex
	closeOwed atomic.Bool
	busy      bool // WriteTo is writing from the first block

	// While WriteTo waits for data with a TryWriter, the read loop writes
	// what comes straight to it, from the read buffer (see deliver).
	sink    TryWriter
	sunk    int64 // bytes the read loop wrote to the sink, for WriteTo's count
	sinkErr error // the sink's failure, for WriteTo to return
}

// TryWriter is a writer that can also take bytes without waiting:
// TryWrite writes what it can of p at once, possibly nothing, and fails
// only when the writer is broken.
type TryWriter interface {
	io.Writer
	TryWrite(p []byte) (int, error)
}

func (c *Conn) newChannel() *channel {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed {
		return nil
	}
	for c.chans[c.nextID] != nil {
		c.nextID++
	}
	ch := &channel{c: c, local: c.nextID, window: windowSize, opened: make(chan error, 1)}
	ch.mu.L = &ch.lock
	c.nextID++
	c.chans[ch.local] = ch
	return ch
}

func (c *Conn) channel(id uint32) *channel {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chans[id]
}

func (c *Conn) forget(ch *channel) {
	c.mu.Lock()
	if c.chans[ch.local] == ch {
		delete(c.chans, ch.local)
	}
	c.mu.Unlock()
}

// open opens a channel of type kind with its type-specific data, and waits
// for the server's answer.
func (c *Conn) open(ctx context.Context, kind string, data []byte) (*channel, error) {
	ch := c.newChannel()
	if ch == nil {
		return nil, c.lostErr()
	}
	w := writer{msgChannelOpen}
	w.string(kind)
	w.uint32(ch.local)
	w.uint32(windowSize)
	w.uint32(maxData)
	w = append(w, data...)
	if err := c.write(w); err != nil {
		c.forget(ch)
		return nil, err
	}
	select {
	case err := <-ch.opened:
		if err != nil {
			return nil, err
		}
		return ch, nil
	case <-ctx.Done():
		// Under the lock, the read loop either answered already (and the
		// channel is closed here) or will see abandoned (and close it).
		ch.lock.Lock()
		ch.abandoned = true
		var answered, ok bool
		select {
		case err := <-ch.opened:
			answered, ok = true, err == nil
		default:
		}
		ch.lock.Unlock()
		if answered && ok {
			ch.Close()
		}
		return nil, ctx.Err()
	}
}

// handleChannel handles the messages about an open channel.
func (c *Conn) handleChannel(p []byte) error {
	r := reader{b: p[1:]}
	id := r.uint32()
	if r.err != nil {
		return fmt.Errorf("ssh: channel message %d: %w", p[0], r.err)
	}
	ch := c.channel(id)
	if ch == nil {
		return fmt.Errorf("ssh: message %d for channel %d, which is not open", p[0], id)
	}
	switch p[0] {
	case msgOpenConfirm:
		remote, window, maxPacket := r.uint32(), r.uint32(), r.uint32()
		if r.err != nil {
			return fmt.Errorf("ssh: OPEN_CONFIRMATION: %w", r.err)
		}
		ch.lock.Lock()
		ch.remote, ch.txWindow, ch.maxPacket = remote, window, min(maxPacket, maxData)
		if ch.maxPacket == 0 {
			ch.maxPacket = 1
		}
		abandoned := ch.abandoned
		if !abandoned {
			ch.answer(nil)
		}
		ch.lock.Unlock()
		if abandoned {
			ch.Close()
		}
	case msgOpenFailure:
		reason := r.uint32()
		msg := r.string()
		c.forget(ch)
		ch.lock.Lock()
		ch.answer(&ssh.OpenChannelError{Reason: ssh.RejectionReason(reason), Message: msg})
		ch.lock.Unlock()
	case msgWindowAdjust:
		n := r.uint32()
		ch.lock.Lock()
		ch.txWindow = uint32(min(uint64(ch.txWindow)+uint64(n), 1<<32-1))
		ch.mu.Broadcast()
		ch.lock.Unlock()
	case msgChannelEOF:
		ch.lock.Lock()
		ch.eof = true
		ch.mu.Broadcast()
		ch.lock.Unlock()
	case msgChannelClose:
		ch.lock.Lock()
		ch.eof, ch.gotClose = true, true
		sent := ch.sentClose
		ch.sentClose = true
		ch.mu.Broadcast()
		ch.lock.Unlock()
		c.forget(ch)
		if !sent {
			ch.owe()
		}
	case msgChannelRequest:
		r.string()
		if r.bool() && r.err == nil {
			w := writer{msgChannelFailure}
			w.uint32(ch.remote)
			c.reply(w)
		}
	}
	return nil
}

// deliver queues data the server sent on the channel; extended data
// (stderr) is counted against the window and dropped.
func (ch *channel) deliver(data []byte, extended bool) error {
	var adjust writer
	defer func() { ch.send(adjust) }() // after the unlock below
	ch.lock.Lock()
	defer ch.lock.Unlock()
	n := uint32(len(data))
	if n > ch.window {
		return fmt.Errorf("ssh: the server sent %d bytes on channel %d with %d left in its window", n, ch.local, ch.window)
	}
	ch.window -= n
	if ch.closed || extended {
		ch.consumed += n // nobody will read it
		adjust = ch.adjustLocked()
		return nil
	}
	if ch.sink != nil && !ch.buffered() {
		// WriteTo waits: write straight from the read buffer, as a
		// single-threaded ssh would, without a copy or a wakeup. Only
		// what the sink cannot take now waits in blocks, for WriteTo.
		m, err := ch.sink.TryWrite(data)
		ch.sunk += int64(m)
		ch.consumed += uint32(m)
		data = data[m:]
		if err != nil {
			ch.sinkErr = err
			ch.consumed += uint32(len(data)) // dropped: the relay is over
			data = nil
		}
		adjust = ch.adjustLocked()
		if len(data) == 0 && err == nil {
			return nil
		}
		ch.sink = nil
	}
	for len(data) > 0 {
		last := len(ch.queue) - 1
		if last < 0 || len(ch.queue[last]) == cap(ch.queue[last]) {
			ch.queue = append(ch.queue, blocks.Get().(*[blockSize]byte)[:0])
			last++
		}
		b := ch.queue[last]
		m := copy(b[len(b):cap(b)], data)
		ch.queue[last] = b[:len(b)+m]
		data = data[m:]
	}
	ch.mu.Broadcast()
	return nil
}

// adjustLocked gives the server back the window read so far once half of
// it is, as OpenSSH does: it returns the WINDOW_ADJUST to send, or nil.
// The caller holds ch.lock, and sends the message (Conn.reply) after
// dropping it.
func (ch *channel) adjustLocked() writer {
	if ch.consumed < windowSize/2 || ch.sentClose || ch.gotClose {
		return nil
	}
	w := writer{msgWindowAdjust}
	w.uint32(ch.remote)
	w.uint32(ch.consumed)
	ch.window += ch.consumed
	ch.consumed = 0
	return w
}

// send sends a message built under ch.lock, once it is dropped.
func (ch *channel) send(w writer) {
	if w != nil {
		ch.c.reply(w)
	}
}

// buffered reports whether received data waits in the blocks. The caller
// holds ch.lock.
func (ch *channel) buffered() bool {
	// The first block may be one read to its end and kept for reuse.
	return len(ch.queue) > 0 && ch.head < len(ch.queue[0])
}

// next waits for received data and returns the first block's unread part;
// at the end, io.EOF, or the connection's loss when that came before the
// server's EOF.
func (ch *channel) next() ([]byte, error) {
	for !ch.buffered() && !ch.eof && !ch.closed && ch.err == nil {
		ch.mu.Wait()
	}
	switch {
	case ch.closed:
		return nil, io.EOF
	case ch.buffered():
		return ch.queue[0][ch.head:], nil
	case !ch.eof && ch.err != nil:
		return nil, ch.err
	}
	return nil, io.EOF
}

// consume marks n bytes of the first block read, and returns the
// WINDOW_ADJUST to send once ch.lock is dropped, or nil.
func (ch *channel) consume(n int) writer {
	ch.head += n
	if ch.head == len(ch.queue[0]) {
		if len(ch.queue) == 1 && len(ch.queue[0]) < cap(ch.queue[0]) {
			ch.queue[0] = ch.queue[0][:0] // the one block, still filling: reuse it
		} else {
			blocks.Put((*[blockSize]byte)(ch.queue[0][:blockSize]))
			ch.queue[0] = nil
			ch.queue = ch.queue[1:]
		}
		ch.head = 0
	}
	ch.consumed += uint32(n)
	return ch.adjustLocked()
}

func (ch *channel) Read(p []byte) (int, error) {
	ch.lock.Lock()
	b, err := ch.next()
	if err != nil {
		ch.lock.Unlock()
		return 0, err
	}
	n := copy(p, b)
	adjust := ch.consume(n)
	ch.lock.Unlock()
	ch.send(adjust)
	return n, nil
}

// WriteTo writes what the channel receives to w until the server's EOF,
// straight from the blocks it waits in; when w is a TryWriter, the read
// loop writes what comes while WriteTo waits to w itself (see deliver).
func (ch *channel) WriteTo(w io.Writer) (int64, error) {
	tw, _ := w.(TryWriter)
	var total int64
	ch.lock.Lock()
	defer ch.lock.Unlock()
	defer func() { ch.sink = nil }()
	for {
		for tw != nil && !ch.buffered() && !ch.eof && !ch.closed && ch.err == nil && ch.sinkErr == nil {
			ch.sink = tw
			ch.mu.Wait()
			ch.sink = nil
		}
		total += ch.sunk
		ch.sunk = 0
		if err := ch.sinkErr; err != nil {
			ch.sinkErr = nil
			return total, err
		}
		b, err := ch.next()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		ch.busy = true
		ch.lock.Unlock()
		n, err := w.Write(b) // the read loop only appends past b
		ch.lock.Lock()
		ch.busy = false
		total += int64(n)
		if ch.closed { // Close left the first block to us
			ch.release()
			return total, err
		}
		if adjust := ch.consume(n); adjust != nil {
			ch.lock.Unlock()
			ch.send(adjust)
			ch.lock.Lock()
		}
		if err != nil {
			return total, err
		}
	}
}

func (ch *channel) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		ch.lock.Lock()
		for ch.txWindow == 0 && !ch.sentEOF && !ch.closed && !ch.gotClose && ch.err == nil {
			ch.mu.Wait()
		}
		if err := ch.stoppedLocked(); err != nil {
			ch.lock.Unlock()
			return written, err
		}
		n := uint32(min(len(p), int(ch.txWindow), int(ch.maxPacket)))
		ch.txWindow -= n
		remote := ch.remote
		ch.lock.Unlock()

		ch.smu.Lock()
		ch.lock.Lock()
		err := ch.stoppedLocked() // closed meanwhile: its CLOSE went first
		ch.lock.Unlock()
		if err == nil {
			err = ch.c.writeData(remote, p[:n])
		}
		ch.smu.Unlock()
		ch.payOwed()
		if err != nil {
			return written, err
		}
		written += int(n)
		p = p[n:]
	}
	return written, nil
}

// stoppedLocked says why no more data may go out, or nil. The caller
// holds ch.lock.
func (ch *channel) stoppedLocked() error {
	switch {
	case ch.err != nil:
		return ch.err
	case ch.sentEOF || ch.closed || ch.gotClose:
		return io.EOF
	}
	return nil
}

// CloseWrite sends EOF: the server's side sees the end of what we send,
// and reading goes on.
func (ch *channel) CloseWrite() error {
	ch.lock.Lock()
	if ch.sentEOF || ch.closed || ch.gotClose || ch.err != nil {
		ch.lock.Unlock()
		return nil
	}
	ch.sentEOF = true
	ch.mu.Broadcast()
	ch.lock.Unlock()
	w := writer{msgChannelEOF}
	w.uint32(ch.remote)
	ch.smu.Lock()
	err := ch.c.reply(w)
	ch.smu.Unlock()
	ch.payOwed()
	return err
}

// Close closes the channel both ways; data still waiting is dropped.
func (ch *channel) Close() error {
	ch.lock.Lock()
	if ch.closed {
		ch.lock.Unlock()
		return nil
	}
	ch.closed = true
	if !ch.busy {
		ch.release()
	}
	send := !ch.sentClose && ch.err == nil
	ch.sentClose = true
	ch.mu.Broadcast()
	ch.lock.Unlock()
	if !send {
		return nil
	}
	w := writer{msgChannelClose}
	w.uint32(ch.remote)
	ch.smu.Lock()
	defer ch.smu.Unlock()
	return ch.c.reply(w) // not waiting for a key exchange: the read loop closes channels too
}

// owe has the CLOSE that answers the server's sent after any data a Write
// is sending: now, if no Write is, or by that Write when it is done.
func (ch *channel) owe() {
	ch.closeOwed.Store(true)
	ch.payOwed()
}

func (ch *channel) payOwed() {
	if !ch.closeOwed.Load() || !ch.smu.TryLock() {
		return
	}
	if ch.closeOwed.Swap(false) {
		w := writer{msgChannelClose}
		w.uint32(ch.remote)
		ch.c.reply(w)
	}
	ch.smu.Unlock()
}

// release gives the blocks of data still waiting back. The caller holds
// ch.lock.
func (ch *channel) release() {
	for _, b := range ch.queue {
		blocks.Put((*[blockSize]byte)(b[:blockSize]))
	}
	ch.queue, ch.head = nil, 0
}

// lost ends the channel with its connection.
func (ch *channel) lost(err error) {
	ch.lock.Lock()
	ch.err = fmt.Errorf("ssh: connection lost: %w", err)
	ch.answer(ch.err)
	ch.mu.Broadcast()
	ch.lock.Unlock()
}

// answer passes on the server's answer to our open (or the connection's
// end); only the first counts.
func (ch *channel) answer(err error) {
	select {
	case ch.opened <- err:
	default:
	}
}

func (ch *channel) LocalAddr() net.Addr  { return ch.laddr }
func (ch *channel) RemoteAddr() net.Addr { return ch.raddr }

// errNoDeadline: SSH channels have no deadlines of their own.
var errNoDeadline = errors.New("ssh: channels have no deadlines")

func (ch *channel) SetDeadline(time.Time) error      { return errNoDeadline }
func (ch *channel) SetReadDeadline(time.Time) error  { return errNoDeadline }
func (ch *channel) SetWriteDeadline(time.Time) error { return errNoDeadline }
