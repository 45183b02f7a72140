package firewall

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// The xt payloads are the kernel's own structs, copied as they lie in
// memory: host byte order for the integers, network order where the
// header says __be, and padded at the end to XT_ALIGN (8 bytes). A
// payload whose length is not one the struct can have is left undecoded
// (Info nil), so a layout this file does not know never turns into a
// wrong match.

// XtFromMatch decodes the payload of an xt compat expression (an
// iptables-nft "match" when target is false, a "target" when true) of a
// table of family fam into an Xt. The matches and targets the evaluator
// models get Info: tcp, udp, conntrack (rev 1-3), addrtype (rev 0, 1) and
// comment as github.com/google/nftables/xt decodes them; multiport,
// state, mark, MARK, DNAT, SNAT, REDIRECT and MASQUERADE as this
// package's types. Any other name, revision or a payload of the wrong
// length gets Info nil with Data kept, which makes the evaluator treat it
// as unknown. It never panics, whatever data holds.
//
// Conntrack ports come out in host order for every revision (revision 3,
// which iptables-nft loads, keeps them so; 1 and 2 are converted), and
// --ctdir ORIGINAL is the direction flag without its inversion bit.
func XtFromMatch(fam Family, target bool, name string, rev uint32, data []byte) *Xt {
	x := &Xt{Target: target, Name: name, Rev: rev}
	if target {
		x.Info = decodeXtTarget(fam, name, rev, data)
	} else {
		x.Info = decodeXtMatch(fam, name, rev, data)
	}
	if x.Info == nil {
		x.Data = append([]byte(nil), data...)
	}
	return x
}

// XtFromExpr is XtFromMatch for an *expr.Match or *expr.Target as
// github.com/google/nftables returns them, which hold the payload already
// unmarshalled (or as xt.Unknown): it is marshalled back to the kernel's
// bytes first. It returns nil for any other expression.
func XtFromExpr(fam Family, e any) *Xt {
	var (
		target bool
		name   string
		rev    uint32
		info   xt.InfoAny
	)
	switch e := e.(type) {
	case *expr.Match:
		name, rev, info = e.Name, e.Rev, e.Info
	case *expr.Target:
		target, name, rev, info = true, e.Name, e.Rev, e.Info
	default:
		return nil
	}
	var data []byte
	if info != nil {
		b, err := xt.Marshal(xt.TableFamily(fam), rev, info)
		if err != nil {
			return &Xt{Target: target, Name: name, Rev: rev}
		}
		data = b
	}
	return XtFromMatch(fam, target, name, rev, data)
}

// xtAlign is XT_ALIGN: the kernel pads every payload to 8 bytes.
func xtAlign(n int) int { return (n + 7) &^ 7 }

// xtSized reports whether data can be a struct whose fields take min bytes
// and whose sizeof is size: at least the fields, at most XT_ALIGN(size).
func xtSized(data []byte, min, size int) bool {
	return len(data) >= min && len(data) <= xtAlign(size)
}

func xtIPFamily(fam Family) bool {
	return fam == FamilyIPv4 || fam == FamilyIPv6
}

