// Package reach says whether a port of this machine can be reached from a
// source (loopback, the LAN, the internet, or a given address or range),
// layer by layer: the listening socket's bind address, the route back,
// rp_filter, the firewall ruleset and its NAT. It joins what the socket
// table shows (package sockets) with what the ruleset does (package
// firewall).
//
// Analyze is pure: it takes the sockets, the ruleset and the host as
// values, built by the caller (read from the kernel, or by hand in a
// test), and does no I/O. It is safe for concurrent use as long as its
// inputs are not modified.
package reach
