package servers

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
)

// Redis starts redis-server in the foreground with no password, no
// persistence (--save "" --appendonly no) and protected mode on (harmless
// on 127.0.0.1). INFO server reports redis_version: and the upstream
// version.
func Redis(t testing.TB) *Server {
	t.Helper()
	return RedisAt(t, Place{})
}

// RedisAt starts redis-server as Redis does, where at says. Bound to an
// address other than loopback, protected mode is off, or the test could
// not reach it from outside the namespace.
func RedisAt(t testing.TB, at Place) *Server {
	t.Helper()
	protected := "yes"
	if !at.bind().IsLoopback() {
		protected = "no"
	}
	return start(t, spec{
		name: "redis", pkg: "redis-server", bin: "redis-server", proto: "tcp", at: &at,
		args: func(dir string, port uint16) []string {
			return []string{"--port", fmt.Sprint(port), "--bind", at.bind().String(), "--protected-mode", protected,
				"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--logfile", ""}
		},
		ready: ask("PING\r\n", "+PONG"),
	})
}

// Memcached starts memcached on TCP only (-U 0); "version" answers
// "VERSION " and the upstream version. As root it runs as nobody.
func Memcached(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "memcached", pkg: "memcached", bin: "memcached", proto: "tcp",
		args: func(dir string, port uint16) []string {
			return []string{"-l", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "0", "-u", "nobody"}
		},
		ready: ask("version\r\n", "VERSION "),
	})
}

// MariaDB starts mariadbd (package mariadb-server) on a data directory
// that mariadb-install-db makes for the test, with a socket of its own.
// Its handshake announces "5.5.5-" and the upstream version and
// "-MariaDB…". As on a stock Debian install, the only account is
// root@localhost, authenticated by unix_socket: 127.0.0.1 resolves to
// localhost and gets the handshake, but no login over TCP succeeds. It
// needs root: mariadbd runs as mysql.
func MariaDB(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "mariadb", pkg: "mariadb-server", bin: "mariadbd", proto: "tcp",
		root: "mariadbd runs as mysql",
		setup: func(dir string) {
			mkdir(t, filepath.Join(dir, "run"), "mysql", 0o755)
			run(t, dir, "", "mariadb-install-db", "--no-defaults", "--datadir="+filepath.Join(dir, "data"),
				"--user=mysql", "--auth-root-authentication-method=socket", "--skip-test-db")
		},
		args: func(dir string, port uint16) []string {
			return []string{"--no-defaults", "--user=mysql", "--datadir=" + filepath.Join(dir, "data"),
				"--bind-address=127.0.0.1", "--port=" + fmt.Sprint(port),
				"--socket=" + filepath.Join(dir, "run", "mysqld.sock"), "--pid-file=" + filepath.Join(dir, "run", "mysqld.pid"),
				"--innodb-buffer-pool-size=16M"}
		},
		ready: func(addr netip.AddrPort) error {
			_, err := mysqlGreeting(addr)
			return err
		},
	})
}

// Postgres starts PostgreSQL's postgres (package postgresql-N, the newest
// N installed) as the user postgres, which it insists on, on a cluster
// initdb makes for the test, with its Unix socket in the test's directory.
// Anyone may log in as postgres (trust authentication); the startup
// reply reports server_version, which starts with the upstream version.
// It needs root to run as postgres.
func Postgres(t testing.TB) *Server {
	t.Helper()
	bin, pkg := postgresInstall()
	return start(t, spec{
		name: "postgres", pkg: pkg, bin: bin, proto: "tcp",
		root: "postgres refuses root and the test must switch to the user postgres",
		user: "postgres",
		stop: syscall.SIGINT, // fast shutdown: SIGTERM waits for clients
		setup: func(dir string) {
			mkdir(t, filepath.Join(dir, "data"), "postgres", 0o700)
			mkdir(t, filepath.Join(dir, "sock"), "postgres", 0o755)
			run(t, dir, "postgres", filepath.Join(filepath.Dir(bin), "initdb"), "-D", filepath.Join(dir, "data"),
				"-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")
		},
		args: func(dir string, port uint16) []string {
			return []string{"-D", filepath.Join(dir, "data"), "-p", fmt.Sprint(port), "-k", filepath.Join(dir, "sock"),
				"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "shared_buffers=16MB"}
		},
		ready: func(addr netip.AddrPort) error {
			_, err := pgStartup(addr)
			return err
		},
	})
}

// postgresInstall returns the postgres binary of the newest PostgreSQL
// installed under /usr/lib/postgresql and its package, postgresql-N; or
// those of the current Debian release when there is none, for the skip
// message.
func postgresInstall() (bin, pkg string) {
	paths, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	major := func(p string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return n
	}
	slices.SortFunc(paths, func(a, b string) int { return major(a) - major(b) })
	if len(paths) == 0 {
		return "/usr/lib/postgresql/15/bin/postgres", "postgresql-15"
	}
	bin = paths[len(paths)-1]
	return bin, "postgresql-" + strconv.Itoa(major(bin))
}
