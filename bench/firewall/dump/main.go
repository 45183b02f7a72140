//go:build linux

// Command dump is the firewall benchmark's floor: it asks the kernel for
// the whole nftables ruleset of its network namespace over netlink, as nft
// list ruleset does (the generation, tables, chains, sets, every set's
// elements, objects, flowtables, rules), and decodes nothing but the set
// names it needs to ask for their elements. What it prints is only how
// much it received.
//
// With -lib it reads the same through github.com/google/nftables instead
// (tables, chains, sets and their elements, the rules of every chain),
// which decodes every message into the library's types: the cost of the
// library alone, before portctl does anything with what it read.
//
//	dump          # messages and bytes received
//	dump -lib     # tables, chains, rules, sets and elements read
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// nf_tables message types (linux/netfilter/nf_tables.h), in the
// NFNL_SUBSYS_NFTABLES subsystem.
const (
	subsysNFTables = 10
	msgGetTable    = 1
	msgGetChain    = 4
	msgGetRule     = 7
	msgGetSet      = 10
	msgGetSetElem  = 13
	msgGetGen      = 16
	msgGetObj      = 19
	msgGetFlowtab  = 23

	attrSetTable = 1 // NFTA_SET_TABLE, and NFTA_SET_ELEM_LIST_TABLE
	attrSetName  = 2 // NFTA_SET_NAME, and NFTA_SET_ELEM_LIST_SET
)

func main() {
	lib := flag.Bool("lib", false, "read through github.com/google/nftables, decoding everything")
	profile := flag.String("cpuprofile", "", "write a CPU profile to `FILE`")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "dump:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	var err error
	if *lib {
		err = viaLibrary()
	} else {
		err = raw()
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "dump:", err)
		os.Exit(1)
	}
}

// set names one set: its family and table, and its name.
type set struct {
	family      uint8
	table, name string
}

// raw dumps everything over one netlink socket and counts what comes back.
func raw() error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink bind: %w", err)
	}
	d := &dumper{fd: fd, buf: make([]byte, 64<<10)}
	if err := d.ask(msgGetGen, unix.NLM_F_REQUEST, unix.AF_UNSPEC, nil, nil); err != nil {
		return err
	}
	for _, m := range []uint16{msgGetTable, msgGetChain} {
		if err := d.dump(m, unix.AF_UNSPEC, nil, nil); err != nil {
			return err
		}
	}
	var sets []set
	if err := d.dump(msgGetSet, unix.AF_UNSPEC, nil, func(family uint8, attrs []byte) {
		var s set
		s.family = family
		for len(attrs) >= 4 {
			l := int(binary.NativeEndian.Uint16(attrs))
			t := binary.NativeEndian.Uint16(attrs[2:]) & 0x3fff
			if l < 4 || l > len(attrs) {
				break
			}
			v := attrs[4:l]
			switch t {
			case attrSetTable:
				s.table = cstring(v)
			case attrSetName:
				s.name = cstring(v)
			}
			attrs = attrs[min(len(attrs), (l+3)&^3):]
		}
		sets = append(sets, s)
	}); err != nil {
		return err
	}
	for _, s := range sets {
		a := attr(nil, attrSetTable, s.table)
		a = attr(a, attrSetName, s.name)
		if err := d.dump(msgGetSetElem, s.family, a, nil); err != nil {
			return fmt.Errorf("elements of set %s: %w", s.name, err)
		}
	}
	for _, m := range []uint16{msgGetObj, msgGetFlowtab, msgGetRule} {
		if err := d.dump(m, unix.AF_UNSPEC, nil, nil); err != nil {
			return err
		}
	}
	fmt.Printf("%d messages, %d bytes in %d reads; %d sets\n", d.msgs, d.bytes, d.reads, len(sets))
	return nil
}

type dumper struct {
	fd                 int
	buf                []byte
	seq                uint32
	msgs, bytes, reads int
}

// dump sends one dump request and reads its answer to the end, calling
// each (if not nil) with every message's family and attributes.
func (d *dumper) dump(msg uint16, family uint8, attrs []byte, each func(family uint8, attrs []byte)) error {
	return d.ask(msg, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, family, attrs, each)
}

// ask sends one request and reads its answer: to NLMSG_DONE for a dump,
// else the one message that answers it (the generation has no dump).
func (d *dumper) ask(msg, flags uint16, family uint8, attrs []byte, each func(family uint8, attrs []byte)) error {
	d.seq++
	req := make([]byte, unix.NLMSG_HDRLEN+4+len(attrs))
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], subsysNFTables<<8|msg)
	binary.NativeEndian.PutUint16(req[6:], flags)
	binary.NativeEndian.PutUint32(req[8:], d.seq)
	req[unix.NLMSG_HDRLEN] = family // nfgenmsg: family, version 0, res_id 0
	copy(req[unix.NLMSG_HDRLEN+4:], attrs)
	if err := unix.Sendto(d.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		d.reads++
		d.bytes += n
		b := d.buf[:n]
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(b))
			typ := binary.NativeEndian.Uint16(b[4:])
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return fmt.Errorf("netlink: a message of %d bytes in %d", l, len(b))
			}
			d.msgs++
			switch typ {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if e := int32(binary.NativeEndian.Uint32(b[unix.NLMSG_HDRLEN:])); e != 0 {
					return fmt.Errorf("netlink: message type %d: %w", msg, unix.Errno(-e))
				}
				return nil
			}
			if each != nil && l >= unix.NLMSG_HDRLEN+4 {
				each(b[unix.NLMSG_HDRLEN], b[unix.NLMSG_HDRLEN+4:l])
			}
			if flags&unix.NLM_F_DUMP == 0 {
				return nil
			}
			b = b[min(len(b), (l+3)&^3):]
		}
	}
}

// attr appends a string attribute, NUL-terminated and padded.
func attr(b []byte, typ uint16, s string) []byte {
	l := 4 + len(s) + 1
	a := make([]byte, (l+3)&^3)
	binary.NativeEndian.PutUint16(a, uint16(l))
	binary.NativeEndian.PutUint16(a[2:], typ)
	copy(a[4:], s)
	return append(b, a...)
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// viaLibrary reads the ruleset through github.com/google/nftables.
func viaLibrary() error {
	// One lasting socket: without it the library opens and closes a netlink
	// socket for every call, one per set (about 2 ms each, here).

	c, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return err
	}
	tables, err := c.ListTables()
	if err != nil {
		return fmt.Errorf("tables: %w", err)
	}
	chains, err := c.ListChains()
	if err != nil {
		return fmt.Errorf("chains: %w", err)
	}
	var nrules, nsets, nelems int
	for _, t := range tables {
		sets, err := c.GetSets(t)
		if err != nil {
			return fmt.Errorf("sets of %s: %w", t.Name, err)
		}
		for _, s := range sets {
			e, err := c.GetSetElements(s)
			if err != nil {
				return fmt.Errorf("elements of %s: %w", s.Name, err)
			}
			nsets++
			nelems += len(e)
		}
	}
	for _, ch := range chains {
		r, err := c.GetRules(ch.Table, ch)
		if err != nil {
			return fmt.Errorf("rules of %s: %w", ch.Name, err)
		}
		nrules += len(r)
	}
	fmt.Printf("%d tables, %d chains, %d rules, %d sets, %d elements\n", len(tables), len(chains), nrules, nsets, nelems)
	return nil
}
