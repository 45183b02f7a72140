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

// engines is who the commands ask for container names: DOCKER_HOST as the
// docker CLI reads it, else Docker's and Podman's sockets.
func engines() containers.Config {
	return containers.Config{Hosts: containers.DefaultHosts(os.Getenv("DOCKER_HOST"), os.Getenv("XDG_RUNTIME_DIR"))}
}

// containerIndex asks the engines for their running containers. No engine
// gives an empty index silently; an engine that cannot be asked is said on
// stderr (engineTrouble), and the containers show by ID as /proc tells.
func containerIndex(ctx context.Context, streams *term.IO) *containers.Index {
	cs, err := containers.List(ctx, engines())
	engineTrouble(streams, err)
	return containers.NewIndex(cs)
}

// nameContainers fills in the table's container names when it has
// something only an engine can name, and returns the engines' index (nil
// when none was asked).
func nameContainers(ctx context.Context, streams *term.IO, t *sockets.Table) *containers.Index {
	idx, err := containers.Name(ctx, engines(), t)
	engineTrouble(streams, err)
	return idx
}

// engineTrouble says on stderr, in one line with what to do, why an engine
// could not be asked; no engine at all is no trouble.
func engineTrouble(streams *term.IO, err error) {
	switch {
	case err == nil, errors.Is(err, containers.ErrNoEngine):
	case errors.Is(err, os.ErrPermission):
		fmt.Fprintf(streams.Err, "portctl: cannot name containers: %v; run as root or as a member of the docker group (containers show by ID)\n", err)
	default:
		fmt.Fprintf(streams.Err, "portctl: cannot name containers: %v (containers show by ID)\n", err)
	}
}
