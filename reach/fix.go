package reach

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/portctl/portctl/firewall"
)

// FixStep is one change a piece needs, at one layer, as commands to
// paste: any one of Options does it (the best first).
type FixStep struct {
	Layer   string   `json:"layer"`
	Options []string `json:"options"`
	// Close is set when the change keeps the port closed, as a deny the
	// packet goes round intends, rather than letting it in.
	Close bool `json:"close,omitempty"`
}

// fixes lists what to change for piece p, in the owner's terms: for an
// unreachable piece, what lets it in at each layer that blocks it; for a
// DNAT that bypasses a deny, what keeps it out as the deny intends.
func fixes(in Input, source Source, p Piece, src netip.Addr) []FixStep {
	var out []FixStep
	add := func(layer string, close bool, s ...string) {
		st := FixStep{Layer: layer, Close: close}
		for _, f := range s {
			if f != "" && !slices.Contains(st.Options, f) {
				st.Options = append(st.Options, f)
			}
		}
		if len(st.Options) > 0 {
			out = append(out, st)
		}
	}
	if p.Bypass != nil && p.Firewall.NAT != nil {
		fs := firewall.Fix(p.Firewall, fixRequest(in, source, p, false))
		if len(fs) == 0 {
			fs = closeFix(in, p)
		}
		add(LayerNAT, true, fs...)
		return out
	}
	if p.Verdict == Reachable {
		return nil
	}
	for _, l := range p.Layers {
		if l.Verdict != Block {
			continue
		}
		switch l.Layer {
		case LayerSocket:
			add(l.Layer, false, bindFix(in, p)...)
		case LayerRPFilter:
			add(l.Layer, false, fmt.Sprintf("sysctl -w net.ipv4.conf.%s.rp_filter=2 (loose: any route back will do)", p.InIface))
		case LayerNAT:
			if p.Firewall.NAT != nil && p.Firewall.NAT.To.Addr().Is6() {
				add(l.Layer, false, "sysctl -w net.ipv6.conf.all.forwarding=1")
			} else {
				add(l.Layer, false, "sysctl -w net.ipv4.ip_forward=1")
			}
		case LayerFirewall:
			fs := firewall.Fix(p.Firewall, fixRequest(in, source, p, true))
			if len(fs) == 0 {
				fs = firewallFix(in, p, src)
			}
			add(l.Layer, false, fs...)
		}
	}
	return out
}

// mergeFixes adds steps to have, joining the options of steps at the
// same layer.
func mergeFixes(have []FixStep, steps []FixStep) []FixStep {
	for _, st := range steps {
		i := slices.IndexFunc(have, func(h FixStep) bool { return h.Layer == st.Layer && h.Close == st.Close })
		if i < 0 {
			have = append(have, FixStep{Layer: st.Layer, Close: st.Close})
			i = len(have) - 1
		}
		for _, o := range st.Options {
			if !slices.Contains(have[i].Options, o) {
				have[i].Options = append(have[i].Options, o)
			}
		}
	}
	return have
}

// flatFixes lists every option of steps once.
func flatFixes(steps []FixStep) []string {
	out := []string{}
	for _, st := range steps {
		for _, o := range st.Options {
			if !slices.Contains(out, o) {
				out = append(out, o)
			}
		}
	}
	return out
}

// bindFix says how the listener should bind to take the packet.
func bindFix(in Input, p Piece) []string {
	var out []string
	to := p.To
	if p.Firewall.NAT != nil && p.Firewall.To.IsValid() {
		to = p.Firewall.To
	}
	for _, l := range in.Listeners {
		if l.Proto != in.Proto || l.Local.Port() != to.Port() {
			continue
		}
		la := l.Local.Addr().Unmap()
		switch {
		case l.Device != "" && l.Device != p.InIface:
			out = append(out, fmt.Sprintf("bind without SO_BINDTODEVICE (or to device %s) instead of device %s", p.InIface, l.Device))
		case la.IsLoopback() && la.Is4():
			out = append(out, fmt.Sprintf("bind to 0.0.0.0 (or %s) instead of %s", to.Addr(), la))
		case la.IsLoopback():
			out = append(out, fmt.Sprintf("bind to [::] (or %s) instead of [::1]", to.Addr()))
		case la.IsUnspecified() && la.Is6() && l.V6Only:
			out = append(out, "listen on 0.0.0.0 as well, or turn IPV6_V6ONLY off (net.ipv6.bindv6only=0)")
		case la.IsUnspecified() && la.Is4():
			out = append(out, "listen on [::] as well (it takes IPv4 too, unless IPV6_V6ONLY)")
		case la.IsUnspecified():
			out = append(out, "listen on 0.0.0.0 as well")
		default:
			out = append(out, fmt.Sprintf("bind to %s (or 0.0.0.0) instead of %s", to.Addr(), la))
		}
	}
	return out
}

