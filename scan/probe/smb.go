package probe

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"

	"github.com/portctl/portctl/registry"
)

// This file holds the probes of Windows' protocols, as Samba and xrdp
// speak them too: SMB and RDP; and SOCKS 5.

// smbNegotiate is an SMB1 NEGOTIATE request ([MS-CIFS] 2.2.4.52) over
// NetBIOS session framing (RFC 1002 §4.3.1, a 4-byte length), offering
// the NT LM 0.12 dialect and SMB 2.002 and "SMB 2.???" ([MS-SMB2]
// 3.3.5.3.1): a server that speaks SMB 2 or later answers with an SMB2
// NEGOTIATE response, an SMB1-only server with an SMB1 one.
func smbNegotiate() []byte {
	var dialects []byte
	for _, d := range []string{"NT LM 0.12", "SMB 2.002", "SMB 2.???"} {
		dialects = append(dialects, 0x02)
		dialects = append(dialects, d...)
		dialects = append(dialects, 0)
	}
	h := []byte{0xff, 'S', 'M', 'B', 0x72} // protocol, command NEGOTIATE
	h = append(h, 0, 0, 0, 0)              // status
	h = append(h, 0x18)                    // flags: canonical paths, case-insensitive
	h = append(h, 0x01, 0x48)              // flags2: long names, extended security, unicode off
	h = append(h, make([]byte, 12)...)     // PID high, security features, reserved
	h = append(h, 0, 0, 0xff, 0xfe, 0, 0, 0x70, 0x63)
	h = append(h, 0) // word count
	h = binary.LittleEndian.AppendUint16(h, uint16(len(dialects)))
	h = append(h, dialects...)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(h))), h...)
}

// smbDialects name SMB2 dialect revisions ([MS-SMB2] 2.2.4).
var smbDialects = map[uint16]string{0x0202: "2.0.2", 0x0210: "2.1", 0x02ff: "2.x (wildcard)", 0x0300: "3.0", 0x0302: "3.0.2", 0x0311: "3.1.1"}

// matchSMB reads the answer to smbNegotiate: an SMB2 NEGOTIATE response
// ([MS-SMB2] 2.2.4) or an SMB1 one ([MS-CIFS] 2.2.4.52.2), after the
// 4-byte session header.
func matchSMB(b []byte) (Service, bool) {
	if len(b) < 4+4 || b[0] != 0 {
		return Service{}, false
	}
	msg := b[4:min(len(b), 4+int(binary.BigEndian.Uint32(b)&0xffffff))]
	s := Service{Name: "microsoft-ds", Confidence: 10, Evidence: Escape(b[:min(len(b), 12)])}
	switch {
	case bytes.HasPrefix(msg, []byte("\xfeSMB")) && len(msg) >= 64+8:
		if binary.LittleEndian.Uint16(msg[12:]) != 0 { // command NEGOTIATE
			return Service{}, false
		}
		body := msg[64:]
		if binary.LittleEndian.Uint16(body) != 65 {
			return Service{}, false
		}
		dialect := binary.LittleEndian.Uint16(body[4:])
		name, ok := smbDialects[dialect]
		if !ok {
			name = fmt.Sprintf("0x%04x", dialect)
		}
		s.add("protocol", "SMB "+name)
		if binary.LittleEndian.Uint16(body[2:])&0x02 != 0 {
			s.add("signing", "required")
		} else {
			s.add("signing", "enabled, not required")
		}
	case bytes.HasPrefix(msg, []byte("\xffSMBr")) && len(msg) >= 32+3:
		s.add("protocol", "SMB 1")
		if binary.LittleEndian.Uint16(msg[33:]) == 0xffff {
			s.add("smb1", "no dialect accepted")
		}
	default:
		return Service{}, false
	}
	return s, true
}

func (d *detector) probeSMB(c net.Conn) (Service, bool) {
	b := d.exchange(c, smbNegotiate(), func(b []byte) bool {
		return len(b) >= 4 && len(b) >= 4+int(binary.BigEndian.Uint32(b)&0xffffff)
	})
	s, ok := matchSMB(b)
	if !ok {
		return s, false
	}
	s.Probe = "smb-negotiate"
	// nmap's file names the SMB server from its answer to an SMB1
	// negotiation of old dialects; ask it when loaded.
	return d.nmapFollow(s, "SMBProgNeg", "netbios-ssn", "microsoft-ds"), true
}

