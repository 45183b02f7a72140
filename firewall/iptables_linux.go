package firewall

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// ParseIptablesSave parses the output of iptables-save (family
// FamilyIPv4) or ip6tables-save (TableFamilyIPv6), as
// iptables-legacy-save writes it, into one Table per "*table" block, with
// Source Legacy.
//
// Each rule is translated into the expressions iptables-nft would load
// into the kernel for it (meta iifname, meta l4proto, payload and cmp for
// addresses and tcp/udp ports, xt matches and targets decoded as
// XtFromMatch decodes them), so that the evaluator sees one form for
// legacy and iptables-nft rules alike. Where iptables-nft's translation
// would change what the rule matches (an inverted pair of ports, an
// inverted /0 address), the translation keeps the legacy meaning.
//
// Modelled: -s, -d, -i, -o, -p, -f and their "!"; the matches tcp, udp
// (ports, flags, --syn; --tcp-option as the xt match), multiport,
// conntrack, state (as the conntrack match iptables-nft loads for it),
// addrtype, comment (also Rule.Comment), mark and limit; the verdicts
// ACCEPT, DROP, RETURN, jumps (-j CHAIN) and gotos (-g); the targets DNAT,
// SNAT, REDIRECT and MASQUERADE (as *NATTarget) and MARK (*XtMark). Any
// other target is an *Xt with Info nil, known by its name (REJECT, LOG).
// A match this package does not model, or a modelled one with an option
// it does not know, becomes an *Opaque holding the match's text ("-m
// recent --set …"), so the rule's verdict becomes unknown instead of
// broader; so does a NAT or MARK target it cannot say exactly.
//
// iptables-save itself drops two inversions from what it writes: "! -i
// +" (no interface) and "! --sport 0:65535" (no port), each of which
// makes the kernel match no packet; such a rule reads as matching every
// one, and no parser of the text can tell.
//
// A line that cannot be read is an error naming its number and the token.
func ParseIptablesSave(family Family, text string) ([]*Table, error) {
	if family != FamilyIPv4 && family != FamilyIPv6 {
		return nil, fmt.Errorf("iptables-save: family %d: want ip (2) or ip6 (10)", family)
	}
	p := &saveParser{fam: family}
	for n, line := range strings.Split(text, "\n") {
		p.line = n + 1
		if err := p.parseLine(strings.TrimRight(line, "\r")); err != nil {
			return nil, fmt.Errorf("iptables-save: line %d: %w", p.line, err)
		}
	}
	if p.cur != nil {
		return nil, fmt.Errorf("iptables-save: table %s has no COMMIT (line %d: end of input)", p.cur.Name, p.line)
	}
	return p.tables, nil
}

// builtinChain is a chain x_tables hooks in, with the priority iptables-nft
// gives the same chain (the NF_IP_PRI_* of the legacy table).
type builtinChain struct {
	hook HookNum
	prio int32
	typ  ChainType
}

var (
	saveHookPre  = HookNum(0)
	saveHookIn   = HookNum(1)
	saveHookFwd  = HookNum(2)
	saveHookOut  = HookNum(3)
	saveHookPost = HookNum(4)
)

var legacyBuiltins = map[string]map[string]builtinChain{
	"filter": {
		"INPUT":   {saveHookIn, 0, ChainTypeFilter},
		"FORWARD": {saveHookFwd, 0, ChainTypeFilter},
		"OUTPUT":  {saveHookOut, 0, ChainTypeFilter},
	},
	"nat": {
		"PREROUTING":  {saveHookPre, -100, ChainTypeNAT},
		"INPUT":       {saveHookIn, 100, ChainTypeNAT},
		"OUTPUT":      {saveHookOut, -100, ChainTypeNAT},
		"POSTROUTING": {saveHookPost, 100, ChainTypeNAT},
	},
	"mangle": {
		"PREROUTING":  {saveHookPre, -150, ChainTypeFilter},
		"INPUT":       {saveHookIn, -150, ChainTypeFilter},
		"FORWARD":     {saveHookFwd, -150, ChainTypeFilter},
		"OUTPUT":      {saveHookOut, -150, ChainTypeRoute},
		"POSTROUTING": {saveHookPost, -150, ChainTypeFilter},
	},
	"raw": {
		"PREROUTING": {saveHookPre, -300, ChainTypeFilter},
		"OUTPUT":     {saveHookOut, -300, ChainTypeFilter},
	},
	"security": {
		"INPUT":   {saveHookIn, 50, ChainTypeFilter},
		"FORWARD": {saveHookFwd, 50, ChainTypeFilter},
		"OUTPUT":  {saveHookOut, 50, ChainTypeFilter},
	},
}

type saveParser struct {
	fam    Family
	line   int
	tables []*Table
	cur    *Table // the table between "*name" and COMMIT
	chains map[string]*Chain
}

func (p *saveParser) parseLine(line string) error {
	s := strings.TrimSpace(line)
	switch {
	case s == "" || s[0] == '#':
		return nil
	case s[0] == '*':
		if p.cur != nil {
			return fmt.Errorf("%q: table %s has no COMMIT", s, p.cur.Name)
		}
		name := s[1:]
		if _, ok := legacyBuiltins[name]; !ok {
			return fmt.Errorf("%q: not a table (filter, nat, mangle, raw, security)", s)
		}
		for _, t := range p.tables {
			if t.Name == name {
				return fmt.Errorf("%q: table %s given twice", s, name)
			}
		}
		p.cur = &Table{Family: p.fam, Name: name, Source: Legacy}
		p.chains = map[string]*Chain{}
		return nil
	case s == "COMMIT":
		if p.cur == nil {
			return fmt.Errorf("COMMIT outside a table")
		}
		p.tables = append(p.tables, p.cur)
		p.cur, p.chains = nil, nil
		return nil
	}
	if p.cur == nil {
		return fmt.Errorf("%q outside a table (no *table line before it)", saveFirstWord(s))
	}
	if s[0] == ':' {
		return p.parseChain(s)
	}
	toks, err := splitSaveArgs(s)
	if err != nil {
		return err
	}
	return p.parseRule(s, toks)
}

func saveFirstWord(s string) string {
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i]
	}
	return s
}

// parseChain reads ":NAME POLICY [packets:bytes]".
func (p *saveParser) parseChain(s string) error {
	f := strings.Fields(s[1:])
	if len(f) < 2 || len(f) > 3 {
		return fmt.Errorf("%q: want :CHAIN POLICY [packets:bytes]", s)
	}
	name, policy := f[0], f[1]
	if len(name) > 28 {
		return fmt.Errorf("chain %q: longer than 28 characters", name)
	}
	if len(f) == 3 {
		if _, _, err := parseSaveCounters(f[2]); err != nil {
			return err
		}
	}
	if _, ok := p.chains[name]; ok {
		return fmt.Errorf("chain %q declared twice", name)
	}
	c := &Chain{Table: p.cur, Name: name}
	b, builtin := legacyBuiltins[p.cur.Name][name]
	switch policy {
	case "-":
		// A user chain (a built-in chain's name with "-" is one too:
		// iptables-save never writes that, and a hook cannot be guessed).
	case "ACCEPT", "DROP":
		if !builtin {
			return fmt.Errorf("chain %q: policy %s on a chain that is not built into table %s", name, policy, p.cur.Name)
		}
		pol := PolicyAccept
		if policy == "DROP" {
			pol = PolicyDrop
		}
		c.Hook = &Hook{Num: b.hook, Priority: b.prio, Type: b.typ, Policy: pol}
	default:
		return fmt.Errorf("chain %q: policy %q: want ACCEPT, DROP or -", name, policy)
	}
	p.chains[name] = c
	p.cur.Chains = append(p.cur.Chains, c)
	return nil
}

