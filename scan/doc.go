// Package scan finds which ports are open on hosts and networks.
//
// Targets (addresses, CIDRs, ranges, host names) and ports (lists, ranges,
// "top:N", service names) are parsed into sets that are never expanded in
// memory; every (target, port) pair is an index into their product, visited
// in a random but deterministic order (a keyed permutation of the index
// space), which also splits a scan into disjoint shards.
//
// Engines probe the pairs and report a Result for each: the TCP connect
// engine needs no privilege (on Linux it drives non-blocking connects with
// epoll). Results stream to the caller as they are decided.
package scan
