package probe

import "encoding/binary"

// UDP services answer only a datagram they understand, so a UDP scan
// sends each well-known port a small request of its protocol, written here
// from the protocol's own specification. Every request is one that a
// server answers without any prior state (an error reply counts: any
// datagram back proves the port open), and none asks for a large answer.
// Other ports get an empty datagram.

// UDPPayload returns the datagram a UDP port scan sends to port: a request
// of the protocol usually served there, or an empty slice. The caller owns
// the returned slice.
func UDPPayload(port uint16) []byte {
	return append([]byte{}, udpPayloads[port]...)
}

// UDPPayloads returns every port's datagram, as UDPPayload would; the
// caller owns the map and its slices.
func UDPPayloads() map[uint16][]byte {
	m := make(map[uint16][]byte, len(udpPayloads))
	for p := range udpPayloads {
		m[p] = UDPPayload(p)
	}
	return m
}

// udpPayloads maps a port to its probe; read-only after initialisation.
var udpPayloads = map[uint16][]byte{
	53:    dnsVersionBind(),
	69:    tftpReadRequest(),
	111:   rpcNullCall(),
	123:   ntpClientRequest(),
	137:   netbiosNodeStatus(),
	161:   snmpGetSysDescr(),
	443:   quicVersionNegotiation(),
	1194:  openVPNHardReset(),
	1900:  ssdpMSearch(),
	3478:  stunBindingRequest(),
	5060:  sipOptions(),
	5351:  natPMPExternalAddress(),
	5353:  mdnsServicesQuery(),
	5683:  coapWellKnownCore(),
	11211: memcachedVersion(),
}

// probeID is the transaction ID of requests that carry one: answers echo
// it, and it spells "pc" for portctl in a capture.
const probeID = 0x7063

