// Package flood reports the signs of a SYN flood, and of listeners too
// slow or too small for their load, in one network namespace: the
// kernel's TCP counters (ListenOverflows, ListenDrops, SyncookiesSent,
// SyncookiesRecv, SyncookiesFailed, TCPReqQFullDrop, TCPReqQFullDoCookies
// from the TcpExt lines of /proc/net/netstat), the settings that bound the
// queues (net.ipv4.tcp_syncookies, net.ipv4.tcp_max_syn_backlog,
// net.core.somaxconn), and each TCP listener's accept queue against its
// backlog.
//
// ParseNetstat reads /proc/net/netstat and /proc/net/snmp text and is
// pure; Read fetches everything on Linux, inside another namespace
// through netns.Do, and returns ErrNotImplemented elsewhere. Advise turns
// a Status (and, for rates, the one before it) into advice for people:
// it does no I/O either.
//
// The counters count since the namespace was made; the kernel keeps them
// per network namespace, as it keeps the settings.
package flood
