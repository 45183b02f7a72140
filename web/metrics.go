package web

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portctl/portctl/ephemeral"
	"github.com/portctl/portctl/firewall"
	"github.com/portctl/portctl/forward/sshtun"
	"github.com/portctl/portctl/guard/flood"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

// maxListenerSeries bounds portctl_listening_sockets: ports past it are
// summed under port="other".
const maxListenerSeries = 500

// scrapeTimeout bounds one walk of the socket table.
const scrapeTimeout = 10 * time.Second

var (
	descSockets = prometheus.NewDesc("portctl_sockets",
		"Sockets by protocol and state (UDP: unconnected or established).", []string{"protocol", "state"}, nil)
	descListening = prometheus.NewDesc("portctl_listening_sockets",
		"Listening TCP and bound UDP sockets by port and by the addresses they accept on: loopback, any (wildcard) or specific.",
		[]string{"protocol", "port", "scope"}, nil)
	descEphRange = prometheus.NewDesc("portctl_ephemeral_ports",
		"Usable ports of the ephemeral (client) range: its size less reserved ports.", nil, nil)
	descEphInUse = prometheus.NewDesc("portctl_ephemeral_sockets",
		"Sockets whose local port lies in the ephemeral range, by protocol and state.", []string{"protocol", "state"}, nil)
	descEphDest = prometheus.NewDesc("portctl_ephemeral_destination_sockets",
		"Sockets of the busiest (source, destination) groups, which each may use at most portctl_ephemeral_ports source ports (top 10).",
		[]string{"protocol", "source", "destination"}, nil)
	descEphRatio = prometheus.NewDesc("portctl_ephemeral_destination_usage_ratio",
		"Share of the usable ephemeral range used by the busiest (source, destination) groups (top 10), from 0 to 1.",
		[]string{"protocol", "source", "destination"}, nil)
	descFindings = prometheus.NewDesc("portctl_audit_findings",
		"Audit findings by severity, as of the dashboard's latest sample.", []string{"severity"}, nil)
	descScrapeDur = prometheus.NewDesc("portctl_scrape_duration_seconds",
		"Time this scrape took to walk the socket table.", nil, nil)
	descScrapeOK = prometheus.NewDesc("portctl_scrape_success",
		"1 when the socket table could be read in this scrape, 0 when not.", nil, nil)
	descFwRules = prometheus.NewDesc("portctl_firewall_rules",
		"Rules of the packet filter (nftables and legacy iptables) by table and by who wrote them: ufw, firewalld, docker, kube-proxy, portctl or hand; as of the dashboard's latest sample.",
		[]string{"family", "table", "owner"}, nil)
	descFwRead = prometheus.NewDesc("portctl_firewall_read_success",
		"1 when the latest sample could read the ruleset, 0 when not (reading it needs root or CAP_NET_ADMIN).", nil, nil)
	descReachable = prometheus.NewDesc("portctl_reachable_ports",
		"Listening ports (by protocol) that the socket's bind address, the routes and the firewall let new connections reach from a source class: internet, lan or loopback; as of the latest sample.",
		[]string{"source"}, nil)
	descFullQueues = prometheus.NewDesc("portctl_tcp_full_accept_queues",
		"TCP listeners whose accept queue holds as many connections as their backlog: the kernel turns the next away.", nil, nil)
	descBuild = prometheus.NewDesc("portctl_build_info",
		"Always 1; the version label says which portctl serves these metrics.", []string{"version"}, nil)

	descFwdConns = prometheus.NewDesc("portctl_forward_connections_total",
		"Connections accepted (UDP: sessions opened) by a forwarding rule.", []string{"pid", "rule", "protocol", "listen"}, nil)
	descFwdActive = prometheus.NewDesc("portctl_forward_active_connections",
		"Connections (UDP: sessions) a forwarding rule holds now.", []string{"pid", "rule"}, nil)
	descFwdBytes = prometheus.NewDesc("portctl_forward_bytes_total",
		"Bytes a forwarding rule relayed: in is client to backend, out is backend to client.", []string{"pid", "rule", "direction"}, nil)
	descFwdRefused = prometheus.NewDesc("portctl_forward_refused_total",
		"Clients a forwarding rule refused by its allow/deny lists or its connection limit.", []string{"pid", "rule"}, nil)
	descFwdErrors = prometheus.NewDesc("portctl_forward_errors_total",
		"Connections a forwarding rule lost to an unreachable or resetting backend.", []string{"pid", "rule"}, nil)
	descFwdBackend = prometheus.NewDesc("portctl_forward_backend_up",
		"1 when a forwarding rule's backend passes its health check, 0 when not.", []string{"pid", "rule", "backend"}, nil)

	descSSHUp = prometheus.NewDesc("portctl_forward_ssh_up",
		"1 when a forwarder's SSH connection to a server (the via of its rules) is up, 0 while it connects or reconnects.", []string{"pid", "ssh", "address"}, nil)
	descSSHSince = prometheus.NewDesc("portctl_forward_ssh_state_since_timestamp_seconds",
		"When the SSH connection's state (up, or down) began: for a lost connection, since when it reconnects.", []string{"pid", "ssh"}, nil)
	descSSHRTT = prometheus.NewDesc("portctl_forward_ssh_rtt_seconds",
		"Round-trip time of the last SSH keepalive request to the server.", []string{"pid", "ssh"}, nil)
	descSSHLogins = prometheus.NewDesc("portctl_forward_ssh_logins_total",
		"Successful SSH logins to the server: the first, then one per reconnection.", []string{"pid", "ssh"}, nil)
	descSSHAttempts = prometheus.NewDesc("portctl_forward_ssh_attempts_total",
		"SSH connection attempts to the server, failed ones included.", []string{"pid", "ssh"}, nil)
	descSSHConns = prometheus.NewDesc("portctl_forward_ssh_tunnelled_connections_total",
		"Connections opened through the SSH server (local and SOCKS5 rules), or accepted by its remote forwards.", []string{"pid", "ssh"}, nil)
	descSSHActive = prometheus.NewDesc("portctl_forward_ssh_active_connections",
		"Connections through the SSH server open now.", []string{"pid", "ssh"}, nil)
	descSSHBytes = prometheus.NewDesc("portctl_forward_ssh_bytes_total",
		"Bytes through the SSH connection's tunnels: sent is into the tunnel, received out of it.", []string{"pid", "ssh", "direction"}, nil)

	descMapInfo = prometheus.NewDesc("portctl_map_mapping_info",
		"Always 1: a port mapping a portctl map add keeps at the router (protocol is pcp, natpmp or upnp).",
		[]string{"pid", "gateway", "protocol", "proto", "internal", "external", "description"}, nil)
	descMapLease = prometheus.NewDesc("portctl_map_lease_seconds",
		"The lease the router granted a kept mapping at its last renewal; 0 is permanent.", []string{"pid", "proto", "internal"}, nil)
	descMapExpiry = prometheus.NewDesc("portctl_map_lease_expiry_timestamp_seconds",
		"When a kept mapping's lease ends unless renewed (Unix time); absent for a permanent one.", []string{"pid", "proto", "internal"}, nil)
	descMapRenewals = prometheus.NewDesc("portctl_map_renewals_total",
		"Renewals of a kept mapping.", []string{"pid", "proto", "internal"}, nil)
	descMapRemaps = prometheus.NewDesc("portctl_map_remaps_total",
		"Times the router had lost a kept mapping (it restarted, or the mapping vanished) and it was made again.", []string{"pid", "proto", "internal"}, nil)
	descMapFailing = prometheus.NewDesc("portctl_map_renewal_failing",
		"1 while a kept mapping's last renewal failed (it is retried), 0 when it succeeded.", []string{"pid", "proto", "internal"}, nil)
)

