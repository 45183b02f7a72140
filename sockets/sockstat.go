package sockets

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Sockstat is the kernel's socket summary (/proc/net/sockstat and
// sockstat6): per protocol, counters such as "inuse", "orphan", "tw",
// "alloc" and "mem".
type Sockstat map[string]map[string]int64

// ParseSockstat parses lines such as "TCP: inuse 5 orphan 0 tw 2 alloc 7
// mem 1". Lines of other shapes are an error.
func ParseSockstat(b []byte) (Sockstat, error) {
	out := Sockstat{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		proto, rest, ok := strings.Cut(line, ":")
		if !ok || proto == "" {
			return nil, fmt.Errorf("sockets: sockstat line %q has no \"PROTO:\"", line)
		}
		f := strings.Fields(rest)
		if len(f)%2 != 0 {
			return nil, fmt.Errorf("sockets: sockstat line %q: want name value pairs", line)
		}
		m := out[proto]
		if m == nil {
			m = map[string]int64{}
			out[proto] = m
		}
		for i := 0; i < len(f); i += 2 {
			v, err := strconv.ParseInt(f[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("sockets: sockstat line %q: %q is not a number", line, f[i+1])
			}
			m[f[i]] = v
		}
	}
	return out, sc.Err()
}
