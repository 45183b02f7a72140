package report_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan"
	"github.com/portctl/portctl/scan/probe"
	"github.com/portctl/portctl/scan/report"
)

// nmapDTD is where Debian's nmap package puts the DTD of its XML output.
const nmapDTD = "/usr/share/nmap/nmap.dtd"

// validate checks doc against nmap's DTD with xmllint.
func validate(t *testing.T, doc []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.xml")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("xmllint", "--noout", "--dtdvalid", nmapDTD, path).CombinedOutput()
	if err != nil {
		t.Errorf("xmllint --dtdvalid %s: %v\n%s\ndocument:\n%s", nmapDTD, err, out, doc)
	}
}

func needXMLLint(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Skip("xmllint is not installed (apt-get install libxml2-utils)")
	}
	if _, err := os.Stat(nmapDTD); err != nil {
		t.Skipf("nmap's DTD is missing (apt-get install nmap): %v", err)
	}
}

func TestIntegrationXMLValidates(t *testing.T) {
	needXMLLint(t)
	odd := netip.MustParseAddr("fe80::1%eth0")
	for _, tc := range []struct {
		name     string
		meta     report.Meta
		results  []scan.Result
		hostDone []netip.Addr
		summary  report.Summary
	}{
		{name: "fixture", meta: meta, results: fixture(1), summary: summary},
		{name: "hosts written early", meta: meta, results: fixture(2), summary: summary,
			hostDone: []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.10")}},
		{name: "no hosts, error", meta: report.Meta{ScanType: "syn"}, summary: report.Summary{Exit: "error", Error: `stopped: "interrupt" <ctrl-c> & more`}},
		{name: "udp only", meta: report.Meta{ScanType: "udp", Ports: "53", NumServices: 1, Start: start},
			results: []scan.Result{{Addr: netip.MustParseAddr("192.0.2.1"), Port: 53, Proto: registry.UDP, State: scan.OpenFiltered, Reason: scan.ReasonNoResponse}},
			summary: summary},
		{name: "odd text",
			meta: report.Meta{Args: []string{"portctl", "--x=\x01\x7f\xff\"'<>&", "---", "-", ""}, ScanType: "connect", Version: "v0.0.0-\xfe--", Start: start},
			results: []scan.Result{
				{Addr: odd, Host: "a\x00b\tc\n<d>&\"e\"\xff--", Port: 0, Proto: registry.TCP, State: scan.Open, Reason: "weird \x02 reason"},
				{Addr: netip.MustParseAddr("::ffff:192.0.2.1"), Port: 65535, Proto: registry.SCTP, State: scan.Filtered, Reason: scan.ReasonError},
			},
			summary: report.Summary{End: start, Exit: "error", Error: "a\x00b\n--"}},
		{name: "services", meta: meta, summary: summary,
			results: []scan.Result{
				{Addr: netip.MustParseAddr("192.0.2.1"), Port: 443, Proto: registry.TCP, State: scan.Open, Reason: scan.ReasonSynAck,
					Service: &probe.Service{Name: "http", Product: "nginx", Version: "1.22.1", Confidence: 10,
						Extra: []probe.Field{{Key: "os", Value: "Debian <&>"}}, TLS: &probe.TLSInfo{Version: "TLS 1.3"},
						CPE: []string{"cpe:/a:igor_sysoev:nginx:1.22.1"}}},
				{Addr: netip.MustParseAddr("192.0.2.1"), Port: 9999, Proto: registry.TCP, State: scan.Open, Reason: scan.ReasonSynAck,
					Service: &probe.Service{Name: probe.Unknown, Evidence: `\x00garbage`}},
				{Addr: netip.MustParseAddr("192.0.2.1"), Port: 53, Proto: registry.UDP, State: scan.Open, Reason: scan.ReasonUDPResponse,
					Service: &probe.Service{Name: "domain", Product: "dnsmasq", Version: "2.90", Confidence: 10}},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := report.NewXML(&buf)
			if err := w.Begin(tc.meta); err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.results {
				if err := w.Result(r); err != nil {
					t.Fatal(err)
				}
			}
			for _, a := range tc.hostDone {
				if err := w.(report.HostDoner).HostDone(a); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.End(tc.summary); err != nil {
				t.Fatal(err)
			}
			checkWellFormed(t, buf.Bytes())
			validate(t, buf.Bytes())
		})
	}
}

// node is any XML element, for comparing documents' structure.
type node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []node     `xml:",any"`
}

func (n node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n node) find(path ...string) []node {
	if len(path) == 0 {
		return []node{n}
	}
	var out []node
	for _, c := range n.Children {
		if c.XMLName.Local == path[0] {
			out = append(out, c.find(path[1:]...)...)
		}
	}
	return out
}

// shape is what a document's structure is compared by: for each element
// path, the attribute names its elements have and the names of their
// children in first-seen order.
type shape map[string]struct{ Attrs, Children []string }

func shapeOf(n node) shape {
	s := shape{}
	var walk func(n node, path string)
	walk = func(n node, path string) {
		path += "/" + n.XMLName.Local
		e := s[path]
		for _, a := range n.Attrs {
			if !slices.Contains(e.Attrs, a.Name.Local) {
				e.Attrs = append(e.Attrs, a.Name.Local)
			}
		}
		slices.Sort(e.Attrs)
		for _, c := range n.Children {
			if !slices.Contains(e.Children, c.XMLName.Local) {
				e.Children = append(e.Children, c.XMLName.Local)
			}
		}
		s[path] = e
		for _, c := range n.Children {
			walk(c, path)
		}
	}
	walk(n, "")
	return s
}

func parseDoc(t *testing.T, doc []byte) node {
	t.Helper()
	var n node
	if err := xml.Unmarshal(doc, &n); err != nil {
		t.Fatalf("parse XML: %v\n%s", err, doc)
	}
	return n
}

// TestIntegrationXMLLikeNmap scans ports of 127.0.0.1 with nmap, writes
// the same results with NewXML, and compares the two documents' structure.
func TestIntegrationXMLLikeNmap(t *testing.T) {
	nmap, err := exec.LookPath("nmap")
	if err != nil {
		t.Skip("nmap is not installed (apt-get install nmap)")
	}
	open := testnet.Listen(t, "127.0.0.1:0")
	ports := "22,80," + strconv.Itoa(int(open.Port()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	began := time.Now()
	nmapOut, err := exec.CommandContext(ctx, nmap, "-sT", "-p", ports, "-n", "-Pn", "-oX", "-", "127.0.0.1").Output()
	if err != nil {
		t.Fatalf("nmap: %v", err)
	}
	theirs := parseDoc(t, nmapOut)

	// The results nmap found, as portctl's engine reports them.
	addr := netip.MustParseAddr("127.0.0.1")
	var rs []scan.Result
	states := map[string]scan.State{"open": scan.Open, "closed": scan.Closed, "filtered": scan.Filtered, "open|filtered": scan.OpenFiltered}
	for _, p := range theirs.find("host", "ports", "port") {
		port, err := strconv.ParseUint(p.attr("portid"), 10, 16)
		st := p.find("state")
		if err != nil || len(st) != 1 || states[st[0].attr("state")] == 0 || p.attr("protocol") != "tcp" {
			t.Fatalf("nmap wrote a port this test cannot read: %+v", p)
		}
		rs = append(rs, scan.Result{Addr: addr, Port: uint16(port), Proto: registry.TCP, State: states[st[0].attr("state")],
			Reason: scan.Reason(st[0].attr("reason")), RTT: 100 * time.Microsecond, Tries: 1})
	}
	if len(rs) != 3 {
		t.Fatalf("nmap listed %d ports of %s; want 3:\n%s", len(rs), ports, nmapOut)
	}
	if rs[len(rs)-1].Port != open.Port() || rs[len(rs)-1].State != scan.Open {
		t.Errorf("nmap did not find the listener on port %d open:\n%s", open.Port(), nmapOut)
	}

	var buf bytes.Buffer
	w := report.NewXML(&buf)
	m := report.Meta{Args: []string{"portctl", "scan", "-sT", "-p", ports, "-n", "-Pn", "-oX", "-", "127.0.0.1"},
		Start: began, ScanType: "connect", Protocol: "tcp", Ports: ports, NumServices: 3, Version: "test"}
	write(t, w, m, rs, report.Summary{End: time.Now(), Hosts: 1, HostsUp: 1})
	ours := parseDoc(t, buf.Bytes())

	if diff := cmp.Diff(shapeOf(theirs), shapeOf(ours)); diff != "" {
		t.Errorf("structure differs from nmap's (-nmap +portctl):\n%s\nnmap:\n%s\nportctl:\n%s", diff, nmapOut, buf.Bytes())
	}
	// The same ports, states and service names.
	listing := func(n node) []string {
		var out []string
		for _, p := range n.find("host", "ports", "port") {
			s := p.attr("protocol") + "/" + p.attr("portid") + " " + p.find("state")[0].attr("state") + " " + p.find("state")[0].attr("reason")
			if p.attr("portid") != strconv.Itoa(int(open.Port())) { // nmap-services and IANA differ on high ports
				for _, svc := range p.find("service") {
					s += " " + svc.attr("name") + " " + svc.attr("method") + " " + svc.attr("conf")
				}
			}
			out = append(out, s)
		}
		return out
	}
	if diff := cmp.Diff(listing(theirs), listing(ours)); diff != "" {
		t.Errorf("ports differ from nmap's (-nmap +portctl):\n%s", diff)
	}
	for _, attr := range []string{"xmloutputversion", "scanner"} {
		if a, b := theirs.attr(attr), ours.attr(attr); a != b {
			t.Errorf("nmaprun %s = %q; nmap writes %q", attr, b, a)
		}
	}
	if !bytes.Contains(buf.Bytes(), []byte("<!DOCTYPE nmaprun>")) {
		t.Errorf("no <!DOCTYPE nmaprun> in\n%s", buf.Bytes())
	}

	// The harness itself: nmap's own document passes the DTD check too.
	if _, err := exec.LookPath("xmllint"); err == nil {
		if _, err := os.Stat(nmapDTD); err == nil {
			validate(t, nmapOut)
			validate(t, buf.Bytes())
		}
	}
}
