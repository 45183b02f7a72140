//go:build linux

package firewall

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// This file turns nf_tables netlink messages into the model, without any
// system call, so that it can be fuzzed: read_linux.go fetches the
// messages and hands them to a decoder in the order the kernel dumps them.
// Attribute numbers are those of linux/netfilter/nf_tables.h.

// Attributes of nf_tables.h that golang.org/x/sys/unix does not name.
const (
	nftaSetElemKeyEnd = 10   // NFTA_SET_ELEM_KEY_END
	nftaSetDescConcat = 2    // NFTA_SET_DESC_CONCAT
	nftaSetFieldLen   = 1    // NFTA_SET_FIELD_LEN
	nftaHookDevs      = 4    // NFTA_HOOK_DEVS
	nftaDeviceName    = 1    // NFTA_DEVICE_NAME
	nftSetConcat      = 0x80 // NFT_SET_CONCAT
	nftDataVerdictMag = 0xffffff00
	attrTypeMask      = 0x3fff // ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)
)

var errShort = errors.New("message too short")

// attrs walks the netlink attributes of b: each call to next yields the
// next one. It never reads past b; a malformed tail ends the walk and sets
// err.
type attrs struct {
	b    []byte
	typ  uint16
	data []byte
	err  error
}

func (a *attrs) next() bool {
	if len(a.b) == 0 {
		return false
	}
	if len(a.b) < 4 {
		a.err = fmt.Errorf("attribute header: %w", errShort)
		return false
	}
	n := int(binary.NativeEndian.Uint16(a.b))
	if n < 4 || n > len(a.b) {
		a.err = fmt.Errorf("attribute of length %d in %d bytes", n, len(a.b))
		return false
	}
	a.typ = binary.NativeEndian.Uint16(a.b[2:]) & attrTypeMask
	a.data = a.b[4:n:n]
	n = (n + 3) &^ 3
	if n > len(a.b) {
		n = len(a.b)
	}
	a.b = a.b[n:]
	return true
}

func (a *attrs) u32() uint32 {
	if len(a.data) < 4 {
		if a.err == nil {
			a.err = fmt.Errorf("attribute %d: %d bytes for a uint32", a.typ, len(a.data))
		}
		return 0
	}
	return binary.BigEndian.Uint32(a.data)
}

func (a *attrs) u64() uint64 {
	if len(a.data) < 8 {
		if a.err == nil {
			a.err = fmt.Errorf("attribute %d: %d bytes for a uint64", a.typ, len(a.data))
		}
		return 0
	}
	return binary.BigEndian.Uint64(a.data)
}

