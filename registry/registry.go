package registry

import (
	"bytes"
	"cmp"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Assignment is one entry of the IANA registry: a service name assigned to a
// port (or a range of ports) for one transport protocol. A port often has
// several assignments, one per protocol and sometimes several names.
//
// The fields from Reference on come from IANA's CSV only and keep its
// syntax; References and People turn them into text to show.
type Assignment struct {
	Port        uint16   `json:"port"`
	Last        uint16   `json:"last_port,omitempty"` // last port of a range; 0 for a single port
	Proto       Protocol `json:"protocol"`
	Name        string   `json:"name"`              // service name; empty for reserved ports
	Aliases     []string `json:"aliases,omitempty"` // other names, from services(5) files
	Description string   `json:"description"`
	Reference   string   `json:"reference,omitempty"`  // such as "[RFC9110]"
	Assignee    string   `json:"assignee,omitempty"`   // such as "[IESG]"
	Contact     string   `json:"contact,omitempty"`    // such as "[IETF_Chair]"
	Registered  string   `json:"registered,omitempty"` // "2005-08" or "2005-08-01"
	Modified    string   `json:"modified,omitempty"`   // as Registered
	Notes       string   `json:"notes,omitempty"`      // IANA's assignment notes
	// UnauthorizedUse is IANA's note of a use of the port without an
	// assignment, such as "Known Unauthorized Use on 106".
	UnauthorizedUse string `json:"unauthorized_use,omitempty"`
}

// Range returns the ports the assignment covers.
func (a Assignment) Range() Range {
	if a.Last > a.Port {
		return Range{a.Port, a.Last}
	}
	return Range{a.Port, a.Port}
}

// Source names one input the registry data was built from, with its version
// and license.
type Source struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	License string `json:"license"`
}

// Registry answers lookups over the IANA assignments, the de facto uses and
// the security notes. A Registry is safe for concurrent use.
//
// The assignments are either the built-in rows, which hold no pointers
// (see builtin.go), or, for a registry built from other data, a
// []Assignment; len, at and the other ...At methods read either.
type Registry struct {
	rows        []builtinRow // the built-in data; nil when assignments is used
	assignments []Assignment // sorted by Port, Last, Proto, Name
	byName      []int32      // indexes of assignments sorted by lowercase Name
	aliases     []aliasRef   // sorted by lowercase alias
	aliasText   string       // the text aliases points into
	ranged      []int32      // indexes of assignments that cover a range
	sources     []Source

	services     func() ([]byte, error)
	servicesOnce sync.Once
	local        *Registry // the services(5) overlay, once read
}

// aliasRef points an alias, aliasText[Off:Off+Len], at the assignment that
// carries it. It holds no string, so that builtinAliases has no pointers;
// the aliases of the index are together in aliasText so that a lookup by
// alias reads no more than the index and that text.
type aliasRef struct {
	Index    int32
	Off, Len uint32
}

// Options configures New.
type Options struct {
	// Assignments replaces the built-in IANA data, for example with a copy
	// read from a newer registry CSV. Nil keeps the built-in data.
	Assignments []Assignment
	// Sources describes where Assignments came from.
	Sources []Source
	// Services, when set, returns a services(5) file (such as /etc/services).
	// It is called at most once, on the first lookup by name that the
	// registry data cannot answer, and its entries answer such lookups.
	Services func() ([]byte, error)
}

var (
	builtinOnce sync.Once
	builtin     *Registry
)

// Builtin returns the registry built into the binary, without a services(5)
// overlay.
func Builtin() *Registry {
	builtinOnce.Do(func() {
		builtin = &Registry{
			rows:      builtinRows[:],
			byName:    builtinByName[:],
			aliases:   builtinAliases[:],
			aliasText: builtinAliasText,
			ranged:    builtinRanged[:],
			sources:   builtinSources,
		}
	})
	return builtin
}