// floodCounters are the kernel's TCP counters of SYN floods and
// overflowing queues (flood.Counters), exported per network namespace.
var floodCounters = []struct {
	desc  *prometheus.Desc
	value func(flood.Counters) uint64
}{
	{floodDesc("listen_overflows_total", "Connections a listener's full accept queue turned away (TcpExt ListenOverflows)."),
		func(c flood.Counters) uint64 { return c.ListenOverflows }},
	{floodDesc("listen_drops_total", "SYNs and ACKs listeners dropped for any reason, overflows included (TcpExt ListenDrops)."),
		func(c flood.Counters) uint64 { return c.ListenDrops }},
	{floodDesc("syncookies_sent_total", "SYN-ACKs sent with a SYN cookie because the SYN queue was full (TcpExt SyncookiesSent)."),
		func(c flood.Counters) uint64 { return c.SyncookiesSent }},
	{floodDesc("syncookies_recv_total", "ACKs that came back with a valid SYN cookie (TcpExt SyncookiesRecv)."),
		func(c flood.Counters) uint64 { return c.SyncookiesRecv }},
	{floodDesc("syncookies_failed_total", "ACKs with a SYN cookie that did not check out (TcpExt SyncookiesFailed)."),
		func(c flood.Counters) uint64 { return c.SyncookiesFailed }},
	{floodDesc("req_q_full_drops_total", "SYNs dropped because the SYN queue was full and SYN cookies were off (TcpExt TCPReqQFullDrop)."),
		func(c flood.Counters) uint64 { return c.TCPReqQFullDrop }},
	{floodDesc("req_q_full_do_cookies_total", "SYNs answered with a SYN cookie because the SYN queue was full (TcpExt TCPReqQFullDoCookies)."),
		func(c flood.Counters) uint64 { return c.TCPReqQFullDoCookies }},
}

func floodDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("portctl_tcp_"+name, help, []string{"netns"}, nil)
}

// FloodSource is a Source that can also read the kernel's SYN-flood
// counters (flood.Read); /metrics then exports them. Machine is one.
type FloodSource interface {
	Flood(ctx context.Context) (flood.Status, error)
}

// Flood reads the SYN-flood counters of the machine (or of NetNS),
// without its listeners, which the scrape's walk counts.
func (m Machine) Flood(ctx context.Context) (flood.Status, error) {
	return flood.Read(ctx, flood.Options{NetNS: m.NetNS, SkipListeners: true})
}

// collector computes the metrics at each scrape.
type collector struct{ s *Server }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSockets, descListening, descEphRange, descEphInUse, descEphDest, descEphRatio,
		descFindings, descFwRules, descFwRead, descReachable, descScrapeDur, descScrapeOK, descBuild, descFwdConns, descFwdActive, descFwdBytes, descFwdRefused,
		descFwdErrors, descFwdBackend, descSSHUp, descSSHSince, descSSHRTT, descSSHLogins, descSSHAttempts, descSSHConns, descSSHActive, descSSHBytes,
		descFullQueues, descMapInfo, descMapLease, descMapExpiry, descMapRenewals, descMapRemaps, descMapFailing} {
		ch <- d
	}
	for _, f := range floodCounters {
		ch <- f.desc
	}
}

type stateKey struct {
	proto sockets.Proto
	state string
}