// cstr is a NUL-terminated string attribute's bytes, without the NUL.
func cstr(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// nfgen splits an nf_tables message body into its struct nfgenmsg
// (family, version, resource id: the ruleset generation) and attributes.
func nfgen(msg []byte) (fam Family, gen uint16, rest []byte, err error) {
	if len(msg) < 4 {
		return 0, 0, nil, fmt.Errorf("nfgenmsg: %w", errShort)
	}
	return Family(msg[0]), binary.BigEndian.Uint16(msg[2:]), msg[4:], nil
}

// builder assembles a Ruleset from the dumps of tables, chains, sets,
// set elements, objects and rules, fed in that order. It is not safe for
// concurrent use.
type builder struct {
	rs     Ruleset
	tables map[tableKey]*Table
	chains map[chainKey]*Chain
	sets   map[chainKey]*Set // the set's name in the chain's place
	// last is the chain the previous rule went to: the kernel dumps a
	// chain's rules together, so this spares a map lookup per rule.
	last *Chain
}

type tableKey struct {
	fam  Family
	name string
}

type chainKey struct {
	tableKey
	name string
}

func newBuilder() *builder {
	return &builder{tables: map[tableKey]*Table{}, chains: map[chainKey]*Chain{}, sets: map[chainKey]*Set{}}
}

func (b *builder) table(fam Family, name []byte) (*Table, error) {
	t := b.tables[tableKey{fam, string(name)}]
	if t == nil {
		return nil, fmt.Errorf("no table %q of family %d", name, fam)
	}
	return t, nil
}

// addTable decodes one NFT_MSG_NEWTABLE.
func (b *builder) addTable(msg []byte) error {
	fam, _, rest, err := nfgen(msg)
	if err != nil {
		return err
	}
	t := &Table{Family: fam, Source: NFTables}
	a := attrs{b: rest}
	for a.next() {
		switch a.typ {
		case unix.NFTA_TABLE_NAME:
			t.Name = string(cstr(a.data))
		case unix.NFTA_TABLE_FLAGS:
			t.Dormant = a.u32()&unix.NFT_TABLE_F_DORMANT != 0
		}
	}
	if a.err != nil {
		return fmt.Errorf("table %q: %w", t.Name, a.err)
	}
	k := tableKey{fam, t.Name}
	if b.tables[k] != nil {
		return fmt.Errorf("table %q of family %d twice", t.Name, fam)
	}
	b.tables[k] = t
	b.rs.Tables = append(b.rs.Tables, t)
	return nil
}

// addChain decodes one NFT_MSG_NEWCHAIN.
func (b *builder) addChain(msg []byte) error {
	fam, _, rest, err := nfgen(msg)
	if err != nil {
		return err
	}
	c := &Chain{}
	var table []byte
	var hook []byte
	var policy *uint32
	var typ string
	a := attrs{b: rest}
	for a.next() {
		switch a.typ {
		case unix.NFTA_CHAIN_TABLE:
			table = cstr(a.data)
		case unix.NFTA_CHAIN_NAME:
			c.Name = string(cstr(a.data))
		case unix.NFTA_CHAIN_HOOK:
			hook = a.data
		case unix.NFTA_CHAIN_POLICY:
			p := a.u32()
			policy = &p
		case unix.NFTA_CHAIN_TYPE:
			typ = string(cstr(a.data))
		}
	}
	if a.err != nil {
		return fmt.Errorf("chain %q: %w", c.Name, a.err)
	}
	t, err := b.table(fam, table)
	if err != nil {
		return fmt.Errorf("chain %q: %w", c.Name, err)
	}
	c.Table = t
	if hook != nil {
		h := &Hook{Type: ChainType(typ), Policy: PolicyAccept}
		if policy != nil {
			h.Policy = Policy(*policy)
		}
		devs := false
		a := attrs{b: hook}
		for a.next() {
			switch a.typ {
			case unix.NFTA_HOOK_HOOKNUM:
				h.Num = HookNum(a.u32())
			case unix.NFTA_HOOK_PRIORITY:
				h.Priority = int32(a.u32())
			case unix.NFTA_HOOK_DEV:
				// With one device the kernel names it here and in
				// NFTA_HOOK_DEVS (since 5.5), which lists them all.
				if !devs {
					h.Devices = append(h.Devices, string(cstr(a.data)))
				}
			case nftaHookDevs:
				h.Devices, devs = h.Devices[:0], true
				d := attrs{b: a.data}
				for d.next() {
					if d.typ == nftaDeviceName {
						h.Devices = append(h.Devices, string(cstr(d.data)))
					}
				}
				if d.err != nil {
					a.err = d.err
				}
			}
		}
		if a.err != nil {
			return fmt.Errorf("chain %q hook: %w", c.Name, a.err)
		}
		c.Hook = h
	}
	k := chainKey{tableKey{fam, t.Name}, c.Name}
	if b.chains[k] != nil {
		return fmt.Errorf("chain %q of table %q twice", c.Name, t.Name)
	}
	b.chains[k] = c
	t.Chains = append(t.Chains, c)
	return nil
}

// datatypes maps nft's type numbers (the "magic" of a set's key or data
// type) to google/nftables' datatypes.
var datatypes = func() map[uint32]nftables.SetDatatype {
	m := map[uint32]nftables.SetDatatype{}
	for _, t := range []nftables.SetDatatype{
		nftables.TypeInvalid, nftables.TypeVerdict, nftables.TypeNFProto, nftables.TypeBitmask,
		nftables.TypeInteger, nftables.TypeString, nftables.TypeLLAddr, nftables.TypeIPAddr,
		nftables.TypeIP6Addr, nftables.TypeEtherAddr, nftables.TypeEtherType, nftables.TypeARPOp,
		nftables.TypeInetProto, nftables.TypeInetService, nftables.TypeICMPType, nftables.TypeTCPFlag,
		nftables.TypeDCCPPktType, nftables.TypeMHType, nftables.TypeTime, nftables.TypeMark,
		nftables.TypeIFIndex, nftables.TypeARPHRD, nftables.TypeRealm, nftables.TypeClassID,
		nftables.TypeUID, nftables.TypeGID, nftables.TypeCTState, nftables.TypeCTDir,
		nftables.TypeCTStatus, nftables.TypeICMP6Type, nftables.TypeCTLabel, nftables.TypePktType,
		nftables.TypeICMPCode, nftables.TypeICMPV6Code, nftables.TypeICMPXCode, nftables.TypeDevGroup,
		nftables.TypeDSCP, nftables.TypeECN, nftables.TypeFIBAddr, nftables.TypeBoolean,
		nftables.TypeCTEventBit, nftables.TypeIFName, nftables.TypeIGMPType, nftables.TypeTimeDate,
		nftables.TypeTimeHour, nftables.TypeTimeDay,
	} {
		m[t.GetNFTMagic()] = t
	}
	return m
}()

// datatype names a set's key or data type as nft does: one type, or a
// concatenation of up to five in 6-bit fields. Types this table does not
// know are named by number, "type N".
func datatype(magic uint32) (name string, concat bool) {
	if magic == nftDataVerdictMag {
		return nftables.TypeVerdict.Name, false
	}
	if t, ok := datatypes[magic]; ok {
		return t.Name, false
	}
	var parts []nftables.SetDatatype
	for m := magic; m != 0; m >>= nftables.SetConcatTypeBits {
		t, ok := datatypes[m&nftables.SetConcatTypeMask]
		if !ok {
			parts = nil
			break
		}
		parts = append([]nftables.SetDatatype{t}, parts...)
	}
	if len(parts) > 1 {
		if t, err := nftables.ConcatSetType(parts...); err == nil {
			return t.Name, true
		}
	}
	return fmt.Sprintf("type %d", magic), false
}

// addSet decodes one NFT_MSG_NEWSET.
func (b *builder) addSet(msg []byte) error {
	fam, _, rest, err := nfgen(msg)
	if err != nil {
		return err
	}
	s := &Set{}
	var table []byte
	a := attrs{b: rest}
	for a.next() {
		switch a.typ {
		case unix.NFTA_SET_TABLE:
			table = cstr(a.data)
		case unix.NFTA_SET_NAME:
			s.Name = string(cstr(a.data))
		case unix.NFTA_SET_ID:
			s.ID = a.u32()
		case unix.NFTA_SET_FLAGS:
			f := a.u32()
			s.Anonymous = f&unix.NFT_SET_ANONYMOUS != 0
			s.Interval = f&unix.NFT_SET_INTERVAL != 0
			s.IsMap = f&unix.NFT_SET_MAP != 0
			s.Dynamic = f&unix.NFT_SET_EVAL != 0
			s.Concat = s.Concat || f&nftSetConcat != 0
		case unix.NFTA_SET_KEY_TYPE:
			var c bool
			s.KeyType, c = datatype(a.u32())
			s.Concat = s.Concat || c
		case unix.NFTA_SET_KEY_LEN:
			s.KeyLen = a.u32()
		case unix.NFTA_SET_DATA_TYPE:
			s.DataType, _ = datatype(a.u32())
		case unix.NFTA_SET_DESC:
			d := attrs{b: a.data}
			for d.next() {
				if d.typ != nftaSetDescConcat {
					continue
				}
				// The field lengths of a concatenation, unpadded; nft
				// sends them for every concatenated key.
				var fields []uint32
				f := attrs{b: d.data}
				for f.next() {
					l := attrs{b: f.data}
					for l.next() {
						if l.typ == nftaSetFieldLen {
							fields = append(fields, l.u32())
						}
					}
				}
				if len(fields) > 1 {
					s.Concat, s.Fields = true, fields
				}
			}
		}
	}
	if a.err != nil {
		return fmt.Errorf("set %q: %w", s.Name, a.err)
	}
	t, err := b.table(fam, table)
	if err != nil {
		return fmt.Errorf("set %q: %w", s.Name, err)
	}
	s.Table = t
	k := chainKey{tableKey{fam, t.Name}, s.Name}
	if b.sets[k] != nil {
		return fmt.Errorf("set %q of table %q twice", s.Name, t.Name)
	}
	b.sets[k] = s
	t.Sets = append(t.Sets, s)
	return nil
}

// addElems decodes one NFT_MSG_NEWSETELEM: some elements of one set.
func (b *builder) addElems(msg []byte) error {
	fam, _, rest, err := nfgen(msg)
	if err != nil {
		return err
	}
	var table, set, list []byte
	a := attrs{b: rest}
	for a.next() {
		switch a.typ {
		case unix.NFTA_SET_ELEM_LIST_TABLE:
			table = cstr(a.data)
		case unix.NFTA_SET_ELEM_LIST_SET:
			set = cstr(a.data)
		case unix.NFTA_SET_ELEM_LIST_ELEMENTS:
			list = a.data
		}
	}
	if a.err != nil {
		return fmt.Errorf("elements of set %q: %w", set, a.err)
	}
	s := b.sets[chainKey{tableKey{fam, string(table)}, string(set)}]
	if s == nil {
		return fmt.Errorf("elements of set %q: no such set in table %q of family %d", set, table, fam)
	}
	l := attrs{b: list}
	n := 0
	for l.next() {
		n++
	}
	s.Elements = growElements(s.Elements, n)
	l = attrs{b: list}
	for l.next() {
		if l.typ != unix.NFTA_LIST_ELEM {
			continue
		}
		e, err := decodeElement(l.data)
		if err != nil {
			return fmt.Errorf("element of set %q: %w", s.Name, err)
		}
		s.Elements = append(s.Elements, e)
	}
	if l.err != nil {
		return fmt.Errorf("elements of set %q: %w", s.Name, l.err)
	}
	return nil
}

// growElements makes room for n more elements, doubling so that a set
// dumped over many messages is not copied once per message.
func growElements(s []Element, n int) []Element {
	if cap(s)-len(s) >= n {
		return s
	}
	c := 2 * cap(s)
	if c < len(s)+n {
		c = len(s) + n
	}
	g := make([]Element, len(s), c)
	copy(g, s)
	return g
}

func decodeElement(b []byte) (Element, error) {
	var e Element
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_SET_ELEM_KEY:
			e.Key, _ = dataValue(a.data)
		case nftaSetElemKeyEnd:
			e.KeyEnd, _ = dataValue(a.data)
		case unix.NFTA_SET_ELEM_DATA:
			e.Val, e.Verdict = dataValue(a.data)
		case unix.NFTA_SET_ELEM_FLAGS:
			e.IntervalEnd = a.u32()&unix.NFT_SET_ELEM_INTERVAL_END != 0
		case unix.NFTA_SET_ELEM_EXPIRATION:
			e.Expires = time.Duration(a.u64()) * time.Millisecond
		}
	}
	return e, a.err
}

