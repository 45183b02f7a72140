package audit

import "github.com/portctl/portctl/registry"

// Rule describes one kind of finding. Its ID is stable: policies name it,
// SARIF dashboards track results by it.
type Rule struct {
	ID   string `json:"id"`
	Name string `json:"name"` // the ID in CamelCase, as SARIF viewers show it
	// Severity is what a finding of the rule usually gets; a finding may
	// get less (a database bound to a private address, a listener a
	// remote scan could not reach) or more (memcached against MySQL).
	Severity registry.Severity `json:"severity"`
	Short    string            `json:"short"` // one line
	Full     string            `json:"full"`  // what the rule looks for
	Help     string            `json:"help"`  // what to do about a finding
	// Kernel is set for the rules about a kernel setting rather than a
	// listener: their findings have a Setting and no Socket.
	Kernel bool `json:"kernel,omitempty"`
}

// The rule IDs.
const (
	RuleNetworkDatabase      = "network-database"
	RuleRiskyService         = "risky-service"
	RuleExposedDebugger      = "exposed-debugger"
	RuleAllInterfaces        = "all-interfaces"
	RuleNotAllowed           = "not-allowed"
	RuleDeletedExecutable    = "deleted-executable"
	RuleRootUnprivileged     = "root-unprivileged-port"
	RuleUnknownListener      = "unknown-listener"
	RuleSyncookiesOff        = "syncookies-off"
	RuleNarrowEphemeral      = "narrow-ephemeral-range"
	RuleUnprivilegedPortFrom = "unprivileged-port-start"
	RuleInternetExposed      = "internet-exposed"
	RuleNetBIOSFromOutside   = "netbios-from-outside"
	RuleDockerBypass         = "docker-bypass"
	RuleReachNotAllowed      = "reach-not-allowed"
	RuleAcceptQueueFull      = "accept-queue-full"
	RuleListenOverflows      = "listen-overflows"
	RuleSyncookiesSent       = "syncookies-sent"
)

