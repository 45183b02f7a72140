package sockets

import (
	"context"
	"errors"
	"os"
	"strconv"

	"github.com/portctl/portctl/netns"
)

// ListAll lists the sockets q selects in every network namespace of the
// host (netns.List: those of running processes and those under
// /run/netns), each with NetNS set to its namespace, described in
// Table.Namespaces. Attribution, when q asks for it, is one pass over
// /proc for all of them: socket inodes are unique across namespaces.
// q.NetNS is ignored. A namespace that vanishes while it is read is left
// out; without root, namespaces of other users' processes are not seen and
// Partial is set.
func ListAll(ctx context.Context, q Query) (*Table, error) {
	nss, unreadable, err := netns.List()
	if err != nil {
		return nil, err
	}
	sub := q
	sub.Processes = false
	t := &Table{Partial: unreadable > 0}
	for _, n := range nss {
		sub.NetNS = n.Path
		if n.Self {
			sub.NetNS = "" // no need to enter the namespace this process is in
		}
		st, err := List(ctx, sub)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // its last process exited, or it was deleted
			}
			return nil, err
		}
		for i := range st.Sockets {
			st.Sockets[i].NetNS = n.Inode
		}
		t.Sockets = append(t.Sockets, st.Sockets...)
		t.Namespaces = append(t.Namespaces, namespaceOf(n))
	}
	if q.Processes {
		if err := attribute(ctx, t, q.AllHolders, q.AttributeIf); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// namespaceOf names the container or pod of a namespace from the cgroup
// of the first of its processes that runs in one. The host's namespace
// gets none: pods and containers on the host network share it.
func namespaceOf(n netns.Namespace) Namespace {
	ns := Namespace{Namespace: n}
	if n.Host {
		return ns
	}
	for _, pid := range n.PIDs {
		b, err := os.ReadFile(procRoot + "/" + strconv.Itoa(pid) + "/cgroup")
		if err != nil {
			continue
		}
		if c := parseCgroup(b); c.Container != "" || c.Pod != "" {
			ns.Container, ns.Runtime, ns.Pod = c.Container, c.Runtime, c.Pod
			break
		}
	}
	return ns
}
