package servers

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// SSHD starts OpenSSH's sshd (package openssh-server) in the foreground
// with an Ed25519 host key of its own. It answers with the banner
// "SSH-2.0-OpenSSH_" and the upstream version, and offers public key and
// password authentication, yet no one can log in: AllowUsers names no
// real user. It needs root, and makes /run/sshd, sshd's privilege
// separation directory, when that is missing.
func SSHD(t testing.TB) *Server {
	t.Helper()
	return start(t, spec{
		name: "sshd", pkg: "openssh-server", bin: "sshd", proto: "tcp",
		root: "sshd separates privileges",
		setup: func(dir string) {
			run(t, dir, "", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "portctl test host key",
				"-f", filepath.Join(dir, "ssh_host_ed25519_key"))
			if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
				t.Fatal(err)
			}
		},
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "sshd_config")
			writeFile(t, conf, fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %[2]s/ssh_host_ed25519_key
PidFile %[2]s/sshd.pid
UsePAM no
PermitRootLogin no
PasswordAuthentication yes
KbdInteractiveAuthentication no
AuthorizedKeysFile none
AllowUsers portctl-no-such-user
`, port, dir), 0o644)
			// sshd re-executes itself, so it needs the absolute path start
			// gives it; -D stays in the foreground, -e logs to stderr.
			return []string{"-D", "-e", "-f", conf}
		},
		ready: banner("SSH-2.0-"),
	})
}