// parseSaveCounters reads "[packets:bytes]".
func parseSaveCounters(s string) (packets, bytes uint64, err error) {
	if len(s) < 5 || s[0] != '[' || s[len(s)-1] != ']' {
		return 0, 0, fmt.Errorf("counters %q: want [packets:bytes]", s)
	}
	a, b, ok := strings.Cut(s[1:len(s)-1], ":")
	if !ok {
		return 0, 0, fmt.Errorf("counters %q: want [packets:bytes]", s)
	}
	packets, err1 := strconv.ParseUint(a, 10, 64)
	bytes, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("counters %q: want [packets:bytes]", s)
	}
	return packets, bytes, nil
}

// saveToken is one argument of a rule line; quoted tokens (any part in double
// quotes or escaped) are never taken for an option.
type saveToken struct {
	s      string
	quoted bool
}

// splitSaveArgs splits a rule line as iptables-restore does: on blanks
// outside double quotes, with a backslash taking the next character as
// it is.
func splitSaveArgs(s string) ([]saveToken, error) {
	if !strings.ContainsAny(s, "\"\\") {
		// Most lines: nothing quoted, and the words are substrings.
		f := strings.Fields(s)
		toks := make([]saveToken, len(f))
		for i, w := range f {
			toks[i] = saveToken{s: w}
		}
		return toks, nil
	}
	var (
		toks    []saveToken
		cur     strings.Builder
		in      bool // a token is under way
		quoted  bool
		inQuote bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in, quoted = true, true
		case c == '"':
			inQuote = !inQuote
			in, quoted = true, true
		case (c == ' ' || c == '\t') && !inQuote:
			if in {
				toks = append(toks, saveToken{cur.String(), quoted})
				cur.Reset()
				in, quoted = false, false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated double quote in %q", s)
	}
	if in {
		toks = append(toks, saveToken{cur.String(), quoted})
	}
	return toks, nil
}

// sectionStart reports whether t opens a match, a target or a jump.
func sectionStart(t saveToken) bool {
	if t.quoted {
		return false
	}
	switch t.s {
	case "-m", "--match", "-j", "--jump", "-g", "--goto":
		return true
	}
	return basicOption(t)
}

// basicOption reports whether t is one of the options on the IP header
// and interfaces, which come before the matches in iptables-save's output
// but may follow them in a hand-written line.
func basicOption(t saveToken) bool {
	if t.quoted {
		return false
	}
	switch t.s {
	case "-s", "--source", "--src", "-d", "--destination", "--dst",
		"-i", "--in-interface", "-o", "--out-interface",
		"-p", "--protocol", "-f", "--fragment", "-c", "--set-counters":
		return true
	}
	return false
}

// ruleSpec is a rule line read apart, before it is translated.
type ruleSpec struct {
	src, dst               *addrSpec
	inIface, outIface      string
	inIfaceInv, outIfInv   bool
	hasIn, hasOut          bool
	proto                  uint8
	hasProto, protoInv     bool
	frag, fragInv, hasFrag bool
	packets, bytes         uint64
	sections               []saveSection
	verdict                *expr.Verdict
}

type addrSpec struct {
	addr, mask []byte
	inv        bool
}

// saveSection is one -m NAME or -j NAME with the arguments after it.
type saveSection struct {
	target bool
	name   string
	args   []saveToken
}

func (p *saveParser) parseRule(line string, toks []saveToken) error {
	r := &ruleSpec{}
	text := line
	if len(toks) > 0 && strings.HasPrefix(toks[0].s, "[") && !toks[0].quoted {
		var err error
		if r.packets, r.bytes, err = parseSaveCounters(toks[0].s); err != nil {
			return err
		}
		toks = toks[1:]
		text = strings.TrimSpace(strings.TrimPrefix(line, saveFirstWord(line)))
	}
	if len(toks) == 0 || toks[0].quoted || (toks[0].s != "-A" && toks[0].s != "--append") {
		got := ""
		if len(toks) > 0 {
			got = toks[0].s
		}
		return fmt.Errorf("%q: want -A CHAIN (iptables-save writes only appends)", got)
	}
	if len(toks) < 2 {
		return fmt.Errorf("-A: no chain named")
	}
	chain, ok := p.chains[toks[1].s]
	if !ok {
		return fmt.Errorf("-A %s: no chain %q declared in table %s", toks[1].s, toks[1].s, p.cur.Name)
	}
	if err := p.readRule(r, toks[2:]); err != nil {
		return err
	}
	rule := &Rule{Chain: chain, Position: len(chain.Rules) + 1, Text: text}
	exprs, comment, err := p.translate(r)
	if err != nil {
		return err
	}
	rule.Exprs, rule.Comment = exprs, comment
	chain.Rules = append(chain.Rules, rule)
	return nil
}

// readRule reads the options after "-A CHAIN" into r.
func (p *saveParser) readRule(r *ruleSpec, toks []saveToken) error {
	inv := false
	arg := func(i int) (string, error) {
		if i+1 >= len(toks) {
			return "", fmt.Errorf("%s: no value after it", toks[i].s)
		}
		return toks[i+1].s, nil
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.quoted {
			return fmt.Errorf("unexpected %q", t.s)
		}
		if t.s == "!" {
			if inv {
				return fmt.Errorf("\"! !\": double inversion")
			}
			inv = true
			continue
		}
		consumed := 1
		switch t.s {
		case "-s", "--source", "--src", "-d", "--destination", "--dst":
			v, err := arg(i)
			if err != nil {
				return err
			}
			a, err := p.parseAddr(v)
			if err != nil {
				return fmt.Errorf("%s %q: %w", t.s, v, err)
			}
			a.inv = inv
			if t.s == "-s" || t.s == "--source" || t.s == "--src" {
				if r.src != nil {
					return fmt.Errorf("%s %q: a second source", t.s, v)
				}
				r.src = a
			} else {
				if r.dst != nil {
					return fmt.Errorf("%s %q: a second destination", t.s, v)
				}
				r.dst = a
			}
			consumed = 2
		case "-i", "--in-interface", "-o", "--out-interface":
			v, err := arg(i)
			if err != nil {
				return err
			}
			if v == "" || len(v) > 15 {
				return fmt.Errorf("%s %q: not an interface name (1 to 15 characters)", t.s, v)
			}
			if t.s == "-i" || t.s == "--in-interface" {
				if r.hasIn {
					return fmt.Errorf("%s %q: a second input interface", t.s, v)
				}
				r.inIface, r.inIfaceInv, r.hasIn = v, inv, true
			} else {
				if r.hasOut {
					return fmt.Errorf("%s %q: a second output interface", t.s, v)
				}
				r.outIface, r.outIfInv, r.hasOut = v, inv, true
			}
			consumed = 2
		case "-p", "--protocol":
			v, err := arg(i)
			if err != nil {
				return err
			}
			if r.hasProto {
				return fmt.Errorf("%s %q: a second protocol", t.s, v)
			}
			n, err := parseSaveProto(v)
			if err != nil {
				return fmt.Errorf("%s %q: %w", t.s, v, err)
			}
			r.proto, r.hasProto, r.protoInv = n, true, inv
			consumed = 2
		case "-f", "--fragment":
			if p.fam != FamilyIPv4 {
				return fmt.Errorf("%s: only for IPv4", t.s)
			}
			r.hasFrag, r.frag, r.fragInv = true, true, inv
		case "-c", "--set-counters":
			if i+2 >= len(toks) {
				return fmt.Errorf("%s: want PACKETS BYTES", t.s)
			}
			var err1, err2 error
			r.packets, err1 = strconv.ParseUint(toks[i+1].s, 10, 64)
			r.bytes, err2 = strconv.ParseUint(toks[i+2].s, 10, 64)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("%s %q %q: want two numbers", t.s, toks[i+1].s, toks[i+2].s)
			}
			consumed = 3
		case "-m", "--match", "-j", "--jump":
			if inv {
				return fmt.Errorf("\"! %s\": a match or target cannot be inverted", t.s)
			}
			v, err := arg(i)
			if err != nil {
				return err
			}
			target := t.s == "-j" || t.s == "--jump"
			if target && (r.verdict != nil || saveHasTarget(r.sections)) {
				return fmt.Errorf("%s %q: a second target", t.s, v)
			}
			sec := saveSection{target: target, name: v}
			j := sectionEnd(toks, i+2)
			sec.args = toks[i+2 : j]
			consumed = j - i
			if target {
				if v, ok := p.verdictFor(v); ok {
					if len(sec.args) > 0 {
						return fmt.Errorf("-j %s %q: the target takes no options", sec.name, sec.args[0].s)
					}
					r.verdict = v
					break
				}
			}
			r.sections = append(r.sections, sec)
		case "-g", "--goto":
			if inv {
				return fmt.Errorf("\"! %s\": a goto cannot be inverted", t.s)
			}
			v, err := arg(i)
			if err != nil {
				return err
			}
			if r.verdict != nil || saveHasTarget(r.sections) {
				return fmt.Errorf("%s %q: a second target", t.s, v)
			}
			if _, ok := p.chains[v]; !ok {
				return fmt.Errorf("%s %q: no chain %q declared in table %s", t.s, v, v, p.cur.Name)
			}
			r.verdict = &expr.Verdict{Kind: expr.VerdictGoto, Chain: v}
			consumed = 2
		default:
			// iptables loads the match of the protocol by itself for its
			// options: "-p tcp --dport 22" is "-p tcp -m tcp --dport 22".
			name := implicitMatch[r.proto]
			if !strings.HasPrefix(t.s, "--") || !r.hasProto || r.protoInv || name == "" {
				return fmt.Errorf("unexpected %q", t.s)
			}
			start := i
			if inv {
				start = i - 1 // the "!" is the option's
			}
			j := sectionEnd(toks, i)
			r.sections = append(r.sections, saveSection{name: name, args: toks[start:j]})
			consumed = j - i
		}
		if inv && (t.s == "-c" || t.s == "--set-counters") {
			return fmt.Errorf("\"! %s\": counters cannot be inverted", t.s)
		}
		inv = false
		i += consumed - 1
	}
	if inv {
		return fmt.Errorf("\"!\" at the end of the rule")
	}
	return nil
}

