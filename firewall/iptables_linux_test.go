package firewall

import (
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/portctl/portctl/internal/testnet"
)

var updateXt = flag.Bool("update-xt", false, "rewrite testdata/xt_payloads.txt from the kernel")

// iptNeeds skips the test, saying why, when the iptables tools it runs
// are missing (Debian package iptables; test-deps.sh installs it).
func iptNeeds(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian package iptables: bash test-deps.sh iptables)", tool)
		}
	}
}

// iptRun runs a command inside the namespace, with stdin, and returns its
// standard output.
func iptRun(t *testing.T, ns, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// iptRawXt is one xt compat expression as the kernel lists it.
type iptRawXt struct {
	target bool
	name   string
	rev    uint32
	info   []byte
}

// iptNlAttrs splits netlink attributes, the nested flag taken off the type.
func iptNlAttrs(b []byte) map[uint16][]byte {
	out := map[uint16][]byte{}
	for _, a := range iptNlAttrList(b) {
		out[a.typ] = a.data
	}
	return out
}

type iptAttr struct {
	typ  uint16
	data []byte
}

func iptNlAttrList(b []byte) []iptAttr {
	var out []iptAttr
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < 4 || l > len(b) {
			break
		}
		out = append(out, iptAttr{typ, b[4:l]})
		l = (l + 3) &^ 3
		if l > len(b) {
			break
		}
		b = b[l:]
	}
	return out
}

// iptRawDump lists every rule of family fam in the namespace over a raw
// nf_tables netlink socket, and returns the xt expressions of each rule,
// in order, by "table/chain/handle": google/nftables keeps only the
// decoded payload, these are the kernel's bytes.
func iptRawDump(t *testing.T, ns string, fam nftables.TableFamily) map[string][]iptRawXt {
	t.Helper()
	var fd int
	var err error
	testnet.In(t, ns, func() {
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	})
	if err != nil {
		t.Fatalf("netlink socket in %s: %v", ns, err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatal(err)
	}
	req := make([]byte, unix.NLMSG_HDRLEN+4)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETRULE)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], 1)
	req[16] = byte(fam)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatal(err)
	}
	out := map[string][]iptRawXt{}
	buf := make([]byte, 1<<20)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out
			case unix.NLMSG_ERROR:
				t.Fatalf("rule dump: netlink error %v", m.Data)
			}
			if len(m.Data) < 4 {
				continue
			}
			a := iptNlAttrs(m.Data[4:])
			key := fmt.Sprintf("%s/%s/%d", iptCstr(a[unix.NFTA_RULE_TABLE]), iptCstr(a[unix.NFTA_RULE_CHAIN]),
				binary.BigEndian.Uint64(a[unix.NFTA_RULE_HANDLE]))
			var xs []iptRawXt
			for _, el := range iptNlAttrList(a[unix.NFTA_RULE_EXPRESSIONS]) {
				e := iptNlAttrs(el.data)
				name := iptCstr(e[unix.NFTA_EXPR_NAME])
				if name != "match" && name != "target" {
					continue
				}
				d := iptNlAttrs(e[unix.NFTA_EXPR_DATA])
				xs = append(xs, iptRawXt{
					target: name == "target",
					name:   iptCstr(d[unix.NFTA_MATCH_NAME]),
					rev:    binary.BigEndian.Uint32(d[unix.NFTA_MATCH_REV]),
					info:   append([]byte(nil), d[unix.NFTA_MATCH_INFO]...), // buf is read into again
				})
			}
			out[key] = xs
		}
	}
}

func iptCstr(b []byte) string { return strings.TrimRight(string(b), "\x00") }

