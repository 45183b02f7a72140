// Package web is portctl's dashboard: an http.Handler that serves a live
// view of this machine's ports to people (an HTML page and its script,
// embedded in the binary), to programs (a JSON API under /api/v1/) and to
// monitoring (Prometheus metrics at /metrics).
//
// A Server samples its Source while Run runs: the socket table with the
// processes holding each socket, the audit findings over it, the ephemeral
// port usage (kept as a history for the chart), the counters of running
// forwarders, the port mappings that `portctl map add` processes keep at
// the router (from a MapSource), and, from a FirewallSource (Machine is one; reading needs
// root or CAP_NET_ADMIN), the ruleset with who may reach each listening
// port from the internet, the LAN and loopback (audit.Reachability, which
// asks package reach); every Options.Interval while someone looks, every
// Options.IdleInterval otherwise. Pages follow the table live over
// server-sent events (/api/v1/events): a snapshot, then what was added and
// removed at each sample. /metrics does not use the samples: each scrape
// walks the kernel's table afresh without keeping it, so a machine with
// 40,000 sockets costs one scrape's counters, not 40,000 rows.
//
// Security: with Options.Token set, every request must carry it (an
// Authorization: Bearer header, or the cookie a browser gets by opening
// /?token=…); without it, requests whose Host is not an IP address or
// localhost are refused, so a web page cannot reach the dashboard through
// DNS rebinding. The only state-changing request, stopping a port's
// holders, exists only with Options.Kill set and needs a POST with the
// session's CSRF token and the port typed again as confirmation. Responses
// carry a strict Content-Security-Policy and the page loads nothing from
// outside the binary; the script only ever writes process-controlled text
// (names, command lines, cgroups) as text, never as HTML.
package web
