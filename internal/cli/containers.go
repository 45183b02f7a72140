package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/portctl/portctl/containers"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/sockets"
)

// containerIndex asks the container engines (DOCKER_HOST as the docker CLI
// reads it, else Docker's and Podman's sockets) for their running
// containers. No engine gives an empty index silently; an engine that
// cannot be asked is said on stderr, once, with what to do, and the
// containers show by ID as /proc tells them.
func containerIndex(ctx context.Context, streams *term.IO) *containers.Index {
	idx, err := askEngines(ctx)
	switch {
	case err == nil, errors.Is(err, containers.ErrNoEngine):
	case errors.Is(err, os.ErrPermission):
		fmt.Fprintf(streams.Err, "portctl: cannot name containers: %v; run as root or as a member of the docker group (containers show by ID)\n", err)
	default:
		fmt.Fprintf(streams.Err, "portctl: cannot name containers: %v (containers show by ID)\n", err)
	}
	return idx
}

// askEngines asks the container engines the docker CLI would, and Podman's.
func askEngines(ctx context.Context) (*containers.Index, error) {
	cs, err := containers.List(ctx, containers.Config{
		Hosts: containers.DefaultHosts(os.Getenv("DOCKER_HOST"), os.Getenv("XDG_RUNTIME_DIR")),
	})
	return containers.NewIndex(cs), err
}

// nameContainers fills in the table's container names when it has
// something only an engine can name, and returns the engines' index (nil
// when none was asked).
func nameContainers(ctx context.Context, streams *term.IO, t *sockets.Table) *containers.Index {
	if !containers.Wanted(t) {
		return nil
	}
	idx := containerIndex(ctx, streams)
	idx.Annotate(t)
	return idx
}
