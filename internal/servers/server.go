package servers

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portctl/portctl/freeport"
	"github.com/portctl/portctl/netconf"
)

// Server is a server a test started. It runs until the test ends.
type Server struct {
	Name     string            // the program: "nginx", "sshd", "exim", …; "nginx-tls", "dovecot-imap", "dovecot-pop3"
	Addr     netip.AddrPort    // where it listens: 127.0.0.1 and a port picked at run time
	Proto    string            // "tcp" or "udp", as net.Dial names them
	Package  string            // the Debian package it comes from, "nginx"
	Version  string            // the package's version as dpkg-query reports it, "1.22.1-9+deb12u11"
	Upstream string            // Upstream(Version), "1.22.1": the version the server reports about itself
	PID      int               // the process the test started: the server's main process
	Cert     *x509.Certificate // the certificate it presents over TLS or STARTTLS; nil when it has none
}

// String describes s for test logs: "nginx 1.22.1 on 127.0.0.1:41234/tcp".
func (s *Server) String() string {
	return fmt.Sprintf("%s %s on %s/%s", s.Name, s.Upstream, s.Addr, s.Proto)
}

const (
	readyTimeout = 20 * time.Second // for a server to answer after it starts
	stopTimeout  = 5 * time.Second  // for a server to exit after its stop signal, then after SIGKILL
	attempts     = 3                // starts on fresh ports when the port was taken meanwhile
)

// spec describes how to run one server: the server functions are mostly
// one spec each.
type spec struct {
	name  string                    // Server.Name
	pkg   string                    // the Debian package; its version is Server.Version
	bin   string                    // the executable: absolute, or looked up in PATH, /usr/sbin and /sbin
	proto string                    // "tcp" or "udp"
	root  string                    // when not empty, why the server needs root: the test skips without it
	user  string                    // when not empty, the user the server runs as (the test must be root)
	env   func(dir string) []string // added to the test's environment
	stop  syscall.Signal            // its clean shutdown signal; SIGTERM when zero
	// setup prepares dir once, before the first start (keys, data
	// directories); it may call t.Fatal.
	setup func(dir string)
	// args returns the command line after bin for a server on port,
	// writing the configuration it names into dir. It is called again
	// when a start is retried on another port.
	args func(dir string, port uint16) []string
	// ready returns nil once the server really answers on addr; nil
	// means a TCP connect. It must return within a couple of seconds.
	ready func(addr netip.AddrPort) error
	// logs are files (globs relative to dir) the server writes its log to
	// besides stdout and stderr; they are shown when the test fails.
	logs []string
	// at, when set, says where the server listens instead of 127.0.0.1
	// and a free port; args must then use at.bind().
	at *Place
	// maxPort, when set, is the highest port the server accepts (the
	// Zabbix agent takes 1024 to 32767).
	maxPort uint16
}

// Place says where a server listens, for the functions that take one
// (RedisAt, TelnetAt). The zero Place is the default: the test's own
// network namespace, 127.0.0.1 and a free port.
type Place struct {
	// NetNS is a network namespace as ip netns names it, where the server
	// runs (started with ip netns exec); empty for the test's own.
	NetNS string
	// Bind is the address the server binds: 127.0.0.1 when not set,
	// 0.0.0.0 for all interfaces.
	Bind netip.Addr
	// Port is the port it binds; a free one when 0. A fixed port is not
	// retried when taken.
	Port uint16
	// Dial is where the test reaches the server, to see that it answers
	// and in Server.Addr: Bind when not set, 127.0.0.1 when Bind is
	// 0.0.0.0. In another namespace, its address on the veth pair
	// (testnet.Namespace.Peer).
	Dial netip.Addr
}

