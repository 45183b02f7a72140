package firewall

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/netns"
)

// Read reads the ruleset of a network namespace: every nftables table
// and, unless opts.NoLegacy, the legacy iptables tables. The nftables part
// is one consistent generation of the ruleset: a dump the kernel marks
// interrupted, or dumps of different generations, are read again. It is
// safe for concurrent use.
func Read(ctx context.Context, opts Options) (*Ruleset, error) {
	// Two sockets: the second dumps the sets' elements while the first
	// dumps the rules, so that the kernel's walk of a big set and the
	// decoding of the rules overlap.
	var cs [2]*nlConn
	for i := range cs {
		c, err := dialNetlink(ctx, opts.NetNS, unix.NETLINK_NETFILTER)
		if err != nil {
			return nil, fmt.Errorf("firewall: %w", permission(err))
		}
		defer c.close()
		cs[i] = c
	}
	var rs *Ruleset
	for try := 0; ; try++ {
		if try == 5 {
			return nil, errors.New("firewall: the ruleset kept changing while it was read")
		}
		var again bool
		var err error
		rs, again, err = readNFT(ctx, cs[0], cs[1])
		if err != nil {
			return nil, err
		}
		if !again {
			break
		}
	}
	if !opts.NoLegacy {
		tables, incomplete := readLegacy(ctx, opts.NetNS)
		rs.Tables = append(rs.Tables, tables...)
		rs.Incomplete = append(rs.Incomplete, incomplete...)
	}
	return rs, nil
}

// withConn opens a netlink socket of the family in the namespace (this
// one for "") and hands it to fn; the context's end stops it.
func withConn(ctx context.Context, ns string, family int, fn func(*nlConn) error) error {
	c, err := dialNetlink(ctx, ns, family)
	if err != nil {
		return fmt.Errorf("firewall: %w", permission(err))
	}
	defer c.close()
	return fn(c)
}

// permission makes a refusal by the kernel an ErrPermission too.
func permission(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%w: %w", ErrPermission, err)
	}
	return err
}

// nfDump sends one nf_tables dump request (of every family, unless the
// attributes name an object of one) and hands each reply to fn.
func nfDump(c *nlConn, msgType uint16, fam Family, attrs []byte, fn func(flags uint16, data []byte) error) error {
	body := make([]byte, 4, 4+len(attrs))
	body[0] = byte(fam)
	body = append(body, attrs...)
	return c.dump(unix.NFNL_SUBSYS_NFTABLES<<8|msgType, body, fn)
}

// generation checks that the replies of the dumps that make up one
// reading are all of one generation of the ruleset, and that the kernel
// marked none interrupted. It is safe for concurrent use.
type generation struct {
	mu            sync.Mutex
	gen           uint16
	seen, changed bool
}

// check checks one reply's header flags and nfgenmsg, and says whether
// the reading is still of one generation.
func (g *generation) check(flags uint16, data []byte) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if flags&unix.NLM_F_DUMP_INTR != 0 || len(data) < 4 {
		g.changed = true
	} else if gen := binary.BigEndian.Uint16(data[2:]); !g.seen {
		g.gen, g.seen = gen, true
	} else if gen != g.gen {
		g.changed = true
	}
	return !g.changed
}

func (g *generation) markChanged() {
	g.mu.Lock()
	g.changed = true
	g.mu.Unlock()
}

func (g *generation) isChanged() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

