package audit

import (
	"path"
	"slices"
	"strings"

	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// kind is what sort of service a listener is, which decides the rules it
// meets.
type kind uint8

const (
	kindPublic kind = iota + 1 // meant to face the network: SSH, web, mail, DNS, NTP, VPNs
	kindData                   // databases, caches and brokers: network-database
	kindRisky                  // plaintext logins, remote desktops, file sharing, unauthenticated APIs: risky-service
	kindDebug                  // debuggers, profilers and notebooks: exposed-debugger
)

// service is one entry of the catalog: a service known by its ports or by
// the name of its program.
type service struct {
	name  string
	kind  kind
	proto registry.Protocol // the protocols its ports are for
	ports []registry.Range  // ports that identify it (any program)
	procs []string          // program names that identify it (path.Match patterns), on any port but notPorts
	// notPorts are ports where a program match does not count: dockerd's
	// swarm ports are not the Docker API.
	notPorts []uint16
	sev      registry.Severity // when it faces the network: on all interfaces or a public address
	local    registry.Severity // when it listens on loopback only; 0 for no finding
	why, fix string
}

func r(first, last uint16) registry.Range { return registry.Range{First: first, Last: last} }
func p1(port uint16) registry.Range       { return registry.Range{First: port, Last: port} }

const tcpUDP = registry.TCP | registry.UDP

// catalog lists the services the rules know, most specific first: a
// listener is the first service whose program matches, else the first
// whose port does. The texts are ours; the registry's security notes say
// much the same for the ports alone.
var catalog = []service{
	// Databases, caches and brokers.
	{name: "Redis", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(6379), p1(16379), p1(26379)},
		procs: []string{"redis-server", "redis-sentinel", "valkey-server", "keydb-server"}, sev: registry.SevHigh,
		why: "Redis answers anyone who connects unless a password or ACL is set, and a client can rewrite its configuration to write files on this host (SSH keys, cron jobs): exposed instances are taken over within hours.",
		fix: "Bind it to loopback (bind 127.0.0.1 -::1 in redis.conf), keep protected-mode on and set ACL users or requirepass. If other hosts need it, let only them in with a firewall and use TLS."},
	{name: "memcached", kind: kindData, proto: tcpUDP, ports: []registry.Range{p1(11211)},
		procs: []string{"memcached"}, sev: registry.SevHigh,
		why: "memcached has no authentication by default: whoever connects reads and overwrites what it caches, sessions included; over UDP it served record-size reflection attacks.",
		fix: "Start it with -l 127.0.0.1 (and -U 0 to turn UDP off). If other hosts need it, let only them in with a firewall, or turn SASL on."},
	{name: "MongoDB", kind: kindData, proto: registry.TCP, ports: []registry.Range{r(27017, 27019)},
		procs: []string{"mongod", "mongos"}, sev: registry.SevHigh,
		why: "MongoDB runs without access control until it is turned on; exposed instances are wiped and held to ransom by automated campaigns.",
		fix: "Set net.bindIp to 127.0.0.1 (or the private address clients use) in mongod.conf, turn security.authorization on, and firewall 27017 to the application hosts."},
	{name: "Elasticsearch", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(9200), p1(9300)},
		procs: []string{"elasticsearch", "opensearch"}, sev: registry.SevHigh,
		why: "Elasticsearch before 8.0, and OpenSearch without its security plugin, serve every index to whoever connects; exposed clusters are a leading cause of data leaks.",
		fix: "Set network.host to 127.0.0.1 or a private address, turn security (authentication and TLS) on, and keep 9200 and 9300 inside the application network."},
	{name: "CouchDB", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(5984)}, procs: []string{"couchdb"}, sev: registry.SevHigh,
		why: "CouchDB before 3.0 started with no administrator (\"admin party\"), and exposed instances have been wiped and ransomed.",
		fix: "Bind it to 127.0.0.1 (chttpd bind_address), require an administrator account, and firewall 5984."},
	{name: "Cassandra", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(9042), p1(9160)}, sev: registry.SevHigh,
		why: "Cassandra's default AllowAllAuthenticator lets whoever connects read and write every keyspace.",
		fix: "Turn PasswordAuthenticator on, set rpc_address to a private address, and firewall 9042 to the application hosts."},
	{name: "etcd", kind: kindData, proto: registry.TCP, ports: []registry.Range{r(2379, 2380)}, procs: []string{"etcd"}, sev: registry.SevHigh,
		why: "etcd without client certificate authentication hands every key to whoever connects, and in a Kubernetes cluster that is every Secret.",
		fix: "Require TLS client certificates (--client-cert-auth), listen on loopback or the cluster network only, and firewall 2379-2380."},
	{name: "ZooKeeper", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(2181)}, sev: registry.SevHigh,
		why: "ZooKeeper has no authentication by default: whoever connects reads and changes the coordination data of the cluster it serves.",
		fix: "Keep it on a private network, firewall 2181 to the cluster, and turn SASL authentication on."},
	{name: "InfluxDB", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(8086)}, procs: []string{"influxd"}, sev: registry.SevHigh,
		why: "InfluxDB 1.x ships with authentication off: whoever connects reads and deletes the data.",
		fix: "Turn auth-enabled on, bind it to 127.0.0.1 or a private address, and firewall 8086."},
	{name: "ActiveMQ", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(61616)}, sev: registry.SevHigh,
		why: "ActiveMQ's OpenWire port had an unauthenticated remote code execution flaw (CVE-2023-46604) that ransomware used.",
		fix: "Patch it, bind the transport connectors to a private address, and firewall 61616 to the clients."},
	{name: "MySQL/MariaDB", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(3306), p1(33060)},
		procs: []string{"mysqld", "mariadbd"}, sev: registry.SevMedium,
		why: "MySQL and MariaDB facing the network are brute-forced around the clock, and one weak or reused password hands over the data.",
		fix: "Set bind-address = 127.0.0.1 (or the private address clients use) in the server configuration, and firewall 3306 to the application hosts."},
	{name: "PostgreSQL", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(5432)},
		procs: []string{"postgres", "postmaster"}, sev: registry.SevMedium,
		why: "PostgreSQL facing the network is brute-forced, and a superuser login runs commands on this host (COPY ... FROM PROGRAM).",
		fix: "Set listen_addresses = 'localhost' (or the private address clients use) in postgresql.conf, and limit pg_hba.conf to the client networks with scram-sha-256."},
	{name: "SQL Server", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(1433)}, procs: []string{"sqlservr"}, sev: registry.SevMedium,
		why: "SQL Server facing the network is brute-forced constantly, the sa account first.",
		fix: "Listen on a private address only (mssql-conf set network.ipaddress), and firewall 1433 to the application hosts."},
	{name: "Oracle listener", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(1521)}, procs: []string{"tnslsnr"}, sev: registry.SevMedium,
		why: "An Oracle listener facing the network invites password guessing and attacks on the listener itself.",
		fix: "Restrict it to the application hosts with a firewall (and valid node checking in sqlnet.ora)."},
	{name: "ClickHouse", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(8123)}, procs: []string{"clickhouse-serv*", "clickhouse"}, sev: registry.SevMedium,
		why: "ClickHouse's default user has no password unless one is set: whoever connects reads the data.",
		fix: "Set listen_host to 127.0.0.1 or a private address, give the default user a password, and firewall 8123 and 9000."},
	{name: "RabbitMQ", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(5672), p1(15672), p1(25672)}, sev: registry.SevMedium,
		why: "RabbitMQ facing the network carries credentials and messages unencrypted on 5672, and its Erlang distribution port runs code for whoever knows the cookie.",
		fix: "Bind the listeners to a private address, use TLS on 5671, remove the guest account, and firewall the ports to the clients."},
	{name: "Kafka", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(9092)}, sev: registry.SevMedium,
		why: "Kafka's plaintext listener has no authentication: whoever connects produces and consumes every topic.",
		fix: "Use SASL_SSL listeners, bind them to a private address, and firewall 9092 to the clients."},
	{name: "NATS", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(4222)}, procs: []string{"nats-server"}, sev: registry.SevMedium,
		why: "NATS without authorization lets whoever connects publish and subscribe to every subject.",
		fix: "Configure accounts or tokens, bind it to a private address, and firewall 4222 to the clients."},
	{name: "MQTT broker", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(1883)}, procs: []string{"mosquitto"}, sev: registry.SevMedium,
		why: "MQTT on 1883 is plaintext, and many brokers accept anonymous clients that read and publish every topic.",
		fix: "Turn anonymous access off, use TLS on 8883, and firewall 1883."},
	{name: "Neo4j", kind: kindData, proto: registry.TCP, ports: []registry.Range{p1(7474), p1(7687)}, sev: registry.SevMedium,
		why: "Neo4j facing the network is brute-forced, and old versions shipped with a default password.",
		fix: "Set server.default_listen_address to 127.0.0.1 or a private address and firewall 7474 and 7687."},

	// Debuggers, profilers and notebooks.
	{name: "Node.js inspector", kind: kindDebug, proto: registry.TCP, ports: []registry.Range{p1(9229)}, sev: registry.SevHigh,
		why: "The Node.js inspector runs any code for whoever connects.",
		fix: "Use --inspect (127.0.0.1, the default), never --inspect=0.0.0.0, and reach it through an SSH tunnel."},
	{name: "JDWP debugger", kind: kindDebug, proto: registry.TCP, ports: []registry.Range{p1(5005)}, sev: registry.SevHigh,
		why: "A JDWP debug port runs any code in the JVM for whoever connects.",
		fix: "Use -agentlib:jdwp=...,address=127.0.0.1:5005 and reach it through an SSH tunnel; never ship it turned on."},
	{name: "debugpy", kind: kindDebug, proto: registry.TCP, ports: []registry.Range{p1(5678)}, sev: registry.SevHigh,
		why: "A Python debugpy port runs any code for whoever connects.",
		fix: "Listen on 127.0.0.1 (debugpy.listen((\"127.0.0.1\", 5678))) and reach it through an SSH tunnel."},
	{name: "Delve debugger", kind: kindDebug, proto: registry.TCP, ports: []registry.Range{p1(2345)}, procs: []string{"dlv"}, sev: registry.SevHigh,
		why: "A headless Delve server runs any code in the debugged program for whoever connects.",
		fix: "Use dlv --listen=127.0.0.1:2345 and reach it through an SSH tunnel."},
	{name: "Jupyter", kind: kindDebug, proto: registry.TCP, ports: []registry.Range{p1(8888)},
		procs: []string{"jupyter-lab", "jupyter-noteboo*", "jupyter-server"}, sev: registry.SevHigh,
		why: "Jupyter runs any code for whoever gets past its token, and is often started with the token turned off.",
		fix: "Keep ServerApp.ip at localhost and token or password authentication on; reach it through an SSH tunnel."},
	{name: "Go pprof", kind: kindDebug, proto: registry.TCP, ports: []registry.Range{p1(6060)}, sev: registry.SevMedium,
		why: "A net/http/pprof endpoint gives away heap contents, goroutine stacks and command lines, and whoever connects can keep the CPU busy profiling.",
		fix: "Serve pprof on a separate listener bound to 127.0.0.1:6060, not on a public mux."},

	// Risky services.
	{name: "Telnet", kind: kindRisky, proto: registry.TCP, ports: []registry.Range{p1(23), p1(2323)},
		procs: []string{"telnetd", "in.telnetd", "utelnetd"}, sev: registry.SevHigh, local: registry.SevLow,
		why: "Telnet sends passwords and whole sessions in plaintext, and botnets such as Mirai take machines over through it with default passwords.",
		fix: "Turn the Telnet server off and use SSH."},
	{name: "Docker API", kind: kindRisky, proto: registry.TCP, ports: []registry.Range{p1(2375)},
		procs: []string{"dockerd"}, notPorts: []uint16{2376, 2377, 7946}, sev: registry.SevHigh, local: registry.SevMedium,
		why: "The Docker API over TCP without TLS client certificates gives whoever connects root on this host (a container that mounts /); on loopback that is every local user, and web pages through DNS rebinding.",
		fix: "Remove the tcp:// host from dockerd (-H or daemon.json \"hosts\") and use the Unix socket, docker context over SSH, or 2376 with --tlsverify."},
	{name: "Docker API (TLS)", kind: kindRisky, proto: registry.TCP, ports: []registry.Range{p1(2376)}, sev: registry.SevMedium,
		why: "The Docker API on 2376 is safe only while dockerd verifies client certificates (--tlsverify); without it, it is as open as 2375, and either way it grants root on this host.",
		fix: "Make sure dockerd runs with --tlsverify and a CA of your own, and firewall 2376 to the hosts that manage it; docker context over SSH avoids the port."},
	{name: "rsh/rlogin/rexec", kind: kindRisky, proto: registry.TCP, ports: []registry.Range{r(512, 514)},
		procs: []string{"in.rshd", "in.rlogind", "in.rexecd", "rshd", "rlogind", "rexecd"}, sev: registry.SevHigh,
		why: "The r-services send everything in plaintext and trust host names for authentication.",
		fix: "Turn them off and use SSH."},
	{name: "RDP", kind: kindRisky, proto: tcpUDP, ports: []registry.Range{p1(3389)},
		procs: []string{"xrdp", "gnome-remote-de*"}, sev: registry.SevHigh,
		why: "Remote desktop facing the network is brute-forced constantly and has had wormable flaws (BlueKeep).",
		fix: "Reach it through a VPN or an SSH tunnel: bind it to 127.0.0.1 (xrdp.ini address=) or a VPN address, and firewall 3389."},
	{name: "VNC", kind: kindRisky, proto: registry.TCP, ports: []registry.Range{r(5900, 5910)},
		procs: []string{"x11vnc", "Xvnc", "Xtigervnc", "Xvnc-core", "vncserver", "wayvnc"}, sev: registry.SevHigh,
		why: "VNC servers often have weak or no passwords, classic VNC authentication uses only the first eight characters, and the session is not encrypted.",
		fix: "Bind it to localhost (x11vnc -localhost, Xvnc -localhost) and reach it through an SSH tunnel or a VPN."},
	{name: "X11", kind: kindRisky, proto: registry.TCP, ports: []registry.Range{r(6000, 6063)},
		procs: []string{"Xorg", "X", "Xvfb", "Xwayland", "Xephyr", "Xnest"}, sev: registry.SevHigh,
		why: "An X server that accepts TCP connections lets whoever connects read the screen and keystrokes and type into every window.",
		fix: "Start the X server with -nolisten tcp (the default of modern display managers) and use SSH X11 forwarding."},
	{name: "FTP", kind: kindRisky, proto: registry.TCP, ports: []registry.Range{p1(21)},
		procs: []string{"vsftpd", "proftpd", "pure-ftpd", "in.ftpd", "ftpd"}, sev: registry.SevMedium,
		why: "FTP sends user names, passwords and files in plaintext.",
		fix: "Use SFTP (part of OpenSSH) instead, or require FTPS (TLS) for every login."},
	{name: "TFTP", kind: kindRisky, proto: registry.UDP, ports: []registry.Range{p1(69)},
		procs: []string{"in.tftpd", "tftpd", "atftpd"}, sev: registry.SevMedium,
		why: "TFTP has no authentication: whoever reaches it fetches, and often overwrites, the files it serves.",
		fix: "Keep it on a provisioning network: bind it to that interface's address and firewall 69/udp."},
	{name: "NetBIOS", kind: kindRisky, proto: tcpUDP, ports: []registry.Range{r(137, 139)},
		procs: []string{"nmbd"}, sev: registry.SevMedium,
		why: "NetBIOS gives away host and user names, and 139 carries SMB for old clients.",
		fix: "Block 137-139 at the network edge; with no old Windows clients, turn NetBIOS off (disable netbios = yes, smb ports = 445)."},
	{name: "SMB", kind: kindRisky, proto: registry.TCP, ports: []registry.Range{p1(445)},
		procs: []string{"smbd"}, sev: registry.SevMedium,
		why: "SMB is the way worms such as WannaCry and Conficker spread, and a file server facing the network is probed for weak shares and passwords.",
		fix: "Keep it on internal networks (interfaces = and bind interfaces only = yes in smb.conf), block 445 at the edge, turn SMB1 off and require signing."},
	{name: "SNMP", kind: kindRisky, proto: registry.UDP, ports: []registry.Range{p1(161)},
		procs: []string{"snmpd"}, sev: registry.SevMedium,
		why: "SNMP v1 and v2c send community strings in plaintext, often left at public, and answer small queries with large replies fit for amplification.",
		fix: "Use SNMPv3 with authentication and privacy, listen on the management network only (agentaddress), and firewall 161/udp."},
	{name: "rpcbind", kind: kindRisky, proto: tcpUDP, ports: []registry.Range{p1(111)},
		procs: []string{"rpcbind", "portmap"}, sev: registry.SevMedium,
		why: "The portmapper tells anyone which RPC services run where, and over UDP it amplifies attacks.",
		fix: "Without NFSv3 or NIS clients, stop rpcbind (and its socket unit); otherwise firewall 111 to the clients."},
	{name: "Java RMI", kind: kindRisky, proto: registry.TCP, ports: []registry.Range{p1(1099)}, sev: registry.SevHigh,
		why: "A reachable Java RMI registry or JMX endpoint often runs code for whoever connects, through deserialization.",
		fix: "Bind it to localhost (-Djava.rmi.server.hostname=127.0.0.1 and a JMX bind address), require authentication, and firewall 1099."},
	{name: "PHP-FPM (FastCGI)", kind: kindRisky, proto: registry.TCP, procs: []string{"php-fpm*"}, sev: registry.SevHigh,
		why: "A FastCGI port that others can reach runs any PHP code they send (through PHP_VALUE).",
		fix: "Listen on a Unix socket or 127.0.0.1 (listen = in the pool configuration)."},

	// Services meant to face the network: never "all-interfaces".
	{name: "SSH", kind: kindPublic, proto: registry.TCP, ports: []registry.Range{p1(22)}, procs: []string{"sshd", "dropbear", "mosh-server"}},
	{name: "web server", kind: kindPublic, proto: tcpUDP, ports: []registry.Range{p1(80), p1(443), p1(8443)},
		procs: []string{"nginx", "apache2", "httpd", "caddy", "haproxy", "envoy", "traefik", "lighttpd", "varnishd", "h2o"}},
	{name: "mail server", kind: kindPublic, proto: registry.TCP, ports: []registry.Range{p1(25), p1(110), p1(143), p1(465), p1(587), p1(993), p1(995)},
		procs: []string{"exim4", "exim", "sendmail", "smtpd", "dovecot"}},
	{name: "DNS server", kind: kindPublic, proto: tcpUDP, ports: []registry.Range{p1(53), p1(853), p1(5353), p1(5355)},
		procs: []string{"named", "unbound", "dnsmasq", "pdns_server", "pdns_recursor", "coredns", "knotd", "kresd", "systemd-resolve", "avahi-daemon"}},
	{name: "time server", kind: kindPublic, proto: registry.UDP, ports: []registry.Range{p1(123)}, procs: []string{"chronyd", "ntpd", "openntpd"}},
	{name: "DHCP", kind: kindPublic, proto: registry.UDP, ports: []registry.Range{r(67, 68), r(546, 547)},
		procs: []string{"dhclient", "dhcpd", "dhcpcd", "systemd-network", "NetworkManager", "kea-dhcp4", "kea-dhcp6"}},
	{name: "VPN", kind: kindPublic, proto: tcpUDP, ports: []registry.Range{p1(500), p1(1194), p1(4500), p1(41641), p1(51820)},
		procs: []string{"openvpn", "charon", "tailscaled", "wireguard-go"}},
	{name: "directory service", kind: kindPublic, proto: tcpUDP, ports: []registry.Range{p1(88), p1(389), p1(464), p1(636)}, procs: []string{"slapd", "krb5kdc", "kadmind"}},
	{name: "routing daemon", kind: kindPublic, proto: registry.TCP, ports: []registry.Range{p1(179)}, procs: []string{"bird", "bgpd", "zebra"}},
	{name: "mosh", kind: kindPublic, proto: registry.UDP, ports: []registry.Range{r(60000, 61000)}},
}