// iptNftTables reads the tables of family fam in the namespace with
// google/nftables, its xt expressions replaced with XtFromMatch of the
// kernel's own bytes: the form the reader gives iptables-nft rules.
func iptNftTables(t *testing.T, ns string, fam nftables.TableFamily) map[string]map[string][]*Rule {
	t.Helper()
	raw := iptRawDump(t, ns, fam)
	f, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	chains, err := c.ListChainsOfTableFamily(fam)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string][]*Rule{}
	for _, ch := range chains {
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			t.Fatal(err)
		}
		if out[ch.Table.Name] == nil {
			out[ch.Table.Name] = map[string][]*Rule{}
		}
		list := []*Rule{}
		for i, r := range rules {
			xs := raw[fmt.Sprintf("%s/%s/%d", ch.Table.Name, ch.Name, r.Handle)]
			var exprs []any
			for _, e := range r.Exprs {
				switch e.(type) {
				case *expr.Match, *expr.Target:
					if len(xs) == 0 {
						t.Fatalf("%s %s rule %d: the raw dump has fewer xt expressions than google/nftables", ch.Table.Name, ch.Name, r.Handle)
					}
					x := xs[0]
					xs = xs[1:]
					exprs = append(exprs, XtFromMatch(Family(fam), x.target, x.name, x.rev, x.info))
				default:
					exprs = append(exprs, e)
				}
			}
			list = append(list, &Rule{Position: i + 1, Handle: r.Handle, Exprs: exprs})
		}
		out[ch.Table.Name][ch.Name] = list
	}
	return out
}

// iptFormCase is one rule, loaded by iptables-nft and by iptables-legacy:
// ParseIptablesSave of what iptables-legacy-save writes back must give
// the expressions iptables-nft loaded.
type iptFormCase struct {
	table, chain, args string
}

