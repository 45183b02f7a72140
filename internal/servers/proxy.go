package servers

import (
	"fmt"
	"path/filepath"
	"testing"
)

// This file starts web servers, proxies and caches: Apache, lighttpd,
// Squid, Tinyproxy, Privoxy, HAProxy, Varnish and Dante (SOCKS).

// Apache starts Apache httpd (package apache2) in the foreground
// (-DFOREGROUND) with a configuration of its own: the prefork MPM, one
// listener, the default page. Its Server header is "Apache/2.4.x
// (Debian)". It needs root: its children run as www-data.
func Apache(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "apache2", pkg: "apache2", bin: "apache2", proto: "tcp",
		root: "apache2 switches its children to www-data",
		setup: func(dir string) {
			writeFile(t, filepath.Join(dir, "index.html"), "<title>"+PageTitle+"</title>\n", 0o644)
		},
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "apache2.conf")
			writeFile(t, conf, fmt.Sprintf(`ServerRoot /etc/apache2
ServerName portctl.test
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
TypesConfig /etc/mime.types
User www-data
Group www-data
PidFile %[1]s/apache2.pid
Mutex file:%[1]s
ErrorLog %[1]s/error.log
Listen 127.0.0.1:%[2]d
StartServers 1
MinSpareServers 1
MaxSpareServers 2
DocumentRoot %[1]s
<Directory %[1]s>
  Require all granted
</Directory>
`, dir, port), 0o644)
			return []string{"-DFOREGROUND", "-f", conf}
		},
		env: func(dir string) []string {
			return []string{"APACHE_RUN_DIR=" + dir, "APACHE_LOG_DIR=" + dir, "APACHE_LOCK_DIR=" + dir}
		},
		logs: []string{"error.log"},
	})
}

// Lighttpd starts lighttpd (package lighttpd) in the foreground (-D).
// Its Server header is "lighttpd/" and the upstream version.
func Lighttpd(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "lighttpd", pkg: "lighttpd", bin: "lighttpd", proto: "tcp",
		setup: func(dir string) {
			writeFile(t, filepath.Join(dir, "index.html"), "<title>"+PageTitle+"</title>\n", 0o644)
		},
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "lighttpd.conf")
			writeFile(t, conf, fmt.Sprintf(`server.document-root = %q
server.bind = "127.0.0.1"
server.port = %d
server.pid-file = "%s/lighttpd.pid"
index-file.names = ( "index.html" )
`, dir, port, dir), 0o644)
			return []string{"-D", "-f", conf}
		},
	})
}

// Squid starts the Squid proxy (package squid) in the foreground (-N)
// without a cache. Its error pages carry "Server: squid/" and the
// upstream version. It needs root: it switches to the user proxy.
func Squid(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "squid", pkg: "squid", bin: "squid", proto: "tcp",
		root:  "squid switches to the user proxy",
		setup: func(dir string) { mkdir(t, filepath.Join(dir, "log"), "proxy", 0o755) },
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "squid.conf")
			writeFile(t, conf, fmt.Sprintf(`http_port 127.0.0.1:%d
pid_filename %[2]s/squid.pid
cache_log %[2]s/log/cache.log
access_log none
cache deny all
cache_mem 8 MB
coredump_dir %[2]s/log
http_access allow localhost
http_access deny all
visible_hostname portctl.test
shutdown_lifetime 0 seconds
`, port, dir), 0o644)
			return []string{"-N", "-f", conf}
		},
		logs: []string{"log/cache.log"},
	})
}

// Tinyproxy starts Tinyproxy (package tinyproxy) in the foreground (-d).
// Its error pages carry "Server: tinyproxy/" and the upstream version.
func Tinyproxy(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "tinyproxy", pkg: "tinyproxy", bin: "tinyproxy", proto: "tcp",
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "tinyproxy.conf")
			user := asRoot("User nobody\nGroup nogroup\n")
			writeFile(t, conf, fmt.Sprintf("%sPort %d\nListen 127.0.0.1\nTimeout 60\nMaxClients 20\nAllow 127.0.0.1\n", user, port), 0o644)
			return []string{"-d", "-c", conf}
		},
	})
}

// Privoxy starts Privoxy (package privoxy) in the foreground
// (--no-daemon) with no filters. A request that is not for a proxy draws
// its error page, titled "Privoxy: Invalid request" or similar.
func Privoxy(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "privoxy", pkg: "privoxy", bin: "privoxy", proto: "tcp",
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "privoxy.conf")
			writeFile(t, conf, fmt.Sprintf("confdir /etc/privoxy\ntempldir /etc/privoxy/templates\nlogdir %s\nlisten-address 127.0.0.1:%d\ntoggle 1\n", dir, port), 0o644)
			args := []string{"--no-daemon"}
			args = append(args, asRoot([]string{"--user", "nobody"})...)
			return append(args, conf)
		},
	})
}

// HAProxy starts HAProxy (package haproxy) in the foreground (-db) as an
// HTTP load balancer whose one backend is down: every request draws its
// 503 page, "No server is available to handle this request."
func HAProxy(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "haproxy", pkg: "haproxy", bin: "haproxy", proto: "tcp",
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "haproxy.cfg")
			writeFile(t, conf, fmt.Sprintf(`global
  pidfile %s/haproxy.pid
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
frontend web
  bind 127.0.0.1:%d
  default_backend app
backend app
  server app1 127.0.0.1:9 check
`, dir, port), 0o644)
			return []string{"-db", "-f", conf}
		},
	})
}

// Varnish starts varnishd (package varnish) in the foreground (-F) in
// front of a backend that is down: every request draws its "503 Backend
// fetch failed" page, with "Via: 1.1 varnish (Varnish/7.1)". It needs
// root: its worker process runs as vcache.
func Varnish(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "varnishd", pkg: "varnish", bin: "varnishd", proto: "tcp",
		root: "varnishd switches to the users varnish and vcache",
		args: func(dir string, port uint16) []string {
			return []string{"-F", "-a", fmt.Sprintf("127.0.0.1:%d", port), "-b", "127.0.0.1:9",
				"-n", filepath.Join(dir, "varnish"), "-s", "malloc,16m", "-T", "none", "-p", "thread_pools=1", "-p", "thread_pool_min=5"}
		},
	})
}

// SOCKS starts Dante's danted (package dante-server) as a SOCKS 4 and 5
// proxy that asks for no authentication, for clients on 127.0.0.1 only.
func SOCKS(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "danted", pkg: "dante-server", bin: "danted", proto: "tcp",
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "danted.conf")
			user := asRoot("user.privileged: root\nuser.unprivileged: nobody\n")
			writeFile(t, conf, fmt.Sprintf(`logoutput: stderr
internal: 127.0.0.1 port = %d
external: 127.0.0.1
clientmethod: none
socksmethod: none
%s
client pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
}
socks pass {
  from: 127.0.0.0/8 to: 0.0.0.0/0
}
`, port, user), 0o644)
			return []string{"-f", conf, "-p", filepath.Join(dir, "danted.pid"), "-N", "1"}
		},
	})
}
