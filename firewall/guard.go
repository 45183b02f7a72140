package firewall

import "time"

// portctl guard's part of portctl's own table (see package guard):
//
//	table inet portctl {
//		set guard-ban4 { type ipv4_addr; flags timeout; }
//		set guard-ban6 { type ipv6_addr; flags timeout; }
//		set guard-open4 { type ipv4_addr . inet_proto . inet_service; flags timeout; }
//		set guard-open6 { type ipv6_addr . inet_proto . inet_service; flags timeout; }
//		set guard-ports { type inet_proto . inet_service; }
//		set guard-seen4 { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags dynamic,timeout; size 65536; }
//		set guard-seen6 { (the same of ipv6_addr) }
//		chain guard {
//			type filter hook prerouting priority -120; policy accept;
//			ct state established,related return
//			iifname "lo" return
//			fib daddr type != local return
//			meta l4proto tcp jump guard-in
//			meta l4proto udp jump guard-in
//		}
//		chain guard-in {
//			ip saddr @guard-ban4 drop
//			ip6 saddr @guard-ban6 drop
//			udp dport SPA log group G snaplen 1280 prefix "portctl-spa" drop
//			ct state new,invalid,untracked jump guard-log
//			ct state established,related return
//			ip saddr . meta l4proto . th dport @guard-open4 return
//			ip6 saddr . meta l4proto . th dport @guard-open6 return
//			meta l4proto . th dport @guard-ports drop
//		}
//		chain guard-log {
//			(with Dedup, for IPv4 and likewise IPv6:)
//			ct state new ip saddr . ip daddr . meta l4proto . th dport @guard-seen4 return
//			ct state new add @guard-seen4 { ip saddr . ip daddr . meta l4proto . th dport timeout DEDUP }
//			log group G snaplen 96 prefix "portctl-new"
//		}
//	}
//
// Every rule is commented GuardComment. At priority -120 the packet is
// seen before any NAT (-100) and before portctl's blocks (-110), with its
// conntrack state known (conntrack runs at -200): a new connection, a
// packet conntrack could not place (a FIN, NULL or Xmas probe), or one
// it made a new entry for (a late ACK with loose tracking) is logged;
// established traffic is not, so logging costs one message per new flow.
const (
	// GuardComment is the comment on every rule of guard's chains.
	GuardComment = "portctl guard"
	// GuardNewPrefix and GuardSPAPrefix are the log prefixes of a new
	// connection attempt and of a signed packet.
	GuardNewPrefix = "portctl-new"
	GuardSPAPrefix = "portctl-spa"

	guardChain    = "guard"
	guardInChain  = "guard-in"
	guardLogChain = "guard-log"
	guardPriority = -120
	guardBan4     = "guard-ban4"
	guardBan6     = "guard-ban6"
	guardOpen4    = "guard-open4"
	guardOpen6    = "guard-open6"
	guardPorts    = "guard-ports"
	guardSeen4    = "guard-seen4"
	guardSeen6    = "guard-seen6"
	seenSize      = 1 << 16
)

// GuardRules is what guard's chains do.
type GuardRules struct {
	// Group is the NFLOG group the attempts are logged to.
	Group uint16
	// Snaplen is how much of each attempt is copied (default 96 bytes:
	// the IP and transport headers).
	Snaplen uint32
	// SPAPort, when not zero, is the UDP port whose datagrams are logged
	// whole (up to 1,280 bytes) as signed packets and dropped.
	SPAPort uint16
	// Dedup, when not zero, logs a new connection of the same source,
	// destination, protocol and port once in that time: a client that
	// reconnects, a retry, is no new first contact. It costs the kernel a
	// set of at most 65,536 contacts, and spares a message per connection.
	Dedup time.Duration
	// Guarded are the ports dropped for new connections from anyone not
	// let in (GuardOpen): the ports knock sequences and signed packets
	// open.
	Guarded []GuardPort
}

// GuardPort is a protocol (6 or 17) and a port.
type GuardPort struct {
	Proto uint8
	Port  uint16
}

// guardSnaplen is the default of GuardRules.Snaplen; spaSnaplen is what a
// signed packet gets.
const (
	guardSnaplen = 96
	spaSnaplen   = 1280
)
