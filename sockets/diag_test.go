package sockets

import (
	"encoding/binary"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// update rewrites testdata captured from the running kernel
// (diag_linux_test.go).
var update = flag.Bool("update", false, "capture testdata/*.bin from the running kernel's sock_diag")

// equateAddrs lets cmp compare netip values, whose fields are unexported.
var equateAddrs = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})

// The builders below encode what the kernel sends, from the uapi headers,
// independently of the code under test.

// nlMsg encodes one netlink message: a struct nlmsghdr
// (include/uapi/linux/netlink.h: u32 len, u16 type, u16 flags, u32 seq,
// u32 pid, native-endian) followed by body, padded to 4 bytes. The length
// field counts the header and body, not the padding.
func nlMsg(typ, flags uint16, body []byte) []byte {
	b := make([]byte, 16, 16+len(body)+3)
	binary.NativeEndian.PutUint32(b[0:4], uint32(16+len(body)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	binary.NativeEndian.PutUint16(b[6:8], flags)
	binary.NativeEndian.PutUint32(b[8:12], 1)     // seq
	binary.NativeEndian.PutUint32(b[12:16], 4242) // port id
	b = append(b, body...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

const nlmFMulti = 0x2 // NLM_F_MULTI: every message of a dump carries it

// diagMsg is one struct inet_diag_msg (include/uapi/linux/inet_diag.h):
//
//	u8 family, state, timer, retrans
//	struct inet_diag_sockid { be16 sport, dport; be32 src[4], dst[4]; u32 if; u32 cookie[2] }
//	u32 expires, rqueue, wqueue, uid, inode
//
// followed by attrs, already encoded with rtattr.
type diagMsg struct {
	family, state, timer, retrans uint8
	sport, dport                  uint16
	src, dst                      netip.Addr
	ifindex                       uint32
	cookie                        [2]uint32
	expires, rqueue, wqueue       uint32
	uid, inode                    uint32
	attrs                         []byte
}

func (m diagMsg) encode() []byte {
	b := make([]byte, 72, 72+len(m.attrs))
	b[0], b[1], b[2], b[3] = m.family, m.state, m.timer, m.retrans
	binary.BigEndian.PutUint16(b[4:6], m.sport)
	binary.BigEndian.PutUint16(b[6:8], m.dport)
	if m.src.IsValid() {
		s := m.src.AsSlice() // 4 bytes for IPv4: the rest of src[4] stays zero
		copy(b[8:24], s)
	}
	if m.dst.IsValid() {
		copy(b[24:40], m.dst.AsSlice())
	}
	binary.NativeEndian.PutUint32(b[40:44], m.ifindex)
	binary.NativeEndian.PutUint32(b[44:48], m.cookie[0])
	binary.NativeEndian.PutUint32(b[48:52], m.cookie[1])
	binary.NativeEndian.PutUint32(b[52:56], m.expires)
	binary.NativeEndian.PutUint32(b[56:60], m.rqueue)
	binary.NativeEndian.PutUint32(b[60:64], m.wqueue)
	binary.NativeEndian.PutUint32(b[64:68], m.uid)
	binary.NativeEndian.PutUint32(b[68:72], m.inode)
	return append(b, m.attrs...)
}

// msg wraps the inet_diag_msg in a SOCK_DIAG_BY_FAMILY (20) message.
func (m diagMsg) msg() []byte { return nlMsg(20, nlmFMulti, m.encode()) }

// rtattr encodes a struct rtattr (include/uapi/linux/rtnetlink.h: u16 len,
// u16 type) and its value, padded to 4 bytes.
func rtattr(typ uint16, val []byte) []byte {
	b := make([]byte, 4, 4+len(val)+3)
	binary.NativeEndian.PutUint16(b[0:2], uint16(4+len(val)))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// rawAttr encodes an attribute header with an arbitrary length field.
func rawAttr(alen, typ uint16, val []byte) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint16(b[0:2], alen)
	binary.NativeEndian.PutUint16(b[2:4], typ)
	return append(b, val...)
}

func u32b(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func u64b(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }

// doneMsg is NLMSG_DONE (3), whose body is the dump's int status.
func doneMsg() []byte { return nlMsg(3, nlmFMulti, u32b(0)) }

// errMsg is NLMSG_ERROR (2): struct nlmsgerr { int error; struct nlmsghdr
// msg; } with error a negative errno, or 0 for an acknowledgement.
func errMsg(errno int32) []byte {
	body := binary.NativeEndian.AppendUint32(nil, uint32(errno))
	body = append(body, nlMsg(20, 0x301, nil)...) // the request's header
	return nlMsg(2, 0, body)
}

func catBytes(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// withLen returns a copy of msg with its nlmsg_len field replaced.
func withLen(msg []byte, n uint32) []byte {
	b := append([]byte(nil), msg...)
	binary.NativeEndian.PutUint32(b[0:4], n)
	return b
}

var (
	v4Listener = diagMsg{
		family: 2, state: 10, sport: 8080,
		src: netip.IPv4Unspecified(), dst: netip.IPv4Unspecified(),
		cookie: [2]uint32{0x2, 0x1}, rqueue: 0, wqueue: 4096, uid: 1000, inode: 4242,
		attrs: rtattr(8, []byte{0}), // INET_DIAG_SHUTDOWN, as the kernel always sends
	}
	v4ListenerSock = Socket{
		Proto: TCP, State: Listen, UID: 1000, Inode: 4242, Cookie: 0x1_0000_0002, SendQ: 4096,
		Local:  netip.MustParseAddrPort("0.0.0.0:8080"),
		Remote: netip.MustParseAddrPort("0.0.0.0:0"),
	}

	v6Estab = diagMsg{
		family: 10, state: 1, timer: 2, sport: 443, dport: 51000,
		src: netip.MustParseAddr("2001:db8::1"), dst: netip.MustParseAddr("2001:db8::2"),
		expires: 7_200_000, rqueue: 10, wqueue: 20, uid: 33, inode: 777,
	}
	v6EstabSock = Socket{
		Proto: TCP, State: Established, UID: 33, Inode: 777, RecvQ: 10, SendQ: 20, Expires: 2 * time.Hour,
		Local:  netip.MustParseAddrPort("[2001:db8::1]:443"),
		Remote: netip.MustParseAddrPort("[2001:db8::2]:51000"),
	}

	v4TimeWait = diagMsg{
		family: 2, state: 6, timer: 3, sport: 40000, dport: 443,
		src: netip.MustParseAddr("10.0.0.1"), dst: netip.MustParseAddr("10.0.0.9"),
		expires: 45000,
	}
	v4TimeWaitSock = Socket{
		Proto: TCP, State: TimeWait, Expires: 45 * time.Second,
		Local:  netip.MustParseAddrPort("10.0.0.1:40000"),
		Remote: netip.MustParseAddrPort("10.0.0.9:443"),
	}
)

// errMalformed stands for "any error other than errDone and *DumpError" in
// the table below.
var errMalformed = errors.New("malformed")

func TestParseDump(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		proto   Proto
		want    []Socket
		wantErr error // nil, errDone, a *DumpError, or errMalformed
	}{
		{
			name: "ipv4 listener", in: v4Listener.msg(), proto: TCP,
			want: []Socket{v4ListenerSock},
		},
		{
			name: "ipv6 established", in: v6Estab.msg(), proto: TCP,
			want: []Socket{v6EstabSock},
		},
		{
			name: "both families, as TCPDIAG_GETSOCK answers", proto: TCP,
			in:   catBytes(nlMsg(18, nlmFMulti, v4Listener.encode()), nlMsg(18, nlmFMulti, v6Estab.encode())),
			want: []Socket{v4ListenerSock, v6EstabSock},
		},
		{
			name: "ipv6 link-local address gets the interface as zone",
			in: diagMsg{
				family: 10, state: 10, sport: 22, ifindex: 3,
				src: netip.MustParseAddr("fe80::1"), dst: netip.IPv6Unspecified(),
			}.msg(),
			proto: TCP,
			want: []Socket{{
				Proto: TCP, State: Listen,
				Local:  netip.MustParseAddrPort("[fe80::1%3]:22"),
				Remote: netip.MustParseAddrPort("[::]:0"),
			}},
		},
		{
			name: "ipv6 global address ignores the interface",
			in: diagMsg{
				family: 10, state: 10, sport: 22, ifindex: 3,
				src: netip.MustParseAddr("2001:db8::1"), dst: netip.IPv6Unspecified(),
			}.msg(),
			proto: TCP,
			want: []Socket{{
				Proto: TCP, State: Listen,
				Local:  netip.MustParseAddrPort("[2001:db8::1]:22"),
				Remote: netip.MustParseAddrPort("[::]:0"),
			}},
		},
		{
			name: "time-wait with timer 3 expires", in: v4TimeWait.msg(), proto: TCP,
			want: []Socket{v4TimeWaitSock},
		},
		{
			name: "no timer running means no expiry",
			in: diagMsg{
				family: 2, state: 6, timer: 0, sport: 40001, dport: 443,
				src: netip.MustParseAddr("10.0.0.1"), dst: netip.MustParseAddr("10.0.0.9"),
				expires: 45000,
			}.msg(),
			proto: TCP,
			want: []Socket{{
				Proto: TCP, State: TimeWait,
				Local:  netip.MustParseAddrPort("10.0.0.1:40001"),
				Remote: netip.MustParseAddrPort("10.0.0.9:443"),
			}},
		},
		{
			name: "udp unconnected",
			in: diagMsg{
				family: 2, state: 7, sport: 53,
				src: netip.MustParseAddr("127.0.0.53"), dst: netip.IPv4Unspecified(),
				uid: 101, inode: 555,
			}.msg(),
			proto: UDP,
			want: []Socket{{
				Proto: UDP, State: Close, UID: 101, Inode: 555,
				Local:  netip.MustParseAddrPort("127.0.0.53:53"),
				Remote: netip.MustParseAddrPort("0.0.0.0:0"),
			}},
		},
		{
			name: "v6only attribute",
			in: diagMsg{
				family: 10, state: 10, sport: 80, src: netip.IPv6Unspecified(), dst: netip.IPv6Unspecified(),
				attrs: rtattr(11, []byte{1}), // INET_DIAG_SKV6ONLY, a u8
			}.msg(),
			proto: TCP,
			want: []Socket{{
				Proto: TCP, State: Listen, V6Only: true,
				Local:  netip.MustParseAddrPort("[::]:80"),
				Remote: netip.MustParseAddrPort("[::]:0"),
			}},
		},
		{
			name: "v6only attribute set to 0",
			in: diagMsg{
				family: 10, state: 10, sport: 80, src: netip.IPv6Unspecified(), dst: netip.IPv6Unspecified(),
				attrs: rtattr(11, []byte{0}),
			}.msg(),
			proto: TCP,
			want: []Socket{{
				Proto: TCP, State: Listen,
				Local:  netip.MustParseAddrPort("[::]:80"),
				Remote: netip.MustParseAddrPort("[::]:0"),
			}},
		},
		{
			name: "cgroup id attribute",
			in: diagMsg{
				family: 2, state: 10, sport: 80, src: netip.IPv4Unspecified(), dst: netip.IPv4Unspecified(),
				attrs: rtattr(21, u64b(0x1_2345_6789)), // INET_DIAG_CGROUP_ID, a u64
			}.msg(),
			proto: TCP,
			want: []Socket{{
				Proto: TCP, State: Listen, CgroupID: 0x1_2345_6789,
				Local:  netip.MustParseAddrPort("0.0.0.0:80"),
				Remote: netip.MustParseAddrPort("0.0.0.0:0"),
			}},
		},
		{
			name: "unknown and unaligned attributes are skipped",
			in: diagMsg{
				family: 10, state: 10, sport: 80, src: netip.IPv6Unspecified(), dst: netip.IPv6Unspecified(),
				attrs: catBytes(
					rtattr(99, []byte{1, 2, 3, 4, 5, 6, 7}), // 11 bytes, padded to 12
					rtattr(8, []byte{3}),                    // INET_DIAG_SHUTDOWN
					rtattr(11, []byte{1}),
					rtattr(21, u64b(42)),
					rtattr(200, nil), // empty value
				),
			}.msg(),
			proto: TCP,
			want: []Socket{{
				Proto: TCP, State: Listen, V6Only: true, CgroupID: 42,
				Local:  netip.MustParseAddrPort("[::]:80"),
				Remote: netip.MustParseAddrPort("[::]:0"),
			}},
		},
		{
			name: "attribute values too short are ignored",
			in: diagMsg{
				family: 10, state: 10, sport: 80, src: netip.IPv6Unspecified(), dst: netip.IPv6Unspecified(),
				attrs: catBytes(rtattr(11, nil), rtattr(21, u32b(7))),
			}.msg(),
			proto: TCP,
			want: []Socket{{
				Proto: TCP, State: Listen,
				Local:  netip.MustParseAddrPort("[::]:80"),
				Remote: netip.MustParseAddrPort("[::]:0"),
			}},
		},
		{
			name:  "several messages in one buffer",
			in:    catBytes(v4Listener.msg(), v6Estab.msg(), v4TimeWait.msg()),
			proto: TCP,
			want:  []Socket{v4ListenerSock, v6EstabSock, v4TimeWaitSock},
		},
		{
			name:    "several messages then done",
			in:      catBytes(v4Listener.msg(), v6Estab.msg(), doneMsg()),
			proto:   TCP,
			want:    []Socket{v4ListenerSock, v6EstabSock},
			wantErr: errDone,
		},
		{
			name: "done ends the buffer", in: catBytes(doneMsg(), v4Listener.msg()), proto: TCP,
			wantErr: errDone,
		},
		{
			name: "done without a body", in: nlMsg(3, nlmFMulti, nil), proto: TCP,
			wantErr: errDone,
		},
		{
			name: "error message EACCES", in: errMsg(-13), proto: TCP,
			wantErr: &DumpError{Errno: 13},
		},
		{
			name: "error after sockets keeps them", in: catBytes(v4Listener.msg(), errMsg(-22)), proto: TCP,
			want:    []Socket{v4ListenerSock},
			wantErr: &DumpError{Errno: 22},
		},
		{
			name: "acknowledgement is ignored", in: catBytes(errMsg(0), v4Listener.msg()), proto: TCP,
			want: []Socket{v4ListenerSock},
		},
		{
			name: "noop is ignored", in: catBytes(nlMsg(1, 0, nil), v4Listener.msg()), proto: TCP,
			want: []Socket{v4ListenerSock},
		},
		{name: "empty buffer", in: nil, proto: TCP},

		// Malformed input: an error, never a panic.
		{name: "truncated header", in: v4Listener.msg()[:10], proto: TCP, wantErr: errMalformed},
		{
			name: "truncated header after a message", in: catBytes(v4Listener.msg(), make([]byte, 8)), proto: TCP,
			want: []Socket{v4ListenerSock}, wantErr: errMalformed,
		},
		{name: "length below 16", in: withLen(nlMsg(20, 0, make([]byte, 72)), 8), proto: TCP, wantErr: errMalformed},
		{name: "length 0", in: withLen(nlMsg(20, 0, make([]byte, 72)), 0), proto: TCP, wantErr: errMalformed},
		{name: "length beyond the buffer", in: withLen(v4Listener.msg(), 200), proto: TCP, wantErr: errMalformed},
		{name: "length 0xffffffff", in: withLen(v4Listener.msg(), 0xffffffff), proto: TCP, wantErr: errMalformed},
		{name: "inet_diag_msg shorter than 72 bytes", in: nlMsg(20, nlmFMulti, v4Listener.encode()[:71]), proto: TCP, wantErr: errMalformed},
		{name: "inet_diag_msg empty", in: nlMsg(20, nlmFMulti, nil), proto: TCP, wantErr: errMalformed},
		{
			name: "family 7", in: diagMsg{family: 7, state: 10, sport: 80}.msg(), proto: TCP,
			wantErr: errMalformed,
		},
		{
			name: "family 0", in: diagMsg{state: 10, sport: 80}.msg(), proto: TCP,
			wantErr: errMalformed,
		},
		{
			name: "attribute length below 4",
			in: diagMsg{
				family: 2, state: 10, src: netip.IPv4Unspecified(), dst: netip.IPv4Unspecified(),
				attrs: rawAttr(2, 11, []byte{1, 0, 0, 0}),
			}.msg(),
			proto: TCP, wantErr: errMalformed,
		},
		{
			name: "attribute length 0 (would loop forever)",
			in: diagMsg{
				family: 2, state: 10, src: netip.IPv4Unspecified(), dst: netip.IPv4Unspecified(),
				attrs: rawAttr(0, 11, []byte{1, 0, 0, 0}),
			}.msg(),
			proto: TCP, wantErr: errMalformed,
		},
		{
			name: "attribute length beyond the message",
			in: diagMsg{
				family: 2, state: 10, src: netip.IPv4Unspecified(), dst: netip.IPv4Unspecified(),
				attrs: rawAttr(40, 21, u32b(1)),
			}.msg(),
			proto: TCP, wantErr: errMalformed,
		},
		{name: "error message without errno", in: nlMsg(2, 0, []byte{1, 2}), proto: TCP, wantErr: errMalformed},
		{name: "unexpected message type", in: nlMsg(99, 0, make([]byte, 72)), proto: TCP, wantErr: errMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDump(tt.in, tt.proto, nil)
			checkDumpErr(t, err, tt.wantErr)
			if diff := cmp.Diff(tt.want, got, equateAddrs, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("parseDump(%x) sockets mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func checkDumpErr(t *testing.T, err, want error) {
	t.Helper()
	var de, wantDE *DumpError
	switch {
	case want == nil:
		if err != nil {
			t.Errorf("parseDump error = %v; want nil", err)
		}
	case want == errDone:
		if err != errDone {
			t.Errorf("parseDump error = %v; want errDone", err)
		}
	case errors.As(want, &wantDE):
		if !errors.As(err, &de) || de.Errno != wantDE.Errno {
			t.Errorf("parseDump error = %#v; want %#v", err, want)
		}
	default: // errMalformed
		if err == nil || err == errDone || errors.As(err, &de) {
			t.Errorf("parseDump error = %v; want a malformed-input error", err)
		}
	}
}

func TestParseDumpAppends(t *testing.T) {
	prev := []Socket{v6EstabSock}
	got, err := parseDump(v4Listener.msg(), TCP, prev)
	if err != nil {
		t.Fatalf("parseDump: %v", err)
	}
	if diff := cmp.Diff([]Socket{v6EstabSock, v4ListenerSock}, got, equateAddrs); diff != "" {
		t.Errorf("parseDump(…, out) mismatch (-want +got):\n%s", diff)
	}
}

func TestDumpErrorMessage(t *testing.T) {
	err := &DumpError{Errno: 13}
	if got, want := err.Error(), "sockets: kernel refused the dump: errno 13"; got != want {
		t.Errorf("DumpError.Error() = %q; want %q", got, want)
	}
}

// bcOp is a struct inet_diag_bc_op (include/uapi/linux/inet_diag.h).
type bcOp struct {
	Code, Yes uint8
	No        uint16
}

// decodedReq is a SOCK_DIAG_BY_FAMILY request taken apart: the nlmsghdr,
// struct inet_diag_req_v2 (u8 family, protocol, ext, pad; u32 states;
// struct inet_diag_sockid id) and its attributes.
type decodedReq struct {
	Len, Seq, PID              uint32
	Type, Flags                uint16
	Family, Protocol, Ext, Pad uint8
	States                     uint32
	SockID                     [48]byte
	Bytecode                   []bcOp // INET_DIAG_REQ_BYTECODE (1)
	ReqProtocol                []byte // INET_DIAG_REQ_PROTOCOL (3)
	Other                      []uint16
}

func decodeRequest(t *testing.T, b []byte) decodedReq {
	t.Helper()
	if len(b) < 16+56 {
		t.Fatalf("request is %d bytes; want at least 72", len(b))
	}
	var r decodedReq
	r.Len = binary.NativeEndian.Uint32(b[0:4])
	r.Type = binary.NativeEndian.Uint16(b[4:6])
	r.Flags = binary.NativeEndian.Uint16(b[6:8])
	r.Seq = binary.NativeEndian.Uint32(b[8:12])
	r.PID = binary.NativeEndian.Uint32(b[12:16])
	q := b[16:]
	r.Family, r.Protocol, r.Ext, r.Pad = q[0], q[1], q[2], q[3]
	r.States = binary.NativeEndian.Uint32(q[4:8])
	copy(r.SockID[:], q[8:56])
	attrs := q[56:]
	for len(attrs) > 0 {
		if len(attrs) < 4 {
			t.Fatalf("request attributes end in %d stray bytes", len(attrs))
		}
		alen := int(binary.NativeEndian.Uint16(attrs[0:2]))
		typ := binary.NativeEndian.Uint16(attrs[2:4])
		if alen < 4 || alen > len(attrs) {
			t.Fatalf("request attribute %d has length %d of %d", typ, alen, len(attrs))
		}
		val := attrs[4:alen]
		switch typ {
		case 1:
			if len(val)%4 != 0 {
				t.Fatalf("bytecode is %d bytes, not a whole number of ops", len(val))
			}
			for i := 0; i < len(val); i += 4 {
				r.Bytecode = append(r.Bytecode, bcOp{val[i], val[i+1], binary.NativeEndian.Uint16(val[i+2 : i+4])})
			}
		case 3:
			r.ReqProtocol = val
		default:
			r.Other = append(r.Other, typ)
		}
		attrs = attrs[min((alen+3)&^3, len(attrs)):]
	}
	return r
}

// noCookie is the sockid of a dump: all zero but the cookie, INET_DIAG_NOCOOKIE (~0).
var noCookie = func() (id [48]byte) {
	for i := 40; i < 48; i++ {
		id[i] = 0xff
	}
	return id
}()

func TestDiagRequest(t *testing.T) {
	tests := []struct {
		name          string
		family        uint8
		protocol      int
		states        StateSet
		local, remote uint16
		want          decodedReq
	}{
		{
			name: "tcp4 listeners", family: 2, protocol: 6, states: StatesOf(Listen),
			want: decodedReq{Family: 2, Protocol: 6, States: 1 << 10},
		},
		{
			name: "udp6 every state", family: 10, protocol: 17, states: AllStates,
			want: decodedReq{Family: 10, Protocol: 17, States: 0x1ffe},
		},
		{
			name: "local port", family: 2, protocol: 6, states: AllStates, local: 8080,
			want: decodedReq{
				Family: 2, Protocol: 6, States: 0x1ffe,
				Bytecode: []bcOp{{11, 8, 12}, {0, 0, 8080}},
			},
		},
		{
			name: "remote port", family: 10, protocol: 6, states: StatesOf(Established), remote: 443,
			want: decodedReq{
				Family: 10, Protocol: 6, States: 1 << 1,
				Bytecode: []bcOp{{12, 8, 12}, {0, 0, 443}},
			},
		},
		{
			name: "local and remote port", family: 2, protocol: 6, states: AllStates, local: 40000, remote: 443,
			want: decodedReq{
				Family: 2, Protocol: 6, States: 0x1ffe,
				// len 16: the first op rejects with 16-0+4, the second with 16-8+4.
				Bytecode: []bcOp{{11, 8, 20}, {0, 0, 40000}, {12, 8, 12}, {0, 0, 443}},
			},
		},
		{
			name: "port 65535", family: 2, protocol: 17, states: StatesOf(Close), local: 65535,
			want: decodedReq{
				Family: 2, Protocol: 17, States: 1 << 7,
				Bytecode: []bcOp{{11, 8, 12}, {0, 0, 65535}},
			},
		},
		{
			name: "mptcp", family: 2, protocol: 262, states: StatesOf(Listen),
			want: decodedReq{Family: 2, Protocol: 0, States: 1 << 10, ReqProtocol: u32b(262)},
		},
		{
			name: "mptcp with a port", family: 10, protocol: 262, states: AllStates, local: 22,
			want: decodedReq{
				Family: 10, Protocol: 0, States: 0x1ffe,
				Bytecode:    []bcOp{{11, 8, 12}, {0, 0, 22}},
				ReqProtocol: u32b(262),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := diagRequest(7, tt.family, tt.protocol, tt.states, tt.local, tt.remote)
			got := decodeRequest(t, b)
			want := tt.want
			want.Len, want.Type, want.Flags, want.Seq = uint32(len(b)), 20, 0x301, 7
			want.SockID = noCookie
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("diagRequest(7, %d, %d, %#x, %d, %d) mismatch (-want +got):\n%s",
					tt.family, tt.protocol, tt.states, tt.local, tt.remote, diff)
			}
			if len(b)%4 != 0 {
				t.Errorf("diagRequest length %d is not a multiple of 4", len(b))
			}
			if tt.want.Bytecode != nil {
				if err := auditBytecode(bytecodeOf(b)); err != nil {
					t.Errorf("the kernel would refuse the bytecode: %v", err)
				}
			}
		})
	}
}

// TestDiagRequestBothFamilies checks family 0's request: TCPDIAG_GETSOCK
// with a struct inet_diag_req (u8 family, src_len, dst_len, ext; struct
// inet_diag_sockid; u32 states, dbs) and the same bytecode.
func TestDiagRequestBothFamilies(t *testing.T) {
	for _, tt := range []struct {
		name          string
		states        StateSet
		local, remote uint16
		bytecode      []bcOp
	}{
		{name: "every state", states: AllStates},
		{name: "established on a local port", states: StatesOf(Established), local: 28080, bytecode: []bcOp{{11, 8, 12}, {0, 0, 28080}}},
		{name: "both ports", states: AllStates, local: 40000, remote: 443, bytecode: []bcOp{{11, 8, 20}, {0, 0, 40000}, {12, 8, 12}, {0, 0, 443}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := diagRequest(9, 0, ipprotoTCP, tt.states, tt.local, tt.remote)
			const reqLen = 60
			if len(b) < 16+reqLen || len(b)%4 != 0 {
				t.Fatalf("request is %d bytes; want at least %d, a multiple of 4", len(b), 16+reqLen)
			}
			if l, typ, flags, seq := binary.NativeEndian.Uint32(b[0:4]), binary.NativeEndian.Uint16(b[4:6]),
				binary.NativeEndian.Uint16(b[6:8]), binary.NativeEndian.Uint32(b[8:12]); l != uint32(len(b)) || typ != 18 || flags != 0x301 || seq != 9 {
				t.Errorf("header: length %d, type %d, flags %#x, seq %d; want %d, 18, 0x301, 9", l, typ, flags, seq, len(b))
			}
			r := b[16:]
			if r[0] != 0 || r[1] != 0 || r[2] != 0 || r[3] != 0 {
				t.Errorf("family, src_len, dst_len, ext = % x; want zeros", r[0:4])
			}
			if id := [48]byte(r[4:52]); id != noCookie {
				t.Errorf("sockid = % x; want zeros and no cookie", id)
			}
			if st, dbs := binary.NativeEndian.Uint32(r[52:56]), binary.NativeEndian.Uint32(r[56:60]); st != uint32(tt.states) || dbs != 0 {
				t.Errorf("states %#x, dbs %d; want %#x, 0", st, dbs, tt.states)
			}
			attrs := r[reqLen:]
			if tt.bytecode == nil {
				if len(attrs) != 0 {
					t.Errorf("attributes % x; want none", attrs)
				}
				return
			}
			if len(attrs) < 4 || binary.NativeEndian.Uint16(attrs[2:4]) != 1 || int(binary.NativeEndian.Uint16(attrs[0:2])) != len(attrs) {
				t.Fatalf("attributes % x; want one INET_DIAG_REQ_BYTECODE", attrs)
			}
			var got []bcOp
			for i := 4; i < len(attrs); i += 4 {
				got = append(got, bcOp{attrs[i], attrs[i+1], binary.NativeEndian.Uint16(attrs[i+2 : i+4])})
			}
			if diff := cmp.Diff(tt.bytecode, got); diff != "" {
				t.Errorf("bytecode mismatch (-want +got):\n%s", diff)
			}
			if err := auditBytecode(attrs[4:]); err != nil {
				t.Errorf("the kernel would refuse the bytecode: %v", err)
			}
		})
	}
}

// bytecodeOf returns the value of the request's INET_DIAG_REQ_BYTECODE,
// which diagRequest puts first.
func bytecodeOf(req []byte) []byte {
	a := req[16+56:]
	return a[4:binary.NativeEndian.Uint16(a[0:2])]
}

// auditBytecode checks bytecode as inet_diag_bc_audit (net/ipv4/inet_diag.c)
// does for the ops diagRequest uses: a port comparison takes two ops, and
// "yes" and "no" are multiples of 4 between the op's size and 4 past the
// end.
func auditBytecode(bc []byte) error {
	n := len(bc)
	if n < 4 {
		return errors.New("bytecode shorter than one op")
	}
	for n > 0 {
		op := bc[len(bc)-n:]
		code, yes, no := op[0], int(op[1]), int(binary.NativeEndian.Uint16(op[2:4]))
		minLen := 4
		switch code {
		case 0, 1: // NOP, JMP
		case 2, 3, 4, 5, 11, 12: // S_GE, S_LE, D_GE, D_LE, S_EQ, D_EQ
			minLen += 4
			if n < minLen {
				return errors.New("port comparison without its port op")
			}
		default:
			return errors.New("unknown op code")
		}
		if code != 0 && (no < minLen || no > n+4 || no&3 != 0) {
			return errors.New("bad no offset")
		}
		if yes < minLen || yes > n+4 || yes&3 != 0 {
			return errors.New("bad yes offset")
		}
		n -= yes
	}
	if n != 0 {
		return errors.New("ops overrun the bytecode")
	}
	return nil
}

// runBytecode runs bytecode on a socket's ports as inet_diag_bc_run does:
// follow "yes" on a match and "no" otherwise; the socket passes when the
// program ends exactly at its end.
func runBytecode(bc []byte, sport, dport uint16) bool {
	n := len(bc)
	for n > 0 {
		op := bc[len(bc)-n:]
		match := true
		switch op[0] {
		case 1: // JMP
			match = false
		case 11:
			match = sport == binary.NativeEndian.Uint16(op[6:8])
		case 12:
			match = dport == binary.NativeEndian.Uint16(op[6:8])
		}
		if match {
			n -= int(op[1])
		} else {
			n -= int(binary.NativeEndian.Uint16(op[2:4]))
		}
	}
	return n == 0
}

func TestDiagRequestFilters(t *testing.T) {
	tests := []struct {
		name          string
		local, remote uint16 // the filter
		sport, dport  uint16 // the socket
		want          bool
	}{
		{"local match", 8080, 0, 8080, 50000, true},
		{"local mismatch", 8080, 0, 8081, 50000, false},
		{"remote match", 0, 443, 40000, 443, true},
		{"remote mismatch", 0, 443, 40000, 80, false},
		{"both match", 40000, 443, 40000, 443, true},
		{"local mismatch remote match", 40000, 443, 40001, 443, false},
		{"local match remote mismatch", 40000, 443, 40000, 444, false},
		{"both mismatch", 40000, 443, 1, 2, false},
	}
	for _, tt := range tests {
		bc := bytecodeOf(diagRequest(1, 2, 6, AllStates, tt.local, tt.remote))
		if got := runBytecode(bc, tt.sport, tt.dport); got != tt.want {
			t.Errorf("%s: filter local %d remote %d on socket %d→%d = %v; want %v",
				tt.name, tt.local, tt.remote, tt.sport, tt.dport, got, tt.want)
		}
	}
}

// capturedDumps returns the sock_diag dumps in testdata (see
// diag_linux_test.go), which are in the byte order of a little-endian
// machine.
func capturedDumps(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "diag_*.bin"))
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// TestParseDumpCaptured parses dumps the kernel sent for loopback sockets
// made by TestDumpKernel: a listener on one port with a connection it
// accepted and one it closed (TIME-WAIT), and a bound UDP socket.
func TestParseDumpCaptured(t *testing.T) {
	if !littleEndian {
		t.Skip("testdata was captured on a little-endian machine")
	}
	dumps := capturedDumps(t)
	if len(dumps) == 0 {
		t.Skip("no captured dumps in testdata (run go test -run TestDumpKernel -update as root on Linux)")
	}
	wantStates := map[string][]State{
		"diag_tcp4.bin":   {Listen, Established, TimeWait},
		"diag_tcp6.bin":   {Listen, Established, TimeWait},
		"diag_udp4.bin":   {Close},
		"diag_udp6.bin":   {Close},
		"diag_mptcp4.bin": {Listen},
	}
	for name, b := range dumps {
		t.Run(name, func(t *testing.T) {
			proto := TCP
			switch name[5:8] {
			case "udp":
				proto = UDP
			case "mpt":
				proto = MPTCP
			}
			got, err := parseDump(b, proto, nil)
			if err != errDone {
				t.Fatalf("parseDump(%s) error = %v; want errDone", name, err)
			}
			var states []State
			for _, s := range got {
				if !s.Local.Addr().IsLoopback() || s.Local.Port() != got[0].Local.Port() {
					t.Errorf("socket %v→%v: want a loopback address on port %d (the dump filtered by port)", s.Local, s.Remote, got[0].Local.Port())
				}
				if s.State == TimeWait && (s.Expires <= 0 || s.Expires > 60*time.Second || s.Inode != 0) {
					t.Errorf("TIME-WAIT socket: expires %v, inode %d; want 0-60s and no inode", s.Expires, s.Inode)
				}
				if s.State == Listen && s.Inode == 0 {
					t.Errorf("listener %v has no inode", s.Local)
				}
				if !slices.Contains(states, s.State) {
					states = append(states, s.State)
				}
			}
			if want, ok := wantStates[name]; ok {
				if diff := cmp.Diff(want, states, cmpopts.SortSlices(func(a, b State) bool { return a < b })); diff != "" {
					t.Errorf("parseDump(%s) states mismatch (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

func FuzzParseDump(f *testing.F) {
	seeds := [][]byte{
		v4Listener.msg(), v6Estab.msg(), v4TimeWait.msg(),
		catBytes(v4Listener.msg(), v6Estab.msg(), doneMsg()),
		catBytes(errMsg(0), v4TimeWait.msg()), errMsg(-13), doneMsg(),
		diagMsg{family: 10, state: 10, src: netip.MustParseAddr("fe80::1"), ifindex: 2,
			attrs: catBytes(rtattr(11, []byte{1}), rtattr(21, u64b(9)), rtattr(99, []byte{1}))}.msg(),
		withLen(v4Listener.msg(), 200), v4Listener.msg()[:20],
		diagMsg{family: 2, attrs: rawAttr(40, 21, u32b(1))}.msg(),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	if littleEndian {
		for _, b := range capturedDumps(f) {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseDump(b, TCP, nil)
		if len(got) > len(b)/(16+72) {
			t.Fatalf("parseDump(%x) = %d sockets from %d bytes; each needs 88", b, len(got), len(b))
		}
		for _, s := range got {
			a := s.Local.Addr()
			if !a.IsValid() || !(a.Is4() || a.Is6()) {
				t.Fatalf("parseDump(%x): socket with invalid local address %v", b, s.Local)
			}
			if a.Is4() != s.Remote.Addr().Is4() {
				t.Fatalf("parseDump(%x): local %v and remote %v of different families", b, s.Local, s.Remote)
			}
			if s.Proto != TCP {
				t.Fatalf("parseDump(%x): proto %v; want tcp", b, s.Proto)
			}
		}
		var de *DumpError
		if errors.As(err, &de) && de.Errno == 0 {
			t.Fatalf("parseDump(%x): DumpError with errno 0 (an ack is not an error)", b)
		}
	})
}