// implicitMatch is the match iptables loads for a protocol's options.
var implicitMatch = map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 58: "icmp6", 132: "sctp", 136: "udplite"}

// sectionEnd is where the arguments of a section starting at i end: at
// the next match, target or IP option, or at the "!" before one.
func sectionEnd(toks []saveToken, i int) int {
	for ; i < len(toks); i++ {
		if sectionStart(toks[i]) {
			break
		}
		if toks[i].s == "!" && !toks[i].quoted && i+1 < len(toks) && sectionStart(toks[i+1]) {
			break
		}
	}
	return i
}

func saveHasTarget(secs []saveSection) bool {
	for _, s := range secs {
		if s.target {
			return true
		}
	}
	return false
}

// verdictFor says whether -j name is a verdict or a jump to a chain.
func (p *saveParser) verdictFor(name string) (*expr.Verdict, bool) {
	switch name {
	case "ACCEPT":
		return &expr.Verdict{Kind: expr.VerdictAccept}, true
	case "DROP":
		return &expr.Verdict{Kind: expr.VerdictDrop}, true
	case "RETURN":
		return &expr.Verdict{Kind: expr.VerdictReturn}, true
	}
	if _, ok := p.chains[name]; ok {
		return &expr.Verdict{Kind: expr.VerdictJump, Chain: name}, true
	}
	return nil, false
}

// parseAddr reads ADDR, ADDR/LEN or ADDR/MASK of the parser's family.
func (p *saveParser) parseAddr(s string) (*addrSpec, error) {
	size := 4
	if p.fam == FamilyIPv6 {
		size = 16
	}
	a, m, hasMask := strings.Cut(s, "/")
	addr, err := parseSaveAddr(a, size)
	if err != nil {
		return nil, err
	}
	mask := make([]byte, size)
	switch {
	case !hasMask:
		for i := range mask {
			mask[i] = 0xff
		}
	case saveDecimal(m):
		n, err := strconv.Atoi(m)
		if err != nil || n > size*8 {
			return nil, fmt.Errorf("prefix length %q: want 0 to %d", m, size*8)
		}
		copy(mask, net.CIDRMask(n, size*8))
	default:
		mask, err = parseSaveAddr(m, size)
		if err != nil {
			return nil, fmt.Errorf("mask %q: %w", m, err)
		}
	}
	for i := range addr {
		addr[i] &= mask[i]
	}
	return &addrSpec{addr: addr, mask: mask}, nil
}

func saveDecimal(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseSaveAddr parses an address of size bytes (4 or 16).
func parseSaveAddr(s string, size int) ([]byte, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return nil, fmt.Errorf("not an IP address")
	}
	if size == 4 {
		if !a.Is4() {
			return nil, fmt.Errorf("not an IPv4 address")
		}
		b := a.As4()
		return b[:], nil
	}
	if !a.Is6() {
		return nil, fmt.Errorf("not an IPv6 address")
	}
	b := a.As16()
	return b[:], nil
}

// saveProtoNumbers are the protocol names iptables-save writes (its own list,
// then /etc/protocols' names on Debian).
var saveProtoNumbers = map[string]uint8{
	"all": 0, "icmp": 1, "igmp": 2, "ipencap": 4, "tcp": 6, "egp": 8, "igp": 9,
	"pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27, "iso-tp4": 29,
	"dccp": 33, "xtp": 36, "ddp": 37, "idpr-cmtp": 38, "ipv6": 41, "ipv6-route": 43,
	"ipv6-frag": 44, "idrp": 45, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51,
	"skip": 57, "icmpv6": 58, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
	"rspf": 73, "vmtp": 81, "eigrp": 88, "ospf": 89, "ax.25": 93, "ipip": 94,
	"etherip": 97, "encap": 98, "pim": 103, "ipcomp": 108, "vrrp": 112,
	"l2tp": 115, "isis": 124, "sctp": 132, "fc": 133, "mobility-header": 135,
	"ipv6-mh": 135, "mh": 135, "udplite": 136, "mpls-in-ip": 137, "manet": 138,
	"hip": 139, "shim6": 140, "wesp": 141, "rohc": 142, "ethernet": 143,
}

