package sshwire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func FuzzParseKexInit(f *testing.F) {
	c := &Conn{cfg: &Config{}}
	for _, first := range []bool{true, false} {
		msg, _ := c.kexInitMsg(first)
		f.Add([]byte(msg), "", "", first)
	}
	f.Add([]byte{msgKexInit}, "ssh-ed25519,rsa-sha2-256", CipherAES256GCM+",aes128-ctr", true)
	f.Add(make([]byte, 17+40), "a,,b", ",", false)
	f.Add([]byte{msgKexInit, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, "x", "", true)
	f.Fuzz(func(t *testing.T, data []byte, hostKeys, ciphers string, first bool) {
		if k, err := parseKexInit(data); err == nil {
			// What parsed is what the message held: a second parse agrees.
			k2, _ := parseKexInit(slices.Clone(data))
			if !slices.Equal(k.kex, k2.kex) || !slices.Equal(k.cipherSC, k2.cipherSC) {
				t.Fatalf("parseKexInit is not deterministic")
			}
		}

		cfg := &Config{}
		for _, h := range strings.Split(hostKeys, ",") {
			if h != "" {
				cfg.HostKeyAlgorithms = append(cfg.HostKeyAlgorithms, h)
			}
		}
		if ciphers != "" {
			cfg.Ciphers = strings.Split(ciphers, ",")
		}
		c := &Conn{cfg: cfg}
		msg, sent := c.kexInitMsg(first)
		got, err := parseKexInit(msg)
		if err != nil {
			t.Fatalf("parseKexInit(kexInitMsg) = %v; want nil", err)
		}
		for _, fl := range []struct {
			name      string
			got, want []string
		}{
			{"kex", got.kex, sent.kex},
			{"host keys", got.hostKey, sent.hostKey},
			{"ciphers c2s", got.cipherCS, sent.cipherCS},
			{"ciphers s2c", got.cipherSC, sent.cipherSC},
		} {
			if !slices.Equal(fl.got, fl.want) {
				t.Fatalf("%s = %q; want %q", fl.name, fl.got, fl.want)
			}
		}
		if got.follows {
			t.Fatalf("follows = true; want false")
		}
		if slices.Contains(sent.kex, kexStrictClient) != first || slices.Contains(sent.kex, kexExtInfoClient) != first {
			t.Fatalf("kex %q with first %v; want the extensions only in the first", sent.kex, first)
		}
		for _, ci := range sent.cipherCS {
			if !Supported(ci) {
				t.Fatalf("offered cipher %q, which is not supported", ci)
			}
		}
		// Negotiating against itself picks the first of each.
		a, err := negotiate(sent, got)
		if len(sent.cipherCS) == 0 || len(sent.hostKey) == 0 {
			if !errors.Is(err, ErrNoCommonAlgorithm) {
				t.Fatalf("negotiate with nothing offered = %v; want ErrNoCommonAlgorithm", err)
			}
			return
		}
		if err != nil || a.kex != sent.kex[0] || a.hostKey != sent.hostKey[0] || a.cipherCS != sent.cipherCS[0] || a.cipherSC != sent.cipherSC[0] {
			t.Fatalf("negotiate with itself = %+v, %v; want the first of each", a, err)
		}
	})
}

func FuzzReader(f *testing.F) {
	var w writer
	w.byte(7)
	w.bool(true)
	w.uint32(42)
	w.string("hello")
	w.nameList([]string{"a", "bc", ""})
	w.bytes(nil)
	f.Add([]byte(w), []byte{0, 1, 2, 3, 5, 4})
	f.Add([]byte{0, 0, 0, 5, 'a', ','}, []byte{5, 5})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, []byte{3, 0})
	f.Add([]byte{}, []byte{0, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, data []byte, ops []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		r := reader{b: data}
		for _, op := range ops {
			failed := r.err != nil
			off := len(data) - len(r.b) // where this field starts
			switch op % 6 {
			case 0:
				v := r.byte()
				if r.err == nil && v != data[off] {
					t.Fatalf("byte = %d; want %d", v, data[off])
				}
			case 1:
				r.bool()
			case 2:
				v := r.uint32()
				if r.err == nil && v != binary.BigEndian.Uint32(data[off:]) {
					t.Fatalf("uint32 = %d; want %d", v, binary.BigEndian.Uint32(data[off:]))
				}
			case 3, 4:
				var v []byte
				if op%6 == 3 {
					v = r.bytes()
				} else {
					v = []byte(r.string())
				}
				if r.err == nil {
					if !bytes.Equal(v, data[off+4:off+4+len(v)]) {
						t.Fatalf("bytes = %q; want %q", v, data[off+4:off+4+len(v)])
					}
					if op%6 == 3 && cap(v) != len(v) {
						t.Fatalf("bytes has cap %d > len %d: an append would overwrite the message", cap(v), len(v))
					}
				} else if len(v) != 0 {
					t.Fatalf("bytes after a failure = %q; want nothing", v)
				}
			case 5:
				v := r.nameList()
				if r.err == nil {
					n := int(binary.BigEndian.Uint32(data[off:]))
					if got := strings.Join(v, ","); got != string(data[off+4:off+4+n]) {
						t.Fatalf("nameList = %q; want %q split", v, data[off+4:off+4+n])
					}
				}
			}
			if failed && r.err == nil {
				t.Fatalf("the reader's failure did not stick")
			}
			if r.err != nil && len(r.b) != 0 {
				t.Fatalf("after a failure %d bytes remain; want none", len(r.b))
			}
			if len(r.b) > len(data) {
				t.Fatalf("reader holds %d bytes of a %d-byte message", len(r.b), len(data))
			}
		}
	})
}

