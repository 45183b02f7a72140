package firewall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/netns"
)

// Read reads the ruleset of a network namespace: every nftables table
// and, unless opts.NoLegacy, the legacy iptables tables. The nftables part
// is one consistent generation of the ruleset: a dump the kernel marks
// interrupted, or dumps of different generations, are read again.
func Read(ctx context.Context, opts Options) (*Ruleset, error) {
	var rs *Ruleset
	err := withConn(ctx, opts.NetNS, unix.NETLINK_NETFILTER, func(c *netlink.Conn) error {
		var err error
		for try := 0; try < 5; try++ {
			var again bool
			rs, again, err = readNFT(ctx, c)
			if err != nil || !again {
				return err
			}
		}
		return errors.New("firewall: the ruleset kept changing while it was read")
	})
	if err != nil {
		return nil, err
	}
	if !opts.NoLegacy {
		tables, incomplete := readLegacy(ctx, opts.NetNS)
		rs.Tables = append(rs.Tables, tables...)
		rs.Incomplete = append(rs.Incomplete, incomplete...)
	}
	return rs, nil
}

// withConn dials netlink in the namespace (this one for ""), with the
// context's deadline, and hands the connection to fn.
func withConn(ctx context.Context, ns string, family int, fn func(*netlink.Conn) error) error {
	cfg := &netlink.Config{}
	if ns != "" {
		f, err := os.Open(ns)
		if err != nil {
			return fmt.Errorf("firewall: network namespace: %w", err)
		}
		defer f.Close()
		cfg.NetNS = int(f.Fd())
	}
	c, err := netlink.Dial(family, cfg)
	if err != nil {
		return fmt.Errorf("firewall: netlink: %w", permission(err))
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	// Dumps of big rulesets come in many messages: a larger buffer means
	// fewer system calls. Failing to get one only costs speed.
	_ = c.SetReadBuffer(1 << 20)
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err = fn(c)
	if ctx.Err() != nil {
		return fmt.Errorf("firewall: %w", ctx.Err())
	}
	return err
}

// permission makes a refusal by the kernel an ErrPermission too.
func permission(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%w: %w", ErrPermission, err)
	}
	return err
}

// nfDump sends one nf_tables dump request (of every family, unless the
// attributes name an object of one) and returns the replies.
func nfDump(c *netlink.Conn, msgType uint16, fam nftables.TableFamily, attrs []byte) ([]netlink.Message, error) {
	data := make([]byte, 4, 4+len(attrs))
	data[0] = byte(fam)
	data = append(data, attrs...)
	return c.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | msgType),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: data,
	})
}

// readNFT reads every nftables table once. again is true when the
// ruleset changed while it was read.
func readNFT(ctx context.Context, c *netlink.Conn) (rs *Ruleset, again bool, err error) {
	b := newBuilder()
	gen, first := uint16(0), true
	// consistent checks a dump's messages: all of one generation, and
	// none marked interrupted.
	consistent := func(msgs []netlink.Message) bool {
		for _, m := range msgs {
			if m.Header.Flags&netlink.DumpInterrupted != 0 || len(m.Data) < 4 {
				return false
			}
			g := uint16(m.Data[2])<<8 | uint16(m.Data[3])
			if first {
				gen, first = g, false
			} else if g != gen {
				return false
			}
		}
		return true
	}
	steps := []struct {
		what string
		typ  uint16
		add  func([]byte) error
	}{
		{"tables", unix.NFT_MSG_GETTABLE, b.addTable},
		{"chains", unix.NFT_MSG_GETCHAIN, b.addChain},
		{"sets", unix.NFT_MSG_GETSET, b.addSet},
		{"objects", unix.NFT_MSG_GETOBJ, b.addObject},
		{"rules", unix.NFT_MSG_GETRULE, b.addRule},
	}
	for i, s := range steps {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		msgs, err := nfDump(c, s.typ, nftables.TableFamilyUnspecified, nil)
		if err != nil {
			return nil, false, fmt.Errorf("firewall: list %s: %w", s.what, permission(err))
		}
		if !consistent(msgs) {
			return nil, true, nil
		}
		for _, m := range msgs {
			if err := s.add(m.Data); err != nil {
				return nil, false, fmt.Errorf("firewall: %w", err)
			}
		}
		if s.typ == unix.NFT_MSG_GETSET {
			// Elements come set by set, between the sets and the rules.
			_ = i
			if again, err := readElements(ctx, c, b, consistent); again || err != nil {
				return nil, again, err
			}
		}
	}
	return &b.rs, false, nil
}

