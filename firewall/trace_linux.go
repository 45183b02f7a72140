package firewall

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/netns"
)

// traceMsgType is NFT_MSG_TRACE of the nf_tables netlink subsystem, as it
// stands in the netlink header.
const traceMsgType = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_TRACE

// traceDrain is how long Stop keeps reading after the trace rules are
// gone: the kernel queues an event as the packet passes, so what was
// sent before Stop is already waiting in the socket.
const traceDrain = 100 * time.Millisecond

// Tracer is a running trace (see StartTrace). Its methods are safe for
// concurrent use.
type Tracer struct {
	opts   Options
	nl     *netlink.Conn
	nsFile *os.File
	fn     func(TraceEvent)
	ifs    *ifNames
	done   chan struct{} // closed when the reader ends
	stop   sync.Once
	err    error

	mu      sync.Mutex
	events  []TraceEvent // when fn is nil
	overrun bool
}

// Trace marks the packets f selects for the kernel's nftables trace (in
// chains of portctl's own table that run before every other table's), and
// calls fn, on a goroutine of its own and in order, for each event the
// kernel sends about them, until ctx ends. Then it removes what it added.
// Events of its own marking chains are left out.
func Trace(ctx context.Context, opts Options, f TraceFilter, fn func(TraceEvent)) error {
	if fn == nil {
		return errors.New("trace: no function for the events")
	}
	t, err := StartTrace(ctx, opts, f, fn)
	if err != nil {
		return err
	}
	<-ctx.Done()
	_, err = t.Stop()
	return err
}

// StartTrace starts a trace as Trace does, and returns once the kernel
// marks the packets and the events are listened to: a client started
// after it is traced. fn may be nil: Stop then returns the events. The
// trace stops with Stop, or when ctx ends.
func StartTrace(ctx context.Context, opts Options, f TraceFilter, fn func(TraceEvent)) (*Tracer, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	t := &Tracer{opts: opts, fn: fn, done: make(chan struct{}), ifs: &ifNames{path: opts.NetNS}}
	cfg := &netlink.Config{}
	if opts.NetNS != "" {
		nsf, err := os.Open(opts.NetNS)
		if err != nil {
			return nil, fmt.Errorf("network namespace: %w", err)
		}
		t.nsFile = nsf
		cfg.NetNS = int(nsf.Fd())
	}
	fail := func(err error) (*Tracer, error) {
		if t.nl != nil {
			t.nl.Close()
		}
		if t.nsFile != nil {
			t.nsFile.Close()
		}
		return nil, err
	}
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return fail(ownErr("trace: netlink", err))
	}
	t.nl = nl
	// Listen before marking, so that no event is missed.
	if err := nl.JoinGroup(unix.NFNLGRP_NFTRACE); err != nil {
		return fail(ownErr("trace: join the trace group", err))
	}
	_ = nl.SetReadBuffer(4 << 20) // more room before the kernel drops events; best effort
	if err := addTraceChains(opts, f); err != nil {
		return fail(err)
	}
	t.ifs.load()
	go t.read()
	go func() {
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.done:
		}
	}()
	return t, nil
}

// check says what is wrong with a filter.
func (f TraceFilter) check() error {
	switch f.Proto {
	case 0, l4TCP, l4UDP:
	default:
		return fmt.Errorf("trace: protocol %d: want 6 (tcp), 17 (udp) or 0 for both", f.Proto)
	}
	return nil
}

// Stop removes the trace chains (and portctl's table, when nothing else is
// left in it), reads the events already sent, and returns them when
// StartTrace had no function for them. It returns ErrTraceOverrun, with
// the events, when the kernel dropped some. Calling it again returns the
// same.
func (t *Tracer) Stop() ([]TraceEvent, error) {
	t.stop.Do(func() {
		t.err = removeTraceChains(t.opts)
		t.nl.SetReadDeadline(time.Now().Add(traceDrain))
		<-t.done
		t.nl.Close()
		if t.nsFile != nil {
			t.nsFile.Close()
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.err == nil && t.overrun {
			t.err = ErrTraceOverrun
		}
	})
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.events, t.err
}

// read reads trace messages until the socket's deadline or its end.
func (t *Tracer) read() {
	defer close(t.done)
	for {
		msgs, err := t.nl.Receive()
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				t.mu.Lock()
				t.overrun = true
				t.mu.Unlock()
				continue
			}
			return // the deadline Stop set, or the socket closed
		}
		for _, m := range msgs {
			if m.Header.Type != traceMsgType {
				continue
			}
			e, err := DecodeTrace(m.Data)
			if err != nil {
				continue // a kernel that speaks a newer dialect; nothing to show
			}
			if e.Family == FamilyINet && e.Table == OwnTable &&
				(e.Chain == tracePreChain || e.Chain == traceOutChain) {
				continue
			}
			e.IIF, e.OIF = t.ifs.name(e.IIFIndex), t.ifs.name(e.OIFIndex)
			if t.fn != nil {
				t.fn(e)
				continue
			}
			t.mu.Lock()
			t.events = append(t.events, e)
			t.mu.Unlock()
		}
	}
}

