package servers

import (
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"testing"
)

// This file starts directory, messaging and job-queue servers: OpenLDAP,
// Mosquitto (MQTT), NATS, beanstalkd, Gearman, ngIRCd, InspIRCd and
// Prosody (XMPP).

// LDAP starts OpenLDAP's slapd (package slapd) in the foreground (-d 0)
// with a slapd.conf of its own: the core schema, one empty mdb database
// for dc=portctl,dc=test, anonymous reads allowed. Its root DSE has the
// object class OpenLDAProotDSE; it does not tell its version.
func LDAP(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "slapd", pkg: "slapd", bin: "slapd", proto: "tcp",
		setup: func(dir string) {
			mkdir(t, filepath.Join(dir, "db"), "", 0o700)
			writeFile(t, filepath.Join(dir, "slapd.conf"), fmt.Sprintf(`include /etc/ldap/schema/core.schema
pidfile %[1]s/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 16777216
suffix "dc=portctl,dc=test"
rootdn "cn=admin,dc=portctl,dc=test"
directory %[1]s/db
`, dir), 0o644)
		},
		args: func(dir string, port uint16) []string {
			return []string{"-d", "0", "-f", filepath.Join(dir, "slapd.conf"), "-h", fmt.Sprintf("ldap://127.0.0.1:%d/", port)}
		},
	})
}

// MQTT starts the Mosquitto broker (package mosquitto) in the foreground
// with one listener and anonymous access. It publishes its version in the
// retained topic $SYS/broker/version ("mosquitto version 2.0.11"). As
// root it switches to the user mosquitto.
func MQTT(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "mosquitto", pkg: "mosquitto", bin: "mosquitto", proto: "tcp",
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "mosquitto.conf")
			writeFile(t, conf, fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n", port), 0o644)
			return []string{"-c", conf}
		},
	})
}

// NATS starts nats-server (package nats-server) without authentication.
// It greets every client with INFO and a JSON object whose "version" is
// the upstream version.
func NATS(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "nats-server", pkg: "nats-server", bin: "nats-server", proto: "tcp",
		args: func(dir string, port uint16) []string {
			return []string{"-a", "127.0.0.1", "-p", fmt.Sprint(port)}
		},
		ready: banner("INFO {"),
	})
}

// Beanstalkd starts the beanstalkd work queue (package beanstalkd); its
// "stats" command reports "version: " and the upstream version.
func Beanstalkd(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "beanstalkd", pkg: "beanstalkd", bin: "beanstalkd", proto: "tcp",
		args: func(dir string, port uint16) []string {
			return []string{"-l", "127.0.0.1", "-p", fmt.Sprint(port)}
		},
		ready: ask("stats\r\n", "OK "),
	})
}

// Gearman starts the Gearman job server gearmand (package
// gearman-job-server) in the foreground, logging nowhere. Its admin
// command "version" answers "OK " and the upstream version.
func Gearman(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "gearmand", pkg: "gearman-job-server", bin: "gearmand", proto: "tcp",
		args: func(dir string, port uint16) []string {
			return []string{"--listen=127.0.0.1", "--port=" + fmt.Sprint(port), "--log-file=none", "--threads=1",
				"--pid-file=" + filepath.Join(dir, "gearmand.pid")}
		},
		ready: ask("version\r\n", "OK "),
	})
}

// IRC starts ngIRCd (package ngircd) in the foreground (-n) as the server
// irc.portctl.test. A client that registers (NICK, USER) is welcomed with
// 002 "… running version ngircd-26.1". As root it switches to nobody.
func IRC(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "ngircd", pkg: "ngircd", bin: "ngircd", proto: "tcp",
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "ngircd.conf")
			user := asRoot("ServerUID = nobody\nServerGID = nogroup\n")
			writeFile(t, conf, fmt.Sprintf(`[Global]
Name = irc.portctl.test
Info = portctl test IRC server
Listen = 127.0.0.1
Ports = %d
PidFile = %s/ngircd.pid
MotdPhrase = portctl
%s
[Options]
DNS = no
Ident = no
PAM = no
`, port, dir, user), 0o644)
			return []string{"-n", "-f", conf}
		},
	})
}

// InspIRCd starts InspIRCd (package inspircd) in the foreground as the
// user irc: it refuses to run as root. Its 004 reply to a registering
// client names "InspIRCd-3".
func InspIRCd(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "inspircd", pkg: "inspircd", bin: "inspircd", proto: "tcp",
		root: "inspircd refuses root and the test must switch to the user irc",
		user: "irc",
		setup: func(dir string) {
			mkdir(t, filepath.Join(dir, "data"), "irc", 0o755)
			mkdir(t, filepath.Join(dir, "logs"), "irc", 0o755)
		},
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "inspircd.conf")
			writeFile(t, conf, fmt.Sprintf(`<server name="irc.portctl.test" description="portctl test" network="portctl">
<admin name="portctl" nick="portctl" email="portctl@portctl.test">
<bind address="127.0.0.1" port="%d" type="clients">
<connect allow="*" timeout="60" pingfreq="120" localmax="50" globalmax="50" useident="no">
<path configdir="%[2]s" datadir="%[2]s/data" logdir="%[2]s/logs" moduledir="/usr/lib/inspircd/modules">
<pid file="%[2]s/inspircd.pid">
<dns timeout="1">
<options allowcoreunload="no">
`, port, dir), 0o644)
			return []string{"--nofork", "--nopid", "--config=" + conf}
		},
		logs: []string{"logs/*"},
	})
}

