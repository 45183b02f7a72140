package firewall

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// ownTable is portctl's table, as google/nftables names it.
var ownTable = &nftables.Table{Name: OwnTable, Family: nftables.TableFamilyINet}

// ownConn opens an nftables connection to the namespace of opts, and
// returns the function that releases it.
func ownConn(opts Options) (*nftables.Conn, func(), error) {
	if opts.NetNS == "" {
		c, err := nftables.New()
		return c, func() {}, err
	}
	f, err := os.Open(opts.NetNS)
	if err != nil {
		return nil, nil, fmt.Errorf("network namespace: %w", err)
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return c, func() { f.Close() }, nil
}

// openOwn connects to the namespace of opts and reads portctl's table;
// done releases the connection.
func openOwn(ctx context.Context, opts Options) (c *nftables.Conn, st ownState, done func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, st, nil, err
	}
	c, done, err = ownConn(opts)
	if err != nil {
		return nil, st, nil, err
	}
	if st, err = readOwn(c); err != nil {
		done()
		return nil, st, nil, err
	}
	return c, st, done, nil
}

// ownErr wraps an error of the kernel's, making a refusal for want of
// privilege an ErrPermission (and an os.ErrPermission).
func ownErr(what string, err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%s: %w: %w", what, ErrPermission, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// ownState is what portctl's table holds now.
type ownState struct {
	exists bool
	chains map[string]int // chain name -> its number of rules
	elems  map[string][]nftables.SetElement
}

// readOwn reads portctl's table; a missing table is not an error.
func readOwn(c *nftables.Conn) (ownState, error) {
	st := ownState{chains: map[string]int{}, elems: map[string][]nftables.SetElement{}}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return st, ownErr("list tables", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == OwnTable }) {
		return st, nil
	}
	st.exists = true
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return st, ownErr("list chains", err)
	}
	for _, ch := range chains {
		if ch.Table.Name != OwnTable {
			continue
		}
		rules, err := c.GetRules(ownTable, ch)
		if err != nil {
			return st, ownErr("list rules of chain "+ch.Name, err)
		}
		n := 0
		for _, r := range rules {
			if comment, _ := userdata.GetString(r.UserData, userdata.TypeComment); comment == BlockComment {
				n++
			}
		}
		st.chains[ch.Name] = n
	}
	sets, err := c.GetSets(ownTable)
	if err != nil {
		return st, ownErr("list sets", err)
	}
	for _, s := range sets {
		switch s.Name {
		case portsSet, from4Set, from6Set:
		default:
			continue
		}
		els, err := c.GetSetElements(s)
		if err != nil {
			return st, ownErr("list set "+s.Name, err)
		}
		st.elems[s.Name] = els
	}
	return st, nil
}

// blocks reads the elements of the block sets back as blocks of one
// protocol each.
func (st ownState) blocks() ([]PortBlock, error) {
	var out []PortBlock
	for _, set := range []string{portsSet, from4Set, from6Set} {
		for _, e := range st.elems[set] {
			if e.IntervalEnd {
				continue
			}
			b, err := parseBlockElem(set, e.Key, e.KeyEnd, e.Timeout, e.Expires)
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
	}
	return out, nil
}

// blockSet is one of the block sets, as google/nftables describes it.
func blockSet(name string) *nftables.Set {
	types := []nftables.SetDatatype{nftables.TypeInetProto, nftables.TypeInetService}
	switch name {
	case from4Set:
		types = append([]nftables.SetDatatype{nftables.TypeIPAddr}, types...)
	case from6Set:
		types = append([]nftables.SetDatatype{nftables.TypeIP6Addr}, types...)
	}
	return &nftables.Set{
		Table:         ownTable,
		Name:          name,
		KeyType:       nftables.MustConcatSetType(types...),
		Concatenation: true,
		Interval:      true,
		HasTimeout:    true,
	}
}

// blockRules are the expressions of the rules of a block chain (see
// OwnTable's comment for them in nft's words).
func blockRules(sets map[string]*nftables.Set) [][]expr.Any {
	lookup := func(name string) *expr.Lookup {
		return &expr.Lookup{SourceRegister: 1, SetName: name, SetID: sets[name].ID}
	}
	nfproto := func(p byte) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
		}
	}
	// Registers: 1 is the 16-byte register that the 4-byte registers 8 to
	// 11 overlay; a concatenation's fields sit in consecutive 4-byte
	// registers from the lookup's source register on.
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	return [][]expr.Any{
		{
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_UNICAST)},
			&expr.Verdict{Kind: expr.VerdictReturn},
		},
		{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			lookup(portsSet), drop,
		},
		append(nfproto(unix.NFPROTO_IPV4),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 9},
			&expr.Payload{DestRegister: 10, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			lookup(from4Set), drop,
		),
		append(nfproto(unix.NFPROTO_IPV6),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 12},
			&expr.Payload{DestRegister: 13, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			lookup(from6Set), drop,
		),
	}
}

