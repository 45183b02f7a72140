package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan"
	"github.com/portctl/portctl/scan/probe"
)

// The JSON forms of the reports. Field names are a contract: add fields,
// never rename or remove them.

type metaJSON struct {
	Type        string     `json:"type,omitempty"`
	Args        []string   `json:"args"`
	Start       time.Time  `json:"start"`
	ScanType    string     `json:"scan_type"`
	Protocol    string     `json:"protocol"`
	Ports       string     `json:"ports"`
	NumServices int        `json:"num_services"`
	Version     string     `json:"version"`
	More        []ScanInfo `json:"more,omitempty"`
}

func newMetaJSON(typ string, m Meta) metaJSON {
	si := scanInfos(m)
	args := m.Args
	if args == nil {
		args = []string{}
	}
	return metaJSON{typ, args, m.Start, si[0].ScanType, si[0].Protocol, si[0].Ports, si[0].NumServices, m.Version, si[1:]}
}

type summaryJSON struct {
	Type      string    `json:"type,omitempty"`
	End       time.Time `json:"end"`
	Hosts     int       `json:"hosts"`
	HostsUp   int       `json:"hosts_up"`
	ElapsedMS float64   `json:"elapsed_ms"`
	Exit      string    `json:"exit"`
	Error     string    `json:"error,omitempty"`
}

func newSummaryJSON(typ string, s Summary, total, up int) summaryJSON {
	return summaryJSON{typ, s.End, total, up, ms(s.Elapsed), exit(s), s.Error}
}

type portJSON struct {
	Port     uint16            `json:"port"`
	Protocol registry.Protocol `json:"protocol"`
	State    scan.State        `json:"state"`
	Reason   scan.Reason       `json:"reason"`
	RTTMS    float64           `json:"rtt_ms"`
	Tries    int               `json:"tries"`
	Service  string            `json:"service"`
	Detected *probe.Service    `json:"detected,omitempty"`
}

type hostJSON struct {
	Addr         netip.Addr `json:"addr"`
	Host         string     `json:"host"`
	Ports        []portJSON `json:"ports"`
	Closed       int        `json:"closed"`
	Filtered     int        `json:"filtered"`
	OpenFiltered int        `json:"open_filtered"`
}

// NewJSON returns a Writer of one JSON document to w, as the package
// documentation describes. The document is written at End, except that
// hosts reported complete through HostDoner are written at once, after
// the document's head.
func NewJSON(w io.Writer) Writer { return newBuffered(w, &jsonFormat{}) }

type jsonFormat struct {
	meta  Meta
	head  bool // the head and "hosts": [ are written
	hosts int  // hosts written
}

func (*jsonFormat) name() string                  { return "json" }
func (*jsonFormat) checkMeta(Meta) error          { return nil }
func (*jsonFormat) checkResult(scan.Result) error { return nil }

func (f *jsonFormat) begin(_ *bufio.Writer, m Meta) error {
	f.meta = m
	return nil
}

func (f *jsonFormat) writeHead(w *bufio.Writer) error {
	if f.head {
		return nil
	}
	f.head = true
	w.WriteString("{\n  \"scan\": ")
	if err := writeIndented(w, newMetaJSON("", f.meta), "  "); err != nil {
		return err
	}
	_, err := w.WriteString(",\n  \"hosts\": [")
	return err
}

func (f *jsonFormat) host(w *bufio.Writer, h *host) error {
	if err := f.writeHead(w); err != nil {
		return err
	}
	if f.hosts > 0 {
		w.WriteString(",")
	}
	f.hosts++
	w.WriteString("\n    ")
	hj := hostJSON{h.addr, h.name, []portJSON{}, h.counts[scan.Closed], h.counts[scan.Filtered], h.counts[scan.OpenFiltered]}
	for _, p := range h.openPorts() {
		hj.Ports = append(hj.Ports, portJSON{p.port, p.proto, p.state, p.reason, ms(p.rtt), int(p.tries), serviceName(p.port, p.proto), p.svc})
	}
	return writeIndented(w, hj, "    ")
}

func (f *jsonFormat) end(w *bufio.Writer, s Summary, total, up int) error {
	if err := f.writeHead(w); err != nil {
		return err
	}
	if f.hosts > 0 {
		w.WriteString("\n  ")
	}
	w.WriteString("],\n  \"summary\": ")
	if err := writeIndented(w, newSummaryJSON("", s, total, up), "  "); err != nil {
		return err
	}
	_, err := w.WriteString("\n}\n")
	return err
}

