package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/registry"
)

func TestAssignmentDetail(t *testing.T) {
	long := strings.Repeat("word ", 60)
	tests := []struct {
		name string
		a    registry.Assignment
		want []string
	}{
		{"nothing from IANA", registry.Assignment{Port: 2049, Name: "nfs"}, nil},
		{"contact differs", registry.Assignment{Reference: "[RFC9110]", Assignee: "[IESG]", Contact: "[IETF_Chair]", Modified: "2021-10-01"},
			[]string{"RFC 9110; assignee IESG, contact IETF Chair; modified 2021-10-01"}},
		{"contact is the assignee", registry.Assignment{Assignee: "[Jon_Postel]", Contact: "[Jon_Postel]", Registered: "1995-06"},
			[]string{"assignee Jon Postel; registered 1995-06"}},
		{"contact only", registry.Assignment{Contact: "[IETF_Chair]"}, []string{"contact IETF Chair"}},
		{"both dates", registry.Assignment{Registered: "2005-08", Modified: "2022-02-07"}, []string{"registered 2005-08, modified 2022-02-07"}},
		{"notes and unauthorized use", registry.Assignment{Reference: "[1][RFC4727]", Notes: "Defined TXT keys: None", UnauthorizedUse: "Known Unauthorized Use on 106"},
			[]string{"RFC 4727", "unauthorized use reported: Known Unauthorized Use on 106", "note: Defined TXT keys: None"}},
		{"long notes cut at a word", registry.Assignment{Notes: long},
			[]string{"note: " + strings.TrimSpace(long[:195]) + " …"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, assignmentDetail(tt.a)); diff != "" {
				t.Errorf("assignmentDetail(%+v) mismatch (-want +got):\n%s", tt.a, diff)
			}
		})
	}
}

func TestMergeProtocolsKeepsDifferentDetails(t *testing.T) {
	http := registry.Assignment{Port: 80, Proto: registry.TCP, Name: "http", Description: "World Wide Web HTTP", Reference: "[RFC9110]", Aliases: []string{"www"}}
	udp := http
	udp.Proto, udp.Aliases = registry.UDP, nil
	sctp := http
	sctp.Proto, sctp.Modified = registry.SCTP, "2022-02-07"
	got := mergeProtocols([]registry.Assignment{http, udp, sctp})
	if len(got) != 2 || got[0].Proto != registry.TCP|registry.UDP || got[1].Proto != registry.SCTP {
		t.Errorf("mergeProtocols(http tcp, udp, sctp with another date) = %+v; want tcp/udp and sctp apart", got)
	}
}

// TestInfoRangeStaysCompact checks that a range names RFCs beside the
// descriptions and leaves the rest of IANA's columns to `info PORT`.
func TestInfoRangeStaysCompact(t *testing.T) {
	code, out, stderr := runCLI(t, "info", "20-23")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"File Transfer Protocol [Control] (RFC 959)", "Telnet (RFC 854)"} {
		if !strings.Contains(out, want) {
			t.Errorf("info 20-23 output lacks %q:\n%s", want, out)
		}
	}
	for _, noise := range []string{"assignee", "modified", "note:"} {
		if strings.Contains(out, noise) {
			t.Errorf("info 20-23 output has %q; want it left to single ports:\n%s", noise, out)
		}
	}
}

func TestInfoJSONIANAFields(t *testing.T) {
	code, out, stderr := runCLI(t, "info", "80/tcp", "--json")
	if code != ExitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var raw struct {
		Ports []struct {
			Assignments []map[string]any `json:"assignments"`
		} `json:"ports"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil || len(raw.Ports) != 1 {
		t.Fatalf("info 80/tcp --json = %s (%v); want one port", out, err)
	}
	want := map[string]any{"port": 80.0, "protocol": "tcp", "name": "http", "aliases": []any{"www"}, "description": "World Wide Web HTTP",
		"reference": "[RFC9110]", "assignee": "[IESG]", "contact": "[IETF_Chair]", "modified": "2021-10-01",
		"notes": "Defined TXT keys: u=<username> p=<password> path=<path to document>"}
	if diff := cmp.Diff(want, raw.Ports[0].Assignments[0]); diff != "" {
		t.Errorf("info 80/tcp --json first assignment mismatch (-want +got):\n%s", diff)
	}
}

// A name that is both an assignment's and another's alias on the same port
// (nicname, and whois with the alias nicname, on 43/tcp) lists the port once.
func TestInfoNameListsEachPortOnce(t *testing.T) {
	code, out, stderr := runCLI(t, "info", "nicname")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if first, _, _ := strings.Cut(out, "\n"); !strings.HasSuffix(first, "→ 43/tcp, 43/udp") {
		t.Errorf("first line %q; want nicname → 43/tcp, 43/udp", first)
	}
}