// bytesConn is a net.Conn that reads from a reader at most chunk bytes
// at a time and collects what is written.
type bytesConn struct {
	r     io.Reader
	chunk int
	w     bytes.Buffer
}

func (c *bytesConn) Read(p []byte) (int, error) {
	if c.r == nil {
		return 0, io.EOF
	}
	return c.r.Read(p[:min(len(p), c.chunk)])
}
func (c *bytesConn) Write(p []byte) (int, error)      { return c.w.Write(p) }
func (c *bytesConn) Close() error                     { return nil }
func (c *bytesConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *bytesConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }

// Fixed keys for FuzzReadPacket's encrypted streams.
var (
	fuzzKey = bytes.Repeat([]byte{0x5a}, 16)
	fuzzIV  = bytes.Repeat([]byte{0xa5}, gcmIVSize)
)

// sealed returns payloads as the packets a transport sends, in the clear
// or with fuzzKey.
func sealed(encrypted bool, payloads ...[]byte) []byte {
	conn := &bytesConn{}
	t := newTransport(conn)
	if encrypted {
		t.w.setKey(fuzzKey, fuzzIV)
	}
	for _, p := range payloads {
		w := t.packet()
		w = append(w, p...)
		t.send(w)
	}
	return conn.w.Bytes()
}