// writeIndented writes v as indented JSON, its lines after the first
// prefixed, without a final newline.
func writeIndented(w *bufio.Writer, v any, prefix string) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent(prefix, "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return err
}

// NewJSONL returns a Writer of JSON Lines to w, as the package
// documentation describes: each call writes one line in one Write, then
// flushes w if it has a Flush method.
func NewJSONL(w io.Writer) Writer { return &jsonlWriter{w: w, seen: make(map[netip.Addr]struct{})} }

type jsonlWriter struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	seen   map[netip.Addr]struct{} // hosts seen, for a Summary without counts
	start  time.Time               // Meta.Start
	begun  bool
	ended  bool
	failed error
}

// Begin writes the "begin" line.
func (j *jsonlWriter) Begin(m Meta) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usable(); err != nil {
		return err
	}
	if j.begun {
		return fmt.Errorf("report: jsonl: Begin called twice")
	}
	j.begun = true
	j.start = m.Start
	return j.writeValue(newMetaJSON("begin", m))
}

// Result writes a "port" line.
func (j *jsonlWriter) Result(r scan.Result) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usable(); err != nil {
		return err
	}
	if !j.begun {
		return fmt.Errorf("report: jsonl: called before Begin")
	}
	if err := checkResult(r); err != nil {
		return fmt.Errorf("report: jsonl: %w", err)
	}
	if _, ok := j.seen[r.Addr]; !ok {
		j.seen[r.Addr] = struct{}{}
	}
	b := append(j.buf[:0], `{"type":"port","addr":`...)
	b = appendJSONString(b, r.Addr.String())
	b = append(b, `,"host":`...)
	b = appendJSONString(b, r.Host)
	b = append(b, `,"port":`...)
	b = strconv.AppendUint(b, uint64(r.Port), 10)
	b = append(b, `,"protocol":`...)
	b = appendJSONString(b, r.Proto.String())
	b = append(b, `,"state":`...)
	b = appendJSONString(b, r.State.String())
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, string(r.Reason))
	b = append(b, `,"rtt_ms":`...)
	b = strconv.AppendFloat(b, ms(r.RTT), 'f', -1, 64)
	b = append(b, `,"tries":`...)
	b = strconv.AppendInt(b, int64(r.Tries), 10)
	b = append(b, `,"service":`...)
	b = appendJSONString(b, serviceName(r.Port, r.Proto))
	if r.Service != nil {
		d, err := json.Marshal(r.Service)
		if err != nil {
			return fmt.Errorf("report: jsonl: %w", err)
		}
		b = append(b, `,"detected":`...)
		b = append(b, d...)
	}
	b = append(b, "}\n"...)
	j.buf = b
	return j.write(b)
}

// End writes the "end" line.
func (j *jsonlWriter) End(s Summary) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usable(); err != nil {
		return err
	}
	if !j.begun {
		return fmt.Errorf("report: jsonl: called before Begin")
	}
	j.ended = true
	total, up := hostCounts(s, len(j.seen))
	if s.End.IsZero() {
		s.End = time.Now()
	}
	s.Elapsed = elapsed(s, j.start)
	return j.writeValue(newSummaryJSON("end", s, total, up))
}

func (j *jsonlWriter) usable() error {
	if j.ended {
		return ErrEnded
	}
	return j.failed
}

func (j *jsonlWriter) writeValue(v any) error {
	buf := bytes.NewBuffer(j.buf[:0])
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("report: jsonl: %w", err)
	}
	j.buf = buf.Bytes()
	return j.write(j.buf)
}

// write writes one line and flushes.
func (j *jsonlWriter) write(line []byte) error {
	if _, err := j.w.Write(line); err != nil {
		j.failed = fmt.Errorf("report: jsonl: write: %w", err)
		return j.failed
	}
	var err error
	switch f := j.w.(type) {
	case interface{ Flush() error }:
		err = f.Flush()
	case interface{ Flush() }:
		f.Flush()
	}
	if err != nil {
		j.failed = fmt.Errorf("report: jsonl: flush: %w", err)
	}
	return j.failed
}

// appendJSONString appends s as a JSON string; plain ASCII is copied, the
// rest is left to encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			buf := bytes.NewBuffer(b)
			enc := json.NewEncoder(buf)
			enc.SetEscapeHTML(false)
			enc.Encode(s) // a string always encodes
			return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
