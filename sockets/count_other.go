//go:build !linux

package sockets

import "context"

// Count returns how many sockets q selects, by protocol and state.
func Count(ctx context.Context, q Query) (map[Proto]map[State]int, error) {
	q.Processes = false
	t, err := List(ctx, q)
	if err != nil {
		return nil, err
	}
	out := map[Proto]map[State]int{}
	for _, s := range t.Sockets {
		if out[s.Proto] == nil {
			out[s.Proto] = map[State]int{}
		}
		out[s.Proto][s.State]++
	}
	return out, nil
}
