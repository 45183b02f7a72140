package report

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan"
	"github.com/portctl/portctl/scan/probe"
)

// NewXML returns a Writer of nmap's XML format (-oX) to w, valid against
// nmap's DTD. It writes the header at Begin and each host at HostDone or
// End; it implements HostDoner.
func NewXML(w io.Writer) Writer { return newBuffered(w, xmlFormat{}) }

type xmlFormat struct{}

// nmapScanTypes are the scan types nmap's DTD allows in <scaninfo>.
var nmapScanTypes = []string{"syn", "ack", "bounce", "connect", "null", "xmas", "window", "maimon", "fin", "udp", "sctpinit", "sctpcookieecho", "ipproto"}

// xmlProtocol returns p's name in nmap's XML, or false if the DTD has none.
func xmlProtocol(p registry.Protocol) (string, bool) {
	switch p {
	case registry.TCP, registry.UDP, registry.SCTP:
		return p.String(), true
	}
	return "", false
}

func (xmlFormat) name() string { return "xml" }

func (xmlFormat) checkMeta(m Meta) error {
	for _, si := range scanInfos(m) {
		if !slices.Contains(nmapScanTypes, si.ScanType) {
			return fmt.Errorf("scan type %q has no nmap XML form", si.ScanType)
		}
		if p, err := registry.ParseProtocol(si.Protocol); err != nil {
			return err
		} else if _, ok := xmlProtocol(p); !ok {
			return fmt.Errorf("protocol %q has no nmap XML form", si.Protocol)
		}
	}
	return nil
}

func (xmlFormat) checkResult(r scan.Result) error {
	if _, ok := xmlProtocol(r.Proto); !ok {
		return fmt.Errorf("%v port %d: protocol %q has no nmap XML form", r.Addr, r.Port, r.Proto)
	}
	return nil
}

func (xmlFormat) begin(w *bufio.Writer, m Meta) error {
	args := joinArgs(m.Args)
	w.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE nmaprun>\n")
	w.WriteString("<!-- ")
	w.WriteString(xmlComment(fmt.Sprintf("portctl %s scan initiated %s as: %s", m.Version, ctime(m.Start), args)))
	w.WriteString(" -->\n<nmaprun")
	xmlAttr(w, "scanner", "nmap") // the only value the DTD allows
	xmlAttr(w, "args", args)
	if !m.Start.IsZero() {
		xmlAttr(w, "start", strconv.FormatInt(m.Start.Unix(), 10))
		xmlAttr(w, "startstr", ctime(m.Start))
	}
	xmlAttr(w, "version", m.Version)
	xmlAttr(w, "xmloutputversion", "1.05")
	w.WriteString(">\n")
	for _, si := range scanInfos(m) {
		w.WriteString("<scaninfo")
		xmlAttr(w, "type", si.ScanType)
		xmlAttr(w, "protocol", si.Protocol)
		xmlAttr(w, "numservices", strconv.Itoa(si.NumServices))
		xmlAttr(w, "services", si.Ports)
		w.WriteString("/>\n")
	}
	w.WriteString("<verbose level=\"0\"/>\n<debugging level=\"0\"/>\n")
	return nil
}

