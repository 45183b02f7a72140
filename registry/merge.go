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
// (port, range, protocol, name) is kept once, each of its text fields
// (description, reference, assignee, dates, notes…) taken from the first
// input that has it; aliases are gathered from all inputs and also applied
// to every assignment of the same name and protocol. An unnamed entry of
// the first input whose note says the port was de-assigned withdraws the
// names the other inputs (older copies of the registry) give that port and
// protocol.
func Merge(inputs ...[]Assignment) []Assignment {
	n := 0
	for _, in := range inputs {
		n += len(in)
	}
	if n == 0 {
		return nil
	}
	withdrawn := map[mergeKey]bool{}
	for _, a := range inputs[0] {
		if a.Name == "" && strings.Contains(strings.ToLower(a.Notes), "de-assigned") {
			withdrawn[mergeKey{a.Port, a.Last, a.Proto, ""}] = true
		}
	}
	out := make([]Assignment, 0, n) // at most; saves copying as it grows
	at := make(map[mergeKey]int, n)
	for j, in := range inputs {
		for _, a := range in {
			if j > 0 && withdrawn[mergeKey{a.Port, a.Last, a.Proto, ""}] {
				continue
			}
			k := mergeKey{a.Port, a.Last, a.Proto, strings.ToLower(a.Name)}
			i, ok := at[k]
			if !ok {
				a.Aliases = nil
				at[k] = len(out)
				out = append(out, a)
				i = len(out) - 1
			}
			o := &out[i]
			fill(&o.Description, a.Description)
			fill(&o.Reference, a.Reference)
			fill(&o.Assignee, a.Assignee)
			fill(&o.Contact, a.Contact)
			fill(&o.Registered, a.Registered)
			fill(&o.Modified, a.Modified)
			fill(&o.Notes, a.Notes)
			fill(&o.UnauthorizedUse, a.UnauthorizedUse)
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

// fill sets an empty *dst to src.
func fill(dst *string, src string) {
	if *dst == "" {
		*dst = src
	}
}