// rules is the catalog of rules, in the order findings of equal severity
// are listed and SARIF numbers them (ruleIndex): add at the end only.
var rules = []Rule{
	{ID: RuleNetworkDatabase, Name: "NetworkDatabase", Severity: registry.SevHigh,
		Short: "A database, cache or message broker listens beyond loopback",
		Full:  "Databases, caches and brokers (Redis, memcached, MongoDB, Elasticsearch, MySQL, PostgreSQL, Kafka, ...) listening on all interfaces or on a network address, found by port and by program name. Those that serve anyone without a password by default are high; those bound to a private address only are one level lower; on loopback they are fine.",
		Help:  "Bind the service to 127.0.0.1 or to the private address its clients use, turn its authentication on, and let only the client hosts reach the port with a firewall. When it must face the network, except it in the policy with the reason."},
	{ID: RuleRiskyService, Name: "RiskyService", Severity: registry.SevHigh,
		Short: "A risky service listens: plaintext logins, remote desktops, file sharing or an unauthenticated API",
		Full:  "Telnet, FTP, TFTP, the r-services, NetBIOS (137-139), SMB (445), RDP (3389), VNC (5900+), the Docker API (2375/2376), X11 (6000+), SNMP, rpcbind, Java RMI and FastCGI listening beyond loopback, found by port and by program name. The Docker API is a finding on loopback too.",
		Help:  "Turn the service off when nothing needs it, or keep it on loopback or an internal network behind a firewall; prefer the encrypted replacement (SSH, SFTP, SNMPv3, a VPN)."},
	{ID: RuleExposedDebugger, Name: "ExposedDebugger", Severity: registry.SevHigh,
		Short: "A debugger, profiler or notebook listens beyond loopback",
		Full:  "Debug and profiling ports (Node.js inspector 9229, JDWP 5005, debugpy 5678, Delve 2345, Jupyter 8888, Go pprof 6060) listening beyond loopback: most run any code for whoever connects.",
		Help:  "Bind the debugger to 127.0.0.1 and reach it through an SSH tunnel; never leave it on in production."},
	{ID: RuleAllInterfaces, Name: "AllInterfaces", Severity: registry.SevLow,
		Short: "A listener binds all interfaces where loopback would do",
		Full:  "A listener on 0.0.0.0 or [::] with no connection from another host in the socket table, for a service that is not meant to face the network (well-known public services such as SSH, web, mail and DNS are left alone).",
		Help:  "Bind it to 127.0.0.1 (or ::1) when only local programs use it; publish a Docker port as 127.0.0.1:HOST:CONTAINER. When other hosts do use it, allow it in the policy."},
	{ID: RuleNotAllowed, Name: "NotAllowed", Severity: registry.SevHigh,
		Short: "A listener the policy does not allow",
		Full:  "With an allow list in the policy, every listener that no allow entry matches (by port, protocol, process, user and address).",
		Help:  "Stop the listener, or add an allow entry for it to the policy."},
	{ID: RuleDeletedExecutable, Name: "DeletedExecutable", Severity: registry.SevMedium,
		Short: "A listening process runs a deleted or replaced executable",
		Full:  "The executable of a process that holds a listener was deleted or replaced since it started (/proc/PID/exe ends in \" (deleted)\"): an upgrade that was not followed by a restart, or a program that removed itself.",
		Help:  "Restart the service so that it runs the installed program; if nothing installed a new one, find out what the process is."},
	{ID: RuleRootUnprivileged, Name: "RootUnprivilegedPort", Severity: registry.SevLow,
		Short: "A root process listens on a port that needs no privilege",
		Full:  "A process running as root holds a listener on a port at or above the host's unprivileged port start (1024 by default), so root was not needed to bind it: a flaw in the service hands over the whole machine. Daemons that need root for other reasons (sshd, systemd socket activation, docker-proxy, ...) are left alone.",
		Help:  "Run the service as an unprivileged user (User= in its systemd unit, or its own user option), or have it drop privileges after it binds."},
	{ID: RuleUnknownListener, Name: "UnknownListener", Severity: registry.SevLow,
		Short: "A listener whose program and service are both unknown",
		Full:  "A listener that no process could be found for (a kernel socket, or another user's process seen without root) on a port that neither the IANA registry nor the de facto table names.",
		Help:  "Run the audit as root to see every process; find the owner with portctl who PORT, and stop it or allow it in the policy."},
	{ID: RuleSyncookiesOff, Name: "SyncookiesOff", Severity: registry.SevMedium, Kernel: true,
		Short: "TCP SYN cookies are off",
		Full:  "net.ipv4.tcp_syncookies is 0: a SYN flood fills the listen queues and every listener stops accepting connections.",
		Help:  "sysctl -w net.ipv4.tcp_syncookies=1, and set it in /etc/sysctl.d/ so that it stays after a reboot."},
	{ID: RuleNarrowEphemeral, Name: "NarrowEphemeralRange", Severity: registry.SevLow, Kernel: true,
		Short: "The ephemeral port range is narrow",
		Full:  "Fewer than 16384 usable ports in net.ipv4.ip_local_port_range (less the reserved ports): busy clients and proxies run out of source ports towards one destination and fail with EADDRNOTAVAIL.",
		Help:  "Widen it, for example sysctl -w net.ipv4.ip_local_port_range=\"32768 60999\" (the default), keeping server ports out of it or listing them in ip_local_reserved_ports."},
	{ID: RuleUnprivilegedPortFrom, Name: "UnprivilegedPortStart", Severity: registry.SevLow, Kernel: true,
		Short: "Unprivileged users may bind ports below 1024",
		Full:  "net.ipv4.ip_unprivileged_port_start is below 1024, so any user may bind ports that clients trust to belong to the system (22, 80, 443, ...) whenever their service is not running. Container runtimes set 0 inside containers on purpose.",
		Help:  "Set it back to 1024 and grant CAP_NET_BIND_SERVICE to the services that need a low port (AmbientCapabilities= in their systemd unit)."},
	{ID: RuleInternetExposed, Name: "InternetExposed", Severity: registry.SevHigh,
		Short: "A listener that the firewall lets in from the internet",
		Full:  "A listener beyond loopback whose port the kernel's ruleset (nftables, iptables) lets new connections reach from public addresses, for a service not meant to face the network: really exposed, not only listening. Databases, risky services and debuggers are high, other services medium; SSH, web, mail and DNS are left to the policy's reach key. Needs the ruleset (root or CAP_NET_ADMIN).",
		Help:  "Let in only the hosts that need it (in the firewall tool that owns the rule: ufw, firewalld, nft), or bind the service to loopback."},
	{ID: RuleNetBIOSFromOutside, Name: "NetBIOSFromOutside", Severity: registry.SevHigh,
		Short: "NetBIOS (137-139) or SMB (445) is let in from the internet",
		Full:  "A NetBIOS or SMB listener whose port the firewall lets new connections or datagrams reach from public addresses (high), or such a port that nothing listens on yet but the firewall lets in (medium); the finding names the rule that lets them in (table, chain, handle, owner).",
		Help:  "Drop 137-139 and 445 from outside the LAN, in the firewall tool that owns the accepting rule."},
	{ID: RuleDockerBypass, Name: "DockerBypass", Severity: registry.SevHigh,
		Short: "A port Docker publishes past a ufw or firewalld deny",
		Full:  "ufw or firewalld denies the port on this host, yet connections from the internet reach it: Docker's DNAT sends them to the container through the forward chain, which the deny in the input chain never sees.",
		Help:  "Publish the port on 127.0.0.1 only (-p 127.0.0.1:HOST:CONTAINER), or deny it in the DOCKER-USER chain, which Docker's forward rules honour."},
	{ID: RuleReachNotAllowed, Name: "ReachNotAllowed", Severity: registry.SevHigh,
		Short: "A port reachable from a source class the policy does not allow",
		Full:  "With reach: in the policy, every listening port the firewall lets in from the internet (or the LAN) that the policy's list for that class does not name.",
		Help:  "Close the port to that class in the firewall, or add it to the policy's reach: list."},
	{ID: RuleAcceptQueueFull, Name: "AcceptQueueFull", Severity: registry.SevMedium,
		Short: "A TCP listener's accept queue is full",
		Full:  "A TCP listener holds as many connections waiting to be accepted as its backlog (ss's Recv-Q against Send-Q): the program accepts too slowly, is hung, or is under a connection flood, and the kernel turns the next clients away.",
		Help:  "Find out why the program does not accept (portctl who PORT); raise its listen backlog and net.core.somaxconn if it is only slow; portctl guard --status shows the counters."},
	{ID: RuleListenOverflows, Name: "ListenOverflows", Severity: registry.SevLow, Kernel: true,
		Short: "Full accept queues have turned connections away",
		Full:  "The kernel's ListenOverflows counter (/proc/net/netstat, TcpExt) is not zero: since boot, or since the namespace was made, a listener's full accept queue dropped connections.",
		Help:  "Find the listener whose queue fills (portctl guard --status), and raise its listen backlog and net.core.somaxconn, or make it accept faster."},
	{ID: RuleSyncookiesSent, Name: "SyncookiesSent", Severity: registry.SevLow, Kernel: true,
		Short: "The SYN queue has overflowed and SYN cookies answered",
		Full:  "The kernel's SyncookiesSent counter (/proc/net/netstat, TcpExt) is not zero: a SYN queue overflowed, from a SYN flood or from a backlog too small for the load, and the kernel answered with SYN cookies.",
		Help:  "Keep net.ipv4.tcp_syncookies=1; without a flood, raise net.ipv4.tcp_max_syn_backlog and the listeners' backlogs (portctl guard --status)."},
}

// Rules returns every rule, in a stable order. The caller must not modify
// the result.
func Rules() []Rule { return rules }

// ruleIndex returns the position of the rule id in Rules, or -1.
func ruleIndex(id string) int {
	for i, r := range rules {
		if r.ID == id {
			return i
		}
	}
	return -1
}

// ruleHelp is a rule's general advice, the fix of its findings unless
// they have a more precise one.
func ruleHelp(id string) string { return rules[ruleIndex(id)].Help }

// ruleIDs lists the rule IDs, for error messages.
func ruleIDs() []string {
	ids := make([]string, len(rules))
	for i, r := range rules {
		ids[i] = r.ID
	}
	return ids
}