// socks5Greeting is a SOCKS 5 method selection message (RFC 1928 §3)
// offering "no authentication" only.
var socks5Greeting = []byte{5, 1, 0}

// matchSOCKS5 reads the method selection reply: version 5 and the method
// chosen, 0xff when none is acceptable.
func matchSOCKS5(b []byte) (Service, bool) {
	if len(b) != 2 || b[0] != 5 || b[1] > 3 && b[1] != 0xff {
		return Service{}, false
	}
	s := Service{Name: "socks5", Confidence: 9, Evidence: Escape(b)}
	switch b[1] {
	case 0:
		s.add("auth", "none")
		s.Findings = append(s.Findings, noAuth("The SOCKS proxy", "relay connections through it"))
	case 2:
		s.add("auth", "username/password")
	case 0xff:
		s.add("auth", "required (no acceptable method offered)")
	default:
		s.add("auth", fmt.Sprintf("method %d", b[1]))
	}
	return s, true
}

func (d *detector) probeSOCKS(c net.Conn) (Service, bool) {
	return d.ask(c, "socks5", socks5Greeting, func(b []byte) bool { return len(b) >= 2 }, matchSOCKS5)
}

// rdpConnectionRequest is an X.224 Connection Request in a TPKT (RFC 1006,
// ITU-T X.224 §13.3) carrying an RDP Negotiation Request ([MS-RDPBCGR]
// 2.2.1.1.1) for TLS or CredSSP.
var rdpConnectionRequest = []byte{
	3, 0, 0, 19, // TPKT version 3, length 19
	14, 0xe0, 0, 0, 0, 0, 0, // X.224 CR: length 14, destination and source references, class 0
	1, 0, 8, 0, 3, 0, 0, 0, // RDP_NEG_REQ: flags 0, length 8, PROTOCOL_SSL | PROTOCOL_HYBRID
}

// rdpProtocols name the security protocols of an RDP Negotiation
// Response ([MS-RDPBCGR] 2.2.1.2.1).
var rdpProtocols = map[uint32]string{0: "standard RDP security", 1: "TLS", 2: "CredSSP (NLA)", 8: "CredSSP with Early User Authorization"}

// matchRDP reads the answer to rdpConnectionRequest: an X.224 Connection
// Confirm (0xd0) in a TPKT, with an RDP Negotiation Response (2) or
// Failure (3), or none from a server of before RDP 5.2.
func matchRDP(b []byte) (Service, bool) {
	if len(b) < 11 || b[0] != 3 || b[1] != 0 || int(binary.BigEndian.Uint16(b[2:])) != len(b) || b[5] != 0xd0 {
		return Service{}, false
	}
	s := Service{Name: "ms-wbt-server", Confidence: 10, Evidence: Escape(b)}
	if len(b) >= 19 {
		v := binary.LittleEndian.Uint32(b[15:])
		switch b[11] {
		case 2:
			p, ok := rdpProtocols[v]
			if !ok {
				p = fmt.Sprintf("0x%x", v)
			}
			s.add("security", p)
			if v == 0 {
				s.Findings = append(s.Findings, Finding{Severity: registry.SevMedium, ID: "rdp-standard-security",
					Message: "RDP chose its own standard security, not TLS: the session key exchange can be attacked from the network"})
			}
		case 3:
			s.add("negotiation", fmt.Sprintf("failed, code %d", v))
		}
	}
	return s, true
}

func (d *detector) probeRDP(c net.Conn) (Service, bool) {
	b := d.exchange(c, rdpConnectionRequest, func(b []byte) bool { return len(b) >= 4 && len(b) >= int(binary.BigEndian.Uint16(b[2:])) })
	s, ok := matchRDP(b)
	if !ok {
		return s, false
	}
	// Not nmap's TerminalServer lines: they take xrdp for Microsoft's.
	s.Probe = "rdp-negotiate"
	return s, true
}
