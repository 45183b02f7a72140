package audit

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"slices"
	"testing"

	"github.com/portctl/portctl/sockets"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// sarifReport is a report with a finding of each kind of location.
func sarifReport() Report {
	host := linuxHost
	host.TCPSyncookies = 0
	rep := Check(Input{Sockets: []sockets.Socket{
		listen("0.0.0.0:6379", proc(1001, "redis-server", 112, "")),
		listen("0.0.0.0:23", proc(1002, "busybox", 0, "/bin/busybox", "telnetd")),
		listen("0.0.0.0:47000", nil),
	}, Host: host, OS: "linux"}, nil)
	rep.PolicyFile = "audit-policy.yaml"
	return rep
}

// TestSARIF checks the log against what the SARIF 2.1.0 schema requires
// (sarif-schema-2.1.0.json: sarifLog needs version and runs, run needs
// tool, tool needs driver, toolComponent needs name, reportingDescriptor
// needs id, multiformatMessageString needs text, result needs message
// with text or id, physicalLocation needs artifactLocation or address;
// levels are none, note, warning or error; URIs are URIs) and against
// what code scanning dashboards read.
func TestSARIF(t *testing.T) {
	rep := sarifReport()
	b, err := SARIF(rep, "1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	var log map[string]any
	if err := json.Unmarshal(b, &log); err != nil {
		t.Fatalf("SARIF output is not JSON: %v", err)
	}
	obj := func(v any, what string) map[string]any {
		t.Helper()
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s = %v; want an object", what, v)
		}
		return m
	}
	arr := func(v any, what string) []any {
		t.Helper()
		a, ok := v.([]any)
		if !ok {
			t.Fatalf("%s = %v; want an array", what, v)
		}
		return a
	}
	str := func(m map[string]any, key, what string) string {
		t.Helper()
		s, ok := m[key].(string)
		if !ok || s == "" {
			t.Fatalf("%s.%s = %v; want a non-empty string", what, key, m[key])
		}
		return s
	}
	text := func(v any, what string) {
		t.Helper()
		str(obj(v, what), "text", what)
	}
	uri := func(s, what string) {
		t.Helper()
		if _, err := url.Parse(s); err != nil {
			t.Errorf("%s = %q is not a URI: %v", what, s, err)
		}
	}
	levels := []string{"none", "note", "warning", "error"}

	if v := str(log, "version", "log"); v != "2.1.0" {
		t.Errorf("version = %q; want 2.1.0", v)
	}
	uri(str(log, "$schema", "log"), "$schema")
	runs := arr(log["runs"], "runs")
	if len(runs) != 1 {
		t.Fatalf("%d runs; want 1", len(runs))
	}
	run := obj(runs[0], "runs[0]")
	driver := obj(obj(run["tool"], "tool")["driver"], "tool.driver")
	if str(driver, "name", "driver") != "portctl audit" || str(driver, "version", "driver") != "1.2.3" {
		t.Errorf("driver = %v; want name portctl audit, version 1.2.3", driver)
	}
	uri(str(driver, "informationUri", "driver"), "informationUri")
	var ruleIDs []string
	for i, r := range arr(driver["rules"], "driver.rules") {
		rule := obj(r, "rule")
		id := str(rule, "id", "rule")
		if slices.Contains(ruleIDs, id) {
			t.Errorf("rule %q listed twice", id)
		}
		ruleIDs = append(ruleIDs, id)
		if id != Rules()[i].ID {
			t.Errorf("rules[%d].id = %q; want %q", i, id, Rules()[i].ID)
		}
		for _, k := range []string{"shortDescription", "fullDescription", "help"} {
			text(rule[k], id+"."+k)
		}
		if lv := str(obj(rule["defaultConfiguration"], id+".defaultConfiguration"), "level", id); !slices.Contains(levels, lv) {
			t.Errorf("rule %s level %q; want one of %v", id, lv, levels)
		}
		if ss := str(obj(rule["properties"], id+".properties"), "security-severity", id); ss == "" {
			t.Errorf("rule %s has no security-severity", id)
		}
	}
	results := arr(run["results"], "results")
	if len(results) != len(rep.Findings) {
		t.Fatalf("%d results; want one per finding (%d)", len(results), len(rep.Findings))
	}
	fingerprints := map[string]bool{}
	for i, r := range results {
		res := obj(r, "result")
		text(res["message"], "result.message")
		id := str(res, "ruleId", "result")
		idx, ok := res["ruleIndex"].(float64)
		if !ok || int(idx) < 0 || int(idx) >= len(ruleIDs) || ruleIDs[int(idx)] != id {
			t.Errorf("result %d: ruleIndex %v does not point at rule %q", i, res["ruleIndex"], id)
		}
		if id != rep.Findings[i].Rule {
			t.Errorf("result %d: ruleId %q; want %q", i, id, rep.Findings[i].Rule)
		}
		if lv := str(res, "level", "result"); !slices.Contains(levels, lv) {
			t.Errorf("result %d: level %q", i, lv)
		}
		locs := arr(res["locations"], "result.locations")
		if len(locs) != 1 {
			t.Fatalf("result %d: %d locations; want 1", i, len(locs))
		}
		loc := obj(locs[0], "location")
		phys := obj(loc["physicalLocation"], "physicalLocation")
		if u := str(obj(phys["artifactLocation"], "artifactLocation"), "uri", "artifactLocation"); u != "audit-policy.yaml" {
			t.Errorf("result %d: artifact %q; want the policy file", i, u)
		}
		ll := obj(arr(loc["logicalLocations"], "logicalLocations")[0], "logicalLocation")
		str(ll, "name", "logicalLocation")
		str(ll, "fullyQualifiedName", "logicalLocation")
		fp := str(obj(res["partialFingerprints"], "partialFingerprints"), "portctlAudit/v1", "partialFingerprints")
		if fingerprints[fp] {
			t.Errorf("result %d: fingerprint %s repeated", i, fp)
		}
		fingerprints[fp] = true
	}

	// The same findings from another run give the same fingerprints.
	again, err := SARIF(sarifReport(), "1.2.4")
	if err != nil {
		t.Fatal(err)
	}
	var log2 struct {
		Runs []struct {
			Results []struct {
				PartialFingerprints map[string]string `json:"partialFingerprints"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(again, &log2); err != nil {
		t.Fatal(err)
	}
	for _, r := range log2.Runs[0].Results {
		if !fingerprints[r.PartialFingerprints["portctlAudit/v1"]] {
			t.Errorf("fingerprint %v of a second run is new", r.PartialFingerprints)
		}
	}

	golden := "testdata/sarif.golden.json"
	if *update {
		if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(b)) {
		t.Errorf("SARIF output differs from %s (run go test ./audit -run TestSARIF -update after checking the change):\n%s", golden, b)
	}
}

// TestSARIFWithoutPolicy: without a policy file the results have logical
// locations only, and an empty report is a valid empty run.
func TestSARIFWithoutPolicy(t *testing.T) {
	rep := sarifReport()
	rep.PolicyFile = ""
	b, err := SARIF(rep, "")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("physicalLocation")) {
		t.Errorf("SARIF without a policy file has a physicalLocation:\n%s", b)
	}
	b, err = SARIF(Report{}, "")
	if err != nil {
		t.Fatal(err)
	}
	var log struct {
		Runs []struct {
			Results []any `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b, &log); err != nil || len(log.Runs) != 1 || log.Runs[0].Results == nil {
		t.Errorf("SARIF(empty report) = %s, %v; want one run with an empty results array", b, err)
	}
}
