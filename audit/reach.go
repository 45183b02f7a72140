package audit

import (
	"cmp"
	"slices"
	"strings"

	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/reach"
	"github.com/portctl/portctl/sockets"
)

// Reachability asks package reach what the ruleset rs of host h lets
// reach each listener of socks from the internet, the LAN and this
// machine (its socket, route, firewall and NAT layers), and sums each
// answer up as an Admission. It is how audit, who and the dashboard all
// turn a ruleset and a socket table into "who may reach port X"; the
// reasoning itself is reach.Analyze's alone.
func Reachability(rs *firewall.Ruleset, h *firewall.Host, socks []sockets.Socket) *Firewall {
	type key struct {
		proto sockets.Proto
		port  uint16
	}
	var ls []reach.Listener
	var order []key
	for i := range socks {
		s := &socks[i]
		if !isListener(s) {
			continue
		}
		k := key{baseProto(s.Proto), s.Local.Port()}
		if !slices.Contains(order, k) {
			order = append(order, k)
		}
		ls = append(ls, ReachListener(s))
	}
	slices.SortFunc(order, func(a, b key) int { return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(a.port, b.port)) })
	srcs := reach.SpreadSources(h, reach.SpreadClients)
	fw := &Firewall{Ports: make([]PortReach, 0, len(order))}
	for _, k := range order {
		pr := PortReach{Proto: k.proto, Protocol: k.proto.String(), Port: k.port}
		as := reach.Analyze(reach.Input{Port: k.port, Proto: reachProto(k.proto), Sources: srcs, Listeners: ls, Ruleset: rs, Host: h})
		for _, a := range as {
			pr.From = append(pr.From, admission(a))
		}
		sum := reach.Summarize(as, false)
		pr.Exposure, pr.Partial, pr.Decided = sum.Exposure, sum.Partial, sum.Decided
		fw.Ports = append(fw.Ports, pr)
	}
	return fw
}

// OpenedNetBIOS asks package reach whether the ruleset rs lets the
// internet in to the NetBIOS and SMB ports (137-139 and 445, TCP and UDP)
// that no listener of socks takes, for Firewall.Opened: the firewall alone,
// as if something listened.
func OpenedNetBIOS(rs *firewall.Ruleset, h *firewall.Host, socks []sockets.Socket) []PortReach {
	var ls []reach.Listener
	listened := map[[2]uint16]bool{}
	for i := range socks {
		if s := &socks[i]; isListener(s) {
			ls = append(ls, ReachListener(s))
			listened[[2]uint16{uint16(baseProto(s.Proto)), s.Local.Port()}] = true
		}
	}
	src := []reach.Source{reach.ClassSource(firewall.Internet, h)}
	var out []PortReach
	for _, proto := range []sockets.Proto{sockets.TCP, sockets.UDP} {
		for _, rg := range netbios {
			for p := rg.First; p <= rg.Last; p++ {
				if listened[[2]uint16{uint16(proto), p}] {
					continue
				}
				as := reach.Analyze(reach.Input{Port: p, Proto: reachProto(proto), Sources: src, Listeners: ls, Ruleset: rs, Host: h})
				if reach.Summarize(as, true).Exposure != reach.FromInternet {
					continue
				}
				pr := PortReach{Proto: proto, Protocol: proto.String(), Port: p, Exposure: reach.FromInternet}
				for _, a := range as {
					for _, pc := range a.Pieces {
						if pc.Firewall.Verdict != firewall.Accept {
							continue
						}
						ad := Admission{From: firewall.Internet, Verdict: firewall.Accept, Layer: reach.LayerFirewall,
							Rule: pc.Firewall.Decider, NAT: pc.Firewall.NAT, Path: pc.Firewall.Path}
						if ad.Rule != nil {
							ad.DecidedBy = reach.StepString(*ad.Rule)
						}
						pr.From = []Admission{ad}
						break
					}
				}
				out = append(out, pr)
			}
		}
	}
	return out
}

// ReachListener is the listening socket s as package reach takes it.
func ReachListener(s *sockets.Socket) reach.Listener {
	l := reach.Listener{Proto: reachProto(baseProto(s.Proto)), Local: s.Local, V6Only: s.V6Only}
	if len(s.Processes) > 0 {
		l.Holder = s.Processes[0].Name
	}
	return l
}

func reachProto(p sockets.Proto) uint8 {
	if p == sockets.UDP {
		return reach.UDP
	}
	return reach.TCP
}

// admission sums up reach's answer for one source class: accept when a
// piece of the class gets through, else the first blocking piece's
// layer and rule.
func admission(a reach.Answer) Admission {
	ad := Admission{From: a.Source.Class, Verdict: firewall.Unknown, Layer: reach.LayerFirewall}
	if len(a.Pieces) == 0 {
		// No address of the class's family to reach this machine by.
		ad.Verdict, ad.Layer = firewall.Drop, reach.LayerRoute
		if a.Note != "" {
			ad.DependsOn = []string{a.Note}
		}
		return ad
	}
	want := map[reach.Verdict]bool{reach.Reachable: true, reach.Partial: true}
	if a.Verdict == reach.Unknown {
		want = map[reach.Verdict]bool{reach.Unknown: true}
	} else if a.Verdict == reach.Unreachable {
		want = map[reach.Verdict]bool{reach.Unreachable: true}
	}
	i := slices.IndexFunc(a.Pieces, func(p reach.Piece) bool { return want[p.Verdict] })
	if i < 0 {
		i = 0
	}
	p := a.Pieces[i]
	res := p.Firewall
	ad.Rule, ad.NAT, ad.Path = res.Decider, res.NAT, res.Path
	if res.Decider != nil {
		ad.DecidedBy = reach.StepString(*res.Decider)
	}
	for _, st := range res.Steps {
		ad.RulesMet = append(ad.RulesMet, reach.StepString(st)+": "+st.Action)
	}
	if p.Bypass != nil && (p.Bypass.Owner.Name == "ufw" || p.Bypass.Owner.Name == "firewalld") {
		ad.Bypasses = p.Bypass
	}
	switch p.Verdict {
	case reach.Reachable, reach.Partial:
		ad.Verdict = firewall.Accept
	case reach.Unreachable:
		ad.Verdict = firewall.Drop
		for _, l := range p.Layers {
			if l.Verdict == reach.Block {
				ad.Layer = l.Layer
				if l.Layer == reach.LayerFirewall && res.Verdict == firewall.Reject {
					ad.Verdict = firewall.Reject
				}
				if l.Layer != reach.LayerFirewall {
					ad.DependsOn = []string{l.Detail} // what keeps it out, for people
				}
				break
			}
		}
	default:
		for _, l := range p.Layers {
			if l.Verdict == reach.Depends {
				ad.DependsOn = append(ad.DependsOn, strings.TrimPrefix(l.Detail, "depends on "))
			}
		}
		if len(ad.DependsOn) == 0 {
			ad.DependsOn = res.DependsOn
		}
	}
	if a.Verdict == reach.Partial && ad.Verdict == firewall.Accept {
		ad.Partial = true
	}
	return ad
}
