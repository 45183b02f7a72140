//go:build linux

package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/portctl/portctl/internal/testnet"
)

// readNS reads the namespace's ruleset and host, failing the test when
// it cannot.
func readNS(t *testing.T, ns *testnet.Namespace) (*Ruleset, *Host) {
	t.Helper()
	opts := Options{NetNS: "/run/netns/" + ns.Name}
	rs, err := Read(context.Background(), opts)
	if err != nil {
		t.Fatalf("Read %s: %v", ns.Name, err)
	}
	h, err := ReadHost(opts)
	if err != nil {
		t.Fatalf("ReadHost %s: %v", ns.Name, err)
	}
	return rs, h
}

// ufwHints reads a ufw's rules files as the CLI does.
func ufwHints(t *testing.T, u *testnet.UFWFirewall) OwnerHints {
	t.Helper()
	v4, v6 := u.Rules(t)
	return OwnerHints{UFW: append(ParseUFWRules(v4), ParseUFWRules(v6)...), UFWRead: true}
}

// owners lists every rule with its owner, one a line, for failure
// messages, and counts them by owner.
func owners(rs *Ruleset) (string, map[string]int) {
	var b strings.Builder
	n := map[string]int{}
	for _, t := range rs.Tables {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				fmt.Fprintf(&b, "%s %s %s #%d: %s (%s)\n", FamilyName(t.Family), t.Name, c.Name, r.Position, r.Owner.Name, r.Owner.Detail)
				n[r.Owner.Name]++
			}
		}
	}
	return b.String(), n
}

// eachRule calls fn for every rule of the tables fn's filter picks.
func eachRule(rs *Ruleset, fn func(t *Table, c *Chain, r *Rule)) {
	for _, t := range rs.Tables {
		for _, c := range t.Chains {
			for _, r := range c.Rules {
				fn(t, c, r)
			}
		}
	}
}

func TestIntegrationAttributeUFW(t *testing.T) {
	ns := testnet.NewNamespace(t)
	u := testnet.UFW(t, ns, "allow 22/tcp", "deny 6379", "limit ssh", "allow from 10.0.0.0/8 to any port 5432 proto tcp", "allow log 53")
	rs, _ := readNS(t, ns)
	Attribute(rs, ufwHints(t, u))
	all, n := owners(rs)
	t.Logf("ufw's ruleset: %v", n)
	eachRule(rs, func(tb *Table, c *Chain, r *Rule) {
		switch {
		case tb.Name == "filter" && r.Owner.Name != OwnerUFW:
			t.Errorf("%s %s #%d: owner %+v; want ufw (all of ufw's tables are ufw's)", tb.Name, c.Name, r.Position, r.Owner)
		case tb.Name == "t" && r.Owner.Name != OwnerHand:
			t.Errorf("the test's own table: owner %+v; want hand", r.Owner)
		case strings.HasSuffix(c.Name, "-user-input"):
			if _, ok := ParseUFWTuple(r.Owner.Detail); !ok {
				t.Errorf("%s #%d: detail %q is no ufw tuple", c.Name, r.Position, r.Owner.Detail)
			}
		}
	})
	want := map[string]string{
		"6379": "deny any 6379 0.0.0.0/0 any 0.0.0.0/0 in",
		"5432": "allow tcp 5432 0.0.0.0/0 any 10.0.0.0/8 in",
		"22":   "limit tcp 22 0.0.0.0/0 any 0.0.0.0/0 in",
	}
	for _, tb := range rs.Tables {
		if tb.Name != "filter" {
			continue
		}
		for _, c := range tb.Chains {
			if c.Name != "ufw-user-input" {
				continue
			}
			for _, r := range c.Rules {
				f := factsOf(r)
				if len(f.dports) == 1 {
					if w, ok := want[fmt.Sprint(f.dports[0][0])]; ok && r.Owner.Detail != w {
						t.Errorf("ufw-user-input #%d (port %d): tuple %q; want %q", r.Position, f.dports[0][0], r.Owner.Detail, w)
					}
				}
			}
		}
	}
	if t.Failed() {
		t.Log(all)
	}
}

