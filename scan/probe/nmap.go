package probe

import (
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
	for _, p := range db.ForPort(d.t.Proto, port) {
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
