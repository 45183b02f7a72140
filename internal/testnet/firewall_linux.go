//go:build linux

package testnet

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The loaders below put a real tool's ruleset into a test's namespace: ufw,
// firewalld, iptables-legacy, kube-proxy's layout, and Docker behind ufw.
// ufw and firewalld keep their state under /etc; they run under "ip netns
// exec", which gives each command a mount namespace of its own, with a
// temporary copy of their directories bound over the real ones, so that
// the host's /etc is never written.

// needTools fails the test when a tool is missing: test-deps.sh installs
// them, so as root a missing one is a broken setup, not a reason to skip.
func needTools(t testing.TB, pkg string, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s (Debian package %s; bash test-deps.sh installs it)", tool, pkg)
		}
	}
}

// inNS runs a shell script inside the namespace (and a mount namespace of
// its own) and returns its output, failing the test when it fails.
func inNS(t testing.TB, ns *Namespace, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "sh", "-ec", script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", ns.Name, script, err, out)
	}
	return string(out)
}

// ufwDefaults is Debian's /etc/default/ufw, with the sysctls ufw applies
// at start pointed at an empty file: all of Debian's are per namespace
// today, but a future one need not be.
const ufwDefaults = `IPV6=yes
DEFAULT_INPUT_POLICY="DROP"
DEFAULT_OUTPUT_POLICY="ACCEPT"
DEFAULT_FORWARD_POLICY="DROP"
DEFAULT_APPLICATION_POLICY="SKIP"
MANAGE_BUILTINS=no
IPT_SYSCTL=/etc/ufw/sysctl.conf
IPT_MODULES=""
`

// UFWFirewall is Debian's ufw, with its rules files in a directory of the
// test's.
type UFWFirewall struct {
	NS *Namespace
	// Dir holds ufw's configuration, bound over /etc/ufw when it runs:
	// user.rules and user6.rules are there.
	Dir string
	top string
}

