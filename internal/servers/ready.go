package servers

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// The readiness tests: each does one real exchange with a server and
// returns nil once it answers as that kind of server does. The tests of
// this package use the same exchanges to check what the servers say.

// dial connects to addr over network with a short deadline for the whole
// exchange.
func dial(network string, addr netip.AddrPort) (net.Conn, error) {
	c, err := net.DialTimeout(network, addr.String(), time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(2 * time.Second))
	return c, nil
}

// banner returns a readiness test that reads the first line the server
// sends and wants it to start with prefix and to contain none of not.
func banner(prefix string, not ...string) func(netip.AddrPort) error {
	return func(addr netip.AddrPort) error {
		line, err := readBanner(addr)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, prefix) {
			return fmt.Errorf("banner %q; want %q…", line, prefix)
		}
		for _, s := range not {
			if strings.Contains(line, s) {
				return fmt.Errorf("banner %q: not ready yet", line)
			}
		}
		return nil
	}
}

// readBanner connects to addr and returns the first line the server
// sends, without its line ending.
func readBanner(addr netip.AddrPort) (string, error) {
	c, err := dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read banner: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// versionBindQuery is a DNS query, ID 0x5054, for version.bind TXT in
// class CHAOS, without recursion.
var versionBindQuery = []byte{
	0x50, 0x54, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
	7, 'v', 'e', 'r', 's', 'i', 'o', 'n', 4, 'b', 'i', 'n', 'd', 0,
	0, 16, // TXT
	0, 3, // CH
}

// versionBind asks the DNS server at addr for version.bind over network
// ("udp" or "tcp") and returns the first TXT string of the answer.
func versionBind(network string, addr netip.AddrPort) (string, error) {
	c, err := dial(network, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	msg := make([]byte, 4096)
	var n int
	if network == "tcp" {
		q := binary.BigEndian.AppendUint16(nil, uint16(len(versionBindQuery)))
		if _, err := c.Write(append(q, versionBindQuery...)); err != nil {
			return "", err
		}
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return "", err
		}
		msg = msg[:binary.BigEndian.Uint16(l[:])]
		n, err = io.ReadFull(c, msg)
	} else {
		if _, err := c.Write(versionBindQuery); err != nil {
			return "", err
		}
		n, err = c.Read(msg)
	}
	if err != nil {
		return "", err
	}
	return parseVersionBind(msg[:n])
}

// parseVersionBind returns the first TXT string of the answer to
// versionBindQuery in msg.
func parseVersionBind(msg []byte) (string, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || !h.Response || h.ID != binary.BigEndian.Uint16(versionBindQuery) {
		return "", errors.New("dns: not an answer to our query")
	}
	if h.RCode != dnsmessage.RCodeSuccess {
		return "", fmt.Errorf("dns: rcode %d", h.RCode)
	}
	if q, err := p.Question(); err != nil || q.Name.String() != "version.bind." || q.Type != dnsmessage.TypeTXT {
		return "", errors.New("dns: question not echoed")
	}
	if err := p.SkipAllQuestions(); err != nil {
		return "", fmt.Errorf("dns: %w", err)
	}
	ah, err := p.AnswerHeader()
	if err != nil {
		return "", fmt.Errorf("dns: no answer: %w", err)
	}
	if ah.Type != dnsmessage.TypeTXT {
		return "", fmt.Errorf("dns: answer type %v; want TXT", ah.Type)
	}
	txt, err := p.TXTResource()
	if err != nil || len(txt.TXT) == 0 {
		return "", errors.New("dns: bad TXT data")
	}
	return txt.TXT[0], nil
}

// ntpQuery sends an NTPv4 client request to addr and returns the reply's
// mode and stratum.
func ntpQuery(addr netip.AddrPort) (mode, stratum int, err error) {
	c, err := dial("udp", addr)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	req := make([]byte, 48)
	req[0] = 0<<6 | 4<<3 | 3 // no leap warning, version 4, client
	if _, err := c.Write(req); err != nil {
		return 0, 0, err
	}
	reply := make([]byte, 128)
	n, err := c.Read(reply)
	if err != nil {
		return 0, 0, err
	}
	if n < 48 {
		return 0, 0, fmt.Errorf("ntp: %d-byte reply", n)
	}
	return int(reply[0] & 7), int(reply[1]), nil
}

// snmpGetSysDescr is an SNMPv2c GetRequest, community "public", request
// ID 1, for sysDescr.0 (1.3.6.1.2.1.1.1.0).
var snmpGetSysDescr = []byte{
	0x30, 0x26, 0x02, 0x01, 0x01, 0x04, 0x06, 'p', 'u', 'b', 'l', 'i', 'c',
	0xa0, 0x19, 0x02, 0x01, 0x01, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00,
	0x30, 0x0e, 0x30, 0x0c, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x01, 0x00, 0x05, 0x00,
}

// snmpGet sends snmpGetSysDescr to addr and returns the raw reply, a BER
// SEQUENCE.
func snmpGet(addr netip.AddrPort) ([]byte, error) {
	c, err := dial("udp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Write(snmpGetSysDescr); err != nil {
		return nil, err
	}
	reply := make([]byte, 1500)
	n, err := c.Read(reply)
	if err != nil {
		return nil, err
	}
	if n < 2 || reply[0] != 0x30 {
		return nil, fmt.Errorf("snmp: reply % x is no BER sequence", reply[:n])
	}
	return reply[:n], nil
}

// mysqlGreeting reads the initial handshake packet of a MySQL or MariaDB
// server at addr and returns the server version it announces.
func mysqlGreeting(addr netip.AddrPort) (string, error) {
	c, err := dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return "", fmt.Errorf("mysql: read handshake: %w", err)
	}
	payload := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
	if _, err := io.ReadFull(c, payload); err != nil {
		return "", fmt.Errorf("mysql: read handshake: %w", err)
	}
	if len(payload) < 2 || payload[0] != 10 {
		return "", fmt.Errorf("mysql: handshake % x is not protocol 10", payload)
	}
	v, _, ok := bytes.Cut(payload[1:], []byte{0})
	if !ok {
		return "", errors.New("mysql: handshake without a version")
	}
	return string(v), nil
}

