//go:build linux

package testnet

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// ruleset lists the namespace's nftables ruleset.
func ruleset(t *testing.T, ns *Namespace) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns.Name, "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	return string(out)
}

func wantAll(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s has no %q:\n%s", what, w, text)
		}
	}
}

// dial says whether a TCP connection from this namespace to addr is
// accepted within a second.
func dial(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

func TestIntegrationUFWLoader(t *testing.T) {
	ns := NewNamespace(t)
	u := UFW(t, ns, "allow 22/tcp", "deny 6379", "limit ssh", "allow from 10.0.0.0/8 to any port 5432 proto tcp")
	v4, v6 := u.Rules(t)
	wantAll(t, "user.rules", v4,
		"### tuple ### limit tcp 22 0.0.0.0/0 any 0.0.0.0/0 in",
		"### tuple ### deny any 6379 0.0.0.0/0 any 0.0.0.0/0 in",
		"### tuple ### allow tcp 5432 0.0.0.0/0 any 10.0.0.0/8 in",
		"-A ufw-user-input -p tcp --dport 6379 -j DROP")
	wantAll(t, "user6.rules", v6, "### tuple ### deny any 6379 ::/0 any ::/0 in")
	rs := ruleset(t, ns)
	wantAll(t, "the ruleset", rs, "table ip filter", "table ip6 filter", "chain ufw-user-input", "chain ufw6-user-input",
		"jump ufw-before-input", "tcp dport 6379", "policy drop")
	// ufw denies what it was not told to allow; it allows 5432 from
	// 10.0.0.0/8, where the veth pair's addresses are.
	ns.ListenAny(t, 5432)
	ns.ListenAny(t, 6379)
	if !dial(ns.Peer.String() + ":5432") {
		t.Errorf("5432 not reachable from %s through ufw's allow", ns.Host)
	}
	if dial(ns.Peer.String() + ":6379") {
		t.Errorf("6379 reachable through ufw's deny")
	}
}

func TestIntegrationFirewalldLoader(t *testing.T) {
	ns := NewNamespace(t)
	f := Firewalld(t, ns, "--zone=public --add-port=5432/tcp",
		`--zone=public --add-rich-rule='rule family="ipv4" source address="10.0.0.0/8" port port="6379" protocol="tcp" accept'`)
	if out := f.Cmd(t, "--zone=public --list-ports"); !strings.Contains(out, "5432/tcp") {
		t.Errorf("firewall-cmd --list-ports = %q; want 5432/tcp", out)
	}
	rs := ruleset(t, ns)
	wantAll(t, "the ruleset", rs, "table inet firewalld", "chain filter_IN_public_allow", "tcp dport 5432 accept",
		"ip saddr 10.0.0.0/8 tcp dport 6379 accept", "reject with icmpx admin-prohibited")
	ns.ListenAny(t, 5432)
	ns.ListenAny(t, 7000)
	if !dial(ns.Peer.String() + ":5432") {
		t.Errorf("5432 not reachable through firewalld's --add-port")
	}
	if dial(ns.Peer.String() + ":7000") {
		t.Errorf("7000 reachable through firewalld's public zone")
	}
}

func TestIntegrationIptablesLegacyLoader(t *testing.T) {
	ns := NewNamespace(t)
	IptablesLegacy(t, ns, "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 7001 -j DROP\nCOMMIT\n",
		"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 7001 -j REJECT\nCOMMIT\n")
	out, err := exec.Command("ip", "netns", "exec", ns.Name, "iptables-legacy-save").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	wantAll(t, "iptables-legacy-save", string(out), "--dport 7001 -j DROP")
	if rs := ruleset(t, ns); strings.Contains(rs, "7001") {
		t.Errorf("the legacy rule shows in nft's ruleset:\n%s", rs)
	}
	ns.ListenAny(t, 7001)
	if dial(ns.Peer.String() + ":7001") {
		t.Errorf("7001 reachable through the legacy DROP")
	}
}

func TestIntegrationKubeProxyLoaders(t *testing.T) {
	for _, mode := range []string{"iptables", "nftables"} {
		t.Run(mode, func(t *testing.T) {
			ns := NewNamespace(t)
			var s *KubeService
			if mode == "iptables" {
				s = KubeProxyShaped(t, ns)
			} else {
				s = KubeProxyNftShaped(t, ns)
			}
			rs := ruleset(t, ns)
			if mode == "iptables" {
				wantAll(t, "the ruleset", rs, "chain KUBE-SERVICES", "chain KUBE-NODEPORTS", "chain KUBE-SVC-ULMVA6XW",
					"chain KUBE-SEP-5OJB2KTY", "dnat to "+s.Endpoint.String(), "chain KUBE-MARK-MASQ", "chain KUBE-FORWARD")
			} else {
				wantAll(t, "the ruleset", rs, "table ip kube-proxy", "map service-nodeports", "vmap @service-nodeports",
					"dnat to "+s.Endpoint.String())
			}
			node := ns.Peer.String() + ":"
			if !dial(node + "30080") {
				t.Errorf("NodePort %d not forwarded to the pod %s", s.NodePort, s.Endpoint)
			}
			if dial(node + "30081") {
				t.Errorf("NodePort %d of the service with no endpoints accepted", s.EmptyNodePort)
			}
		})
	}
}

func TestIntegrationUFWDocker(t *testing.T) {
	e, _ := UFWDocker(t, DockerOptions{}, "deny 6379")
	e.Run(t, "run", "-d", "--name", "redis", "-p", "6379:6379", e.Image, "/bin/busybox", "httpd", "-f", "-p", "6379", "-h", "/www")
	rs := ruleset(t, e.NS)
	wantAll(t, "the ruleset", rs, "chain ufw-user-input", "chain DOCKER", "chain DOCKER-USER", "tcp dport 6379")
	// The bypass: ufw denies 6379, Docker's DNAT lets it in.
	deadline := time.Now().Add(10 * time.Second)
	for !dial(e.NS.Peer.String() + ":6379") {
		if time.Now().After(deadline) {
			t.Fatalf("the published 6379 is not reachable: no bypass to show\n%s", rs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestIntegrationFirewalldDocker(t *testing.T) {
	e, _ := FirewalldDocker(t, DockerOptions{})
	e.Run(t, "run", "-d", "--name", "db", "-p", "5433:5433", e.Image, "/bin/busybox", "httpd", "-f", "-p", "5433", "-h", "/www")
	rs := ruleset(t, e.NS)
	wantAll(t, "the ruleset", rs, "table inet firewalld", "chain DOCKER", "ct status dnat accept")
	// The public zone opens nothing but ssh and dhcpv6-client; Docker's
	// DNAT lets 5433 in all the same.
	deadline := time.Now().Add(10 * time.Second)
	for !dial(e.NS.Peer.String() + ":5433") {
		if time.Now().After(deadline) {
			t.Fatalf("the published 5433 is not reachable behind firewalld: no bypass to show\n%s", rs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
