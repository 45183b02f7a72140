package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// MaxPolicySize is the largest policy file ParsePolicy reads.
const MaxPolicySize = 1 << 20

// Policy says what a machine may expose: the listeners it may have, the
// findings to set aside, the severities to change, and the severity from
// which a finding fails the audit. See the package documentation for the
// file format. A Policy is not modified by Check and is safe for
// concurrent use by several Checks.
type Policy struct {
	// File is where the policy was read from, for SARIF locations;
	// ParsePolicy leaves it empty.
	File string
	// FailOn is the severity from which a finding fails the audit (Never
	// for none); 0 leaves it to the caller.
	FailOn registry.Severity
	// Allow, when not nil, lists the listeners the machine may have: any
	// other listener is a not-allowed finding. An empty, non-nil Allow
	// allows none.
	Allow []Allow
	// Except sets findings aside.
	Except []Exception
	// Severity gives rules (by ID) another severity for all their
	// findings; a remote scan may still lower them.
	Severity map[string]registry.Severity
	// Reach, when not nil, lists the ports that may be reachable from
	// each source class it names: any other port the firewall lets that
	// class reach is a reach-not-allowed finding.
	Reach *ReachPolicy
}

// ReachPolicy is the policy's reach key.
type ReachPolicy struct {
	// Classes maps a source class (internet, lan) to the ports that may be
	// reachable from it; a class left out is not checked, an empty list
	// allows no port.
	Classes map[firewall.Class][]registry.Range
	Line    int // in the policy file
}

// Match selects listeners. Every field that is set must match; the zero
// Match selects every listener.
type Match struct {
	Ports []registry.Range // the listener's port is in one of them
	Proto sockets.Proto    // sockets.TCP or sockets.UDP; 0 for both
	// Processes are path.Match patterns, one of which matches one of the
	// holder's names: command name, executable or argv[0] base name, or
	// BusyBox applet.
	Processes []string
	Users     []string // user names or numeric IDs of the holder (or the socket's owner)
	// Addresses: every local address of the listener must match one of
	// them: "any", "loopback", "private" (loopback, private and
	// link-local), an IP address or a CIDR prefix.
	Addresses []string
}

// Allow is one entry of the allow list.
type Allow struct {
	Match
	Comment string
	Line    int // in the policy file
}

// Exception sets aside the findings of a rule that its Match selects; an
// exception for a kernel rule has no Match.
type Exception struct {
	Rule string // a rule ID, or "*" for every rule
	Match
	Reason string
	Line   int // in the policy file
}

// PolicyError is a mistake in a policy file, at a line (0 when none
// applies).
type PolicyError struct {
	Line int
	Msg  string
}

