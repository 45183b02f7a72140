// Package report writes scan results in the formats other tools read, as
// the results stream in.
//
// Every format is a Writer: Begin once with the scan's Meta, Result for
// each scan.Result as the engine decides it, End once with the Summary.
// Results of different hosts may come interleaved in any order, as a
// randomised scan delivers them.
//
//   - NewXML writes nmap's -oX format (xmloutputversion 1.05), valid
//     against the DTD nmap ships (/usr/share/nmap/nmap.dtd), for readers
//     of nmap XML such as ndiff.
//   - NewGrepable writes nmap's -oG format.
//   - NewJSON writes one JSON document at End.
//   - NewJSONL writes one JSON object a line as each result arrives.
//
// The XML, grepable and JSON writers keep, per host, the counts of each
// state and reason, every open port, and up to 25 ports of each other state
// (nmap's rule: a state with more than 25 ports on a host is collapsed into
// an <extraports> count instead of listed), so memory grows with hosts and
// open ports, not with the ports scanned. They write a host at End, or as
// soon as the caller reports it complete through HostDoner.
//
// # nmap XML
//
// The document follows nmap 7's: the <nmaprun> root, <scaninfo> per
// protocol, <verbose>, <debugging>, a <host> per address (status "up",
// reason "user-set", as nmap -Pn writes them, since portctl does no host
// discovery), its <address>, <hostnames> (the name the address came from,
// type "user"), <ports> with <extraports>/<extrareasons> for collapsed
// states and <port>/<state>/<service> for listed ports (service names from
// the built-in registry, method "table", conf 3), <times> when some reply
// was timed (srtt the mean round trip in microseconds, rttvar its standard
// deviation, to their sum with four deviations: statistics of the replies,
// not the engine's timeout), and <runstats>. The nmaprun scanner attribute
// is "nmap" because the DTD allows no other value; the leading comment and
// args name portctl, and version is portctl's. reason_ttl is "0": no
// engine reports a TTL.
//
// # JSON Lines (--jsonl)
//
// NewJSONL writes one object a line, each line in a single Write as soon
// as its call is made (and flushes w if it has a Flush method), so a
// reader sees every result while the scan runs. Each object has a "type":
//
//	{"type":"begin","args":[…],"start":"2026-01-02T15:04:05Z","scan_type":"connect","protocol":"tcp","ports":"22,80","num_services":2,"version":"1.0.0"}
//	{"type":"port","addr":"192.0.2.1","host":"example.net","port":22,"protocol":"tcp","state":"open","reason":"syn-ack","rtt_ms":0.412,"tries":1,"service":"ssh"}
//	{"type":"end","end":"2026-01-02T15:04:07Z","hosts":1,"hosts_up":1,"elapsed_ms":2000,"exit":"success"}
//
// The fields shown are always present ("" for no host name or no known
// service, 0 for no round trip); "error" is added to "end" when the scan
// stopped on one, and "more" to "begin" for a scan over several
// protocols. Every result is written, whatever its state. Readers should
// skip types they do not know: fields and types may be added, never
// renamed or removed.
//
// # JSON (--json)
//
// NewJSON writes, at End,
//
//	{"scan": {begin's fields without "type"}, "hosts": [{"addr", "host", "ports": [open ports], "closed": n, "filtered": n, "open_filtered": n}], "summary": {end's fields without "type"}}
//
// where each port has the fields of a "port" line without type, addr and
// host. Only open ports are listed; the other states are counted. Hosts are
// in address order, ports in port order.
package report
