package sshwire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// Config is what a client connection needs. HostKeyCallback is required.
type Config struct {
	User            string
	HostKeyCallback ssh.HostKeyCallback
	// HostKeyAlgorithms in order of preference; nil: all that x/crypto/ssh
	// verifies.
	HostKeyAlgorithms []string
	// Ciphers in order of preference; those this package does not speak
	// are left out, and nil means all it speaks (see Supported).
	Ciphers []string
	// ClientVersion is the identification string sent ("SSH-2.0-...").
	ClientVersion string

	// Ways to log in, tried in this order where the server allows them.
	Signers             []ssh.Signer
	KeyboardInteractive ssh.KeyboardInteractiveChallenge
	Password            func() (string, error)
}

// Supported reports whether this package speaks cipher.
func Supported(cipher string) bool { _, ok := cipherKeyLen[cipher]; return ok }

func (cfg *Config) ciphers() []string {
	if cfg.Ciphers == nil {
		return []string{CipherAES128GCM, CipherAES256GCM}
	}
	var out []string
	for _, c := range cfg.Ciphers {
		if Supported(c) {
			out = append(out, c)
		}
	}
	return out
}

func (cfg *Config) hostKeyAlgorithms() []string {
	if len(cfg.HostKeyAlgorithms) > 0 {
		return cfg.HostKeyAlgorithms
	}
	return ssh.SupportedAlgorithms().HostKeys
}

// Conn is a client's SSH connection (RFC 4253, 4252, 4254): channels to
// addresses beyond the server (DialContext), ports the server listens on
// for us (Listen), and global requests. It is safe for concurrent use.
type Conn struct {
	t    *transport
	cfg  *Config
	addr string

	clientVersion, serverVersion []byte
	sessionID                    []byte
	hostKey                      []byte
	strict                       bool
	kexes                        atomic.Int32 // key exchanges done
	rekeyAt                      uint64       // bytes either way that start a key exchange: rekeyBytes when made
	serverSigAlgs                []string

	// Under t.wmu: the key exchange's hold on writing.
	kexing   bool
	kexDone  sync.Cond
	sentInit []byte  // our KEXINIT while an exchange runs
	sentKex  kexInit // and what it offered
	held     [][]byte
	werr     error

	reqMu   sync.Mutex // orders global requests and their replies
	mu      sync.Mutex // the fields below
	chans   map[uint32]*channel
	nextID  uint32
	replies []chan globalReply
	fwds    []*listener
	done    chan struct{}
	err     error
	failed  bool
}

// NewClientConn runs the SSH handshake and logs in over conn; addr is the
// server's address as the caller names it, for the HostKeyCallback. It
// fails with ErrNoCommonAlgorithm before writing anything when cfg allows
// none of the ciphers this package speaks, and after the server's KEXINIT
// when the server shares none. The caller closes conn to give up.
func NewClientConn(conn net.Conn, addr string, cfg *Config) (*Conn, error) {
	if len(cfg.ciphers()) == 0 {
		return nil, fmt.Errorf("ssh: %w: this transport speaks %s, the config allows %v", ErrNoCommonAlgorithm,
			CipherAES128GCM+" and "+CipherAES256GCM, cfg.Ciphers)
	}
	c := &Conn{
		t:       newTransport(conn),
		cfg:     cfg,
		addr:    addr,
		chans:   make(map[uint32]*channel),
		done:    make(chan struct{}),
		rekeyAt: rekeyBytes,
	}
	c.kexDone.L = &c.t.wmu
	c.clientVersion = []byte(cfg.ClientVersion)
	if len(c.clientVersion) == 0 {
		c.clientVersion = []byte("SSH-2.0-portctl")
	}
	if err := c.handshake(); err != nil {
		return nil, err
	}
	go c.loop()
	return c, nil
}

