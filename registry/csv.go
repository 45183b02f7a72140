package registry

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

// csvHeader is the first columns of IANA's service-names-port-numbers.csv.
var csvHeader = []string{"Service Name", "Port Number", "Transport Protocol", "Description"}

// CSV columns used, by position (IANA's layout).
const (
	colName      = 0
	colPort      = 1
	colProto     = 2
	colDesc      = 3
	colReference = 8
)

// ParseCSV reads IANA's "Service Name and Transport Protocol Port Number
// Registry" in its official CSV form (service-names-port-numbers.csv). It
// returns the port assignments; rows without a port (service names only)
// and unassigned rows are skipped. Input that is not that file fails with an
// error wrapping ErrSyntax.
func ParseCSV(r io.Reader) ([]Assignment, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err == io.EOF {
		return nil, syntaxf("registry csv: empty input")
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, syntaxf("registry csv: header: %v", pe.Err)
		}
		return nil, fmt.Errorf("registry csv: %w", err)
	}
	if len(head) < len(csvHeader) {
		return nil, syntaxf("registry csv: header has %d columns, want the IANA layout starting %q", len(head), strings.Join(csvHeader, ","))
	}
	for i, want := range csvHeader {
		if strings.TrimSpace(head[i]) != want {
			return nil, syntaxf("registry csv: header column %d is %q, want %q", i+1, head[i], want)
		}
	}
	var out []Assignment
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, syntaxf("registry csv: line %d: %v", pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("registry csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) < len(csvHeader) {
			return nil, syntaxf("registry csv: line %d has %d columns, want at least %d", line, len(rec), len(csvHeader))
		}
		name := strings.TrimSpace(rec[colName])
		portField := strings.TrimSpace(rec[colPort])
		protoField := strings.TrimSpace(rec[colProto])
		desc := cleanText(rec[colDesc])
		if portField == "" || protoField == "" {
			continue // a service name without a port, or an unassigned block
		}
		if name == "" && strings.HasPrefix(strings.ToLower(desc), "unassigned") {
			continue
		}
		rng, err := ParseRange(portField)
		if err != nil {
			return nil, syntaxf("registry csv: line %d: port %q is not a port or range", line, portField)
		}
		proto, err := ParseProtocol(protoField)
		if err != nil || len(proto.Each()) != 1 {
			return nil, syntaxf("registry csv: line %d: transport protocol %q is not tcp, udp, sctp or dccp", line, protoField)
		}
		a := Assignment{Port: rng.First, Proto: proto, Name: name, Description: desc}
		if rng.Last != rng.First {
			a.Last = rng.Last
		}
		if len(rec) > colReference {
			a.Reference = cleanText(rec[colReference])
		}
		out = append(out, a)
	}
	return out, nil
}

// cleanText folds the line breaks and runs of space that the CSV keeps
// inside quoted fields into single spaces.
func cleanText(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// WriteCSV writes as in the IANA CSV layout that ParseCSV reads, with the
// columns portctl does not keep left empty.
func WriteCSV(w io.Writer, as []Assignment) error {
	cw := csv.NewWriter(w)
	head := []string{"Service Name", "Port Number", "Transport Protocol", "Description", "Assignee", "Contact",
		"Registration Date", "Modification Date", "Reference", "Service Code", "Unauthorized Use Reported", "Assignment Notes"}
	if err := cw.Write(head); err != nil {
		return err
	}
	for _, a := range as {
		rec := make([]string, len(head))
		rec[colName], rec[colPort], rec[colProto], rec[colDesc], rec[colReference] = a.Name, a.Range().String(), a.Proto.String(), a.Description, a.Reference
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
