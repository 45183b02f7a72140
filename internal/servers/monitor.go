package servers

import (
	"fmt"
	"path/filepath"
	"testing"
)

// This file starts monitoring agents: the Zabbix agent, Munin's node,
// Prometheus' node exporter, NUT's upsd and gpsd.

// ZabbixAgent starts zabbix_agentd (package zabbix-agent) in the
// foreground (-f), accepting requests from 127.0.0.1. Asked for
// agent.version it answers the upstream version. As root it switches to
// the user zabbix.
func ZabbixAgent(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "zabbix_agentd", pkg: "zabbix-agent", bin: "zabbix_agentd", proto: "tcp", maxPort: 32767,
		setup: func(dir string) {
			mkdir(t, filepath.Join(dir, "run"), asRoot("zabbix"), 0o755)
		},
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "zabbix_agentd.conf")
			writeFile(t, conf, fmt.Sprintf("ListenIP=127.0.0.1\nListenPort=%d\nServer=127.0.0.1\nServerActive=\nPidFile=%s/run/zabbix.pid\nLogType=console\nStartAgents=1\n", port, dir), 0o644)
			return []string{"-f", "-c", conf}
		},
	})
}

// Munin starts munin-node (package munin-node) in the foreground. It
// greets with "# munin node at " and its host name.
func Munin(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "munin-node", pkg: "munin-node", bin: "munin-node", proto: "tcp",
		root: "munin-node runs its plugins as other users",
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "munin-node.conf")
			writeFile(t, conf, fmt.Sprintf(`log_level 4
log_file Sys::Syslog
pid_file %[1]s/munin-node.pid
background 0
setsid 0
user root
group root
host_name portctl.test
allow ^127\.0\.0\.1$
host 127.0.0.1
port %[2]d
`, dir, port), 0o644)
			return []string{"--config", conf}
		},
		ready: banner("# munin node at "),
	})
}

// NodeExporter starts Prometheus' node exporter (package
// prometheus-node-exporter) with one collector. Its page at / is titled
// "Node Exporter".
func NodeExporter(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "node_exporter", pkg: "prometheus-node-exporter", bin: "prometheus-node-exporter", proto: "tcp",
		args: func(dir string, port uint16) []string {
			return []string{fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--collector.disable-defaults", "--collector.loadavg"}
		},
	})
}

// UPS starts Network UPS Tools' upsd (package nut-server; /lib/nut/upsd,
// not the wrapper in /usr/sbin that reads /etc/nut) in the foreground
// with no UPS. Its VER command answers "Network UPS Tools
// upsd " and the upstream version.
func UPS(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "upsd", pkg: "nut-server", bin: "/lib/nut/upsd", proto: "tcp",
		setup: func(dir string) {
			writeFile(t, filepath.Join(dir, "ups.conf"), "", 0o644)
			writeFile(t, filepath.Join(dir, "upsd.users"), "", 0o600)
			writeFile(t, filepath.Join(dir, "nut.conf"), "MODE=standalone\n", 0o644)
		},
		env: func(dir string) []string { return []string{"NUT_CONFPATH=" + dir, "NUT_STATEPATH=" + dir} },
		args: func(dir string, port uint16) []string {
			writeFile(t, filepath.Join(dir, "upsd.conf"), fmt.Sprintf("LISTEN 127.0.0.1 %d\nALLOW_NO_DEVICE true\n", port), 0o644)
			args := []string{"-F"}
			args = append(args, asRoot([]string{"-u", "nobody"})...)
			return args
		},
		ready: ask("VER\n", "Network UPS Tools"),
	})
}

// GPSD starts gpsd (package gpsd) in the foreground (-N) with no
// device. It greets every client with a VERSION object.
func GPSD(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "gpsd", pkg: "gpsd", bin: "gpsd", proto: "tcp",
		args: func(dir string, port uint16) []string {
			return []string{"-N", "-n", "-S", fmt.Sprint(port), "-F", filepath.Join(dir, "gpsd.sock"), "-P", filepath.Join(dir, "gpsd.pid")}
		},
		ready: banner(`{"class":"VERSION"`),
	})
}
