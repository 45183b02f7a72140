// Package probe finds out what really answers on an open port: it reads
// what the server says first, sends the probes most likely to draw an
// answer (by port, and by what was seen), and names the service, product
// and version, with the bytes that gave it away.
//
// Its own probes and matchers cover HTTP, TLS on any port (version,
// cipher, ALPN, certificate, legacy versions accepted, and what runs
// inside), SSH, SMTP (EHLO, STARTTLS, AUTH), FTP, POP3, IMAP, Redis,
// MySQL and MariaDB, PostgreSQL, DNS over TCP and UDP (version.bind), NTP
// (with ntpd's and NTPsec's version), SNMP (v2c, Net-SNMP's version), QUIC
// (version negotiation), and next the services users meet most after
// those: memcached, Telnet, VNC and rsync; LDAP (the root DSE), SMB, RDP,
// MQTT, AMQP, Erlang's epmd, NATS, XMPP, IRC, SOCKS 5, git daemon, svnserve, the CVS
// pserver, beanstalkd, Gearman, the Zabbix agent, spamd, Munin, NUT,
// iperf3, gpsd and MPD over TCP; STUN, SIP, Mumble and TFTP over UDP; and
// HTTP servers and proxies by their own pages (Tomcat, HAProxy, Varnish,
// Squid, Privoxy, CUPS, InfluxDB, etcd, the node exporter). When given a
// file in nmap's service-probes format (package nmapdb), its probes and
// matches are tried after these, every one nmap's default intensity
// sends; an answer to our own HTTP GET or SMB negotiation is matched
// against its GetRequest and SMBProgNeg lines too, for the product.
//
// The matchers are pure functions of the bytes received, fuzzed; Detect
// does the network I/O, with a per-probe timeout, a bounded number of
// probes and a total time budget per port.
package probe