// XMPP starts Prosody (package prosody) in the foreground for the host
// portctl.test, with client connections on the test's port and every
// other listener off. It needs root, to run as the user prosody: it
// refuses to run as root.
func XMPP(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "prosody", pkg: "prosody", bin: "prosody", proto: "tcp",
		root: "prosody refuses root and the test must switch to the user prosody",
		user: "prosody",
		setup: func(dir string) {
			mkdir(t, filepath.Join(dir, "data"), "prosody", 0o750)
		},
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "prosody.cfg.lua")
			writeFile(t, conf, fmt.Sprintf(`daemonize = false
pidfile = %[1]q
data_path = %[2]q
log = { { levels = { min = "info" }, to = "console" } }
interfaces = { "127.0.0.1" }
c2s_ports = { %[3]d }
s2s_ports = { }
c2s_direct_tls_ports = { }
s2s_direct_tls_ports = { }
http_ports = { }
https_ports = { }
component_ports = { }
modules_enabled = { "roster", "saslauth", "disco", "version", "ping", "time", "uptime" }
modules_disabled = { "s2s", "http" }
c2s_require_encryption = false
authentication = "internal_hashed"
VirtualHost "portctl.test"
`, filepath.Join(dir, "data", "prosody.pid"), filepath.Join(dir, "data"), port), 0o644)
			return []string{"--config", conf}
		},
	})
}

// EPMD starts Erlang's port mapper daemon epmd (package erlang-base, which
// rabbitmq-server brings) in the foreground on 127.0.0.1. Asked for its
// names, it answers its own port and the Erlang nodes it knows.
func EPMD(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "epmd", pkg: "erlang-base", bin: "epmd", proto: "tcp",
		args: func(dir string, port uint16) []string {
			return []string{"-port", fmt.Sprint(port), "-address", "127.0.0.1"}
		},
	})
}

// RabbitMQ starts the RabbitMQ broker (package rabbitmq-server) in the
// foreground as an Erlang node of its own, with its data, logs and
// Erlang cookie in the test's directory, registered with an epmd that
// EPMD starts for it (an epmd the broker started itself would outlive
// the test). Its AMQP 0-9-1 Connection.Start names "RabbitMQ" and the
// upstream version. Erlang's distribution listens on 127.0.0.1 too.
func RabbitMQ(t testing.TB) *Server {
	t.Helper()
	epmd := EPMD(t)
	dist := freePort(t, "tcp")
	return start(t, spec{
		name: "rabbitmq", pkg: "rabbitmq-server", bin: "/usr/lib/rabbitmq/bin/rabbitmq-server", proto: "tcp",
		setup: func(dir string) {
			writeFile(t, filepath.Join(dir, "rabbitmq.conf"), "", 0o644)
			writeFile(t, filepath.Join(dir, "enabled_plugins"), "[].\n", 0o644)
		},
		env: func(dir string) []string {
			return []string{"HOME=" + dir, fmt.Sprintf("ERL_EPMD_PORT=%d", epmd.Addr.Port()), "ERL_EPMD_ADDRESS=127.0.0.1",
				"RABBITMQ_NODENAME=portctl@localhost", "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
				fmt.Sprintf("RABBITMQ_DIST_PORT=%d", dist), "RABBITMQ_MNESIA_BASE=" + filepath.Join(dir, "mnesia"),
				"RABBITMQ_LOG_BASE=" + filepath.Join(dir, "log"), "RABBITMQ_LOGS=-",
				"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(dir, "enabled_plugins"),
				"RABBITMQ_CONFIG_FILE=" + filepath.Join(dir, "rabbitmq"), "RABBITMQ_PID_FILE=" + filepath.Join(dir, "rabbitmq.pid"),
				"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}",
				"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(dir, "rabbitmq-env.conf")}
		},
		args: func(dir string, port uint16) []string {
			// The port goes in the environment file the script reads.
			writeFile(t, filepath.Join(dir, "rabbitmq-env.conf"), fmt.Sprintf("NODE_PORT=%d\n", port), 0o644)
			return nil
		},
		ready: func(addr netip.AddrPort) error {
			c, err := dial("tcp", addr)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Write([]byte("AMQP\x00\x00\x09\x01")); err != nil {
				return err
			}
			b := make([]byte, 1)
			if _, err := io.ReadFull(c, b); err != nil || b[0] != 1 {
				return fmt.Errorf("amqp: no Connection.Start frame (%v)", err)
			}
			return nil
		},
	})
}