func parseSaveProto(s string) (uint8, error) {
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		return uint8(n), nil
	}
	if n, ok := saveProtoNumbers[strings.ToLower(s)]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("not a protocol name or number (0-255)")
}

// nftables register 1, the one iptables-nft loads into.
const saveReg = 1

// translate turns r into expressions in iptables-nft's order: interfaces,
// protocol, addresses, fragment, the matches, a counter, the verdict or
// target.
func (p *saveParser) translate(r *ruleSpec) ([]any, string, error) {
	var out []any
	if r.hasIn {
		out = append(out, saveIfaceExprs(expr.MetaKeyIIFNAME, r.inIface, r.inIfaceInv)...)
	}
	if r.hasOut {
		out = append(out, saveIfaceExprs(expr.MetaKeyOIFNAME, r.outIface, r.outIfInv)...)
	}
	if r.hasProto && r.proto != 0 {
		// "-p all" (0) is no test at all, inverted or not: the kernel's
		// ip_packet_match looks at the protocol only when it is not 0.
		out = append(out,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: saveReg},
			&expr.Cmp{Op: saveCmpOp(r.protoInv), Register: saveReg, Data: []byte{r.proto}})
	}
	srcOff, dstOff := uint32(12), uint32(16)
	if p.fam == FamilyIPv6 {
		srcOff, dstOff = 8, 24
	}
	if r.src != nil {
		out = append(out, saveAddrExprs(srcOff, r.src)...)
	}
	if r.dst != nil {
		out = append(out, saveAddrExprs(dstOff, r.dst)...)
	}
	if r.hasFrag {
		// Second and later fragments: frag-off & 0x1fff != 0.
		out = append(out,
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: saveReg, Base: expr.PayloadBaseNetworkHeader, Offset: 6, Len: 2},
			&expr.Bitwise{SourceRegister: saveReg, DestRegister: saveReg, Len: 2, Mask: []byte{0x1f, 0xff}, Xor: []byte{0, 0}},
			&expr.Cmp{Op: saveCmpOp(!r.fragInv), Register: saveReg, Data: []byte{0, 0}})
	}
	comment := ""
	var target []any
	for _, sec := range r.sections {
		var (
			ex  []any
			err error
		)
		if sec.target {
			ex, err = p.targetExprs(r, sec)
			if err != nil {
				return nil, "", err
			}
			target = ex
			continue
		}
		var c string
		ex, c, err = p.matchExprs(r, sec)
		if err != nil {
			return nil, "", err
		}
		if c != "" {
			if comment != "" {
				comment += "; "
			}
			comment += c
		}
		out = append(out, ex...)
	}
	out = append(out, &expr.Counter{Packets: r.packets, Bytes: r.bytes})
	if r.verdict != nil {
		out = append(out, r.verdict)
	}
	out = append(out, target...)
	return out, comment, nil
}

func saveCmpOp(inv bool) expr.CmpOp {
	if inv {
		return expr.CmpOpNeq
	}
	return expr.CmpOpEq
}

// saveIfaceExprs is iptables-nft's add_iniface/add_outiface: an exact name
// compares its bytes and the NUL after them, "eth+" compares the prefix
// "eth" alone, and "+" alone compares nothing (or, inverted, a name no
// device can have, so it never matches).
func saveIfaceExprs(key expr.MetaKey, name string, inv bool) []any {
	out := []any{&expr.Meta{Key: key, Register: saveReg}}
	if strings.HasSuffix(name, "+") {
		prefix := strings.TrimSuffix(name, "+")
		if prefix != "" {
			return append(out, &expr.Cmp{Op: saveCmpOp(inv), Register: saveReg, Data: []byte(prefix)})
		}
		if inv {
			return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: saveReg, Data: []byte("INVAL/D\x00")})
		}
		return out
	}
	return append(out, &expr.Cmp{Op: saveCmpOp(inv), Register: saveReg, Data: append([]byte(name), 0)})
}

// saveAddrExprs is iptables-nft's add_addr: a mask of whole bytes loads and
// compares only those bytes; any other mask loads the whole address and
// masks it with a bitwise.
func saveAddrExprs(off uint32, a *addrSpec) []any {
	zero := true
	for _, b := range a.addr {
		if b != 0 {
			zero = false
		}
	}
	maskZero := true
	for _, b := range a.mask {
		if b != 0 {
			maskZero = false
		}
	}
	if zero && maskZero {
		if !a.inv {
			return nil // 0.0.0.0/0: every address
		}
		// "! -s 0.0.0.0/0" matches no packet; iptables-nft cannot load
		// zero bytes, so say it with a mask of zeros compared unequal.
		n := uint32(len(a.mask))
		return []any{
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: saveReg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
			&expr.Bitwise{SourceRegister: saveReg, DestRegister: saveReg, Len: n, Mask: make([]byte, n), Xor: make([]byte, n)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: saveReg, Data: make([]byte, n)},
		}
	}
	n := len(a.mask)
	i := 0
	for i < n && a.mask[i] == 0xff {
		i++
	}
	bitwise := false
	for j := i; j < n; j++ {
		if a.mask[j] != 0 {
			bitwise = true
		}
	}
	if !bitwise {
		n = i
	}
	out := []any{&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: saveReg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(n)}}
	if bitwise {
		out = append(out, &expr.Bitwise{SourceRegister: saveReg, DestRegister: saveReg, Len: uint32(n),
			Mask: append([]byte(nil), a.mask...), Xor: make([]byte, n)})
	}
	return append(out, &expr.Cmp{Op: saveCmpOp(a.inv), Register: saveReg, Data: append([]byte(nil), a.addr[:n]...)})
}

// saveOpt is one option of a match or target section.
type saveOpt struct {
	name string
	inv  bool
	args []string
}

// readSaveOpts splits a section's arguments into options, with arity giving
// how many values each option takes (-1: not an option of this section).
// ok is false when an option is not known or lacks its values: the
// caller then keeps the whole section opaque.
func readSaveOpts(args []saveToken, arity func(string) int) (opts []saveOpt, ok bool) {
	inv := false
	for i := 0; i < len(args); i++ {
		t := args[i]
		if t.s == "!" && !t.quoted {
			if inv {
				return nil, false
			}
			inv = true
			continue
		}
		if t.quoted || !strings.HasPrefix(t.s, "--") {
			return nil, false
		}
		n := arity(t.s)
		if n < 0 {
			return nil, false
		}
		o := saveOpt{name: t.s, inv: inv}
		inv = false
		// The old place of "!", after the option: "--dport ! 22".
		if n > 0 && i+1 < len(args) && args[i+1].s == "!" && !args[i+1].quoted {
			if o.inv {
				return nil, false
			}
			o.inv = true
			i++
		}
		if i+n >= len(args) {
			return nil, false
		}
		for k := 1; k <= n; k++ {
			o.args = append(o.args, args[i+k].s)
		}
		i += n
		opts = append(opts, o)
	}
	if inv {
		return nil, false
	}
	return opts, true
}

