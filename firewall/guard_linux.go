package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// guardSets are guard's sets, as google/nftables describes them.
func guardSets() map[string]*nftables.Set {
	set := func(name string, key nftables.SetDatatype, concat, timeout bool) *nftables.Set {
		return &nftables.Set{Table: ownTable, Name: name, KeyType: key, Concatenation: concat, HasTimeout: timeout}
	}
	return map[string]*nftables.Set{
		guardBan4:  set(guardBan4, nftables.TypeIPAddr, false, true),
		guardBan6:  set(guardBan6, nftables.TypeIP6Addr, false, true),
		guardOpen4: set(guardOpen4, nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService), true, true),
		guardOpen6: set(guardOpen6, nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService), true, true),
		guardPorts: set(guardPorts, nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService), true, false),
		guardSeen4: seenSet(guardSeen4, nftables.TypeIPAddr),
		guardSeen6: seenSet(guardSeen6, nftables.TypeIP6Addr),
	}
}

// seenSet is a set of the contacts logged lately (source . destination .
// protocol . port), which the kernel fills and empties by itself.
func seenSet(name string, addr nftables.SetDatatype) *nftables.Set {
	return &nftables.Set{Table: ownTable, Name: name, Concatenation: true, HasTimeout: true, Dynamic: true, Size: seenSize,
		KeyType: nftables.MustConcatSetType(addr, addr, nftables.TypeInetProto, nftables.TypeInetService)}
}