// Every rule's Delete, given to ufw, deletes that rule: Spec and Delete
// speak ufw's language.
func TestIntegrationUFWSpecDeletes(t *testing.T) {
	ns := testnet.NewNamespace(t)
	u := testnet.UFW(t, ns, "allow 22/tcp", "deny 6379", "limit ssh", "allow from 10.0.0.0/8 to any port 5432 proto tcp",
		`allow 'WWW Full'`, "allow in on lo to any port 9000 proto udp comment 'metrics, local'",
		"deny out to 203.0.113.0/24 port 25 proto tcp", "route allow in on eth0 out on eth1 to 192.168.1.10 port 80 proto tcp",
		"reject from 2001:db8::/32 to any port 8000:8100 proto tcp", "allow log 53", "allow from 192.0.2.1 port 1234 to any port 4321 proto udp")
	v4, v6 := u.Rules(t)
	rules := append(ParseUFWRules(v4), ParseUFWRules(v6)...)
	deleted := map[string]bool{}
	for _, r := range rules {
		del := r.Delete()
		if deleted[del] {
			continue // the IPv6 twin of a rule deleted with it
		}
		deleted[del] = true
		u.Run(t, strings.TrimPrefix(del, "ufw "))
		a, b := u.Rules(t)
		if strings.Contains(a+b, "### tuple ### "+r.Tuple+"\n") || strings.Contains(a+b, "### tuple ### "+r.Tuple+" comment=") {
			t.Errorf("%s: tuple %q still there", del, r.Tuple)
		}
	}
	a, b := u.Rules(t)
	if left := ParseUFWRules(a + b); len(left) > 0 {
		t.Errorf("after deleting every rule by its Spec, %d are left: %+v", len(left), left)
	}
	t.Logf("%d ufw rules (v4 and v6) deleted by their Delete command", len(deleted))
}

func TestIntegrationAttributeFirewalld(t *testing.T) {
	for _, backend := range []string{"nftables", "iptables"} {
		t.Run(backend, func(t *testing.T) { attributeFirewalld(t, backend) })
	}
}

func attributeFirewalld(t *testing.T, backend string) {
	ns := testnet.NewNamespace(t)
	testnet.FirewalldBackend(t, ns, backend, "--zone=public --add-port=5432/tcp",
		`--zone=public --add-rich-rule='rule family="ipv4" source address="10.0.0.0/8" port port="6379" protocol="tcp" accept'`)
	rs, _ := readNS(t, ns)
	Attribute(rs, OwnerHints{})
	all, n := owners(rs)
	t.Logf("firewalld's ruleset (%s backend): %v", backend, n)
	zoned := 0
	eachRule(rs, func(tb *Table, c *Chain, r *Rule) {
		if tb.Name != "t" && r.Owner.Name != OwnerFirewalld {
			t.Errorf("%s %s %s #%d: owner %+v; want firewalld", FamilyName(tb.Family), tb.Name, c.Name, r.Position, r.Owner)
		}
		if strings.HasPrefix(c.Name, "filter_IN_public") || strings.HasPrefix(c.Name, "IN_public") {
			zoned++
			if r.Owner.Detail != "public" {
				t.Errorf("%s #%d: detail %q; want public", c.Name, r.Position, r.Owner.Detail)
			}
		}
	})
	if zoned == 0 {
		t.Errorf("no rule in the public zone's chains:\n%s", all)
	}
}

func TestIntegrationAttributeKubeProxy(t *testing.T) {
	for _, mode := range []string{"iptables", "nftables"} {
		t.Run(mode, func(t *testing.T) {
			ns := testnet.NewNamespace(t)
			if mode == "iptables" {
				testnet.KubeProxyShaped(t, ns)
			} else {
				testnet.KubeProxyNftShaped(t, ns)
			}
			rs, _ := readNS(t, ns)
			Attribute(rs, OwnerHints{})
			all, n := owners(rs)
			t.Logf("kube-proxy's ruleset (%s mode): %v", mode, n)
			eachRule(rs, func(tb *Table, c *Chain, r *Rule) {
				if tb.Name != "t" && r.Owner.Name != OwnerKubeProxy {
					t.Errorf("%s %s #%d: owner %+v; want kube-proxy", tb.Name, c.Name, r.Position, r.Owner)
				}
			})
			if !strings.Contains(all, "(default/web:http)") && !strings.Contains(all, "(default/web)") {
				t.Errorf("no rule names the service default/web:\n%s", all)
			}
		})
	}
}

func TestIntegrationAttributeLegacyHand(t *testing.T) {
	ns := testnet.NewNamespace(t)
	testnet.IptablesLegacy(t, ns, "*filter\n:INPUT ACCEPT [0:0]\n:SSH - [0:0]\n-A INPUT -p tcp --dport 22 -j SSH\n-A SSH -s 10.0.0.0/8 -j ACCEPT\n-A SSH -j DROP\nCOMMIT\n", "")
	rs, _ := readNS(t, ns)
	Attribute(rs, OwnerHints{})
	legacy := 0
	eachRule(rs, func(tb *Table, c *Chain, r *Rule) {
		if tb.Source == Legacy {
			legacy++
		}
		if r.Owner.Name != OwnerHand {
			t.Errorf("%s %s #%d: owner %+v; want hand", tb.Name, c.Name, r.Position, r.Owner)
		}
	})
	if legacy != 3 {
		t.Errorf("%d legacy rules read; want 3 (incomplete: %q)", legacy, rs.Incomplete)
	}
}

