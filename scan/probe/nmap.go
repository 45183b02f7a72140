package probe

import (
	"slices"

	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan/probe/nmapdb"
)

// maxRarity is the rarest probe tried on a port it is not listed for, as
// nmap's default --version-intensity 7.
const maxRarity = 7

// nmapProbes tries the probes of cfg.DB after this package's own found
// nothing: the probes for the port in nmap's order, each on its own
// connection (TCP) or socket (UDP). A hard match wins; a softmatch (soft,
// the greeting's when tcp found one) is kept in case none comes.
func (d *detector) nmapProbes(soft *Service) Service {
	db := d.cfg.DB
	port := d.t.Addr.Port()
	if db == nil || db.Exclude.Contains(d.t.Proto, port) {
		return Service{}
	}
	probes := db.ForPort(d.t.Proto, port)
	if d.cfg.MaxProbes <= 0 {
		// nmap's own allowance: every probe it would send at its
		// default intensity (where the loop below stops), after ours,
		// whatever ours took.
		d.limit = d.probes + len(probes)
	}
	for _, p := range probes {
		if p.Name == nmapdb.NullProbe {
			continue
		}
		if !p.HasPort(port) && p.Rarity > maxRarity || !d.more() {
			break
		}
		c, err := d.dial(d.t.Proto.String())
		if err != nil {
			break
		}
		b := d.exchangeFor(c, p.Payload, min(p.TotalWait, d.wait()), nil)
		c.Close()
		if len(b) == 0 {
			continue
		}
		r, ok := db.MatchAll(p, b)
		if !ok {
			continue
		}
		s := fromNmap(r)
		if !r.Soft {
			return s
		}
		if soft == nil {
			soft = &s
		}
	}
	if soft != nil {
		return *soft
	}
	return Service{}
}

// nmapGreeting matches what a TCP server said unasked against the NULL
// probe's matches of cfg.DB.
func (d *detector) nmapGreeting(banner []byte) (Service, bool) {
	db := d.cfg.DB
	if db == nil {
		return Service{}, false
	}
	r, ok := db.MatchAll(db.ProbeFor(registry.TCP, nmapdb.NullProbe), banner)
	if !ok {
		return Service{}, false
	}
	return fromNmap(r), true
}

// fromNmap turns a match of nmap's database into a Service.
func fromNmap(r nmapdb.Result) Service {
	s := Service{Name: r.Service, Product: r.Product, Version: r.Version, CPE: r.CPE,
		Evidence: Escape(r.Matched), Probe: "nmap:" + r.Probe, Confidence: 10}
	if r.Soft {
		s.Confidence = 5
	}
	s.add("info", r.Info)
	s.add("hostname", r.Hostname)
	s.add("os", r.OS)
	s.add("device", r.DeviceType)
	return s
}

// nmapFollow sends cfg.DB's probe called name after one of this
// package's own found the service s, when the database has one and the
// budget allows: its matches may name the product. A hard match for one
// of the services names (nmap's names for the same protocol) fills in
// what s lacks, the version only when read from the answer; anything
// else leaves s as it was.
func (d *detector) nmapFollow(s Service, name string, names ...string) Service {
	db := d.cfg.DB
	if db == nil || s.Product != "" || !d.more() {
		return s
	}
	p := db.ProbeFor(d.t.Proto, name)
	if p == nil {
		return s
	}
	c, err := d.dial(d.t.Proto.String())
	if err != nil {
		return s
	}
	b := d.exchangeFor(c, p.Payload, min(p.TotalWait, d.wait()), nil)
	c.Close()
	r, ok := db.MatchAll(p, b)
	if !ok || r.Soft || !slices.Contains(names, r.Service) || r.Product == "" {
		return s
	}
	n := fromNmap(r)
	s.Name, s.Product, s.CPE = n.Name, n.Product, n.CPE
	// A version the line asserts rather than reads is not the server's
	// word: nmap's line for Samba with SMB1 off says 4.6.2 for every
	// release since.
	if r.VersionRead {
		s.Version = n.Version
	}
	s.Extra = append(s.Extra, n.Extra...)
	s.Probe += "+nmap:" + name
	return s
}

// nmapAnswer matches b, the answer to one of this package's own probes
// that asks what cfg.DB's probe called name asks (our "GET /" and nmap's
// GetRequest), against that probe's matches, when s names no product: a
// hard match of the same service fills in the product, no probe sent.
func (d *detector) nmapAnswer(s Service, name string, b []byte) Service {
	if s.Product != "" {
		return s
	}
	n, ok := d.nmapMatch(name, b)
	if !ok || n.Name != s.Name || n.Product == "" {
		return s
	}
	s.Product, s.Version, s.CPE = n.Product, n.Version, n.CPE
	s.Extra = append(s.Extra, n.Extra...)
	s.Probe += "+nmap:" + name
	return s
}

// nmapMatch matches b, the answer to one of this package's probes that
// asks what cfg.DB's probe called name asks, against that probe's lines
// (and those it falls back on): a hard match only.
func (d *detector) nmapMatch(name string, b []byte) (Service, bool) {
	db := d.cfg.DB
	if db == nil {
		return Service{}, false
	}
	r, ok := db.MatchAll(db.ProbeFor(d.t.Proto, name), b)
	if !ok || r.Soft {
		return Service{}, false
	}
	s := fromNmap(r)
	s.Probe = "http+nmap:" + name
	if name != "GetRequest" {
		s.Probe = "nmap:" + name
	}
	return s, true
}

// altMatch matches the answer to our GET that was not HTTP, if any,
// against nmap's GetRequest lines, once.
func (d *detector) altMatch() (Service, bool) {
	if d.getAnswer == nil {
		return Service{}, false
	}
	b := d.getAnswer
	d.getAnswer = nil
	return d.nmapMatch("GetRequest", b)
}

// withAlt completes s, found by one of this package's probes, with the
// product and version nmap's GetRequest lines name for the same service
// from the answer to our GET (altMatch), when s names none.
func (d *detector) withAlt(s Service) Service {
	if s.Product != "" {
		return s
	}
	alt, ok := d.altMatch()
	if !ok || alt.Name != s.Name || alt.Product == "" {
		return s
	}
	s.Product, s.Version, s.CPE = alt.Product, alt.Version, alt.CPE
	s.Probe += "+" + alt.Probe
	return s
}