// dataValue decodes a struct nft_data attribute: a value, or a verdict.
func dataValue(b []byte) ([]byte, *ElementVerdict) {
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_DATA_VALUE:
			return a.data, nil
		case unix.NFTA_DATA_VERDICT:
			kind, chain := verdictOf(a.data)
			return nil, &ElementVerdict{Kind: kind, Chain: chain}
		}
	}
	return nil, nil
}

// verdictOf decodes the NFTA_DATA_VERDICT nest: a code and, for jump
// and goto, a chain.
func verdictOf(b []byte) (kind int64, chain string) {
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_VERDICT_CODE:
			kind = int64(int32(a.u32()))
		case unix.NFTA_VERDICT_CHAIN:
			chain = string(cstr(a.data))
		}
	}
	return kind, chain
}

// addObject decodes one NFT_MSG_NEWOBJ.
func (b *builder) addObject(msg []byte) error {
	fam, _, rest, err := nfgen(msg)
	if err != nil {
		return err
	}
	var table, name []byte
	var kind uint32
	a := attrs{b: rest}
	for a.next() {
		switch a.typ {
		case unix.NFTA_OBJ_TABLE:
			table = cstr(a.data)
		case unix.NFTA_OBJ_NAME:
			name = cstr(a.data)
		case unix.NFTA_OBJ_TYPE:
			kind = a.u32()
		}
	}
	if a.err != nil {
		return fmt.Errorf("object %q: %w", name, a.err)
	}
	t, err := b.table(fam, table)
	if err != nil {
		return fmt.Errorf("object %q: %w", name, err)
	}
	if t.Objects == nil {
		t.Objects = map[string]ObjectKind{}
	}
	t.Objects[string(name)] = ObjectKind(kind)
	return nil
}