// ensureOwn queues what makes portctl's table whole: the table, the
// sets, and the block chains with their rules. Adding what exists
// changes nothing; a block chain whose rules are not the expected ones is
// flushed and filled again.
func ensureOwn(c *nftables.Conn, st ownState) (map[string]*nftables.Set, error) {
	c.AddTable(ownTable)
	sets := map[string]*nftables.Set{}
	for _, name := range []string{portsSet, from4Set, from6Set} {
		s := blockSet(name)
		if err := c.AddSet(s, nil); err != nil {
			return nil, fmt.Errorf("set %s: %w", name, err)
		}
		sets[name] = s
	}
	rules := blockRules(sets)
	for _, ch := range []struct {
		name string
		hook *nftables.ChainHook
	}{{blockPreChain, nftables.ChainHookPrerouting}, {blockOutChain, nftables.ChainHookOutput}} {
		n, ok := st.chains[ch.name]
		if ok && n == len(rules) {
			continue
		}
		addOwnChain(c, ch.name, ch.hook, blockPriority, ok, rules, BlockComment)
	}
	return sets, nil
}

// addOwnChain queues a base chain of portctl's table at the hook and
// priority, with the rules, each commented comment; a chain that exists
// is flushed first.
func addOwnChain(c *nftables.Conn, name string, hook *nftables.ChainHook, prio nftables.ChainPriority, exists bool, rules [][]expr.Any, comment string) {
	accept := nftables.ChainPolicyAccept
	chain := c.AddChain(&nftables.Chain{
		Name: name, Table: ownTable, Type: nftables.ChainTypeFilter,
		Hooknum: hook, Priority: nftables.ChainPriorityRef(prio), Policy: &accept,
	})
	if exists {
		c.FlushChain(chain)
	}
	for _, exprs := range rules {
		c.AddRule(&nftables.Rule{Table: ownTable, Chain: chain, Exprs: exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, comment)})
	}
}

// removeOwn queues the removal of chains (and sets) of portctl's table,
// or of the whole table when, with them gone, it would hold nothing but
// empty block chains: no block, no chain of anyone else's.
func removeOwn(c *nftables.Conn, st ownState, chains []string, sets []*nftables.Set) {
	empty := true
	for name := range st.chains {
		if !slices.Contains(chains, name) && name != blockPreChain && name != blockOutChain {
			empty = false
		}
	}
	for _, els := range st.elems {
		if len(els) > 0 {
			empty = false
		}
	}
	if empty {
		c.DelTable(ownTable)
		return
	}
	for _, name := range chains {
		if _, ok := st.chains[name]; ok {
			c.DelChain(&nftables.Chain{Name: name, Table: ownTable})
		}
	}
	for _, s := range sets {
		c.DelSet(s)
	}
}

// elemsOf are the set elements of a block of one protocol.
func elemsOf(b PortBlock, timeout bool) (string, nftables.SetElement) {
	e := b.elems()[0]
	se := nftables.SetElement{Key: e.key, KeyEnd: e.end}
	if timeout {
		se.Timeout = b.For
	}
	return e.set, se
}