// saveOpaque is a section kept as its text: the rule's verdict depends on it.
func saveOpaque(sec saveSection) *Opaque {
	var b strings.Builder
	if sec.target {
		b.WriteString("-j ")
	} else {
		b.WriteString("-m ")
	}
	b.WriteString(sec.name)
	for _, a := range sec.args {
		b.WriteByte(' ')
		if a.quoted || a.s == "" || strings.ContainsAny(a.s, " \t\"") {
			b.WriteString(strconv.Quote(a.s))
		} else {
			b.WriteString(a.s)
		}
	}
	return &Opaque{Name: b.String()}
}

func saveArity(m map[string]int) func(string) int {
	return func(s string) int {
		if n, ok := m[s]; ok {
			return n
		}
		return -1
	}
}

var (
	tcpArity = saveArity(map[string]int{"--sport": 1, "--source-port": 1, "--dport": 1,
		"--destination-port": 1, "--tcp-flags": 2, "--syn": 0, "--tcp-option": 1})
	udpArity = saveArity(map[string]int{"--sport": 1, "--source-port": 1, "--dport": 1,
		"--destination-port": 1})
	multiportArity = saveArity(map[string]int{"--sports": 1, "--source-ports": 1, "--dports": 1,
		"--destination-ports": 1, "--ports": 1})
	conntrackArity = saveArity(map[string]int{"--ctstate": 1, "--ctproto": 1, "--ctorigsrc": 1,
		"--ctorigdst": 1, "--ctreplsrc": 1, "--ctrepldst": 1, "--ctorigsrcport": 1,
		"--ctorigdstport": 1, "--ctreplsrcport": 1, "--ctrepldstport": 1, "--ctstatus": 1,
		"--ctexpire": 1, "--ctdir": 1})
	stateArity    = saveArity(map[string]int{"--state": 1})
	addrtypeArity = saveArity(map[string]int{"--src-type": 1, "--dst-type": 1,
		"--limit-iface-in": 0, "--limit-iface-out": 0})
	commentArity = saveArity(map[string]int{"--comment": 1})
	markArity    = saveArity(map[string]int{"--mark": 1})
	limitArity   = saveArity(map[string]int{"--limit": 1, "--limit-burst": 1})
)

// matchExprs translates one -m section; comment is the text of a comment
// match. A section it cannot model becomes one *Opaque.
func (p *saveParser) matchExprs(r *ruleSpec, sec saveSection) (ex []any, comment string, err error) {
	var arity func(string) int
	switch sec.name {
	case "tcp":
		arity = tcpArity
	case "udp":
		arity = udpArity
	case "multiport":
		arity = multiportArity
	case "conntrack":
		arity = conntrackArity
	case "state":
		arity = stateArity
	case "addrtype":
		arity = addrtypeArity
	case "comment":
		arity = commentArity
	case "mark":
		arity = markArity
	case "limit":
		arity = limitArity
	default:
		return []any{saveOpaque(sec)}, "", nil
	}
	opts, ok := readSaveOpts(sec.args, arity)
	if !ok {
		return []any{saveOpaque(sec)}, "", nil
	}
	switch sec.name {
	case "tcp", "udp":
		ex, ok = tcpudpExprs(sec.name == "tcp", opts)
	case "multiport":
		ex, ok = multiportExprs(opts)
	case "conntrack":
		ex, ok = conntrackExprs(p.fam, opts)
	case "state":
		ex, ok = stateExprs(p.fam, opts)
	case "addrtype":
		ex, ok = addrtypeExprs(opts)
	case "comment":
		if len(opts) != 1 || opts[0].inv || len(opts[0].args[0]) >= xt.CommentSize {
			return []any{saveOpaque(sec)}, "", nil
		}
		c := xt.Comment(opts[0].args[0])
		return []any{&Xt{Name: "comment", Info: &c}}, opts[0].args[0], nil
	case "mark":
		ex, ok = markExprs(opts)
	case "limit":
		ex, ok = limitExprs(opts)
	}
	if !ok {
		return []any{saveOpaque(sec)}, "", nil
	}
	return ex, "", nil
}

// parseSavePorts reads PORT, LO:HI, :HI or LO: (numbers only: that is what
// iptables-save writes).
func parseSavePorts(s string) (lo, hi uint16, ok bool) {
	a, b, isRange := strings.Cut(s, ":")
	if !isRange {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil {
			return 0, 0, false
		}
		return uint16(n), uint16(n), true
	}
	l, h := uint64(0), uint64(65535)
	var err error
	if a != "" {
		if l, err = strconv.ParseUint(a, 10, 16); err != nil {
			return 0, 0, false
		}
	}
	if b != "" {
		if h, err = strconv.ParseUint(b, 10, 16); err != nil {
			return 0, 0, false
		}
	}
	if l > h {
		return 0, 0, false
	}
	return uint16(l), uint16(h), true
}

// tcpFlagBits are libxt_tcp's flag names.
var tcpFlagBits = map[string]uint8{"FIN": 0x01, "SYN": 0x02, "RST": 0x04, "PSH": 0x08,
	"ACK": 0x10, "URG": 0x20, "ALL": 0x3f, "NONE": 0}

