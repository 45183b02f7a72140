package probe

import (
	"bytes"
	"net"
	"regexp"
	"strings"
)

// This file holds the probes of chat servers: IRC (RFC 2812) and XMPP
// (RFC 6120).

// ircRegister registers a client (RFC 2812 §3.1): a server welcomes it
// with 001 to 004, and 002 and 004 name the server's software.
const ircRegister = "NICK portctl\r\nUSER portctl 0 * :portctl probe\r\n"

// ircLine is one IRC message: ":prefix COMMAND params".
var ircLine = regexp.MustCompile(`^(?::(\S+) )?([A-Za-z]+|[0-9]{3})(?: (.*))?$`)

// ircProducts name an IRC server from the version its 004 or 002 reply
// gives ("ngircd-26.1", "InspIRCd-3", "hybrid-8.2.43", …).
var ircProducts = []struct {
	re      *regexp.Regexp
	product string
}{
	{regexp.MustCompile(`(?i)^ngircd-([0-9][0-9.~a-z]*)`), "ngIRCd"},
	{regexp.MustCompile(`^InspIRCd-([0-9][0-9.]*)`), "InspIRCd"},
	{regexp.MustCompile(`(?i)^ircd-hybrid-([0-9][0-9.]*)|^hybrid-([0-9][0-9.]*)`), "ircd-hybrid"},
	{regexp.MustCompile(`^UnrealIRCd-([0-9][0-9.]*)`), "UnrealIRCd"},
	{regexp.MustCompile(`^solanum-?([0-9][0-9.]*)?`), "Solanum"},
	{regexp.MustCompile(`^BitlBee-([0-9][0-9.]*)`), "BitlBee"},
	{regexp.MustCompile(`^ZNC[ -]([0-9][0-9.]*)`), "ZNC"},
	{regexp.MustCompile(`^ergo-v?([0-9][0-9.]*)`), "Ergo"},
}

// matchIRC reads what an IRC server sent to ircRegister (or to any line
// it did not expect): numeric replies, NOTICEs, PING or ERROR from a
// server prefix. The welcome replies name the software.
func matchIRC(b []byte) (Service, bool) {
	s := Service{Name: "irc", Confidence: 8}
	found := false
	var version string
	for _, raw := range strings.Split(string(b), "\n") {
		l := strings.TrimRight(raw, "\r")
		m := ircLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		prefix, cmd, params := m[1], m[2], m[3]
		switch {
		case cmd == "NOTICE" && (prefix != "" || strings.HasPrefix(params, "AUTH ")),
			cmd == "ERROR" && strings.HasPrefix(params, ":"),
			cmd == "PING" && prefix == "" && strings.HasPrefix(params, ":"):
		case len(cmd) == 3 && cmd[0] >= '0' && cmd[0] <= '9' && prefix != "":
			f := strings.Fields(params)
			switch cmd {
			case "001", "002", "003", "004", "005":
				s.Confidence = 10
			}
			switch {
			case cmd == "004" && len(f) >= 3:
				s.add("server", printable([]byte(f[1])))
				version = f[2]
				s.Evidence = Escape([]byte(l))
			case cmd == "002" && version == "":
				if _, v, ok := strings.Cut(params, "running version "); ok {
					version = strings.Fields(v + " ")[0]
					s.Evidence = Escape([]byte(l))
				}
			}
			if prefix == "irc.znc.in" && s.Product == "" {
				s.Product = "ZNC IRC bouncer"
			}
		default:
			continue
		}
		found = true
		if s.Evidence == "" {
			s.Evidence = Escape([]byte(l))
		}
	}
	if !found {
		return Service{}, false
	}
	version = printable([]byte(version))
	for _, p := range ircProducts {
		if m := p.re.FindStringSubmatch(version); m != nil {
			s.Product = p.product
			for _, g := range m[1:] {
				if g != "" {
					s.Version = g
					break
				}
			}
			version = ""
			break
		}
	}
	s.add("version", version)
	return s, true
}

// ircDone reports whether an IRC answer is complete: the welcome is
// through (004 or 005), or the server refused (ERROR, 4xx/5xx numerics).
func ircDone(b []byte) bool {
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (f[1] == "004" || f[1] == "005" || f[1][0] == '4' || f[1][0] == '5') && len(f[1]) == 3 ||
			len(f) >= 1 && f[0] == "ERROR" {
			return true
		}
	}
	return false
}

func (d *detector) probeIRC(c net.Conn) (Service, bool) { return d.ircRegister(c, false) }

// ircRegister registers on c and reads the welcome. When patient (the
// server greeted as IRC), a round that draws nothing does not end it: the
// server may be looking the client's name up first.
func (d *detector) ircRegister(c net.Conn, patient bool) (Service, bool) {
	var all []byte
	req := []byte(ircRegister)
	// A server may ask for a PONG, or look the client's name up, before
	// it welcomes: four rounds at most.
	for range 4 {
		b := d.exchange(c, req, ircDone)
		all = append(all, b...)
		if len(b) == 0 && !patient || ircDone(all) || !d.more() {
			break
		}
		req = nil
		for _, l := range strings.Split(string(b), "\n") {
			if tok, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "PING "); ok {
				req = []byte("PONG " + tok + "\r\n")
			}
		}
	}
	s, ok := matchIRC(all)
	if ok {
		s.Probe = "irc-register"
		c.Write([]byte("QUIT :portctl\r\n"))
	}
	return s, ok
}

// xmppStream opens a client stream (RFC 6120 §4.2) to the host the
// target was named by, or to none, which a server answers with a stream
// error: either way it is XMPP.
func xmppStream(host string) []byte {
	to := ""
	if host != "" {
		to = " to='" + host + "'"
	}
	return []byte("<?xml version='1.0'?><stream:stream" + to + " xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
}

// matchXMPP reads a server's stream header (RFC 6120 §4.2, §4.9), which
// comes in answer to a stream header or to anything else: XMPP servers
// answer garbage with a stream and a stream error.
func matchXMPP(b []byte) (Service, bool) {
	i := bytes.Index(b, []byte("<stream:stream"))
	if i < 0 || i > 64 || !bytes.Contains(b, []byte("http://etherx.jabber.org/streams")) {
		return Service{}, false
	}
	s := Service{Name: "xmpp-client", Confidence: 10, Evidence: Escape(b[i:min(len(b), i+120)])}
	if bytes.Contains(b, []byte("'jabber:server'")) || bytes.Contains(b, []byte(`"jabber:server"`)) {
		s.Name = "xmpp-server"
	}
	if m := regexp.MustCompile(`<stream:error><([a-z-]+)`).FindSubmatch(b); m != nil {
		s.add("stream error", string(m[1]))
	}
	if bytes.Contains(b, []byte("urn:ietf:params:xml:ns:xmpp-tls")) {
		s.add("starttls", "offered")
	}
	if m := regexp.MustCompile(`<mechanism>([A-Za-z0-9_-]+)</mechanism>`).FindAllSubmatch(b, -1); m != nil {
		var mechs []string
		for _, x := range m {
			mechs = append(mechs, string(x[1]))
		}
		s.add("sasl", strings.Join(mechs, " "))
	}
	return s, true
}

func (d *detector) probeXMPP(c net.Conn) (Service, bool) {
	b := d.exchange(c, xmppStream(d.t.Host), func(b []byte) bool {
		return bytes.Contains(b, []byte("</stream:features>")) || bytes.Contains(b, []byte("</stream:stream>"))
	})
	s, ok := matchXMPP(b)
	if ok {
		s.Probe = "xmpp-stream"
		c.Write([]byte("</stream:stream>"))
	}
	return s, ok
}
