package guard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Protocol numbers of the probes guard follows.
const (
	TCP uint8 = 6
	UDP uint8 = 17
)

// TCP flag bits, as in the TCP header's 13th byte.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagPSH = 0x08
	flagACK = 0x10
	flagURG = 0x20
)

// Kind is what sort of probe a first contact is, by protocol and TCP flags.
type Kind string

// The kinds of probes. A SYN is what any client sends first, so a scan of
// kind SYN is told from clients only by its outcomes; the others are never
// the first packet of a connection, and nmap and its kin use them because
// closed and open (or filtered) ports answer them differently.
const (
	KindSYN    Kind = "syn"    // SYN (nmap -sS and -sT, masscan, hping3 -S)
	KindNull   Kind = "null"   // no flag (nmap -sN)
	KindFIN    Kind = "fin"    // FIN alone (nmap -sF)
	KindXmas   Kind = "xmas"   // FIN, PSH and URG (nmap -sX)
	KindACK    Kind = "ack"    // ACK alone (nmap -sA, or a late packet)
	KindMaimon Kind = "maimon" // FIN and ACK (nmap -sM, or a late packet)
	KindFlags  Kind = "flags"  // another odd combination of flags
	KindUDP    Kind = "udp"    // a UDP datagram (nmap -sU)
	KindReset  Kind = "rst"    // a RST: an answer, never a probe; ignored
)

// Spoofable says whether a scan of this kind can be forged by a third
// party in someone else's name at no cost: the probe needs no answer, so
// its source address proves nothing. guard reports such scans but never
// blocks on them. A SYN scan is the exception only in degree (nmap's
// decoys forge SYNs too), but a SYN to an open port is answered, and a
// scanner must see the answers.
func (k Kind) Spoofable() bool { return k != KindSYN }

// kindOf classifies a TCP packet by its flags.
func kindOf(flags uint8) Kind {
	f := flags & (flagFIN | flagSYN | flagRST | flagPSH | flagACK | flagURG)
	switch {
	case f&flagRST != 0:
		return KindReset
	case f&flagSYN != 0 && f&flagACK == 0:
		return KindSYN
	case f == 0:
		return KindNull
	case f == flagFIN:
		return KindFIN
	case f == flagFIN|flagPSH|flagURG:
		return KindXmas
	case f == flagACK:
		return KindACK
	case f == flagFIN|flagACK:
		return KindMaimon
	}
	return KindFlags
}

// Probe is one packet that starts no known flow, as the kernel logged it.
type Probe struct {
	Time    time.Time
	Proto   uint8 // TCP or UDP
	Src     netip.AddrPort
	Dst     netip.AddrPort
	Flags   uint8 // TCP's flags
	Kind    Kind
	Payload []byte // the transport payload, as far as it was copied
}

// String is the probe as a line of a log.
func (p Probe) String() string {
	return fmt.Sprintf("%s %s -> %s %s", protoName(p.Proto), p.Src, p.Dst, p.Kind)
}

func protoName(p uint8) string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprint(p)
}

// ErrNotProbe is returned by ParsePacket for a packet guard does not
// follow: neither TCP nor UDP, or a later IPv4 fragment.
var ErrNotProbe = errors.New("not a TCP or UDP packet")

// ParsePacket reads a packet that starts with its IPv4 or IPv6 header, as
// NFLOG copies it, into a Probe. IPv6 extension headers are skipped. The
// transport header must be there (a snap length of 80 bytes is enough with
// no extension headers); the payload is what follows it, if copied.
func ParsePacket(b []byte, at time.Time) (Probe, error) {
	if len(b) < 1 {
		return Probe{}, errors.New("empty packet")
	}
	p := Probe{Time: at}
	var l4 []byte
	var proto uint8
	var src, dst netip.Addr
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return Probe{}, fmt.Errorf("IPv4 header: %d bytes, want 20", len(b))
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return Probe{}, fmt.Errorf("IPv4 header length %d in a %d-byte packet", ihl, len(b))
		}
		if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
			return Probe{}, ErrNotProbe // a later fragment: no transport header
		}
		proto = b[9]
		src = netip.AddrFrom4([4]byte(b[12:16]))
		dst = netip.AddrFrom4([4]byte(b[16:20]))
		l4 = b[ihl:]
	case 6:
		if len(b) < 40 {
			return Probe{}, fmt.Errorf("IPv6 header: %d bytes, want 40", len(b))
		}
		src = netip.AddrFrom16([16]byte(b[8:24]))
		dst = netip.AddrFrom16([16]byte(b[24:40]))
		next, rest := b[6], b[40:]
		for range 8 { // extension headers, at most a few
			switch next {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if len(rest) < 8 {
					return Probe{}, errors.New("IPv6 extension header cut short")
				}
				n := 8 + int(rest[1])*8
				if len(rest) < n {
					return Probe{}, errors.New("IPv6 extension header cut short")
				}
				next, rest = rest[0], rest[n:]
				continue
			case 44: // fragment
				if len(rest) < 8 {
					return Probe{}, errors.New("IPv6 fragment header cut short")
				}
				if binary.BigEndian.Uint16(rest[2:4])&0xfff8 != 0 {
					return Probe{}, ErrNotProbe
				}
				next, rest = rest[0], rest[8:]
				continue
			}
			break
		}
		proto, l4 = next, rest
	default:
		return Probe{}, fmt.Errorf("IP version %d", b[0]>>4)
	}
	p.Proto = proto
	switch proto {
	case TCP:
		if len(l4) < 14 {
			return Probe{}, fmt.Errorf("TCP header: %d bytes, want at least 14", len(l4))
		}
		p.Flags = l4[13]
		p.Kind = kindOf(p.Flags)
		if off := int(l4[12]>>4) * 4; off >= 20 && off <= len(l4) {
			p.Payload = l4[off:]
		}
	case UDP:
		if len(l4) < 8 {
			return Probe{}, fmt.Errorf("UDP header: %d bytes, want 8", len(l4))
		}
		p.Kind = KindUDP
		p.Payload = l4[8:]
	default:
		return Probe{}, ErrNotProbe
	}
	p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:2]))
	p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:4]))
	return p, nil
}
