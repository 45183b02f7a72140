package testnet

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Engine is a real container engine, Debian's Docker (dockerd) or Podman
// (its Docker-compatible API service), that a test started inside a
// network namespace of its own, so that its bridge, its NAT rules and the
// ports it publishes stay there. It has its own data, state and socket,
// and a busybox image made locally (nothing is pulled).
type Engine struct {
	NS *Namespace
	// Host is the engine's API address, as DOCKER_HOST spells it.
	Host string
	// Image is the busybox-static image, with an index.html in /www.
	Image string
	dir   string
	cli   []string // the command line that drives it: docker or podman --remote
}

// DockerOptions change how the Docker daemon runs.
type DockerOptions struct {
	// NoUserlandProxy publishes ports with NAT rules alone, without a
	// docker-proxy process (dockerd --userland-proxy=false).
	NoUserlandProxy bool
}

// StartDocker starts a Docker daemon and stops it, with its containers,
// when the test ends. It skips the test, saying why, without root, dockerd
// or a static busybox.
func StartDocker(t testing.TB, opts DockerOptions) *Engine {
	t.Helper()
	e := newEngine(t, []string{"dockerd", "docker"}, "docker.io")
	name := filepath.Base(e.dir)
	args := []string{"dockerd", "--data-root", e.dir + "/data", "--exec-root", e.dir + "/exec", "--pidfile", e.dir + "/pid",
		"-H", e.Host, "--containerd-namespace", name, "--containerd-plugins-namespace", name + "-plugins"}
	if opts.NoUserlandProxy {
		args = append(args, "--userland-proxy=false")
	}
	e.cli = []string{"docker", "-H", e.Host}
	e.Image = "portctl-test/busybox:local"
	e.start(t, args, nil)
	return e
}

// StartPodman starts Podman's API service (podman system service, rootful,
// with the vfs storage driver and runc) and stops it, with its containers,
// when the test ends. It skips the test, saying why, without root, podman
// or a static busybox.
func StartPodman(t testing.TB) *Engine {
	t.Helper()
	e := newEngine(t, []string{"podman", "conmon", "runc"}, "podman")
	d := e.dir
	// The container's limits must stay within this machine's hard limits,
	// which podman's defaults exceed; crun refuses cgroups in hybrid mode,
	// where runc works.
	conf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
tmp_dir = "%[1]s/tmp"
[network]
network_config_dir = "%[1]s/net"
`, d)
	storage := fmt.Sprintf("[storage]\ndriver = \"vfs\"\nrunroot = \"%[1]s/run\"\ngraphroot = \"%[1]s/root\"\n", d)
	for name, body := range map[string]string{"containers.conf": conf, "storage.conf": storage} {
		if err := os.WriteFile(d+"/"+name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"CONTAINERS_CONF=" + d + "/containers.conf", "CONTAINERS_STORAGE_CONF=" + d + "/storage.conf"}
	e.cli = []string{"podman", "--remote", "--url", e.Host}
	e.Image = "localhost/portctl-test/busybox:local"
	e.start(t, []string{"podman", "--root", d + "/root", "--runroot", d + "/run", "system", "service", "--time=0", e.Host}, env)
	return e
}

// newEngine checks for the tools and makes the namespace and directory.
func newEngine(t testing.TB, tools []string, pkg string) *Engine {
	t.Helper()
	for _, tool := range append(tools, "nsenter") {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian packages %s and util-linux; test-deps.sh installs them)", tool, pkg)
		}
	}
	ns := NewNamespace(t)
	dir, err := os.MkdirTemp("", "portctl-engine-")
	if err != nil {
		t.Fatal(err)
	}
	return &Engine{NS: ns, Host: "unix://" + dir + "/api.sock", dir: dir}
}

// start runs the engine's daemon inside the namespace, waits until its API
// answers, imports the busybox image, and stops it all when the test ends.
func (e *Engine) start(t testing.TB, args, env []string) {
	t.Helper()
	busybox, err := staticBusybox()
	if err != nil {
		t.Skip(err)
	}
	log, err := os.Create(e.dir + "/daemon.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + e.NS.Name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(exited) }()
	// Cleanups run last first: the namespace's was registered before, so
	// the engine stops before its namespace goes.
	t.Cleanup(func() {
		if out, err := e.run("ps", "-aq"); err == nil && strings.TrimSpace(out) != "" {
			e.run(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
		}
		cmd.Process.Signal(syscall.SIGTERM) // nsenter execs the daemon: this is its PID
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		// Anything the engine left mounted under its directory goes first.
		exec.Command("sh", "-c", "grep -o ' "+e.dir+"[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l").Run()
		os.RemoveAll(e.dir)
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := e.run("info"); err == nil {
			break
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(e.dir + "/daemon.log")
			t.Fatalf("%s exited at start:\n%s", args[0], tail(b, 20))
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(e.dir + "/daemon.log")
			t.Fatalf("%s not ready after 60s:\n%s", args[0], tail(b, 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	root := e.dir + "/rootfs"
	for _, sub := range []string{"bin", "www"} {
		if err := os.MkdirAll(root+"/"+sub, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root+"/bin/busybox", data, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(root+"/www/index.html", []byte("portctl test\n"), 0o644)
	tar := exec.Command("tar", "-C", root, "-c", ".")
	imp := exec.Command(e.cli[0], append(e.cli[1:], "import", "-", e.Image)...)
	if imp.Stdin, err = tar.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	out, err := imp.CombinedOutput()
	tar.Wait()
	if err != nil {
		t.Fatalf("%s import: %v: %s", e.cli[0], err, out)
	}
}

// Run runs the engine's CLI (docker, or podman --remote) against it and
// returns its output, failing the test when it fails.
func (e *Engine) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := e.run(args...)
	if err != nil {
		t.Fatalf("%s %s: %v: %s", e.cli[0], strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

func (e *Engine) run(args ...string) (string, error) {
	out, err := exec.Command(e.cli[0], append(e.cli[1:], args...)...).CombinedOutput()
	return string(out), err
}

// PID returns the PID of a container's main process.
func (e *Engine) PID(t testing.TB, container string) int {
	t.Helper()
	pid, err := strconv.Atoi(e.Run(t, "inspect", "-f", "{{.State.Pid}}", container))
	if err != nil || pid == 0 {
		t.Fatalf("inspect %s: no PID (%v)", container, err)
	}
	return pid
}

// staticBusybox finds a busybox that runs without shared libraries, as a
// container made from it alone needs: Debian's busybox-static.
func staticBusybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		dynamic := slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
		f.Close()
		if !dynamic {
			return p, nil
		}
	}
	return "", fmt.Errorf("needs a static busybox (Debian package busybox-static; test-deps.sh installs it)")
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
