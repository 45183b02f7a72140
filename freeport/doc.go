// Package freeport finds ports that are free to listen on, proven by
// binding them: for TCP (and UDP when asked) on both the IPv4 and the IPv6
// wildcard address, with SO_REUSEADDR off so that a port held on any one
// address, or lingering in TIME_WAIT, counts as busy.
//
// By default Find searches 1024-65535 minus this host's ephemeral range
// and reserved ports, in random order, so that parallel jobs rarely pick
// the same port; Config.Near asks for the ports closest to a preferred one
// instead. A port found free can still be taken by another process before
// the caller binds it: bind it soon.
//
// Find may be called from several goroutines at once, as long as they do
// not share a Config.Rand.
package freeport
