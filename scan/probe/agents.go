package probe

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// This file holds the probes and matchers of agents and daemons that
// answer one short request: the Zabbix agent, SpamAssassin's spamd,
// Munin's node, NUT's upsd, iperf3, gpsd and MPD.

// zabbixVersion is a Zabbix agent request for the item agent.version in
// the Zabbix protocol's framing ("ZBXD", flags 1, an 8-byte
// little-endian length, the data).
func zabbixVersion() []byte {
	b := []byte("ZBXD\x01")
	b = binary.LittleEndian.AppendUint64(b, uint64(len("agent.version")))
	return append(b, "agent.version"...)
}

// matchZabbix reads the answer to zabbixVersion: the same framing around
// the version, or ZBX_NOTSUPPORTED when the item is refused.
func matchZabbix(b []byte) (Service, bool) {
	if len(b) < 13 || !bytes.HasPrefix(b, []byte("ZBXD")) || b[4]&1 == 0 {
		return Service{}, false
	}
	n := binary.LittleEndian.Uint32(b[5:])
	if int(n) > len(b)-13 {
		return Service{}, false
	}
	data := b[13 : 13+n]
	s := Service{Name: "zabbix-agent", Product: "Zabbix agent", Confidence: 10, Evidence: Escape(b[:min(len(b), 13+int(n))])}
	if v := printable(data); len(v) > 0 && v[0] >= '0' && v[0] <= '9' {
		s.Version = v
	} else {
		s.add("answer", v)
	}
	return s, true
}

// spamdPing is SpamAssassin's spamc protocol PING.
const spamdPing = "PING SPAMC/1.5\r\n\r\n"

var spamdRE = regexp.MustCompile(`^SPAMD/([0-9]\.[0-9]+) ([0-9]+) (.*)`)

// matchSpamd reads spamd's answer to spamdPing ("SPAMD/1.5 0 PONG"), or
// its complaint about any other line ("SPAMD/1.0 76 Bad header line").
func matchSpamd(b []byte) (Service, bool) {
	m := spamdRE.FindSubmatch(firstLine(b))
	if m == nil {
		return Service{}, false
	}
	s := Service{Name: "spamassassin", Product: "SpamAssassin spamd", Confidence: 10, Evidence: Escape(firstLine(b))}
	s.add("protocol", string(m[1]))
	return s, true
}

var muninVersionRE = regexp.MustCompile(`version: ([0-9][0-9.]*)`)

// matchMunin reads munin-node's greeting "# munin node at HOST".
func matchMunin(b []byte) (Service, bool) {
	host, ok := bytes.CutPrefix(firstLine(b), []byte("# munin node at "))
	if !ok {
		return Service{}, false
	}
	s := Service{Name: "munin", Product: "Munin node", Confidence: 10}
	s.add("hostname", printable(host))
	return s, true
}

// upsdRE reads NUT's answer to VER.
var upsdRE = regexp.MustCompile(`^Network UPS Tools upsd ([0-9][0-9.]*)`)

// matchUPSD reads upsd's answer to "VER": "Network UPS Tools upsd 2.8.0 -
// …".
func matchUPSD(b []byte) (Service, bool) {
	m := upsdRE.FindSubmatch(b)
	if m == nil {
		return Service{}, false
	}
	return Service{Name: "nut", Product: "Network UPS Tools upsd", Version: string(m[1]), Confidence: 10, Evidence: Escape(firstLine(b))}, true
}

// iperf3Cookie is the 37-byte cookie an iperf3 client sends first (the
// iperf3 control protocol); the server answers one byte, its next state.
var iperf3Cookie = []byte("portctlprobeportctlprobeportctlprobe\x00")

// matchIPerf3 reads the answer to iperf3Cookie: the state PARAM_EXCHANGE
// (9), or ACCESS_DENIED (-1) from a server busy with another test.
func matchIPerf3(b []byte) (Service, bool) {
	if len(b) != 1 || b[0] != 9 && b[0] != 0xff {
		return Service{}, false
	}
	s := Service{Name: "iperf3", Product: "iperf3", Confidence: 8, Evidence: Escape(b)}
	if b[0] == 0xff {
		s.add("state", "busy")
	}
	return s, true
}