// tcpudpExprs translates -m tcp / -m udp as iptables-nft does: ports and
// flags as payload compares when it can, else the xt match itself.
func tcpudpExprs(isTCP bool, opts []saveOpt) ([]any, bool) {
	t := xt.Tcp{SrcPorts: [2]uint16{0, 0xffff}, DstPorts: [2]uint16{0, 0xffff}}
	var seenS, seenD, seenF, seenO bool
	for _, o := range opts {
		switch o.name {
		case "--sport", "--source-port", "--dport", "--destination-port":
			lo, hi, ok := parseSavePorts(o.args[0])
			if !ok {
				return nil, false
			}
			if o.name == "--sport" || o.name == "--source-port" {
				if seenS {
					return nil, false
				}
				seenS, t.SrcPorts = true, [2]uint16{lo, hi}
				if o.inv {
					t.InvFlags |= xt.TcpInvSrcPorts
				}
			} else {
				if seenD {
					return nil, false
				}
				seenD, t.DstPorts = true, [2]uint16{lo, hi}
				if o.inv {
					t.InvFlags |= xt.TcpInvDestPorts
				}
			}
		case "--tcp-flags", "--syn":
			if seenF {
				return nil, false
			}
			seenF = true
			if o.name == "--syn" {
				t.FlagsMask, t.FlagsCmp = 0x17, 0x02 // FIN,SYN,RST,ACK SYN
			} else {
				var ok1, ok2 bool
				t.FlagsMask, ok1 = parseSaveBits(o.args[0], tcpFlagBits)
				t.FlagsCmp, ok2 = parseSaveBits(o.args[1], tcpFlagBits)
				if !ok1 || !ok2 {
					return nil, false
				}
			}
			if o.inv {
				t.InvFlags |= xt.TcpInvFlags
			}
		case "--tcp-option":
			n, err := strconv.ParseUint(o.args[0], 10, 8)
			if err != nil || seenO || n == 0 {
				return nil, false
			}
			seenO, t.Option = true, uint8(n)
			if o.inv {
				t.InvFlags |= xt.TcpInvOption
			}
		}
	}
	allPorts := t.SrcPorts == [2]uint16{0, 0xffff} && t.DstPorts == [2]uint16{0, 0xffff}
	if t.Option != 0 || (allPorts && t.FlagsMask == 0 && t.InvFlags == 0) {
		// Nothing iptables-nft can say natively, or nothing at all: it
		// keeps the xt match (so that iptables-save shows "-m tcp").
		if isTCP {
			return []any{&Xt{Name: "tcp", Info: &t}}, true
		}
		u := xt.Udp{SrcPorts: t.SrcPorts, DstPorts: t.DstPorts, InvFlags: xt.UdpInvFlagset(t.InvFlags)}
		return []any{&Xt{Name: "udp", Info: &u}}, true
	}
	var out []any
	invS, invD := t.InvFlags&xt.TcpInvSrcPorts != 0, t.InvFlags&xt.TcpInvDestPorts != 0
	if t.SrcPorts[0] != 0 && t.SrcPorts[0] == t.SrcPorts[1] &&
		t.DstPorts[0] != 0 && t.DstPorts[0] == t.DstPorts[1] && !invS && !invD {
		// One load of both ports. iptables-nft does this for an inverted
		// pair too, as one compare unequal, which matches when either port
		// differs; the legacy match wants both to differ, so inverted
		// pairs stay two compares here.
		data := make([]byte, 4)
		binary.BigEndian.PutUint16(data, t.SrcPorts[0])
		binary.BigEndian.PutUint16(data[2:], t.DstPorts[0])
		out = append(out,
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: saveReg, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: saveReg, Data: data})
	} else {
		if t.SrcPorts != [2]uint16{0, 0xffff} || invS {
			out = append(out, savePortExprs(0, t.SrcPorts, invS)...)
		}
		if t.DstPorts != [2]uint16{0, 0xffff} || invD {
			out = append(out, savePortExprs(2, t.DstPorts, invD)...)
		}
	}
	if t.FlagsMask != 0 || t.InvFlags&xt.TcpInvFlags != 0 {
		out = append(out,
			&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: saveReg, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: saveReg, DestRegister: saveReg, Len: 1, Mask: []byte{t.FlagsMask}, Xor: []byte{0}},
			&expr.Cmp{Op: saveCmpOp(t.InvFlags&xt.TcpInvFlags != 0), Register: saveReg, Data: []byte{t.FlagsCmp}})
	}
	return out, true
}

// savePortExprs compares the 16-bit port at off of the transport header with
// a range, as iptables-nft does: cmp for one port, cmp <= for 0:HI, range
// for the rest.
func savePortExprs(off uint32, r [2]uint16, inv bool) []any {
	be := func(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
	out := []any{&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: saveReg, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2}}
	switch {
	case r[0] == r[1]:
		return append(out, &expr.Cmp{Op: saveCmpOp(inv), Register: saveReg, Data: be(r[0])})
	case r[0] == 0:
		op := expr.CmpOpLte
		if inv {
			op = expr.CmpOpGt
		}
		return append(out, &expr.Cmp{Op: op, Register: saveReg, Data: be(r[1])})
	default:
		return append(out, &expr.Range{Op: saveCmpOp(inv), Register: saveReg, FromData: be(r[0]), ToData: be(r[1])})
	}
}

// multiportExprs builds the xt multiport match (revision 1, as
// iptables-nft loads it).
func multiportExprs(opts []saveOpt) ([]any, bool) {
	if len(opts) != 1 {
		return nil, false
	}
	o := opts[0]
	m := &Multiport{Invert: o.inv}
	switch o.name {
	case "--sports", "--source-ports":
		m.Src = true
	case "--dports", "--destination-ports":
		m.Dst = true
	default:
		m.Src, m.Dst = true, true
	}
	slots := 0
	for _, s := range strings.Split(o.args[0], ",") {
		lo, hi, ok := parseSavePorts(s)
		if !ok {
			return nil, false
		}
		if strings.Contains(s, ":") {
			slots += 2
		} else {
			slots++
		}
		m.Ranges = append(m.Ranges, [2]uint16{lo, hi})
	}
	if slots > 15 {
		return nil, false
	}
	return []any{&Xt{Name: "multiport", Rev: 1, Info: m}}, true
}

// Conntrack match flags (xt_conntrack.h).
const (
	ctState       = 1 << 0
	ctProto       = 1 << 1
	ctOrigSrc     = 1 << 2
	ctOrigDst     = 1 << 3
	ctReplSrc     = 1 << 4
	ctReplDst     = 1 << 5
	ctStatus      = 1 << 6
	ctExpires     = 1 << 7
	ctOrigSrcPort = 1 << 8
	ctOrigDstPort = 1 << 9
	ctReplSrcPort = 1 << 10
	ctReplDstPort = 1 << 11
	ctDirection   = 1 << 12
	ctStateAlias  = 1 << 13
)

// ctStateBits are XT_CONNTRACK_STATE_BIT and friends.
var ctStateBits = map[string]uint16{"INVALID": 1 << 0, "ESTABLISHED": 1 << 1,
	"RELATED": 1 << 2, "NEW": 1 << 3, "SNAT": 1 << 6, "DNAT": 1 << 7, "UNTRACKED": 1 << 8}

// ctStatusBits are IPS_* of the conntrack status.
var ctStatusBits = map[string]uint16{"NONE": 0, "EXPECTED": 1, "SEEN_REPLY": 2,
	"ASSURED": 4, "CONFIRMED": 8}

// parseSaveBits ORs the bits of a comma-separated list of names, as
// iptables-save writes flags and states; false for a name not in names.
func parseSaveBits[T uint8 | uint16](s string, names map[string]T) (T, bool) {
	var v T
	for _, f := range strings.Split(s, ",") {
		b, ok := names[strings.ToUpper(f)]
		if !ok {
			return 0, false
		}
		v |= b
	}
	return v, true
}

