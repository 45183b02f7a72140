package servers

import (
	"fmt"
	"path/filepath"
	"testing"
)

// FTP starts vsftpd in standalone mode in the foreground (listen=YES,
// background=NO). Its greeting is "220 (vsFTPd " and the upstream version
// and ")". Anonymous logins are refused; local users log in through PAM
// as on a stock Debian install. It needs root, as vsftpd itself does.
func FTP(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "vsftpd", pkg: "vsftpd", bin: "vsftpd", proto: "tcp",
		root: "vsftpd must be started as root",
		setup: func(dir string) {
			mkdir(t, filepath.Join(dir, "empty"), "", 0o755) // chroot of its unprivileged processes
		},
		args: func(dir string, port uint16) []string {
			// vsftpd wants its configuration owned by root, as it is.
			conf := filepath.Join(dir, "vsftpd.conf")
			writeFile(t, conf, fmt.Sprintf(`listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=%d
background=NO
anonymous_enable=NO
local_enable=YES
pam_service_name=vsftpd
secure_chroot_dir=%s/empty
xferlog_enable=NO
`, port, dir), 0o600)
			return []string{conf}
		},
		ready: banner("220 "),
	})
}