func FuzzReadPacket(f *testing.F) {
	for _, enc := range []bool{false, true} {
		f.Add(sealed(enc, []byte{msgIgnore}), uint16(1), enc)
		f.Add(sealed(enc, []byte{msgChannelData, 0, 0, 0, 1, 0, 0, 0, 3, 'a', 'b', 'c'}, []byte{msgIgnore, 1, 2}), uint16(7), enc)
		f.Add(sealed(enc, bytes.Repeat([]byte{msgChannelData}, 40000)), uint16(4096), enc)
	}
	f.Add([]byte{0, 0, 0, 4, 4, 0, 0, 0}, uint16(3), false)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint16(100), false)
	f.Add([]byte{0, 0, 0, 16, 4}, uint16(100), true)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16, encrypted bool) {
		// Arbitrary bytes: an error or payloads within bounds.
		conn := &bytesConn{r: bytes.NewReader(data), chunk: max(1, int(chunk))}
		tr := newTransport(conn)
		if encrypted {
			tr.r.setKey(fuzzKey, fuzzIV)
		}
		for range 1000 {
			p, err := tr.readPacket()
			if err != nil {
				break
			}
			if len(p) < 1 || len(p) > maxPacket {
				t.Fatalf("payload of %d bytes; want 1 to %d", len(p), maxPacket)
			}
			if tr.rstart > tr.rend || tr.rend > len(tr.rbuf) {
				t.Fatalf("read buffer bounds %d:%d of %d", tr.rstart, tr.rend, len(tr.rbuf))
			}
		}

		// The data as a payload: what is sent is what is read.
		if len(data) == 0 || len(data) > maxPacket-64 {
			return
		}
		stream := sealed(encrypted, data, data[:1])
		conn = &bytesConn{r: bytes.NewReader(stream), chunk: max(1, int(chunk))}
		tr = newTransport(conn)
		if encrypted {
			tr.r.setKey(fuzzKey, fuzzIV)
		}
		for _, want := range [][]byte{data, data[:1]} {
			p, err := tr.readPacket()
			if err != nil || !bytes.Equal(p, want) {
				t.Fatalf("readPacket = %d bytes, %v; want the %d sent", len(p), err, len(want))
			}
		}
		if _, err := tr.readPacket(); err != io.EOF {
			t.Fatalf("readPacket at the end = %v; want EOF", err)
		}
	})
}

// fuzzConn is a Conn after its handshake, as FuzzHandle starts from:
// channel 0 open (remote 5), 1 waiting for the server's answer, 2 given
// up by its opener; a remote forward on 127.0.0.1:4242 and one on port 0
// waiting for its port; a global request waiting for its reply. Its
// connection discards what is written and reads EOF.
func fuzzConn() *Conn {
	c := newTestConn(&bytesConn{})
	open := c.newChannel()
	open.remote, open.txWindow, open.maxPacket = 5, 1000, 100
	open.answer(nil)
	c.newChannel()
	abandoned := c.newChannel()
	abandoned.abandoned = true
	for _, port := range []uint32{4242, 0} {
		l := &listener{c: c, host: "127.0.0.1", port: port, addr: &net.TCPAddr{Port: int(port)}, conns: make(chan *channel, acceptQueue), done: make(chan struct{})}
		c.fwds = append(c.fwds, l)
	}
	c.replies = append(c.replies, make(chan globalReply, 1))
	return c
}

// fuzzMessages splits data into messages, each prefixed by its length
// in one byte.
func fuzzMessages(data []byte) [][]byte {
	var msgs [][]byte
	for len(data) > 0 {
		n := min(int(data[0]), len(data)-1)
		msgs = append(msgs, data[1:1+n])
		data = data[1+n:]
	}
	return msgs
}

// joinMessages is fuzzMessages's inverse, for the seeds.
func joinMessages(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = append(out, byte(len(m)))
		out = append(out, m...)
	}
	return out
}

