//go:build linux

package testnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Router is a real NAT router made for one test: Debian's miniupnpd
// (UPnP IGD, NAT-PMP and PCP in one daemon, nftables backend) in a
// "router" namespace that forwards and masquerades between a "lan"
// namespace, where the client under test runs, and a "wan" namespace, the
// outside. The three are linked only to each other:
//
//	wan 11.77.0.2/24 ─ veth ─ (rw) 11.77.0.1/24  router  192.168.77.1/24 (rl) ─ veth ─ 192.168.77.10/24 lan
//
// The addresses exist only inside the namespaces; the WAN side's lie
// outside the ranges miniupnpd treats as private (where it would refuse
// to forward). Its methods are not safe for concurrent use.
type Router struct {
	// LAN, Router and WAN are the namespaces, as ip netns names them.
	LAN, Router, WAN string
	// LANAddr is the lan host's address; RouterLAN the router's address
	// on the lan side (the gateway the lan sees); External the router's
	// address on the wan side (its external address); WANAddr the wan
	// host's address.
	LANAddr, RouterLAN, External, WANAddr netip.Addr
	// LAN6, RouterLAN6, External6 and WAN6 are the same hosts' IPv6
	// addresses, with RouterConfig.IPv6 only: no NAT there, the router
	// routes the lan's /64 and forwards what miniupnpd's pinholes (PCP
	// MAP from an IPv6 address) let in.
	LAN6, RouterLAN6, External6, WAN6 netip.Addr
	// ISP is, with RouterConfig.Behind, the namespace of the second NAT
	// between the router and the wan, and Outside its address on the wan
	// side: what the wan sees the lan's connections come from. Without
	// Behind, ISP is empty and Outside is External.
	ISP     string
	Outside netip.Addr
	// Dir holds miniupnpd's configuration (miniupnpd.conf), its PID file
	// and its log (miniupnpd.log, appended at each start).
	Dir string
	// HTTPPort is the port of miniupnpd's UPnP HTTP server on RouterLAN
	// (its description is at /rootDesc.xml); it changes at each start.
	HTTPPort uint16

	cfg  RouterConfig
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	log  *os.File
}

// RouterConfig sets what miniupnpd is started with; the zero value gives
// the defaults below.
type RouterConfig struct {
	// MinLifetime and MaxLifetime bound the leases miniupnpd grants through
	// NAT-PMP and PCP (whole seconds; default 10 s and 600 s). A shorter
	// lease asked for is raised to MinLifetime.
	MinLifetime, MaxLifetime time.Duration
	// Rules are miniupnpd's permission lines, in order, replacing the
	// default "allow 1024-65535 192.168.77.0/24 1024-65535" then "deny
	// 0-65535 0.0.0.0/0 0-65535" (ports below 1024 refused).
	Rules []string
	// Extra lines appended to the configuration file.
	Extra []string
	// IPv6 gives the namespaces IPv6 addresses too (in 2001:db8:77::/48,
	// the documentation range), and the router IPv6 forwarding: miniupnpd
	// then listens for PCP on IPv6 as well.
	IPv6 bool
	// Behind puts the router behind a second NAT, an "isp" namespace that
	// masquerades (a carrier-grade NAT, no port mapping), as double NAT
	// is met in the field: the router's WAN address is then 100.64.77.2,
	// in the shared range, which miniupnpd takes for "no public
	// address": it answers, but maps nothing.
	//
	//	wan 11.77.0.2 ─ 11.77.0.1 isp 100.64.77.1 ─ 100.64.77.2 router 192.168.77.1 ─ 192.168.77.10 lan
	Behind bool
}

// The router's addresses: the same in every test, as each test's
// namespaces are its own.
var (
	routerWANHost = netip.MustParseAddr("11.77.0.2")
	routerWANIf   = netip.MustParseAddr("11.77.0.1")
	routerLANIf   = netip.MustParseAddr("192.168.77.1")
	routerLANHost = netip.MustParseAddr("192.168.77.10")
	// With RouterConfig.Behind: the router's WAN address and the isp's
	// address facing it.
	routerBehindIf = netip.MustParseAddr("100.64.77.2")
	ispRouterIf    = netip.MustParseAddr("100.64.77.1")
)

// ispRuleset is the second NAT's: it masquerades what leaves toward the
// wan, and forwards nothing in.
const ispRuleset = `table ip nat {
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		oifname "iw" masquerade
	}
}
`

