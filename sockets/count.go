package sockets

import "context"

// Count returns how many sockets q selects, by protocol and state, without
// keeping them: what a caller needs about a busy server's many connections.
// Processes, AllHolders and AttributeIf are ignored.
func Count(ctx context.Context, q Query) (map[Proto]map[State]int, error) {
	out := map[Proto]map[State]int{}
	err := Walk(ctx, q, func(s *Socket) {
		m := out[s.Proto]
		if m == nil {
			m = map[State]int{}
			out[s.Proto] = m
		}
		m[s.State]++
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