func (p *Place) bind() netip.Addr {
	if p == nil || !p.Bind.IsValid() {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return p.Bind
}

func (p *Place) dial() netip.Addr {
	switch {
	case p == nil:
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case p.Dial.IsValid():
		return p.Dial
	case p.bind().IsUnspecified():
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return p.bind()
}

// errExited says that a server exited before it answered.
var errExited = errors.New("exited")

// portTaken matches the messages of a server that could not bind its
// port, which another process took after freePort let it go.
var portTaken = regexp.MustCompile(`(?i)in use|bind`)

// start runs the server sp describes for t and returns once it answers;
// see the package documentation for the skips, the failure and the
// cleanup.
func start(t testing.TB, sp spec) *Server {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("%s: needs Linux with the Debian package %s", sp.name, sp.pkg)
	}
	bin, err := lookPath(sp.bin)
	if err != nil {
		t.Skipf("needs %s (installed by test-deps.sh): %v", sp.pkg, err)
	}
	if sp.root != "" && os.Geteuid() != 0 {
		t.Skipf("needs root: %s", sp.root)
	}
	version, err := packageVersion(sp.pkg)
	if err != nil {
		t.Skipf("needs %s (installed by test-deps.sh): %v", sp.pkg, err)
	}
	if sp.stop == 0 {
		sp.stop = syscall.SIGTERM
	}
	if sp.ready == nil {
		sp.ready = connectTCP
	}
	dir := workDir(t)
	logPath := filepath.Join(dir, "output.log")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close() // the server has its own copy
	var (
		cur   *process // the attempt that runs, stopped when the test ends
		shown bool     // whether the output went into t.Fatalf already
	)
	t.Cleanup(func() {
		if cur != nil {
			cur.stop()
		}
		if t.Failed() && !shown {
			t.Logf("%s output:\n%s", sp.name, logs(dir, sp.logs))
		}
	})
	if sp.setup != nil {
		sp.setup(dir)
	}
	attr, err := sysProcAttr(sp.user)
	if err != nil {
		t.Fatalf("%s: %v", sp.name, err)
	}
	for attempt := 1; ; attempt++ {
		var port uint16
		if sp.at != nil {
			port = sp.at.Port
		}
		for try := 0; port == 0 || sp.maxPort != 0 && port > sp.maxPort && try < 100; try++ {
			port = freePort(t, sp.proto)
		}
		addr := netip.AddrPortFrom(sp.at.dial(), port)
		args := sp.args(dir, addr.Port())
		offset, _ := out.Seek(0, io.SeekEnd)
		fmt.Fprintf(out, "== %s %s\n", bin, strings.Join(args, " "))
		cmd := exec.Command(bin, args...)
		if sp.at != nil && sp.at.NetNS != "" {
			// ip netns exec enters the namespace and execs the server
			// in place: the PID and process group stay the server's.
			ip, err := lookPath("ip")
			if err != nil {
				t.Skipf("%s in a namespace needs ip (iproute2): %v", sp.name, err)
			}
			cmd = exec.Command(ip, append([]string{"netns", "exec", sp.at.NetNS, bin}, args...)...)
		}
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = out, out
		if sp.env != nil {
			cmd.Env = append(os.Environ(), sp.env(dir)...)
		}
		cmd.SysProcAttr = attr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", sp.name, err)
		}
		cur = &process{cmd: cmd, sig: sp.stop}
		err := cur.waitReady(addr, sp.ready)
		if err == nil {
			return &Server{
				Name: sp.name, Addr: addr, Proto: sp.proto, PID: cmd.Process.Pid,
				Package: sp.pkg, Version: version, Upstream: Upstream(version),
			}
		}
		cur.stop()
		cur = nil
		if errors.Is(err, errExited) && attempt < attempts && (sp.at == nil || sp.at.Port == 0) && portTaken.MatchString(readFrom(logPath, offset)) {
			continue
		}
		shown = true
		t.Fatalf("%s on %s: %v\n%s output:\n%s", sp.name, addr, err, sp.name, logs(dir, sp.logs))
	}
}

// waitReady returns nil once ready(addr) does, or an error wrapping
// errExited when the process exits first, or an error after readyTimeout.
func (p *process) waitReady(addr netip.AddrPort, ready func(netip.AddrPort) error) error {
	deadline := time.Now().Add(readyTimeout)
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("%w before it answered (last try: %v)", errExited, last)
		}
		if last = ready(addr); last == nil {
			if p.exited() { // someone else answered on the port
				return fmt.Errorf("%w, yet something answered", errExited)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %v: %w", readyTimeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// connectTCP is the default readiness test: a TCP connect.
func connectTCP(addr netip.AddrPort) error {
	c, err := dial("tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// freePort returns a port that was free a moment ago for proto, outside
// this host's ephemeral range; a UDP port is free for TCP too, since some
// UDP servers (dnsmasq) also listen for TCP on the same port.
func freePort(t testing.TB, proto string) uint16 {
	t.Helper()
	host, _ := netconf.Read() // the documented defaults stand in for what cannot be read
	res, err := freeport.Find(freeport.Config{UDP: proto == "udp", Host: host})
	if err != nil {
		t.Fatalf("pick a free %s port: %v", proto, err)
	}
	return res.Ports[0]
}

// workDir returns a new temporary directory for the test that daemons
// which drop privileges can reach: it and its parent are made 0755.
func workDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// lookPath finds the executable name: an absolute path as it is, others
// in PATH and then in /usr/sbin and /sbin, which a non-root PATH may lack.
func lookPath(name string) (string, error) {
	if filepath.IsAbs(name) {
		_, err := os.Stat(name)
		return name, err
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH, /usr/sbin or /sbin", name)
}

// run runs a setup command in dir, as user when not empty, and fails the
// test with its output when it fails.
func run(t testing.TB, dir, user, name string, args ...string) {
	t.Helper()
	bin, err := lookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	attr, err := sysProcAttr(user)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = attr
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// writeFile writes text to path with mode perm, whatever the umask.
func writeFile(t testing.TB, path, text string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

// asRoot returns v when the test runs as root, and v's zero value
// otherwise: what a server is told to drop its privileges to, which only
// root can do.
func asRoot[T any](v T) T {
	if os.Geteuid() == 0 {
		return v
	}
	var zero T
	return zero
}

// mkdir makes the directory path, owned by owner when not empty.
func mkdir(t testing.TB, path, owner string, perm os.FileMode) {
	t.Helper()
	if err := os.Mkdir(path, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	if owner != "" {
		chown(t, path, owner)
	}
}

// chown gives path to the user name and its primary group.
func chown(t testing.TB, path, name string) {
	t.Helper()
	uid, gid, err := lookupUser(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
}

// lookupUser returns the user ID and primary group ID of the user name.
func lookupUser(name string) (uid, gid uint32, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	id, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	g, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("user %s: gid %q: %w", name, u.Gid, err)
	}
	return uint32(id), uint32(g), nil
}

// readFrom returns the file path from offset on, or "" when unreadable.
func readFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}

// logs returns the server's captured stdout and stderr followed by the
// log files matching the globs in dir.
func logs(dir string, globs []string) string {
	var b strings.Builder
	b.WriteString(readFrom(filepath.Join(dir, "output.log"), 0))
	for _, g := range globs {
		paths, _ := filepath.Glob(filepath.Join(dir, g))
		for _, p := range paths {
			fmt.Fprintf(&b, "== %s\n%s", p, readFrom(p, 0))
		}
	}
	return b.String()
}