// New returns a registry over opts.Assignments (or the built-in data when
// that is nil) with the services(5) overlay of opts.Services.
func New(opts Options) *Registry {
	var r *Registry
	if opts.Assignments == nil {
		b := Builtin()
		r = &Registry{rows: b.rows, assignments: b.assignments, byName: b.byName, aliases: b.aliases, aliasText: b.aliasText, ranged: b.ranged, sources: b.sources}
	} else {
		r = index(opts.Assignments)
		r.sources = opts.Sources
	}
	r.services = opts.Services
	return r
}

// index sorts a copy of as and builds the lookup indexes.
func index(as []Assignment) *Registry {
	as = slices.Clone(as)
	SortAssignments(as)
	aliases, aliasText := aliasIndex(as)
	return &Registry{
		assignments: as,
		byName:      NameIndex(as),
		aliases:     aliases,
		aliasText:   aliasText,
		ranged:      rangedIndex(as),
	}
}

// SortAssignments sorts as in the registry's order: by port, last port,
// protocol and name.
func SortAssignments(as []Assignment) {
	slices.SortStableFunc(as, func(a, b Assignment) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Last, b.Last),
			cmp.Compare(a.Proto, b.Proto), strings.Compare(a.Name, b.Name))
	})
}

// NameIndex returns the indexes of the named assignments in as, sorted by
// lowercase name and then by position. The generator uses it to build the
// built-in index ahead of time.
func NameIndex(as []Assignment) []int32 {
	var idx []int32
	for i, a := range as {
		if a.Name != "" {
			idx = append(idx, int32(i))
		}
	}
	slices.SortStableFunc(idx, func(i, j int32) int {
		return CompareFold(as[i].Name, as[j].Name)
	})
	return idx
}

// aliasIndex returns the aliases of as sorted by lowercase alias (and then
// by position), with the text they point into. The generator writes the
// built-in index the same way.
func aliasIndex(as []Assignment) ([]aliasRef, string) {
	type ref struct {
		alias string
		index int32
	}
	var refs []ref
	for i, a := range as {
		for _, al := range a.Aliases {
			refs = append(refs, ref{al, int32(i)})
		}
	}
	slices.SortStableFunc(refs, func(a, b ref) int { return CompareFold(a.alias, b.alias) })
	var (
		out  []aliasRef
		text strings.Builder
	)
	for _, r := range refs {
		out = append(out, aliasRef{r.index, uint32(text.Len()), uint32(len(r.alias))})
		text.WriteString(r.alias)
	}
	return out, text.String()
}

func rangedIndex(as []Assignment) []int32 {
	var idx []int32
	for i, a := range as {
		if a.Last > a.Port {
			idx = append(idx, int32(i))
		}
	}
	return idx
}

// CompareFold compares ASCII strings ignoring case, without allocating: the
// order of the registry's name and alias indexes.
func CompareFold(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := lower(a[i]), lower(b[i])
		if ca != cb {
			return cmp.Compare(ca, cb)
		}
	}
	return cmp.Compare(len(a), len(b))
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Sources returns the inputs the registry's assignments were built from.
func (r *Registry) Sources() []Source { return slices.Clone(r.sources) }

// Len returns the number of assignments.
func (r *Registry) Len() int { return r.len() }

// All returns every assignment, in port order. The caller must not modify
// the result. For the built-in data the slice is built on the first call.
func (r *Registry) All() []Assignment {
	if r.rows != nil {
		return builtinAssignments()
	}
	return r.assignments
}

func (r *Registry) len() int {
	if r.rows != nil {
		return len(r.rows)
	}
	return len(r.assignments)
}

// at returns the i-th assignment.
func (r *Registry) at(i int) Assignment {
	if r.rows != nil {
		return r.rows[i].assignment()
	}
	return r.assignments[i]
}

// rangeAt returns the ports and protocol of the i-th assignment, without
// building it.
func (r *Registry) rangeAt(i int) (port, last uint16, proto Protocol) {
	if r.rows != nil {
		w := &r.rows[i]
		return w.Port, w.Last, w.Proto
	}
	a := &r.assignments[i]
	return a.Port, a.Last, a.Proto
}

