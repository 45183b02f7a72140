// Package probe answers reachability questions about TCP ports: Check makes
// one connection attempt per target and says whether the port is open,
// closed or filtered (and why), and Wait retries until every target accepts
// a connection.
//
// Targets are parsed from "HOST:PORT" strings by ParseTarget; a port may be
// a service name ("localhost:ssh"), resolved through a registry. The
// package opens no sockets until Check or Wait is called, reads no flags
// or environment, and reports failures as errors. Check and Wait may be
// called from several goroutines at once.
package probe