// addRule decodes one NFT_MSG_NEWRULE and appends the rule to its chain.
func (b *builder) addRule(msg []byte) error {
	fam, _, rest, err := nfgen(msg)
	if err != nil {
		return err
	}
	var table, chain, exprs, udata []byte
	r := &Rule{}
	a := attrs{b: rest}
	for a.next() {
		switch a.typ {
		case unix.NFTA_RULE_TABLE:
			table = cstr(a.data)
		case unix.NFTA_RULE_CHAIN:
			chain = cstr(a.data)
		case unix.NFTA_RULE_HANDLE:
			r.Handle = a.u64()
		case unix.NFTA_RULE_EXPRESSIONS:
			exprs = a.data
		case unix.NFTA_RULE_USERDATA:
			udata = a.data
		}
	}
	if a.err != nil {
		return fmt.Errorf("rule %d: %w", r.Handle, a.err)
	}
	c := b.last
	if c == nil || c.Table.Family != Family(fam) || c.Name != string(chain) || c.Table.Name != string(table) {
		c = b.chains[chainKey{tableKey{fam, string(table)}, string(chain)}]
		if c == nil {
			return fmt.Errorf("rule %d: no chain %q in table %q of family %d", r.Handle, chain, table, fam)
		}
		b.last = c
	}
	r.Chain = c
	r.Comment = userdataComment(udata)
	r.Exprs, err = DecodeExprs(Family(c.Table.Family), exprs)
	if err != nil {
		return fmt.Errorf("rule %d of chain %q: %w", r.Handle, c.Name, err)
	}
	c.Rules = append(c.Rules, r)
	r.Position = len(c.Rules)
	return nil
}

// userdataComment finds the comment in a rule's NFTA_RULE_USERDATA: libnftnl's
// list of type (u8), length (u8) and value, the comment of type
// NFTNL_UDATA_RULE_COMMENT (0) a NUL-terminated string. (The decoder of
// google/nftables' userdata package indexes past a short list.)
func userdataComment(b []byte) string {
	for len(b) >= 2 {
		typ, n := b[0], int(b[1])
		b = b[2:]
		if n > len(b) {
			return ""
		}
		if typ == 0 {
			return string(cstr(b[:n]))
		}
		b = b[n:]
	}
	return ""
}