// programNames returns the names a process goes by: its command name, the
// base names of its executable and of argv[0] (process titles such as
// "redis-server *:6379" cut at the first space), and for a multi-call
// binary such as BusyBox the applet it runs.
func programNames(p *sockets.Process) []string {
	if p == nil {
		return nil
	}
	var names []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s != "" && !slices.Contains(names, s) {
			names = append(names, s)
		}
	}
	add(p.Name)
	add(path.Base(strings.TrimSuffix(p.Exe, deletedSuffix)))
	if len(p.Cmdline) > 0 {
		arg0, _, _ := strings.Cut(p.Cmdline[0], " ")
		add(path.Base(arg0))
	}
	for _, n := range names {
		if (n == "busybox" || n == "toybox") && len(p.Cmdline) > 1 {
			add(path.Base(p.Cmdline[1]))
			break
		}
	}
	return names
}

// identify finds the catalog's service for a listener on port with
// protocol proto held by programs named names: by program first, then by
// port. It returns nil when the catalog does not know it.
func identify(proto registry.Protocol, port uint16, names []string) *service {
	for i := range catalog {
		s := &catalog[i]
		if len(s.procs) == 0 || s.proto&proto == 0 || slices.Contains(s.notPorts, port) {
			continue
		}
		for _, pat := range s.procs {
			for _, n := range names {
				if ok, _ := path.Match(pat, n); ok {
					return s
				}
			}
		}
	}
	for i := range catalog {
		s := &catalog[i]
		if s.proto&proto == 0 {
			continue
		}
		for _, rg := range s.ports {
			if rg.Contains(port) {
				return s
			}
		}
	}
	return nil
}
