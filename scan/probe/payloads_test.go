package probe_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"testing"

	"github.com/portctl/portctl/scan/probe"
)

// The payloads are checked by decoding them with parsers written here from
// the same specifications, independently of the code that builds them.

type dnsQuestion struct {
	id, flags, qdcount, ancount, nscount, arcount uint16
	labels                                        []string
	qtype, qclass                                 uint16
}

// parseDNSQuery decodes a DNS message of one question (RFC 1035 §4.1)
// with no compression, and nothing after the question.
func parseDNSQuery(b []byte) (dnsQuestion, error) {
	var q dnsQuestion
	if len(b) < 12 {
		return q, fmt.Errorf("header: %d bytes", len(b))
	}
	be := binary.BigEndian
	q.id, q.flags = be.Uint16(b), be.Uint16(b[2:])
	q.qdcount, q.ancount, q.nscount, q.arcount = be.Uint16(b[4:]), be.Uint16(b[6:]), be.Uint16(b[8:]), be.Uint16(b[10:])
	b = b[12:]
	for {
		if len(b) == 0 {
			return q, fmt.Errorf("name runs off the end")
		}
		n := int(b[0])
		if n&0xc0 != 0 {
			return q, fmt.Errorf("label length %#x: compression or reserved", n)
		}
		b = b[1:]
		if n == 0 {
			break
		}
		if len(b) < n {
			return q, fmt.Errorf("label of %d bytes runs off the end", n)
		}
		q.labels = append(q.labels, string(b[:n]))
		b = b[n:]
	}
	if len(b) != 4 {
		return q, fmt.Errorf("%d bytes after the name; want 4", len(b))
	}
	q.qtype, q.qclass = be.Uint16(b), be.Uint16(b[2:])
	return q, nil
}

func TestUDPPayloadDNS(t *testing.T) {
	tests := []struct {
		port          uint16
		labels        []string
		qtype, qclass uint16
	}{
		{53, []string{"version", "bind"}, 16, 3},                         // TXT, CHAOS
		{5353, []string{"_services", "_dns-sd", "_udp", "local"}, 12, 1}, // PTR, IN
	}
	for _, tt := range tests {
		q, err := parseDNSQuery(probe.UDPPayload(tt.port))
		if err != nil {
			t.Errorf("port %d: %v", tt.port, err)
			continue
		}
		if q.flags&0x8000 != 0 || q.flags>>11&0xf != 0 {
			t.Errorf("port %d: flags %#04x; want a standard query", tt.port, q.flags)
		}
		if q.id == 0 {
			t.Errorf("port %d: ID 0; want one a legacy mDNS answer can echo", tt.port)
		}
		if q.qdcount != 1 || q.ancount+q.nscount+q.arcount != 0 {
			t.Errorf("port %d: counts %d/%d/%d/%d; want 1/0/0/0", tt.port, q.qdcount, q.ancount, q.nscount, q.arcount)
		}
		if strings.Join(q.labels, ".") != strings.Join(tt.labels, ".") || q.qtype != tt.qtype || q.qclass != tt.qclass {
			t.Errorf("port %d: question %v type %d class %d; want %v type %d class %d", tt.port, q.labels, q.qtype, q.qclass, tt.labels, tt.qtype, tt.qclass)
		}
	}
}

func TestUDPPayloadNetBIOS(t *testing.T) {
	q, err := parseDNSQuery(probe.UDPPayload(137))
	if err != nil {
		t.Fatal(err)
	}
	if len(q.labels) != 1 || len(q.labels[0]) != 32 {
		t.Fatalf("name %q; want one label of 32 characters", q.labels)
	}
	// Undo the first-level encoding (RFC 1001 §14.1).
	var name []byte
	enc := q.labels[0]
	for i := 0; i < 32; i += 2 {
		hi, lo := enc[i]-'A', enc[i+1]-'A'
		if hi > 15 || lo > 15 {
			t.Fatalf("name %q: %q is not in A-P", enc, enc[i:i+2])
		}
		name = append(name, hi<<4|lo)
	}
	if want := "*" + strings.Repeat("\x00", 15); string(name) != want {
		t.Errorf("NetBIOS name %q; want %q", name, want)
	}
	if q.qtype != 0x21 || q.qclass != 1 || q.qdcount != 1 {
		t.Errorf("type %#x class %d qdcount %d; want NBSTAT (0x21), IN, 1", q.qtype, q.qclass, q.qdcount)
	}
}

