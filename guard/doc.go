// Package guard watches a host's ports from the receiving side: it tells
// port scans from normal traffic, opens a port to a source that knocks the
// right sequence or sends a signed packet, and says so as events.
//
// The logic is pure state machines fed with what the kernel saw:
//
//   - Detector takes each first contact (a Probe: a TCP SYN, a TCP packet
//     with odd flags, a UDP datagram that starts no known flow) with its
//     outcome (did something listen there?) and runs, per source, a
//     sequential test on the outcomes: the Threshold Random Walk of Jung,
//     Paxson, Berger and Balakrishnan (2004). A scanner mostly meets closed
//     ports, a client mostly open ones, so the walk decides after a handful
//     of contacts whatever their rate: a scan at one probe a minute is
//     caught after as many probes as one at a thousand a second. Sweeps
//     over many of the host's addresses are counted apart (fan-out).
//   - Knocker follows, per source, the progress through knock sequences:
//     the exact sequence within a window opens a port to that source
//     alone, and any other contact from it in between starts it over.
//
// Run (Linux) feeds them: rules in portctl's own nftables table (see
// firewall.Guard) send each new inbound connection attempt, as conntrack
// sees it, to an NFLOG group (without knock rules, one contact of a
// source with a destination port a minute: the kernel keeps the rest
// back), and the socket table says which ports listen. A packet that
// starts no connection, from a source that reached that port before, is
// a late packet of a connection conntrack forgot, not a probe. Its
// actions go through the same table: a source's block with a timeout, a
// port opened to one source.
package guard
