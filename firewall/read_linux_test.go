package firewall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables/expr"

	"github.com/portctl/portctl/internal/testnet"
)

// readRuleset is the ruleset TestIntegrationRead loads: every family, base
// and regular chains, policies, comments, named and anonymous sets,
// intervals, concatenations, maps, verdict maps, timeouts, named objects
// and expressions google/nftables cannot decode (osf, xfrm, rt).
// DEV is the namespace's veth.
const readRuleset = `
table inet filter {
	counter cnt { }
	quota q { over 1 mbytes }
	set blocked4 { type ipv4_addr; flags interval; elements = { 192.0.2.0/24, 198.51.100.7 } }
	set pairs { type ipv4_addr . inet_service; flags interval; elements = { 10.0.0.0/8 . 22-23 } }
	set exact { type ipv4_addr . inet_service; elements = { 10.9.9.9 . 25 } }
	set tmo { type ipv4_addr; flags timeout; timeout 1h; elements = { 203.0.113.9 timeout 10m } }
	set dyn { type ipv4_addr; size 100; flags dynamic,timeout; timeout 1m; }
	map ports { type inet_service : ipv4_addr; elements = { 8080 : 10.1.1.1 } }
	map vm { type inet_service : verdict; elements = { 22 : accept, 80 : jump web } }
	chain web {
		tcp dport 80 counter accept comment "web"
		return
	}
	chain marks {
		ct mark set 0x10
		meta mark set meta mark >> 1
	}
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iifname "lo" accept
		ip saddr @blocked4 drop
		ip saddr . tcp dport @pairs accept
		tcp dport vmap @vm
		tcp dport { 443, 8443 } accept comment "https"
		udp dport 53 counter name "cnt" accept
		tcp dport 9000 osf name "Linux" accept
		ipsec in reqid 1 accept
		rt ip nexthop 10.0.0.1 accept
		update @dyn { ip saddr }
		add @dyn { ip saddr limit rate over 10/second } drop
	}
	chain forward {
		type filter hook forward priority 0; policy accept;
	}
}
table ip nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		tcp dport 8080 dnat to 10.1.1.1:80
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		masquerade
	}
}
table ip6 f6 {
	chain in6 {
		type filter hook input priority 10; policy accept;
		ip6 saddr 2001:db8::/32 drop
	}
}
table netdev ing {
	chain ingress {
		type filter hook ingress device "DEV" priority -500; policy accept;
		ip saddr 192.0.2.1 drop
	}
}
table ip sleepy {
	flags dormant;
	chain c {
		type filter hook input priority 0; policy drop;
	}
}
`

// loadRuleset makes a namespace, loads text into it with nft -f (DEV
// replaced by the namespace's veth) and returns the namespace, the
// path that opens it and the veth's name.
func loadRuleset(t *testing.T, text string) (*testnet.Namespace, string, string) {
	t.Helper()
	n := testnet.NewNamespace(t)
	out, err := exec.Command("ip", "-n", n.Name, "-o", "link", "show", "type", "veth").Output()
	if err != nil {
		t.Fatalf("ip link: %v", err)
	}
	dev, _, _ := strings.Cut(strings.TrimSpace(strings.SplitN(string(out), ":", 3)[1]), "@")
	f := filepath.Join(t.TempDir(), "ruleset.nft")
	if err := os.WriteFile(f, []byte(strings.ReplaceAll(text, "DEV", dev)), 0o644); err != nil {
		t.Fatal(err)
	}
	testnet.Run(t, "ip", "netns", "exec", n.Name, "nft", "-f", f)
	return n, "/run/netns/" + n.Name, dev
}

func findTable(rs *Ruleset, fam Family, name string) *Table {
	for _, t := range rs.Tables {
		if t.Family == fam && t.Name == name {
			return t
		}
	}
	return nil
}

