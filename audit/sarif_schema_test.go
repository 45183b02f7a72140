package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// sarifSchemaPath is where test-deps.sh puts the official SARIF 2.1.0 JSON
// schema (sarif-2.1.0-rtm.5.json, from Microsoft's @microsoft/jest-sarif
// package); PORTCTL_SARIF_SCHEMA names another copy. It is not kept in
// this repository.
func sarifSchemaPath() string {
	if p := os.Getenv("PORTCTL_SARIF_SCHEMA"); p != "" {
		return p
	}
	return "/var/cache/portctl-test/sarif-2.1.0-rtm.5.json"
}

// TestSARIFSchema validates the SARIF output, with and without a policy,
// against the official schema.
func TestSARIFSchema(t *testing.T) {
	path := sarifSchemaPath()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no SARIF 2.1.0 schema at %s (test-deps.sh fetches it; PORTCTL_SARIF_SCHEMA names another copy): %v", path, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("sarif-2.1.0.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("sarif-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	// The schema does catch a broken log.
	for _, bad := range []string{`{"version":"2.0.0","runs":[]}`, `{"version":"2.1.0","runs":[{"tool":{"driver":{}}}]}`,
		`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x"}},"results":[{"level":"severe","message":{"text":"m"}}]}]}`} {
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(bad)))
		if schema.Validate(v) == nil {
			t.Fatalf("the schema at %s accepts %s: it is not the SARIF 2.1.0 schema", path, bad)
		}
	}
	withPolicy := sarifReport()
	without := sarifReport()
	without.PolicyFile = ""
	empty := Check(Input{}, nil)
	for name, rep := range map[string]Report{"with a policy": withPolicy, "without a policy": without, "no findings": empty} {
		b, err := SARIF(rep, "1.2.3")
		if err != nil {
			t.Fatal(err)
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: SARIF output is not JSON: %v", name, err)
		}
		if err := schema.Validate(v); err != nil {
			var pretty bytes.Buffer
			json.Indent(&pretty, b, "", "  ")
			t.Errorf("%s: SARIF output does not validate against %s:\n%v\n%s", name, path, err, pretty.String())
		}
	}
}