func (e *PolicyError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

func policyErrorf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &PolicyError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// The keys each part of the file takes, for the messages.
var (
	topKeys    = []string{"version", "fail_on", "allow", "except", "severity", "reach"}
	reachKeys  = []string{string(firewall.Internet), string(firewall.LAN)}
	allowKeys  = []string{"port", "proto", "process", "user", "address", "comment"}
	exceptKeys = []string{"rule", "port", "proto", "process", "user", "address", "reason"}
)

// ParsePolicy parses a policy file (YAML). It is strict: an unknown key, a
// repeated key, a value of the wrong kind, an unknown rule or severity are
// errors (a *PolicyError) that name the line, the key or value, and what
// is accepted.
func ParsePolicy(b []byte) (p *Policy, err error) {
	if len(b) > MaxPolicySize {
		return nil, &PolicyError{Msg: fmt.Sprintf("the file is %d bytes; a policy may have at most %d", len(b), MaxPolicySize)}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := decodeNode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &Policy{}, nil // an empty file: no rules of its own
		}
		return nil, err
	}
	var more yaml.Node
	if err := decodeNode(dec, &more); !errors.Is(err, io.EOF) {
		line := more.Line
		if len(more.Content) > 0 {
			line = more.Content[0].Line
		}
		return nil, &PolicyError{Line: line, Msg: "a second YAML document: a policy is one document"}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return &Policy{}, nil
		}
		root = root.Content[0]
	}
	if isNull(root) {
		return &Policy{}, nil
	}
	pol := &Policy{}
	err = eachKey(root, "the policy", topKeys, func(key string, k, v *yaml.Node) error {
		switch key {
		case "version":
			if s, err := scalar(v, key); err != nil {
				return err
			} else if s != "1" {
				return policyErrorf(v, "version %q: this portctl reads version 1", s)
			}
		case "fail_on":
			s, err := scalar(v, key)
			if err != nil {
				return err
			}
			sev, err := ParseThreshold(s)
			if err != nil {
				return policyErrorf(v, "fail_on: %v", err)
			}
			pol.FailOn = sev
		case "allow":
			if isNull(v) {
				return policyErrorf(v, "allow has no value: give a list of entries (allow: [] allows no listener)")
			}
			if v.Kind != yaml.SequenceNode {
				return policyErrorf(v, "allow: want a list of entries, each with port, proto, process, user or address")
			}
			pol.Allow = []Allow{}
			for _, e := range v.Content {
				a, err := parseAllow(e)
				if err != nil {
					return err
				}
				pol.Allow = append(pol.Allow, a)
			}
		case "except":
			if v.Kind != yaml.SequenceNode {
				return policyErrorf(v, "except: want a list of entries, each with a rule")
			}
			for _, e := range v.Content {
				x, err := parseException(e)
				if err != nil {
					return err
				}
				pol.Except = append(pol.Except, x)
			}
		case "severity":
			if v.Kind != yaml.MappingNode {
				return policyErrorf(v, "severity: want a mapping of rule IDs to severities, such as root-unprivileged-port: info")
			}
			pol.Severity = map[string]registry.Severity{}
			return eachKey(v, "severity", nil, func(rule string, k, v *yaml.Node) error {
				if ruleIndex(rule) < 0 {
					return policyErrorf(k, "severity: unknown rule %q (want one of %s)", rule, strings.Join(ruleIDs(), ", "))
				}
				s, err := scalar(v, rule)
				if err != nil {
					return err
				}
				var sev registry.Severity
				if err := sev.UnmarshalText([]byte(s)); err != nil {
					return policyErrorf(v, "severity of %s: unknown severity %q (want info, low, medium or high; to drop a rule's findings, add an exception)", rule, s)
				}
				pol.Severity[rule] = sev
				return nil
			})
		case "reach":
			r, err := parseReach(v)
			if err != nil {
				return err
			}
			pol.Reach = r
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pol, nil
}

// decodeNode decodes the next document, turning a panic of the YAML
// parser into an error and its messages into PolicyErrors.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PolicyError{Msg: fmt.Sprintf("not YAML the parser can read: %v", r)}
		}
	}()
	err = dec.Decode(n)
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	// "line 3: mapping values are not allowed in this context"
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				return &PolicyError{Line: line, Msg: "not valid YAML: " + text}
			}
		}
	}
	return &PolicyError{Msg: "not valid YAML: " + msg}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// eachKey calls fn for each key of the mapping n, refusing keys outside
// known (when not nil), repeated keys, aliases and keys that are not
// plain strings. what names n in messages.
func eachKey(n *yaml.Node, what string, known []string, fn func(key string, k, v *yaml.Node) error) error {
	if n.Kind == yaml.AliasNode {
		return policyErrorf(n, "YAML aliases (*name) are not supported in a policy")
	}
	if n.Kind != yaml.MappingNode {
		return policyErrorf(n, "%s: want a mapping (key: value lines), not %s", what, kindName(n))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
			return policyErrorf(k, "%s: keys must be plain words", what)
		}
		key := k.Value
		if known != nil && !slices.Contains(known, key) {
			return policyErrorf(k, "unknown key %q in %s (want %s)", key, what, strings.Join(known, ", "))
		}
		if first, ok := seen[key]; ok {
			return policyErrorf(k, "%s: key %q given twice (first at line %d)", what, key, first)
		}
		seen[key] = k.Line
		if v.Kind == yaml.AliasNode {
			return policyErrorf(v, "YAML aliases (*name) are not supported in a policy")
		}
		if err := fn(key, k, v); err != nil {
			return err
		}
	}
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	if isNull(n) {
		return "nothing"
	}
	return fmt.Sprintf("%q", n.Value)
}

// scalar returns the text of a single value.
func scalar(n *yaml.Node, key string) (string, error) {
	if isNull(n) {
		return "", policyErrorf(n, "%s has no value", key)
	}
	if n.Kind != yaml.ScalarNode {
		return "", policyErrorf(n, "%s: want a single value, not %s", key, kindName(n))
	}
	return n.Value, nil
}

// scalars returns the text of a single value or of a list of them.
func scalars(n *yaml.Node, key string) ([]*yaml.Node, error) {
	switch {
	case isNull(n):
		return nil, policyErrorf(n, "%s has no value", key)
	case n.Kind == yaml.ScalarNode:
		return []*yaml.Node{n}, nil
	case n.Kind == yaml.SequenceNode:
		if len(n.Content) == 0 {
			return nil, policyErrorf(n, "%s: an empty list matches nothing; leave the key out to match anything", key)
		}
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode || isNull(c) {
				return nil, policyErrorf(c, "%s: want single values in the list, not %s", key, kindName(c))
			}
		}
		return n.Content, nil
	}
	return nil, policyErrorf(n, "%s: want a value or a list of values, not %s", key, kindName(n))
}