func TestUDPPayloadNTP(t *testing.T) {
	b := probe.UDPPayload(123)
	if len(b) != 48 {
		t.Fatalf("NTP packet of %d bytes; want 48", len(b))
	}
	if li, vn, mode := b[0]>>6, b[0]>>3&7, b[0]&7; li != 0 || vn != 4 || mode != 3 {
		t.Errorf("LI %d VN %d mode %d; want 0, 4, 3 (client)", li, vn, mode)
	}
	if binary.BigEndian.Uint64(b[40:]) == 0 {
		t.Error("transmit timestamp 0; want one for the server to echo")
	}
}

// berNode is one decoded BER TLV (X.690, definite lengths only).
type berNode struct {
	tag      byte
	content  []byte
	children []berNode
}

func parseBER(b []byte) (berNode, []byte, error) {
	if len(b) < 2 {
		return berNode{}, nil, fmt.Errorf("TLV of %d bytes", len(b))
	}
	tag, n := b[0], int(b[1])
	if tag&0x1f == 0x1f {
		return berNode{}, nil, fmt.Errorf("multi-byte tag %#x", tag)
	}
	b = b[2:]
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 2 || len(b) < k {
			return berNode{}, nil, fmt.Errorf("length of %d bytes", k)
		}
		n = 0
		for _, c := range b[:k] {
			n = n<<8 | int(c)
		}
		b = b[k:]
	}
	if len(b) < n {
		return berNode{}, nil, fmt.Errorf("tag %#x: content of %d bytes, %d left", tag, n, len(b))
	}
	node := berNode{tag: tag, content: b[:n]}
	if tag&0x20 != 0 { // constructed
		rest := node.content
		for len(rest) > 0 {
			c, r, err := parseBER(rest)
			if err != nil {
				return berNode{}, nil, err
			}
			node.children = append(node.children, c)
			rest = r
		}
	}
	return node, b[n:], nil
}

func berInteger(n berNode) int64 {
	var v int64
	for i, c := range n.content {
		if i == 0 && c&0x80 != 0 {
			v = -1
		}
		v = v<<8 | int64(c)
	}
	return v
}

func berOID(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	parts := []string{strconv.Itoa(int(b[0]) / 40), strconv.Itoa(int(b[0]) % 40)}
	v := 0
	for _, c := range b[1:] {
		v = v<<7 | int(c&0x7f)
		if c&0x80 == 0 {
			parts = append(parts, strconv.Itoa(v))
			v = 0
		}
	}
	return strings.Join(parts, ".")
}

func TestUDPPayloadSNMP(t *testing.T) {
	msg, rest, err := parseBER(probe.UDPPayload(161))
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the message", len(rest))
	}
	// Message ::= SEQUENCE { version INTEGER, community OCTET STRING, data PDUs }
	if msg.tag != 0x30 || len(msg.children) != 3 {
		t.Fatalf("message: tag %#x with %d parts; want SEQUENCE of 3", msg.tag, len(msg.children))
	}
	version, community, pdu := msg.children[0], msg.children[1], msg.children[2]
	if version.tag != 0x02 || berInteger(version) != 0 {
		t.Errorf("version %x; want INTEGER 0 (SNMPv1)", version.content)
	}
	if community.tag != 0x04 || string(community.content) != "public" {
		t.Errorf("community %q; want OCTET STRING \"public\"", community.content)
	}
	// GetRequest-PDU ::= [0] { request-id, error-status, error-index, variable-bindings }
	if pdu.tag != 0xa0 || len(pdu.children) != 4 {
		t.Fatalf("PDU: tag %#x with %d parts; want GetRequest [0] of 4", pdu.tag, len(pdu.children))
	}
	if es, ei := berInteger(pdu.children[1]), berInteger(pdu.children[2]); es != 0 || ei != 0 {
		t.Errorf("error-status %d, error-index %d; want 0, 0", es, ei)
	}
	vbl := pdu.children[3]
	if vbl.tag != 0x30 || len(vbl.children) != 1 || len(vbl.children[0].children) != 2 {
		t.Fatalf("variable-bindings: %+v; want one (name, value) pair", vbl)
	}
	name, value := vbl.children[0].children[0], vbl.children[0].children[1]
	if name.tag != 0x06 || berOID(name.content) != "1.3.6.1.2.1.1.1.0" {
		t.Errorf("name %s; want OID 1.3.6.1.2.1.1.1.0 (sysDescr.0)", berOID(name.content))
	}
	if value.tag != 0x05 || len(value.content) != 0 {
		t.Errorf("value tag %#x; want NULL", value.tag)
	}
}

