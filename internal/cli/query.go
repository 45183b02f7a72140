package cli

import (
	"strings"

	"github.com/portctl/portctl/registry"
)

// queryKind tells what an `info` argument names.
type queryKind int

const (
	queryPort queryKind = iota + 1
	queryRange
	queryName
)

func (k queryKind) String() string {
	switch k {
	case queryPort:
		return "port"
	case queryRange:
		return "range"
	case queryName:
		return "name"
	}
	return ""
}

// query is a parsed `info` argument.
type query struct {
	Kind  queryKind
	Range registry.Range    // for queryPort (First == Last) and queryRange
	Name  string            // for queryName
	Proto registry.Protocol // from a "/proto" suffix; 0 when absent
}

// isServiceName reports whether s is shaped like a service name: a letter
// or digit, then up to 63 letters, digits and '.', '_', '+', '-'.
func isServiceName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, c := range []byte(s) {
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("._+-", rune(c))) {
			return false
		}
	}
	return true
}

const queryAccepted = "want a port 0-65535, a range A-B or a service name"

// parseQuery parses PORT, A-B or NAME, each optionally followed by
// "/tcp", "/udp", "/sctp" or "/dccp".
func parseQuery(s string) (query, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return query{}, usageErrorf("empty argument: %s", queryAccepted)
	}
	var q query
	if body, proto, ok := strings.Cut(t, "/"); ok {
		p, err := registry.ParseProtocol(proto)
		if err != nil || len(p.Each()) != 1 {
			return query{}, usageErrorf("%q: unknown protocol %q (want tcp, udp, sctp or dccp after the slash)", s, proto)
		}
		q.Proto, t = p, strings.TrimSpace(body)
	}
	switch {
	case t == "":
		return query{}, usageErrorf("%q: %s", s, queryAccepted)
	case strings.HasPrefix(t, "-") && len(t) > 1 && isDigits(t[1:]):
		return query{}, usageErrorf("port %s is negative (want 0-65535)", t)
	case strings.HasSuffix(t, "-") && isDigits(t[:len(t)-1]):
		return query{}, usageErrorf("range %q has no last port (want A-B with A <= B, each 0-65535)", t)
	case isDigits(t):
		p, err := registry.ParsePort(t)
		if err != nil {
			return query{}, usageErrorf("%v", err)
		}
		q.Kind, q.Range = queryPort, registry.Range{First: p, Last: p}
	case isRange(t):
		r, err := registry.ParseRange(t)
		if err != nil {
			return query{}, usageErrorf("%v", err)
		}
		q.Kind, q.Range = queryRange, r
		if r.First == r.Last {
			q.Kind = queryPort
		}
	case isServiceName(t):
		q.Kind, q.Name = queryName, t
	default:
		return query{}, usageErrorf("%q is not a port, range or service name (%s; names use letters, digits, '-', '_', '.', '+')", s, queryAccepted)
	}
	return q, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isRange reports whether s has the shape digits-digits (spaces allowed).
func isRange(s string) bool {
	a, b, ok := strings.Cut(s, "-")
	return ok && isDigits(strings.TrimSpace(a)) && isDigits(strings.TrimSpace(b))
}
