package servers

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
)

// This file starts DNS servers besides dnsmasq: BIND, Unbound, NSD, Knot
// and PowerDNS (authoritative and recursor). Each answers version.bind
// with its name and version; Server.Proto is "udp", and each answers
// over TCP on the same port too.

// dnsReady waits for an answer to version.bind over UDP.
func dnsReady(addr netip.AddrPort) error {
	_, err := versionBind("udp", addr)
	return err
}

// BIND starts ISC BIND's named (package bind9) in the foreground (-g)
// with no zones, no recursion and no control channel. It needs root:
// named switches to the user bind.
func BIND(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "named", pkg: "bind9", bin: "named", proto: "udp",
		root:  "named switches to the user bind",
		setup: func(dir string) { mkdir(t, filepath.Join(dir, "cache"), "bind", 0o755) },
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "named.conf")
			writeFile(t, conf, fmt.Sprintf(`options {
  directory "%[1]s/cache";
  pid-file none;
  listen-on port %[2]d { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
};
controls { };
`, dir, port), 0o644)
			return []string{"-g", "-u", "bind", "-c", conf}
		},
		ready: dnsReady,
	})
}

// Unbound starts the Unbound resolver (package unbound) in the
// foreground (-d) answering 127.0.0.1 only.
func Unbound(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "unbound", pkg: "unbound", bin: "unbound", proto: "udp",
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "unbound.conf")
			writeFile(t, conf, fmt.Sprintf(`server:
  interface: 127.0.0.1
  port: %d
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: %q
  pidfile: ""
  use-syslog: no
  logfile: ""
  access-control: 127.0.0.0/8 allow
remote-control:
  control-enable: no
`, port, dir), 0o644)
			return []string{"-d", "-c", conf}
		},
		ready: dnsReady,
	})
}

// NSD starts the NSD authoritative server (package nsd) in the
// foreground (-d) with no zones.
func NSD(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "nsd", pkg: "nsd", bin: "nsd", proto: "udp",
		setup: func(dir string) {
			mkdir(t, filepath.Join(dir, "xfr"), asRoot("nsd"), 0o755)
		},
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "nsd.conf")
			user := asRoot("  username: nsd\n")
			writeFile(t, conf, fmt.Sprintf(`server:
  ip-address: 127.0.0.1@%d
  do-ip6: no
  server-count: 1
  pidfile: ""
  database: ""
  zonelistfile: "%[2]s/zone.list"
  xfrdfile: "%[2]s/xfr/xfrd.state"
  xfrdir: "%[2]s/xfr"
  zonesdir: %[2]q
  logfile: ""
  chroot: ""
%[3]sremote-control:
  control-enable: no
`, port, dir, user), 0o644)
			return []string{"-d", "-c", conf}
		},
		ready: dnsReady,
	})
}

// Knot starts the Knot DNS server knotd (package knot) with no zones.
func Knot(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "knotd", pkg: "knot", bin: "knotd", proto: "udp",
		setup: func(dir string) { mkdir(t, filepath.Join(dir, "db"), "", 0o777) },
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "knot.conf")
			writeFile(t, conf, fmt.Sprintf(`server:
  listen: 127.0.0.1@%d
  rundir: %[2]q
database:
  storage: "%[2]s/db"
log:
  - target: stderr
    any: info
`, port, dir), 0o644)
			return []string{"-c", conf}
		},
		ready: dnsReady,
	})
}

// PowerDNS starts the PowerDNS authoritative server pdns_server (package
// pdns-server) in the foreground with an empty bind backend (package
// pdns-backend-bind).
func PowerDNS(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "pdns_server", pkg: "pdns-server", bin: "pdns_server", proto: "udp",
		setup: func(dir string) { writeFile(t, filepath.Join(dir, "named.conf"), "", 0o644) },
		args: func(dir string, port uint16) []string {
			return []string{"--daemon=no", "--guardian=no", "--config-dir=" + dir, "--socket-dir=" + dir,
				"--local-address=127.0.0.1", fmt.Sprintf("--local-port=%d", port), "--launch=bind",
				"--bind-config=" + filepath.Join(dir, "named.conf"), "--disable-syslog", "--write-pid=no",
				"--setuid=nobody", "--setgid=nogroup"}
		},
		ready: dnsReady,
	})
}

// PowerDNSRecursor starts pdns_recursor (package pdns-recursor) in the
// foreground.
func PowerDNSRecursor(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "pdns_recursor", pkg: "pdns-recursor", bin: "pdns_recursor", proto: "udp",
		args: func(dir string, port uint16) []string {
			return []string{"--daemon=no", "--config-dir=" + dir, "--socket-dir=" + dir,
				"--local-address=127.0.0.1", fmt.Sprintf("--local-port=%d", port), "--disable-syslog",
				"--setuid=nobody", "--setgid=nogroup", "--threads=1"}
		},
		ready: dnsReady,
	})
}
