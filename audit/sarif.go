package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/portctl/portctl/registry"
)

// SARIF 2.1.0 (OASIS, https://docs.oasis-open.org/sarif/sarif/v2.1.0/) is
// written with the few structs below rather than a SARIF library: the
// audit uses a small, fixed subset of the format (one run, one tool, rules
// and results with logical locations), which these ~60 lines cover, and
// the module keeps one dependency less whose API has changed across major
// versions. The test checks the output against the schema's required
// properties.

// sarifSchema is the JSON schema of SARIF 2.1.0 (errata 01).
const sarifSchema = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

// informationURI is where the tool is described.
const informationURI = "https://github.com/portctl/portctl"

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ShortDescription     sarifText      `json:"shortDescription"`
	FullDescription      sarifText      `json:"fullDescription"`
	Help                 sarifText      `json:"help"`
	DefaultConfiguration sarifRuleLevel `json:"defaultConfiguration"`
	Properties           map[string]any `json:"properties"`
}

type sarifRuleLevel struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          map[string]any    `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysical      `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogicalPlace `json:"logicalLocations"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifLogicalPlace struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

// sarifLevel maps a severity onto SARIF's levels.
func sarifLevel(sev registry.Severity) string {
	switch {
	case sev >= registry.SevHigh:
		return "error"
	case sev == registry.SevMedium:
		return "warning"
	}
	return "note"
}

// securitySeverity is the CVSS-like score code-scanning dashboards (GitHub)
// read from a rule's "security-severity" property to rank it: 7.0 and up
// is high, 4.0-6.9 medium, below that low.
func securitySeverity(sev registry.Severity) string {
	switch sev {
	case registry.SevHigh:
		return "8.0"
	case registry.SevMedium:
		return "5.5"
	case registry.SevLow:
		return "3.0"
	}
	return "1.0"
}

// SARIF renders the report as a SARIF 2.1.0 log for code-scanning
// dashboards: every rule of Rules, and one result per finding. A result
// names its listener (or kernel setting) as a logical location, and
// carries a partial fingerprint made from the finding's Key, so that
// dashboards track it across runs. Code scanning on GitHub wants a file
// in the repository as well: when the report's PolicyFile is set, each
// result also points at it. Excepted findings are left out.
func SARIF(r Report, toolVersion string) ([]byte, error) {
	driver := sarifDriver{Name: "portctl audit", Version: toolVersion, InformationURI: informationURI}
	for _, rule := range rules {
		driver.Rules = append(driver.Rules, sarifRule{
			ID: rule.ID, Name: rule.Name,
			ShortDescription:     sarifText{Text: rule.Short},
			FullDescription:      sarifText{Text: rule.Full},
			Help:                 sarifText{Text: rule.Help, Markdown: rule.Help},
			DefaultConfiguration: sarifRuleLevel{Level: sarifLevel(rule.Severity)},
			Properties: map[string]any{
				"security-severity": securitySeverity(rule.Severity),
				"tags":              []string{"security", "network"},
				"precision":         "high",
			},
		})
	}
	run := sarifRun{Tool: sarifTool{Driver: driver}, Results: []sarifResult{}}
	for _, f := range r.Findings {
		idx := ruleIndex(f.Rule)
		if idx < 0 {
			return nil, fmt.Errorf("audit: SARIF: finding of unknown rule %q", f.Rule)
		}
		loc := sarifLocation{LogicalLocations: []sarifLogicalPlace{logicalPlace(f)}}
		if r.PolicyFile != "" {
			loc.PhysicalLocation = &sarifPhysical{ArtifactLocation: sarifArtifact{URI: r.PolicyFile}}
		}
		sum := sha256.Sum256([]byte(f.Key))
		props := map[string]any{"severity": f.Severity.String()}
		if f.Service != "" {
			props["service"] = f.Service
		}
		if f.Process != nil {
			props["process"] = f.Process.Name
			props["pid"] = f.Process.PID
		}
		if f.Reach != nil {
			props["reach"] = f.Reach.State.String()
		}
		run.Results = append(run.Results, sarifResult{
			RuleID: f.Rule, RuleIndex: idx, Level: sarifLevel(f.Severity),
			Message:             sarifText{Text: f.Title + ". " + f.Why + " Fix: " + f.Fix},
			Locations:           []sarifLocation{loc},
			PartialFingerprints: map[string]string{"portctlAudit/v1": hex.EncodeToString(sum[:16])},
			Properties:          props,
		})
	}
	return json.MarshalIndent(sarifLog{Schema: sarifSchema, Version: "2.1.0", Runs: []sarifRun{run}}, "", "  ")
}

// logicalPlace names a finding's listener ("tcp/0.0.0.0:6379",
// "tcp/0.0.0.0:6379 redis-server") or setting ("net.ipv4.tcp_syncookies").
func logicalPlace(f Finding) sarifLogicalPlace {
	if f.Socket == nil {
		return sarifLogicalPlace{Name: f.Setting, FullyQualifiedName: f.Setting, Kind: "variable"}
	}
	name := fmt.Sprintf("%s/%s", baseProto(f.Socket.Proto), f.Socket.Local)
	fq := name
	if f.Process != nil {
		fq += " " + f.Process.Name
	}
	return sarifLogicalPlace{Name: name, FullyQualifiedName: fq, Kind: "resource"}
}
