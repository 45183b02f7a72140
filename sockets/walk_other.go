//go:build !linux

package sockets

import "context"

// Walk calls fn for each TCP and UDP socket q selects. Here it lists them
// first; on Linux it does not keep them.
func Walk(ctx context.Context, q Query, fn func(*Socket)) error {
	q.Processes = false
	t, err := List(ctx, q)
	if err != nil {
		return err
	}
	for i := range t.Sockets {
		if t.Sockets[i].Proto&(TCP|UDP) != 0 {
			fn(&t.Sockets[i])
		}
	}
	return nil
}
