package scan

import (
	"encoding/binary"
	"time"

	"github.com/portctl/portctl/scan/probe"
)

// UDPConfig configures the UDP engine. The zero value works: every field
// has a default.
type UDPConfig struct {
	// Concurrency is the number of probes in flight, each holding one
	// socket (0: 1024, at most what the open-file limit allows).
	Concurrency int
	// Timeout, when set, is the fixed time to wait for an answer to each
	// datagram. When 0, it adapts to measured round trips, starting at
	// InitialTimeout and staying between MinTimeout and MaxTimeout.
	Timeout time.Duration
	// Retries is how many more datagrams an unanswered port gets (default
	// 2, as the connect engine's; -1 for none). An answer of any kind is never retried.
	Retries int
	// Rate caps datagrams sent per second, retries included (0: no cap).
	Rate int
}

func (c UDPConfig) retries() int { return retries(c.Retries, 2) }

func (c UDPConfig) concurrency(fileLimit int) int {
	return ConnectConfig{Concurrency: c.Concurrency}.concurrency(fileLimit)
}

// Reasons only the UDP engine reports, named as nmap names them.
const (
	ReasonProtoUnreach Reason = "proto-unreach"
	ReasonTimeExceeded Reason = "time-exceeded"
)

// ICMP types and codes the UDP engine tells apart (RFC 792, RFC 1812
// §5.2.7.1, RFC 4443 §3).
const (
	icmpDestUnreach   = 3
	icmpTimeExceeded  = 11
	icmp6DestUnreach  = 1
	icmp6TimeExceeded = 3
)

// classifyICMP maps an ICMP (v6 when icmp6) error about a probe to a port
// state, as nmap does: port unreachable is closed, the other unreachables
// and time exceeded are filtered with their own reason. ok is false for
// messages that say nothing about the port, such as fragmentation needed
// (the kernel has learnt the path MTU and the retry will get through).
func classifyICMP(icmp6 bool, typ, code uint8) (st State, reason Reason, ok bool) {
	if icmp6 {
		switch typ {
		case icmp6DestUnreach:
			switch code {
			case 0, 2: // no route, beyond scope of source address
				return Filtered, ReasonNetUnreach, true
			case 1, 5, 6: // administratively prohibited, source address failed policy, reject route
				return Filtered, ReasonAdminProhibited, true
			case 3: // address unreachable
				return Filtered, ReasonHostUnreach, true
			case 4:
				return Closed, ReasonPortUnreach, true
			}
			return Filtered, ReasonHostUnreach, true
		case icmp6TimeExceeded:
			return Filtered, ReasonTimeExceeded, true
		}
		return 0, "", false
	}
	switch typ {
	case icmpDestUnreach:
		switch code {
		case 0, 6, 11: // net unreachable, unknown, for TOS
			return Filtered, ReasonNetUnreach, true
		case 1, 5, 7, 12: // host unreachable, source route failed, unknown, for TOS
			return Filtered, ReasonHostUnreach, true
		case 2:
			return Filtered, ReasonProtoUnreach, true
		case 3:
			return Closed, ReasonPortUnreach, true
		case 4: // fragmentation needed
			return 0, "", false
		case 9, 10, 13, 14, 15: // net, host, communication prohibited; precedence
			return Filtered, ReasonAdminProhibited, true
		}
		return Filtered, ReasonHostUnreach, true
	case icmpTimeExceeded:
		return Filtered, ReasonTimeExceeded, true
	}
	return 0, "", false
}

// extendedErr is struct sock_extended_err from
// include/uapi/linux/errqueue.h, as IP_RECVERR and IPV6_RECVERR deliver it.
type extendedErr struct {
	Errno  uint32
	Origin uint8
	Type   uint8
	Code   uint8
	Pad    uint8
	Info   uint32
	Data   uint32
}

// sock_extended_err origins (include/uapi/linux/errqueue.h).
const (
	eeOriginLocal = 1
	eeOriginICMP  = 2
	eeOriginICMP6 = 3
)

const extendedErrLen = 16

// parseExtendedErr decodes a sock_extended_err from a control message's
// data, whose fields are in the host's byte order.
func parseExtendedErr(b []byte, order binary.ByteOrder) (extendedErr, bool) {
	if len(b) < extendedErrLen {
		return extendedErr{}, false
	}
	return extendedErr{
		Errno:  order.Uint32(b[0:]),
		Origin: b[4],
		Type:   b[5],
		Code:   b[6],
		Pad:    b[7],
		Info:   order.Uint32(b[8:]),
		Data:   order.Uint32(b[12:]),
	}, true
}

// classify maps an extended error to a port state; ok is false when it
// says nothing about the port.
func (e extendedErr) classify() (State, Reason, bool) {
	switch e.Origin {
	case eeOriginICMP:
		return classifyICMP(false, e.Type, e.Code)
	case eeOriginICMP6:
		return classifyICMP(true, e.Type, e.Code)
	}
	return 0, "", false
}

// udpAnswersFromOtherPort reports whether the protocol at port replies from
// another source port than the one the request went to, so that a socket
// connected to the request's port would never see the answer: TFTP answers
// from a fresh port per transfer (RFC 1350 §4), and many SSDP devices answer
// M-SEARCH from a socket of their own.
func udpAnswersFromOtherPort(port uint16) bool {
	return port == 69 || port == 1900
}

// udpPayloads are the datagrams the UDP engines send, per port.
var udpPayloads = probe.UDPPayloads()