// traceRules are the expressions of the rules that mark f's packets: one
// per protocol when a port or SYN is asked for without a protocol.
func traceRules(f TraceFilter) [][]expr.Any {
	protos := []uint8{f.Proto}
	if f.Proto == 0 && (f.DstPort != 0 || f.SYN) {
		protos = []uint8{l4TCP, l4UDP}
	}
	var out [][]expr.Any
	for _, p := range protos {
		var ex []expr.Any
		if p != 0 {
			ex = append(ex,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}})
		}
		if f.DstPort != 0 {
			ex = append(ex,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, f.DstPort)})
		}
		if f.SYN && p == l4TCP {
			// tcp flags & (syn | ack) == syn
			ex = append(ex,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1,
					Mask: []byte{traceTCPSYN | traceTCPACK}, Xor: []byte{0}},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{traceTCPSYN}})
		}
		if f.Src.IsValid() {
			pfx := f.Src.Masked()
			nfproto, off := byte(unix.NFPROTO_IPV4), uint32(12)
			if pfx.Addr().Is6() {
				nfproto, off = unix.NFPROTO_IPV6, 8
			}
			addr := pfx.Addr().AsSlice()
			ex = append(ex,
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(len(addr))})
			if pfx.Bits() < len(addr)*8 {
				mask := make([]byte, len(addr))
				for i := range pfx.Bits() {
					mask[i/8] |= 0x80 >> (i % 8)
				}
				ex = append(ex, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(addr)),
					Mask: mask, Xor: make([]byte, len(addr))})
			}
			ex = append(ex, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr})
		}
		ex = append(ex,
			&expr.Immediate{Register: 1, Data: []byte{1}},
			&expr.Meta{Key: expr.MetaKeyNFTRACE, SourceRegister: true, Register: 1})
		out = append(out, ex)
	}
	return out
}

// addTraceChains adds portctl's table if need be and the chains that mark
// f's packets, replacing the rules of chains a trace left behind.
func addTraceChains(opts Options, f TraceFilter) error {
	c, st, done, err := openOwn(context.Background(), opts)
	if err != nil {
		return err
	}
	defer done()
	c.AddTable(ownTable)
	rules := traceRules(f)
	for _, ch := range []struct {
		name string
		hook *nftables.ChainHook
	}{{tracePreChain, nftables.ChainHookPrerouting}, {traceOutChain, nftables.ChainHookOutput}} {
		_, ok := st.chains[ch.name]
		addOwnChain(c, ch.name, ch.hook, tracePriority, ok, rules, TraceComment)
	}
	if err := c.Flush(); err != nil {
		return ownErr("trace: add the marking chains", err)
	}
	return nil
}

// removeTraceChains deletes the trace chains, and portctl's table with
// them when they were all it held (no block left, no chain of anyone
// else's).
func removeTraceChains(opts Options) error {
	c, st, done, err := openOwn(context.Background(), opts)
	if err != nil {
		return err
	}
	defer done()
	if !st.exists {
		return nil
	}
	removeOwn(c, st, []string{tracePreChain, traceOutChain}, nil)
	if err := c.Flush(); err != nil {
		return ownErr("trace: remove the marking chains", err)
	}
	return nil
}

// ifNames resolves the interface indexes of a namespace to names.
type ifNames struct {
	path   string
	mu     sync.Mutex
	names  map[int]string
	loaded time.Time
}

// load lists the namespace's interfaces.
func (n *ifNames) load() {
	var ifs []net.Interface
	list := func() { ifs, _ = net.Interfaces() }
	if n.path == "" {
		list()
	} else if netns.Do(n.path, list) != nil {
		return
	}
	names := map[int]string{}
	for _, i := range ifs {
		names[i.Index] = i.Name
	}
	n.names, n.loaded = names, time.Now()
}

// name is the name of interface index, empty for zero; an index not seen
// yet makes it list the interfaces again, at most once a second.
func (n *ifNames) name(index int) string {
	if index == 0 {
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if name, ok := n.names[index]; ok {
		return name
	}
	if time.Since(n.loaded) > time.Second {
		n.load()
		if name, ok := n.names[index]; ok {
			return name
		}
	}
	return fmt.Sprintf("if%d", index)
}