func TestUDPPayloadSSDP(t *testing.T) {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(probe.UDPPayload(1900))))
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != "M-SEARCH" || req.RequestURI != "*" {
		t.Errorf("request line %s %s; want M-SEARCH *", req.Method, req.RequestURI)
	}
	for k, want := range map[string]string{"Man": `"ssdp:discover"`, "St": "ssdp:all", "Mx": "1"} {
		if got := req.Header.Get(k); got != want {
			t.Errorf("%s: %q; want %q", k, got, want)
		}
	}
	if req.Host != "239.255.255.250:1900" {
		t.Errorf("HOST %q; want 239.255.255.250:1900", req.Host)
	}
}

func TestUDPPayloadSIP(t *testing.T) {
	b := probe.UDPPayload(5060)
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(b)))
	line, err := r.ReadLine()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "OPTIONS" || !strings.HasPrefix(f[1], "sip:") || f[2] != "SIP/2.0" {
		t.Errorf("request line %q; want OPTIONS sip:… SIP/2.0", line)
	}
	h, err := r.ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	// The headers every request must have (RFC 3261 §8.1.1).
	for _, k := range []string{"To", "From", "Cseq", "Call-Id", "Max-Forwards", "Via"} {
		if h.Get(k) == "" {
			t.Errorf("no %s header", k)
		}
	}
	if got := h.Get("Cseq"); got != "1 OPTIONS" {
		t.Errorf("CSeq %q; want \"1 OPTIONS\"", got)
	}
	via := h.Get("Via")
	if !strings.HasPrefix(via, "SIP/2.0/UDP ") || !strings.Contains(via, ";branch=z9hG4bK") || !strings.HasSuffix(via, ";rport") {
		t.Errorf("Via %q; want SIP/2.0/UDP with an RFC 3261 branch and rport", via)
	}
	if !strings.Contains(h.Get("From"), ";tag=") {
		t.Errorf("From %q has no tag", h.Get("From"))
	}
	if h.Get("Content-Length") != "0" || !bytes.HasSuffix(b, []byte("\r\n\r\n")) {
		t.Error("want Content-Length 0 and no body")
	}
}

func TestUDPPayloadMemcached(t *testing.T) {
	b := probe.UDPPayload(11211)
	if len(b) < 8 {
		t.Fatalf("%d bytes; want the 8-byte frame header and a command", len(b))
	}
	be := binary.BigEndian
	if seq, total, res := be.Uint16(b[2:]), be.Uint16(b[4:]), be.Uint16(b[6:]); seq != 0 || total != 1 || res != 0 {
		t.Errorf("frame header: sequence %d, total %d, reserved %d; want 0, 1, 0", seq, total, res)
	}
	if cmd := string(b[8:]); cmd != "version\r\n" {
		t.Errorf("command %q; want \"version\\r\\n\"", cmd)
	}
}

func TestUDPPayloadTFTP(t *testing.T) {
	b := probe.UDPPayload(69)
	if len(b) < 4 || binary.BigEndian.Uint16(b) != 1 {
		t.Fatalf("%q: want opcode 1 (RRQ)", b)
	}
	f := strings.Split(string(b[2:]), "\x00")
	if len(f) != 3 || f[0] == "" || !strings.EqualFold(f[1], "octet") || f[2] != "" {
		t.Errorf("RRQ fields %q; want filename, \"octet\", each NUL-terminated", f)
	}
}