// searchAt returns the texts of the i-th assignment that Search looks at
// first, without building it.
func (r *Registry) searchAt(i int) (name, description string, aliases []string) {
	if r.rows != nil {
		w := &r.rows[i]
		return w.name(), w.description(), builtinAliasLists[w.Aliases]
	}
	a := &r.assignments[i]
	return a.Name, a.Description, a.Aliases
}

// nameAt returns the name of the i-th assignment.
func (r *Registry) nameAt(i int32) string {
	if r.rows != nil {
		return r.rows[i].name()
	}
	return r.assignments[i].Name
}

// alias returns the alias ref points at.
func (r *Registry) alias(ref aliasRef) string { return r.aliasText[ref.Off : ref.Off+ref.Len] }

// first returns the index of the first assignment of port p or above.
func (r *Registry) first(p uint16) int {
	return sort.Search(r.len(), func(i int) bool {
		port, _, _ := r.rangeAt(i)
		return port >= p
	})
}

// Port returns every assignment that covers port p, for protocols in protos
// (AnyProtocol or 0 for all), in protocol and name order.
func (r *Registry) Port(p uint16, protos Protocol) []Assignment {
	if protos == 0 {
		protos = AnyProtocol
	}
	var out []Assignment
	for i, n := r.first(p), r.len(); i < n; i++ {
		port, last, proto := r.rangeAt(i)
		if port != p {
			break
		}
		if proto&protos != 0 && last <= port {
			out = append(out, r.at(i))
		}
	}
	for _, j := range r.ranged {
		if port, last, proto := r.rangeAt(int(j)); (Range{port, max(port, last)}).Contains(p) && proto&protos != 0 {
			out = append(out, r.at(int(j)))
		}
	}
	return out
}

// Name returns the assignments whose name or alias equals name, ignoring
// case, for protocols in protos (AnyProtocol or 0 for all). When the
// registry has none, the services(5) overlay is asked.
func (r *Registry) Name(name string, protos Protocol) []Assignment {
	if protos == 0 {
		protos = AnyProtocol
	}
	var out []Assignment
	add := func(a Assignment) {
		if a.Proto&protos == 0 {
			return
		}
		for _, b := range out {
			if b.Port == a.Port && b.Last == a.Last && b.Proto == a.Proto && b.Name == a.Name {
				return
			}
		}
		out = append(out, a)
	}
	i, _ := slices.BinarySearchFunc(r.byName, name, func(idx int32, n string) int {
		return CompareFold(r.nameAt(idx), n)
	})
	for ; i < len(r.byName) && CompareFold(r.nameAt(r.byName[i]), name) == 0; i++ {
		add(r.at(int(r.byName[i])))
	}
	j, _ := slices.BinarySearchFunc(r.aliases, name, func(a aliasRef, n string) int { return CompareFold(r.alias(a), n) })
	for ; j < len(r.aliases) && CompareFold(r.alias(r.aliases[j]), name) == 0; j++ {
		add(r.at(int(r.aliases[j].Index)))
	}
	if len(out) == 0 {
		if local := r.overlay(); local != nil {
			return local.Name(name, protos)
		}
	}
	SortAssignments(out)
	return out
}

// overlay reads the services(5) file once and returns it as a registry, or
// nil when there is none or it cannot be read.
func (r *Registry) overlay() *Registry {
	if r.services == nil {
		return nil
	}
	r.servicesOnce.Do(func() {
		data, err := r.services()
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			return
		}
		as, err := ParseServices(bytes.NewReader(data))
		if err != nil || len(as) == 0 {
			return
		}
		r.local = index(as)
	})
	return r.local
}

// Names returns every distinct service name and alias, lowercased, sorted.
func (r *Registry) Names() []string {
	var names []string
	for _, i := range r.byName {
		names = append(names, strings.ToLower(r.nameAt(i)))
	}
	for _, a := range r.aliases {
		names = append(names, strings.ToLower(r.alias(a)))
	}
	slices.Sort(names)
	return slices.Compact(names)
}