var iptFormCases4 = []iptFormCase{
	{"filter", "INPUT", "-s 10.0.0.0/8 -d 192.168.1.1/32 -i eth+ -p tcp -m tcp --dport 22 -j ACCEPT"},
	{"filter", "INPUT", "! -s 10.1.2.3/32 ! -i eth0 -p udp -m udp --sport 53 --dport 1000:2000 -j DROP"},
	{"filter", "INPUT", "-s 10.16.0.0/12 -j ACCEPT"},
	{"filter", "INPUT", "-s 10.0.0.0/255.0.255.0 -j ACCEPT"},
	{"filter", "INPUT", "! -d 192.168.0.0/16 -j ACCEPT"},
	{"filter", "INPUT", "-s 0.0.0.0/0 -j ACCEPT"},
	{"filter", "INPUT", "! -i eth+ -j ACCEPT"},
	{"filter", "INPUT", "-p all -j ACCEPT"},
	{"filter", "INPUT", "! -p tcp -j ACCEPT"},
	{"filter", "INPUT", "-p udplite -j ACCEPT"},
	{"filter", "INPUT", "-p 47 -j ACCEPT"},
	{"filter", "INPUT", "-p icmp -j ACCEPT"},
	{"filter", "INPUT", "-p tcp --sport 53 --dport 80 -j ACCEPT"},
	{"filter", "INPUT", "-p tcp --sport 53 ! --dport 80 -j ACCEPT"},
	{"filter", "INPUT", "-p tcp --dport 0:1000 -j ACCEPT"},
	{"filter", "INPUT", "-p tcp ! --dport 0:1000 -j ACCEPT"},
	{"filter", "INPUT", "-p tcp --dport 1000:65535 -j ACCEPT"},
	{"filter", "INPUT", "-p tcp ! --dport 10:20 -j ACCEPT"},
	{"filter", "INPUT", "-p tcp --sport 5 --dport 0 -j ACCEPT"},
	{"filter", "INPUT", "-p tcp ! --sport 0 -j ACCEPT"},
	{"filter", "INPUT", "-p tcp --syn -j ACCEPT"},
	{"filter", "INPUT", "-p tcp ! --syn -j ACCEPT"},
	{"filter", "INPUT", "-p tcp --tcp-flags ALL ALL -j DROP"},
	{"filter", "INPUT", "-p tcp --tcp-flags ALL NONE -j DROP"},
	{"filter", "INPUT", "-p tcp ! --tcp-flags SYN,ACK SYN -j ACCEPT"},
	{"filter", "INPUT", "-p tcp --tcp-option 2 -j ACCEPT"},
	{"filter", "INPUT", "-p tcp -m tcp -j ACCEPT"},
	{"filter", "INPUT", "-p udp -m udp -j ACCEPT"},
	{"filter", "INPUT", "-p udp --dport 53 -j ACCEPT"},
	{"filter", "INPUT", "-p tcp -m multiport --dports 80,443,8000:8080 -j ACCEPT"},
	{"filter", "INPUT", "-p udp -m multiport ! --sports 1:10,20 -j ACCEPT"},
	{"filter", "INPUT", "-p tcp -m multiport --ports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 -j ACCEPT"},
	{"filter", "INPUT", "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"},
	{"filter", "INPUT", "-m conntrack ! --ctstate INVALID,UNTRACKED,SNAT,DNAT -j ACCEPT"},
	{"filter", "INPUT", "-m conntrack --ctstate NEW --ctorigdstport 80 --ctdir ORIGINAL -j ACCEPT"},
	{"filter", "INPUT", "-m conntrack --ctorigdst 172.17.0.2 --ctorigsrcport 1000:2000 --ctdir REPLY -j ACCEPT"},
	{"filter", "INPUT", "-m conntrack --ctproto tcp ! --ctorigsrc 10.0.0.0/8 --ctreplsrc 1.2.3.4 --ctrepldst 5.6.7.0/24 -j ACCEPT"},
	{"filter", "INPUT", "-m conntrack --ctstatus ASSURED,SEEN_REPLY --ctexpire 10:20 --ctreplsrcport 5 ! --ctrepldstport 6 -j ACCEPT"},
	{"filter", "INPUT", "-m state --state NEW -j ACCEPT"},
	{"filter", "INPUT", "-m state ! --state ESTABLISHED,RELATED,INVALID,UNTRACKED -j ACCEPT"},
	{"filter", "INPUT", "-m addrtype --dst-type LOCAL -j ACCEPT"},
	{"filter", "INPUT", "-m addrtype ! --src-type BROADCAST,MULTICAST --dst-type UNICAST --limit-iface-in -j ACCEPT"},
	{"filter", "OUTPUT", "-m addrtype --src-type LOCAL --limit-iface-out -j ACCEPT"},
	{"filter", "INPUT", `-m comment --comment "hello world" -j RETURN`},
	{"filter", "INPUT", "-m mark --mark 0x10/0xff -j ACCEPT"},
	{"filter", "INPUT", "-m mark ! --mark 0x1 -j ACCEPT"},
	{"filter", "INPUT", "-m limit --limit 5/sec -j ACCEPT"},
	{"filter", "INPUT", "-m limit --limit 10/min --limit-burst 20 -j ACCEPT"},
	{"filter", "INPUT", "-m limit --limit 3/hour -j ACCEPT"},
	{"filter", "INPUT", "-m limit --limit 2/day -j ACCEPT"},
	{"filter", "INPUT", "-f -j DROP"},
	{"filter", "INPUT", "! -f -j DROP"},
	{"filter", "INPUT", "-p tcp -j REJECT --reject-with tcp-reset"},
	{"filter", "INPUT", "-j LOG --log-prefix \"x y\""},
	{"filter", "INPUT", "-j U1"},
	{"filter", "INPUT", "-g U1"},
	{"filter", "FORWARD", "-i eth1 ! -o lo -p gre -j ACCEPT"},
	{"filter", "U1", "-p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m comment --comment c1 -j ACCEPT"},
	{"filter", "U1", "-j RETURN"},
	{"filter", "U1", ""},
	{"nat", "PREROUTING", "-p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.2:8080"},
	{"nat", "PREROUTING", "-p tcp -j DNAT --to-destination 1.2.3.4"},
	{"nat", "PREROUTING", "-p tcp -j DNAT --to-destination 1.2.3.4-1.2.3.9:100-200 --random --persistent"},
	{"nat", "PREROUTING", "-p tcp -j DNAT --to-destination :99"},
	{"nat", "PREROUTING", "-p tcp -m tcp --dport 81 -j REDIRECT --to-ports 8081"},
	{"nat", "PREROUTING", "-p udp -j REDIRECT"},
	{"nat", "OUTPUT", "-p tcp -j REDIRECT --to-ports 10-20 --random"},
	{"nat", "POSTROUTING", "-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"},
	{"nat", "POSTROUTING", "-p tcp -j MASQUERADE --to-ports 1000-2000"},
	{"nat", "POSTROUTING", "-o eth0 -p tcp -j SNAT --to-source 1.2.3.4-1.2.3.5:1000-2000"},
	{"nat", "POSTROUTING", "-j SNAT --to-source 1.2.3.4 --random-fully"},
	{"mangle", "PREROUTING", "-j MARK --set-xmark 0x1/0xff"},
	{"mangle", "PREROUTING", "-j MARK --set-mark 0x5/0xf"},
	{"mangle", "PREROUTING", "-j MARK --set-mark 0x7"},
	{"mangle", "PREROUTING", "-j MARK --and-mark 0xf0"},
	{"mangle", "PREROUTING", "-j MARK --or-mark 0x3"},
	{"mangle", "PREROUTING", "-j MARK --xor-mark 0x3"},
	{"mangle", "OUTPUT", "-p udp -m udp --dport 53 -j MARK --set-xmark 0x2/0x0"},
	{"raw", "PREROUTING", "-p tcp -m tcp --dport 9 -j CT --notrack"},
	{"security", "INPUT", "-j ACCEPT"},
}