// parseMatchKey reads one of the keys a Match is made of into m; the
// caller's eachKey has refused any other key.
func parseMatchKey(m *Match, key string, v *yaml.Node) error {
	switch key {
	case "port":
		vals, err := scalars(v, key)
		if err != nil {
			return err
		}
		for _, n := range vals {
			if n.Tag != "!!int" && n.Tag != "!!str" {
				return policyErrorf(n, "port %q: want a port 0-65535 or a range A-B", n.Value)
			}
			rg, err := registry.ParseRange(strings.TrimSpace(n.Value))
			if err != nil {
				return policyErrorf(n, "port %q: want a port 0-65535 or a range A-B", n.Value)
			}
			m.Ports = append(m.Ports, rg)
		}
	case "proto":
		s, err := scalar(v, key)
		if err != nil {
			return err
		}
		switch strings.ToLower(s) {
		case "tcp":
			m.Proto = sockets.TCP
		case "udp":
			m.Proto = sockets.UDP
		default:
			return policyErrorf(v, "proto %q: want tcp or udp (leave it out for both)", s)
		}
	case "process":
		vals, err := scalars(v, key)
		if err != nil {
			return err
		}
		for _, n := range vals {
			if _, err := path.Match(n.Value, ""); err != nil || n.Value == "" {
				return policyErrorf(n, "process %q: want a program name or a pattern such as \"python3*\"", n.Value)
			}
			m.Processes = append(m.Processes, n.Value)
		}
	case "user":
		vals, err := scalars(v, key)
		if err != nil {
			return err
		}
		for _, n := range vals {
			if n.Value == "" {
				return policyErrorf(n, "user is empty: want a user name or a numeric ID")
			}
			m.Users = append(m.Users, n.Value)
		}
	case "address":
		vals, err := scalars(v, key)
		if err != nil {
			return err
		}
		for _, n := range vals {
			if !validAddress(n.Value) {
				return policyErrorf(n, "address %q: want any, loopback, private, an IP address or a CIDR prefix such as 10.0.0.0/8", n.Value)
			}
			m.Addresses = append(m.Addresses, n.Value)
		}
	}
	return nil
}