func (c *Conn) handshake() error {
	if _, err := c.t.conn.Write(append(bytes.Clone(c.clientVersion), '\r', '\n')); err != nil {
		return err
	}
	v, err := c.t.readVersion()
	if err != nil {
		return err
	}
	c.serverVersion = v
	c.t.wmu.Lock()
	err = c.startKexLocked()
	c.t.wmu.Unlock()
	if err != nil {
		return err
	}
	var p []byte
	for {
		if p, err = c.t.readPacket(); err != nil {
			return err
		}
		if p[0] == msgKexInit {
			break
		}
		if p[0] == msgDisconnect {
			return disconnectError(p)
		}
		if p[0] != msgIgnore && p[0] != msgDebug {
			return fmt.Errorf("ssh: message %d before the key exchange", p[0])
		}
	}
	if err := c.kex(bytes.Clone(p)); err != nil {
		return err
	}
	return c.authenticate()
}

// readVersion reads the server's identification line (RFC 4253, section
// 4.2), after any lines it sends before it.
func (t *transport) readVersion() ([]byte, error) {
	const maxLine = 255
	var first []byte // the first line that was not one, to name what answered
	notSSH := func(why string) error {
		if first != nil {
			return fmt.Errorf("ssh: not an SSH server: it sent %q, then %s", first, why)
		}
		return fmt.Errorf("ssh: the server %s before its identification", why)
	}
	for lines := 0; lines < 1024; lines++ {
		var line []byte
		for {
			if i := bytes.IndexByte(t.rbuf[t.rstart:t.rend], '\n'); i >= 0 {
				line = t.rbuf[t.rstart : t.rstart+i]
				t.rstart += i + 1
				break
			}
			if t.rend-t.rstart > maxLine+2 {
				if first == nil {
					return nil, fmt.Errorf("ssh: not an SSH server: its first line is too long (over %d bytes)", maxLine)
				}
				return nil, notSSH("a line too long to be an identification")
			}
			if err := t.fill(t.rend - t.rstart + 1); err != nil {
				switch {
				case err == io.EOF || err == io.ErrUnexpectedEOF:
					return nil, notSSH("closed the connection")
				case errors.Is(err, syscall.ECONNRESET):
					return nil, notSSH("reset the connection")
				}
				return nil, err
			}
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if bytes.HasPrefix(line, []byte("SSH-")) {
			if !bytes.HasPrefix(line, []byte("SSH-2.0-")) && !bytes.HasPrefix(line, []byte("SSH-1.99-")) {
				return nil, fmt.Errorf("ssh: the server speaks %q, not SSH 2", line)
			}
			return bytes.Clone(line), nil
		}
		if first == nil {
			first = bytes.Clone(line[:min(len(line), 80)])
		}
	}
	return nil, notSSH("no identification in 1,024 lines")
}

// write sends one message, waiting while a key exchange runs.
func (c *Conn) write(msg []byte) error {
	c.lockWrite()
	defer c.t.wmu.Unlock()
	return c.rekeyIfDueLocked(c.sendLocked(msg))
}

// writeData sends a CHANNEL_DATA message, building it in the transport's
// buffer: the data is copied once, into the packet it is sealed in.
func (c *Conn) writeData(remote uint32, data []byte) error {
	c.lockWrite()
	defer c.t.wmu.Unlock()
	p := c.t.packet()
	p.byte(msgChannelData)
	p.uint32(remote)
	p.bytes(data)
	return c.rekeyIfDueLocked(c.sealLocked(p))
}

// lockWrite takes t.wmu once no key exchange holds writing back.
func (c *Conn) lockWrite() {
	c.t.wmu.Lock()
	for c.kexing && c.werr == nil {
		c.kexDone.Wait()
	}
}

// rekeyIfDueLocked starts a key exchange after a send (whose error it
// passes on) when the bytes sent call for one. The caller holds t.wmu.
func (c *Conn) rekeyIfDueLocked(err error) error {
	if err == nil && c.rekeyDue(c.t.w.n) {
		err = c.startKexLocked()
	}
	return err
}

// rekeyDue reports whether n bytes one way call for a new key exchange.
func (c *Conn) rekeyDue(n uint64) bool { return n > c.rekeyAt }

// reply sends a message from the read loop, which must not wait for a key
// exchange it is itself running: during one the message is held and sent
// right after our NEWKEYS.
//
// It also serves channels' EOF and CLOSE, which a channel's send mutex
// orders after its data, and which the read loop may send itself (closing
// a channel whose opener gave up).
func (c *Conn) reply(msg []byte) error {
	c.t.wmu.Lock()
	defer c.t.wmu.Unlock()
	if c.kexing && c.werr == nil {
		c.held = append(c.held, bytes.Clone(msg))
		return nil
	}
	return c.sendLocked(msg)
}

// Wait blocks until the connection ends and returns why.
func (c *Conn) Wait() error {
	<-c.done
	return c.err
}

// Close ends the connection.
func (c *Conn) Close() error {
	err := c.t.conn.Close()
	c.fail(net.ErrClosed)
	return err
}

// fail ends the connection once: every channel, listener and request
// waiting on it sees the end.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.failed {
		c.mu.Unlock()
		return
	}
	c.failed = true
	c.err = err
	chans := c.chans
	c.chans = map[uint32]*channel{}
	replies := c.replies
	c.replies = nil
	fwds := c.fwds
	c.fwds = nil
	c.mu.Unlock()
	c.t.conn.Close()
	c.t.wmu.Lock()
	if c.werr == nil {
		c.werr = fmt.Errorf("ssh: connection lost: %w", err)
	}
	c.kexDone.Broadcast()
	c.t.wmu.Unlock()
	for _, ch := range chans {
		ch.lost(err)
	}
	for _, r := range replies {
		close(r)
	}
	for _, l := range fwds {
		l.end()
	}
	close(c.done)
}

