package sockets

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"
)

// List returns the sockets q selects, attributed to processes when
// q.Processes is set.
func List(ctx context.Context, q Query) (*Table, error) {
	c, err := openDiag(q.NetNS)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	udpStates := q.UDPStates
	if udpStates == 0 {
		udpStates = q.States
	}
	t := &Table{Sockets: make([]Socket, 0, estimate(q, udpStates))}
	tcpBoth := q.Families == AllFamilies && q.Protos&TCP != 0 && q.States != 0
	if tcpBoth {
		if t.Sockets, err = c.dump(0, ipprotoTCP, TCP, q.States, q.LocalPort, q.RemotePort, t.Sockets); err != nil {
			// A kernel without the older request: one dump per family.
			t.Sockets, tcpBoth = t.Sockets[:0], false
		}
	}
	for _, fam := range []struct {
		f      Family
		family uint8
	}{{IPv4, afINET}, {IPv6, afINET6}} {
		if q.Families&fam.f == 0 {
			continue
		}
		if q.Protos&TCP != 0 && q.States != 0 && !tcpBoth {
			if t.Sockets, err = c.dump(fam.family, ipprotoTCP, TCP, q.States, q.LocalPort, q.RemotePort, t.Sockets); err != nil {
				return nil, err
			}
		}
		if q.Protos&UDP != 0 && udpStates != 0 {
			if t.Sockets, err = c.dump(fam.family, ipprotoUDP, UDP, udpStates, q.LocalPort, q.RemotePort, t.Sockets); err != nil {
				return nil, err
			}
		}
		// MPTCP's dump costs a millisecond or two even when empty, so it is
		// made only when asked for. Its listeners also show as TCP.
		if q.Protos&MPTCP != 0 && q.States != 0 {
			mp, err := c.dump(fam.family, ipprotoMPTCP, MPTCP, q.States, q.LocalPort, q.RemotePort, nil)
			if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
				return nil, err // a kernel without MPTCP diag answers ENOENT
			}
			t.Sockets = mergeMPTCP(t.Sockets, mp, true)
		}
	}
	if q.Processes {
		if err := attribute(ctx, t, q.AllHolders, q.AttributeIf); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// mergeMPTCP folds MPTCP sockets into the table. An MPTCP listener also
// shows as a TCP listener with the same inode: the TCP entry is marked
// MPTCP and the duplicate dropped. The others are kept when keep is set.
// Only the few MPTCP sockets are indexed: Go listens with MPTCP by
// default, and the table may hold tens of thousands of TCP connections.
func mergeMPTCP(socks, mp []Socket, keep bool) []Socket {
	if len(mp) == 0 {
		return socks
	}
	byInode := make(map[uint64]int, len(mp))
	var states StateSet
	for j, m := range mp {
		if m.Inode != 0 {
			byInode[m.Inode] = j
			states |= StatesOf(m.State)
		}
	}
	merged := make([]bool, len(mp))
	for i := range socks {
		s := &socks[i]
		if s.Proto != TCP || s.Inode == 0 || !states.Has(s.State) {
			continue
		}
		if j, ok := byInode[s.Inode]; ok {
			s.MPTCP, merged[j] = true, true
		}
	}
	if keep {
		for j, m := range mp {
			if !merged[j] {
				socks = append(socks, m)
			}
		}
	}
	return socks
}

// Walk calls fn for each TCP and UDP socket q selects, as the kernel hands
// them over, without keeping them: a busy server's 40,000 connections cost
// one Socket's memory, not 40,000. fn must not keep the pointer. Processes,
// AllHolders and AttributeIf are ignored, and so are MPTCP sockets.
func Walk(ctx context.Context, q Query, fn func(*Socket)) error {
	c, err := openDiag(q.NetNS)
	if err != nil {
		return err
	}
	defer c.Close()
	udpStates := q.UDPStates
	if udpStates == 0 {
		udpStates = q.States
	}
	tcpBoth := q.Families == AllFamilies && q.Protos&TCP != 0 && q.States != 0
	if tcpBoth {
		emitted := false
		err := c.walk(0, ipprotoTCP, TCP, q.States, q.LocalPort, q.RemotePort, func(s *Socket) { emitted = true; fn(s) })
		if err != nil && emitted {
			return err
		}
		tcpBoth = err == nil // else a kernel without the older request: one walk per family
	}
	for _, family := range []uint8{afINET, afINET6} {
		if (family == afINET && q.Families&IPv4 == 0) || (family == afINET6 && q.Families&IPv6 == 0) {
			continue
		}
		if q.Protos&TCP != 0 && q.States != 0 && !tcpBoth {
			if err := c.walk(family, ipprotoTCP, TCP, q.States, q.LocalPort, q.RemotePort, fn); err != nil {
				return err
			}
		}
		if q.Protos&UDP != 0 && udpStates != 0 {
			if err := c.walk(family, ipprotoUDP, UDP, udpStates, q.LocalPort, q.RemotePort, fn); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// estimate guesses how many sockets q will return from the kernel's own
// counters, so the table is allocated once: growing it by doubling would
// leave copies behind that, at tens of thousands of sockets, double the
// peak memory. Pages of capacity never written cost no memory.
func estimate(q Query, udpStates StateSet) int {
	if q.NetNS != "" || q.LocalPort != 0 || q.RemotePort != 0 {
		return 0 // another namespace's counters are not at hand; filtered results are small
	}
	ss, err := ReadSockstat()
	if err != nil {
		return 0
	}
	n := 0
	busy := StatesOf(Established, SynSent, SynRecv, FinWait1, FinWait2, CloseWait, LastAck, Closing)
	if q.Protos&TCP != 0 && q.States&busy != 0 {
		n += int(ss["TCP"]["inuse"] + ss["TCP6"]["inuse"])
	}
	if q.Protos&TCP != 0 && q.States.Has(TimeWait) {
		n += int(ss["TCP"]["tw"])
	}
	if q.Protos&UDP != 0 && udpStates != 0 {
		n += int(ss["UDP"]["inuse"] + ss["UDP6"]["inuse"])
	}
	return n + n/16
}
