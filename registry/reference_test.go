package registry_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/registry"
)

func TestReferences(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"one RFC", "[RFC9110]", []string{"RFC 9110"}},
		{"three-digit RFC", "[RFC959]", []string{"RFC 959"}},
		{"RFCs in a row", "[RFC3501][RFC8314][RFC9051]", []string{"RFC 3501", "RFC 8314", "RFC 9051"}},
		{"space between", "[RFC1234] [RFC5678]", []string{"RFC 1234", "RFC 5678"}},
		{"footnote mark left out", "[1][RFC4727][RFC6335]", []string{"RFC 4727", "RFC 6335"}},
		{"draft as written", "[RFC7589][RFC-ietf-netconf-over-tls13-04]", []string{"RFC 7589", "RFC-ietf-netconf-over-tls13-04"}},
		{"other standard", "[ITU-T X.510 / ISO/IEC 9584-11]", []string{"ITU-T X.510 / ISO/IEC 9584-11"}},
		{"url", "[https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md]",
			[]string{"https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md"}},
		{"text outside brackets", "see [RFC854] too", []string{"see", "RFC 854", "too"}},
		{"unclosed bracket", "[RFC9110", []string{"RFC 9110"}},
		{"empty brackets", "[][ ]", nil},
		{"RFC without a number", "[RFC]", []string{"RFC"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, registry.References(tt.in)); diff != "" {
				t.Errorf("References(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestPeople(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"organisation", "[IESG]", []string{"IESG"}},
		{"person", "[Jon_Postel]", []string{"Jon Postel"}},
		{"two", "[Jason_Lockett][Melanie_Kacerek]", []string{"Jason Lockett", "Melanie Kacerek"}},
		{"number that tells namesakes apart", "[Eric_Soderberg_2][Edward_Yim]", []string{"Eric Soderberg", "Edward Yim"}},
		{"number alone kept", "[3]", []string{"3"}},
		{"underscores only", "[__]", nil},
		{"not bracketed", "Jane Doe", []string{"Jane Doe"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, registry.People(tt.in)); diff != "" {
				t.Errorf("People(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// FuzzReadable checks that References and People, which read IANA's text,
// return only non-empty, trimmed items.
func FuzzReadable(f *testing.F) {
	for _, s := range []string{"[RFC9110]", "[1][RFC4727][RFC6335]", "[Eric_Soderberg_2][Edward_Yim]", "[a[b]]c", "[", "]", "_1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for fn, items := range map[string][]string{"References": registry.References(s), "People": registry.People(s)} {
			for _, it := range items {
				if it == "" || it != strings.TrimSpace(it) {
					t.Errorf("%s(%q) = %q; want non-empty, trimmed items", fn, s, items)
				}
			}
		}
	})
}