func decodeXtMatch(fam Family, name string, rev uint32, data []byte) any {
	switch name {
	case "tcp":
		// struct xt_tcp (xt_tcpudp.h): spts[2], dpts[2] u16, option,
		// flg_mask, flg_cmp, invflags u8.
		if rev != 0 || !xtSized(data, 12, 12) {
			return nil
		}
	case "udp":
		// struct xt_udp (xt_tcpudp.h): spts[2], dpts[2] u16, invflags u8.
		if rev != 0 || !xtSized(data, 9, 10) {
			return nil
		}
	case "conntrack":
		// struct xt_conntrack_mtinfo1/2/3 (xt_conntrack.h).
		if !xtIPFamily(fam) {
			return nil
		}
		switch rev {
		case 1:
			if !xtSized(data, 152, 152) {
				return nil
			}
		case 2:
			if !xtSized(data, 154, 156) {
				return nil
			}
		case 3:
			if !xtSized(data, 162, 164) {
				return nil
			}
		default:
			return nil
		}
	case "addrtype":
		// struct xt_addrtype_info (rev 0) and xt_addrtype_info_v1
		// (xt_addrtype.h).
		switch rev {
		case 0:
			if !xtSized(data, 12, 12) {
				return nil
			}
		case 1:
			if !xtSized(data, 8, 8) {
				return nil
			}
		default:
			return nil
		}
	case "comment":
		// struct xt_comment_info (xt_comment.h): char comment[256].
		if rev != 0 || len(data) != xt.CommentSize {
			return nil
		}
	case "multiport":
		if m := decodeMultiport(rev, data); m != nil {
			return m
		}
		return nil
	case "state":
		// struct xt_state_info (xt_state.h): unsigned int statemask.
		if rev != 0 || !xtSized(data, 4, 4) {
			return nil
		}
		return &XtState{Mask: binary.NativeEndian.Uint32(data)}
	case "mark":
		// struct xt_mark_mtinfo1 (xt_mark.h): mark, mask u32, invert u8.
		if rev != 1 || !xtSized(data, 9, 12) {
			return nil
		}
		return &XtMark{
			Value:  binary.NativeEndian.Uint32(data),
			Mask:   binary.NativeEndian.Uint32(data[4:]),
			Invert: data[8] != 0,
		}
	default:
		return nil
	}
	info, err := xt.Unmarshal(name, xt.TableFamily(fam), rev, data)
	if err != nil {
		return nil
	}
	switch c := info.(type) {
	case *xt.ConntrackMtinfo1:
		conntrackHostPorts(&c.ConntrackMtinfoBase, data)
	case *xt.ConntrackMtinfo2:
		conntrackHostPorts(&c.ConntrackMtinfoBase, data)
	case *xt.Comment:
		// The kernel keeps the comment NUL-terminated; the xt package
		// trims only the NULs at the end of the array, so what follows a
		// first NUL (stale bytes) would stay.
		s := string(*c)
		for i := 0; i < len(s); i++ {
			if s[i] == 0 {
				s = s[:i]
				break
			}
		}
		cc := xt.Comment(s)
		return &cc
	}
	return info
}

// conntrackHostPorts puts the ports of a conntrack revision 1 or 2 in host
// order, as revision 3 (which iptables-nft loads) keeps them: the older
// revisions hold them as __be16, which the xt package reads as host order.
// After it, every conntrack Info has its ports in host order.
func conntrackHostPorts(b *xt.ConntrackMtinfoBase, data []byte) {
	// Eight addresses and masks of 16 bytes, expires_min and _max, l4proto;
	// then origsrc, origdst, replsrc and repldst ports.
	const ports = 8*16 + 8 + 2
	be := binary.BigEndian
	b.OrigSrcPort = be.Uint16(data[ports:])
	b.OrigDstPort = be.Uint16(data[ports+2:])
	b.ReplSrcPort = be.Uint16(data[ports+4:])
	b.ReplDstPort = be.Uint16(data[ports+6:])
}

// decodeMultiport decodes struct xt_multiport (rev 0) and
// xt_multiport_v1 (rev 1) of xt_multiport.h: flags (0 source, 1
// destination, 2 either), count, ports[15] in host order; rev 1 adds
// pflags[15], where pflags[i] set makes ports[i]..ports[i+1] a range, and
// invert.
func decodeMultiport(rev uint32, data []byte) *Multiport {
	const maxPorts = 15
	var min, size int
	switch rev {
	case 0:
		min, size = 32, 32
	case 1:
		min, size = 48, 48
	default:
		return nil
	}
	if !xtSized(data, min, size) {
		return nil
	}
	m := &Multiport{}
	switch data[0] {
	case 0:
		m.Src = true
	case 1:
		m.Dst = true
	case 2:
		m.Src, m.Dst = true, true
	default:
		return nil
	}
	count := int(data[1])
	if count > maxPorts {
		return nil
	}
	port := func(i int) uint16 { return binary.NativeEndian.Uint16(data[2+2*i:]) }
	for i := 0; i < count; i++ {
		lo := port(i)
		hi := lo
		if rev == 1 && data[32+i] != 0 {
			// A range takes two slots; the kernel's checkentry does not
			// stop one from starting in the last, so guard it here.
			if i+1 >= count {
				return nil
			}
			i++
			hi = port(i)
		}
		m.Ranges = append(m.Ranges, [2]uint16{lo, hi})
	}
	if rev == 1 {
		m.Invert = data[47] != 0
	}
	return m
}

