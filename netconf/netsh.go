package netconf

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"

	"github.com/portctl/portctl/registry"
)

// Parsers of Windows netsh output. They are pure, so they are tested on
// every OS; only ReadFull on Windows runs netsh. netsh translates its
// labels on non-English Windows, so the parsers go by the numbers and the
// dashed rule under the title, not by the words.

// ParseNetshDynamicPort parses the output of
// `netsh int ipv4 show dynamicport tcp`:
//
//	Protocol tcp Dynamic Port Range
//	---------------------------------
//	Start Port      : 49152
//	Number of Ports : 16384
//
// The first two "label : number" lines after the rule are the start and
// the count.
func ParseNetshDynamicPort(b []byte) (registry.Range, error) {
	var nums []uint64
	ruled := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() && len(nums) < 2 {
		line := strings.TrimSpace(sc.Text())
		if isRule(line) {
			ruled = true
			continue
		}
		i := strings.LastIndexByte(line, ':')
		if !ruled || i < 0 {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(line[i+1:]), 10, 32)
		if err != nil {
			return registry.Range{}, syntaxf("netconf: netsh dynamic port line %q: want a number after the colon", clip([]byte(line)))
		}
		nums = append(nums, n)
	}
	if len(nums) < 2 {
		return registry.Range{}, syntaxf("netconf: netsh dynamic port output %q: want a start port and a number of ports", clip(b))
	}
	start, count := nums[0], nums[1]
	if start == 0 || start > 65535 || count == 0 || start+count-1 > 65535 {
		return registry.Range{}, syntaxf("netconf: netsh dynamic port range: start %d and %d ports do not fit in 1-65535", start, count)
	}
	return registry.Range{First: uint16(start), Last: uint16(start + count - 1)}, nil
}

// ParseNetshExcluded parses the output of
// `netsh int ipv4 show excludedportrange protocol=tcp`:
//
//	Protocol tcp Port Exclusion Ranges
//
//	Start Port    End Port
//	----------    --------
//	      5357        5357
//	     50000       50059     *
//
//	* - Administered port exclusions.
//
// Each line of two ports after the rule, optionally marked "*" (excluded
// by an administrator rather than by a service such as Hyper-V), is a
// range. No lines after the rule means no exclusions.
func ParseNetshExcluded(b []byte) ([]registry.Range, error) {
	var out []registry.Range
	ruled := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !ruled {
			ruled = isRule(line)
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 || f[0][0] < '0' || f[0][0] > '9' {
			continue // the blank line and the footnote
		}
		if len(f) > 3 || len(f) < 2 || (len(f) == 3 && f[2] != "*") {
			return nil, syntaxf("netconf: netsh excluded port line %q: want two ports and an optional *", clip([]byte(line)))
		}
		first, err1 := registry.ParsePort(f[0])
		last, err2 := registry.ParsePort(f[1])
		if err1 != nil || err2 != nil || first > last {
			return nil, syntaxf("netconf: netsh excluded port line %q: want two ports 0-65535, low first", clip([]byte(line)))
		}
		out = append(out, registry.Range{First: first, Last: last})
	}
	if !ruled {
		return nil, syntaxf("netconf: netsh excluded port output %q: no table", clip(b))
	}
	return out, nil
}

// isRule reports whether line is a rule of dashes under a title or a
// column header ("-----", "----------    --------").
func isRule(line string) bool {
	return strings.HasPrefix(line, "---") && strings.Trim(line, "- \t") == ""
}
