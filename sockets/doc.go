// Package sockets reads this machine's socket table and attributes sockets
// to the processes that hold them.
//
// On Linux it asks the kernel directly through the sock_diag netlink
// interface (TCP, UDP and MPTCP, IPv4 and IPv6, every state), requests only
// the states a Query needs and lets the kernel filter by port. Attribution
// maps socket inodes to processes by scanning /proc/*/fd in parallel, only
// when the Query asks for it (and, looking for every holder of one or a
// few sockets, compares the other processes' descriptors with a holder's
// by kcmp(2), cheaper than reading them), then reads each holder's command
// line, user, start time and cgroup (systemd unit, Docker container,
// Kubernetes pod).
// Without privilege it still reports the uid and cgroup the kernel gives,
// and counts the sockets it could not attribute.
//
// On Windows the table comes from iphlpapi (GetExtendedTcpTable and
// GetExtendedUdpTable, TIME_WAIT included); on macOS from gopsutil, which
// reads it through lsof and so lists only sockets some process holds. There
// is no MPTCP, inode, cgroup or namespace information on either. Elsewhere
// List returns ErrNotImplemented.
//
// The decoders (netlink messages, /proc files, cgroup paths, docker-proxy
// arguments) are pure functions over bytes and are fuzzed.
package sockets