// pgStartup logs in to the PostgreSQL server at addr as user postgres
// (trust authentication) and returns the parameters the server reports
// (server_version, …) once it is ready for a query.
func pgStartup(addr netip.AddrPort) (map[string]string, error) {
	c, err := dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	body := binary.BigEndian.AppendUint32(nil, 3<<16) // protocol 3.0
	body = append(body, "user\x00postgres\x00database\x00postgres\x00\x00"...)
	msg := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
	if _, err := c.Write(append(msg, body...)); err != nil {
		return nil, err
	}
	params := map[string]string{}
	r := bufio.NewReader(c)
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr[1:])
		if n < 4 || n > 1<<16 {
			return nil, fmt.Errorf("postgres: message %q of length %d", hdr[0], n)
		}
		data := make([]byte, n-4)
		if _, err := io.ReadFull(r, data); err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		switch hdr[0] {
		case 'E':
			return nil, fmt.Errorf("postgres: error %q", bytes.ReplaceAll(data, []byte{0}, []byte{' '}))
		case 'S':
			f := bytes.Split(data, []byte{0})
			if len(f) >= 2 {
				params[string(f[0])] = string(f[1])
			}
		case 'Z':
			c.Write([]byte{'X', 0, 0, 0, 4}) // Terminate
			return params, nil
		}
	}
}

// ask returns a readiness test that sends req and wants the first line of
// the reply to start with prefix.
func ask(req, prefix string) func(netip.AddrPort) error {
	return func(addr netip.AddrPort) error {
		line, err := request(addr, req)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, prefix) {
			return fmt.Errorf("%q answered %q; want %q…", req, line, prefix)
		}
		return nil
	}
}

// request connects to addr, sends req and returns the first line of the
// reply, without its line ending.
func request(addr netip.AddrPort, req string) (string, error) {
	c, err := dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read reply to %q: %w", req, err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// udpAnswer returns a readiness test that sends req in one datagram from
// an unconnected socket and wants a datagram of at least n bytes back
// from the server's address, from any port (TFTP answers from a new
// one).
func udpAnswer(req []byte, n int) func(netip.AddrPort) error {
	return func(addr netip.AddrPort) error {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.WriteToUDPAddrPort(req, addr); err != nil {
			return err
		}
		buf := make([]byte, 4096)
		m, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return err
		}
		if from.Addr() != addr.Addr() || m < n {
			return fmt.Errorf("udp: %d bytes from %v", m, from)
		}
		return nil
	}
}

// greets returns a readiness test that wants the first bytes the server
// sends, whatever their line ending, to start with prefix.
func greets(prefix string) func(netip.AddrPort) error {
	return func(addr netip.AddrPort) error {
		c, err := dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		b := make([]byte, len(prefix))
		if _, err := io.ReadFull(c, b); err != nil {
			return fmt.Errorf("read greeting: %w", err)
		}
		if string(b) != prefix {
			return fmt.Errorf("greeting %q; want %q…", b, prefix)
		}
		return nil
	}
}
