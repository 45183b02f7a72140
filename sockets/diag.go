package sockets

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// Netlink and sock_diag constants (include/uapi/linux/netlink.h,
// sock_diag.h, inet_diag.h).
const (
	nlmsgHdrLen      = 16
	nlmsgNoop        = 1
	nlmsgError       = 2
	nlmsgDone        = 3
	sockDiagByFamily = 20
	tcpDiagGetSock   = 18 // TCPDIAG_GETSOCK: the older request (struct inet_diag_req), TCP of both families

	inetDiagMsgLen = 72 // struct inet_diag_msg
	rtaHdrLen      = 4

	attrShutdown  = 8  // INET_DIAG_SHUTDOWN
	attrV6Only    = 11 // INET_DIAG_SKV6ONLY
	attrCgroupID  = 21 // INET_DIAG_CGROUP_ID
	afINET        = 2
	afINET6       = 10
	ipprotoTCP    = 6
	ipprotoUDP    = 17
	ipprotoMPTCP  = 262
	bcSourceEqual = 11 // INET_DIAG_BC_S_EQ
	bcDestEqual   = 12 // INET_DIAG_BC_D_EQ
)

// errDone ends a dump: the kernel sent NLMSG_DONE.
var errDone = fmt.Errorf("sockets: dump done")

// parseDump decodes one buffer of netlink messages answering a sock_diag
// dump, appending a Socket of protocol proto for each inet_diag_msg. It
// returns errDone after NLMSG_DONE, a *DumpError for NLMSG_ERROR, and an
// error for malformed input; every length is checked before use.
func parseDump(buf []byte, proto Proto, out []Socket) ([]Socket, error) {
	err := walkDump(buf, proto, func(s *Socket) { out = append(out, *s) })
	return out, err
}

// walkDump is parseDump calling emit for each socket instead of keeping
// them; the *Socket is reused between calls.
func walkDump(buf []byte, proto Proto, emit func(*Socket)) error {
	var s Socket
	for len(buf) > 0 {
		if len(buf) < nlmsgHdrLen {
			return fmt.Errorf("sockets: netlink message header truncated (%d bytes)", len(buf))
		}
		n := binary.NativeEndian.Uint32(buf[0:4])
		typ := binary.NativeEndian.Uint16(buf[4:6])
		if n < nlmsgHdrLen || int(n) > len(buf) {
			return fmt.Errorf("sockets: netlink message length %d outside 16-%d", n, len(buf))
		}
		body := buf[nlmsgHdrLen:n]
		switch typ {
		case nlmsgDone:
			return errDone
		case nlmsgError:
			if len(body) < 4 {
				return fmt.Errorf("sockets: netlink error message truncated")
			}
			errno := int32(binary.NativeEndian.Uint32(body[0:4]))
			if errno == 0 {
				break // an acknowledgement
			}
			return &DumpError{Errno: -errno}
		case sockDiagByFamily, tcpDiagGetSock:
			var err error
			if s, err = parseInetDiag(body, proto); err != nil {
				return err
			}
			emit(&s)
		case nlmsgNoop:
		default:
			return fmt.Errorf("sockets: unexpected netlink message type %d", typ)
		}
		// Messages are aligned to 4 bytes.
		adv := (int(n) + 3) &^ 3
		if adv > len(buf) {
			adv = len(buf)
		}
		buf = buf[adv:]
	}
	return nil
}

// DumpError is an error the kernel answered a dump request with.
type DumpError struct {
	Errno int32 // positive errno value
}

func (e *DumpError) Error() string {
	return fmt.Sprintf("sockets: kernel refused the dump: errno %d", e.Errno)
}

// parseInetDiag decodes one struct inet_diag_msg
// (include/uapi/linux/inet_diag.h) and its attributes:
//
//	u8 family, state, timer, retrans
//	struct inet_diag_sockid { be16 sport, dport; be32 src[4], dst[4]; u32 if; u32 cookie[2] }
//	u32 expires, rqueue, wqueue, uid, inode
func parseInetDiag(b []byte, proto Proto) (Socket, error) {
	if len(b) < inetDiagMsgLen {
		return Socket{}, fmt.Errorf("sockets: inet_diag_msg truncated (%d of %d bytes)", len(b), inetDiagMsgLen)
	}
	family := b[0]
	var src, dst netip.Addr
	switch family {
	case afINET:
		src = netip.AddrFrom4([4]byte(b[8:12]))
		dst = netip.AddrFrom4([4]byte(b[24:28]))
	case afINET6:
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
	default:
		return Socket{}, fmt.Errorf("sockets: inet_diag_msg family %d is not AF_INET or AF_INET6", family)
	}
	if ifindex := binary.NativeEndian.Uint32(b[40:44]); ifindex != 0 && src.Is6() && src.IsLinkLocalUnicast() {
		src = src.WithZone(fmt.Sprint(ifindex))
	}
	s := Socket{
		Proto:   proto,
		State:   State(b[1]),
		Local:   netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[4:6])),
		Remote:  netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[6:8])),
		Cookie:  uint64(binary.NativeEndian.Uint32(b[44:48])) | uint64(binary.NativeEndian.Uint32(b[48:52]))<<32,
		Expires: time.Duration(binary.NativeEndian.Uint32(b[52:56])) * time.Millisecond,
		RecvQ:   binary.NativeEndian.Uint32(b[56:60]),
		SendQ:   binary.NativeEndian.Uint32(b[60:64]),
		UID:     binary.NativeEndian.Uint32(b[64:68]),
		Inode:   uint64(binary.NativeEndian.Uint32(b[68:72])),
	}
	if b[2] == 0 { // no timer running
		s.Expires = 0
	}
	attrs := b[inetDiagMsgLen:]
	for len(attrs) >= rtaHdrLen {
		alen := int(binary.NativeEndian.Uint16(attrs[0:2]))
		atype := binary.NativeEndian.Uint16(attrs[2:4]) & 0x3fff // drop NLA_F_NESTED and NLA_F_NET_BYTEORDER
		if alen < rtaHdrLen || alen > len(attrs) {
			return Socket{}, fmt.Errorf("sockets: attribute length %d outside 4-%d", alen, len(attrs))
		}
		val := attrs[rtaHdrLen:alen]
		switch atype {
		case attrV6Only:
			if len(val) >= 1 {
				s.V6Only = val[0] != 0
			}
		case attrCgroupID:
			if len(val) >= 8 {
				s.CgroupID = binary.NativeEndian.Uint64(val[:8])
			}
		}
		adv := (alen + 3) &^ 3
		if adv > len(attrs) {
			break
		}
		attrs = attrs[adv:]
	}
	return s, nil
}