// DecodeExprs decodes a rule's NFTA_RULE_EXPRESSIONS: the expressions in
// order, as pointers to github.com/google/nftables/expr's types, *Xt for
// an iptables match or target, and *Opaque for an expression this package
// cannot decode. No expression is left out. The error is for a list that
// is not a list of expressions at all.
func DecodeExprs(fam Family, b []byte) ([]any, error) {
	n := 0
	a := attrs{b: b}
	for a.next() {
		n++
	}
	if a.err != nil {
		return nil, a.err
	}
	out := make([]any, 0, n)
	a = attrs{b: b}
	for a.next() {
		if a.typ != unix.NFTA_LIST_ELEM {
			return nil, fmt.Errorf("attribute %d in an expression list", a.typ)
		}
		out = append(out, decodeExpr(fam, a.data))
	}
	return out, a.err
}

// decodeExpr decodes one expression: its name and data.
func decodeExpr(fam Family, b []byte) any {
	var name, data []byte
	hasData := false
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_EXPR_NAME:
			name = cstr(a.data)
		case unix.NFTA_EXPR_DATA:
			data, hasData = a.data, true
		}
	}
	if a.err != nil || name == nil {
		return &Opaque{Name: string(name), Data: b}
	}
	switch string(name) {
	case "immediate":
		if v := immediateVerdict(data); v != nil {
			return v
		}
	case "match", "target":
		return decodeXt(fam, string(name) == "target", data)
	case "notrack":
		if !hasData {
			return &expr.Notrack{}
		}
	}
	e := exprFromName(string(name))
	if e == nil || !decodesWhole(string(name), data) || !unmarshal(fam, data, e) {
		return &Opaque{Name: string(name), Data: data}
	}
	if ct, ok := e.(*expr.Ct); ok {
		// google/nftables reads no NFTA_CT_SREG: "ct mark set" would
		// come out as a load into register 0, the verdict's.
		a := attrs{b: data}
		for a.next() {
			if a.typ == unix.NFTA_CT_SREG {
				ct.Register, ct.SourceRegister = a.u32(), true
			}
		}
	}
	if d, ok := e.(*expr.Dynset); ok && !dynsetWhole(fam, data, d) {
		return &Opaque{Name: string(name), Data: data}
	}
	return e
}

// exprAttrs are, for the expressions the evaluator reads, the attributes
// (by number, as a bit mask) that google/nftables' decoders read, or that
// change nothing (padding); NFTA_CT_SREG is read here. An attribute
// outside them (a bitwise shift, an objref or numgen map, a queue number
// from a register) would be dropped and the expression read as another:
// such an expression is opaque instead.
var exprAttrs = map[string]uint32{
	"cmp":       attrRange(1, 3),  // SREG, OP, DATA
	"meta":      attrRange(1, 3),  // DREG, KEY, SREG
	"payload":   attrRange(1, 8),  // DREG … CSUM_FLAGS
	"immediate": attrRange(1, 2),  // DREG, DATA
	"lookup":    attrRange(1, 5),  // SET, SREG, DREG, SET_ID, FLAGS
	"range":     attrRange(1, 4),  // SREG, OP, FROM_DATA, TO_DATA
	"fib":       attrRange(1, 3),  // DREG, RESULT, FLAGS
	"ct":        attrRange(1, 4),  // DREG, KEY, DIRECTION, SREG
	"bitwise":   attrRange(1, 6),  // SREG, DREG, LEN, MASK, XOR, OP (boolean only)
	"nat":       attrRange(1, 7),  // TYPE … FLAGS
	"masq":      attrRange(1, 3),  // FLAGS, REG_PROTO_MIN, _MAX
	"redir":     attrRange(1, 3),  // REG_PROTO_MIN, _MAX, FLAGS
	"reject":    attrRange(1, 2),  // TYPE, ICMP_CODE
	"limit":     attrRange(1, 6),  // RATE, UNIT, BURST, TYPE, FLAGS, PAD
	"counter":   attrRange(1, 3),  // BYTES, PACKETS, PAD
	"quota":     attrRange(1, 4),  // BYTES, FLAGS, PAD, CONSUMED
	"numgen":    attrRange(1, 4),  // DREG, MODULUS, TYPE, OFFSET
	"hash":      attrRange(1, 7),  // SREG … TYPE
	"objref":    attrRange(1, 2),  // IMM_TYPE, IMM_NAME
	"queue":     attrRange(1, 3),  // NUM, TOTAL, FLAGS
	"log":       attrRange(1, 6),  // GROUP … FLAGS
	"exthdr":    attrRange(1, 7),  // DREG … SREG
	"dynset":    attrRange(1, 10), // SET_NAME … EXPRESSIONS
}

func attrRange(lo, hi uint) uint32 { return (1<<(hi+1) - 1) &^ (1<<lo - 1) }

