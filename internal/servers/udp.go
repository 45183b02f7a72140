package servers

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
)

// DNS starts dnsmasq (package dnsmasq-base) in the foreground (-k) as an
// authoritative-only server: no upstream servers, no /etc/hosts, and one
// name, portctl.test, resolving to 127.0.0.1. It answers version.bind
// (CHAOS TXT) with "dnsmasq-" and the upstream version. Server.Proto is
// "udp", but it answers over TCP on the same port too.
func DNS(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "dnsmasq", pkg: "dnsmasq-base", bin: "dnsmasq", proto: "udp",
		args: func(dir string, port uint16) []string {
			args := []string{"--keep-in-foreground", "--conf-file=/dev/null", "--log-facility=-",
				"--port=" + fmt.Sprint(port), "--listen-address=127.0.0.1", "--bind-interfaces",
				"--no-resolv", "--no-hosts", "--pid-file=", "--address=/portctl.test/127.0.0.1"}
			// dnsmasq-base has no user of its own; the default,
			// "dnsmasq", comes with the dnsmasq package.
			args = append(args, asRoot([]string{"--user=nobody", "--group=nogroup"})...)
			return args
		},
		ready: dnsReady,
	})
}

// NTP starts chronyd (package chrony) in the foreground (-d) without
// control of the system clock (-x), serving its local clock at stratum 10
// to 127.0.0.1, with no command port. It needs root: chronyd drops
// privileges to _chrony.
func NTP(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "chronyd", pkg: "chrony", bin: "chronyd", proto: "udp",
		root: "chronyd starts as root and drops privileges to _chrony",
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "chrony.conf")
			writeFile(t, conf, fmt.Sprintf(`port %d
bindaddress 127.0.0.1
allow 127.0.0.1
local stratum 10
cmdport 0
pidfile %s/chronyd.pid
`, port, dir), 0o644)
			return []string{"-d", "-x", "-f", conf}
		},
		ready: func(addr netip.AddrPort) error {
			mode, _, err := ntpQuery(addr)
			if err == nil && mode != 4 {
				err = fmt.Errorf("ntp: reply mode %d; want 4 (server)", mode)
			}
			return err
		},
	})
}

// SNMP starts net-snmp's snmpd in the foreground (-f), with no system
// configuration (-C) but a read-only community "public" for 127.0.0.1.
// SNMPv1 and v2c GETs of sysDescr.0 answer the kernel's uname line
// ("Linux …"). Its persistent state goes to the test's directory, not
// /var/lib/snmp.
func SNMP(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "snmpd", pkg: "snmpd", bin: "snmpd", proto: "udp",
		setup: func(dir string) {
			mkdir(t, filepath.Join(dir, "persist"), "", 0o755)
			writeFile(t, filepath.Join(dir, "snmpd.conf"), "rocommunity public 127.0.0.1\n", 0o644)
		},
		env: func(dir string) []string {
			return []string{"SNMP_PERSISTENT_DIR=" + filepath.Join(dir, "persist")}
		},
		args: func(dir string, port uint16) []string {
			return []string{"-f", "-Lo", "-C", "-c", filepath.Join(dir, "snmpd.conf"),
				"-p", filepath.Join(dir, "snmpd.pid"), fmt.Sprintf("udp:127.0.0.1:%d", port)}
		},
		ready: func(addr netip.AddrPort) error {
			_, err := snmpGet(addr)
			return err
		},
	})
}