type listenKey struct {
	proto sockets.Proto
	port  string
	scope string
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	s := c.s
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descBuild, 1, cmp.Or(s.opts.Version, "unknown"))

	host := s.src.Host()
	start := time.Now()
	states := map[stateKey]int{}
	listeners := map[listenKey]int{}
	fullQueues := 0
	eph := ephemeral.NewCounter(host)
	err := s.src.Walk(ctx, func(x *sockets.Socket) {
		name := x.State.Name()
		if x.Proto == sockets.UDP {
			name = "established"
			if x.Listening() {
				name = "unconnected"
			}
		}
		states[stateKey{x.Proto, name}]++
		eph.Add(x)
		if !x.Listening() {
			return
		}
		if x.State == sockets.Listen && (flood.Listener{Queue: x.RecvQ, Backlog: x.SendQ}).Full() {
			fullQueues++
		}
		k := listenKey{proto: x.Proto, port: strconv.Itoa(int(x.Local.Port())), scope: scopeOf(x.Local)}
		if x.Proto == sockets.UDP && host.InEphemeral(x.Local.Port()) {
			k.port = "ephemeral" // a client's unconnected UDP socket: not a service
		}
		listeners[k]++
	})
	gauge(descScrapeDur, time.Since(start).Seconds())
	if err != nil {
		gauge(descScrapeOK, 0)
	} else {
		gauge(descScrapeOK, 1)
		for k, n := range states {
			gauge(descSockets, float64(n), k.proto.String(), k.state)
		}
		gauge(descFullQueues, float64(fullQueues))
		keys := make([]listenKey, 0, len(listeners))
		for k := range listeners {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b listenKey) int {
			return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(len(a.port), len(b.port)), cmp.Compare(a.port, b.port), cmp.Compare(a.scope, b.scope))
		})
		other := map[listenKey]int{}
		for i, k := range keys {
			if i >= maxListenerSeries {
				other[listenKey{k.proto, "other", k.scope}] += listeners[k]
				continue
			}
			gauge(descListening, float64(listeners[k]), k.proto.String(), k.port, k.scope)
		}
		for k, n := range other {
			gauge(descListening, float64(n), k.proto.String(), k.port, k.scope)
		}
		rep := eph.Report(80, 10)
		gauge(descEphRange, float64(rep.Available))
		for st, n := range rep.ByState {
			proto := "tcp"
			if p, ok := strings.CutPrefix(st, "udp_"); ok {
				proto, st = "udp", p
			}
			gauge(descEphInUse, float64(n), proto, st)
		}
		for _, g := range rep.Groups {
			gauge(descEphDest, float64(g.Sockets), g.Protocol, g.Source, g.Destination)
			gauge(descEphRatio, g.Share/100, g.Protocol, g.Source, g.Destination)
		}
	}

	// Findings come from the latest sample; every severity is exported, so
	// a query sees 0 rather than no series.
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	if st != nil {
		counts := st.audit.Counts()
		for _, sev := range registry.Severities {
			gauge(descFindings, float64(counts[sev]), sev.String())
		}
		if fw := st.fw; fw != nil {
			collectFirewall(fw, gauge)
		}
	}
	if fs, ok := s.src.(FloodSource); ok {
		if st, err := fs.Flood(ctx); err == nil { // not on this OS, or no way into the namespace
			for _, f := range floodCounters {
				counter(f.desc, float64(f.value(st.Counters)), st.NetNS)
			}
		}
	}
	for _, p := range s.src.Forwarders(ctx) {
		pid := strconv.Itoa(p.PID)
		for _, r := range p.Rules {
			counter(descFwdConns, float64(r.Conns), pid, r.Name, string(r.Proto), r.Listen.String())
			gauge(descFwdActive, float64(r.Active), pid, r.Name)
			counter(descFwdBytes, float64(r.BytesIn), pid, r.Name, "in")
			counter(descFwdBytes, float64(r.BytesOut), pid, r.Name, "out")
			counter(descFwdRefused, float64(r.Refused), pid, r.Name)
			counter(descFwdErrors, float64(r.Errors), pid, r.Name)
			for _, b := range r.Backends {
				up := 0.0
				if b.Healthy {
					up = 1
				}
				gauge(descFwdBackend, up, pid, r.Name, b.Target)
			}
		}
		for _, h := range p.SSH {
			up := 0.0
			if h.State == sshtun.StateConnected {
				up = 1
			}
			gauge(descSSHUp, up, pid, h.Target, h.Address)
			gauge(descSSHSince, float64(h.Since.UnixNano())/1e9, pid, h.Target)
			gauge(descSSHRTT, h.RTT.Seconds(), pid, h.Target)
			counter(descSSHLogins, float64(h.Connects), pid, h.Target)
			counter(descSSHAttempts, float64(h.Attempts), pid, h.Target)
			counter(descSSHConns, float64(h.Conns), pid, h.Target)
			gauge(descSSHActive, float64(h.Active), pid, h.Target)
			counter(descSSHBytes, float64(h.BytesOut), pid, h.Target, "sent")
			counter(descSSHBytes, float64(h.BytesIn), pid, h.Target, "received")
		}
	}
	if ms, ok := s.src.(MapSource); ok {
		for _, k := range ms.Mappings(ctx) {
			pid := strconv.Itoa(k.PID)
			for _, m := range k.Mappings {
				in := m.Internal.String()
				gauge(descMapInfo, 1, pid, k.Gateway.String(), string(m.Protocol), m.Proto, in, m.External.String(), m.Description)
				gauge(descMapLease, m.Lease.Seconds(), pid, m.Proto, in)
				if m.Lease > 0 {
					gauge(descMapExpiry, float64(m.Renewed.Add(m.Lease).Unix()), pid, m.Proto, in)
				}
				counter(descMapRenewals, float64(m.Renewals), pid, m.Proto, in)
				counter(descMapRemaps, float64(m.Remaps), pid, m.Proto, in)
				failing := 0.0
				if m.Error != "" {
					failing = 1
				}
				gauge(descMapFailing, failing, pid, m.Proto, in)
			}
		}
	}
}

// scopeOf says which addresses a listener accepts on.
func scopeOf(ap netip.AddrPort) string {
	a := ap.Addr().Unmap()
	switch {
	case !a.IsValid() || a.IsUnspecified():
		return "any"
	case a.IsLoopback():
		return "loopback"
	}
	return "specific"
}

// collectFirewall exports the sample's firewall: its rules by owner, and
// the listening ports each source class reaches (every class is
// exported, so a query sees 0 rather than no series).
func collectFirewall(fw *fwState, gauge func(*prometheus.Desc, float64, ...string)) {
	if fw.read == nil {
		gauge(descFwRead, 0)
		return
	}
	gauge(descFwRead, 1)
	counts := map[[3]string]int{}
	rcs, _ := ruleCounts(fw.read.Ruleset)
	for _, rc := range rcs {
		table := rc.Table
		if rc.Source == string(firewall.Legacy) {
			table += " (legacy)"
		}
		counts[[3]string{rc.Family, table, rc.Owner}] += rc.Rules
	}
	for k, n := range counts {
		gauge(descFwRules, float64(n), k[0], k[1], k[2])
	}
	for _, c := range firewall.Classes {
		n := 0
		for _, pr := range fw.reach.Ports {
			for _, a := range pr.From {
				if a.From == c && a.Verdict == firewall.Accept {
					n++
				}
			}
		}
		gauge(descReachable, float64(n), string(c))
	}
}
