package registry

import (
	"slices"
	"strings"
)

type mergeKey struct {
	port, last uint16
	proto      Protocol
	name       string // lowercase
}

// Merge joins the inputs, the first the most trusted: every distinct
// (port, range, protocol, name) is kept once, taking the first non-empty
// description and reference; aliases are gathered from all inputs and also
// applied to every assignment of the same name and protocol.
func Merge(inputs ...[]Assignment) []Assignment {
	var out []Assignment
	at := map[mergeKey]int{}
	for _, in := range inputs {
		for _, a := range in {
			k := mergeKey{a.Port, a.Last, a.Proto, strings.ToLower(a.Name)}
			i, ok := at[k]
			if !ok {
				a.Aliases = nil
				at[k] = len(out)
				out = append(out, a)
				i = len(out) - 1
			}
			if out[i].Description == "" {
				out[i].Description = a.Description
			}
			if out[i].Reference == "" {
				out[i].Reference = a.Reference
			}
		}
	}
	// Aliases name a service, not one port: apply them by name and protocol.
	type nameProto struct {
		name  string
		proto Protocol
	}
	aliases := map[nameProto][]string{}
	for _, in := range inputs {
		for _, a := range in {
			np := nameProto{strings.ToLower(a.Name), a.Proto}
			for _, al := range a.Aliases {
				if !strings.EqualFold(al, a.Name) && !slices.Contains(aliases[np], al) {
					aliases[np] = append(aliases[np], al)
				}
			}
		}
	}
	for i := range out {
		if al := aliases[nameProto{strings.ToLower(out[i].Name), out[i].Proto}]; len(al) > 0 && out[i].Name != "" {
			out[i].Aliases = slices.Clone(al)
		}
	}
	// An empty-named "Reserved" entry only stands where no name is assigned.
	named := map[mergeKey]bool{}
	for _, a := range out {
		if a.Name != "" {
			named[mergeKey{a.Port, a.Last, a.Proto, ""}] = true
		}
	}
	out = slices.DeleteFunc(out, func(a Assignment) bool {
		return a.Name == "" && named[mergeKey{a.Port, a.Last, a.Proto, ""}]
	})
	SortAssignments(out)
	return out
}
