package servers

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// This file starts the rest: InfluxDB, etcd, Redis Sentinel, Tomcat,
// Icecast, Gunicorn, SpamAssassin's spamd, dropbear, TigerVNC, xrdp,
// iperf3, MPD, coturn (STUN) and Kamailio (SIP).

// InfluxDB starts influxd (package influxdb) with its HTTP API on the
// test's port, its RPC port on another free one and its data in the
// test's directory. Every answer carries X-Influxdb-Version.
func InfluxDB(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "influxd", pkg: "influxdb", bin: "influxd", proto: "tcp",
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "influxdb.conf")
			writeFile(t, conf, fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%[3]d"
[meta]
  dir = "%[1]s/meta"
[data]
  dir = "%[1]s/data"
  wal-dir = "%[1]s/wal"
[http]
  bind-address = "127.0.0.1:%[2]d"
  log-enabled = false
[monitor]
  store-enabled = false
`, dir, port, freePort(t, "tcp")), 0o644)
			return []string{"run", "-config", conf}
		},
	})
}

// Etcd starts etcd (package etcd-server) as a one-member cluster with
// its client URL on the test's port and its peer URL on another free
// one. GET /version answers {"etcdserver":…}.
func Etcd(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "etcd", pkg: "etcd-server", bin: "etcd", proto: "tcp",
		args: func(dir string, port uint16) []string {
			client := fmt.Sprintf("http://127.0.0.1:%d", port)
			peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t, "tcp"))
			return []string{"--name", "portctl", "--data-dir", filepath.Join(dir, "data"),
				"--listen-client-urls", client, "--advertise-client-urls", client,
				"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
				"--initial-cluster", "portctl=" + peer, "--log-outputs", "stderr"}
		},
	})
}

// RedisSentinel starts redis-sentinel (package redis-sentinel) watching
// a primary that is not there. INFO server reports redis_mode:sentinel.
func RedisSentinel(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "redis-sentinel", pkg: "redis-sentinel", bin: "redis-sentinel", proto: "tcp",
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "sentinel.conf")
			writeFile(t, conf, fmt.Sprintf("port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\nsentinel monitor portctl 127.0.0.1 9 1\n", port, dir), 0o644)
			return []string{conf}
		},
		ready: ask("PING\r\n", "+PONG"),
	})
}

// Tomcat starts Apache Tomcat 10 (package tomcat10) in the foreground
// (catalina.sh run) with a CATALINA_BASE of its own, one HTTP connector
// and no applications: every page is its 404, which names "Apache
// Tomcat/" and the upstream version.
func Tomcat(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "tomcat", pkg: "tomcat10", bin: "/usr/share/tomcat10/bin/catalina.sh", proto: "tcp",
		setup: func(dir string) {
			for _, d := range []string{"conf", "logs", "temp", "work", "webapps"} {
				mkdir(t, filepath.Join(dir, d), "", 0o755)
			}
			for _, f := range []string{"web.xml", "logging.properties"} {
				b, err := os.ReadFile(filepath.Join("/etc/tomcat10", f))
				if err != nil {
					t.Skipf("needs tomcat10's %s: %v", f, err)
				}
				writeFile(t, filepath.Join(dir, "conf", f), string(b), 0o644)
			}
		},
		env: func(dir string) []string {
			return []string{"CATALINA_HOME=/usr/share/tomcat10", "CATALINA_BASE=" + dir, "CATALINA_TMPDIR=" + filepath.Join(dir, "temp"),
				"CATALINA_PID=" + filepath.Join(dir, "tomcat.pid"), "JAVA_OPTS=-Xmx128m -Xss512k -XX:+UseSerialGC -XX:TieredStopAtLevel=1"}
		},
		args: func(dir string, port uint16) []string {
			writeFile(t, filepath.Join(dir, "conf", "server.xml"), fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector port="%d" address="127.0.0.1" protocol="HTTP/1.1" connectionTimeout="20000"/>
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false"/>
    </Engine>
  </Service>
</Server>
`, port), 0o644)
			return []string{"run"}
		},
		ready: func(addr netip.AddrPort) error {
			_, err := request(addr, "GET / HTTP/1.0\r\n\r\n")
			return err
		},
	})
}