// parseReach reads the reach key: a mapping of source classes to the
// ports that may be reachable from them.
func parseReach(v *yaml.Node) (*ReachPolicy, error) {
	if isNull(v) || v.Kind != yaml.MappingNode {
		return nil, policyErrorf(v, "reach: want a mapping of source classes to ports, such as reach: {internet: [22, 443]}")
	}
	rp := &ReachPolicy{Classes: map[firewall.Class][]registry.Range{}, Line: v.Line}
	err := eachKey(v, "reach", reachKeys, func(key string, k, v *yaml.Node) error {
		ports := []registry.Range{}
		if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
			rp.Classes[firewall.Class(key)] = ports // allows none
			return nil
		}
		vals, err := scalars(v, "reach: "+key)
		if err != nil {
			return err
		}
		for _, n := range vals {
			rg, err := registry.ParseRange(strings.TrimSpace(n.Value))
			if (n.Tag != "!!int" && n.Tag != "!!str") || err != nil {
				return policyErrorf(n, "reach: %s: port %q: want a port 0-65535 or a range A-B", key, n.Value)
			}
			ports = append(ports, rg)
		}
		rp.Classes[firewall.Class(key)] = ports
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rp, nil
}

func (m *Match) isZero() bool {
	return len(m.Ports) == 0 && m.Proto == 0 && len(m.Processes) == 0 && len(m.Users) == 0 && len(m.Addresses) == 0
}

func parseAllow(n *yaml.Node) (Allow, error) {
	a := Allow{Line: n.Line}
	err := eachKey(n, "an allow entry", allowKeys, func(key string, k, v *yaml.Node) error {
		if key == "comment" {
			s, err := scalar(v, key)
			a.Comment = s
			return err
		}
		return parseMatchKey(&a.Match, key, v)
	})
	if err != nil {
		return a, err
	}
	if a.isZero() {
		return a, policyErrorf(n, "this allow entry would allow every listener: give port, proto, process, user or address")
	}
	return a, nil
}

func parseException(n *yaml.Node) (Exception, error) {
	x := Exception{Line: n.Line}
	var ruleNode *yaml.Node
	err := eachKey(n, "an except entry", exceptKeys, func(key string, k, v *yaml.Node) error {
		switch key {
		case "rule":
			s, err := scalar(v, key)
			if err != nil {
				return err
			}
			if s != "*" && ruleIndex(s) < 0 {
				return policyErrorf(v, "rule %q: unknown (want * or one of %s)", s, strings.Join(ruleIDs(), ", "))
			}
			x.Rule, ruleNode = s, v
			return nil
		case "reason":
			s, err := scalar(v, key)
			x.Reason = s
			return err
		}
		return parseMatchKey(&x.Match, key, v)
	})
	if err != nil {
		return x, err
	}
	if x.Rule == "" {
		return x, policyErrorf(n, "this except entry has no rule: give the rule ID it is for (or * for every rule)")
	}
	if i := ruleIndex(x.Rule); i >= 0 && rules[i].Kernel && !x.isZero() {
		return x, policyErrorf(ruleNode, "rule %s is about a kernel setting: port, proto, process, user and address do not apply", x.Rule)
	}
	if x.Rule == "*" && x.isZero() {
		return x, policyErrorf(ruleNode, "rule * with nothing else would set every finding aside: give port, proto, process, user or address")
	}
	return x, nil
}

// validAddress reports whether s is an address spec Match understands.
func validAddress(s string) bool {
	switch s {
	case "any", "loopback", "private":
		return true
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	_, err := netip.ParsePrefix(s)
	return err == nil
}

// matchAddress reports whether the local address a matches spec.
func matchAddress(spec string, a netip.Addr) bool {
	a = a.Unmap()
	switch spec {
	case "any":
		return true
	case "loopback":
		return exposureOf(a) == exLoopback
	case "private":
		e := exposureOf(a)
		return e == exLoopback || e == exPrivate
	}
	if b, err := netip.ParseAddr(spec); err == nil {
		return b.Unmap() == a
	}
	if p, err := netip.ParsePrefix(spec); err == nil {
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Contains(a)
	}
	return false
}

// subject is what a Match looks at.
type subject struct {
	proto sockets.Proto
	port  uint16
	names []string
	proc  *sockets.Process
	uid   uint32 // the socket's owner, when no process is known
	addrs []netip.Addr
}

func (m *Match) matchSubject(s subject) bool {
	if m.Proto != 0 && m.Proto != s.proto {
		return false
	}
	if len(m.Ports) > 0 && !slices.ContainsFunc(m.Ports, func(r registry.Range) bool { return r.Contains(s.port) }) {
		return false
	}
	if len(m.Processes) > 0 && !slices.ContainsFunc(m.Processes, func(pat string) bool {
		return slices.ContainsFunc(s.names, func(n string) bool { ok, _ := path.Match(pat, n); return ok })
	}) {
		return false
	}
	if len(m.Users) > 0 {
		uid, name := s.uid, ""
		if s.proc != nil {
			uid, name = s.proc.UID, s.proc.User
		}
		if !slices.ContainsFunc(m.Users, func(u string) bool {
			return u == name || u == strconv.FormatUint(uint64(uid), 10)
		}) {
			return false
		}
	}
	for _, a := range s.addrs {
		if len(m.Addresses) > 0 && !slices.ContainsFunc(m.Addresses, func(spec string) bool { return matchAddress(spec, a) }) {
			return false
		}
	}
	return true
}

// matches reports whether the socket s of listener l matches.
func (m *Match) matches(l *listener, s *sockets.Socket) bool {
	return m.matchSubject(subject{proto: l.proto, port: l.port, names: l.names, proc: l.proc(), uid: s.UID, addrs: []netip.Addr{s.Local.Addr()}})
}

// matchFinding reports whether the listener of f matches: all its
// addresses must.
func (m *Match) matchFinding(f Finding) bool {
	if f.Socket == nil && f.Port != 0 { // a port the firewall opens, with no socket
		proto := sockets.TCP
		if f.Protocol == "udp" {
			proto = sockets.UDP
		}
		return m.matchSubject(subject{proto: proto, port: f.Port})
	}
	if f.Socket == nil {
		return m.isZero()
	}
	s := subject{proto: baseProto(f.Socket.Proto), port: f.Socket.Local.Port(), names: programNames(f.Process), proc: f.Process, uid: f.Socket.UID}
	if len(f.Addresses) > 0 {
		for _, a := range f.Addresses {
			s.addrs = append(s.addrs, a.Addr())
		}
	} else {
		s.addrs = []netip.Addr{f.Socket.Local.Addr()}
	}
	return m.matchSubject(s)
}

// exception returns the first exception that sets f aside, or nil; p may
// be nil.
func (p *Policy) exception(f Finding) *Exception {
	if p == nil {
		return nil
	}
	for i := range p.Except {
		x := &p.Except[i]
		if (x.Rule == "*" || x.Rule == f.Rule) && x.Match.matchFinding(f) {
			return x
		}
	}
	return nil
}

// override gives f the severity the policy sets for its rule; p may be
// nil.
func (p *Policy) override(f *Finding) {
	if p == nil {
		return
	}
	if sev, ok := p.Severity[f.Rule]; ok {
		f.Severity = sev
	}
}