// readNFT reads every nftables table once, the elements over c2. again is
// true when the ruleset changed while it was read.
func readNFT(ctx context.Context, c, c2 *nlConn) (rs *Ruleset, again bool, err error) {
	b := newBuilder()
	g := &generation{}
	type step struct {
		what string
		typ  uint16
		add  func([]byte) error
	}
	dumps := func(steps ...step) error {
		for _, s := range steps {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := nfDump(c, s.typ, FamilyUnspec, nil, func(flags uint16, data []byte) error {
				if !g.check(flags, data) {
					return nil
				}
				return s.add(data)
			})
			if errors.Is(err, errInterrupted) {
				g.markChanged()
				return nil
			}
			if err != nil {
				return fmt.Errorf("firewall: list %s: %w", s.what, permission(err))
			}
		}
		return nil
	}
	// The generation before and after: a change between two dumps that
	// happen to list nothing would show nowhere else.
	if err := genCheck(c, g); err != nil {
		return nil, false, err
	}
	// Sets need their tables, rules their chains.
	err = dumps(step{"tables", unix.NFT_MSG_GETTABLE, b.addTable},
		step{"chains", unix.NFT_MSG_GETCHAIN, b.addChain},
		step{"sets", unix.NFT_MSG_GETSET, b.addSet})
	if g.isChanged() {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	// From here the elements go to the sets and the rules and objects to
	// the chains and tables: the two never touch the same data.
	var wg sync.WaitGroup
	var elemErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		elemErr = readElements(ctx, c2, b, g)
	}()
	err = dumps(step{"objects", unix.NFT_MSG_GETOBJ, b.addObject},
		step{"rules", unix.NFT_MSG_GETRULE, b.addRule})
	wg.Wait()
	if err == nil && elemErr == nil {
		err = genCheck(c, g)
	}
	if g.isChanged() {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	if elemErr != nil {
		return nil, false, elemErr
	}
	return &b.rs, false, nil
}

// genCheck asks for the ruleset's generation (NFT_MSG_GETGEN) and checks
// it with g: its reply carries it as every dump's replies do.
func genCheck(c *nlConn, g *generation) error {
	err := c.request(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN, 0, make([]byte, 4), func(flags uint16, data []byte) error {
		g.check(flags, data)
		return nil
	})
	if err != nil {
		return fmt.Errorf("firewall: ruleset generation: %w", permission(err))
	}
	return nil
}

// readElements dumps the elements of every set, one dump per set (the
// kernel has no dump of all elements).
func readElements(ctx context.Context, c *nlConn, b *builder, g *generation) error {
	var req []byte
	for _, t := range b.rs.Tables {
		for _, s := range t.Sets {
			if err := ctx.Err(); err != nil {
				return err
			}
			req = req[:0]
			req = appendAttr(req, unix.NFTA_SET_ELEM_LIST_TABLE, t.Name)
			req = appendAttr(req, unix.NFTA_SET_ELEM_LIST_SET, s.Name)
			err := nfDump(c, unix.NFT_MSG_GETSETELEM, t.Family, req, func(flags uint16, data []byte) error {
				if !g.check(flags, data) {
					return nil
				}
				return b.addElems(data)
			})
			if errors.Is(err, unix.ENOENT) || errors.Is(err, errInterrupted) {
				g.markChanged() // or the set went away since the set dump
				return nil
			}
			if err != nil {
				return fmt.Errorf("firewall: list elements of set %s in table %s: %w", s.Name, t.Name, permission(err))
			}
		}
	}
	return nil
}

// appendAttr appends a NUL-terminated string attribute.
func appendAttr(b []byte, typ uint16, s string) []byte {
	n := 4 + len(s) + 1
	b = binary.NativeEndian.AppendUint16(b, uint16(n))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, s...)
	b = append(b, 0)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// readLegacy reads the legacy iptables tables of the namespace: the tables
// x_tables has (/proc/net/ip_tables_names, per namespace), through
// iptables-legacy-save run inside it. A table it cannot read is named in
// incomplete.
func readLegacy(ctx context.Context, ns string) (tables []*Table, incomplete []string) {
	run := func() {
		for _, l := range []struct {
			fam   Family
			names string
			tool  string
		}{
			{FamilyIPv4, "ip_tables_names", "iptables-legacy-save"},
			{FamilyIPv6, "ip6_tables_names", "ip6tables-legacy-save"},
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
			ts, err := ParseIptablesSave(l.fam, string(out))
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

func famName(f Family) string {
	switch f {
	case FamilyIPv4:
		return "ip"
	case FamilyIPv6:
		return "ip6"
	}
	return fmt.Sprintf("family %d", f)
}

// ReadHost reads what the evaluator needs of the machine outside the
// ruleset, in the namespace opts.NetNS (this one for ""): interfaces and
// their addresses, the main and local routing tables, whether policy
// routing is in use, and the forwarding and rp_filter sysctls. It is safe
// for concurrent use.
func ReadHost(opts Options) (*Host, error) {
	var b *hostBuilder
	err := withConn(context.Background(), opts.NetNS, unix.NETLINK_ROUTE, func(c *nlConn) error {
		// A dump the kernel marks interrupted (an address or route
		// changed meanwhile) is read again, from the links on.
		for try := 0; try < 5; try++ {
			b = newHostBuilder()
			err := readHost(c, b)
			if !errors.Is(err, errInterrupted) {
				return err
			}
		}
		return errors.New("firewall: the interfaces and routes kept changing while they were read")
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

// readHost dumps links, addresses, routes and rules into b.
func readHost(c *nlConn, b *hostBuilder) error {
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
		// AF_UNSPEC in the family header: every family.
		err := c.dump(s.typ, make([]byte, s.hdr), func(flags uint16, data []byte) error {
			if flags&unix.NLM_F_DUMP_INTR != 0 {
				return errInterrupted
			}
			return s.add(data)
		})
		if errors.Is(err, errInterrupted) {
			return err
		}
		if err != nil {
			return fmt.Errorf("firewall: list %s: %w", s.what, permission(err))
		}
	}
	return nil
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

// nlConn is a netlink socket for dumps. It reads with a buffer large
// enough that the kernel fills 32 KiB batches (it sizes them by the
// largest read so far): a set's dump resumes by walking the set from its
// start, so its cost grows with the square of the number of batches, and
// small batches make a set of 100,000 elements take a second. It is not
// safe for concurrent use.
type nlConn struct {
	ctx     context.Context
	fd      int
	seq     uint32
	scratch []byte // what one read receives
	// arena holds the replies' bytes, which the model keeps pointing
	// into: copied there, a read's buffer can be used again.
	arena []byte
}

// errInterrupted is dump's error when the kernel marked the dump
// interrupted: the objects changed while it went on.
var errInterrupted = errors.New("netlink dump interrupted by a change")

const (
	nlReadSize  = 64 << 10
	nlArenaSize = 256 << 10
)

// dialNetlink opens a netlink socket of the protocol in the namespace
// (this one for ""): a socket stays in the namespace it was made in.
func dialNetlink(ctx context.Context, ns string, proto int) (*nlConn, error) {
	var fd int
	var err error
	open := func() { fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto) }
	if ns == "" {
		open()
	} else if nerr := netns.Do(ns, open); nerr != nil {
		return nil, nerr
	}
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	// Reads wake up now and then to see whether the context has ended.
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink receive timeout: %w", err)
	}
	return &nlConn{ctx: ctx, fd: fd, scratch: make([]byte, nlReadSize)}, nil
}

func (c *nlConn) close() { unix.Close(c.fd) }

// keep copies b into the arena and returns the copy.
func (c *nlConn) keep(b []byte) []byte {
	if len(c.arena)+len(b) > cap(c.arena) {
		c.arena = make([]byte, 0, max(nlArenaSize, len(b)))
	}
	start := len(c.arena)
	c.arena = append(c.arena, b...)
	return c.arena[start:len(c.arena):len(c.arena)]
}

// dump sends a dump request of the message type with the body (the
// family header and attributes) and hands each reply's header flags and
// body to fn, until the kernel says done. The first error fn returns is
// dump's, after the rest of the replies are read. The kernel's error is
// a unix.Errno.
func (c *nlConn) dump(typ uint16, body []byte, fn func(flags uint16, data []byte) error) error {
	return c.request(typ, unix.NLM_F_DUMP, body, fn)
}

// request is dump for a dump (flags NLM_F_DUMP), and for a request of one
// object (flags 0) whose reply ends with the kernel's acknowledgement.
func (c *nlConn) request(typ, flags uint16, body []byte, fn func(flags uint16, data []byte) error) error {
	isDump := flags&unix.NLM_F_DUMP != 0
	if !isDump {
		flags |= unix.NLM_F_ACK
	}
	c.seq++
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	msg = append(msg, body...)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|flags)
	binary.NativeEndian.PutUint32(msg[8:], c.seq)
	if err := unix.Sendto(c.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	var ferr error
	for {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		n, _, err := unix.Recvfrom(c.fd, c.scratch, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			continue // the receive timeout: look at the context again
		case err != nil:
			return fmt.Errorf("netlink receive: %w", err)
		}
		b := c.keep(c.scratch[:n])
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(b))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return fmt.Errorf("netlink message of length %d in %d bytes", l, len(b))
			}
			mtyp := binary.NativeEndian.Uint16(b[4:])
			flags := binary.NativeEndian.Uint16(b[6:])
			seq := binary.NativeEndian.Uint32(b[8:])
			data := b[unix.NLMSG_HDRLEN:l:l]
			b = b[min((l+3)&^3, len(b)):]
			if seq != c.seq {
				continue // left over from a dump given up on
			}
			switch mtyp {
			case unix.NLMSG_DONE, unix.NLMSG_ERROR:
				if len(data) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(data)); e < 0 {
						return unix.Errno(-e)
					}
				}
				if mtyp == unix.NLMSG_DONE || !isDump {
					// A dump whose last batch holds nothing but this
					// message shows only here that it was interrupted.
					if flags&unix.NLM_F_DUMP_INTR != 0 && ferr == nil {
						ferr = errInterrupted
					}
					return ferr
				}
				continue // an acknowledgement of part of a dump
			case unix.NLMSG_NOOP, unix.NLMSG_OVERRUN:
				continue
			}
			if ferr == nil {
				ferr = fn(flags, data)
			}
		}
	}
}