var iptFormCases6 = []iptFormCase{
	{"filter", "INPUT", "-s 2001:db8::/32 -d ::1/128 -j ACCEPT"},
	{"filter", "INPUT", "-s 2001:db8::/33 -j ACCEPT"},
	{"filter", "INPUT", "! -s fe80::1/128 -p tcp -m tcp --dport 22 -j ACCEPT"},
	{"filter", "INPUT", "-p ipv6-icmp -j ACCEPT"},
	{"filter", "INPUT", "-p tcp -m multiport --dports 22,80 -j ACCEPT"},
	{"filter", "INPUT", "-m conntrack --ctstate NEW --ctorigdst 2001:db8::1/64 -j ACCEPT"},
	{"filter", "INPUT", "-m state --state NEW -j ACCEPT"},
	{"filter", "INPUT", "-m addrtype --dst-type LOCAL -j ACCEPT"},
	{"filter", "INPUT", "-m comment --comment v6 -j ACCEPT"},
	{"filter", "FORWARD", "-i eth0 -o eth1 -j ACCEPT"},
	{"nat", "PREROUTING", "-p tcp -m tcp --dport 80 -j DNAT --to-destination [2001:db8::1]:8080"},
	{"nat", "PREROUTING", "-p tcp -j DNAT --to-destination 2001:db8::1"},
	{"nat", "PREROUTING", "-p tcp -j REDIRECT --to-ports 99"},
	{"nat", "POSTROUTING", "-j MASQUERADE"},
	{"nat", "POSTROUTING", "-p tcp -j SNAT --to-source 2001:db8::2"},
}

