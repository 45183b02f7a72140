// Package forward relays TCP connections and UDP datagrams from a local
// listener to one of a rule's backends.
//
// TCP has two data paths (Config.DataPath). On Linux, by default, epoll
// event loops, one per CPU, relay every connection with no goroutine of
// its own: a loop accepts until EAGAIN, connects to the backend's
// pre-resolved address without blocking, registers each socket once,
// edge-triggered, for its whole life, and moves bytes through its one
// buffer until a flow has moved 64 KiB; from then on that flow moves by
// splice(2) through a pipe from the loop's pool, without a copy through
// user space. Connect and idle timeouts are timers on the loop's wheel;
// byte counts are plain fields until the connection ends. The loops wait
// in the runtime's poller, not in a blocking epoll_wait, and make only
// raw system calls: no thread sits in a call the runtime would take its
// processor back from.
//
// The other path, for other OSes and for connections that are not plain
// sockets, hands the two *net.TCPConn to io.Copy in two goroutines, so
// that on Linux the kernel splices the bytes; nothing wraps the
// connections (a wrapper would turn splice off), and idle timeouts are
// deadlines on the raw connections.
//
// On both, when one side shuts down writing, the other side's write half
// is shut down too and the other direction keeps flowing (half-close),
// with no drain timer; once both directions have ended, both sockets are
// closed.
//
// UDP keeps a session per client address, each with its own socket toward
// the backend, so any number of replies reach the right client; sessions
// end after an idle timeout, and their number is bounded. On the event
// loops a UDP rule's socket and its sessions belong to one loop; on the
// goroutine path the rule's socket has a goroutine, and each session one.
//
// A rule may go through an SSH server (Rule.Via, with Config.SSH, an
// sshtun.Manager): a local rule's backends are then reached from that
// server (ssh -L), a remote rule (ModeRemote) has the server listen and
// sends what it accepts to backends reached from here (ssh -R), and a
// SOCKS5 rule (ModeSOCKS) serves SOCKS5 clients whose targets are reached
// through the server (ssh -D), or from here without Via. These run on the
// goroutine path, relayed by sshtun.Relay, with the rule's counters, idle
// timeout and limits on a wrapper of the backend's side (tunnel.go).
//
// A Forwarder runs a set of rules and applies a new set by difference
// (Apply): unchanged listeners stay open and their connections keep
// running, new rules start, removed rules stop accepting and drain.
// Counters per rule are read with Stats.
package forward