// UFW enables Debian's ufw in the namespace with its package defaults
// (incoming denied, outgoing allowed, routed denied), then runs each of
// cmds as "ufw CMD" ("allow 22/tcp", "deny 6379", "limit ssh", "allow
// from 10.0.0.0/8 to any port 5432 proto tcp"; words are split as a
// shell splits them). ufw writes its rules with iptables-nft, into the
// namespace's ip and ip6 filter tables.
func UFW(t testing.TB, ns *Namespace, cmds ...string) *UFWFirewall {
	t.Helper()
	needTools(t, "ufw", "ufw")
	top := t.TempDir()
	u := &UFWFirewall{NS: ns, Dir: top + "/etc-ufw", top: top}
	for _, d := range []string{u.Dir, u.Dir + "/applications.d", top + "/lib-ufw"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The package's own copies, not the host's /etc/ufw, which its
	// administrator may have changed.
	for _, f := range []string{"before.rules", "after.rules", "user.rules", "before6.rules", "after6.rules", "user6.rules"} {
		copyFile(t, "/usr/share/ufw/iptables/"+f, u.Dir+"/"+f, 0o640)
	}
	for _, f := range []string{"before.init", "after.init"} {
		if _, err := os.Stat("/usr/share/ufw/" + f); err == nil {
			copyFile(t, "/usr/share/ufw/"+f, u.Dir+"/"+f, 0o750)
		}
	}
	apps, _ := filepath.Glob("/etc/ufw/applications.d/*")
	for _, a := range apps {
		copyFile(t, a, u.Dir+"/applications.d/"+filepath.Base(a), 0o644)
	}
	writeFile(t, u.Dir+"/ufw.conf", "ENABLED=no\nLOGLEVEL=low\n")
	writeFile(t, u.Dir+"/sysctl.conf", "")
	writeFile(t, top+"/default-ufw", ufwDefaults)
	for _, f := range []string{"ufw-init", "ufw-init-functions"} {
		copyFile(t, "/lib/ufw/"+f, top+"/lib-ufw/"+f, 0o755)
	}
	u.Run(t, "--force enable")
	for _, c := range cmds {
		u.Run(t, c)
	}
	return u
}

// Run runs "ufw CMD" in the namespace, with ufw's files bound over their
// places, and returns its output.
func (u *UFWFirewall) Run(t testing.TB, cmd string) string {
	t.Helper()
	return inNS(t, u.NS, fmt.Sprintf(
		"mount --bind %[1]s/etc-ufw /etc/ufw; mount --bind %[1]s/default-ufw /etc/default/ufw; mount --bind %[1]s/lib-ufw /lib/ufw; ufw %[2]s",
		u.top, cmd))
}

// Rules returns the text of user.rules and user6.rules.
func (u *UFWFirewall) Rules(t testing.TB) (v4, v6 string) {
	t.Helper()
	a, err := os.ReadFile(u.Dir + "/user.rules")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(u.Dir + "/user6.rules")
	if err != nil {
		t.Fatal(err)
	}
	return string(a), string(b)
}

// UFWDocker is the classic bypass: a Docker daemon and ufw in one
// namespace, ufw enabled with cmds ("deny 6379"). Docker's chains come
// first in FORWARD and its DNAT in nat PREROUTING, so a port it publishes
// is let in whatever ufw denies: ufw filters INPUT, and the published
// port's packets are forwarded.
func UFWDocker(t testing.TB, opts DockerOptions, cmds ...string) (*Engine, *UFWFirewall) {
	t.Helper()
	needTools(t, "ufw", "ufw")
	e := StartDocker(t, opts)
	return e, UFW(t, e.NS, cmds...)
}

// FirewalldDocker is the same bypass behind firewalld: firewalld (cmds
// as in Firewalld) and then a Docker daemon in one namespace, in the
// order a host starts them (firewalld, starting, flushes iptables' tables
// and with them Docker's chains). Docker finds no firewalld on the
// host's D-Bus and writes its iptables rules alone; firewalld's forward
// chain accepts what a DNAT sent ("ct status dnat accept"), so a
// published port is let in whatever the zone says.
func FirewalldDocker(t testing.TB, opts DockerOptions, cmds ...string) (*Engine, *FirewalldDaemon) {
	t.Helper()
	needTools(t, "firewalld", "firewalld", "firewall-cmd")
	e := newEngine(t, []string{"dockerd", "docker"}, "docker.io")
	f := Firewalld(t, e.NS, cmds...)
	// The daemon as StartDocker starts it.
	name := filepath.Base(e.dir)
	args := []string{"dockerd", "--data-root", e.dir + "/data", "--exec-root", e.dir + "/exec", "--pidfile", e.dir + "/pid",
		"-H", e.Host, "--containerd-namespace", name, "--containerd-plugins-namespace", name + "-plugins"}
	if opts.NoUserlandProxy {
		args = append(args, "--userland-proxy=false")
	}
	e.cli = []string{"docker", "-H", e.Host}
	e.Image = "portctl-test/busybox:local"
	e.start(t, args, nil)
	return e, f
}

// FirewalldDaemon is Debian's firewalld running inside a namespace, on a
// D-Bus system bus of its own.
type FirewalldDaemon struct {
	NS *Namespace
	// Bus is the address of its D-Bus bus, as DBUS_SYSTEM_BUS_ADDRESS.
	Bus string
	// Dir is its system configuration (/etc/firewalld).
	Dir string
}

// firewalldConf is Debian's firewalld.conf: the nftables backend, the
// public zone by default.
const firewalldConf = `DefaultZone=public
CleanupOnExit=yes
CleanupModulesOnExit=no
Lockdown=no
IPv6_rpfilter=yes
IndividualCalls=no
LogDenied=off
FirewallBackend=nftables
FlushAllOnReload=yes
RFC3964_IPv4=yes
`

// busConf is a D-Bus system bus for root alone, listening on one socket.
const busConf = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// Firewalld starts Debian's firewalld (nftables backend) inside the
// namespace, in the foreground (--nofork --nopid), with a dbus-daemon of
// its own for its D-Bus API and an empty /etc/firewalld, then runs each
// of cmds as "firewall-cmd CMD" ("--zone=public --add-port=5432/tcp",
// "--add-service=ssh", "--add-rich-rule='rule family=ipv4 source
// address=10.0.0.0/8 port port=6379 protocol=tcp accept'"; words are
// split as a shell splits them). Both daemons stop, by PID, when the test
// ends; firewalld removes its table as it goes.
func Firewalld(t testing.TB, ns *Namespace, cmds ...string) *FirewalldDaemon {
	t.Helper()
	return FirewalldBackend(t, ns, "nftables", cmds...)
}

// FirewalldBackend is Firewalld with the given FirewallBackend:
// "nftables" (Debian's default: table inet firewalld) or "iptables" (its
// older backend: chains such as IN_public_allow in iptables' own tables,
// which it writes with iptables-nft here).
func FirewalldBackend(t testing.TB, ns *Namespace, backend string, cmds ...string) *FirewalldDaemon {
	t.Helper()
	needTools(t, "firewalld", "firewalld", "firewall-cmd")
	needTools(t, "dbus-daemon", "dbus-daemon")
	dir := t.TempDir()
	f := &FirewalldDaemon{NS: ns, Bus: "unix:path=" + dir + "/bus", Dir: dir + "/etc"}
	for _, d := range []string{"zones", "services", "icmptypes", "ipsets", "helpers", "policies"} {
		if err := os.MkdirAll(f.Dir+"/"+d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, f.Dir+"/firewalld.conf", strings.Replace(firewalldConf, "FirewallBackend=nftables", "FirewallBackend="+backend, 1))
	writeFile(t, dir+"/bus.conf", fmt.Sprintf(busConf, dir+"/bus"))

	bus := daemon(t, dir+"/dbus.log", nil, "ip", "netns", "exec", ns.Name,
		"dbus-daemon", "--config-file="+dir+"/bus.conf", "--nofork", "--nopidfile", "--nosyslog")
	waitFor(t, 10*time.Second, "dbus-daemon's socket", bus, func() bool {
		_, err := os.Stat(dir + "/bus")
		return err == nil
	})
	env := []string{"DBUS_SYSTEM_BUS_ADDRESS=" + f.Bus}
	fw := daemon(t, dir+"/firewalld.out", env, "ip", "netns", "exec", ns.Name, "sh", "-c",
		fmt.Sprintf("mount --bind %[1]s /etc/firewalld && exec firewalld --nofork --nopid --system-config %[1]s --log-target file --log-file %[2]s/firewalld.log", f.Dir, dir))
	// Cleanups run last first: firewalld stops before its bus.
	t.Cleanup(func() { fw.stop(); bus.stop() })
	waitFor(t, 60*time.Second, "firewalld", fw, func() bool {
		out, err := exec.Command("sh", "-c", "DBUS_SYSTEM_BUS_ADDRESS="+f.Bus+" firewall-cmd --state").CombinedOutput()
		return err == nil && strings.TrimSpace(string(out)) == "running"
	})
	for _, c := range cmds {
		f.Cmd(t, c)
	}
	return f
}

// Cmd runs "firewall-cmd CMD" against this firewalld and returns its
// output.
func (f *FirewalldDaemon) Cmd(t testing.TB, cmd string) string {
	t.Helper()
	return inNS(t, f.NS, "firewall-cmd "+cmd, "DBUS_SYSTEM_BUS_ADDRESS="+f.Bus)
}

// proc is a daemon a loader started.
type proc struct {
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

// daemon starts a long-running command in a process group of its own,
// its output to log.
func daemon(t testing.TB, log string, env []string, args ...string) *proc {
	t.Helper()
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: log, exited: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.exited) }()
	return p
}

// stop ends the daemon by its PID: SIGTERM, then SIGKILL to its group
// after 20 s. "ip netns exec" and "sh -c … exec" exec the daemon, so
// the PID is the daemon's.
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

// waitFor polls ready until it is true, failing the test with the
// daemon's log when the daemon exits or the time is up.
func waitFor(t testing.TB, limit time.Duration, what string, p *proc, ready func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ready() {
		select {
		case <-p.exited:
			b, _ := os.ReadFile(p.log)
			t.Fatalf("%s exited at start:\n%s", what, tail(b, 20))
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.log)
			t.Fatalf("%s not ready after %v:\n%s", what, limit, tail(b, 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// IptablesLegacy loads iptables-save text into the namespace's legacy
// x_tables with iptables-legacy-restore (v4) and ip6tables-legacy-restore
// (v6); an empty text loads nothing for that family. nft cannot see
// these tables, and they still filter.
func IptablesLegacy(t testing.TB, ns *Namespace, v4, v6 string) {
	t.Helper()
	needTools(t, "iptables", "iptables-legacy-restore", "ip6tables-legacy-restore")
	for _, l := range []struct{ tool, text string }{{"iptables-legacy-restore", v4}, {"ip6tables-legacy-restore", v6}} {
		if l.text == "" {
			continue
		}
		cmd := exec.Command("ip", "netns", "exec", ns.Name, l.tool)
		cmd.Stdin = strings.NewReader(l.text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s in %s: %v: %s", l.tool, ns.Name, err, out)
		}
	}
	// Legacy tables outlive nothing but the namespace; flushing them at
	// the end keeps a reused namespace clean all the same.
	t.Cleanup(func() {
		exec.Command("ip", "netns", "exec", ns.Name, "sh", "-c",
			"for t in filter nat mangle raw; do iptables-legacy -t $t -F; iptables-legacy -t $t -X; ip6tables-legacy -t $t -F; ip6tables-legacy -t $t -X; done 2>/dev/null").Run()
	})
}

// KubeService is a Kubernetes NodePort service as kube-proxy lays it out:
// a pod behind it in a namespace of its own, and a second service with no
// endpoints, whose NodePort kube-proxy rejects.
type KubeService struct {
	// Name is the service as kube-proxy's comments name it.
	Name string
	// ClusterIP and Port are the service's cluster address.
	ClusterIP netip.Addr
	Port      uint16
	// NodePort is the port on every address of the node (the namespace).
	NodePort uint16
	// Pod is the pod's namespace, Endpoint the address its server
	// listens on.
	Pod      string
	Endpoint netip.AddrPort
	// EmptyNodePort is the NodePort of the service with no endpoints.
	EmptyNodePort uint16
}

// newKubePod makes the pod: a namespace joined to ns by a veth pair, a
// TCP listener in it on port 8080, forwarding on in ns.
func newKubePod(t testing.TB, ns *Namespace) *KubeService {
	t.Helper()
	id := ns.Name[len(ns.Name)-6:]
	pod := "portctl-pod-" + id
	p := freePrefix(t, 30)
	nodeAddr := p.Addr().Next()
	podAddr := nodeAddr.Next()
	Run(t, "ip", "netns", "add", pod)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", pod).Run() })
	nodeIf, podIf := "kn"+id, "kp"+id
	Run(t, "ip", "-n", ns.Name, "link", "add", nodeIf, "type", "veth", "peer", "name", podIf)
	Run(t, "ip", "-n", ns.Name, "link", "set", podIf, "netns", pod)
	Run(t, "ip", "-n", ns.Name, "addr", "add", nodeAddr.String()+"/30", "dev", nodeIf)
	Run(t, "ip", "-n", ns.Name, "link", "set", nodeIf, "up")
	Run(t, "ip", "-n", pod, "addr", "add", podAddr.String()+"/30", "dev", podIf)
	Run(t, "ip", "-n", pod, "link", "set", podIf, "up")
	Run(t, "ip", "-n", pod, "link", "set", "lo", "up")
	Run(t, "ip", "-n", pod, "route", "add", "default", "via", nodeAddr.String())
	Run(t, "ip", "netns", "exec", ns.Name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	ep := ListenIn(t, pod, netip.AddrPortFrom(podAddr, 8080))
	return &KubeService{
		Name: "default/web:http", ClusterIP: netip.MustParseAddr("10.96.0.10"), Port: 80,
		NodePort: 30080, Pod: pod, Endpoint: ep, EmptyNodePort: 30081,
	}
}

// KubeProxyShaped writes, with iptables-nft, the chains kube-proxy's
// iptables mode writes for a NodePort service with one endpoint (a pod
// in a namespace of its own) and one with none: KUBE-SERVICES,
// KUBE-NODEPORTS, KUBE-EXT-…, KUBE-SVC-…, KUBE-SEP-… with its DNAT,
// KUBE-MARK-MASQ and KUBE-POSTROUTING in nat; KUBE-FORWARD,
// KUBE-EXTERNAL-SERVICES (the rejecting rule of the service without
// endpoints), KUBE-FIREWALL and the others in filter, hooked in from the
// built-in chains with kube-proxy's comments.
func KubeProxyShaped(t testing.TB, ns *Namespace) *KubeService {
	t.Helper()
	needTools(t, "iptables", "iptables-nft-restore")
	s := newKubePod(t, ns)
	rules := fmt.Sprintf(`*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-EXT-ULMVA6XW - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-5OJB2KTY - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-ULMVA6XW - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-EXT-ULMVA6XW -m comment --comment "masquerade traffic for default/web:http external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-ULMVA6XW -j KUBE-SVC-ULMVA6XW
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:http" -m tcp --dport %[4]d -j KUBE-EXT-ULMVA6XW
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-5OJB2KTY -s %[1]s/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-5OJB2KTY -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination %[1]s:%[2]d
-A KUBE-SERVICES -d %[3]s/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-ULMVA6XW
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-ULMVA6XW ! -s 10.244.0.0/16 -d %[3]s/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-ULMVA6XW -m comment --comment "default/web:http -> %[1]s:%[2]d" -j KUBE-SEP-5OJB2KTY
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-CANARY - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally visible service portals" -j KUBE-EXTERNAL-SERVICES
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally visible service portals" -j KUBE-EXTERNAL-SERVICES
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "default/empty:http has no endpoints" -m addrtype --dst-type LOCAL -m tcp --dport %[5]d -j REJECT --reject-with icmp-port-unreachable
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
`, s.Endpoint.Addr(), s.Endpoint.Port(), s.ClusterIP, s.NodePort, s.EmptyNodePort)
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "iptables-nft-restore", "-n")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("iptables-nft-restore in %s: %v: %s", ns.Name, err, out)
	}
	return s
}

// KubeProxyNftShaped writes the table kube-proxy's nftables mode
// (Kubernetes 1.31) writes for the same two services: table ip kube-proxy
// with its verdict maps keyed by address . protocol . port (service-ips,
// service-nodeports, no-endpoint-nodeports), its base chains at
// kube-proxy's priorities, and the service-…, external-… and endpoint-…
// chains with the DNAT to the pod.
func KubeProxyNftShaped(t testing.TB, ns *Namespace) *KubeService {
	t.Helper()
	s := newKubePod(t, ns)
	svc := "service-ULMVA6XW-default/web/tcp/http"
	ext := "external-ULMVA6XW-default/web/tcp/http"
	ep := fmt.Sprintf("endpoint-5OJB2KTY-default/web/tcp/http__%s/%d", s.Endpoint.Addr(), s.Endpoint.Port())
	ruleset := fmt.Sprintf(`table ip kube-proxy {
	comment "rules for kube-proxy"
	set cluster-ips {
		type ipv4_addr
		comment "Active ClusterIPs"
		elements = { %[1]s }
	}
	map service-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"
		elements = { %[1]s . tcp . %[2]d : goto %[3]s }
	}
	map service-nodeports {
		type inet_proto . inet_service : verdict
		comment "NodePort traffic"
		elements = { tcp . %[4]d : goto %[5]s }
	}
	map no-endpoint-services {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "vmap to drop or reject packets to services with no endpoints"
	}
	map no-endpoint-nodeports {
		type inet_proto . inet_service : verdict
		comment "vmap to drop or reject packets to service nodeports with no endpoints"
		elements = { tcp . %[6]d comment "default/empty:http" : goto reject-chain }
	}
	map firewall-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "destinations that are subject to LoadBalancerSourceRanges"
	}
	chain filter-prerouting {
		type filter hook prerouting priority dstnat - 10; policy accept;
		ct state new jump firewall-check
	}
	chain filter-input {
		type filter hook input priority -110; policy accept;
		ct state new jump nodeport-endpoints-check
		ct state new jump service-endpoints-check
	}
	chain filter-forward {
		type filter hook forward priority -110; policy accept;
		ct state new jump service-endpoints-check
		ct state new jump cluster-ips-check
	}
	chain filter-output {
		type filter hook output priority -110; policy accept;
		ct state new jump service-endpoints-check
		ct state new jump firewall-check
	}
	chain filter-output-post-dnat {
		type filter hook output priority -90; policy accept;
		ct state new jump cluster-ips-check
	}
	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}
	chain nat-output {
		type nat hook output priority -100; policy accept;
		jump services
	}
	chain nat-postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		jump masquerading
	}
	chain firewall-check {
		ip daddr . meta l4proto . th dport vmap @firewall-ips
	}
	chain reject-chain {
		comment "helper for @no-endpoint-services / @no-endpoint-nodeports"
		reject
	}
	chain cluster-ips-check {
		ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
		ip daddr { 10.96.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"
	}
	chain mark-for-masquerade {
		mark set mark or 0x4000
	}
	chain masquerading {
		meta mark & 0x4000 == 0 return
		meta mark set mark xor 0x4000
		masquerade fully-random
	}
	chain services {
		ip daddr . meta l4proto . th dport vmap @service-ips
		fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports
	}
	chain nodeport-endpoints-check {
		fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports
	}
	chain service-endpoints-check {
		ip daddr . meta l4proto . th dport vmap @no-endpoint-services
	}
	chain %[3]s {
		ip daddr %[1]s tcp dport %[2]d ip saddr != 10.244.0.0/16 jump mark-for-masquerade
		numgen random mod 1 vmap { 0 : goto %[7]s }
	}
	chain %[5]s {
		jump mark-for-masquerade
		goto %[3]s
	}
	chain %[7]s {
		ip saddr %[8]s jump mark-for-masquerade
		meta l4proto tcp dnat to %[8]s:%[9]d
	}
}
`, s.ClusterIP, s.Port, svc, s.NodePort, ext, s.EmptyNodePort, ep, s.Endpoint.Addr(), s.Endpoint.Port())
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f in %s: %v: %s\n%s", ns.Name, err, out, ruleset)
	}
	return s
}

func writeFile(t testing.TB, name, body string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t testing.TB, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}
