package registry_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portctl/portctl/registry"
)

// ianaHeader is the header line of IANA's service-names-port-numbers.csv.
const ianaHeader = "Service Name,Port Number,Transport Protocol,Description,Assignee,Contact," +
	"Registration Date,Modification Date,Reference,Service Code,Unauthorized Use Reported,Assignment Notes"

// excerptWant is what ParseCSV returns for testdata/iana-excerpt.csv.
var excerptWant = []registry.Assignment{
	{Port: 0, Proto: tcp, Description: "Reserved", Assignee: "[Jon_Postel]", Contact: "[Jon_Postel]"},
	{Port: 0, Proto: udp, Description: "Reserved", Assignee: "[Jon_Postel]", Contact: "[Jon_Postel]"},
	{Port: 7, Proto: tcp, Name: "echo", Description: "Echo", Reference: "[RFC862]", Assignee: "[Jon_Postel]", Contact: "[Jon_Postel]"},
	{Port: 7, Proto: udp, Name: "echo", Description: "Echo", Reference: "[RFC862]", Assignee: "[Jon_Postel]", Contact: "[Jon_Postel]"},
	{Port: 80, Proto: tcp, Name: "http", Description: "World Wide Web HTTP", Reference: "[RFC9110]",
		Assignee: "[IESG]", Contact: "[IETF_Chair]", Modified: "2022-06-09", Notes: "Example notes: a key=value, another key=value"},
	{Port: 80, Proto: udp, Name: "http", Description: "World Wide Web HTTP", Reference: "[RFC9110]",
		Assignee: "[IESG]", Contact: "[IETF_Chair]", Modified: "2022-06-09"},
	{Port: 3000, Proto: tcp, Name: "remoteware-cl", Description: "RemoteWare Client", Assignee: "[Example_Person]", Contact: "[Example_Person]"},
	{Port: 3000, Proto: tcp, Name: "hbci", Description: "HBCI", Assignee: "[Example_Person_2]", Contact: "[Example_Person_2]"},
	{Port: 3000, Proto: udp, Name: "remoteware-cl", Description: "RemoteWare Client", Assignee: "[Example_Person]", Contact: "[Example_Person]"},
	{Port: 3000, Proto: udp, Name: "hbci", Description: "HBCI", Assignee: "[Example_Person_2]", Contact: "[Example_Person_2]"},
	{Port: 4000, Proto: sctp, Description: "Reserved"},
	{Port: 4001, Proto: tcp, Name: "multi-line",
		Description: "A description, with a comma that goes on over a second line, and extra spaces",
		Reference:   "[RFC1234] [RFC5678]", Assignee: "[Example_Person_3]", Contact: "[Example_Person_3]",
		Registered: "2020-01-02", Modified: "2021-03-04"},
	{Port: 6000, Last: 6063, Proto: tcp, Name: "x11", Description: "X Window System", Assignee: "[Example_Person_4]", Contact: "[Example_Person_4]"},
	{Port: 6000, Last: 6063, Proto: udp, Name: "x11", Description: "X Window System", Assignee: "[Example_Person_4]", Contact: "[Example_Person_4]"},
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseCSV(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want []registry.Assignment
	}{
		{"iana-excerpt.csv", readTestdata(t, "iana-excerpt.csv"), excerptWant},
		{"iana-bom.csv", readTestdata(t, "iana-bom.csv"), []registry.Assignment{
			{Port: 443, Proto: tcp, Name: "https", Description: "http protocol over TLS/SSL", Reference: "[RFC9110]",
				Assignee: "[IESG]", Contact: "[IETF_Chair]", Modified: "2022-06-09"},
		}},
		{"every column", []byte(ianaHeader + "\n" +
			`3com-tsmux,106,tcp,3COM-TSMUX,[Jeremy_Siegel],[Jeremy_Siegel],1995-06,2021-05-06,[RFC1],9,Known Unauthorized Use on 106,"a` + "\n" + `note"` + "\n"),
			[]registry.Assignment{{Port: 106, Proto: tcp, Name: "3com-tsmux", Description: "3COM-TSMUX", Reference: "[RFC1]",
				Assignee: "[Jeremy_Siegel]", Contact: "[Jeremy_Siegel]", Registered: "1995-06", Modified: "2021-05-06",
				Notes: "a note", UnauthorizedUse: "Known Unauthorized Use on 106"}}},
		{"trailing columns missing", []byte(ianaHeader + "\nhttp,80,tcp,Web,[IESG],[IETF_Chair],,2021-10-01,[RFC9110]\nssh,22,tcp,SSH\n"),
			[]registry.Assignment{
				{Port: 80, Proto: tcp, Name: "http", Description: "Web", Reference: "[RFC9110]", Assignee: "[IESG]", Contact: "[IETF_Chair]", Modified: "2021-10-01"},
				{Port: 22, Proto: tcp, Name: "ssh", Description: "SSH"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := registry.ParseCSV(bytes.NewReader(tt.in))
			if err != nil {
				t.Fatalf("ParseCSV(%s) error: %v", tt.name, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseCSV(%s) mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestParseCSVHeaderOnly(t *testing.T) {
	got, err := registry.ParseCSV(strings.NewReader(ianaHeader + "\n"))
	if err != nil || len(got) != 0 {
		t.Errorf("ParseCSV(header only) = %v, %v; want no assignments, nil", got, err)
	}
}

func TestParseCSVErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"different header", readTestdata(t, "bad-header.csv")},
		{"html page", readTestdata(t, "bad-html.csv")},
		{"port 99999", readTestdata(t, "bad-port.csv")},
		{"protocol icmp", readTestdata(t, "bad-proto.csv")},
		{"empty file", readTestdata(t, "empty.csv")},
		{"bom only", []byte("\xef\xbb\xbf")},
		{"header too short", []byte("Service Name,Port Number\n")},
		{"row too short", []byte(ianaHeader + "\nhttp,80,tcp\n")},
		{"protocol set", []byte(ianaHeader + "\nhttp,80,tcp/udp,Web,,,,,,,,\n")},
		{"backwards range", []byte(ianaHeader + "\nx11,6063-6000,tcp,X,,,,,,,,\n")},
		{"bare quote", []byte(ianaHeader + "\nhttp,80,tcp,a \"quoted\" word,,,,,,,,\n")},
		{"unterminated quote", []byte(ianaHeader + "\nhttp,80,tcp,\"never closed,,,,,,,,\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := registry.ParseCSV(bytes.NewReader(tt.in))
			if err == nil {
				t.Fatalf("ParseCSV(%.40q) = %v, nil; want an error", tt.in, got)
			}
			if !errors.Is(err, registry.ErrSyntax) {
				t.Errorf("ParseCSV(%.40q) error %v does not match ErrSyntax", tt.in, err)
			}
		})
	}
}

func TestParseCSVReadError(t *testing.T) {
	errRead := errors.New("read failed")
	tests := []struct {
		name string
		r    io.Reader
	}{
		{"in the rows", io.MultiReader(strings.NewReader(ianaHeader+"\nhttp,80,tcp,Web,,,,,,,,\n"), iotest.ErrReader(errRead))},
		{"in the header", iotest.ErrReader(errRead)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := registry.ParseCSV(tt.r)
			if !errors.Is(err, errRead) {
				t.Errorf("ParseCSV(failing reader) error = %v; want it to wrap %v", err, errRead)
			}
			if errors.Is(err, registry.ErrSyntax) {
				t.Errorf("ParseCSV(failing reader) error = %v matches ErrSyntax; want a read error", err)
			}
		})
	}
}

// builtinCSV returns Builtin().All() written by WriteCSV.
func builtinCSV(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := registry.WriteCSV(&buf, registry.Builtin().All()); err != nil {
		t.Fatalf("WriteCSV(Builtin().All()) error: %v", err)
	}
	return buf.Bytes()
}

func TestWriteCSVRoundTrip(t *testing.T) {
	want := registry.Builtin().All()
	got, err := registry.ParseCSV(bytes.NewReader(builtinCSV(t)))
	if err != nil {
		t.Fatalf("ParseCSV(WriteCSV(Builtin().All())) error: %v", err)
	}
	// WriteCSV has no column for aliases.
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(registry.Assignment{}, "Aliases")); diff != "" {
		t.Errorf("ParseCSV(WriteCSV(Builtin().All())) mismatch (-want +got):\n%s", diff)
	}
}

func TestWriteCSVHeader(t *testing.T) {
	var buf bytes.Buffer
	if err := registry.WriteCSV(&buf, excerptWant); err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(buf.String(), "\n")
	if first != ianaHeader {
		t.Errorf("WriteCSV header = %q; want %q", first, ianaHeader)
	}
	got, err := registry.ParseCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(excerptWant, got); diff != "" {
		t.Errorf("ParseCSV(WriteCSV(excerpt)) mismatch (-want +got):\n%s", diff)
	}
}

func TestCheckComplete(t *testing.T) {
	excerpt, err := registry.ParseCSV(bytes.NewReader(readTestdata(t, "iana-excerpt.csv")))
	if err != nil {
		t.Fatal(err)
	}
	full, err := registry.ParseCSV(bytes.NewReader(builtinCSV(t)))
	if err != nil {
		t.Fatal(err)
	}
	noHTTP := slices.DeleteFunc(slices.Clone(full), func(a registry.Assignment) bool {
		return a.Port == 80 && a.Proto == tcp && a.Name == "http"
	})
	noHTTPS := slices.DeleteFunc(slices.Clone(full), func(a registry.Assignment) bool {
		return a.Port == 443 && a.Name == "https"
	})
	tests := []struct {
		name    string
		as      []registry.Assignment
		mention string // "" when the set is complete
	}{
		{"excerpt", excerpt, "at least"},
		{"empty", nil, "at least"},
		{"builtin round trip", full, ""},
		{"no http on 80/tcp", noHTTP, "http"},
		{"no https", noHTTPS, "https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := registry.CheckComplete(tt.as)
			if tt.mention == "" {
				if err != nil {
					t.Errorf("CheckComplete(%d assignments) = %v; want nil", len(tt.as), err)
				}
				return
			}
			if !errors.Is(err, registry.ErrSyntax) || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("CheckComplete(%d assignments) = %v; want an ErrSyntax naming %q", len(tt.as), err, tt.mention)
			}
		})
	}
}