// conntrackExprs builds the xt conntrack match, revision 3 (what
// iptables-nft loads), ports in host order.
func conntrackExprs(fam Family, opts []saveOpt) ([]any, bool) {
	size := 4
	if fam == FamilyIPv6 {
		size = 16
	}
	c := &xt.ConntrackMtinfo3{}
	b := &c.ConntrackMtinfoBase
	zero := func() []byte { return make([]byte, size) }
	b.OrigSrcAddr, b.OrigSrcMask, b.OrigDstAddr, b.OrigDstMask = zero(), zero(), zero(), zero()
	b.ReplSrcAddr, b.ReplSrcMask, b.ReplDstAddr, b.ReplDstMask = zero(), zero(), zero(), zero()
	for _, o := range opts {
		var flag uint16
		v := o.args[0]
		switch o.name {
		case "--ctstate":
			flag = ctState
			m, ok := parseSaveBits(v, ctStateBits)
			if !ok {
				return nil, false
			}
			c.StateMask = m
		case "--ctstatus":
			flag = ctStatus
			m, ok := parseSaveBits(v, ctStatusBits)
			if !ok {
				return nil, false
			}
			c.StatusMask = m
		case "--ctproto":
			flag = ctProto
			n, err := parseSaveProto(v)
			if err != nil || n == 0 {
				return nil, false
			}
			b.L4Proto = uint16(n)
		case "--ctorigsrc", "--ctorigdst", "--ctreplsrc", "--ctrepldst":
			sp := &saveParser{fam: fam}
			a, err := sp.parseAddr(v)
			if err != nil {
				return nil, false
			}
			// libxt_conntrack keeps the address as written (the kernel
			// masks both sides when it compares).
			a.addr, _ = parseSaveAddr(strings.SplitN(v, "/", 2)[0], len(a.mask))
			switch o.name {
			case "--ctorigsrc":
				flag, b.OrigSrcAddr, b.OrigSrcMask = ctOrigSrc, a.addr, a.mask
			case "--ctorigdst":
				flag, b.OrigDstAddr, b.OrigDstMask = ctOrigDst, a.addr, a.mask
			case "--ctreplsrc":
				flag, b.ReplSrcAddr, b.ReplSrcMask = ctReplSrc, a.addr, a.mask
			default:
				flag, b.ReplDstAddr, b.ReplDstMask = ctReplDst, a.addr, a.mask
			}
		case "--ctorigsrcport", "--ctorigdstport", "--ctreplsrcport", "--ctrepldstport":
			lo, hi, ok := parseSavePorts(v)
			if !ok {
				return nil, false
			}
			switch o.name {
			case "--ctorigsrcport":
				flag, b.OrigSrcPort, c.OrigSrcPortHigh = ctOrigSrcPort, lo, hi
			case "--ctorigdstport":
				flag, b.OrigDstPort, c.OrigDstPortHigh = ctOrigDstPort, lo, hi
			case "--ctreplsrcport":
				flag, b.ReplSrcPort, c.ReplSrcPortHigh = ctReplSrcPort, lo, hi
			default:
				flag, b.ReplDstPort, c.ReplDstPortHigh = ctReplDstPort, lo, hi
			}
		case "--ctexpire":
			a, bb, isRange := strings.Cut(v, ":")
			lo, err1 := strconv.ParseUint(a, 10, 32)
			hi := lo
			var err2 error
			if isRange {
				hi, err2 = strconv.ParseUint(bb, 10, 32)
			}
			if err1 != nil || err2 != nil || lo > hi {
				return nil, false
			}
			flag, b.ExpiresMin, b.ExpiresMax = ctExpires, uint32(lo), uint32(hi)
		case "--ctdir":
			if o.inv {
				return nil, false
			}
			flag = ctDirection
			switch strings.ToUpper(v) {
			case "ORIGINAL":
				b.InvertFlags &^= ctDirection
			case "REPLY":
				b.InvertFlags |= ctDirection
			default:
				return nil, false
			}
		}
		if b.MatchFlags&flag != 0 {
			return nil, false // given twice
		}
		b.MatchFlags |= flag
		if o.inv {
			b.InvertFlags |= flag
		}
	}
	return []any{&Xt{Name: "conntrack", Rev: 3, Info: c}}, true
}

// stateExprs builds what iptables-nft loads for -m state: the conntrack
// match, revision 3, with the state alias flag.
func stateExprs(fam Family, opts []saveOpt) ([]any, bool) {
	if len(opts) != 1 {
		return nil, false
	}
	m, ok := parseSaveBits(opts[0].args[0], ctStateBits)
	if !ok || m&(ctStateBits["SNAT"]|ctStateBits["DNAT"]) != 0 {
		return nil, false
	}
	ex, ok := conntrackExprs(fam, nil)
	if !ok {
		return nil, false
	}
	c := ex[0].(*Xt).Info.(*xt.ConntrackMtinfo3)
	c.StateMask = m
	c.MatchFlags = ctState | ctStateAlias
	if opts[0].inv {
		c.InvertFlags = ctState
	}
	return ex, true
}

// addrTypeBits are XT_ADDRTYPE_* (xt_addrtype.h), by libxt_addrtype's
// names.
var addrTypeBits = map[string]uint16{"UNSPEC": 1 << 0, "UNICAST": 1 << 1, "LOCAL": 1 << 2,
	"BROADCAST": 1 << 3, "ANYCAST": 1 << 4, "MULTICAST": 1 << 5, "BLACKHOLE": 1 << 6,
	"UNREACHABLE": 1 << 7, "PROHIBIT": 1 << 8, "THROW": 1 << 9, "NAT": 1 << 10, "XRESOLVE": 1 << 11}

// Flags of xt_addrtype_info_v1.
const (
	addrTypeInvSrc   = 1 << 0
	addrTypeInvDst   = 1 << 1
	addrTypeIfaceIn  = 1 << 2
	addrTypeIfaceOut = 1 << 3
)

func addrtypeExprs(opts []saveOpt) ([]any, bool) {
	a := &xt.AddrTypeV1{}
	var flags uint32
	for _, o := range opts {
		switch o.name {
		case "--src-type", "--dst-type":
			m, ok := parseSaveBits(o.args[0], addrTypeBits)
			if !ok {
				return nil, false
			}
			if o.name == "--src-type" {
				a.Source = m
				if o.inv {
					flags |= addrTypeInvSrc
				}
			} else {
				a.Dest = m
				if o.inv {
					flags |= addrTypeInvDst
				}
			}
		case "--limit-iface-in":
			flags |= addrTypeIfaceIn
		case "--limit-iface-out":
			flags |= addrTypeIfaceOut
		}
		if o.inv && o.name != "--src-type" && o.name != "--dst-type" {
			return nil, false
		}
	}
	if flags&addrTypeIfaceIn != 0 && flags&addrTypeIfaceOut != 0 {
		return nil, false
	}
	a.Flags = xt.AddrTypeFlags(flags)
	return []any{&Xt{Name: "addrtype", Rev: 1, Info: a}}, true
}

// parseSaveMark reads VALUE[/MASK], numbers in any base strtoul takes.
func parseSaveMark(s string) (v, m uint32, ok bool) {
	a, b, hasMask := strings.Cut(s, "/")
	vv, err := strconv.ParseUint(a, 0, 32)
	if err != nil {
		return 0, 0, false
	}
	mm := uint64(0xffffffff)
	if hasMask {
		if mm, err = strconv.ParseUint(b, 0, 32); err != nil {
			return 0, 0, false
		}
	}
	return uint32(vv), uint32(mm), true
}

// markExprs is iptables-nft's native mark match: meta mark, masked
// unless the mask is all ones, compared.
func markExprs(opts []saveOpt) ([]any, bool) {
	if len(opts) != 1 {
		return nil, false
	}
	v, m, ok := parseSaveMark(opts[0].args[0])
	if !ok {
		return nil, false
	}
	u32 := func(x uint32) []byte { return binary.NativeEndian.AppendUint32(nil, x) }
	out := []any{&expr.Meta{Key: expr.MetaKeyMARK, Register: saveReg}}
	if m != 0xffffffff {
		out = append(out, &expr.Bitwise{SourceRegister: saveReg, DestRegister: saveReg, Len: 4, Mask: u32(m), Xor: u32(0)})
	}
	return append(out, &expr.Cmp{Op: saveCmpOp(opts[0].inv), Register: saveReg, Data: u32(v)}), true
}