func FuzzHandle(f *testing.F) {
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	str := func(s string) []byte { return append(u32(uint32(len(s))), s...) }
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	msg := func(n byte, parts ...[]byte) []byte { return cat(append([][]byte{{n}}, parts...)...) }
	kexinit, _ := (&Conn{cfg: &Config{HostKeyAlgorithms: []string{ssh.KeyAlgoED25519}}}).kexInitMsg(false)
	seeds := [][]byte{
		msg(msgChannelData, u32(0), str("hello")),
		msg(msgChannelData, u32(9), str("x")),
		msg(msgExtendedData, u32(0), u32(1), str("err")),
		msg(msgWindowAdjust, u32(0), u32(100)),
		msg(msgWindowAdjust, u32(0), u32(0xffffffff)),
		msg(msgChannelEOF, u32(0)),
		msg(msgChannelClose, u32(0)),
		msg(msgChannelRequest, u32(0), str("exit-status"), []byte{1}, u32(0)),
		msg(msgOpenConfirm, u32(1), u32(7), u32(1000), u32(0)),
		msg(msgOpenConfirm, u32(2), u32(8), u32(1000), u32(1000)),
		msg(msgOpenFailure, u32(1), u32(2), str("no"), str("")),
		msg(msgChannelSuccess, u32(0)),
		msg(msgChannelOpen, str("forwarded-tcpip"), u32(3), u32(1<<20), u32(1<<15), str("127.0.0.1"), u32(4242), str("10.0.0.1"), u32(5)),
		msg(msgChannelOpen, str("forwarded-tcpip"), u32(3), u32(1<<20), u32(1<<15), str("127.0.0.1"), u32(1), str("::1"), u32(5)),
		msg(msgChannelOpen, str("session"), u32(3), u32(1<<20), u32(1<<15)),
		msg(msgGlobalRequest, str("keepalive@openssh.com"), []byte{1}),
		msg(msgRequestSuccess, u32(4242)),
		msg(msgRequestFailure),
		msg(msgExtInfo, u32(1), str("server-sig-algs"), str("rsa-sha2-256,ssh-ed25519")),
		msg(msgDisconnect, u32(11), str("bye"), str("")),
		msg(msgIgnore, str("")),
		msg(msgUnimplemented, u32(3)),
		{200},
		[]byte(kexinit),
	}
	for _, s := range seeds {
		f.Add(joinMessages(s))
	}
	f.Add(joinMessages(seeds[0], seeds[3], seeds[5], seeds[6], seeds[12], seeds[16], seeds[17]))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := fuzzConn()
		for _, m := range fuzzMessages(data) {
			if len(m) == 0 {
				continue // readPacket never returns an empty payload
			}
			if err := c.handle(m); err != nil {
				c.fail(err)
				break
			}
		}
		c.Close()
		select {
		case <-c.done:
		default:
			t.Fatalf("Close did not end the connection")
		}
	})
}

// TestFuzzConnHandles checks that FuzzHandle's seeds do what they should
// on the connection it builds.
func TestFuzzConnHandles(t *testing.T) {
	c := fuzzConn()
	var w writer
	w.byte(msgChannelData)
	w.uint32(0)
	w.string("hello")
	if err := c.handle(w); err != nil {
		t.Fatalf("handle(CHANNEL_DATA) = %v; want nil", err)
	}
	ch := c.channel(0)
	buf := make([]byte, 10)
	if n, err := ch.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v; want hello, nil", buf[:n], err)
	}
	w = writer{msgExtInfo}
	w.uint32(1)
	w.string("server-sig-algs")
	w.string("rsa-sha2-256,ssh-ed25519")
	if err := c.handle(w); err != nil || !slices.Equal(c.serverSigAlgs, []string{"rsa-sha2-256", "ssh-ed25519"}) {
		t.Fatalf("handle(EXT_INFO) = %v; server-sig-algs %q", err, c.serverSigAlgs)
	}
	if alg, sigAlg := c.signingAlgorithm(rsaKey()); alg != ssh.KeyAlgoRSASHA256 || sigAlg != ssh.KeyAlgoRSASHA256 {
		t.Errorf("signingAlgorithm(RSA) = %q, %q; want rsa-sha2-256 twice", alg, sigAlg)
	}
	c.serverSigAlgs = nil
	if alg, sigAlg := c.signingAlgorithm(rsaKey()); alg != ssh.KeyAlgoRSA || sigAlg != "" {
		t.Errorf("signingAlgorithm(RSA) without server-sig-algs = %q, %q; want ssh-rsa", alg, sigAlg)
	}
	c.Close()
}