// readElements dumps the elements of every set, one dump per set (the
// kernel has no dump of all elements).
func readElements(ctx context.Context, c *netlink.Conn, b *builder, consistent func([]netlink.Message) bool) (again bool, err error) {
	var req []byte
	for _, t := range b.rs.Tables {
		for _, s := range t.Sets {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			req = req[:0]
			req = appendAttr(req, unix.NFTA_SET_ELEM_LIST_TABLE, t.Name)
			req = appendAttr(req, unix.NFTA_SET_ELEM_LIST_SET, s.Name)
			msgs, err := nfDump(c, unix.NFT_MSG_GETSETELEM, t.Family, req)
			if err != nil {
				if errors.Is(err, unix.ENOENT) {
					return true, nil // the set went away since the set dump
				}
				return false, fmt.Errorf("firewall: list elements of set %s in table %s: %w", s.Name, t.Name, permission(err))
			}
			if !consistent(msgs) {
				return true, nil
			}
			for _, m := range msgs {
				if err := b.addElems(m.Data); err != nil {
					return false, fmt.Errorf("firewall: %w", err)
				}
			}
		}
	}
	return false, nil
}

// appendAttr appends a NUL-terminated string attribute.
func appendAttr(b []byte, typ uint16, s string) []byte {
	n := 4 + len(s) + 1
	b = append(b, byte(n), byte(n>>8), byte(typ), byte(typ>>8))
	b = append(b, s...)
	b = append(b, 0)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// parseIptablesSave is ParseIptablesSave (iptables.go). TEMPORARY: until
// it lands, a legacy table present is reported as not read.
var parseIptablesSave = func(fam nftables.TableFamily, text string) ([]*Table, error) {
	return nil, errors.New("no iptables-save parser in this build")
}

// readLegacy reads the legacy iptables tables of the namespace: the tables
// x_tables has (/proc/net/ip_tables_names, per namespace), through
// iptables-legacy-save run inside it. A table it cannot read is named in
// incomplete.
func readLegacy(ctx context.Context, ns string) (tables []*Table, incomplete []string) {
	run := func() {
		for _, l := range []struct {
			fam   nftables.TableFamily
			names string
			tool  string
		}{
			{nftables.TableFamilyIPv4, "ip_tables_names", "iptables-legacy-save"},
			{nftables.TableFamilyIPv6, "ip6_tables_names", "ip6tables-legacy-save"},
		} {
			// thread-self: /proc/net is the namespace of the process's
			// main thread, not of this thread, which may have entered
			// another.
			names, _ := os.ReadFile("/proc/thread-self/net/" + l.names)
			have := strings.Fields(string(names))
			if len(have) == 0 {
				continue
			}
			path, err := exec.LookPath(l.tool)
			if err != nil {
				incomplete = append(incomplete, fmt.Sprintf("legacy %s tables %s: %s not found", famName(l.fam), strings.Join(have, ", "), l.tool))
				continue
			}
			// Started from this locked thread, the tool runs in its
			// namespace.
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, path)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				incomplete = append(incomplete, fmt.Sprintf("legacy %s tables %s: %s: %v: %s", famName(l.fam), strings.Join(have, ", "), l.tool, err, strings.TrimSpace(stderr.String())))
				continue
			}
			if !bytes.Contains(out, []byte("\n*")) && !bytes.HasPrefix(out, []byte("*")) {
				continue
			}
			ts, err := parseIptablesSave(l.fam, string(out))
			if err != nil {
				incomplete = append(incomplete, fmt.Sprintf("legacy %s tables %s: %s: %v", famName(l.fam), strings.Join(have, ", "), l.tool, err))
				continue
			}
			tables = append(tables, ts...)
		}
	}
	if ns == "" {
		run()
		return tables, incomplete
	}
	if err := netns.Do(ns, run); err != nil {
		incomplete = append(incomplete, fmt.Sprintf("legacy iptables tables: %v", err))
	}
	return tables, incomplete
}

