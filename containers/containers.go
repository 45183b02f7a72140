package containers

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/portctl/portctl/sockets"
)

// Container is a running container as its engine's API describes it.
type Container struct {
	sockets.ContainerInfo
	// Addrs are its addresses on the engine's networks.
	Addrs []netip.Addr `json:"addresses,omitempty"`
	// Ports are its published ports.
	Ports []Port `json:"published,omitempty"`
}

// Port is a container port published on the host.
type Port struct {
	Proto string `json:"protocol"` // tcp, udp or sctp
	// Host is the host address and port; the address is unspecified
	// (0.0.0.0 or ::) when published on every address.
	Host netip.AddrPort `json:"host"`
	// Container is the port inside the container.
	Container uint16 `json:"container_port"`
}

// Config says which engines to ask.
type Config struct {
	// Hosts are the engines' addresses as DOCKER_HOST spells them
	// (unix:///var/run/docker.sock, tcp://HOST:2376, npipe://…). Each
	// unix socket that exists is asked; DefaultHosts gives the usual ones.
	Hosts []string
	// Timeout bounds each engine's answer; 0 means 2 seconds.
	Timeout time.Duration
}

// ErrNoEngine says that none of the configured engines exists here: no
// container engine runs, which is not a failure.
var ErrNoEngine = errors.New("containers: no container engine here")

// DefaultHosts returns the engines to ask, given the values of DOCKER_HOST
// and XDG_RUNTIME_DIR: DOCKER_HOST alone when set (as the docker CLI does),
// else Docker's socket and Podman's, the system one and the user's.
func DefaultHosts(dockerHost, xdgRuntimeDir string) []string {
	if dockerHost != "" {
		return []string{dockerHost}
	}
	hosts := []string{"unix:///var/run/docker.sock", "unix:///run/podman/podman.sock"}
	if xdgRuntimeDir != "" {
		hosts = append(hosts, "unix://"+strings.TrimRight(xdgRuntimeDir, "/")+"/podman/podman.sock")
	}
	return hosts
}

// runtimeOf tells Podman from Docker by the components its version names
// ("Podman Engine"; Docker's are "Engine", "containerd", …) or by its
// platform ("Docker Engine - Community").
func runtimeOf(v client.ServerVersionResult) string {
	names := []string{v.Platform.Name}
	for _, c := range v.Components {
		names = append(names, c.Name)
	}
	for _, n := range names {
		if strings.Contains(strings.ToLower(n), "podman") {
			return "podman"
		}
	}
	return "docker"
}

// List asks every configured engine for its running containers. It
// returns ErrNoEngine when no engine's socket exists. An engine that
// refuses (a socket only root or the docker group may use) gives an error
// wrapping os.ErrPermission; the containers of the engines that answered
// are returned with the error.
func List(ctx context.Context, cfg Config) ([]Container, error) {
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	var (
		out   []Container
		errs  []error
		asked int
	)
	for _, host := range cfg.Hosts {
		if path, ok := strings.CutPrefix(host, "unix://"); ok {
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				continue
			}
		}
		asked++
		cs, err := listEngine(ctx, host, timeout)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, cs...)
	}
	if asked == 0 {
		return nil, ErrNoEngine
	}
	return out, errors.Join(errs...)
}

func listEngine(ctx context.Context, host string, timeout time.Duration) ([]Container, error) {
	c, err := client.New(client.WithHost(host), client.WithTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("container engine %s: %w", host, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := c.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		if errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "permission denied") {
			return nil, fmt.Errorf("container engine %s: %w", host, os.ErrPermission)
		}
		return nil, fmt.Errorf("container engine %s: %w", host, err)
	}
	v, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return nil, fmt.Errorf("container engine %s: %w", host, err)
	}
	rt := runtimeOf(v)
	out := make([]Container, 0, len(res.Items))
	for _, s := range res.Items {
		ctr := Container{ContainerInfo: sockets.ContainerInfo{
			ID: s.ID, Image: s.Image, Runtime: rt,
			ComposeProject: s.Labels["com.docker.compose.project"],
			ComposeService: s.Labels["com.docker.compose.service"],
		}}
		if len(s.Names) > 0 {
			ctr.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		if s.NetworkSettings != nil {
			for _, ep := range s.NetworkSettings.Networks {
				if ep == nil {
					continue
				}
				for _, a := range []netip.Addr{ep.IPAddress, ep.GlobalIPv6Address} {
					if a.IsValid() && !slices.Contains(ctr.Addrs, a) {
						ctr.Addrs = append(ctr.Addrs, a)
					}
				}
			}
		}
		for _, p := range s.Ports {
			if p.PublicPort == 0 {
				continue // exposed, not published
			}
			host := p.IP
			if !host.IsValid() {
				host = netip.IPv4Unspecified()
			}
			ctr.Ports = append(ctr.Ports, Port{Proto: p.Type, Host: netip.AddrPortFrom(host, p.PublicPort), Container: p.PrivatePort})
		}
		out = append(out, ctr)
	}
	return out, nil
}

// Name names the containers behind t's sockets: when t has something only
// an engine can name (Wanted), it asks the engines cfg gives and annotates
// t. It returns the index, nil when no engine was asked, and List's error;
// what the engines that answered know is named all the same.
func Name(ctx context.Context, cfg Config, t *sockets.Table) (*Index, error) {
	if !Wanted(t) {
		return nil, nil
	}
	cs, err := List(ctx, cfg)
	x := NewIndex(cs)
	x.Annotate(t)
	return x, err
}
