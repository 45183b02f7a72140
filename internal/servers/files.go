package servers

import (
	"fmt"
	"path/filepath"
	"testing"
)

// This file starts file, print and version-control servers: git daemon,
// svnserve, CVS pserver, rsync, Samba, CUPS and tftpd-hpa.

// GitDaemon starts git daemon (package git) exporting one empty bare
// repository, portctl.git. With --informative-errors it tells a client
// that asks for another repository so ("ERR no such repository: …")
// instead of hanging up.
func GitDaemon(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "git-daemon", pkg: "git", bin: "git", proto: "tcp",
		setup: func(dir string) {
			run(t, dir, "", "git", "init", "-q", "--bare", filepath.Join(dir, "repos", "portctl.git"))
		},
		args: func(dir string, port uint16) []string {
			args := []string{"daemon", "--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), "--reuseaddr",
				"--base-path=" + filepath.Join(dir, "repos"), "--export-all", "--informative-errors"}
			args = append(args, asRoot([]string{"--user=nobody", "--group=nogroup"})...)
			return append(args, filepath.Join(dir, "repos"))
		},
	})
}

// SVN starts Subversion's svnserve (package subversion) in the foreground
// serving an empty repository. It greets with "( success ( 2 2 ( ) ( …".
func SVN(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "svnserve", pkg: "subversion", bin: "svnserve", proto: "tcp",
		setup: func(dir string) { run(t, dir, "", "svnadmin", "create", filepath.Join(dir, "repo")) },
		args: func(dir string, port uint16) []string {
			return []string{"-d", "--foreground", "--listen-host", "127.0.0.1", "--listen-port", fmt.Sprint(port), "-r", dir}
		},
		ready: greets("( success "),
	})
}

// CVS starts a CVS pserver (package cvs) for one empty repository, one
// cvs process per connection under socat (package socat), as inetd would
// run it, its standard error on the socket too, as under inetd. A
// login it does not accept draws "I HATE YOU"; a repository it does not
// serve, "cvs [pserver aborted]: …: no such repository".
func CVS(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "cvs-pserver", pkg: "cvs", bin: "socat", proto: "tcp",
		setup: func(dir string) {
			run(t, dir, "", "cvs", "-d", filepath.Join(dir, "cvsroot"), "init")
		},
		args: func(dir string, port uint16) []string {
			cvs, err := lookPath("cvs")
			if err != nil {
				t.Skipf("needs cvs: %v", err)
			}
			return []string{fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork", port),
				fmt.Sprintf("EXEC:%s -f --allow-root=%s pserver,stderr", cvs, filepath.Join(dir, "cvsroot"))}
		},
	})
}

// Rsync starts rsync (package rsync) as a daemon in the foreground
// (--daemon --no-detach) with one read-only module. It greets with
// "@RSYNCD: " and its protocol version.
func Rsync(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "rsyncd", pkg: "rsync", bin: "rsync", proto: "tcp",
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "rsyncd.conf")
			writeFile(t, conf, fmt.Sprintf("pid file = %[1]s/rsyncd.pid\nuse chroot = no\nuid = nobody\ngid = nogroup\n[portctl]\n  path = %[1]s\n  read only = yes\n", dir), 0o644)
			return []string{"--daemon", "--no-detach", "--address=127.0.0.1", fmt.Sprintf("--port=%d", port), "--config=" + conf, "--log-file=" + filepath.Join(dir, "rsyncd.log")}
		},
		ready: banner("@RSYNCD: "),
	})
}

// Samba starts Samba's smbd (package samba) in the foreground with a
// configuration of its own and every state directory in the test's: one
// share, guest access, SMB2 and later. It needs root.
func Samba(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "smbd", pkg: "samba", bin: "smbd", proto: "tcp",
		root: "smbd runs as root",
		setup: func(dir string) {
			for _, d := range []string{"private", "lock", "state", "cache", "run", "share"} {
				mkdir(t, filepath.Join(dir, d), "", 0o755)
			}
		},
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "smb.conf")
			writeFile(t, conf, fmt.Sprintf(`[global]
workgroup = PORTCTL
netbios name = PORTCTLTEST
server role = standalone server
smb ports = %d
interfaces = 127.0.0.1
bind interfaces only = yes
private dir = %[2]s/private
lock directory = %[2]s/lock
state directory = %[2]s/state
cache directory = %[2]s/cache
pid directory = %[2]s/run
ncalrpc dir = %[2]s/run/ncalrpc
log file = %[2]s/smbd.log
disable spoolss = yes
load printers = no
map to guest = bad user
[share]
path = %[2]s/share
guest ok = yes
read only = yes
`, port, dir), 0o644)
			return []string{"--foreground", "--no-process-group", "--debug-stdout", "-s", conf}
		},
		logs: []string{"smbd.log"},
	})
}

// CUPS starts the CUPS scheduler cupsd (package cups-daemon) in the
// foreground (-f) with its files in the test's directory. Its Server
// header is "CUPS/2.4 IPP/2.1". It needs root.
func CUPS(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "cupsd", pkg: "cups-daemon", bin: "cupsd", proto: "tcp",
		root: "cupsd runs as root",
		setup: func(dir string) {
			for _, d := range []string{"cache", "state", "spool", "log"} {
				mkdir(t, filepath.Join(dir, d), "", 0o755)
			}
		},
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "cupsd.conf")
			writeFile(t, conf, fmt.Sprintf(`Listen 127.0.0.1:%d
Browsing Off
DefaultAuthType Basic
WebInterface Yes
<Location />
  Order allow,deny
  Allow localhost
</Location>
`, port), 0o644)
			files := filepath.Join(dir, "cups-files.conf")
			writeFile(t, files, fmt.Sprintf(`CacheDir %[1]s/cache
StateDir %[1]s/state
RequestRoot %[1]s/spool
ServerRoot %[1]s
AccessLog %[1]s/log/access_log
ErrorLog %[1]s/log/error_log
PageLog %[1]s/log/page_log
TempDir %[1]s/spool
User lp
Group lp
`, dir), 0o644)
			return []string{"-f", "-c", conf, "-s", files}
		},
		logs: []string{"log/error_log"},
	})
}

// TFTP starts tftpd-hpa's in.tftpd (package tftpd-hpa) in the foreground
// (-L) serving an empty directory. A read request for a missing file
// draws an ERROR packet, "File not found", from another port. It needs
// root: it switches to nobody.
func TFTP(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "tftpd-hpa", pkg: "tftpd-hpa", bin: "in.tftpd", proto: "udp",
		root: "in.tftpd switches to the user nobody",
		args: func(dir string, port uint16) []string {
			return []string{"-L", "-u", "nobody", "-a", fmt.Sprintf("127.0.0.1:%d", port), "-s", dir}
		},
		ready: udpAnswer([]byte("\x00\x01portctl-ready\x00octet\x00"), 0),
	})
}