// guardRules are the expressions of the rules of guard's chains (see
// GuardRules' comment for them in nft's words).
func guardRules(g GuardRules, sets map[string]*nftables.Set) (base, in, logs [][]expr.Any) {
	lookup := func(name string, reg uint32) *expr.Lookup {
		return &expr.Lookup{SourceRegister: reg, SetName: name, SetID: sets[name].ID}
	}
	nfproto := func(p byte) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
		}
	}
	l4 := func(p byte) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
		}
	}
	ctState := func(bits uint32) []expr.Any {
		return []expr.Any{
			&expr.Ct{Key: expr.CtKeySTATE, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		}
	}
	log := func(prefix string, snaplen uint32) *expr.Log {
		return &expr.Log{Key: 1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_PREFIX | 1<<unix.NFTA_LOG_SNAPLEN,
			Group: g.Group, Snaplen: snaplen, Data: []byte(prefix)}
	}
	verdict := func(k expr.VerdictKind) *expr.Verdict { return &expr.Verdict{Kind: k} }
	lo := make([]byte, 16)
	copy(lo, "lo")
	// Established traffic, most of the packets, leaves first, on the
	// cheapest test: no route lookup, no set lookup per packet.
	base = [][]expr.Any{
		append(ctState(ctStateEstablished|ctStateRelated), verdict(expr.VerdictReturn)),
		{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: lo}, verdict(expr.VerdictReturn)},
		{
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
			verdict(expr.VerdictReturn),
		},
		append(l4(unix.IPPROTO_TCP), &expr.Verdict{Kind: expr.VerdictJump, Chain: guardInChain}),
		append(l4(unix.IPPROTO_UDP), &expr.Verdict{Kind: expr.VerdictJump, Chain: guardInChain}),
	}
	snap := g.Snaplen
	if snap == 0 {
		snap = guardSnaplen
	}
	// Registers: 1 is the 16-byte register that the 4-byte registers 8 to
	// 11 overlay; a concatenation's fields sit in consecutive 4-byte
	// registers from the lookup's source register on.
	in = [][]expr.Any{
		append(nfproto(unix.NFPROTO_IPV4),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			lookup(guardBan4, 1), verdict(expr.VerdictDrop)),
		append(nfproto(unix.NFPROTO_IPV6),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
			lookup(guardBan6, 1), verdict(expr.VerdictDrop)),
	}
	if g.SPAPort != 0 {
		in = append(in, append(l4(unix.IPPROTO_UDP),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(g.SPAPort)},
			log(GuardSPAPrefix, spaSnaplen), verdict(expr.VerdictDrop)))
	}
	in = append(in,
		append(ctState(ctStateNew|ctStateInvalid|ctStateUntracked), &expr.Verdict{Kind: expr.VerdictJump, Chain: guardLogChain}),
		append(ctState(ctStateEstablished|ctStateRelated), verdict(expr.VerdictReturn)),
		append(nfproto(unix.NFPROTO_IPV4),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 9},
			&expr.Payload{DestRegister: 10, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			lookup(guardOpen4, 1), verdict(expr.VerdictReturn)),
		append(nfproto(unix.NFPROTO_IPV6),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 12},
			&expr.Payload{DestRegister: 13, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			lookup(guardOpen6, 1), verdict(expr.VerdictReturn)),
		[]expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			lookup(guardPorts, 1), verdict(expr.VerdictDrop),
		},
	)
	// The log chain: with Dedup, a new connection whose source,
	// destination, protocol and port were logged within Dedup is not
	// logged again (a client reconnecting, a retry: no new first contact).
	seen4 := append(nfproto(unix.NFPROTO_IPV4),
		&expr.Payload{DestRegister: 8, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 10},
		&expr.Payload{DestRegister: 11, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
	seen6 := append(nfproto(unix.NFPROTO_IPV6),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
		&expr.Payload{DestRegister: 2, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 16},
		&expr.Payload{DestRegister: 17, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
	if g.Dedup > 0 {
		for _, x := range []struct {
			load []expr.Any
			set  string
			reg  uint32
		}{{seen4, guardSeen4, 8}, {seen6, guardSeen6, 1}} {
			newOnly := append(ctState(ctStateNew), x.load...)
			logs = append(logs,
				append(slices.Clone(newOnly), lookup(x.set, x.reg), verdict(expr.VerdictReturn)),
				append(slices.Clone(newOnly), &expr.Dynset{SrcRegKey: x.reg, SetName: x.set, SetID: sets[x.set].ID,
					Operation: unix.NFT_DYNSET_OP_ADD, Timeout: g.Dedup}))
		}
	}
	logs = append(logs, []expr.Any{log(GuardNewPrefix, snap)})
	return base, in, logs
}

// Conntrack's state bits, as nft's ct state compares them
// (linux/netfilter/nf_conntrack_common.h: NF_CT_STATE_BIT).
const (
	ctStateInvalid     = 1 << 0
	ctStateEstablished = 1 << 1
	ctStateRelated     = 1 << 2
	ctStateNew         = 1 << 3
	ctStateUntracked   = 1 << 6
)

// Guard puts guard's chains and sets into portctl's own table (creating
// it if need be), as g says. Called again, it replaces the chains' rules
// and the guarded ports, and keeps the blocks and openings made so far.
func Guard(ctx context.Context, opts Options, g GuardRules) error {
	c, st, done, err := openOwn(ctx, opts)
	if err != nil {
		return err
	}
	defer done()
	c.AddTable(ownTable)
	sets := guardSets()
	for _, name := range []string{guardBan4, guardBan6, guardOpen4, guardOpen6, guardPorts, guardSeen4, guardSeen6} {
		if err := c.AddSet(sets[name], nil); err != nil {
			return fmt.Errorf("guard: set %s: %w", name, err)
		}
	}
	c.FlushSet(sets[guardPorts])
	var ports []nftables.SetElement
	for _, p := range g.Guarded {
		key := make([]byte, protoKeyLength+portKeyLength)
		key[0] = p.Proto
		copy(key[protoKeyLength:], binaryutil.BigEndian.PutUint16(p.Port))
		ports = append(ports, nftables.SetElement{Key: key})
	}
	if len(ports) > 0 {
		if err := c.SetAddElements(sets[guardPorts], ports); err != nil {
			return err
		}
	}
	base, in, logs := guardRules(g, sets)
	for _, ch := range []struct {
		name  string
		rules [][]expr.Any
	}{{guardLogChain, logs}, {guardInChain, in}} {
		_, exists := st.chains[ch.name]
		chain := c.AddChain(&nftables.Chain{Name: ch.name, Table: ownTable})
		if exists {
			c.FlushChain(chain)
		}
		for _, exprs := range ch.rules {
			c.AddRule(&nftables.Rule{Table: ownTable, Chain: chain, Exprs: exprs,
				UserData: userdata.AppendString(nil, userdata.TypeComment, GuardComment)})
		}
	}
	_, exists := st.chains[guardChain]
	addOwnChain(c, guardChain, nftables.ChainHookPrerouting, guardPriority, exists, base, GuardComment)
	if err := c.Flush(); err != nil {
		return ownErr("guard: add the chains", err)
	}
	return nil
}

// Unguard removes guard's chains and sets, and portctl's table when
// nothing else is left in it.
func Unguard(ctx context.Context, opts Options) error {
	c, st, done, err := openOwn(ctx, opts)
	if err != nil {
		return err
	}
	defer done()
	if !st.exists {
		return nil
	}
	var sets []*nftables.Set
	for _, s := range guardSets() {
		sets = append(sets, s)
	}
	removeOwn(c, st, []string{guardChain, guardInChain, guardLogChain}, sets)
	if err := c.Flush(); err != nil {
		return ownErr("guard: remove the chains", err)
	}
	return nil
}

// GuardBan drops everything from a for d (at least a second), in guard's
// chain; banning again starts the time again.
func GuardBan(ctx context.Context, opts Options, a netip.Addr, d time.Duration) error {
	a = a.Unmap()
	name := guardBan4
	if a.Is6() {
		name = guardBan6
	}
	return guardElement(ctx, opts, name, a.AsSlice(), d)
}

// GuardOpen lets new connections from a to the guarded port p through
// guard's chain for d (at least a second).
func GuardOpen(ctx context.Context, opts Options, a netip.Addr, p GuardPort, d time.Duration) error {
	a = a.Unmap()
	name := guardOpen4
	if a.Is6() {
		name = guardOpen6
	}
	key := append(a.AsSlice(), make([]byte, protoKeyLength+portKeyLength)...)
	n := a.BitLen() / 8
	key[n] = p.Proto
	copy(key[n+protoKeyLength:], binaryutil.BigEndian.PutUint16(p.Port))
	return guardElement(ctx, opts, name, key, d)
}

// guardElement adds key to the set name with a timeout of d, replacing
// the element if there, so that its time starts again.
func guardElement(ctx context.Context, opts Options, name string, key []byte, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d < time.Second {
		d = time.Second
	}
	c, done, err := ownConn(opts)
	if err != nil {
		return err
	}
	defer done()
	s := guardSets()[name]
	// Adding an element that is there keeps its old timeout: delete it
	// first, in a batch of its own, since deleting what is not there
	// fails the whole batch.
	if err := c.SetDeleteElements(s, []nftables.SetElement{{Key: key}}); err != nil {
		return err
	}
	c.Flush() // not there: nothing to delete
	if err := c.SetAddElements(s, []nftables.SetElement{{Key: key, Timeout: d}}); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return ownErr("guard: set "+name, err)
	}
	return nil
}
