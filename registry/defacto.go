package registry

import (
	"cmp"
	"slices"
)

// Category groups de facto port uses, so that a reader (and the audit rules)
// can tell a development server from a database or a game.
type Category string

// The categories of de facto use.
const (
	CatDev        Category = "dev"        // development servers and tools
	CatWeb        Category = "web"        // web servers, proxies, admin panels
	CatDatabase   Category = "database"   // SQL and NoSQL databases, search engines
	CatCache      Category = "cache"      // in-memory caches and key-value stores
	CatBroker     Category = "broker"     // message brokers and streaming
	CatCloud      Category = "cloud"      // Kubernetes, containers, service mesh, cloud-native
	CatMonitoring Category = "monitoring" // metrics, logging, tracing
	CatRemote     Category = "remote"     // remote shells and desktops
	CatFile       Category = "file"       // file transfer and sharing
	CatMail       Category = "mail"       // mail transfer and access
	CatWindows    Category = "windows"    // Windows and Active Directory services
	CatInfra      Category = "infra"      // DNS, DHCP, NTP, directory, VPN, routing
	CatMedia      Category = "media"      // streaming, VoIP, media servers
	CatGame       Category = "game"       // game servers and platforms
	CatIoT        Category = "iot"        // IoT, home automation, industrial control
	CatOther      Category = "other"
)

// Use is what a port is used for in practice, which often differs from its
// IANA assignment: 3000 is IANA "remoteware-cl" but in practice a Node.js
// development server.
type Use struct {
	Port     uint16   `json:"port"`                // first port
	Last     uint16   `json:"last_port,omitempty"` // last port of a range, or 0 for a single port
	Protos   Protocol `json:"protocols"`           // protocols it is used with
	Category Category `json:"category"`
	Text     string   `json:"text"` // who uses it, in a short phrase: "Grafana web UI"
}

// Severity ranks how much a security note matters.
type Severity uint8

// The severities, from least to most serious.
const (
	SevInfo Severity = iota + 1
	SevLow
	SevMedium
	SevHigh
)

// Severities lists the severities from least to most serious.
var Severities = []Severity{SevInfo, SevLow, SevMedium, SevHigh}

// String returns "info", "low", "medium" or "high".
func (s Severity) String() string {
	switch s {
	case SevInfo:
		return "info"
	case SevLow:
		return "low"
	case SevMedium:
		return "medium"
	case SevHigh:
		return "high"
	}
	return "unknown"
}

// MarshalText encodes the severity as its String form.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// SecurityNote is advice about exposing a port: a plaintext protocol, a
// service that must be blocked at the network edge, a database that must not
// face the internet.
type SecurityNote struct {
	Port     uint16   `json:"port"`                // first port
	Last     uint16   `json:"last_port,omitempty"` // last port of a range, or 0 for a single port
	Protos   Protocol `json:"protocols"`           // protocols the note is about
	Severity Severity `json:"severity"`
	Text     string   `json:"text"` // what the risk is and what to do, one or two sentences
}

// Uses returns the de facto uses of port p for protocols in protos
// (AnyProtocol or 0 for all).
func Uses(p uint16, protos Protocol) []Use {
	return onPort(uses, p, protos, func(u Use) (uint16, uint16, Protocol) { return u.Port, u.Last, u.Protos })
}

// AllUses returns the whole de facto table, sorted by port. The caller must
// not modify it.
func AllUses() []Use { return uses }

// Notes returns the security notes about port p for protocols in protos
// (AnyProtocol or 0 for all), most severe first.
func Notes(p uint16, protos Protocol) []SecurityNote {
	out := onPort(securityNotes, p, protos, func(n SecurityNote) (uint16, uint16, Protocol) { return n.Port, n.Last, n.Protos })
	slices.SortStableFunc(out, func(a, b SecurityNote) int { return cmp.Compare(b.Severity, a.Severity) })
	return out
}

// AllNotes returns every security note, sorted by port. The caller must not
// modify it.
func AllNotes() []SecurityNote { return securityNotes }

func covers(first, last, p uint16) bool {
	if last < first {
		last = first
	}
	return p >= first && p <= last
}

// UnmarshalText decodes a severity from its String form.
func (s *Severity) UnmarshalText(b []byte) error {
	for _, k := range Severities {
		if string(b) == k.String() {
			*s = k
			return nil
		}
	}
	return syntaxf("unknown severity %q (want info, low, medium or high)", b)
}

// onPort returns the entries of all that cover port p for protocols in
// protos (AnyProtocol or 0 for all); at tells an entry's ports and protocols.
func onPort[T any](all []T, p uint16, protos Protocol, at func(T) (first, last uint16, protos Protocol)) []T {
	if protos == 0 {
		protos = AnyProtocol
	}
	var out []T
	for _, e := range all {
		if first, last, ps := at(e); covers(first, last, p) && ps&protos != 0 {
			out = append(out, e)
		}
	}
	return out
}