func famName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	}
	return fmt.Sprintf("family %d", f)
}

// ReadHost reads what the evaluator needs of the machine outside the
// ruleset, in the namespace opts.NetNS (this one for ""): interfaces and
// their addresses, the main and local routing tables, whether policy
// routing is in use, and the forwarding and rp_filter sysctls.
func ReadHost(opts Options) (*Host, error) {
	b := newHostBuilder()
	err := withConn(context.Background(), opts.NetNS, unix.NETLINK_ROUTE, func(c *netlink.Conn) error {
		for _, s := range []struct {
			what string
			typ  uint16
			hdr  int // the size of the request's family header
			add  func([]byte) error
		}{
			{"links", unix.RTM_GETLINK, unix.SizeofIfInfomsg, b.addLink},
			{"addresses", unix.RTM_GETADDR, unix.SizeofIfAddrmsg, b.addAddr},
			{"routes", unix.RTM_GETROUTE, unix.SizeofRtMsg, b.addRoute},
			{"rules", unix.RTM_GETRULE, unix.SizeofRtMsg, b.addRule},
		} {
			msgs, err := c.Execute(netlink.Message{
				Header: netlink.Header{Type: netlink.HeaderType(s.typ), Flags: netlink.Request | netlink.Dump},
				Data:   make([]byte, s.hdr), // AF_UNSPEC: every family
			})
			if err != nil {
				return fmt.Errorf("firewall: list %s: %w", s.what, permission(err))
			}
			for _, m := range msgs {
				if err := s.add(m.Data); err != nil {
					return fmt.Errorf("firewall: %s: %w", s.what, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	h := b.host()
	// /proc/sys/net shows the namespace of the thread that opens it.
	var serr error
	read := func() { serr = readSysctls(h) }
	if opts.NetNS == "" {
		read()
	} else if err := netns.Do(opts.NetNS, read); err != nil {
		return nil, fmt.Errorf("firewall: %w", err)
	}
	if serr != nil {
		return nil, serr
	}
	return h, nil
}

// readSysctls fills the forwarding and rp_filter settings from
// /proc/sys/net. An IPv6 stack turned off has no forwarding file: that
// reads as no forwarding.
func readSysctls(h *Host) error {
	num := func(path string) (int, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		var n int
		if _, err := fmt.Sscan(string(b), &n); err != nil {
			return 0, fmt.Errorf("%s: %q: %w", path, b, err)
		}
		return n, nil
	}
	f4, err := num("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	h.Forward4 = f4 != 0
	if f6, err := num("/proc/sys/net/ipv6/conf/all/forwarding"); err == nil {
		h.Forward6 = f6 != 0
	}
	all, err := num("/proc/sys/net/ipv4/conf/all/rp_filter")
	if err != nil {
		return fmt.Errorf("firewall: %w", err)
	}
	h.RPFilter = make(map[string]int, len(h.Interfaces))
	for _, ifc := range h.Interfaces {
		v, err := num("/proc/sys/net/ipv4/conf/" + ifc.Name + "/rp_filter")
		if err != nil {
			continue // gone since the dump
		}
		h.RPFilter[ifc.Name] = max(v, all)
	}
	return nil
}
