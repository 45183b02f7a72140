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

// Docker is a real Docker daemon (Debian's docker.io) that a test started
// inside a network namespace of its own, so that its bridge, its NAT rules
// and the ports it publishes stay there. It has its own data, state and
// socket, and a busybox image made locally (nothing is pulled).
type Docker struct {
	NS *Namespace
	// Host is the daemon's address, as DOCKER_HOST spells it.
	Host string
	// Image is the busybox-static image, with an index.html in /www.
	Image string
	dir   string
}

// DockerOptions change how the daemon runs.
type DockerOptions struct {
	// NoUserlandProxy publishes ports with NAT rules alone, without a
	// docker-proxy process (dockerd --userland-proxy=false).
	NoUserlandProxy bool
}

// StartDocker starts the daemon and stops it, with its containers, when the
// test ends. It skips the test, saying why, without root, dockerd or a
// static busybox.
func StartDocker(t testing.TB, opts DockerOptions) *Docker {
	t.Helper()
	for _, tool := range []string{"dockerd", "docker", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian packages docker.io and util-linux; test-deps.sh installs them)", tool)
		}
	}
	busybox, err := staticBusybox()
	if err != nil {
		t.Skip(err)
	}
	ns := NewNamespace(t)
	dir, err := os.MkdirTemp("", "portctl-docker-")
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(dir)
	d := &Docker{NS: ns, Host: "unix://" + dir + "/docker.sock", Image: "portctl-test/busybox:local", dir: dir}
	args := []string{"--net=/run/netns/" + ns.Name, "dockerd",
		"--data-root", dir + "/data", "--exec-root", dir + "/exec", "--pidfile", dir + "/pid",
		"-H", d.Host, "--containerd-namespace", name, "--containerd-plugins-namespace", name + "-plugins"}
	if opts.NoUserlandProxy {
		args = append(args, "--userland-proxy=false")
	}
	log, err := os.Create(dir + "/dockerd.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(exited) }()
	// Cleanups run last first: the namespace's was registered before, so
	// the daemon stops before its namespace goes.
	t.Cleanup(func() {
		if out, err := d.docker("ps", "-aq"); err == nil && strings.TrimSpace(out) != "" {
			d.docker(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
		}
		cmd.Process.Signal(syscall.SIGTERM) // nsenter execs dockerd: this is its PID
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		// Anything the daemon left mounted under its directories goes
		// before they do.
		exec.Command("sh", "-c", "grep -o ' "+dir+"[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l").Run()
		os.RemoveAll(dir)
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := d.docker("info"); err == nil {
			break
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(dir + "/dockerd.log")
			t.Fatalf("dockerd exited at start:\n%s", tail(b, 20))
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(dir + "/dockerd.log")
			t.Fatalf("dockerd not ready after 60s:\n%s", tail(b, 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	root := dir + "/rootfs"
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
	imp := exec.Command("sh", "-c", "tar -C "+root+" -c . | docker import - "+d.Image)
	imp.Env = append(os.Environ(), "DOCKER_HOST="+d.Host)
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v: %s", err, out)
	}
	return d
}

// Run runs the docker CLI against the daemon and returns its output,
// failing the test when it fails.
func (d *Docker) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := d.docker(args...)
	if err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

func (d *Docker) docker(args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// PID returns the PID of a container's main process.
func (d *Docker) PID(t testing.TB, container string) int {
	t.Helper()
	pid, err := strconv.Atoi(d.Run(t, "inspect", "-f", "{{.State.Pid}}", container))
	if err != nil || pid == 0 {
		t.Fatalf("docker inspect %s: no PID (%v)", container, err)
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