// iptRestoreText writes the cases as one iptables-restore file, every
// table the cases use, with chain U1 in filter.
func iptRestoreText(cases []iptFormCase) string {
	var b strings.Builder
	for _, tbl := range []string{"filter", "nat", "mangle", "raw", "security"} {
		var lines []string
		for _, c := range cases {
			if c.table == tbl {
				lines = append(lines, strings.TrimSpace("-A "+c.chain+" "+c.args))
			}
		}
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintf(&b, "*%s\n", tbl)
		if tbl == "filter" {
			b.WriteString(":U1 - [0:0]\n")
		}
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}

// iptCompare is the comparison of rules: expressions only, counters'
// values and undecoded payload bytes left out.
var iptCompare = cmp.Options{
	cmpopts.IgnoreFields(expr.Counter{}, "Packets", "Bytes"),
	cmpopts.IgnoreFields(Xt{}, "Data"),
	cmpopts.EquateEmpty(),
	cmpopts.EquateComparable(netip.Addr{}),
	cmp.Comparer(func(a, b []byte) bool { return string(a) == string(b) }),
}

// TestIntegrationIptablesNftForms loads the same rules with iptables-nft
// and iptables-legacy into a namespace and checks that ParseIptablesSave
// of iptables-legacy-save's output gives, rule by rule, the expressions
// iptables-nft put in the kernel (its xt payloads decoded by
// XtFromMatch): the evaluator sees one form for both.
func TestIntegrationIptablesNftForms(t *testing.T) {
	n := iptCompareWithNft(t, iptRestoreText(iptFormCases4), iptRestoreText(iptFormCases6), false)
	t.Logf("%d rules: the parsed legacy rule equals the rule iptables-nft loaded", n)
}

// TestIntegrationIptablesNftRealistic is TestIntegrationIptablesNftForms
// for the Docker and ufw rulesets of TestIntegrationIptablesLegacyRoundTrip;
// a match the parser keeps opaque must be one iptables-nft leaves
// undecoded too.
func TestIntegrationIptablesNftRealistic(t *testing.T) {
	n := iptCompareWithNft(t, iptRealistic, iptRealistic6, true)
	t.Logf("%d rules of Docker and ufw: the parsed legacy rule equals the rule iptables-nft loaded", n)
}

// iptCompareWithNft restores text4 and text6 with both tools in a new
// namespace and compares the parsed legacy rules with iptables-nft's; it
// returns the number of rules compared. With opaqueAsXt, an Opaque
// "-m NAME …" compares equal to an undecoded xt match NAME.
func iptCompareWithNft(t *testing.T, text4, text6 string, opaqueAsXt bool) int {
	t.Helper()
	iptNeeds(t, "iptables-nft-restore", "iptables-legacy-restore", "iptables-legacy-save",
		"ip6tables-nft-restore", "ip6tables-legacy-restore", "ip6tables-legacy-save")
	ns := testnet.NewNamespace(t)
	total := 0
	for _, fc := range []struct {
		fam                 Family
		text                string
		nft, legacy, saveTo string
	}{
		{FamilyIPv4, text4, "iptables-nft-restore", "iptables-legacy-restore", "iptables-legacy-save"},
		{FamilyIPv6, text6, "ip6tables-nft-restore", "ip6tables-legacy-restore", "ip6tables-legacy-save"},
	} {
		iptRun(t, ns.Name, fc.text, fc.nft)
		iptRun(t, ns.Name, fc.text, fc.legacy)
		saved := iptRun(t, ns.Name, "", fc.saveTo)
		tables, err := ParseIptablesSave(fc.fam, saved)
		if err != nil {
			t.Fatalf("ParseIptablesSave: %v\n%s", err, saved)
		}
		nft := iptNftTables(t, ns.Name, nftables.TableFamily(fc.fam))
		for _, tbl := range tables {
			for _, ch := range tbl.Chains {
				kernel := nft[tbl.Name][ch.Name]
				if len(kernel) != len(ch.Rules) {
					t.Errorf("%s %s: %d rules parsed, iptables-nft has %d", tbl.Name, ch.Name, len(ch.Rules), len(kernel))
					continue
				}
				for i, r := range ch.Rules {
					total++
					// The revision of a target the parser does not decode
					// (CT, say) is not in iptables-save's text.
					for _, e := range kernel[i].Exprs {
						if x, ok := e.(*Xt); ok && x.Info == nil {
							x.Rev = 0
						}
					}
					parsed := r.Exprs
					if opaqueAsXt {
						parsed = nil
						for _, e := range r.Exprs {
							if o, ok := e.(*Opaque); ok && strings.HasPrefix(o.Name, "-m ") {
								e = &Xt{Name: strings.Fields(o.Name)[1]}
							}
							parsed = append(parsed, e)
						}
					}
					if diff := cmp.Diff(kernel[i].Exprs, parsed, iptCompare); diff != "" {
						t.Errorf("%s %s %q: (-iptables-nft +parsed)\n%s", tbl.Name, ch.Name, r.Text, diff)
					}
				}
			}
		}
	}
	return total
}

// TestIntegrationXtPayloads checks testdata/xt_payloads.txt, the xt
// payloads xt_test.go decodes, against what the kernel holds for the
// same rules today (-update-xt rewrites it).
func TestIntegrationXtPayloads(t *testing.T) {
	iptNeeds(t, "iptables-nft", "ip6tables-nft")
	ns := testnet.NewNamespace(t)
	var got []string
	for _, c := range xtPayloadRules {
		tool := "iptables-nft"
		fam := FamilyIPv4
		if c.fam == "ip6" {
			tool, fam = "ip6tables-nft", FamilyIPv6
		}
		iptRun(t, ns.Name, "", tool, "-t", c.table, "-F")
		iptRun(t, ns.Name, "", append([]string{tool, "-t", c.table, "-A", c.chain}, iptSplitArgs(c.args)...)...)
		raw := iptRawDump(t, ns.Name, nftables.TableFamily(fam))
		var xs []iptRawXt
		for k, v := range raw {
			if strings.HasPrefix(k, c.table+"/"+c.chain+"/") {
				xs = append(xs, v...)
			}
		}
		if len(xs) != 1 {
			t.Fatalf("%s: %d xt expressions in the kernel; want 1", c.args, len(xs))
		}
		kind := "match"
		if xs[0].target {
			kind = "target"
		}
		got = append(got, fmt.Sprintf("%s\t%s\t%s\t%d\t%s\t%s", c.fam, kind, xs[0].name, xs[0].rev, hex.EncodeToString(xs[0].info), c.args))
	}
	path := filepath.Join("testdata", "xt_payloads.txt")
	if *updateXt {
		header := "# family, match or target, name, revision, payload (hex), iptables-nft rule: written by\n# go test -run TestIntegrationXtPayloads -update-xt (amd64, little-endian)\n"
		if err := os.WriteFile(path, []byte(header+strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readXtPayloads(t)
	var wantLines []string
	for _, p := range want {
		wantLines = append(wantLines, p.line)
	}
	if diff := cmp.Diff(wantLines, got); diff != "" {
		t.Errorf("testdata/xt_payloads.txt differs from the kernel's payloads (-file +kernel):\n%s", diff)
	}
}

// iptSplitArgs splits a rule as a shell would, for the quoting the test
// rules use: double quotes.
func iptSplitArgs(s string) []string {
	toks, err := splitSaveArgs(s)
	if err != nil {
		panic(err)
	}
	var out []string
	for _, t := range toks {
		out = append(out, t.s)
	}
	return out
}

// iptRealistic is a ruleset of the kind hosts carry in legacy iptables:
// ufw's chains, Docker's, hand-written rules, NAT.
const iptRealistic = `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
:DOCKER-ISOLATION-STAGE-2 - [0:0]
:DOCKER-USER - [0:0]
:ufw-before-input - [0:0]
:ufw-user-input - [0:0]
:ufw-user-limit - [0:0]
:ufw-user-limit-accept - [0:0]
:ufw-skip-to-policy-input - [0:0]
-A INPUT -j ufw-before-input
-A INPUT -i lo -j ACCEPT
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 6379 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-input -m conntrack --ctstate INVALID -j DROP
-A ufw-before-input -p icmp -m icmp --icmp-type 8 -j ACCEPT
-A ufw-before-input -p udp -m udp --sport 67 --dport 68 -j ACCEPT
-A ufw-before-input -m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input
-A ufw-before-input -d 224.0.0.251/32 -p udp -m udp --dport 5353 -j ACCEPT
-A ufw-before-input -j ufw-user-input
-A ufw-user-input -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --set --name DEFAULT --mask 255.255.255.255 --rsource
-A ufw-user-input -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --update --seconds 30 --hitcount 6 --name DEFAULT --mask 255.255.255.255 --rsource -j ufw-user-limit
-A ufw-user-input -p tcp -m tcp --dport 22 -j ufw-user-limit-accept
-A ufw-user-input -s 10.0.0.0/8 -p tcp -m multiport --dports 137:139,445 -m comment --comment "'dapp_Samba'" -j ACCEPT
-A ufw-user-input -p udp -m multiport --dports 137,138 -j ACCEPT
-A ufw-user-input -p tcp -m tcp --dport 5432 -j DROP
-A ufw-user-limit -m limit --limit 3/min -j LOG --log-prefix "[UFW LIMIT BLOCK] "
-A ufw-user-limit -j REJECT --reject-with icmp-port-unreachable
-A ufw-user-limit-accept -j ACCEPT
-A ufw-skip-to-policy-input -j DROP
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 6379 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 6379 -j DNAT --to-destination 172.17.0.2:6379
COMMIT
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -d 172.17.0.2/32 ! -i docker0 -j DROP
COMMIT
`

const iptRealistic6 = `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:ufw6-user-input - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -m rt --rt-type 0 -j DROP
-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 255 -j ACCEPT
-A INPUT -s fe80::/10 -d fe80::/10 -p udp -m udp --sport 547 --dport 546 -j ACCEPT
-A INPUT -j ufw6-user-input
-A ufw6-user-input -s 2001:db8::/32 -p tcp -m tcp --dport 443 -j ACCEPT
-A ufw6-user-input -p tcp -m multiport --dports 80,8080:8090 -m comment --comment "web ports" -j ACCEPT
COMMIT
`

// TestIntegrationIptablesLegacyRoundTrip loads realistic rulesets with
// iptables-legacy-restore and ip6tables-legacy-restore in a namespace,
// reads them back with the -save tools and checks the model.
func TestIntegrationIptablesLegacyRoundTrip(t *testing.T) {
	iptNeeds(t, "iptables-legacy-restore", "iptables-legacy-save", "ip6tables-legacy-restore", "ip6tables-legacy-save")
	ns := testnet.NewNamespace(t)
	iptRun(t, ns.Name, iptRealistic, "iptables-legacy-restore")
	iptRun(t, ns.Name, iptRealistic6, "ip6tables-legacy-restore")
	saved4 := iptRun(t, ns.Name, "", "iptables-legacy-save", "-c")
	saved6 := iptRun(t, ns.Name, "", "ip6tables-legacy-save")

	t4, err := ParseIptablesSave(FamilyIPv4, saved4)
	if err != nil {
		t.Fatalf("ParseIptablesSave(ip): %v\n%s", err, saved4)
	}
	t6, err := ParseIptablesSave(FamilyIPv6, saved6)
	if err != nil {
		t.Fatalf("ParseIptablesSave(ip6): %v\n%s", err, saved6)
	}
	summary := func(tables []*Table) map[string]string {
		out := map[string]string{}
		for _, tb := range tables {
			if tb.Source != Legacy {
				t.Errorf("table %s: Source %q; want %q", tb.Name, tb.Source, Legacy)
			}
			for _, c := range tb.Chains {
				s := fmt.Sprintf("%d rules", len(c.Rules))
				if c.Hook != nil {
					s = fmt.Sprintf("hook %d prio %d type %s policy %d, %s", c.Hook.Num, c.Hook.Priority, c.Hook.Type, c.Hook.Policy, s)
				}
				out[tb.Name+" "+c.Name] = s
				for i, r := range c.Rules {
					if r.Position != i+1 || r.Chain != c || !strings.HasPrefix(r.Text, "-A "+c.Name+" ") {
						t.Errorf("%s %s rule %d: Position %d, Text %q", tb.Name, c.Name, i+1, r.Position, r.Text)
					}
				}
			}
		}
		return out
	}
	want4 := map[string]string{
		"filter INPUT":                    "hook 1 prio 0 type filter policy 0, 2 rules",
		"filter FORWARD":                  "hook 2 prio 0 type filter policy 0, 6 rules",
		"filter OUTPUT":                   "hook 3 prio 0 type filter policy 1, 0 rules",
		"filter DOCKER":                   "1 rules",
		"filter DOCKER-ISOLATION-STAGE-1": "2 rules",
		"filter DOCKER-ISOLATION-STAGE-2": "2 rules",
		"filter DOCKER-USER":              "1 rules",
		"filter ufw-before-input":         "7 rules",
		"filter ufw-user-input":           "6 rules",
		"filter ufw-user-limit":           "2 rules",
		"filter ufw-user-limit-accept":    "1 rules",
		"filter ufw-skip-to-policy-input": "1 rules",
		"nat PREROUTING":                  "hook 0 prio -100 type nat policy 1, 1 rules",
		"nat INPUT":                       "hook 1 prio 100 type nat policy 1, 0 rules",
		"nat OUTPUT":                      "hook 3 prio -100 type nat policy 1, 1 rules",
		"nat POSTROUTING":                 "hook 4 prio 100 type nat policy 1, 2 rules",
		"nat DOCKER":                      "2 rules",
		"raw PREROUTING":                  "hook 0 prio -300 type filter policy 1, 1 rules",
		"raw OUTPUT":                      "hook 3 prio -300 type filter policy 1, 0 rules",
	}
	if diff := cmp.Diff(want4, summary(t4)); diff != "" {
		t.Errorf("IPv4 chains (-want +got):\n%s", diff)
	}
	want6 := map[string]string{
		"filter INPUT":           "hook 1 prio 0 type filter policy 0, 6 rules",
		"filter FORWARD":         "hook 2 prio 0 type filter policy 0, 0 rules",
		"filter OUTPUT":          "hook 3 prio 0 type filter policy 1, 0 rules",
		"filter ufw6-user-input": "2 rules",
	}
	if diff := cmp.Diff(want6, summary(t6)); diff != "" {
		t.Errorf("IPv6 chains (-want +got):\n%s", diff)
	}

	rule := func(tables []*Table, table, chain string, pos int) *Rule {
		for _, tb := range tables {
			for _, c := range tb.Chains {
				if tb.Name == table && c.Name == chain && pos <= len(c.Rules) {
					return c.Rules[pos-1]
				}
			}
		}
		t.Fatalf("no rule %s %s %d", table, chain, pos)
		return nil
	}
	// The Docker DNAT: its target decoded, the rule's tests native.
	dnat := rule(t4, "nat", "DOCKER", 2)
	last := dnat.Exprs[len(dnat.Exprs)-1].(*Xt)
	if n, ok := last.Info.(*NATTarget); !ok || n.Kind != "DNAT" || n.Addr.String() != "172.17.0.2" || n.Port != 6379 {
		t.Errorf("Docker's DNAT: %#v", last.Info)
	}
	// ufw's recent matches are kept opaque, never dropped.
	rec := rule(t4, "filter", "ufw-user-input", 1)
	var opaques []string
	for _, e := range rec.Exprs {
		if o, ok := e.(*Opaque); ok {
			opaques = append(opaques, o.Name)
		}
	}
	if len(opaques) != 1 || !strings.HasPrefix(opaques[0], "-m recent --set --name DEFAULT") {
		t.Errorf("ufw's recent rule: opaque %q", opaques)
	}
	smb := rule(t4, "filter", "ufw-user-input", 4)
	if smb.Comment != "'dapp_Samba'" {
		t.Errorf("comment %q; want 'dapp_Samba'", smb.Comment)
	}
	var mp *Multiport
	for _, e := range smb.Exprs {
		if x, ok := e.(*Xt); ok && x.Name == "multiport" {
			mp, _ = x.Info.(*Multiport)
		}
	}
	if mp == nil || !mp.Dst || mp.Src || fmt.Sprint(mp.Ranges) != "[[137 139] [445 445]]" {
		t.Errorf("Samba multiport: %+v", mp)
	}
	// iptables-legacy-save -c wrote the counters.
	if _, ok := rule(t4, "filter", "INPUT", 1).Exprs[0].(*expr.Counter); !ok {
		t.Errorf("INPUT 1: %#v; want a counter first", rule(t4, "filter", "INPUT", 1).Exprs)
	}
	v6 := rule(t6, "filter", "ufw6-user-input", 2)
	if v6.Comment != "web ports" {
		t.Errorf("ip6 comment %q", v6.Comment)
	}
	hl := rule(t6, "filter", "INPUT", 4)
	var hlOpaque []string
	for _, e := range hl.Exprs {
		if o, ok := e.(*Opaque); ok {
			hlOpaque = append(hlOpaque, o.Name)
		}
	}
	if fmt.Sprint(hlOpaque) != "[-m icmp6 --icmpv6-type 135 -m hl --hl-eq 255]" {
		t.Errorf("ip6 icmp6 and hl: opaque %q", hlOpaque)
	}
	n := 0
	for _, ts := range [][]*Table{t4, t6} {
		for _, tb := range ts {
			for _, c := range tb.Chains {
				n += len(c.Rules)
			}
		}
	}
	t.Logf("%d legacy rules read back and parsed (IPv4 %d tables, IPv6 %d)", n, len(t4), len(t6))
}
