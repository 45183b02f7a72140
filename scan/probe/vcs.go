package probe

import (
	"bytes"
	"fmt"
	"net"
	"regexp"
	"strings"
)

// This file holds the probes of version-control daemons: git daemon,
// Subversion's svnserve and the CVS pserver.

// gitUploadPack asks git daemon for a repository no server has, in a
// pkt-line (gitprotocol-pack: a four-digit hex length that counts
// itself, then the line): "git-upload-pack /path\0host=host\0".
func gitUploadPack(host string) []byte {
	line := "git-upload-pack /portctl-probe.git\x00host=" + host + "\x00"
	return []byte(fmt.Sprintf("%04x%s", len(line)+4, line))
}

var gitAgentRE = regexp.MustCompile(`agent=git/([0-9][0-9.]*[0-9])`)

// matchGit reads git daemon's answer to gitUploadPack: a pkt-line "ERR
// …" (git daemon --informative-errors, or a hosting service), or a
// reference advertisement whose capabilities name the agent.
func matchGit(b []byte) (Service, bool) {
	if len(b) < 8 || !isHex4(b[:4]) {
		return Service{}, false
	}
	var n int
	fmt.Sscanf(string(b[:4]), "%04x", &n)
	if n < 4 || n > len(b) {
		return Service{}, false
	}
	line := b[4:n]
	s := Service{Name: "git", Product: "git daemon", Confidence: 10, Evidence: Escape(line)}
	switch {
	case bytes.HasPrefix(line, []byte("ERR ")):
		s.add("error", printable(line[4:]))
	case len(line) >= 41 && isHexString(line[:40]) && line[40] == ' ':
		if m := gitAgentRE.FindSubmatch(b); m != nil {
			s.Version = string(m[1])
		}
	case bytes.HasPrefix(line, []byte("version 2")):
		if m := gitAgentRE.FindSubmatch(b); m != nil {
			s.Version = string(m[1])
		}
	default:
		return Service{}, false
	}
	return s, true
}

func isHex4(b []byte) bool { return len(b) == 4 && isHexString(b) }

func isHexString(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return len(b) > 0
}

func (d *detector) probeGit(c net.Conn) (Service, bool) {
	return d.ask(c, "git-upload-pack", gitUploadPack(d.t.Addr.Addr().String()), func(b []byte) bool {
		return bytes.HasSuffix(b, []byte("0000")) || len(b) > 8 && bytes.HasPrefix(b[4:], []byte("ERR "))
	}, matchGit)
}

// matchSVN reads svnserve's greeting (the Subversion protocol,
// libsvn_ra_svn/protocol): "( success ( minver maxver ( mechs ) ( caps
// ) ) )".
func matchSVN(b []byte) (Service, bool) {
	rest, ok := bytes.CutPrefix(b, []byte("( success ( "))
	if !ok {
		return Service{}, false
	}
	f := strings.Fields(string(rest))
	if len(f) < 2 {
		return Service{}, false
	}
	s := Service{Name: "svn", Product: "Subversion", Confidence: 10, Evidence: Escape(firstLine(b))}
	s.add("protocol", f[0]+"-"+f[1])
	return s, true
}

// cvsAuth is a CVS pserver login request (the CVS client/server
// protocol, "Connection and Authentication") for a repository and user
// no server has.
const cvsAuth = "BEGIN AUTH REQUEST\n/portctl-probe\nanonymous\nA\nEND AUTH REQUEST\n"

// matchCVS reads a pserver's answer: "I HATE YOU" (refused), "I LOVE YOU"
// (accepted), or an error about the request ("error 0 …", "cvs [pserver
// aborted]: …"), which it also sends to anything that is not a login.
func matchCVS(b []byte) (Service, bool) {
	text := string(b)
	switch {
	case strings.Contains(text, "I HATE YOU\n"), strings.HasPrefix(text, "I LOVE YOU\n"),
		strings.HasPrefix(text, "cvs [pserver aborted]: "), strings.HasPrefix(text, "error 0 ") && strings.Contains(text, "pserver"):
	default:
		return Service{}, false
	}
	s := Service{Name: "cvspserver", Product: "CVS pserver", Confidence: 10, Evidence: Escape(firstLine(b))}
	if strings.HasPrefix(text, "I LOVE YOU") {
		s.add("login", "anonymous accepted")
	}
	return s, true
}

func (d *detector) probeCVS(c net.Conn) (Service, bool) {
	return d.ask(c, "cvs-auth", []byte(cvsAuth), func(b []byte) bool { return bytes.Contains(b, []byte(" YOU\n")) }, matchCVS)
}