// fixRequest is what firewall.Fix is asked for the piece: the source as
// one prefix where it is one, else its class.
func fixRequest(in Input, source Source, p Piece, open bool) firewall.FixRequest {
	r := firewall.FixRequest{Port: in.Port, Proto: ProtoName(in.Proto), Class: source.Class, Open: open}
	switch {
	case len(p.From) == 1 && (source.Class != firewall.Internet || p.From[0].Bits() == 0):
		r.From = p.From[0]
	case source.Class == "" && len(source.From) == 1:
		r.From = source.From[0]
	}
	return r
}

// firewallFix is a fix for rules firewall.Fix has no answer for.
func firewallFix(in Input, p Piece, src netip.Addr) []string {
	d := p.Firewall.Decider
	if d == nil {
		return nil
	}
	proto := ProtoName(in.Proto)
	from := fromString(p.From)
	port := p.To.Port()
	switch d.Owner.Name {
	case "ufw":
		if from == "any" {
			return []string{fmt.Sprintf("ufw allow %d/%s", port, proto)}
		}
		return []string{fmt.Sprintf("ufw allow from %s to any port %d proto %s", from, port, proto)}
	case "firewalld":
		zone := "public"
		if z, ok := strings.CutPrefix(d.Owner.Detail, "zone "); ok && z != "" {
			zone = strings.Fields(z)[0]
		}
		if from == "any" {
			return []string{fmt.Sprintf("firewall-cmd --zone=%s --add-port=%d/%s", zone, port, proto)}
		}
		return []string{fmt.Sprintf("firewall-cmd --zone=%s --add-rich-rule='rule family=%s source address=%s port port=%d protocol=%s accept'", zone, ipv(src), from, port, proto)}
	}
	fam := firewall.FamilyName(d.Family)
	if d.Source == firewall.Legacy {
		cmd := "iptables"
		if fam == "ip6" {
			cmd = "ip6tables"
		}
		return []string{fmt.Sprintf("%s-legacy -t %s -I %s -p %s --dport %d%s -j ACCEPT", cmd, d.Table, d.Chain, proto, port, iptFrom(from))}
	}
	if d.Rule == nil && d.Handle == 0 {
		return []string{fmt.Sprintf("nft insert rule %s %s %s %s%s dport %d accept", fam, d.Table, d.Chain, nftFrom(src, from), proto, port)}
	}
	return []string{fmt.Sprintf("nft delete rule %s %s %s handle %d", fam, d.Table, d.Chain, d.Handle)}
}

// closeFix keeps a DNAT'd port off the network as the deny it bypasses
// intends: publish it on loopback only.
func closeFix(in Input, p Piece) []string {
	n := p.Firewall.NAT
	owner := n.Step.Owner.Name
	if owner == "docker" || strings.HasPrefix(n.Step.Chain, "DOCKER") {
		return []string{
			fmt.Sprintf("docker run -p 127.0.0.1:%d:%d … (publish on loopback only)", n.From.Port(), n.To.Port()),
			fmt.Sprintf("iptables -I DOCKER-USER -p %s -m conntrack --ctorigdstport %d ! -s 127.0.0.0/8 -j DROP (keeps the deny for every container)", ProtoName(in.Proto), n.From.Port()),
		}
	}
	return []string{fmt.Sprintf("remove the DNAT (%s), or drop the port in the forward path", StepString(n.Step))}
}

func ipv(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// fromString spells a piece's source for a command: "any" for the whole
// of a family, else its prefixes joined by commas.
func fromString(ps []netip.Prefix) string {
	var s []string
	for _, p := range ps {
		if p.Bits() == 0 {
			return "any"
		}
		if p.IsSingleIP() {
			s = append(s, p.Addr().String())
		} else {
			s = append(s, p.String())
		}
	}
	return strings.Join(s, ",")
}

func nftFrom(src netip.Addr, from string) string {
	if from == "any" {
		return ""
	}
	kw := "ip"
	if !src.Unmap().Is4() {
		kw = "ip6"
	}
	if strings.Contains(from, ",") {
		return fmt.Sprintf("%s saddr { %s } ", kw, strings.ReplaceAll(from, ",", ", "))
	}
	return fmt.Sprintf("%s saddr %s ", kw, from)
}

func iptFrom(from string) string {
	if from == "any" {
		return ""
	}
	return " -s " + from
}

// mergePieces joins pieces every layer treats alike.
func mergePieces(ps []Piece) []Piece {
	var out []Piece
	key := func(p Piece) string {
		var b strings.Builder
		fmt.Fprintf(&b, "%s|%s|%s|", p.Verdict, p.To, p.InIface)
		for _, l := range p.Layers {
			fmt.Fprintf(&b, "%s=%s:%s|", l.Layer, l.Verdict, l.Detail)
		}
		b.WriteString(strings.Join(p.Fix, "|"))
		return b.String()
	}
	keys := map[string]int{}
	for _, p := range ps {
		k := key(p)
		if i, ok := keys[k]; ok {
			out[i].From = append(out[i].From, p.From...)
			continue
		}
		keys[k] = len(out)
		out = append(out, p)
	}
	return out
}
