package report

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/portctl/portctl/scan"
)

// NewGrepable returns a Writer of nmap's grepable format (-oG) to w: a
// "# portctl … scan initiated" comment, two lines a host
//
//	Host: 192.0.2.1 (example.net)	Status: Up
//	Host: 192.0.2.1 (example.net)	Ports: 22/open/tcp//ssh///, 80/closed/tcp//http///	Ignored State: filtered (998)
//
// and a "# portctl done at" comment. Like nmap's, the line lists open ports
// and the ports of states with at most 25 ports on the host; "Ignored
// State" counts the collapsed state when there is exactly one (the format
// has room for one only). It writes each host at HostDone or End; it
// implements HostDoner.
func NewGrepable(w io.Writer) Writer { return newBuffered(w, grepFormat{}) }

type grepFormat struct{}

func (grepFormat) name() string                  { return "grepable" }
func (grepFormat) checkMeta(Meta) error          { return nil }
func (grepFormat) checkResult(scan.Result) error { return nil }

func (grepFormat) begin(w *bufio.Writer, m Meta) error {
	fmt.Fprintf(w, "# portctl %s scan initiated %s as: %s\n", oneLine(m.Version), ctime(m.Start), oneLine(joinArgs(m.Args)))
	return nil
}

func (grepFormat) host(w *bufio.Writer, h *host) error {
	prefix := "Host: " + h.addr.String() + " (" + grepField(h.name) + ")\t"
	w.WriteString(prefix)
	w.WriteString("Status: Up\n")
	w.WriteString(prefix)
	w.WriteString("Ports: ")
	for i, p := range h.listed() {
		if i > 0 {
			w.WriteString(", ")
		}
		// port/state/protocol/owner/service/rpc info/version/
		w.WriteString(strconv.Itoa(int(p.port)))
		w.WriteString("/" + p.state.String() + "/" + p.proto.String() + "//")
		if d := p.svc; d != nil && d.Known() {
			name := d.Name
			if d.TLS != nil {
				name = "ssl|" + name
			}
			w.WriteString(grepField(name))
			w.WriteString("//")
			w.WriteString(grepVersionReplacer.Replace(oneLine(versionLine(d))))
			w.WriteString("/")
		} else {
			w.WriteString(grepField(serviceName(p.port, p.proto)))
			w.WriteString("///")
		}
	}
	if cs := h.collapsedStates(); len(cs) == 1 {
		fmt.Fprintf(w, "\tIgnored State: %s (%d)", cs[0], h.counts[cs[0]])
	}
	w.WriteString("\n")
	return nil
}

func (grepFormat) end(w *bufio.Writer, s Summary, total, up int) error {
	if s.Error != "" {
		fmt.Fprintf(w, "# portctl error: %s\n", oneLine(s.Error))
	}
	fmt.Fprintf(w, "# portctl done at %s -- %s scanned in %.2f seconds\n", ctime(s.End), hostsPhrase(total, up), s.Elapsed.Seconds())
	return nil
}

// oneLine replaces the control characters of s, such as newlines, with
// spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// grepField makes s fit one field of a grepable line: no control
// characters, no "/" (which nmap writes as "|"), no ",", "(" or ")".
func grepField(s string) string {
	return grepReplacer.Replace(oneLine(s))
}

var grepReplacer = strings.NewReplacer("/", "|", ",", " ", "(", " ", ")", " ")

// grepVersionReplacer is grepReplacer for the version field, which keeps
// its parentheses as nmap's does: "OpenSSH 9.2p1 (protocol 2.0)".
var grepVersionReplacer = strings.NewReplacer("/", "|", ",", " ")
