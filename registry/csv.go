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

// csvHeader is the first columns of IANA's service-names-port-numbers.csv,
// which ParseCSV checks.
var csvHeader = csvColumns[:4]

// csvColumns is the whole header of IANA's CSV, which WriteCSV writes.
var csvColumns = []string{"Service Name", "Port Number", "Transport Protocol", "Description", "Assignee", "Contact",
	"Registration Date", "Modification Date", "Reference", "Service Code", "Unauthorized Use Reported", "Assignment Notes"}

// CSV columns, by position (IANA's layout). The service code (of DCCP
// services, a handful) is not kept.
const (
	colName         = 0
	colPort         = 1
	colProto        = 2
	colDesc         = 3
	colAssignee     = 4
	colContact      = 5
	colRegistered   = 6
	colModified     = 7
	colReference    = 8
	colUnauthorized = 10
	colNotes        = 11
)

// ParseCSV reads IANA's "Service Name and Transport Protocol Port Number
// Registry" in its official CSV form (service-names-port-numbers.csv). It
// returns the port assignments with every column but the service code; rows
// without a port (service names only) and unassigned rows are skipped. Text
// keeps IANA's syntax (see References and People), with line breaks and runs
// of space folded. Missing trailing columns are empty. Input that is not that file fails with an
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
		field := func(col int) string {
			if col < len(rec) {
				return cleanText(rec[col])
			}
			return ""
		}
		a.Assignee, a.Contact, a.Registered, a.Modified = field(colAssignee), field(colContact), field(colRegistered), field(colModified)
		a.Reference, a.UnauthorizedUse, a.Notes = field(colReference), field(colUnauthorized), field(colNotes)
		out = append(out, a)
	}
	return out, nil
}

// cleanText folds the line breaks and runs of space that the CSV keeps
// inside quoted fields into single spaces.
func cleanText(s string) string {
	if folded(s) {
		return s // most fields: no copy
	}
	return strings.Join(strings.Fields(s), " ")
}

// folded reports whether s is surely as cleanText leaves it: ASCII words
// with single spaces between them. Control characters and non-ASCII text
// (which may hold a Unicode space) answer false.
func folded(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < ' ' || c >= 0x80:
			return false
		case c == ' ' && (i == 0 || i == len(s)-1 || s[i+1] == ' '):
			return false
		}
	}
	return true
}

// WriteCSV writes as in the IANA CSV layout that ParseCSV reads, with the
// service code column left empty.
func WriteCSV(w io.Writer, as []Assignment) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvColumns); err != nil {
		return err
	}
	rec := make([]string, len(csvColumns))
	for _, a := range as {
		rec[colName], rec[colPort], rec[colProto], rec[colDesc] = a.Name, a.Range().String(), a.Proto.String(), a.Description
		rec[colAssignee], rec[colContact], rec[colRegistered], rec[colModified] = a.Assignee, a.Contact, a.Registered, a.Modified
		rec[colReference], rec[colUnauthorized], rec[colNotes] = a.Reference, a.UnauthorizedUse, a.Notes
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