// NAT range flags (nf_nat.h).
const (
	natMapIPs         = 1 << 0
	natProtoSpecified = 1 << 1
	natProtoOffset    = 1 << 5
	natNetmap         = 1 << 6
)

func decodeXtTarget(fam Family, name string, rev uint32, data []byte) any {
	switch name {
	case "DNAT", "SNAT", "REDIRECT", "MASQUERADE":
		if t := decodeNAT(fam, name, rev, data); t != nil {
			return t
		}
		return nil
	case "MARK":
		// struct xt_mark_tginfo2 (xt_mark.h): mark, mask u32. Revisions
		// 0 and 1 use unsigned long and differ by architecture.
		if rev != 2 || !xtSized(data, 8, 8) {
			return nil
		}
		return &XtMark{
			Value: binary.NativeEndian.Uint32(data),
			Mask:  binary.NativeEndian.Uint32(data[4:]),
		}
	}
	return nil
}

// decodeNAT decodes the NAT targets' payloads (nf_nat.h): struct
// nf_nat_ipv4_multi_range_compat for the IPv4 revision 0 of every NAT
// target; struct nf_nat_range for IPv6 MASQUERADE and REDIRECT (rev 0)
// and DNAT/SNAT rev 1 of both families; nf_nat_range2 for rev 2.
func decodeNAT(fam Family, name string, rev uint32, data []byte) *NATTarget {
	var (
		flags    uint32
		min, max netip.Addr
		pmin     uint16
		pmax     uint16
	)
	compat := fam == FamilyIPv4 && rev == 0
	switch {
	case compat:
		// rangesize u32 (always 1), then nf_nat_ipv4_range: flags u32,
		// min_ip, max_ip __be32, min, max __be16.
		if !xtSized(data, 20, 20) || binary.NativeEndian.Uint32(data) != 1 {
			return nil
		}
		flags = binary.NativeEndian.Uint32(data[4:])
		min = netip.AddrFrom4([4]byte(data[8:12]))
		max = netip.AddrFrom4([4]byte(data[12:16]))
		pmin = binary.BigEndian.Uint16(data[16:])
		pmax = binary.BigEndian.Uint16(data[18:])
	case fam == FamilyIPv4 || fam == FamilyIPv6:
		// flags u32, min_addr, max_addr union nf_inet_addr (16 bytes),
		// min_proto, max_proto __be16; rev 2 adds base_proto.
		switch {
		case rev == 1 && (name == "DNAT" || name == "SNAT"),
			rev == 0 && (name == "MASQUERADE" || name == "REDIRECT") && fam == FamilyIPv6:
			if !xtSized(data, 40, 40) {
				return nil
			}
		case rev == 2 && (name == "DNAT" || name == "SNAT"):
			if !xtSized(data, 42, 44) {
				return nil
			}
		default:
			return nil
		}
		flags = binary.NativeEndian.Uint32(data)
		if fam == FamilyIPv4 {
			min = netip.AddrFrom4([4]byte(data[4:8]))
			max = netip.AddrFrom4([4]byte(data[20:24]))
		} else {
			min = netip.AddrFrom16([16]byte(data[4:20]))
			max = netip.AddrFrom16([16]byte(data[20:36]))
		}
		pmin = binary.BigEndian.Uint16(data[36:])
		pmax = binary.BigEndian.Uint16(data[38:])
	default:
		return nil
	}
	// A port offset (DNAT's "/BASE") or netmap maps each packet to its
	// own address or port, which NATTarget cannot say.
	if flags&(natProtoOffset|natNetmap) != 0 {
		return nil
	}
	t := &NATTarget{Kind: name}
	if flags&natMapIPs != 0 && (name == "DNAT" || name == "SNAT") {
		t.Addr, t.AddrMax = min, max
	}
	if flags&natProtoSpecified != 0 {
		t.Port, t.PortMax = pmin, pmax
	}
	return t
}
