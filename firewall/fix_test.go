package firewall

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestFix(t *testing.T) {
	p := netip.MustParsePrefix
	ufwDeny := &Rule{Owner: Owner{OwnerUFW, "deny any 6379 0.0.0.0/0 any 0.0.0.0/0 in"}}
	ufwRange := &Rule{Owner: Owner{OwnerUFW, "deny tcp 6000:7000 0.0.0.0/0 any 0.0.0.0/0 in"}}
	ufwAllow := &Rule{Owner: Owner{OwnerUFW, "allow tcp 5432 0.0.0.0/0 any 10.0.0.0/8 in"}}
	legacyDrop := &Rule{Position: 3, Owner: Owner{Name: OwnerHand}, Text: "-A INPUT -p tcp -m tcp --dport 22 -j DROP"}
	step := func(fam Family, table, chain, action string, r *Rule, src Source) *Step {
		s := &Step{Family: fam, Table: table, Chain: chain, Action: action, Rule: r, Source: src}
		if r != nil {
			s.Owner, s.Handle, s.Position = r.Owner, r.Handle, r.Position
		}
		return s
	}
	ufwPolicy := Result{Verdict: Drop, Path: "input",
		Steps: []Step{
			*step(FamilyIPv4, "filter", "INPUT", "jump ufw-before-input", &Rule{Owner: Owner{OwnerUFW, "jump ufw-before-input"}}, NFTables),
			*step(FamilyIPv4, "filter", "INPUT", "policy drop", nil, NFTables),
		}}
	ufwPolicy.Decider = &ufwPolicy.Steps[1]
	dockerNAT := &NAT{From: netip.MustParseAddrPort("10.1.1.1:8080"), To: netip.MustParseAddrPort("172.17.0.2:80"),
		Step: Step{Owner: Owner{OwnerDocker, "publishes tcp 8080 to 172.17.0.2:80"}}}
	for _, c := range []struct {
		name string
		res  Result
		req  FixRequest
		want []string
	}{
		{"bound to loopback", Result{Verdict: Accept}, FixRequest{Port: 5432, Open: true, Bind: netip.MustParseAddr("127.0.0.1")},
			[]string{"bind to 0.0.0.0 instead of 127.0.0.1"}},
		{"bound to ::1", Result{Verdict: Accept}, FixRequest{Port: 5432, Open: true, Bind: netip.MustParseAddr("::1"), From: p("2001:db8::/32")},
			[]string{"bind to [::] instead of [::1]"}},
		{"IPv6-only [::], IPv4 client", Result{Verdict: Accept}, FixRequest{Port: 5432, Open: true, Bind: netip.MustParseAddr("::"), V6Only: true, From: p("192.0.2.0/24")},
			[]string{"bind to 0.0.0.0 as well: the socket on [::] is IPv6-only (IPV6_V6ONLY)"}},
		{"loopback client, loopback socket", Result{Verdict: Accept}, FixRequest{Port: 5432, Open: true, Bind: netip.MustParseAddr("127.0.0.1"), Class: Loopback}, nil},
		{"already open", Result{Verdict: Accept}, FixRequest{Port: 80, Open: true}, nil},
		{"already closed", Result{Verdict: Drop}, FixRequest{Port: 80}, nil},
		{"unknown", Result{Verdict: Unknown}, FixRequest{Port: 80, Open: true}, nil},
		{"ufw deny, exactly that port", Result{Verdict: Drop, Decider: step(FamilyIPv4, "filter", "ufw-user-input", "drop", ufwDeny, NFTables)},
			FixRequest{Port: 6379, Proto: "tcp", Open: true},
			[]string{"ufw delete deny 6379 && ufw allow 6379/tcp", "ufw insert 1 allow from any to any port 6379 proto tcp"}},
		{"ufw deny of a range", Result{Verdict: Drop, Decider: step(FamilyIPv4, "filter", "ufw-user-input", "drop", ufwRange, NFTables)},
			FixRequest{Port: 6379, Proto: "tcp", Open: true, From: p("10.0.0.0/8")},
			[]string{"ufw insert 1 allow from 10.0.0.0/8 to any port 6379 proto tcp", "ufw delete deny 6000:7000/tcp && ufw allow from 10.0.0.0/8 to any port 6379 proto tcp"}},
		{"ufw's policy", ufwPolicy, FixRequest{Port: 5432, Proto: "tcp", Open: true, From: p("10.0.0.0/8")},
			[]string{"ufw allow from 10.0.0.0/8 to any port 5432 proto tcp"}},
		{"ufw's routed policy", Result{Verdict: Drop, Path: "forward", To: netip.MustParseAddrPort("172.17.0.2:80"),
			Decider: step(FamilyIPv4, "filter", "ufw-skip-to-policy-forward", "drop", &Rule{Owner: Owner{OwnerUFW, "ufw-skip-to-policy-forward"}}, NFTables)},
			FixRequest{Port: 80, Proto: "tcp", Open: true},
			[]string{"ufw route allow from any to 172.17.0.2 port 80 proto tcp"}},
		{"ufw allow, close for everyone", Result{Verdict: Accept, Decider: step(FamilyIPv4, "filter", "ufw-user-input", "accept", ufwAllow, NFTables)},
			FixRequest{Port: 5432, Proto: "tcp"},
			[]string{"ufw delete allow from 10.0.0.0/8 to any port 5432 proto tcp", "ufw insert 1 deny from any to any port 5432 proto tcp", "portctl fw block 5432 --proto tcp"}},
		{"firewalld zone deny (a rich rule)", Result{Verdict: Reject, Decider: step(FamilyINet, "firewalld", "filter_IN_internal_deny", "reject", &Rule{Owner: Owner{OwnerFirewalld, "internal"}}, NFTables)},
			FixRequest{Port: 22, Proto: "tcp", Open: true},
			[]string{`firewall-cmd --zone=internal --add-rich-rule='rule priority="-1" family="ipv4" port port="22" protocol="tcp" accept' && firewall-cmd --permanent --zone=internal --add-rich-rule='rule priority="-1" family="ipv4" port port="22" protocol="tcp" accept'`}},
		{"firewalld policy", Result{Verdict: Reject, Decider: step(FamilyINet, "firewalld", "filter_IN_policy_edge", "reject", &Rule{Owner: Owner{OwnerFirewalld, "policy edge"}}, NFTables)},
			FixRequest{Port: 443, Proto: "tcp", Open: true},
			[]string{"firewall-cmd --policy=edge --add-port=443/tcp && firewall-cmd --permanent --policy=edge --add-port=443/tcp"}},
		{"Docker publishes it", Result{Verdict: Accept, Path: "forward", NAT: dockerNAT}, FixRequest{Port: 8080, Proto: "tcp", From: p("203.0.113.0/24")},
			[]string{"docker run -p 127.0.0.1:8080:80/tcp …   (publish on loopback only)", "iptables -I DOCKER-USER -p tcp -m conntrack --ctorigdstport 8080 -s 203.0.113.0/24 -j DROP", "portctl fw block 8080 --proto tcp --from 203.0.113.0/24"}},
		{"Docker publishes it, to every source", Result{Verdict: Accept, Path: "forward", NAT: dockerNAT}, FixRequest{Port: 8080, Proto: "tcp", From: p("0.0.0.0/0"), Class: Internet},
			[]string{"docker run -p 127.0.0.1:8080:80/tcp …   (publish on loopback only)", "iptables -I DOCKER-USER -p tcp -m conntrack --ctorigdstport 8080 -j DROP", "portctl fw block 8080 --proto tcp"}},
		{"kube-proxy: no endpoints", Result{Verdict: Reject, Decider: step(FamilyIPv4, "filter", "KUBE-EXTERNAL-SERVICES", "reject", &Rule{Owner: Owner{OwnerKubeProxy, "default/empty:http"}}, NFTables)},
			FixRequest{Port: 30081, Proto: "tcp", Open: true},
			[]string{"kubectl -n default get endpointslices -l kubernetes.io/service-name=empty   (kube-proxy rejects: the service has no ready endpoints)"}},
		{"kube-proxy's nftables mode: no endpoints", Result{Verdict: Reject, Decider: step(FamilyIPv4, "kube-proxy", "reject-chain", "reject", &Rule{Owner: Owner{OwnerKubeProxy, "reject-chain"}}, NFTables)},
			FixRequest{Port: 30081, Proto: "tcp", Open: true},
			[]string{"kubectl get services -A | grep ':30081/'   (kube-proxy rejects: the service has no ready endpoints)"}},
		{"a NodePort to close", Result{Verdict: Accept, Path: "forward", NAT: &NAT{Step: Step{Owner: Owner{OwnerKubeProxy, "default/web:http"}}}},
			FixRequest{Port: 30080, Proto: "tcp"},
			[]string{`kubectl -n default patch service web -p '{"spec":{"type":"ClusterIP"}}'   (no NodePort)`, "portctl fw block 30080 --proto tcp"}},
		{"portctl's block", Result{Verdict: Drop, Decider: step(FamilyINet, "portctl", "pre", "drop", &Rule{Owner: Owner{OwnerPortctl, ""}}, NFTables)},
			FixRequest{Port: 8080, Proto: "udp", Open: true},
			[]string{"portctl fw unblock 8080", "portctl fw blocks   (the blocks, with their protocols and sources)"}},
		{"legacy hand rule", Result{Verdict: Drop, Decider: step(FamilyIPv6, "filter", "INPUT", "drop", legacyDrop, Legacy)},
			FixRequest{Port: 22, Proto: "tcp", Open: true, From: p("2001:db8::/32")},
			[]string{"ip6tables-legacy -I INPUT 3 -s 2001:db8::/32 -p tcp --dport 22 -j ACCEPT", "ip6tables-legacy -D INPUT 3"}},
		{"hand nft policy", Result{Verdict: Drop, Decider: step(FamilyINet, "filter", "input", "policy drop", nil, NFTables)},
			FixRequest{Port: 8443, Proto: "tcp", Open: true, From: p("2001:db8::1/128")},
			[]string{"nft add rule inet filter input ip6 saddr 2001:db8::1 tcp dport 8443 accept"}},
	} {
		if got := Fix(c.res, c.req); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Fix = %q; want %q", c.name, got, c.want)
		}
	}
}

func TestFixPodman(t *testing.T) {
	res := Result{Verdict: Accept, Path: "forward", NAT: &NAT{From: netip.MustParseAddrPort("10.1.1.1:8080"), To: netip.MustParseAddrPort("10.88.0.2:80"),
		Step: Step{Owner: Owner{OwnerPodman, "publishes tcp 8080 to 10.88.0.2:80"}}}}
	want := []string{"podman run -p 127.0.0.1:8080:80/tcp …   (publish on loopback only)", "portctl fw block 8080 --proto tcp"}
	if got := Fix(res, FixRequest{Port: 8080, Proto: "tcp"}); !reflect.DeepEqual(got, want) {
		t.Errorf("Fix = %q; want %q", got, want)
	}
}
