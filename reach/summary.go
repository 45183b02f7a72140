package reach

import "github.com/portctl/portctl/firewall"

// Exposure is the widest class of clients that can reach a port.
type Exposure string

const (
	FromInternet Exposure = "internet"
	FromLAN      Exposure = "lan"
	LoopbackOnly Exposure = "loopback"
	Nobody       Exposure = "nobody"
	// NotKnown: a layer depends on something not known, before any
	// class was found to reach the port.
	NotKnown Exposure = "unknown"
)

// Summary is who may reach a port and what decides it.
type Summary struct {
	Exposure Exposure `json:"reachable_from"`
	// Partial is set when the widest class reaches it from part of its
	// range only.
	Partial bool `json:"partial,omitempty"`
	// Classes is the verdict for each class asked.
	Classes map[firewall.Class]Verdict `json:"classes"`
	// Decided is the layer that settles the exposure: the one that stops
	// the next wider class, or, for the internet, the rule that lets it in.
	Decided *Layer `json:"decided_by,omitempty"`
}

// Summarize says who may reach a port from the answers for the three
// classes. With noSocket, the socket layer is left out: for a port the
// firewall opens while nothing listens, it says who the firewall lets in.
func Summarize(as []Answer, noSocket bool) Summary {
	s := Summary{Exposure: Nobody, Classes: map[firewall.Class]Verdict{}}
	by := map[firewall.Class]Answer{}
	for _, a := range as {
		if a.Source.Class == "" {
			continue
		}
		if noSocket {
			a = withoutSocket(a)
		}
		by[a.Source.Class] = a
		s.Classes[a.Source.Class] = a.Verdict
	}
	order := []struct {
		c firewall.Class
		e Exposure
	}{{firewall.Internet, FromInternet}, {firewall.LAN, FromLAN}, {firewall.Loopback, LoopbackOnly}}
	for i, o := range order {
		a, ok := by[o.c]
		if !ok {
			continue
		}
		switch a.Verdict {
		case Reachable, Partial:
			s.Exposure, s.Partial = o.e, a.Verdict == Partial
			if i == 0 {
				s.Decided = firstLayer(a, LayerFirewall, Pass)
				if p := firstPiece(a, Reachable); p != nil && p.Firewall.NAT != nil {
					s.Decided = layerOf(*p, LayerNAT)
				}
			} else {
				s.Decided = stopper(by, order[i-1].c)
			}
			return s
		case Unknown:
			if len(a.Pieces) == 0 { // no address of the class's family: nothing to say
				continue
			}
			s.Exposure = NotKnown
			s.Decided = firstLayer(a, "", Depends)
			return s
		}
	}
	if a, ok := by[firewall.Loopback]; ok {
		s.Decided = firstLayer(a, "", Block)
	} else {
		for _, o := range order {
			if a, ok := by[o.c]; ok {
				s.Decided = firstLayer(a, "", Block)
				break
			}
		}
	}
	return s
}

// stopper is the layer that stops class c (the next wider one).
func stopper(by map[firewall.Class]Answer, c firewall.Class) *Layer {
	if a, ok := by[c]; ok {
		return firstLayer(a, "", Block)
	}
	return nil
}

func firstPiece(a Answer, v Verdict) *Piece {
	for i := range a.Pieces {
		if a.Pieces[i].Verdict == v {
			return &a.Pieces[i]
		}
	}
	return nil
}

func layerOf(p Piece, name string) *Layer {
	for i := range p.Layers {
		if p.Layers[i].Layer == name {
			l := p.Layers[i]
			return &l
		}
	}
	return nil
}

// firstLayer finds the first layer named name (any, when empty) with
// verdict v in a's pieces.
func firstLayer(a Answer, name string, v LayerVerdict) *Layer {
	for _, p := range a.Pieces {
		for _, l := range p.Layers {
			if (name == "" || l.Layer == name) && l.Verdict == v {
				return &l
			}
		}
	}
	return nil
}

// withoutSocket is a with its socket layers left out of the verdicts.
func withoutSocket(a Answer) Answer {
	out := a
	out.Pieces = make([]Piece, len(a.Pieces))
	for i, p := range a.Pieces {
		var ls []Layer
		for _, l := range p.Layers {
			if l.Layer != LayerSocket {
				ls = append(ls, l)
			}
		}
		p.Layers = ls
		p.Verdict = pieceVerdict(ls)
		out.Pieces[i] = p
	}
	out.Verdict = aggregate(out.Pieces)
	return out
}
