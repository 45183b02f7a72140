// Package containers names the containers behind ports. It asks container
// engines that speak the Docker Engine API (Docker, and Podman's
// compatible socket) for their running containers: name, image, Compose
// project and service, addresses and published ports (List); and fills in
// a socket table's ContainerInfo from them (Index.Annotate), for processes
// that run in a container, for docker-proxy processes that forward to one,
// and for the network namespaces containers live in.
//
// Asking an engine is I/O on its socket, bounded by Config.Timeout; the
// Index is a pure lookup structure, safe for concurrent reads.
package containers