// decodesWhole says whether google/nftables' decoder of the expression
// reads every attribute data holds (see exprAttrs).
func decodesWhole(name string, data []byte) bool {
	known, ok := exprAttrs[name]
	if !ok {
		return true
	}
	a := attrs{b: data}
	for a.next() {
		if a.typ >= 32 || known&(1<<a.typ) == 0 {
			return false
		}
		// NFTA_BITWISE_OP: only NFT_BITWISE_BOOL (mask and xor) is
		// decoded, not the shifts.
		if name == "bitwise" && a.typ == 6 && a.u32() != 0 {
			return false
		}
	}
	return a.err == nil
}

// dynsetWhole says whether google/nftables kept every expression a dynset
// runs on the element it adds (a limit, a counter): it drops the ones it
// does not know, and a dynset without its limit matches more than the
// kernel's.
func dynsetWhole(fam Family, data []byte, d *expr.Dynset) bool {
	n := 0
	known := func(e any) bool {
		n++
		switch e.(type) {
		case *Opaque, *Xt:
			return false
		}
		return true
	}
	a := attrs{b: data}
	for a.next() {
		switch a.typ {
		case unix.NFTA_DYNSET_EXPR:
			if !known(decodeExpr(fam, a.data)) {
				return false
			}
		case expr.NFTA_DYNSET_EXPRESSIONS:
			es, err := DecodeExprs(fam, a.data)
			if err != nil {
				return false
			}
			for _, e := range es {
				if !known(e) {
					return false
				}
			}
		}
	}
	return a.err == nil && n == len(d.Exprs)
}

// unmarshal runs google/nftables' decoder, which can index past short
// attributes: a panic there is a failure to decode, not a crash.
func unmarshal(fam Family, data []byte, e expr.Any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return expr.Unmarshal(byte(fam), data, e) == nil
}

// immediateVerdict is the verdict an immediate expression loads into the
// verdict register, nil when it loads data into another register.
func immediateVerdict(b []byte) *expr.Verdict {
	var dreg uint32 = 0xffffffff
	var v *expr.Verdict
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_IMMEDIATE_DREG:
			dreg = a.u32()
		case unix.NFTA_IMMEDIATE_DATA:
			d := attrs{b: a.data}
			for d.next() {
				if d.typ == unix.NFTA_DATA_VERDICT {
					kind, chain := verdictOf(d.data)
					v = &expr.Verdict{Kind: expr.VerdictKind(kind), Chain: chain}
				}
			}
		}
	}
	if a.err != nil || dreg != unix.NFT_REG_VERDICT {
		return nil
	}
	return v
}

// decodeXt decodes an xt compat expression of iptables-nft: the match or
// target's name, revision and the kernel's binary info struct, which
// XtFromMatch reads.
func decodeXt(fam Family, target bool, b []byte) any {
	// NFTA_MATCH_NAME, _REV, _INFO and NFTA_TARGET_NAME, _REV, _INFO
	// have the same numbers.
	var name string
	var rev uint32
	var info []byte
	a := attrs{b: b}
	for a.next() {
		switch a.typ {
		case unix.NFTA_MATCH_NAME:
			name = string(cstr(a.data))
		case unix.NFTA_MATCH_REV:
			rev = a.u32()
		case unix.NFTA_MATCH_INFO:
			info = a.data
		}
	}
	if a.err != nil || name == "" {
		n := "match"
		if target {
			n = "target"
		}
		return &Opaque{Name: n, Data: b}
	}
	return XtFromMatch(Family(fam), target, name, rev, info)
}

// exprFromName makes the google/nftables expression of a kernel name, nil
// for one it cannot decode.
func exprFromName(name string) expr.Any {
	switch name {
	case "ct":
		return &expr.Ct{}
	case "range":
		return &expr.Range{}
	case "meta":
		return &expr.Meta{}
	case "cmp":
		return &expr.Cmp{}
	case "counter":
		return &expr.Counter{}
	case "objref":
		return &expr.Objref{}
	case "payload":
		return &expr.Payload{}
	case "lookup":
		return &expr.Lookup{}
	case "immediate":
		return &expr.Immediate{}
	case "bitwise":
		return &expr.Bitwise{}
	case "redir":
		return &expr.Redir{}
	case "nat":
		return &expr.NAT{}
	case "limit":
		return &expr.Limit{}
	case "quota":
		return &expr.Quota{}
	case "dynset":
		return &expr.Dynset{}
	case "log":
		return &expr.Log{}
	case "exthdr":
		return &expr.Exthdr{}
	case "connlimit":
		return &expr.Connlimit{}
	case "queue":
		return &expr.Queue{}
	case "flow_offload":
		return &expr.FlowOffload{}
	case "reject":
		return &expr.Reject{}
	case "masq":
		return &expr.Masq{}
	case "hash":
		return &expr.Hash{}
	case "cthelper":
		return &expr.CtHelper{}
	case "synproxy":
		return &expr.SynProxy{}
	case "ctexpect":
		return &expr.CtExpect{}
	case "secmark":
		return &expr.SecMark{}
	case "cttimeout":
		return &expr.CtTimeout{}
	case "fib":
		return &expr.Fib{}
	case "numgen":
		return &expr.Numgen{}
	case "socket":
		return &expr.Socket{}
	case "tproxy":
		return &expr.TProxy{}
	case "dup":
		return &expr.Dup{}
	}
	// byteorder and rt have types but no decoder in google/nftables
	// v0.3.0; they, and last, inner, osf, xfrm, tunnel, fwd and what
	// later kernels add, stay opaque.
	return nil
}