// diagRequest builds a SOCK_DIAG_BY_FAMILY dump request: the netlink
// header, a struct inet_diag_req_v2, and, when asked, bytecode filtering by
// local and remote port and the protocol attribute MPTCP needs (its number
// does not fit the request's one-byte protocol field).
//
// Family 0 asks for TCP sockets of both families at once instead, with the
// older TCPDIAG_GETSOCK request and its struct inet_diag_req (u8 family,
// src_len, dst_len, ext; struct inet_diag_sockid; u32 states, dbs), which
// the kernel answers with one walk of its table of connections, where two
// SOCK_DIAG_BY_FAMILY requests walk it once per family: at tens of
// thousands of connections, the walk that finds no socket of its family
// costs a quarter of the dump. protocol is then ignored.
func diagRequest(seq uint32, family uint8, protocol int, states StateSet, localPort, remotePort uint16) []byte {
	attrs := portFilter(localPort, remotePort)
	if family == 0 {
		const reqLen = 60 // struct inet_diag_req
		b := make([]byte, nlmsgHdrLen+reqLen+len(attrs))
		putNlmsgHdr(b, tcpDiagGetSock, seq)
		r := b[nlmsgHdrLen:]
		// family (ignored: both), src_len, dst_len, ext: 0; no cookie.
		binary.NativeEndian.PutUint32(r[44:48], ^uint32(0))
		binary.NativeEndian.PutUint32(r[48:52], ^uint32(0))
		binary.NativeEndian.PutUint32(r[52:56], uint32(states))
		copy(b[nlmsgHdrLen+reqLen:], attrs)
		return b
	}
	proto8 := uint8(protocol)
	if protocol > 255 {
		var v [4]byte
		binary.NativeEndian.PutUint32(v[:], uint32(protocol))
		attrs = appendAttr(attrs, 3, v[:]) // INET_DIAG_REQ_PROTOCOL
		proto8 = 0
	}
	const reqLen = 56 // struct inet_diag_req_v2
	b := make([]byte, nlmsgHdrLen+reqLen+len(attrs))
	putNlmsgHdr(b, sockDiagByFamily, seq)
	r := b[nlmsgHdrLen:]
	r[0] = family
	r[1] = proto8
	r[2] = 0 // idiag_ext: no extensions needed
	binary.NativeEndian.PutUint32(r[4:8], uint32(states))
	// The socket id stays zero: a dump with no cookie (set it to ~0).
	binary.NativeEndian.PutUint32(r[48:52], ^uint32(0))
	binary.NativeEndian.PutUint32(r[52:56], ^uint32(0))
	copy(b[nlmsgHdrLen+reqLen:], attrs)
	return b
}

// putNlmsgHdr writes a dump request's struct nlmsghdr at the start of b,
// whose length is the message's.
func putNlmsgHdr(b []byte, typ uint16, seq uint32) {
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:6], typ)
	binary.NativeEndian.PutUint16(b[6:8], 0x1|0x300) // NLM_F_REQUEST | NLM_F_DUMP
	binary.NativeEndian.PutUint32(b[8:12], seq)
}

// portFilter returns the request attribute INET_DIAG_REQ_BYTECODE that
// keeps sockets with the given local and remote ports (0: any), or
// nothing when both are 0.
func portFilter(localPort, remotePort uint16) []byte {
	var bc []byte
	if localPort != 0 {
		bc = append(bc, portOp(bcSourceEqual, localPort)...)
	}
	if remotePort != 0 {
		bc = append(bc, portOp(bcDestEqual, remotePort)...)
	}
	// Each op jumps to the next on a match and past the end (rejecting the
	// socket) otherwise; fix the reject offsets now that the length is known.
	for i := 0; i+8 <= len(bc); i += 8 {
		binary.NativeEndian.PutUint16(bc[i+2:i+4], uint16(len(bc)-i+4))
	}
	if len(bc) == 0 {
		return nil
	}
	return appendAttr(nil, 1, bc) // INET_DIAG_REQ_BYTECODE
}

// portOp encodes a port comparison: an op with the code, then an op whose
// "no" field carries the port (struct inet_diag_bc_op).
func portOp(code byte, port uint16) []byte {
	op := make([]byte, 8)
	op[0] = code
	op[1] = 8 // on a match, go on after both ops
	op[4], op[5] = 0, 0
	binary.NativeEndian.PutUint16(op[6:8], port)
	return op
}

func appendAttr(b []byte, typ uint16, val []byte) []byte {
	var h [4]byte
	binary.NativeEndian.PutUint16(h[0:2], uint16(rtaHdrLen+len(val)))
	binary.NativeEndian.PutUint16(h[2:4], typ)
	b = append(b, h[:]...)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
