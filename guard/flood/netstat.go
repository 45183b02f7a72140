package flood

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxLine bounds one line of /proc/net/netstat: TcpExt holds some 130
// counters of at most 20 digits and their names.
const maxLine = 64 << 10

// ParseNetstat parses the text of /proc/net/netstat or /proc/net/snmp:
// pairs of lines, the first naming the counters of a group and the second
// giving their values, both led by the group's name:
//
//	TcpExt: SyncookiesSent SyncookiesRecv ...
//	TcpExt: 0 0 ...
//
// It returns the values by group ("TcpExt", "IpExt", "Tcp", ...) and by
// counter name. A negative value (snmp's Tcp MaxConn is -1, "no limit")
// is left out; a line that pairs with none, a count of values that differs
// from the count of names, or a value that is not a number is an error.
func ParseNetstat(r io.Reader) (map[string]map[string]uint64, error) {
	out := map[string]map[string]uint64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 8<<10), maxLine)
	var (
		group string   // the group whose names were read last
		names []string // and its names, waiting for their values
		line  int
	)
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		g, rest, ok := strings.Cut(text, ":")
		if !ok || g == "" || strings.ContainsAny(g, " \t") {
			return nil, fmt.Errorf("flood: line %d %q: want \"GROUP: ...\"", line, clip(text))
		}
		fields := strings.Fields(rest)
		if names == nil {
			if len(fields) == 0 {
				return nil, fmt.Errorf("flood: line %d: group %s names no counters", line, g)
			}
			group, names = g, fields
			continue
		}
		if g != group {
			return nil, fmt.Errorf("flood: line %d: values of %s follow the names of %s", line, g, group)
		}
		if len(fields) != len(names) {
			return nil, fmt.Errorf("flood: line %d: %s has %d values for %d names", line, g, len(fields), len(names))
		}
		m := out[g]
		if m == nil {
			m = make(map[string]uint64, len(names))
			out[g] = m
		}
		for i, f := range fields {
			if strings.HasPrefix(f, "-") {
				if _, err := strconv.ParseInt(f, 10, 64); err != nil {
					return nil, fmt.Errorf("flood: line %d: %s %s = %q is not a number", line, g, names[i], clip(f))
				}
				continue
			}
			v, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("flood: line %d: %s %s = %q is not a number", line, g, names[i], clip(f))
			}
			m[names[i]] = v
		}
		group, names = "", nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("flood: %w", err)
	}
	if names != nil {
		return nil, fmt.Errorf("flood: group %s has names and no values", group)
	}
	return out, nil
}

// clip shortens text for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