func FuzzParseCSV(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.csv"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no csv fixtures: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(ianaHeader + "\nhttp,80,tcp/udp,Web,,,,,,,,\n"))
	f.Add([]byte(ianaHeader + "\n3com-tsmux,106,tcp,3COM-TSMUX,[Jeremy_Siegel],[Jeremy_Siegel],1995-06,2021-05-06,[1][RFC1],9,Known Unauthorized Use on 106,\"a\nnote\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		as, err := registry.ParseCSV(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, registry.ErrSyntax) {
				t.Errorf("ParseCSV(%q) error %v does not match ErrSyntax", b, err)
			}
			return
		}
		for _, a := range as {
			if len(a.Proto.Each()) != 1 || a.Proto&^registry.AnyProtocol != 0 {
				t.Errorf("ParseCSV(%q) returned %+v; want a single protocol", b, a)
			}
			if a.Last != 0 && a.Last <= a.Port {
				t.Errorf("ParseCSV(%q) returned %+v; want Last == 0 or Last > Port", b, a)
			}
			if a.Name != strings.TrimSpace(a.Name) || strings.ContainsAny(a.Description+a.Notes+a.Reference+a.Assignee, "\r\n") {
				t.Errorf("ParseCSV(%q) returned %+v; want a trimmed name and one-line text", b, a)
			}
		}
	})
}