func findChain(t *Table, name string) *Chain {
	if t == nil {
		return nil
	}
	for _, c := range t.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func findSet(t *Table, name string) *Set {
	for _, s := range t.Sets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func TestIntegrationRead(t *testing.T) {
	n, ns, dev := loadRuleset(t, readRuleset)
	// An iptables-nft rule: native payload for -p tcp, xt matches for
	// multiport and comment.
	if _, err := exec.LookPath("iptables-nft"); err != nil {
		t.Fatalf("needs iptables-nft (Debian package iptables; test-deps.sh installs it): %v", err)
	}
	testnet.Run(t, "ip", "netns", "exec", n.Name, "iptables-nft", "-A", "INPUT", "-p", "tcp",
		"-m", "multiport", "--dports", "1,2", "-m", "comment", "--comment", "x", "-j", "ACCEPT")

	rs, err := Read(context.Background(), Options{NetNS: ns, NoLegacy: true})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}

	t.Run("tables", func(t *testing.T) {
		for _, w := range []struct {
			fam     Family
			name    string
			dormant bool
		}{
			{FamilyINet, "filter", false}, {FamilyIPv4, "nat", false},
			{FamilyIPv6, "f6", false}, {FamilyNetdev, "ing", false},
			{FamilyIPv4, "sleepy", true}, {FamilyIPv4, "filter", false},
			{FamilyINet, "t", false},
		} {
			tb := findTable(rs, w.fam, w.name)
			if tb == nil {
				t.Errorf("no table %d %s", w.fam, w.name)
				continue
			}
			if tb.Dormant != w.dormant || tb.Source != NFTables {
				t.Errorf("table %s: dormant %v source %q; want %v %q", w.name, tb.Dormant, tb.Source, w.dormant, NFTables)
			}
		}
	})

	filter := findTable(rs, FamilyINet, "filter")
	if filter == nil {
		t.Fatal("no inet filter")
	}

	t.Run("chains", func(t *testing.T) {
		for _, w := range []struct {
			table *Table
			chain string
			hook  *Hook
		}{
			{filter, "input", &Hook{Num: HookNum(1), Priority: 0, Type: ChainTypeFilter, Policy: PolicyDrop}},
			{filter, "forward", &Hook{Num: HookNum(2), Priority: 0, Type: ChainTypeFilter, Policy: PolicyAccept}},
			{filter, "web", nil},
			{findTable(rs, FamilyIPv4, "nat"), "pre", &Hook{Num: HookNum(0), Priority: -100, Type: ChainTypeNAT, Policy: PolicyAccept}},
			{findTable(rs, FamilyIPv4, "nat"), "post", &Hook{Num: HookNum(4), Priority: 100, Type: ChainTypeNAT, Policy: PolicyAccept}},
			{findTable(rs, FamilyIPv6, "f6"), "in6", &Hook{Num: HookNum(1), Priority: 10, Type: ChainTypeFilter, Policy: PolicyAccept}},
			{findTable(rs, FamilyNetdev, "ing"), "ingress", &Hook{Num: HookNum(0), Priority: -500, Type: ChainTypeFilter, Policy: PolicyAccept, Devices: []string{dev}}},
		} {
			c := findChain(w.table, w.chain)
			if c == nil {
				t.Errorf("no chain %s", w.chain)
				continue
			}
			if c.Table != w.table {
				t.Errorf("chain %s: Table not its table", w.chain)
			}
			if got, want := fmt.Sprintf("%+v", c.Hook), fmt.Sprintf("%+v", w.hook); (c.Hook == nil) != (w.hook == nil) || c.Hook != nil && got != want {
				t.Errorf("chain %s: hook %s; want %s", w.chain, got, want)
			}
		}
	})

	t.Run("rules", func(t *testing.T) {
		in := findChain(filter, "input")
		if len(in.Rules) != 12 {
			t.Fatalf("input has %d rules; want 12", len(in.Rules))
		}
		for i, r := range in.Rules {
			if r.Position != i+1 || r.Chain != in || r.Handle == 0 || len(r.Exprs) == 0 {
				t.Errorf("rule %d: position %d, handle %d, %d expressions, chain %p; want position %d in %p", i, r.Position, r.Handle, len(r.Exprs), r.Chain, i+1, in)
			}
		}
		if c := in.Rules[5].Comment; c != "https" {
			t.Errorf("rule 6 comment %q; want https", c)
		}
		if c := findChain(filter, "web").Rules[0].Comment; c != "web" {
			t.Errorf("web rule comment %q; want web", c)
		}
		// The last expression of each accepting rule is the verdict.
		if v, ok := in.Rules[0].Exprs[len(in.Rules[0].Exprs)-1].(*expr.Verdict); !ok || v.Kind != expr.VerdictAccept {
			t.Errorf("rule 1 ends in %#v; want accept", in.Rules[0].Exprs[len(in.Rules[0].Exprs)-1])
		}
		if v, ok := findChain(filter, "web").Rules[1].Exprs[0].(*expr.Verdict); !ok || v.Kind != expr.VerdictReturn {
			t.Errorf("web's rule 2 is %#v; want return", findChain(filter, "web").Rules[1].Exprs[0])
		}
		// A vmap lookup writes the verdict register.
		found := false
		for _, e := range in.Rules[4].Exprs {
			if l, ok := e.(*expr.Lookup); ok && l.SetName == "vm" && l.IsDestRegSet && l.DestRegister == 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("rule 5 has no lookup of vm into the verdict register: %#v", in.Rules[4].Exprs)
		}
		// The expressions google/nftables cannot decode stay, opaque.
		for i, name := range map[int]string{7: "osf", 8: "xfrm", 9: "rt"} {
			var got []string
			for _, e := range in.Rules[i].Exprs {
				if o, ok := e.(*Opaque); ok {
					got = append(got, o.Name)
					if len(o.Data) == 0 {
						t.Errorf("rule %d: opaque %s without its data", i+1, o.Name)
					}
				}
			}
			if len(got) != 1 || got[0] != name {
				t.Errorf("rule %d: opaque expressions %v; want [%s]", i+1, got, name)
			}
		}
		if _, ok := in.Rules[10].Exprs[len(in.Rules[10].Exprs)-1].(*expr.Dynset); !ok {
			t.Errorf("rule 11 ends in %#v; want a dynset", in.Rules[10].Exprs[len(in.Rules[10].Exprs)-1])
		}
		// A dynset keeps the limit it runs on each element.
		var dyn *expr.Dynset
		for _, e := range in.Rules[11].Exprs {
			if d, ok := e.(*expr.Dynset); ok {
				dyn = d
			}
		}
		if dyn == nil || len(dyn.Exprs) != 1 {
			t.Errorf("rule 12: dynset %#v; want one with its limit", dyn)
		} else if _, ok := dyn.Exprs[0].(*expr.Limit); !ok {
			t.Errorf("rule 12: dynset runs %T; want a limit", dyn.Exprs[0])
		}
		// "ct mark set" writes from a register; a shift is not decoded.
		marks := findChain(filter, "marks")
		if ct, ok := marks.Rules[0].Exprs[1].(*expr.Ct); !ok || !ct.SourceRegister || ct.Key != expr.CtKeyMARK {
			t.Errorf("ct mark set: %#v; want a ct mark write", marks.Rules[0].Exprs)
		}
		shift := false
		for _, e := range marks.Rules[1].Exprs {
			if o, ok := e.(*Opaque); ok && o.Name == "bitwise" {
				shift = true
			}
		}
		if !shift {
			t.Errorf("meta mark >> 1: %#v; want the shift opaque", marks.Rules[1].Exprs)
		}
		// Nothing else is opaque.
		for _, tb := range rs.Tables {
			for _, c := range tb.Chains {
				for _, r := range c.Rules {
					for _, e := range r.Exprs {
						if o, ok := e.(*Opaque); ok && c != marks && !(c == in && r.Position >= 8 && r.Position <= 10) {
							t.Errorf("%s %s rule %d: opaque %s", tb.Name, c.Name, r.Position, o.Name)
						}
					}
				}
			}
		}
		nat := findTable(rs, FamilyIPv4, "nat")
		if _, ok := findChain(nat, "pre").Rules[0].Exprs[len(findChain(nat, "pre").Rules[0].Exprs)-1].(*expr.NAT); !ok {
			t.Errorf("pre's rule does not end in a NAT: %#v", findChain(nat, "pre").Rules[0].Exprs)
		}
		if _, ok := findChain(nat, "post").Rules[0].Exprs[0].(*expr.Masq); !ok {
			t.Errorf("post's rule is not a masquerade: %#v", findChain(nat, "post").Rules[0].Exprs)
		}
	})

	t.Run("iptables-nft", func(t *testing.T) {
		c := findChain(findTable(rs, FamilyIPv4, "filter"), "INPUT")
		if c == nil || len(c.Rules) != 1 {
			t.Fatalf("ip filter INPUT: %+v", c)
		}
		var names []string
		for _, e := range c.Rules[0].Exprs {
			switch e := e.(type) {
			case *Xt:
				names = append(names, e.Name)
				if e.Target || e.Info == nil {
					t.Errorf("xt %s: target %v info %#v; want a decoded match", e.Name, e.Target, e.Info)
				}
				if mp, ok := e.Info.(*Multiport); ok && (len(mp.Ranges) != 2 || mp.Ranges[0] != [2]uint16{1, 1} || !mp.Dst) {
					t.Errorf("multiport %+v; want dst 1, 2", mp)
				}
			case *expr.Match, *expr.Target:
				t.Errorf("xt left as %T", e)
			}
		}
		if strings.Join(names, ",") != "multiport,comment" {
			t.Errorf("xt matches %v; want multiport, comment", names)
		}
	})

	t.Run("sets", func(t *testing.T) {
		type flags struct{ anon, interval, isMap, concat, dynamic bool }
		for _, w := range []struct {
			name   string
			f      flags
			keyLen uint32
			elems  int
		}{
			{"blocked4", flags{interval: true}, 4, 5}, // 0.0.0.0 (an end), two starts, two ends
			{"pairs", flags{interval: true, concat: true}, 8, 1},
			{"exact", flags{concat: true}, 8, 1},
			{"tmo", flags{}, 4, 1},
			{"dyn", flags{dynamic: true}, 4, 0},
			{"ports", flags{isMap: true}, 2, 1},
			{"vm", flags{isMap: true}, 2, 2},
		} {
			s := findSet(filter, w.name)
			if s == nil {
				t.Errorf("no set %s", w.name)
				continue
			}
			got := flags{s.Anonymous, s.Interval, s.IsMap, s.Concat, s.Dynamic}
			if got != w.f || s.KeyLen != w.keyLen || len(s.Elements) != w.elems || s.Table != filter {
				t.Errorf("set %s: %+v, key %d bytes, %d elements; want %+v, %d, %d", w.name, got, s.KeyLen, len(s.Elements), w.f, w.keyLen, w.elems)
			}
		}
		if s := findSet(filter, "pairs"); len(s.Elements) == 1 {
			e := s.Elements[0]
			if !bytes.Equal(e.Key, []byte{10, 0, 0, 0, 0, 22, 0, 0}) || !bytes.Equal(e.KeyEnd, []byte{10, 255, 255, 255, 0, 23, 0, 0}) {
				t.Errorf("pairs element %x-%x; want 0a000000 0016 - 0affffff 0017", e.Key, e.KeyEnd)
			}
			if s.KeyType != "ipv4_addr . inet_service" || fmt.Sprint(s.Fields) != "[4 2]" {
				t.Errorf("pairs key type %q, fields %v; want [4 2]", s.KeyType, s.Fields)
			}
		}
		if s := findSet(filter, "tmo"); len(s.Elements) == 1 {
			if x := s.Elements[0].Expires; x <= 9*time.Minute || x > 10*time.Minute {
				t.Errorf("tmo element expires in %v; want just under 10m", x)
			}
		}
		if s := findSet(filter, "ports"); len(s.Elements) == 1 {
			if e := s.Elements[0]; !bytes.Equal(e.Key, []byte{0x1f, 0x90}) || !bytes.Equal(e.Val, []byte{10, 1, 1, 1}) {
				t.Errorf("ports element %x : %x; want 1f90 : 0a010101", e.Key, e.Val)
			}
		}
		if s := findSet(filter, "vm"); len(s.Elements) == 2 {
			got := map[string]string{}
			for _, e := range s.Elements {
				if e.Verdict == nil {
					t.Errorf("vm element %x without a verdict", e.Key)
					continue
				}
				got[fmt.Sprintf("%x", e.Key)] = fmt.Sprintf("%d %s", e.Verdict.Kind, e.Verdict.Chain)
			}
			want := map[string]string{"0016": fmt.Sprintf("%d ", expr.VerdictAccept), "0050": fmt.Sprintf("%d web", expr.VerdictJump)}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("vm %v; want %v", got, want)
			}
			if s.DataType != "verdict" {
				t.Errorf("vm data type %q; want verdict", s.DataType)
			}
		}
		// The anonymous set of "tcp dport { 443, 8443 }".
		anon := 0
		for _, s := range filter.Sets {
			if s.Anonymous && len(s.Elements) == 2 && bytes.Equal(s.Elements[0].Key, []byte{0x01, 0xbb}) || s.Anonymous && len(s.Elements) == 2 && bytes.Equal(s.Elements[1].Key, []byte{0x01, 0xbb}) {
				anon++
			}
		}
		if anon != 1 {
			t.Errorf("%d anonymous sets of 443, 8443; want 1", anon)
		}
	})

	t.Run("objects", func(t *testing.T) {
		want := map[string]ObjectKind{"cnt": 1, "q": 2} // NFT_OBJECT_COUNTER, _QUOTA
		if fmt.Sprint(filter.Objects) != fmt.Sprint(want) {
			t.Errorf("objects %v; want %v", filter.Objects, want)
		}
	})

	t.Run("like nft", func(t *testing.T) {
		compareWithNft(t, n.Name, rs)
	})

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Read(ctx, Options{NetNS: ns}); !errors.Is(err, context.Canceled) {
			t.Errorf("Read with a cancelled context: %v; want context.Canceled", err)
		}
	})
}