// loop reads and handles every message after the handshake.
func (c *Conn) loop() {
	for {
		p, err := c.t.readPacket()
		if err == nil {
			err = c.handle(p)
		}
		if err == nil && c.rekeyDue(c.t.r.n) {
			c.t.wmu.Lock()
			err = c.startKexLocked()
			c.t.wmu.Unlock()
		}
		if err != nil {
			c.fail(err)
			return
		}
	}
}

func (c *Conn) handle(p []byte) error {
	switch p[0] {
	case msgChannelData:
		r := reader{b: p[1:]}
		id := r.uint32()
		data := r.bytes()
		if r.err != nil {
			return fmt.Errorf("ssh: CHANNEL_DATA: %w", r.err)
		}
		ch := c.channel(id)
		if ch == nil {
			return fmt.Errorf("ssh: data for channel %d, which is not open", id)
		}
		return ch.deliver(data, false)
	case msgExtendedData:
		r := reader{b: p[1:]}
		id := r.uint32()
		r.uint32()
		data := r.bytes()
		if r.err != nil {
			return fmt.Errorf("ssh: CHANNEL_EXTENDED_DATA: %w", r.err)
		}
		if ch := c.channel(id); ch != nil {
			return ch.deliver(data, true)
		}
		return fmt.Errorf("ssh: data for channel %d, which is not open", id)
	case msgWindowAdjust, msgChannelEOF, msgChannelClose, msgChannelRequest, msgOpenConfirm, msgOpenFailure, msgChannelSuccess, msgChannelFailure:
		return c.handleChannel(p)
	case msgChannelOpen:
		return c.handleOpen(p)
	case msgGlobalRequest:
		r := reader{b: p[1:]}
		r.string()
		if want := r.bool(); want && r.err == nil {
			c.reply([]byte{msgRequestFailure})
		}
		return nil
	case msgRequestSuccess, msgRequestFailure:
		c.mu.Lock()
		if len(c.replies) == 0 {
			c.mu.Unlock()
			return errors.New("ssh: a reply to a global request that was not made")
		}
		r := c.replies[0]
		c.replies = c.replies[1:]
		c.mu.Unlock()
		r <- globalReply{ok: p[0] == msgRequestSuccess, data: bytes.Clone(p[1:])}
		return nil
	case msgKexInit:
		return c.kex(bytes.Clone(p))
	case msgDisconnect:
		return disconnectError(p)
	case msgExtInfo:
		c.extInfo(p)
		return nil
	case msgIgnore, msgDebug, msgUnimplemented:
		return nil
	}
	w := writer{msgUnimplemented}
	w.uint32(c.t.r.seq - 1)
	c.reply(w)
	return nil
}

