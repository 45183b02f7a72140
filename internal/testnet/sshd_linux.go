//go:build linux

package testnet

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SSHDPath is Debian's OpenSSH server.
const SSHDPath = "/usr/sbin/sshd"

// SSHD is an OpenSSH server the test started on a loopback port, with its
// own host key, authorized_keys, config and log in a temporary directory;
// nothing of the machine's own sshd is used. It runs as root (privilege
// separation), lets root in with a key only, and allows TCP forwarding.
type SSHD struct {
	Dir       string         // the server's files
	Addr      netip.AddrPort // where it listens
	HostKey   string         // private host key file; .pub beside it
	ClientKey string         // a private key authorized_keys lets in; .pub beside it
	Log       string         // sshd's log (-E), LogLevel DEBUG1
	Config    string         // sshd_config
	t         testing.TB
	cmd       *exec.Cmd
}

// SSHDOptions adjust StartSSHD.
type SSHDOptions struct {
	// Extra lines for sshd_config. They come first, so they override the
	// defaults (sshd takes the first value of a keyword); no Match blocks.
	Extra []string
	// AuthorizedKeys are public keys (authorized_keys lines) let in besides
	// the server's own ClientKey.
	AuthorizedKeys []string
}

// StartSSHD starts /usr/sbin/sshd -D on 127.0.0.1 and a free port and
// waits until it listens; it is killed when the test ends. The test is
// skipped when sshd is missing or the test is not root.
func StartSSHD(t testing.TB, opts SSHDOptions) *SSHD {
	t.Helper()
	if _, err := os.Stat(SSHDPath); err != nil {
		t.Skipf("no OpenSSH server (%s): install openssh-server (test-deps.sh)", SSHDPath)
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("no ssh-keygen: install openssh-client (test-deps.sh)")
	}
	if os.Geteuid() != 0 {
		t.Skip("sshd's privilege separation needs root")
	}
	// sshd insists on its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Skipf("cannot make /run/sshd: %v", err)
	}
	dir := t.TempDir()
	s := &SSHD{Dir: dir, t: t, Log: filepath.Join(dir, "sshd.log"), Config: filepath.Join(dir, "sshd_config")}
	s.HostKey = SSHKey(t, dir, "host_ed25519", "ed25519")
	s.ClientKey = SSHKey(t, dir, "client_ed25519", "ed25519")
	pub, err := os.ReadFile(s.ClientKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	auth := append([]string{strings.TrimSpace(string(pub))}, opts.AuthorizedKeys...)
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), []byte(strings.Join(auth, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Addr = ClosedPort(t, "127.0.0.1")
	// sshd takes the first value of each keyword: the extra lines go first.
	conf := append([]string(nil), opts.Extra...)
	conf = append(conf,
		"Port "+strconv.Itoa(int(s.Addr.Port())),
		"ListenAddress 127.0.0.1",
		"HostKey "+s.HostKey,
		"PidFile none",
		"AuthorizedKeysFile "+filepath.Join(dir, "authorized_keys"),
		"StrictModes no",
		"UsePAM no",
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"AllowTcpForwarding yes",
		"AllowStreamLocalForwarding no",
		"GatewayPorts no",
		"X11Forwarding no",
		"PrintMotd no",
		"MaxStartups 100",
		"LogLevel DEBUG1",
		"Subsystem sftp internal-sftp",
	)
	if err := os.WriteFile(s.Config, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd -t checks the config first: a bad line is a clear failure.
	if out, err := exec.Command(SSHDPath, "-t", "-f", s.Config).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t -f %s: %v: %s", s.Config, err, out)
	}
	t.Cleanup(s.Kill)
	s.Start()
	return s
}

// Start starts the server (again, after Kill) on the same port and waits
// until it listens.
func (s *SSHD) Start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("sshd already running")
	}
	before := s.logSize()
	cmd := exec.Command(SSHDPath, "-D", "-e", "-f", s.Config, "-E", s.Log)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start sshd: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	want := fmt.Sprintf("Server listening on 127.0.0.1 port %d", s.Addr.Port())
	for {
		if bytes.Contains(s.logSince(before), []byte(want)) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sshd did not listen within 10 s; log:\n%s", s.logSince(before))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// PID is the listening server's process ID (0 when stopped).
func (s *SSHD) PID() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill kills the server and every process it forked (the sessions), by
// PID, with SIGKILL, and waits for the listener to exit. Established
// connections die with them.
func (s *SSHD) Kill() {
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	// The listener first, so that it forks no more; then its descendants.
	kids := descendants(pid)
	syscall.Kill(pid, syscall.SIGKILL)
	for range 3 {
		for _, k := range kids {
			syscall.Kill(k, syscall.SIGKILL)
		}
		kids = append(kids, descendants(pid)...)
	}
	s.cmd.Wait()
	s.cmd = nil
	// Forked sessions were reparented; wait until they are gone.
	deadline := time.Now().Add(5 * time.Second)
	for _, k := range kids {
		for alive(k) && time.Now().Before(deadline) {
			syscall.Kill(k, syscall.SIGKILL)
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// alive reports whether pid is a process that is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// descendants returns the PIDs of every process below pid, from
// /proc/*/stat.
func descendants(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
	}
	var out []int
	for p := range parent {
		for q, n := parent[p], 0; q > 1 && n < 64; q, n = parent[q], n+1 {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

func (s *SSHD) logSize() int64 {
	st, err := os.Stat(s.Log)
	if err != nil {
		return 0
	}
	return st.Size()
}

func (s *SSHD) logSince(off int64) []byte {
	b, _ := os.ReadFile(s.Log)
	if int64(len(b)) < off {
		return nil
	}
	return b[off:]
}

// LogText returns the server's log so far.
func (s *SSHD) LogText() string {
	b, _ := os.ReadFile(s.Log)
	return string(b)
}

// Logins counts the logins the server accepted ("Accepted publickey for",
// one per SSH connection).
func (s *SSHD) Logins() int {
	return strings.Count(s.LogText(), "Accepted publickey for ")
}

// HostBlock is an ssh_config block that names the server alias: its
// HostName, Port, User root and the IdentityFile authorized_keys lets in.
func (s *SSHD) HostBlock(alias string) string {
	return fmt.Sprintf("Host %s\n  HostName %s\n  Port %d\n  User root\n  IdentityFile %s\n", alias, s.Addr.Addr(), s.Addr.Port(), s.ClientKey)
}

// ClientFiles writes, in a temporary directory of the test, a known_hosts
// file that knows the server, and returns it with the HostBlock of alias.
func (s *SSHD) ClientFiles(alias string) (config, knownHosts string) {
	knownHosts = filepath.Join(s.t.TempDir(), "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(s.KnownHostsLine()+"\n"), 0o600); err != nil {
		s.t.Fatal(err)
	}
	return s.HostBlock(alias), knownHosts
}

// KnownHostsLine is the known_hosts line for the server's host key, as
// ssh writes it for a non-standard port: "[127.0.0.1]:PORT ssh-ed25519 AAAA...".
func (s *SSHD) KnownHostsLine() string {
	pub, err := os.ReadFile(s.HostKey + ".pub")
	if err != nil {
		s.t.Fatal(err)
	}
	f := strings.Fields(string(pub))
	return fmt.Sprintf("[%s]:%d %s %s", s.Addr.Addr(), s.Addr.Port(), f[0], f[1])
}

// EstablishedTo counts the established TCP connections to the server's
// port, from the kernel's table (/proc/net/tcp), counting the server's
// side of each.
func (s *SSHD) EstablishedTo() int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		s.t.Fatal(err)
	}
	local := fmt.Sprintf("0100007F:%04X", s.Addr.Port())
	n := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == local && f[3] == "01" {
			n++
		}
	}
	return n
}

// SSHKey makes a key pair with ssh-keygen (no passphrase) as dir/name and
// dir/name.pub and returns the private key's path. kind is ed25519,
// ecdsa or rsa.
func SSHKey(t testing.TB, dir, name, kind string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	out, err := exec.Command("ssh-keygen", "-q", "-t", kind, "-N", "", "-C", name, "-f", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -t %s: %v: %s", kind, err, out)
	}
	return p
}

// SSHAgent starts ssh-agent on a socket in a temporary directory, adds
// the given private keys to it with ssh-add, and returns the socket's
// path (what SSH_AUTH_SOCK would hold). It is killed when the test ends.
func SSHAgent(t testing.TB, keys ...string) string {
	t.Helper()
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		t.Skip("no ssh-agent: install openssh-client (test-deps.sh)")
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("ssh-agent: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh-agent did not listen on %s: %v", sock, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, k := range keys {
		add := exec.Command("ssh-add", k)
		add.Env = []string{"SSH_AUTH_SOCK=" + sock}
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add %s: %v: %s", k, err, out)
		}
	}
	return sock
}

// SessionPIDs returns the processes the server forked for its
// connections (descendants of the listener).
func (s *SSHD) SessionPIDs() []int {
	if s.cmd == nil {
		return nil
	}
	return descendants(s.cmd.Process.Pid)
}