// dnsName encodes a domain name as DNS labels (RFC 1035 §3.1).
func dnsName(labels ...string) []byte {
	var b []byte
	for _, l := range labels {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

// dnsQuery is a DNS message of one question (RFC 1035 §4.1): a header
// with the given flags and QDCOUNT 1, then QNAME, QTYPE, QCLASS.
func dnsQuery(id, flags uint16, name []byte, qtype, qclass uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, 1) // QDCOUNT
	b = append(b, 0, 0, 0, 0, 0, 0)         // ANCOUNT, NSCOUNT, ARCOUNT
	b = append(b, name...)
	b = binary.BigEndian.AppendUint16(b, qtype)
	return binary.BigEndian.AppendUint16(b, qclass)
}

// dnsVersionBind asks "version.bind" TXT in class CHAOS: BIND, Unbound,
// dnsmasq, Knot and PowerDNS answer it themselves, without recursion, and
// servers that do not refuse it, which is an answer too.
func dnsVersionBind() []byte {
	const typeTXT, classCHAOS = 16, 3
	return dnsQuery(probeID, 0, dnsName("version", "bind"), typeTXT, classCHAOS)
}

// mdnsServicesQuery asks "_services._dns-sd._udp.local" PTR (RFC 6763 §9),
// which every DNS-SD responder answers. Sent from a port other than 5353 it
// is a legacy unicast query (RFC 6762 §6.7): the answer comes back to the
// sender's address and port, with the query's ID.
func mdnsServicesQuery() []byte {
	const typePTR, classIN = 12, 1
	return dnsQuery(probeID, 0, dnsName("_services", "_dns-sd", "_udp", "local"), typePTR, classIN)
}

// ntpClientRequest is an NTPv4 client-mode packet (RFC 5905 §7.3): LI 0,
// VN 4, Mode 3, and a transmit timestamp, which servers copy into the
// origin timestamp of their answer; all else zero. 48 bytes.
func ntpClientRequest() []byte {
	b := make([]byte, 48)
	b[0] = 0<<6 | 4<<3 | 3
	binary.BigEndian.PutUint64(b[40:], 0x706f7274_63746c00) // "portctl\0"
	return b
}

// snmpGetSysDescr is an SNMPv1 GetRequest (RFC 1157 §4.1.2) for sysDescr.0
// (1.3.6.1.2.1.1.1.0, RFC 1213) with community "public". Agents that speak
// v2c speak v1 too; an agent with another community stays silent, so the
// port then reads open|filtered, as it should.
func snmpGetSysDescr() []byte { return snmpGetRequest(0, oidSysDescr) }

// netbiosNodeStatus is a NetBIOS NODE STATUS REQUEST (RFC 1002 §4.2.17) for
// the wildcard name "*", which Windows and Samba hosts answer with their
// name table.
func netbiosNodeStatus() []byte {
	// First-level encoding (RFC 1001 §14.1): "*" padded with NULs to 16
	// bytes, each byte split into two nibbles written as 'A'+nibble.
	var name [16]byte
	name[0] = '*'
	enc := make([]byte, 0, 32)
	for _, c := range name {
		enc = append(enc, 'A'+c>>4, 'A'+c&0xf)
	}
	const typeNBSTAT, classIN = 0x21, 1
	return dnsQuery(probeID, 0, dnsName(string(enc)), typeNBSTAT, classIN)
}

// ssdpMSearch is an SSDP discovery request (UPnP Device Architecture 2.0
// §1.3.2) for every device and service.
func ssdpMSearch() []byte {
	return []byte("M-SEARCH * HTTP/1.1\r\n" +
		"HOST: 239.255.255.250:1900\r\n" +
		"MAN: \"ssdp:discover\"\r\n" +
		"MX: 1\r\n" +
		"ST: ssdp:all\r\n" +
		"\r\n")
}

// memcachedVersion is the text-protocol "version" command in the 8-byte
// frame memcached's UDP transport wants (request ID, sequence number 0,
// one datagram, reserved): a one-line answer, where "stats" would draw
// kilobytes.
func memcachedVersion() []byte {
	b := []byte{probeID >> 8, probeID & 0xff, 0, 0, 0, 1, 0, 0}
	return append(b, "version\r\n"...)
}

// sipOptions is a SIP OPTIONS request (RFC 3261 §11), which user agents and
// proxies answer with their capabilities or an error. The Via asks for
// rport (RFC 3581), so the answer comes back to the source address and
// port whatever the Via's host says.
func sipOptions() []byte {
	return []byte("OPTIONS sip:portctl.invalid SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP portctl.invalid:5060;branch=z9hG4bK-portctl-7063;rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:portctl@portctl.invalid>;tag=7063\r\n" +
		"To: <sip:portctl.invalid>\r\n" +
		"Call-ID: 7063-portctl-probe@portctl.invalid\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Contact: <sip:portctl@portctl.invalid>\r\n" +
		"Accept: application/sdp\r\n" +
		"Content-Length: 0\r\n" +
		"\r\n")
}

// tftpReadRequest is a TFTP RRQ (RFC 1350 §5) in octet mode for a file no
// server has: the ERROR packet that comes back ("file not found") proves
// the port open. It comes from another port (udpAnswersFromOtherPort).
func tftpReadRequest() []byte {
	b := []byte{0, 1} // opcode RRQ
	b = append(b, "portctl-probe-7063"...)
	b = append(b, 0)
	b = append(b, "octet"...)
	return append(b, 0)
}

// quicVersionNegotiation is a QUIC long-header packet (RFC 8999 §5.1) with
// version 0x1a2a3a4a, of the reserved form 0x?a?a?a?a no implementation
// supports (RFC 9000 §15), so a server answers with a Version Negotiation
// packet (RFC 9000 §6.1). Servers ignore such packets shorter than the
// 1200 bytes a client's first datagram has (RFC 9000 §14.1): padded to
// that.
func quicVersionNegotiation() []byte {
	b := make([]byte, 0, 1200)
	b = append(b, 0xc0)                                    // long header, fixed bit
	b = binary.BigEndian.AppendUint32(b, 0x1a2a3a4a)       // version
	b = append(b, 8, 'p', 'o', 'r', 't', 'c', 't', 'l', 0) // destination connection ID
	b = append(b, byte(len(quicSourceCID)))
	b = append(b, quicSourceCID...) // source connection ID
	return b[:1200]
}

// quicSourceCID is the source connection ID of quicVersionNegotiation,
// which the server's answer carries back as its destination connection ID.
const quicSourceCID = "probe\x70\x63\x00"

// rpcNullCall is an ONC RPC call (RFC 5531 §9) of procedure 0 (NULL) of
// the portmapper (program 100000, version 2, RFC 1833), with no
// credentials, in XDR: every rpcbind answers it with an empty reply.
func rpcNullCall() []byte {
	var b []byte
	for _, v := range []uint32{
		probeID, // xid
		0,       // CALL
		2,       // RPC version
		100000,  // program: portmapper
		2,       // program version
		0,       // procedure NULL
		0, 0,    // credentials: AUTH_NONE, length 0
		0, 0, // verifier: AUTH_NONE, length 0
	} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// stunBindingRequest is a STUN Binding request (RFC 8489 §5, §6) with no
// attributes: the magic cookie and a 96-bit transaction ID.
func stunBindingRequest() []byte {
	b := []byte{0x00, 0x01, 0x00, 0x00}              // Binding request, length 0
	b = binary.BigEndian.AppendUint32(b, 0x2112a442) // magic cookie
	return append(b, "portctl-7063"...)              // transaction ID
}

// natPMPExternalAddress is a NAT-PMP request for the gateway's external
// address (RFC 6886 §3.2): version 0, opcode 0.
func natPMPExternalAddress() []byte { return []byte{0, 0} }

// coapWellKnownCore is a confirmable CoAP GET of /.well-known/core
// (RFC 7252 §3, RFC 6690 §4), the resource directory every CoAP server
// serves.
func coapWellKnownCore() []byte {
	b := []byte{1<<6 | 0<<4 | 0, 0x01, probeID >> 8, probeID & 0xff} // ver 1, CON, no token; GET; message ID
	b = append(b, 11<<4|11)                                          // option Uri-Path (11), length 11
	b = append(b, ".well-known"...)
	b = append(b, 0<<4|4) // Uri-Path again (delta 0), length 4
	return append(b, "core"...)
}

// openVPNHardReset is an OpenVPN P_CONTROL_HARD_RESET_CLIENT_V2 packet
// (OpenVPN's protocol description, "ssl.h"): opcode 7 in the top five
// bits, key ID 0, an 8-byte session ID, an empty ACK array and message
// packet ID 0. A server without tls-auth or tls-crypt answers with its
// own hard reset; one with them stays silent.
func openVPNHardReset() []byte {
	b := []byte{7 << 3}
	b = append(b, "portctl\x01"...) // session ID
	b = append(b, 0)                // ACK array length
	return append(b, 0, 0, 0, 0)    // message packet ID
}