// Icecast starts Icecast (package icecast2) in the foreground. Its
// Server header is "Icecast " and the upstream version. As root it
// switches to nobody.
func Icecast(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "icecast2", pkg: "icecast2", bin: "icecast2", proto: "tcp",
		setup: func(dir string) { mkdir(t, filepath.Join(dir, "log"), "nobody", 0o755) },
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "icecast.xml")
			owner := asRoot("<security><chroot>0</chroot><changeowner><user>nobody</user><group>nogroup</group></changeowner></security>")
			writeFile(t, conf, fmt.Sprintf(`<icecast>
<location>portctl</location><admin>portctl@portctl.test</admin><hostname>portctl.test</hostname>
<limits><clients>10</clients><sources>1</sources></limits>
<authentication><source-password>portctl-source</source-password><admin-user>admin</admin-user><admin-password>portctl-admin</admin-password></authentication>
<listen-socket><port>%d</port><bind-address>127.0.0.1</bind-address></listen-socket>
<paths><basedir>/usr/share/icecast2</basedir><logdir>%s/log</logdir><webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot></paths>
<logging><errorlog>error.log</errorlog><accesslog>access.log</accesslog><loglevel>3</loglevel></logging>
%s
</icecast>
`, port, dir, owner), 0o644)
			return []string{"-c", conf}
		},
		logs: []string{"log/error.log"},
	})
}

// Gunicorn starts the Gunicorn WSGI server (package gunicorn) serving a
// one-line application. Its Server header is "gunicorn".
func Gunicorn(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "gunicorn", pkg: "gunicorn", bin: "gunicorn", proto: "tcp",
		setup: func(dir string) {
			writeFile(t, filepath.Join(dir, "portctlapp.py"), `def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html")])
    return [b"<title>portctl test app</title>\n"]
`, 0o644)
		},
		args: func(dir string, port uint16) []string {
			args := []string{"--bind", fmt.Sprintf("127.0.0.1:%d", port), "--chdir", dir, "--workers", "1"}
			args = append(args, asRoot([]string{"--user", "nobody", "--group", "nogroup"})...)
			return append(args, "portctlapp:app")
		},
	})
}

// Spamd starts SpamAssassin's spamd (package spamd) in the foreground
// with one child. It answers "PING SPAMC/1.5" with "SPAMD/1.5 0 PONG".
// It needs root: it switches to nobody.
func Spamd(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "spamd", pkg: "spamd", bin: "spamd", proto: "tcp",
		root: "spamd switches to the user nobody",
		args: func(dir string, port uint16) []string {
			return []string{"--listen=127.0.0.1:" + fmt.Sprint(port), "--allowed-ips=127.0.0.1", "--max-children=1",
				"--min-children=1", "--pidfile=" + filepath.Join(dir, "spamd.pid"), "--username=nobody",
				"--nouser-config", "--syslog=stderr"}
		},
		ready: ask("PING SPAMC/1.5\r\n\r\n", "SPAMD/"),
	})
}

// Dropbear starts the dropbear SSH server (package dropbear-bin) in the
// foreground (-F) with an Ed25519 host key of its own. It answers with
// "SSH-2.0-dropbear_" and the upstream version. It needs root.
func Dropbear(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "dropbear", pkg: "dropbear-bin", bin: "dropbear", proto: "tcp",
		root: "dropbear logs users in",
		setup: func(dir string) {
			run(t, dir, "", "dropbearkey", "-t", "ed25519", "-f", filepath.Join(dir, "host_key"))
		},
		args: func(dir string, port uint16) []string {
			return []string{"-F", "-E", "-s", "-r", filepath.Join(dir, "host_key"), "-P", filepath.Join(dir, "dropbear.pid"),
				"-p", fmt.Sprintf("127.0.0.1:%d", port)}
		},
		ready: banner("SSH-2.0-"),
	})
}

// VNC starts TigerVNC's Xvnc (package tigervnc-standalone-server), an X
// server with a VNC front end and no authentication, on a display picked
// from the port. It greets with "RFB 003.008".
func VNC(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "Xvnc", pkg: "tigervnc-standalone-server", bin: "Xvnc", proto: "tcp",
		args: func(dir string, port uint16) []string {
			display := fmt.Sprintf(":%d", 100+int(port)%400)
			return []string{display, "-rfbport", fmt.Sprint(port), "-interface", "127.0.0.1", "-SecurityTypes", "None",
				"-nolisten", "tcp", "-geometry", "640x480", "-depth", "16"}
		},
		ready: banner("RFB "),
	})
}

// IPerf3 starts an iperf3 server (package iperf3) on 127.0.0.1.
func IPerf3(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "iperf3", pkg: "iperf3", bin: "iperf3", proto: "tcp",
		args: func(dir string, port uint16) []string {
			return []string{"-s", "-B", "127.0.0.1", "-p", fmt.Sprint(port)}
		},
	})
}

