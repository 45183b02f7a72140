// Package audit finds what a machine exposes that it should not: pure
// rules over a socket table and the kernel's port settings, with no I/O.
// The caller gathers the table (sockets.List, with processes attributed to
// the listeners and established connections included so that peers are
// known), the settings (netconf.Read) and, optionally, the result of a
// connect scan from elsewhere (Input.Remote); Check returns the findings,
// most severe first.
//
// # Rules
//
// A listener is a TCP (or MPTCP) socket in LISTEN or an unconnected bound
// UDP socket; the sockets of one program on one protocol and port are one
// listener. Services are known by port and by program name (redis-server
// on any port is Redis). The rules, with the severity their findings
// usually get:
//
//	network-database        high/medium  a database, cache or broker beyond loopback: Redis,
//	                                     memcached, MongoDB, Elasticsearch, etcd, ... high;
//	                                     MySQL, PostgreSQL, Kafka, ... medium; one level
//	                                     lower on a private address only
//	risky-service           high/medium  Telnet, r-services, RDP, VNC, X11, Docker API 2375,
//	                                     Java RMI, FastCGI high; FTP, TFTP, NetBIOS, SMB,
//	                                     SNMP, rpcbind, Docker API 2376 medium. Docker
//	                                     2375 on loopback is medium, Telnet low
//	exposed-debugger        high/medium  Node.js inspector, JDWP, debugpy, Delve, Jupyter;
//	                                     Go pprof medium
//	all-interfaces          low          on 0.0.0.0 or [::] with no connection from another
//	                                     host, for a service not meant to face the network
//	                                     (SSH, web, mail, DNS, NTP, DHCP, VPNs are)
//	not-allowed             high         with a policy allow list: a listener it does not allow
//	deleted-executable      medium       the program of a listening process was deleted or
//	                                     replaced (/proc/PID/exe ends in " (deleted)")
//	root-unprivileged-port  low          a root process on a port that needs no privilege
//	                                     (info on loopback)
//	unknown-listener        low          no process found, and no registry names the port
//	                                     (info on loopback)
//	syncookies-off          medium       net.ipv4.tcp_syncookies = 0
//	narrow-ephemeral-range  low/medium   fewer than 16384 usable ephemeral ports (4096: medium)
//	unprivileged-port-start low          Linux ip_unprivileged_port_start below 1024
//	internet-exposed        high/medium  beyond loopback and let in from the internet by the
//	                                     firewall: databases, risky services, debuggers high,
//	                                     others medium (SSH, web, mail, DNS: see reach:)
//	netbios-from-outside    high/medium  NetBIOS 137-139 or SMB 445 let in from the internet,
//	                                     naming the rule that lets it in; medium when nothing
//	                                     listens there yet (Firewall.Opened)
//	docker-bypass           high         ufw or firewalld denies the port, yet Docker's DNAT
//	                                     lets the internet reach its container
//	reach-not-allowed       high         with a policy reach: key, a port reachable from a
//	                                     class the key does not allow it for
//	accept-queue-full       medium       a TCP listener's accept queue holds as many
//	                                     connections as its backlog (Recv-Q against Send-Q)
//	listen-overflows        low          with Input.Flood, the kernel's ListenOverflows
//	                                     counter is not zero
//	syncookies-sent         low          with Input.Flood, the kernel's SyncookiesSent
//	                                     counter is not zero: a SYN queue overflowed
//
// The firewall rules need Input.Firewall, what the kernel's ruleset does
// to new connections from the internet, the LAN and loopback to each
// listening port (Reachability computes it from a firewall.Ruleset). With
// it, the exposure findings of a listener that the firewall lets no other
// host reach are lowered to low, and say which rule keeps them out.
//
// With Input.Remote, the exposure findings (network-database,
// risky-service, exposed-debugger, all-interfaces) of a TCP listener the
// scan could not reach are lowered to low, and say so.
//
// # Policy
//
// A policy file (YAML, read by ParsePolicy) turns the audit into a gate.
// Every key is optional; unknown keys are errors:
//
//	version: 1                 # the format's version
//	fail_on: medium            # info, low, medium, high or never: the least
//	                           # severity that fails the audit (the CLI's
//	                           # default is medium)
//	allow:                     # with this key, every listener that no entry
//	  - port: 22               # matches is a not-allowed finding (allow: []
//	    proto: tcp             # allows none)
//	    process: sshd
//	    comment: SSH for the admins
//	  - port: [80, 443, 8000-8100]
//	    process: [nginx, "python3*"]
//	    address: [0.0.0.0, "::"]
//	  - address: loopback      # anything on loopback
//	except:                    # set findings aside
//	  - rule: network-database
//	    port: 6379
//	    reason: the VPC firewall limits 6379 to the app subnet
//	  - rule: syncookies-off   # kernel rules take no other key
//	severity:                  # change the severity of every finding of a rule
//	  root-unprivileged-port: info
//	reach:                     # the ports that may be reachable from a source
//	  internet: [22, 443]      # class (internet, lan): the firewall letting that
//	  lan: [22, 443, 5432, 8000-8100] # class reach any other listening port is a
//	                           # reach-not-allowed finding; internet: [] allows none
//
// Entries of allow and except select listeners with the same keys, all of
// which must match (a key left out matches anything):
//
//	port     a port or a range A-B, or a list of them
//	proto    tcp or udp
//	process  program names or path.Match patterns ("python3*"), matched against
//	         the command name, the executable's and argv[0]'s base names, and
//	         BusyBox's applet ("telnetd")
//	user     user names or numeric user IDs of the holder
//	address  any, loopback, private (loopback, private and link-local), an IP
//	         address (0.0.0.0 and :: are the wildcards) or a CIDR prefix; every
//	         local address of the listener must match one of them
//
// An except entry has a rule (a rule ID, or * with at least one other key)
// and an optional reason. Allowing a listener does not set its other
// findings aside: a Redis on 0.0.0.0 that the allow list names is still a
// network-database finding until an exception says why it may be.
//
// SARIF renders a report as SARIF 2.1.0 for code-scanning dashboards.
package audit
