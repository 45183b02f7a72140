package portmap

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Kept is one mapping a keeper holds, and how it has fared.
type Kept struct {
	Mapping
	// Since is when it was first mapped; Renewed when it was last
	// mapped, renewed or mapped again.
	Since   time.Time `json:"since"`
	Renewed time.Time `json:"renewed"`
	// Renewals and Remaps count the renewals, and the times the router
	// had lost the mapping and it was made again.
	Renewals int `json:"renewals"`
	Remaps   int `json:"remaps"`
	// Error is the last renewal's failure, until one succeeds.
	Error string `json:"error,omitempty"`
}

// Keeper is what a process keeping mappings at a router (`portctl map
// add`) publishes for the dashboard.
type Keeper struct {
	PID      int        `json:"pid"`
	Gateway  netip.Addr `json:"gateway"`
	Mappings []Kept     `json:"mappings"`
}

// Tracker folds Keep's events into the mappings held, for a Keeper. It
// is safe for concurrent use; the zero value is ready.
type Tracker struct {
	mu   sync.Mutex
	kept map[string]*Kept
}

// key names a mapping across renewals: its transport protocol and
// internal port.
func key(m Mapping) string { return m.Proto + "/" + strconv.Itoa(int(m.Internal.Port())) }

// Event records what Keep did.
func (t *Tracker) Event(e KeepEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.kept == nil {
		t.kept = map[string]*Kept{}
	}
	k := key(e.Mapping)
	cur := t.kept[k]
	switch e.Type {
	case "unmapped":
		delete(t.kept, k)
		return
	case "mapped":
		t.kept[k] = &Kept{Mapping: e.Mapping, Since: e.Time, Renewed: e.Time}
		return
	}
	if cur == nil {
		cur = &Kept{Since: e.Time}
		t.kept[k] = cur
	}
	switch e.Type {
	case "retry":
		cur.Error = e.Reason
		return
	case "remapped":
		cur.Remaps++
	default:
		cur.Renewals++
	}
	ext := cur.External.Addr()
	cur.Mapping, cur.Renewed, cur.Error = e.Mapping, e.Time, ""
	if !cur.External.Addr().IsValid() {
		cur.External = netip.AddrPortFrom(ext, cur.External.Port())
	}
}

// Mappings returns the mappings held, by protocol and internal port.
func (t *Tracker) Mappings() []Kept {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Kept, 0, len(t.kept))
	for _, k := range t.kept {
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b Kept) int {
		if c := cmp.Compare(a.Internal.Port(), b.Internal.Port()); c != 0 {
			return c
		}
		return cmp.Compare(a.Proto, b.Proto)
	})
	return out
}