// limitExprs is iptables-nft's native limit: a packet rate and burst
// (the xt default 3/hour, burst 5).
func limitExprs(opts []saveOpt) ([]any, bool) {
	l := &expr.Limit{Type: expr.LimitTypePkts, Rate: 3, Unit: expr.LimitTimeHour, Burst: 5}
	for _, o := range opts {
		if o.inv {
			return nil, false
		}
		switch o.name {
		case "--limit":
			n, unit, ok := strings.Cut(o.args[0], "/")
			rate, err := strconv.ParseUint(n, 10, 32)
			if err != nil || rate == 0 {
				return nil, false
			}
			if !ok {
				unit = "sec"
			}
			switch unit {
			case "s", "sec", "second":
				l.Unit = expr.LimitTimeSecond
			case "m", "min", "minute":
				l.Unit = expr.LimitTimeMinute
			case "h", "hour":
				l.Unit = expr.LimitTimeHour
			case "d", "day":
				l.Unit = expr.LimitTimeDay
			default:
				return nil, false
			}
			l.Rate = rate
		case "--limit-burst":
			b, err := strconv.ParseUint(o.args[0], 10, 32)
			if err != nil {
				return nil, false
			}
			l.Burst = uint32(b)
		}
	}
	return []any{l}, true
}

// targetExprs translates a -j section that is not a verdict or a chain.
func (p *saveParser) targetExprs(r *ruleSpec, sec saveSection) ([]any, error) {
	switch sec.name {
	case "DNAT", "SNAT", "REDIRECT", "MASQUERADE":
		t, rev, ok := p.natTarget(sec)
		if !ok {
			return []any{saveOpaque(sec)}, nil
		}
		return []any{&Xt{Target: true, Name: sec.name, Rev: rev, Info: t}}, nil
	case "MARK":
		m, ok := markTarget(sec)
		if !ok {
			return []any{saveOpaque(sec)}, nil
		}
		return []any{&Xt{Target: true, Name: "MARK", Rev: 2, Info: m}}, nil
	}
	// REJECT, LOG and every other target: known by name. Their options
	// (the reject type, the log prefix) do not change where the packet
	// goes, or, for targets the evaluator does not know, the verdict is
	// unknown anyway.
	return []any{&Xt{Target: true, Name: sec.name}}, nil
}

// markTarget reads the MARK target's options into the XtMark of
// xt_mark_tginfo2 (revision 2, which iptables-nft loads): mark = (mark &^
// Mask) ^ Value.
func markTarget(sec saveSection) (*XtMark, bool) {
	opts, ok := readSaveOpts(sec.args, saveArity(map[string]int{"--set-xmark": 1, "--set-mark": 1,
		"--and-mark": 1, "--or-mark": 1, "--xor-mark": 1}))
	if !ok || len(opts) != 1 || opts[0].inv {
		return nil, false
	}
	o := opts[0]
	v, m, ok := parseSaveMark(o.args[0])
	if !ok {
		return nil, false
	}
	switch o.name {
	case "--set-xmark":
		return &XtMark{Value: v, Mask: m}, true
	case "--set-mark":
		// libxt_MARK: the bits of the value are cleared too.
		return &XtMark{Value: v, Mask: m | v}, true
	}
	if m != 0xffffffff {
		return nil, false // the bitwise forms take no mask
	}
	switch o.name {
	case "--and-mark":
		return &XtMark{Mask: ^v}, true
	case "--or-mark":
		return &XtMark{Value: v, Mask: v}, true
	default: // --xor-mark
		return &XtMark{Value: v}, true
	}
}

// natTarget reads the NAT targets' options into a NATTarget, with the
// revision iptables-nft loads.
func (p *saveParser) natTarget(sec saveSection) (*NATTarget, uint32, bool) {
	v6 := p.fam == FamilyIPv6
	var rev uint32
	var toOpt string
	switch sec.name {
	case "DNAT":
		rev, toOpt = 2, "--to-destination"
	case "SNAT":
		rev, toOpt = 0, "--to-source"
		if v6 {
			rev = 1
		}
	default:
		rev, toOpt = 0, "--to-ports"
	}
	opts, ok := readSaveOpts(sec.args, saveArity(map[string]int{toOpt: 1, "--random": 0,
		"--persistent": 0, "--random-fully": 0}))
	if !ok {
		return nil, 0, false
	}
	t := &NATTarget{Kind: sec.name}
	seen := false
	for _, o := range opts {
		if o.inv {
			return nil, 0, false
		}
		if o.name != toOpt {
			continue
		}
		if seen {
			return nil, 0, false // several ranges: not modelled
		}
		seen = true
		if toOpt == "--to-ports" {
			lo, hi, ok := parseNATPorts(o.args[0])
			if !ok {
				return nil, 0, false
			}
			t.Port, t.PortMax = lo, hi
			continue
		}
		if !parseNATRange(o.args[0], v6, t) {
			return nil, 0, false
		}
	}
	if (sec.name == "DNAT" || sec.name == "SNAT") && !seen {
		return nil, 0, false
	}
	return t, rev, true
}

// parseNATPorts reads PORT or LO-HI.
func parseNATPorts(s string) (lo, hi uint16, ok bool) {
	a, b, isRange := strings.Cut(s, "-")
	l, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return 0, 0, false
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(b, 10, 16); err != nil || h < l {
			return 0, 0, false
		}
	}
	return uint16(l), uint16(h), true
}

// parseNATRange reads --to-destination and --to-source:
// [ADDR[-ADDR]][:PORT[-PORT]], IPv6 addresses in brackets when a port
// follows. A port offset ("/BASE") is not modelled.
func parseNATRange(s string, v6 bool, t *NATTarget) bool {
	addrs, ports := s, ""
	if v6 {
		if strings.HasPrefix(s, "[") {
			end := strings.Index(s, "]")
			if end < 0 {
				return false
			}
			addrs, ports = s[1:end], s[end+1:]
			if ports != "" {
				if ports[0] != ':' {
					return false
				}
				ports = ports[1:]
			}
		}
	} else if a, b, ok := strings.Cut(s, ":"); ok {
		addrs, ports = a, b
	}
	if strings.Contains(ports, "/") {
		return false
	}
	if addrs != "" {
		a, b, isRange := strings.Cut(addrs, "-")
		lo, err := netip.ParseAddr(a)
		if err != nil || lo.Is6() != v6 || lo.Zone() != "" {
			return false
		}
		hi := lo
		if isRange {
			if hi, err = netip.ParseAddr(b); err != nil || hi.Is6() != v6 || hi.Less(lo) {
				return false
			}
		}
		t.Addr, t.AddrMax = lo, hi
	}
	if ports != "" {
		lo, hi, ok := parseNATPorts(ports)
		if !ok {
			return false
		}
		t.Port, t.PortMax = lo, hi
	}
	return addrs != "" || ports != ""
}