func (xmlFormat) host(w *bufio.Writer, h *host) error {
	w.WriteString("<host")
	xmlAttr(w, "starttime", strconv.FormatInt(h.first.Unix(), 10))
	xmlAttr(w, "endtime", strconv.FormatInt(h.last.Unix(), 10))
	w.WriteString("><status state=\"up\" reason=\"user-set\" reason_ttl=\"0\"/>\n<address")
	xmlAttr(w, "addr", h.addr.String())
	if h.addr.Is4() {
		xmlAttr(w, "addrtype", "ipv4")
	} else {
		xmlAttr(w, "addrtype", "ipv6")
	}
	w.WriteString("/>\n<hostnames>\n")
	if h.name != "" {
		w.WriteString("<hostname")
		xmlAttr(w, "name", h.name)
		xmlAttr(w, "type", "user")
		w.WriteString("/>\n")
	}
	w.WriteString("</hostnames>\n<ports>")
	for _, s := range h.collapsedStates() {
		w.WriteString("<extraports")
		xmlAttr(w, "state", s.String())
		xmlAttr(w, "count", strconv.Itoa(h.counts[s]))
		w.WriteString(">\n")
		for _, c := range h.reasonsOf(s) {
			w.WriteString("<extrareasons")
			xmlAttr(w, "reason", string(c.reason))
			xmlAttr(w, "count", strconv.Itoa(c.n))
			xmlAttr(w, "proto", c.proto.String())
			w.WriteString("/>\n")
		}
		w.WriteString("</extraports>\n")
	}
	for _, p := range h.listed() {
		w.WriteString("<port")
		xmlAttr(w, "protocol", p.proto.String())
		xmlAttr(w, "portid", strconv.Itoa(int(p.port)))
		w.WriteString("><state")
		xmlAttr(w, "state", p.state.String())
		xmlAttr(w, "reason", string(p.reason))
		xmlAttr(w, "reason_ttl", "0")
		w.WriteString("/>")
		if d := p.svc; d != nil && d.Known() {
			writeXMLService(w, d)
		} else if svc := serviceName(p.port, p.proto); svc != "" {
			w.WriteString("<service")
			xmlAttr(w, "name", svc)
			xmlAttr(w, "method", "table")
			xmlAttr(w, "conf", "3")
			w.WriteString("/>")
		}
		w.WriteString("</port>\n")
	}
	w.WriteString("</ports>\n")
	if h.rtts.n > 0 {
		mean, dev := h.rtts.meanDev()
		us := func(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) }
		w.WriteString("<times")
		xmlAttr(w, "srtt", us(mean))
		xmlAttr(w, "rttvar", us(dev))
		xmlAttr(w, "to", us(mean+4*dev))
		w.WriteString("/>\n")
	}
	w.WriteString("</host>\n")
	return nil
}

func (xmlFormat) end(w *bufio.Writer, s Summary, total, up int) error {
	w.WriteString("<runstats><finished")
	xmlAttr(w, "time", strconv.FormatInt(s.End.Unix(), 10))
	xmlAttr(w, "timestr", ctime(s.End))
	xmlAttr(w, "summary", fmt.Sprintf("portctl done at %s; %s scanned in %.2f seconds", ctime(s.End), hostsPhrase(total, up), s.Elapsed.Seconds()))
	xmlAttr(w, "elapsed", fmt.Sprintf("%.2f", s.Elapsed.Seconds()))
	xmlAttr(w, "exit", exit(s))
	if s.Error != "" {
		xmlAttr(w, "errormsg", s.Error)
	}
	w.WriteString("/><hosts")
	xmlAttr(w, "up", strconv.Itoa(up))
	xmlAttr(w, "down", strconv.Itoa(max(total-up, 0)))
	xmlAttr(w, "total", strconv.Itoa(total))
	w.WriteString("/>\n</runstats>\n</nmaprun>\n")
	return nil
}

// xmlAttr writes ` name="value"`, value escaped.
func xmlAttr(w *bufio.Writer, name, value string) {
	w.WriteByte(' ')
	w.WriteString(name)
	w.WriteString(`="`)
	xml.EscapeText(w, []byte(value)) // errors stay in w
	w.WriteString(`"`)
}

// xmlComment makes s safe inside an XML comment: no "--", no character
// XML forbids.
func xmlComment(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0xFFFE || r == 0xFFFF {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return strings.ReplaceAll(s, "--", "-&#45;") // "---" becomes "-&#45;-"
}

// writeXMLService writes what service detection found as nmap's <service>
// element: name, product, version, extrainfo, tunnel="ssl" for a service
// inside TLS, method="probed", conf, and the CPE names.
func writeXMLService(w *bufio.Writer, d *probe.Service) {
	w.WriteString("<service")
	xmlAttr(w, "name", d.Name)
	if d.Product != "" {
		xmlAttr(w, "product", d.Product)
	}
	if d.Version != "" {
		xmlAttr(w, "version", d.Version)
	}
	if x := d.ExtraInfo(); x != "" {
		xmlAttr(w, "extrainfo", x)
	}
	if d.TLS != nil {
		xmlAttr(w, "tunnel", "ssl")
	}
	xmlAttr(w, "method", "probed")
	xmlAttr(w, "conf", strconv.Itoa(d.Confidence))
	if len(d.CPE) == 0 {
		w.WriteString("/>")
		return
	}
	w.WriteString(">")
	for _, c := range d.CPE {
		w.WriteString("<cpe>")
		xml.EscapeText(w, []byte(c))
		w.WriteString("</cpe>")
	}
	w.WriteString("</service>")
}