// matchGPSD reads gpsd's greeting, a JSON VERSION object.
func matchGPSD(b []byte) (Service, bool) {
	if !bytes.HasPrefix(b, []byte(`{"class":"VERSION"`)) {
		return Service{}, false
	}
	var v struct {
		Release string `json:"release"`
		Major   *int   `json:"proto_major"`
	}
	if json.Unmarshal(firstLine(b), &v) != nil || v.Major == nil {
		return Service{}, false
	}
	return Service{Name: "gpsd", Product: "gpsd", Version: printable([]byte(v.Release)), Confidence: 10}, true
}

// matchMPD reads the Music Player Daemon's greeting "OK MPD 0.23.5": the
// version of its protocol, not of the software.
func matchMPD(b []byte) (Service, bool) {
	v, ok := bytes.CutPrefix(firstLine(b), []byte("OK MPD "))
	if !ok {
		return Service{}, false
	}
	s := Service{Name: "mpd", Product: "Music Player Daemon", Confidence: 10}
	s.add("protocol", printable(v))
	return s, true
}

// ask is a probe named name that sends req and matches the answer with
// match; done says when the answer is complete (nil: a line).
func (d *detector) ask(c net.Conn, name string, req []byte, done func([]byte) bool, match func([]byte) (Service, bool)) (Service, bool) {
	if done == nil {
		done = func(b []byte) bool { return bytes.Contains(b, []byte("\n")) }
	}
	b := d.exchange(c, req, done)
	s, ok := match(b)
	if ok {
		s.Probe = name
	}
	return s, ok
}

func (d *detector) probeZabbix(c net.Conn) (Service, bool) {
	return d.ask(c, "zabbix-agent.version", zabbixVersion(), func(b []byte) bool {
		return len(b) >= 13 && len(b) >= 13+int(binary.LittleEndian.Uint32(b[5:]))
	}, matchZabbix)
}

func (d *detector) probeSpamd(c net.Conn) (Service, bool) {
	return d.ask(c, "spamd-ping", []byte(spamdPing), nil, matchSpamd)
}

func (d *detector) probeUPSD(c net.Conn) (Service, bool) {
	return d.ask(c, "nut-ver", []byte("VER\n"), nil, matchUPSD)
}

func (d *detector) probeIPerf3(c net.Conn) (Service, bool) {
	return d.ask(c, "iperf3-cookie", iperf3Cookie, func(b []byte) bool { return len(b) >= 1 }, matchIPerf3)
}

// muninFollow asks a Munin node for its version.
func (d *detector) muninFollow(c net.Conn, s Service) Service {
	b := d.exchange(c, []byte("version\n"), func(b []byte) bool { return bytes.Contains(b, []byte("\n")) })
	if m := muninVersionRE.FindSubmatch(b); m != nil && bytes.Contains(b, []byte("munin")) {
		s.Version = string(m[1])
		s.Evidence = Escape(firstLine(b))
	}
	c.Write([]byte("quit\n"))
	return s
}

// sipResponse reads a SIP response (RFC 3261 §7.2) to sipOptions: the
// status line, and the Server or User-Agent header naming the software.
func matchSIP(b []byte) (Service, bool) {
	line := firstLine(b)
	if !bytes.HasPrefix(line, []byte("SIP/2.0 ")) {
		return Service{}, false
	}
	s := Service{Name: "sip", Confidence: 10, Evidence: Escape(line)}
	s.add("status", printable(line[len("SIP/2.0 "):]))
	for _, l := range strings.Split(string(b), "\r\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok || !strings.EqualFold(k, "Server") && !strings.EqualFold(k, "User-Agent") {
			continue
		}
		v = printable([]byte(v))
		s.Product, s.Version = sipProduct(v)
		s.Evidence = Escape([]byte(l))
		break
	}
	return s, true
}

var sipProductRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9 ._-]*?)[ /]\(?v?([0-9][0-9.]*)`)

// sipProducts rename what SIP servers call themselves.
var sipProducts = map[string]string{"kamailio": "Kamailio SIP proxy", "opensips": "OpenSIPS", "asterisk pbx": "Asterisk PBX", "freeswitch": "FreeSWITCH"}

// sipProduct splits a Server header such as "kamailio (5.6.3
// (x86_64/linux))", "Asterisk PBX 20.1.0" or "FreeSWITCH-mod_sofia/1.10".
func sipProduct(v string) (product, version string) {
	if m := sipProductRE.FindStringSubmatch(v); m != nil {
		product, version = strings.TrimSpace(m[1]), m[2]
	} else {
		product = v
	}
	if p, ok := sipProducts[strings.ToLower(product)]; ok {
		product = p
	}
	return product, version
}

// mumblePing is the Mumble server's UDP ping (Mumble's protocol, "UDP
// ping"): four zero bytes and an 8-byte identifier the answer echoes.
var mumblePing = []byte{0, 0, 0, 0, 'p', 'o', 'r', 't', 'c', 't', 'l', 0}

// matchMumble reads the answer to mumblePing: the server's version (one
// byte each for major, minor and patch after a zero), the identifier,
// then users, maximum users and bandwidth.
func matchMumble(b []byte) (Service, bool) {
	if len(b) != 24 || b[0] != 0 || !bytes.Equal(b[4:12], mumblePing[4:]) {
		return Service{}, false
	}
	s := Service{Name: "mumble", Product: "Mumble server", Confidence: 10, Evidence: Escape(b)}
	s.Version = strconv.Itoa(int(b[1])) + "." + strconv.Itoa(int(b[2])) + "." + strconv.Itoa(int(b[3]))
	s.add("users", strconv.Itoa(int(binary.BigEndian.Uint32(b[12:])))+"/"+strconv.Itoa(int(binary.BigEndian.Uint32(b[16:]))))
	return s, true
}

// matchSTUN reads a STUN Binding success response (RFC 8489 §6, §14.14)
// to stunBindingRequest, whose SOFTWARE attribute names the server.
func matchSTUN(b []byte) (Service, bool) {
	if len(b) < 20 || binary.BigEndian.Uint16(b) != 0x0101 && binary.BigEndian.Uint16(b) != 0x0111 ||
		binary.BigEndian.Uint32(b[4:]) != 0x2112a442 || !bytes.Equal(b[8:20], stunBindingRequest()[8:20]) {
		return Service{}, false
	}
	s := Service{Name: "stun", Confidence: 10, Evidence: Escape(b[:20])}
	attrs := b[20:min(len(b), 20+int(binary.BigEndian.Uint16(b[2:])))]
	for len(attrs) >= 4 {
		typ, n := binary.BigEndian.Uint16(attrs), int(binary.BigEndian.Uint16(attrs[2:]))
		if 4+n > len(attrs) {
			break
		}
		if typ == 0x8022 { // SOFTWARE
			sw := printable(attrs[4 : 4+n])
			s.Evidence = Escape([]byte(sw))
			if v, ok := strings.CutPrefix(sw, "Coturn-"); ok {
				s.Product, s.Version = "coturn", strings.Fields(v + " ")[0]
			} else {
				s.Product = sw
			}
		}
		attrs = attrs[4+(n+3)&^3:]
	}
	return s, true
}

// matchTFTP reads the answer to tftpReadRequest (RFC 1350 §5): an ERROR
// packet (opcode 5, a code, a message) or the first DATA block.
func matchTFTP(b []byte) (Service, bool) {
	if len(b) < 4 || b[0] != 0 || b[1] != 5 && b[1] != 3 {
		return Service{}, false
	}
	s := Service{Name: "tftp", Confidence: 9, Probe: "tftp-rrq", Evidence: Escape(b[:min(len(b), 40)])}
	if b[1] == 5 {
		if len(b) < 5 || b[len(b)-1] != 0 || b[3] > 8 {
			return Service{}, false
		}
		s.add("error", printable(b[4:len(b)-1]))
	} else {
		s.add("read", "allowed")
	}
	return s, true
}