// MPD starts the Music Player Daemon (package mpd) in the foreground with
// no outputs. It greets with "OK MPD " and its protocol version.
func MPD(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "mpd", pkg: "mpd", bin: "mpd", proto: "tcp",
		setup: func(dir string) { mkdir(t, filepath.Join(dir, "music"), "", 0o755) },
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "mpd.conf")
			user := asRoot("user \"nobody\"\n")
			writeFile(t, conf, fmt.Sprintf(`%sbind_to_address "127.0.0.1"
port "%d"
music_directory "%[3]s/music"
log_file "/dev/stderr"
zeroconf_enabled "no"
audio_output {
  type "null"
  name "none"
}
`, user, port, dir), 0o644)
			return []string{"--no-daemon", "--stderr", conf}
		},
		ready: banner("OK MPD "),
	})
}

// STUN starts coturn's turnserver (package coturn) as a plain STUN
// server on UDP (and TCP) with no TLS, no CLI and no relay users. Its
// Binding responses carry SOFTWARE "Coturn-" and the upstream version.
func STUN(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "turnserver", pkg: "coturn", bin: "turnserver", proto: "udp",
		args: func(dir string, port uint16) []string {
			return []string{"-n", "--listening-ip=127.0.0.1", fmt.Sprintf("--listening-port=%d", port), "--stun-only",
				"--no-tls", "--no-dtls", "--no-cli", "--log-file=stdout", "--simple-log", "--pidfile=" + filepath.Join(dir, "turnserver.pid"),
				"--userdb=" + filepath.Join(dir, "turndb")}
		},
		ready: udpAnswer(stunBinding, 20),
	})
}

// stunBinding is a STUN Binding request (RFC 8489 §5).
var stunBinding = []byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 'p', 'o', 'r', 't', 'c', 't', 'l', '-', 'r', 'e', 'a', 'd'}

// SIP starts Kamailio (package kamailio) in the foreground on UDP with a
// routing script that answers every request "200 OK" statelessly. Its
// replies carry "Server: kamailio (" and the upstream version.
func SIP(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "kamailio", pkg: "kamailio", bin: "kamailio", proto: "udp",
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "kamailio.cfg")
			writeFile(t, conf, fmt.Sprintf(`#!KAMAILIO
listen=udp:127.0.0.1:%d
children=1
disable_tcp=yes
log_stderror=yes
loadmodule "sl.so"
request_route {
  sl_send_reply("200", "OK");
}
`, port), 0o644)
			return []string{"-DD", "-E", "-f", conf, "-P", filepath.Join(dir, "kamailio.pid"), "-Y", dir, "-m", "32", "-M", "8"}
		},
		ready: udpAnswer([]byte("OPTIONS sip:ready@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-ready;rport\r\nFrom: <sip:r@r>;tag=1\r\nTo: <sip:r@r>\r\nCall-ID: ready\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"), 12),
	})
}

// Mumble starts the Mumble server murmurd (package mumble-server) in the
// foreground. Server.Proto is "udp": its UDP port answers a ping with
// its version; TCP on the same port speaks TLS.
func Mumble(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "murmurd", pkg: "mumble-server", bin: "murmurd", proto: "udp",
		setup: func(dir string) {
			mkdir(t, filepath.Join(dir, "db"), asRoot("mumble-server"), 0o755)
		},
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "murmur.ini")
			writeFile(t, conf, fmt.Sprintf("database=%s/db/murmur.sqlite\nhost=127.0.0.1\nport=%d\nlogfile=\npidfile=\nbandwidth=72000\nusers=10\n", dir, port), 0o644)
			args := []string{"-fg", "-ini", conf}
			return args
		},
		ready: udpAnswer([]byte{0, 0, 0, 0, 'p', 'o', 'r', 't', 'c', 't', 'l', 0}, 24),
	})
}

// RDP starts xrdp (package xrdp) in the foreground (-n), forking a
// process per connection, with TLS (the snakeoil certificate Debian
// makes) or standard RDP security and no session behind it.
func RDP(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "xrdp", pkg: "xrdp", bin: "xrdp", proto: "tcp",
		root: "xrdp reads the snakeoil key, which only root can",
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "xrdp.ini")
			writeFile(t, conf, fmt.Sprintf(`[Globals]
ini_version=1
fork=true
port=tcp://127.0.0.1:%d
use_vsock=false
security_layer=negotiate
crypt_level=high
certificate=/etc/xrdp/cert.pem
key_file=/etc/xrdp/key.pem
ssl_protocols=TLSv1.2, TLSv1.3
[Logging]
LogFile=%s/xrdp.log
LogLevel=INFO
EnableSyslog=false
EnableConsole=true
ConsoleLevel=INFO
[Xorg]
name=Xorg
lib=libxup.so
username=ask
password=ask
ip=127.0.0.1
port=-1
code=20
`, port, dir), 0o644)
			return []string{"-n", "-c", conf}
		},
	})
}