// compareWithNft checks that every table, chain, rule handle (in order),
// comment and set of `nft -j list ruleset` is in rs, and nothing more.
func compareWithNft(t *testing.T, ns string, rs *Ruleset) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset").Output()
	if err != nil {
		t.Fatalf("nft -j list ruleset: %v", err)
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("nft -j: %v", err)
	}
	fams := map[string]Family{"ip": 2, "ip6": 10, "inet": 1, "arp": 3, "bridge": 7, "netdev": 5}
	var want, got []string
	for _, o := range doc.Nftables {
		for kind, raw := range o {
			var v struct {
				Family, Table, Chain, Name, Comment string
				Handle                              uint64
			}
			json.Unmarshal(raw, &v)
			switch kind {
			case "table":
				want = append(want, fmt.Sprintf("table %d %s", fams[v.Family], v.Name))
			case "chain":
				want = append(want, fmt.Sprintf("chain %d %s %s", fams[v.Family], v.Table, v.Name))
			case "rule":
				want = append(want, fmt.Sprintf("rule %d %s %s %d %q", fams[v.Family], v.Table, v.Chain, v.Handle, v.Comment))
			case "set", "map":
				want = append(want, fmt.Sprintf("set %d %s %s", fams[v.Family], v.Table, v.Name))
			}
		}
	}
	for _, tb := range rs.Tables {
		got = append(got, fmt.Sprintf("table %d %s", tb.Family, tb.Name))
		for _, c := range tb.Chains {
			got = append(got, fmt.Sprintf("chain %d %s %s", tb.Family, tb.Name, c.Name))
		}
		for _, s := range tb.Sets {
			if !s.Anonymous {
				got = append(got, fmt.Sprintf("set %d %s %s", tb.Family, tb.Name, s.Name))
			}
		}
		for _, c := range tb.Chains {
			for _, r := range c.Rules {
				got = append(got, fmt.Sprintf("rule %d %s %s %d %q", tb.Family, tb.Name, c.Name, r.Handle, r.Comment))
			}
		}
	}
	// nft lists a table's sets before its chains and each chain with its
	// rules: compare as sorted lists, and rules in order separately.
	if a, b := sortedCopy(want), sortedCopy(got); strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("Read differs from nft -j list ruleset:\nnft:\n%s\nRead:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	if a, b := filterPrefix(want, "rule "), filterPrefix(got, "rule "); strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("rule order differs from nft:\nnft:\n%s\nRead:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

func filterPrefix(s []string, p string) []string {
	var out []string
	for _, x := range s {
		if strings.HasPrefix(x, p) {
			out = append(out, x)
		}
	}
	return out
}

func TestIntegrationReadHost(t *testing.T) {
	n, ns, dev := loadRuleset(t, "")
	hostFwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	// The namespace's setting is the opposite of this one's, so that
	// reading the wrong namespace's shows.
	fwd := "1"
	if strings.TrimSpace(string(hostFwd)) != "0" {
		fwd = "0"
	}
	testnet.Run(t, "ip", "netns", "exec", n.Name, "sysctl", "-qw", "net.ipv4.ip_forward="+fwd,
		"net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf."+dev+".rp_filter=2")
	testnet.Run(t, "ip", "-n", n.Name, "route", "add", "198.51.100.0/24", "via", n.Host.String())
	testnet.Run(t, "ip", "-n", n.Name, "route", "add", "blackhole", "203.0.113.0/24")

	h, err := ReadHost(Options{NetNS: ns})
	if err != nil {
		t.Fatalf("ReadHost: %v", err)
	}
	if h.Forward4 != (fwd == "1") {
		t.Errorf("Forward4 %v; the namespace has ip_forward=%s", h.Forward4, fwd)
	}
	if h.RPFilter[dev] != 2 || h.RPFilter["lo"] != 1 {
		t.Errorf("RPFilter %v; want %s 2 (its own), lo 1 (all's)", h.RPFilter, dev)
	}
	if h.PolicyRouting {
		t.Error("PolicyRouting with the default rules only")
	}
	var names []string
	for _, i := range h.Interfaces {
		names = append(names, i.Name)
		if i.Name == dev {
			if i.Type != 1 || len(i.Addrs) == 0 || i.Addrs[0] != netip.PrefixFrom(n.Peer, 30) {
				t.Errorf("%s: type %d, addresses %v; want 1, %s/30 first", dev, i.Type, i.Addrs, n.Peer)
			}
		}
		if i.Name == "lo" && (i.Type != 772 || i.Index != 1) {
			t.Errorf("lo: type %d index %d", i.Type, i.Index)
		}
	}
	if strings.Join(names, " ") != "lo "+dev {
		t.Errorf("interfaces %v; want lo, %s", names, dev)
	}
	want := map[string]bool{
		fmt.Sprintf("unicast %s %s -", netip.PrefixFrom(n.Peer, 30).Masked(), dev): true,
		fmt.Sprintf("unicast 198.51.100.0/24 %s %s", dev, n.Host):                  true,
		"blackhole 203.0.113.0/24  -":                                              true,
		fmt.Sprintf("local %s %s -", netip.PrefixFrom(n.Peer, 32), dev):            true,
		fmt.Sprintf("broadcast %s %s -", netip.PrefixFrom(n.Peer.Next(), 32), dev): true,
		"local 127.0.0.0/8 lo -":                                                   true,
	}
	for _, r := range h.Routes {
		gw := "-"
		if r.Gateway.IsValid() {
			gw = r.Gateway.String()
		}
		delete(want, fmt.Sprintf("%s %s %s %s", r.Type, r.Dst, r.Iface, gw))
	}
	if len(want) != 0 {
		t.Errorf("routes missing: %v; have %+v", want, h.Routes)
	}

	testnet.Run(t, "ip", "-n", n.Name, "rule", "add", "from", "10.9.9.0/24", "table", "100")
	if h, err := ReadHost(Options{NetNS: ns}); err != nil || !h.PolicyRouting {
		t.Errorf("ReadHost after ip rule add: PolicyRouting %v, %v; want true", h != nil && h.PolicyRouting, err)
	}
}

func TestIntegrationReadLegacy(t *testing.T) {
	for _, tool := range []string{"iptables-legacy", "iptables-legacy-save", "ip6tables-legacy", "ip6tables-legacy-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s (Debian package iptables; test-deps.sh installs it): %v", tool, err)
		}
	}
	n, ns, _ := loadRuleset(t, "")
	testnet.Run(t, "ip", "netns", "exec", n.Name, "iptables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", "5", "-j", "DROP")
	testnet.Run(t, "ip", "netns", "exec", n.Name, "ip6tables-legacy", "-t", "mangle", "-A", "PREROUTING", "-p", "udp", "-j", "ACCEPT")

	rs, err := Read(context.Background(), Options{NetNS: ns})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	var legacy, mangle6 *Table
	for _, tb := range rs.Tables {
		if tb.Source == Legacy && tb.Name == "filter" && tb.Family == FamilyIPv4 {
			legacy = tb
		}
		if tb.Source == Legacy && tb.Name == "mangle" && tb.Family == FamilyIPv6 {
			mangle6 = tb
		}
	}
	if c := findChain(mangle6, "PREROUTING"); c == nil || len(c.Rules) != 1 {
		t.Errorf("legacy ip6 mangle PREROUTING: %+v", c)
	}
	if legacy == nil || len(rs.Incomplete) != 0 {
		t.Fatalf("legacy filter table not read: tables %v, incomplete %q", rs.Tables, rs.Incomplete)
	}
	if c := findChain(legacy, "INPUT"); c == nil || len(c.Rules) != 1 || c.Hook == nil || c.Hook.Num != 1 {
		t.Errorf("legacy INPUT: %+v", c)
	}

	if rs, err := Read(context.Background(), Options{NetNS: ns, NoLegacy: true}); err != nil || len(rs.Incomplete) != 0 {
		t.Errorf("NoLegacy: %v, incomplete %v", err, rs.Incomplete)
	}

	// Without the tool, the table is named as not read.
	t.Setenv("PATH", t.TempDir())
	rs, err = Read(context.Background(), Options{NetNS: ns})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if len(rs.Incomplete) != 2 || !strings.Contains(rs.Incomplete[0], "filter") || !strings.Contains(rs.Incomplete[0], "iptables-legacy-save") ||
		!strings.Contains(rs.Incomplete[1], "mangle") || !strings.Contains(rs.Incomplete[1], "ip6tables-legacy-save") {
		t.Errorf("Incomplete %q; want the ip filter and ip6 mangle tables and their tools named", rs.Incomplete)
	}
	// This namespace (the test's own) has nothing of the other's.
	if rs, err := Read(context.Background(), Options{NetNS: ns, NoLegacy: true}); err == nil && findTable(rs, FamilyIPv4, "filter") != nil {
		t.Errorf("the legacy rule's namespace has an nftables ip filter table")
	}
}