// hostBuilder assembles a Host from rtnetlink dumps of links, addresses,
// routes and rules (linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h,
// linux/fib_rules.h). It is not safe for concurrent use.
type hostBuilder struct {
	h      Host
	byIdx  map[int]int // interface index to its place in h.Interfaces
	routes []ifRoute
}

// ifRoute is a Route whose interface is still an index: routes may name
// interfaces listed after them.
type ifRoute struct {
	Route
	oif int
}

func newHostBuilder() *hostBuilder { return &hostBuilder{byIdx: map[int]int{}} }

func ne32(b []byte) uint32 {
	if len(b) < 4 {
		return 0
	}
	return binary.NativeEndian.Uint32(b)
}

// addLink decodes one RTM_NEWLINK: struct ifinfomsg and attributes.
func (b *hostBuilder) addLink(msg []byte) error {
	if len(msg) < unix.SizeofIfInfomsg {
		return fmt.Errorf("ifinfomsg: %w", errShort)
	}
	ifc := Interface{
		Type:  binary.NativeEndian.Uint16(msg[2:]),
		Index: int(int32(binary.NativeEndian.Uint32(msg[4:]))),
	}
	a := attrs{b: msg[unix.SizeofIfInfomsg:]}
	for a.next() {
		switch a.typ {
		case unix.IFLA_IFNAME:
			ifc.Name = string(cstr(a.data))
		case unix.IFLA_GROUP:
			ifc.Group = ne32(a.data)
		}
	}
	if a.err != nil {
		return fmt.Errorf("link %d: %w", ifc.Index, a.err)
	}
	if _, ok := b.byIdx[ifc.Index]; ok {
		return fmt.Errorf("link %d twice", ifc.Index)
	}
	b.byIdx[ifc.Index] = len(b.h.Interfaces)
	b.h.Interfaces = append(b.h.Interfaces, ifc)
	return nil
}

// addAddr decodes one RTM_NEWADDR: struct ifaddrmsg and attributes.
func (b *hostBuilder) addAddr(msg []byte) error {
	if len(msg) < unix.SizeofIfAddrmsg {
		return fmt.Errorf("ifaddrmsg: %w", errShort)
	}
	bits := int(msg[1])
	idx := int(binary.NativeEndian.Uint32(msg[4:]))
	var local, address netip.Addr
	a := attrs{b: msg[unix.SizeofIfAddrmsg:]}
	for a.next() {
		switch a.typ {
		case unix.IFA_LOCAL:
			local, _ = netip.AddrFromSlice(a.data)
		case unix.IFA_ADDRESS:
			address, _ = netip.AddrFromSlice(a.data)
		}
	}
	if a.err != nil {
		return fmt.Errorf("address of link %d: %w", idx, a.err)
	}
	// On a point-to-point link IFA_ADDRESS is the peer's; IFA_LOCAL is
	// always the own address where it is given.
	addr := address
	if local.IsValid() {
		addr = local
	}
	i, ok := b.byIdx[idx]
	if !ok || !addr.IsValid() || bits > addr.BitLen() {
		return nil // an interface gone since the link dump, or a foreign family
	}
	b.h.Interfaces[i].Addrs = append(b.h.Interfaces[i].Addrs, netip.PrefixFrom(addr, bits))
	return nil
}

var routeTypes = [...]string{
	unix.RTN_UNSPEC: "unspec", unix.RTN_UNICAST: "unicast", unix.RTN_LOCAL: "local",
	unix.RTN_BROADCAST: "broadcast", unix.RTN_ANYCAST: "anycast", unix.RTN_MULTICAST: "multicast",
	unix.RTN_BLACKHOLE: "blackhole", unix.RTN_UNREACHABLE: "unreachable", unix.RTN_PROHIBIT: "prohibit",
	unix.RTN_THROW: "throw", unix.RTN_NAT: "nat", unix.RTN_XRESOLVE: "xresolve",
}