func TestUDPPayloadQUIC(t *testing.T) {
	b := probe.UDPPayload(443)
	if len(b) < 1200 {
		t.Errorf("%d bytes; want at least 1200, or servers may drop it", len(b))
	}
	if len(b) < 7 || b[0]&0x80 == 0 {
		t.Fatalf("first byte %#x: want a long header", b[0])
	}
	v := binary.BigEndian.Uint32(b[1:])
	if v&0x0f0f0f0f != 0x0a0a0a0a {
		t.Errorf("version %#08x: want a reserved 0x?a?a?a?a one no server supports", v)
	}
	dcil := int(b[5])
	if dcil < 8 || dcil > 20 || len(b) < 6+dcil+1 {
		t.Fatalf("destination connection ID length %d; want 8-20", dcil)
	}
	if scil := int(b[6+dcil]); scil > 20 || len(b) < 7+dcil+scil {
		t.Errorf("source connection ID length %d; want at most 20", scil)
	}
}

func TestUDPPayloadSmall(t *testing.T) {
	be := binary.BigEndian
	rpc := probe.UDPPayload(111)
	if len(rpc) != 40 {
		t.Errorf("RPC call of %d bytes; want 40", len(rpc))
	} else {
		var w [10]uint32
		for i := range w {
			w[i] = be.Uint32(rpc[4*i:])
		}
		if w[1] != 0 || w[2] != 2 || w[3] != 100000 || w[4] != 2 || w[5] != 0 || w[6]|w[7]|w[8]|w[9] != 0 {
			t.Errorf("RPC words %v; want CALL, RPC 2, portmapper 100000 v2, NULL, no auth", w[1:])
		}
	}
	stun := probe.UDPPayload(3478)
	if len(stun) != 20 || be.Uint16(stun) != 0x0001 || int(be.Uint16(stun[2:])) != len(stun)-20 || be.Uint32(stun[4:]) != 0x2112a442 {
		t.Errorf("STUN % x: want a 20-byte Binding request with the magic cookie", stun)
	}
	if b := probe.UDPPayload(5351); !bytes.Equal(b, []byte{0, 0}) {
		t.Errorf("NAT-PMP % x; want 00 00", b)
	}
	if b := probe.UDPPayload(1194); len(b) != 14 || b[0]>>3 != 7 || b[0]&7 != 0 || b[9] != 0 {
		t.Errorf("OpenVPN % x: want P_CONTROL_HARD_RESET_CLIENT_V2, key 0, no ACKs", b)
	}
}

func TestUDPPayloadCoAP(t *testing.T) {
	b := probe.UDPPayload(5683)
	if len(b) < 4 {
		t.Fatalf("%d bytes", len(b))
	}
	if ver, typ, tkl, code := b[0]>>6, b[0]>>4&3, b[0]&0xf, b[1]; ver != 1 || typ != 0 || tkl != 0 || code != 0x01 {
		t.Errorf("version %d type %d token length %d code %#x; want 1, CON, 0, GET", ver, typ, tkl, code)
	}
	var path []string
	opt := 0
	for rest := b[4:]; len(rest) > 0; {
		delta, n := int(rest[0]>>4), int(rest[0]&0xf)
		if delta > 12 || n > 12 {
			t.Fatalf("extended option delta or length: not used here")
		}
		opt += delta
		rest = rest[1:]
		if len(rest) < n {
			t.Fatalf("option %d runs off the end", opt)
		}
		if opt == 11 {
			path = append(path, string(rest[:n]))
		}
		rest = rest[n:]
	}
	if got := strings.Join(path, "/"); got != ".well-known/core" {
		t.Errorf("Uri-Path %q; want .well-known/core", got)
	}
}

func TestUDPPayloadOthers(t *testing.T) {
	for _, port := range []uint16{0, 9, 7, 65535} {
		if b := probe.UDPPayload(port); len(b) != 0 {
			t.Errorf("UDPPayload(%d) = % x; want empty", port, b)
		}
	}
	b := probe.UDPPayload(53)
	b[0] ^= 0xff
	if probe.UDPPayload(53)[0] == b[0] {
		t.Error("UDPPayload returns the table's own slice; want a copy")
	}
}