// routerRuleset is the router's nftables ruleset: forwarding from the lan,
// back for established flows, and miniupnpd's chains; masquerade on the
// way out.
const routerRuleset = `table inet filter {
	chain miniupnpd {
	}
	chain forward {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		iifname "rl" accept
		jump miniupnpd
	}
}
table inet nat {
	chain prerouting_miniupnpd {
	}
	chain postrouting_miniupnpd {
	}
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		jump prerouting_miniupnpd
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		jump postrouting_miniupnpd
		oifname "rw" masquerade
	}
}
`

// NewRouter makes the three namespaces, loads the router's ruleset and
// starts miniupnpd inside the router namespace, with cfg (at most one) or
// the defaults; it returns once miniupnpd answers a NAT-PMP request from
// the lan. Everything is stopped and removed when the test ends. It skips
// the test, saying why, without root, ip, nft or miniupnpd.
func NewRouter(t testing.TB, cfg ...RouterConfig) *Router {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces")
	}
	for _, tool := range []struct{ name, pkg string }{{"ip", "iproute2"}, {"nft", "nftables"}, {"miniupnpd", "miniupnpd-nftables"}} {
		if _, err := exec.LookPath(tool.name); err != nil {
			t.Skipf("needs %s (Debian package %s; bash test-deps.sh installs it)", tool.name, tool.pkg)
		}
	}
	if len(cfg) > 1 {
		t.Fatalf("NewRouter: at most one RouterConfig, got %d", len(cfg))
	}
	r := &Router{LANAddr: routerLANHost, RouterLAN: routerLANIf, External: routerWANIf, Outside: routerWANIf, WANAddr: routerWANHost, Dir: t.TempDir()}
	if len(cfg) == 1 {
		r.cfg = cfg[0]
	}
	id := rand.Uint32() & 0xffffff
	r.LAN = fmt.Sprintf("portctl-lan-%06x", id)
	r.Router = fmt.Sprintf("portctl-rtr-%06x", id)
	r.WAN = fmt.Sprintf("portctl-wan-%06x", id)
	spaces := []string{r.LAN, r.Router, r.WAN}
	if r.cfg.Behind {
		if r.cfg.IPv6 {
			t.Fatal("NewRouter: RouterConfig.Behind is IPv4 only")
		}
		r.ISP = fmt.Sprintf("portctl-isp-%06x", id)
		r.External = routerBehindIf
		spaces = append(spaces, r.ISP)
	}
	for _, ns := range spaces {
		Run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v: %s", ns, err, out)
			}
		})
	}
	// The veth pairs are made inside the router namespace and their far
	// ends moved straight into the others: no interface of the host's
	// namespace is touched.
	// With Behind, the router's wan side leads to the isp instead, and
	// the isp's to the wan.
	up := r.WAN
	links := []struct{ ns, dev, addr string }{
		{r.Router, "rw", r.External.String() + "/24"},
		{r.Router, "rl", r.RouterLAN.String() + "/24"},
		{r.WAN, "wr", r.WANAddr.String() + "/24"},
		{r.LAN, "lr", r.LANAddr.String() + "/24"},
	}
	if r.cfg.Behind {
		up = r.ISP
		Run(t, "ip", "-n", r.ISP, "link", "add", "iw", "type", "veth", "peer", "name", "wr", "netns", r.WAN)
		links[2] = struct{ ns, dev, addr string }{r.ISP, "wr", ispRouterIf.String() + "/24"}
		links = append(links,
			struct{ ns, dev, addr string }{r.ISP, "iw", r.Outside.String() + "/24"},
			struct{ ns, dev, addr string }{r.WAN, "wr", r.WANAddr.String() + "/24"})
	}
	Run(t, "ip", "-n", r.Router, "link", "add", "rw", "type", "veth", "peer", "name", "wr", "netns", up)
	Run(t, "ip", "-n", r.Router, "link", "add", "rl", "type", "veth", "peer", "name", "lr", "netns", r.LAN)
	for _, x := range links {
		Run(t, "ip", "-n", x.ns, "addr", "add", x.addr, "dev", x.dev)
		Run(t, "ip", "-n", x.ns, "link", "set", x.dev, "up")
		Run(t, "ip", "-n", x.ns, "link", "set", "lo", "up")
	}
	Run(t, "ip", "-n", r.LAN, "route", "add", "default", "via", r.RouterLAN.String())
	if r.cfg.IPv6 {
		r.LAN6, r.RouterLAN6 = netip.MustParseAddr("2001:db8:77:1::10"), netip.MustParseAddr("2001:db8:77:1::1")
		r.External6, r.WAN6 = netip.MustParseAddr("2001:db8:77::1"), netip.MustParseAddr("2001:db8:77::2")
		for _, x := range []struct {
			ns, dev string
			a       netip.Addr
		}{{r.Router, "rw", r.External6}, {r.Router, "rl", r.RouterLAN6}, {r.WAN, "wr", r.WAN6}, {r.LAN, "lr", r.LAN6}} {
			Run(t, "ip", "-n", x.ns, "addr", "add", x.a.String()+"/64", "dev", x.dev, "nodad")
		}
		Run(t, "ip", "-n", r.LAN, "-6", "route", "add", "default", "via", r.RouterLAN6.String())
		Run(t, "ip", "-n", r.WAN, "-6", "route", "add", "2001:db8:77:1::/64", "via", r.External6.String())
		Run(t, "ip", "-n", r.Router, "-6", "route", "add", "default", "via", r.WAN6.String())
		Run(t, "ip", "netns", "exec", r.Router, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
	}
	// The router's default route points at the wan host: miniupnpd looks
	// for its external interface's address, and replies to the outside
	// need a way out.
	if r.cfg.Behind {
		Run(t, "ip", "-n", r.Router, "route", "add", "default", "via", ispRouterIf.String())
		Run(t, "ip", "-n", r.ISP, "route", "add", "default", "via", r.WANAddr.String())
		Run(t, "ip", "netns", "exec", r.ISP, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
		r.loadRuleset(t, r.ISP, "isp.nft", ispRuleset)
	} else {
		Run(t, "ip", "-n", r.Router, "route", "add", "default", "via", r.WANAddr.String())
	}
	// Per namespace: this is the router's forwarding, not the host's.
	Run(t, "ip", "netns", "exec", r.Router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	r.loadRuleset(t, r.Router, "ruleset.nft", routerRuleset)
	if err := os.WriteFile(r.conf(), []byte(r.config()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("stopping miniupnpd: %v", err)
		}
	})
	r.start(t)
	return r
}

// loadRuleset writes an nftables ruleset to name in r.Dir and loads it
// into namespace ns.
func (r *Router) loadRuleset(t testing.TB, ns, name, ruleset string) {
	t.Helper()
	path := filepath.Join(r.Dir, name)
	if err := os.WriteFile(path, []byte(ruleset), 0o644); err != nil {
		t.Fatal(err)
	}
	Run(t, "ip", "netns", "exec", ns, "nft", "-f", path)
}

func (r *Router) conf() string { return filepath.Join(r.Dir, "miniupnpd.conf") }

// config is miniupnpd's configuration file.
func (r *Router) config() string {
	minL, maxL := r.cfg.MinLifetime, r.cfg.MaxLifetime
	if minL <= 0 {
		minL = 10 * time.Second
	}
	if maxL <= 0 {
		maxL = 600 * time.Second
	}
	rules := r.cfg.Rules
	if rules == nil {
		p, _ := r.LANAddr.Prefix(24)
		rules = []string{"allow 1024-65535 " + p.String() + " 1024-65535", "deny 0-65535 0.0.0.0/0 0-65535"}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `ext_ifname=rw
listening_ip=rl
port=0
enable_natpmp=yes
enable_upnp=yes
secure_mode=yes
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b
min_lifetime=%d
max_lifetime=%d
upnp_table_name=filter
upnp_nat_table_name=nat
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
`, int(minL/time.Second), int(maxL/time.Second))
	for _, l := range append(rules, r.cfg.Extra...) {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// httpListening is miniupnpd's log line naming its HTTP port.
var httpListening = regexp.MustCompile(`HTTP listening on port (\d+)`)

// start starts miniupnpd in the foreground (-d) inside the router
// namespace and waits, at most 10 s, until it answers NAT-PMP from the
// lan and has said its HTTP port.
func (r *Router) start(t testing.TB) {
	t.Helper()
	logPath := filepath.Join(r.Dir, "miniupnpd.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	// ip netns exec runs the shell in a mount namespace of its own,
	// which execs miniupnpd: the PID is miniupnpd's. miniupnpd logs
	// through syslog(3), which, with no /dev/log here, writes each line to
	// /dev/console too (and slowly: 0.7 ms a line): /dev/null is bound
	// over it, in that mount namespace only.
	cmd := exec.Command("ip", "netns", "exec", r.Router, "sh", "-c",
		`if [ -e /dev/console ]; then mount --bind /dev/null /dev/console || exit 1; fi; exec miniupnpd -d -f "$1" -P "$2"`,
		"sh", r.conf(), filepath.Join(r.Dir, "miniupnpd.pid"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		t.Fatalf("starting miniupnpd: %v", err)
	}
	r.cmd, r.log, r.done = cmd, log, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(r.done)

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-r.done:
			out, _ := os.ReadFile(logPath)
			t.Fatalf("miniupnpd exited at start (%v):\n%s", cmd.ProcessState, out)
		default:
		}
		out, _ := os.ReadFile(logPath)
		m := httpListening.FindAllSubmatch(out, -1)
		if len(m) > 0 && r.answers(t) {
			port, _ := strconv.ParseUint(string(m[len(m)-1][1]), 10, 16)
			r.HTTPPort = uint16(port)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("miniupnpd does not answer NAT-PMP on %s after 10 s; its log:\n%s", r.RouterLAN, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// answers says whether the router answers a NAT-PMP external address
// request (RFC 6886 3.2: version 0, opcode 0) from the lan within 200 ms
// with its external address; behind a second NAT, with result 3,
// "network failure", miniupnpd's answer when its WAN address is not
// public.
func (r *Router) answers(t testing.TB) bool {
	t.Helper()
	var c *net.UDPConn
	var err error
	In(t, r.LAN, func() { c, err = net.ListenUDP("udp4", nil) })
	if err != nil {
		t.Fatalf("udp socket in %s: %v", r.LAN, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := c.WriteToUDPAddrPort([]byte{0, 0}, netip.AddrPortFrom(r.RouterLAN, 5351)); err != nil {
		return false
	}
	b := make([]byte, 64)
	n, err := c.Read(b)
	if err != nil || n != 12 || b[1] != 128 {
		return false
	}
	if r.cfg.Behind {
		return binary.BigEndian.Uint16(b[2:]) == 3
	}
	return binary.BigEndian.Uint16(b[2:]) == 0 && netip.AddrFrom4([4]byte(b[8:12])) == r.External
}

// stop stops miniupnpd, if it runs, by its PID: SIGTERM (its rules stay
// in the chains), then SIGKILL after 15 s (it reads SIGTERM's
// flag between requests, and a request its rules deny takes it a while).
func (r *Router) stop() error {
	if r.cmd == nil {
		return nil
	}
	defer func() { r.log.Close(); r.cmd = nil }()
	select {
	case <-r.done:
		return fmt.Errorf("miniupnpd had exited already (%v)", r.cmd.ProcessState)
	default:
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-r.done:
		return nil
	case <-time.After(15 * time.Second):
	}
	r.cmd.Process.Kill()
	<-r.done
	return errors.New("miniupnpd did not stop within 15 s of SIGTERM; killed")
}

// Restart stops miniupnpd and starts it again, as a router that reboots:
// its chains are flushed in between (miniupnpd leaves its rules in place
// when it stops, and takes them up again when it starts), so its mapping
// table is lost, and its NAT-PMP/PCP epoch starts again from zero.
// HTTPPort changes.
func (r *Router) Restart(t testing.TB) {
	t.Helper()
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"filter miniupnpd", "nat prerouting_miniupnpd", "nat postrouting_miniupnpd"} {
		Run(t, "ip", append([]string{"netns", "exec", r.Router, "nft", "flush", "chain", "inet"}, strings.Fields(c)...)...)
	}
	r.start(t)
}

// Log returns what miniupnpd has logged so far, for a failing test's
// message.
func (r *Router) Log() string {
	b, _ := os.ReadFile(filepath.Join(r.Dir, "miniupnpd.log"))
	return string(b)
}

// Exec runs a command inside namespace ns (r.LAN for upnpc or natpmpc)
// for at most limit and returns its combined output; a failure to start,
// or a timeout, fails the test.
func (r *Router) Exec(t testing.TB, ns string, limit time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	return ExecIn(t, ns, limit, name, args...)
}

// Connects says whether a TCP connection from the wan namespace to dst
// (r.External and a mapped port, or with RouterConfig.IPv6 an address of
// the lan's behind a pinhole) is made within timeout and reaches a
// listener (the connection is closed at once).
func (r *Router) Connects(t testing.TB, dst netip.AddrPort, timeout time.Duration) bool {
	t.Helper()
	return ConnectsFrom(t, r.WAN, netip.Addr{}, dst, timeout)
}

// Redirects returns miniupnpd's rules in the router's nat table's
// prerouting_miniupnpd chain, one per line, as nft lists them.
func (r *Router) Redirects(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", r.Router, "nft", "list", "chain", "inet", "nat", "prerouting_miniupnpd").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list chain: %v: %s", err, out)
	}
	var rules []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if strings.Contains(l, "dnat") {
			rules = append(rules, l)
		}
	}
	return rules
}