// addRoute decodes one RTM_NEWROUTE: struct rtmsg and attributes. Only
// the main and local tables are kept.
func (b *hostBuilder) addRoute(msg []byte) error {
	if len(msg) < unix.SizeofRtMsg {
		return fmt.Errorf("rtmsg: %w", errShort)
	}
	fam, bits, table, typ := msg[0], int(msg[1]), uint32(msg[4]), msg[7]
	var dst, gw netip.Addr
	oif := 0
	var multipath []byte
	a := attrs{b: msg[unix.SizeofRtMsg:]}
	for a.next() {
		switch a.typ {
		case unix.RTA_TABLE:
			table = ne32(a.data)
		case unix.RTA_DST:
			dst, _ = netip.AddrFromSlice(a.data)
		case unix.RTA_OIF:
			oif = int(ne32(a.data))
		case unix.RTA_GATEWAY:
			gw, _ = netip.AddrFromSlice(a.data)
		case unix.RTA_VIA:
			gw = via(a.data)
		case unix.RTA_MULTIPATH:
			multipath = a.data
		}
	}
	if a.err != nil {
		return fmt.Errorf("route: %w", a.err)
	}
	if table != unix.RT_TABLE_MAIN && table != unix.RT_TABLE_LOCAL {
		return nil
	}
	if !dst.IsValid() {
		switch fam {
		case unix.AF_INET:
			dst = netip.IPv4Unspecified()
		case unix.AF_INET6:
			dst = netip.IPv6Unspecified()
		default:
			return nil
		}
	}
	if bits > dst.BitLen() {
		return fmt.Errorf("route to %s/%d", dst, bits)
	}
	r := Route{Dst: netip.PrefixFrom(dst, bits), Gateway: gw, Type: "unknown"}
	if int(typ) < len(routeTypes) {
		r.Type = routeTypes[typ]
	}
	if multipath == nil {
		b.routes = append(b.routes, ifRoute{r, oif})
		return nil
	}
	// struct rtnexthop: len, flags, hops, ifindex, then attributes.
	for len(multipath) >= 8 {
		n := int(binary.NativeEndian.Uint16(multipath))
		if n < 8 || n > len(multipath) {
			return fmt.Errorf("route to %s: nexthop of length %d", r.Dst, n)
		}
		nh := r
		nh.Gateway = netip.Addr{}
		na := attrs{b: multipath[8:n]}
		for na.next() {
			switch na.typ {
			case unix.RTA_GATEWAY:
				nh.Gateway, _ = netip.AddrFromSlice(na.data)
			case unix.RTA_VIA:
				nh.Gateway = via(na.data)
			}
		}
		b.routes = append(b.routes, ifRoute{nh, int(int32(binary.NativeEndian.Uint32(multipath[4:])))})
		n = (n + 3) &^ 3
		if n > len(multipath) {
			n = len(multipath)
		}
		multipath = multipath[n:]
	}
	return nil
}

// via decodes struct rtvia: an address family and an address.
func via(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(b[2:])
	return a
}

// Of linux/fib_rules.h and linux/rtnetlink.h.
const (
	fraPriority            = 6  // FRA_PRIORITY
	fraTable               = 15 // FRA_TABLE
	fraSuppressIfgroup     = 13 // FRA_SUPPRESS_IFGROUP
	fraSuppressPrefixlen   = 14 // FRA_SUPPRESS_PREFIXLEN
	fraProtocol            = 21 // FRA_PROTOCOL
	frActToTbl             = 1  // FR_ACT_TO_TBL
	rtTableDefault         = 253
	ruleDefaultPrioMain    = 32766
	ruleDefaultPrioDefault = 32767
)

// addRule decodes one RTM_NEWRULE (struct fib_rule_hdr and attributes)
// and notes policy routing when it is not one of the kernel's default
// rules: "from all lookup local" at 0, main at 32766, default at 32767.
func (b *hostBuilder) addRule(msg []byte) error {
	if len(msg) < 12 {
		return fmt.Errorf("fib_rule_hdr: %w", errShort)
	}
	table, prio := uint32(msg[4]), uint32(0)
	plain := msg[1] == 0 && msg[2] == 0 && msg[3] == 0 && msg[7] == frActToTbl && ne32(msg[8:]) == 0
	a := attrs{b: msg[12:]}
	for a.next() {
		switch a.typ {
		case fraTable:
			table = ne32(a.data)
		case fraPriority:
			prio = ne32(a.data)
		case fraProtocol:
		case fraSuppressPrefixlen, fraSuppressIfgroup:
			// Always sent; -1 means unset.
			plain = plain && ne32(a.data) == 0xffffffff
		default:
			plain = false // a selector: iif, oif, fwmark, from, to, …
		}
	}
	if a.err != nil {
		return fmt.Errorf("rule %d: %w", prio, a.err)
	}
	def := plain && (prio == 0 && table == unix.RT_TABLE_LOCAL ||
		prio == ruleDefaultPrioMain && table == unix.RT_TABLE_MAIN ||
		prio == ruleDefaultPrioDefault && table == rtTableDefault)
	if !def {
		b.h.PolicyRouting = true
	}
	return nil
}

// host resolves the routes' interfaces and returns the Host.
func (b *hostBuilder) host() *Host {
	h := b.h
	h.Routes = make([]Route, 0, len(b.routes))
	for _, r := range b.routes {
		if i, ok := b.byIdx[r.oif]; ok {
			r.Iface = h.Interfaces[i].Name
		}
		h.Routes = append(h.Routes, r.Route)
	}
	return &h
}
