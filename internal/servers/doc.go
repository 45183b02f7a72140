// Package servers starts real servers from Debian packages for tests:
// nginx, OpenSSH, Exim, vsftpd, Dovecot, Redis, MariaDB, PostgreSQL,
// dnsmasq, chrony, net-snmp, memcached and BusyBox telnetd, and some
// fifty more for service detection's benchmark (bench/service):
// directory, messaging and job-queue servers (messaging.go), web servers
// and proxies (proxy.go), file, print and version-control servers
// (files.go), DNS servers (dns.go), monitoring agents (monitor.go) and
// the rest (misc.go). Service detection is tested against them rather
// than against mocks.
//
// Each function (Nginx, SSHD, SMTP, …) starts one server for the calling
// test on 127.0.0.1 and a free port picked at run time, with a throw-away
// configuration written into a t.TempDir, and returns a *Server saying
// where it listens and which package version it is. The server runs in the
// foreground as a child of the test, in its own process group; when the
// test ends it is stopped by PID (its clean shutdown signal, then SIGKILL
// after a few seconds) and waited for. Its stdout and stderr (and any log
// file it insists on writing) are shown only when the test fails.
//
// A function skips the test, saying why, when the package is not installed
// (test-deps.sh installs them all), when the server needs root and the test is
// not root, or when not on Linux. It fails the test, with the server's
// output, when the server does not answer within 20 seconds.
//
// The test's temporary directory and its parent are made world-readable
// (0755) because most of these daemons drop privileges (nginx workers run
// as www-data, Exim as Debian-exim, PostgreSQL as postgres, …) and must
// reach their files; private keys stay 0600, owned by whoever reads them.
//
// The functions are safe to call from parallel tests. The package is meant
// for _test.go files only.
package servers