// extInfo reads the server's EXT_INFO (RFC 8308) for server-sig-algs.
func (c *Conn) extInfo(p []byte) {
	r := reader{b: p[1:]}
	n := r.uint32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		name := r.string()
		value := r.string() // for server-sig-algs, a name-list's content
		if name == "server-sig-algs" && r.err == nil {
			c.serverSigAlgs = strings.Split(value, ",")
		}
	}
}

// globalReply is a server's answer to a global request.
type globalReply struct {
	ok   bool
	data []byte
}

// SendRequest sends a global request and, with wantReply, waits for the
// answer: whether the server granted it, and what it returned.
func (c *Conn) SendRequest(name string, wantReply bool, payload []byte) (bool, []byte, error) {
	w := writer{msgGlobalRequest}
	w.string(name)
	w.bool(wantReply)
	w = append(w, payload...)
	var ch chan globalReply
	c.reqMu.Lock()
	if wantReply {
		ch = make(chan globalReply, 1)
		c.mu.Lock()
		if c.failed {
			c.mu.Unlock()
			c.reqMu.Unlock()
			return false, nil, c.lostErr()
		}
		c.replies = append(c.replies, ch)
		c.mu.Unlock()
	}
	err := c.write(w)
	c.reqMu.Unlock()
	if err != nil || !wantReply {
		return false, nil, err
	}
	r, ok := <-ch
	if !ok {
		return false, nil, c.lostErr()
	}
	return r.ok, r.data, nil
}

// lostErr is what calls fail with once the connection ended.
func (c *Conn) lostErr() error {
	<-c.done
	return fmt.Errorf("ssh: connection lost: %w", c.err)
}

// tcpAddress checks the network and parses "host:port" for a channel or
// a remote forward (op: dial or listen), as their type-specific data
// begins: the host, then the port.
func tcpAddress(op, network, addr string) (writer, string, uint32, error) {
	if !slices.Contains([]string{"tcp", "tcp4", "tcp6"}, network) {
		return nil, "", 0, fmt.Errorf("ssh: %s %s: network %q: want tcp", op, addr, network)
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", 0, fmt.Errorf("ssh: %s %s: %w", op, addr, err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return nil, "", 0, fmt.Errorf("ssh: %s %s: port %q: want a number 0-65535", op, addr, p)
	}
	var w writer
	w.string(host)
	w.uint32(uint32(port))
	return w, host, uint32(port), nil
}

// DialContext opens a channel to addr ("host:port") through the server
// (a direct-tcpip channel, what ssh -L opens). network must be tcp,
// tcp4 or tcp6; the server resolves the host.
func (c *Conn) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	w, host, port, err := tcpAddress("dial", network, addr)
	if err != nil {
		return nil, err
	}
	w.string("0.0.0.0")
	w.uint32(0)
	ch, err := c.open(ctx, "direct-tcpip", w)
	if err != nil {
		return nil, err
	}
	raddr := &net.TCPAddr{Port: int(port)}
	if ip := net.ParseIP(host); ip != nil {
		raddr.IP = ip
	}
	ch.laddr, ch.raddr = &net.TCPAddr{IP: net.IPv4zero}, raddr
	return ch, nil
}

// Speaks reports whether this package speaks the cipher a config with
// these Ciphers prefers (nil: its own choice): where it does not, a
// fuller implementation honours the preference.
func Speaks(ciphers []string) bool {
	return len(ciphers) == 0 || Supported(ciphers[0])
}