// The bypass: ufw denies 6379 and Docker publishes it. Docker's rules
// are Docker's, ufw's are ufw's, and the DNAT names the container.
func TestIntegrationAttributeDockerUFW(t *testing.T) {
	for _, opts := range []testnet.DockerOptions{{}, {NoUserlandProxy: true}} {
		t.Run(fmt.Sprintf("NoUserlandProxy=%v", opts.NoUserlandProxy), func(t *testing.T) { attributeDockerUFW(t, opts) })
	}
}

func attributeDockerUFW(t *testing.T, opts testnet.DockerOptions) {
	e, u := testnet.UFWDocker(t, opts, "deny 6379")
	e.Run(t, "run", "-d", "--name", "redis", "-p", "6379:6379", e.Image, "/bin/busybox", "httpd", "-f", "-p", "6379", "-h", "/www")
	ip, err := netip.ParseAddr(e.Run(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "redis"))
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := readNS(t, e.NS)
	h := ufwHints(t, u)
	h.Containers = map[netip.AddrPort]string{netip.AddrPortFrom(ip, 0): "redis"}
	Attribute(rs, h)
	all, n := owners(rs)
	t.Logf("Docker behind ufw: %v", n)
	dnat := false
	eachRule(rs, func(tb *Table, c *Chain, r *Rule) {
		if tb.Name == "t" {
			return
		}
		if r.Owner.Name == OwnerHand {
			t.Errorf("%s %s %s #%d: hand; want Docker's or ufw's", FamilyName(tb.Family), tb.Name, c.Name, r.Position)
		}
		if strings.HasPrefix(c.Name, "DOCKER") && c.Name != "DOCKER-USER" && r.Owner.Name != OwnerDocker {
			t.Errorf("%s #%d: owner %+v; want docker", c.Name, r.Position, r.Owner)
		}
		if r.Owner.Detail == fmt.Sprintf("publishes tcp 6379 to redis (%s:6379)", ip) {
			dnat = true
		}
	})
	if !dnat {
		t.Errorf("no DNAT names redis:\n%s", all)
	}
	if t.Failed() {
		t.Log(all)
		out, _ := exec.Command("ip", "netns", "exec", e.NS.Name, "nft", "list", "ruleset").CombinedOutput()
		os.Stderr.Write(out)
	}
}

// Podman's netavark writes NETAVARK-* chains; a port it publishes is
// closed in Podman's terms.
func TestIntegrationAttributePodman(t *testing.T) {
	p := testnet.StartPodman(t)
	p.Run(t, "run", "-d", "--name", "web", "-p", "8080:80", p.Image, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www")
	rs, h := readNS(t, p.NS)
	Attribute(rs, OwnerHints{})
	all, n := owners(rs)
	t.Logf("Podman's ruleset: %v", n)
	dnat := false
	eachRule(rs, func(tb *Table, c *Chain, r *Rule) {
		if tb.Name != "t" && r.Owner.Name != OwnerPodman {
			t.Errorf("%s %s #%d: owner %+v; want podman", tb.Name, c.Name, r.Position, r.Owner)
		}
		if strings.HasPrefix(r.Owner.Detail, "publishes tcp 8080 to ") && strings.HasSuffix(r.Owner.Detail, ":80") {
			dnat = true
		}
	})
	if !dnat {
		t.Errorf("no DNAT says it publishes 8080:\n%s", all)
	}
	id := p.NS.Name[len(p.NS.Name)-6:]
	res := Evaluate(rs, h, Packet{Proto: 6, Src: p.NS.Host, Dst: p.NS.Peer, SrcPort: 40000, DstPort: 8080, InIface: "pt" + id + "b"})
	fixes := Fix(res, FixRequest{Port: 8080, Proto: "tcp"})
	if res.Verdict != Accept || len(fixes) == 0 || fixes[0] != "podman run -p 127.0.0.1:8080:80/tcp …   (publish on loopback only)" {
		t.Errorf("8080: %s by %s, Fix = %q; want accept, podman run -p 127.0.0.1:8080:80/tcp … first", res.Verdict, decName(res), fixes)
	}
}