// Block makes portctl's own table drop new and established packets to
// b's ports (from b.From, if valid), creating the table if need be.
// With b.For, the kernel removes the block by itself when that time is
// up. Blocking again what is blocked (the same ports, protocol and
// source) starts its time again; a block that overlaps another without
// being the same is refused, naming the other. No other table is read
// for more than its name or changed.
func Block(ctx context.Context, opts Options, b PortBlock) error {
	if err := b.check(); err != nil {
		return err
	}
	c, st, done, err := openOwn(ctx, opts)
	if err != nil {
		return err
	}
	defer done()
	have, err := st.blocks()
	if err != nil {
		return err
	}
	sets, err := ensureOwn(c, st)
	if err != nil {
		return err
	}
	for _, one := range b.split() {
		for _, h := range have {
			if h.Proto != one.Proto || !h.overlaps(one) {
				continue
			}
			if !h.sameKey(one) {
				return fmt.Errorf("block %s: overlaps the block %s; unblock that first", b, h)
			}
			set, el := elemsOf(h, false)
			if err := c.SetDeleteElements(sets[set], []nftables.SetElement{el}); err != nil {
				return err
			}
		}
		set, el := elemsOf(one, true)
		if err := c.SetAddElements(sets[set], []nftables.SetElement{el}); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return ownErr("block "+b.String(), err)
	}
	return nil
}

// Unblock removes from portctl's table the blocks that lie within b's
// port range, of b's protocols, and of b.From's source, or of every
// source when b.From is invalid. A block that reaches beyond b's range is
// not cut: Unblock fails, naming it. When nothing is blocked any more
// (and no trace runs), the table goes too: portctl leaves no empty table
// behind. It returns ErrNotBlocked when nothing matched.
func Unblock(ctx context.Context, opts Options, b PortBlock) error {
	if err := b.check(); err != nil {
		return err
	}
	c, st, done, err := openOwn(ctx, opts)
	if err != nil {
		return err
	}
	defer done()
	if !st.exists {
		return fmt.Errorf("unblock %s: %w", b, ErrNotBlocked)
	}
	have, err := st.blocks()
	if err != nil {
		return err
	}
	var gone []PortBlock
	for _, one := range b.split() {
		for _, h := range have {
			if h.Proto != one.Proto {
				continue
			}
			if b.From.IsValid() && h.From.Masked() != b.From.Masked() {
				continue
			}
			if h.Ports[1] < one.Ports[0] || one.Ports[1] < h.Ports[0] {
				continue
			}
			if h.Ports[0] < one.Ports[0] || h.Ports[1] > one.Ports[1] {
				return fmt.Errorf("unblock %s: the block %s reaches beyond it; unblock all of that", b, h)
			}
			gone = append(gone, h)
		}
	}
	if len(gone) == 0 {
		if len(have) == 0 && st.idle() {
			c.DelTable(ownTable)
			c.Flush() // an empty table left by expired blocks: best effort
		}
		return fmt.Errorf("unblock %s: %w", b, ErrNotBlocked)
	}
	if len(gone) == len(have) && st.idle() {
		c.DelTable(ownTable)
	} else {
		for _, h := range gone {
			name, el := elemsOf(h, false)
			if err := c.SetDeleteElements(blockSet(name), []nftables.SetElement{el}); err != nil {
				return err
			}
		}
	}
	if err := c.Flush(); err != nil {
		return ownErr("unblock "+b.String(), err)
	}
	return nil
}

// idle says whether portctl's table holds nothing but the block chains
// and sets: no trace runs, nobody added chains of their own.
func (st ownState) idle() bool {
	for name := range st.chains {
		if name != blockPreChain && name != blockOutChain {
			return false
		}
	}
	return true
}

// Blocks lists the blocks of portctl's table, with the time each has
// left; a block made for both protocols is one entry with Proto "".
func Blocks(ctx context.Context, opts Options) ([]PortBlock, error) {
	_, st, done, err := openOwn(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer done()
	bs, err := st.blocks()
	if err != nil {
		return nil, err
	}
	return mergeBlocks(bs), nil
}