func TestIntegrationReadPermission(t *testing.T) {
	// The test binary again, as root without any capability (the
	// bounding set emptied): the kernel refuses nf_tables dumps to a
	// process without CAP_NET_ADMIN.
	if os.Getenv("PORTCTL_READ_NO_CAPS") != "" {
		_, err := Read(context.Background(), Options{NoLegacy: true})
		if !errors.Is(err, ErrPermission) || !errors.Is(err, os.ErrPermission) {
			t.Fatalf("Read without CAP_NET_ADMIN: %v; want ErrPermission and os.ErrPermission", err)
		}
		return
	}
	n, _, _ := loadRuleset(t, "")
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("needs setpriv (util-linux): %v", err)
	}
	cmd := exec.Command("ip", "netns", "exec", n.Name, "setpriv", "--bounding-set=-all", "--inh-caps=-all",
		os.Args[0], "-test.run=^TestIntegrationReadPermission$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "PORTCTL_READ_NO_CAPS=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("without capabilities: %v\n%s", err, out)
	}
}

// bigRuleset is the benchmark's ruleset: rules rules in an input chain
// and regular chains of 100, one in ten with an anonymous set, and a
// named set of elements addresses that a rule looks up.
func bigRuleset(rules, elements int) string {
	var b strings.Builder
	b.WriteString("table inet bench {\n\tset big {\n\t\ttype ipv4_addr;\n\t\telements = {")
	for i := 0; i < elements; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		if i%8 == 0 {
			b.WriteString("\n\t\t\t")
		}
		fmt.Fprintf(&b, "10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	}
	b.WriteString("\n\t\t}\n\t}\n")
	chains := rules / 100
	for c := 0; c < chains; c++ {
		fmt.Fprintf(&b, "\tchain c%d {\n", c)
		for i := 0; i < 100 && c*100+i < rules-chains-2; i++ {
			r := c*100 + i
			if r%10 == 0 {
				fmt.Fprintf(&b, "\t\ttcp dport { %d, %d, %d } ip saddr 192.0.%d.%d accept comment \"rule %d\"\n", r%60000+1, r%60000+2, r%60000+3, r>>8&255, r&255, r)
			} else {
				fmt.Fprintf(&b, "\t\ttcp dport %d ip saddr 192.0.%d.%d counter accept comment \"rule %d\"\n", r%60000+1, r>>8&255, r&255, r)
			}
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("\tchain input {\n\t\ttype filter hook input priority 0; policy drop;\n\t\tip saddr @big drop\n")
	for c := 0; c < chains; c++ {
		fmt.Fprintf(&b, "\t\tjump c%d\n", c)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// BenchmarkIntegrationRead reads a ruleset of 10,000 rules and a set of
// 100,000 elements, and lists it with nft -j for comparison.
func BenchmarkIntegrationRead(b *testing.B) {
	n := testnet.NewNamespace(b)
	f := filepath.Join(b.TempDir(), "big.nft")
	if err := os.WriteFile(f, []byte(bigRuleset(10000, 100000)), 0o644); err != nil {
		b.Fatal(err)
	}
	testnet.Run(b, "ip", "netns", "exec", n.Name, "nft", "-f", f)
	ns := "/run/netns/" + n.Name
	b.Run("Read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rs, err := Read(context.Background(), Options{NetNS: ns, NoLegacy: true})
			if err != nil {
				b.Fatal(err)
			}
			if tb := findTable(rs, FamilyINet, "bench"); tb == nil || len(findSet(tb, "big").Elements) != 100000 {
				b.Fatal("the benchmark's ruleset was not read whole")
			}
		}
	})
	b.Run("nft-json", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command("ip", "netns", "exec", n.Name, "nft", "-j", "list", "ruleset").Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestIntegrationReadWhileChanging reads a ruleset that another process
// keeps changing, two rules and two elements per transaction: every
// reading must be of one generation, so the counts are always even.
func TestIntegrationReadWhileChanging(t *testing.T) {
	n, ns, _ := loadRuleset(t, "table inet w {\n\tset s { type inet_service; }\n\tchain c { }\n}\n")
	script := filepath.Join(t.TempDir(), "change.nft")
	// Each nft -f is one transaction: two rules and two elements, or a
	// flush of both, with many rules so that the dump spans batches.
	adds := ""
	for i := 0; i < 100; i++ {
		adds += fmt.Sprintf("add rule inet w c tcp dport %d accept\nadd rule inet w c tcp dport %d drop\n", i, i)
	}
	if err := os.WriteFile(script, []byte(adds+"add element inet w s { 1, 2 }\ndelete element inet w s { 1, 2 }\nadd element inet w s { 1, 2 }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	flush := filepath.Join(t.TempDir(), "flush.nft")
	if err := os.WriteFile(flush, []byte("flush chain inet w c\nflush set inet w s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f := script
			if i%5 == 4 {
				f = flush
			}
			exec.Command("ip", "netns", "exec", n.Name, "nft", "-f", f).Run()
		}
	}()
	defer func() { close(stop); <-done }()
	deadline := time.Now().Add(3 * time.Second)
	reads := 0
	for time.Now().Before(deadline) {
		rs, err := Read(context.Background(), Options{NetNS: ns, NoLegacy: true})
		if err != nil {
			if strings.Contains(err.Error(), "kept changing") {
				continue
			}
			t.Fatalf("Read: %v", err)
		}
		reads++
		w := findTable(rs, FamilyINet, "w")
		if w == nil {
			t.Fatal("no table w")
		}
		if r := len(findChain(w, "c").Rules); r%200 != 0 {
			var hs []uint64
			for _, x := range findChain(w, "c").Rules {
				hs = append(hs, x.Handle)
			}
			t.Fatalf("reading %d: %d rules, not a multiple of 200: a reading of two generations; handles %v", reads, r, hs)
		}
		if e := len(findSet(w, "s").Elements); e%2 != 0 {
			t.Fatalf("reading %d: %d elements: a reading of two generations", reads, e)
		}
	}
	if reads == 0 {
		t.Fatal("no reading succeeded while the ruleset changed")
	}
	t.Logf("%d readings while the ruleset changed", reads)
}
