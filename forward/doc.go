// Package forward relays TCP connections and UDP datagrams from a local
// listener to one of a rule's backends.
//
// The TCP data path hands the two *net.TCPConn straight to io.Copy, so
// that on Linux the kernel splices the bytes without copying them through
// user space; nothing wraps the connections (a wrapper would turn splice
// off), byte counts come from the copies' return values, and idle
// timeouts are deadlines on the raw connections. When one side shuts down
// writing, the other side's write half is shut down too and the other
// direction keeps flowing (half-close), with no drain timer.
//
// UDP keeps a session per client address, each with its own socket toward
// the backend, so any number of replies reach the right client; sessions
// end after an idle timeout, and their number is bounded.
//
// A Forwarder runs a set of rules and applies a new set by difference
// (Apply): unchanged listeners stay open and their connections keep
// running, new rules start, removed rules stop accepting and drain.
// Counters per rule are read with Stats.
package forward
