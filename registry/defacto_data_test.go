package registry

import (
	"strings"
	"testing"
)

// categories is every declared Category constant.
var categories = map[Category]bool{
	CatDev: true, CatWeb: true, CatDatabase: true, CatCache: true,
	CatBroker: true, CatCloud: true, CatMonitoring: true, CatRemote: true,
	CatFile: true, CatMail: true, CatWindows: true, CatInfra: true,
	CatMedia: true, CatGame: true, CatIoT: true, CatOther: true,
}

// checkText reports what is wrong with a table's Text, or "".
func checkText(s string) string {
	switch {
	case s == "":
		return "empty Text"
	case strings.TrimSpace(s) != s:
		return "Text has leading or trailing space"
	case strings.ContainsAny(s, "\t\n\r"):
		return "Text contains a tab or line break"
	}
	return ""
}

// checkRange reports what is wrong with a Port/Last pair, or "".
func checkRange(port, last uint16) string {
	if last != 0 && last <= port {
		return "Last is neither 0 nor greater than Port"
	}
	return ""
}

// checkProtos reports what is wrong with a Protos set, or "".
func checkProtos(p Protocol) string {
	switch {
	case p == 0:
		return "Protos is zero"
	case p&^AnyProtocol != 0:
		return "Protos has bits outside AnyProtocol"
	}
	return ""
}

func TestDefactoTableSizes(t *testing.T) {
	tests := []struct {
		name     string
		got, min int
	}{
		{"uses", len(uses), 150},
		{"securityNotes", len(securityNotes), 40},
	}
	for _, tt := range tests {
		if tt.got < tt.min {
			t.Errorf("%s has %d entries, want at least %d", tt.name, tt.got, tt.min)
		}
	}
}

func TestUsesWellFormed(t *testing.T) {
	type key struct {
		port, last uint16
		protos     Protocol
		cat        Category
	}
	seen := make(map[key]int)
	for i, u := range uses {
		for _, msg := range []string{checkRange(u.Port, u.Last), checkProtos(u.Protos), checkText(u.Text)} {
			if msg != "" {
				t.Errorf("uses[%d] (port %d): %s", i, u.Port, msg)
			}
		}
		if !categories[u.Category] {
			t.Errorf("uses[%d] (port %d): unknown Category %q", i, u.Port, u.Category)
		}
		k := key{u.Port, u.Last, u.Protos, u.Category}
		if j, ok := seen[k]; ok {
			t.Errorf("uses[%d] (port %d): same port, protocols and category as uses[%d]; merge them", i, u.Port, j)
		}
		seen[k] = i
		if i == 0 {
			continue
		}
		prev := uses[i-1]
		if u.Port < prev.Port || (u.Port == prev.Port && u.Protos < prev.Protos) {
			t.Errorf("uses[%d] (port %d, %v): not sorted by Port then Protos (previous is port %d, %v)",
				i, u.Port, u.Protos, prev.Port, prev.Protos)
		}
	}
}

func TestSecurityNotesWellFormed(t *testing.T) {
	for i, n := range securityNotes {
		for _, msg := range []string{checkRange(n.Port, n.Last), checkProtos(n.Protos), checkText(n.Text)} {
			if msg != "" {
				t.Errorf("securityNotes[%d] (port %d): %s", i, n.Port, msg)
			}
		}
		if n.Severity < SevInfo || n.Severity > SevHigh {
			t.Errorf("securityNotes[%d] (port %d): Severity %d is not one of SevInfo..SevHigh", i, n.Port, n.Severity)
		}
		if i > 0 && n.Port < securityNotes[i-1].Port {
			t.Errorf("securityNotes[%d] (port %d): not sorted by Port (previous is port %d)",
				i, n.Port, securityNotes[i-1].Port)
		}
	}
}

// usesAt returns the uses covering port p, whatever their protocols.
func usesAt(p uint16) []Use {
	var out []Use
	for _, u := range uses {
		if p == u.Port || (u.Last != 0 && p > u.Port && p <= u.Last) {
			out = append(out, u)
		}
	}
	return out
}

// notesAt returns the security notes covering port p, whatever their protocols.
func notesAt(p uint16) []SecurityNote {
	var out []SecurityNote
	for _, n := range securityNotes {
		if p == n.Port || (n.Last != 0 && p > n.Port && p <= n.Last) {
			out = append(out, n)
		}
	}
	return out
}

func TestUsesKnownFacts(t *testing.T) {
	tests := []struct {
		port uint16
		want []string // each must appear in the Text of some use covering port
	}{
		{3000, []string{"Grafana", "Node"}},
		{5000, []string{"AirPlay", "Flask"}},
		{5173, []string{"Vite"}},
		{5432, []string{"PostgreSQL"}},
		{6379, []string{"Redis"}},
		{6001, []string{"X11"}},
		{7000, []string{"AirPlay", "Cassandra"}},
		{8888, []string{"Jupyter"}},
		{31000, []string{"NodePort"}},
	}
	for _, tt := range tests {
		found := usesAt(tt.port)
		if len(found) == 0 {
			t.Errorf("port %d: no uses", tt.port)
			continue
		}
		for _, w := range tt.want {
			ok := false
			for _, u := range found {
				if strings.Contains(u.Text, w) {
					ok = true
					break
				}
			}
			if !ok {
				t.Errorf("port %d: no use mentions %q", tt.port, w)
			}
		}
	}
}

func TestSecurityNotesKnownFacts(t *testing.T) {
	tests := []struct {
		port     uint16
		severity Severity // a note of at least this severity must exist
		mention  string   // and, if not empty, some note must mention it (any case)
	}{
		{23, SevInfo, "plaintext"},
		{137, SevHigh, ""},
		{139, SevHigh, ""},
		{445, SevHigh, ""},
		{2375, SevHigh, ""},
		{3389, SevHigh, ""},
		{6379, SevHigh, ""},
		{27017, SevHigh, ""},
	}
	for _, tt := range tests {
		found := notesAt(tt.port)
		if len(found) == 0 {
			t.Errorf("port %d: no security notes", tt.port)
			continue
		}
		var worst Severity
		mentioned := tt.mention == ""
		for _, n := range found {
			worst = max(worst, n.Severity)
			if !mentioned && strings.Contains(strings.ToLower(n.Text), strings.ToLower(tt.mention)) {
				mentioned = true
			}
		}
		if worst < tt.severity {
			t.Errorf("port %d: most severe note is %v, want at least %v", tt.port, worst, tt.severity)
		}
		if !mentioned {
			t.Errorf("port %d: no security note mentions %q", tt.port, tt.mention)
		}
	}
}
