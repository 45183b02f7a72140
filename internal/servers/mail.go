package servers

import (
	"fmt"
	"path/filepath"
	"testing"
)

// SMTP starts Exim (package exim4-daemon-light) as a foreground daemon
// (exim4 -bdf). Its greeting is "220 portctl.test ESMTP Exim " and the
// upstream version; EHLO offers STARTTLS with a self-signed certificate
// for localhost (Server.Cert). It relays nothing: every RCPT TO is
// refused. It needs root: Exim switches to its user Debian-exim.
func SMTP(t testing.TB) *Server {
	t.Helper()
	var kp keyPair
	s := start(t, spec{
		name: "exim", pkg: "exim4-daemon-light", bin: "exim4", proto: "tcp",
		root: "exim runs as Debian-exim",
		setup: func(dir string) {
			mkdir(t, filepath.Join(dir, "spool"), "Debian-exim", 0o750)
			mkdir(t, filepath.Join(dir, "log"), "Debian-exim", 0o750)
			kp = writeKeyPair(t, dir, TLSOptions{})
			chown(t, kp.keyPEM, "Debian-exim") // read after Exim drops root
		},
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "exim.conf")
			writeFile(t, conf, fmt.Sprintf(`keep_environment =
primary_hostname = portctl.test
daemon_smtp_ports = %d
local_interfaces = 127.0.0.1
spool_directory = %[2]s/spool
log_file_path = %[2]s/log/%%slog
pid_file_path = %[2]s/exim.pid
tls_advertise_hosts = *
tls_certificate = %[3]s
tls_privatekey = %[4]s
acl_smtp_rcpt = refuse

begin acl

refuse:
  deny message = relay not permitted
`, port, dir, kp.certPEM, kp.keyPEM), 0o644)
			// -bdf: the daemon, in the foreground; no -q, so no queue runner.
			return []string{"-bdf", "-C", conf}
		},
		ready: banner("220 "),
		logs:  []string{"log/*"},
	})
	s.Cert = kp.cert
	return s
}

// IMAP starts Dovecot (packages dovecot-core and dovecot-imapd) serving
// IMAP only. Its greeting is "* OK [CAPABILITY …] Dovecot (Debian) ready.";
// it offers STARTTLS (Server.Cert) and allows plaintext logins before it
// (AUTH=PLAIN, no LOGINDISABLED): any user name with any password logs in
// to an empty mailbox. It needs root: Dovecot runs its processes as
// several users.
func IMAP(t testing.TB) *Server {
	t.Helper()
	return dovecot(t, "imap", "dovecot-imapd")
}

// POP3 starts Dovecot (packages dovecot-core and dovecot-pop3d) serving
// POP3 only, set up as IMAP's: the greeting "+OK Dovecot (Debian) ready.",
// STLS, and USER and SASL PLAIN logins allowed in the clear.
func POP3(t testing.TB) *Server {
	t.Helper()
	return dovecot(t, "pop3", "dovecot-pop3d")
}

// dovecot starts a Dovecot of its own (base_dir in the test's directory)
// in the foreground for protocol, "imap" or "pop3". Dovecot takes
// connections from 127.0.0.1 as secured anyway, so disable_plaintext_auth
// would make no difference here; it is off for the record.
func dovecot(t testing.TB, protocol, pkg string) *Server {
	t.Helper()
	var kp keyPair
	ready := banner("* OK [CAPABILITY ")
	if protocol == "pop3" {
		ready = banner("+OK ", "Waiting")
	}
	s := start(t, spec{
		name: "dovecot-" + protocol, pkg: pkg, bin: "dovecot", proto: "tcp",
		root: "dovecot runs its processes as dovecot, dovenull and the mail users",
		setup: func(dir string) {
			mkdir(t, filepath.Join(dir, "home"), "nobody", 0o755)
			kp = writeKeyPair(t, dir, TLSOptions{})
		},
		args: func(dir string, port uint16) []string {
			conf := filepath.Join(dir, "dovecot.conf")
			writeFile(t, conf, fmt.Sprintf(`protocols = %[1]s
listen = 127.0.0.1
base_dir = %[3]s/run
state_dir = %[3]s/state
log_path = /dev/stderr
ssl = yes
ssl_cert = <%[4]s
ssl_key = <%[5]s
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=%[3]s/home/%%u
}
mail_location = maildir:~/Maildir
service %[1]s-login {
  inet_listener %[1]s {
    port = %[2]d
  }
  inet_listener %[1]ss {
    port = 0
  }
}
`, protocol, port, dir, kp.certPEM, kp.keyPEM), 0o644)
			return []string{"-F", "-c", conf}
		},
		// Until its auth process is up, Dovecot greets with "Waiting for
		// authentication process to respond" (IMAP without capabilities).
		ready: ready,
	})
	s.Cert = kp.cert
	return s
}
