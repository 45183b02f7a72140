package cli

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/sockets"
)

// TestIntegrationDocker runs a real Docker daemon in a namespace of its own
// with a container that publishes a port through docker-proxy, and checks
// that who names the container and its Compose project, that ls
// --all-netns shows the container's own listener under its name, and that
// kill refuses docker-proxy with the command that frees the port.
func TestIntegrationDocker(t *testing.T) {
	requireRoot(t)
	d := testnet.StartDocker(t, testnet.DockerOptions{})
	t.Setenv("DOCKER_HOST", d.Host)
	port := 20000 + rand.IntN(10000) // inside the test's own namespace
	d.Run(t, "run", "-d", "--name", "web", "-l", "com.docker.compose.project=shop", "-l", "com.docker.compose.service=front",
		"-p", fmt.Sprintf("%d:80", port), d.Image, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www")
	webPID := d.PID(t, "web")
	waitListening(t, "--netns", d.NS.Name, "-p", fmt.Sprint(port))

	t.Run("who names the container", func(t *testing.T) {
		code, out, stderr := runCLI(t, "who", fmt.Sprint(port), "--netns", d.NS.Name, "--json")
		if code != ExitOK {
			t.Fatalf("who %d: exit %d, %s", port, code, stderr)
		}
		var res whoResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		if len(res.Holders) == 0 {
			t.Fatalf("who %d: no holders\n%s", port, out)
		}
		for _, p := range res.Holders {
			if p.DockerProxy == nil || p.ContainerInfo == nil || p.ContainerInfo.Name != "web" ||
				p.ContainerInfo.ComposeProject != "shop" || p.ContainerInfo.ComposeService != "front" || p.ContainerInfo.Image != d.Image {
				t.Errorf("holder %d %s: docker_proxy %+v, container_info %+v; want docker-proxy for web (shop/front, %s)", p.PID, p.Name, p.DockerProxy, p.ContainerInfo, d.Image)
			}
		}
		if len(res.Published) == 0 || res.Published[0].Container.Name != "web" || res.Published[0].ContainerPort != 80 {
			t.Errorf("published = %+v; want web's port 80", res.Published)
		}
		code, out, _ = runCLI(t, "who", fmt.Sprint(port), "--netns", d.NS.Name)
		want := "'docker compose -p shop stop front' frees the port"
		if code != ExitOK || strings.Count(out, want) != 1 || strings.Contains(out, "docker ps --filter") {
			t.Errorf("who %d text: exit %d; want %q once, and no 'docker ps' guesswork:\n%s", port, code, want, out)
		}
		if strings.Contains(out, fmt.Sprintf("'portctl kill %d'", port)) {
			t.Errorf("who %d suggests portctl kill for docker-proxy:\n%s", port, out)
		}
	})

	t.Run("ls --all-netns shows the container's listener", func(t *testing.T) {
		code, out, stderr := runCLI(t, "ls", "--all-netns", "-t", "-p", "80", "--json")
		if code != ExitOK {
			t.Fatalf("ls --all-netns: exit %d, %s", code, stderr)
		}
		var res lsResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		var ns *sockets.Namespace
		for i := range res.Namespaces {
			if res.Namespaces[i].ContainerInfo != nil && res.Namespaces[i].ContainerInfo.Name == "web" {
				ns = &res.Namespaces[i]
			}
		}
		if ns == nil || !slices.Contains(ns.PIDs, webPID) {
			t.Fatalf("ls --all-netns: no namespace named for container web (pid %d): %+v", webPID, res.Namespaces)
		}
		found := false
		for _, s := range res.Sockets {
			if s.NetNS == ns.Inode && s.LocalPort == 80 && s.State == "listen" {
				for _, p := range s.Processes {
					found = found || (p.PID == webPID && p.ContainerInfo != nil && p.ContainerInfo.Name == "web")
				}
			}
		}
		if !found {
			t.Errorf("ls --all-netns: no listener on port 80 in web's namespace held by pid %d:\n%s", webPID, out)
		}
		code, out, _ = runCLI(t, "ls", "--all-netns", "-t")
		if code != ExitOK || !strings.Contains(out, "NETNS") || !strings.Contains(out, "docker:web") || !strings.Contains(out, "docker-proxy→web:80") {
			t.Errorf("ls --all-netns text: exit %d; want a NETNS column with docker:web and docker-proxy→web:80:\n%s", code, out)
		}
		code, out, _ = runCLI(t, "who", "80", "--all-netns", "-P", "tcp")
		if code != ExitOK || !strings.Contains(out, "docker:web") || !strings.Contains(out, "busybox") {
			t.Errorf("who 80 --all-netns: exit %d; want web's namespace and busybox:\n%s", code, out)
		}
	})

	t.Run("kill refuses docker-proxy", func(t *testing.T) {
		code, out, stderr := runCLI(t, "kill", fmt.Sprint(port), "--netns", d.NS.Name, "--yes")
		if code == ExitOK || !strings.Contains(out, "refused") || !strings.Contains(out, "'docker compose -p shop stop front'") {
			t.Errorf("kill %d: exit %d; want a failure, refused with the compose advice:\n%s%s", port, code, out, stderr)
		}
		if out := d.Run(t, "inspect", "-f", "{{.State.Running}}", "web"); out != "true" {
			t.Errorf("container web after the refused kill: running = %s", out)
		}
		if code, _, _ := runCLI(t, "who", fmt.Sprint(port), "--netns", d.NS.Name); code != ExitOK {
			t.Errorf("the port is no longer held after the refused kill")
		}
	})

	t.Run("without the engine, ids and a reason", func(t *testing.T) {
		t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "none.sock"))
		code, out, _ := runCLI(t, "ls", "--all-netns", "-t", "-p", "80")
		if code != ExitOK || !strings.Contains(out, "docker:") || strings.Contains(out, "docker:web") {
			t.Errorf("ls --all-netns without an engine: exit %d; want the container by ID:\n%s", code, out)
		}
	})

	t.Run("as a user the engine refuses", func(t *testing.T) {
		// In this namespace: nobody may not enter the daemon's. who asks the
		// engine for publications even when nothing here holds the port.
		code, _, stderr := asUser(t, 65534, "who", fmt.Sprint(port))
		if code == ExitUsage || !strings.Contains(stderr, "cannot name containers") || !strings.Contains(stderr, "docker group") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("who as nobody: exit %d; want one line saying the engine refused and what to do: %q", code, stderr)
		}
	})
}

// TestIntegrationDockerNAT publishes a port without docker-proxy
// (--userland-proxy=false): Docker's NAT rules carry the traffic, and
// since Docker 28 dockerd itself holds the host port. who must name the
// container, not only dockerd, and kill must leave dockerd alone.
func TestIntegrationDockerNAT(t *testing.T) {
	requireRoot(t)
	d := testnet.StartDocker(t, testnet.DockerOptions{NoUserlandProxy: true})
	t.Setenv("DOCKER_HOST", d.Host)
	port := 20000 + rand.IntN(10000)
	d.Run(t, "run", "-d", "--name", "db", "-p", fmt.Sprintf("%d:80", port), d.Image, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www")
	code, out, stderr := runCLI(t, "who", fmt.Sprint(port), "--netns", d.NS.Name, "--json")
	if code != ExitOK {
		t.Fatalf("who %d on a NAT-published port: exit %d; want 0 (held)\n%s%s", port, code, out, stderr)
	}
	var res whoResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Published) == 0 || res.Published[0].Container.Name != "db" {
		t.Fatalf("who %d: published %+v; want db's port", port, res.Published)
	}
	for _, p := range res.Holders {
		// Docker 28 and later hold the port in dockerd; older ones hold
		// nothing, and the verdict is "published".
		if p.Name != "dockerd" || p.ContainerInfo == nil || p.ContainerInfo.Name != "db" {
			t.Errorf("holder %d %s: container_info %+v; want dockerd holding it for db", p.PID, p.Name, p.ContainerInfo)
		}
	}
	if len(res.Holders) == 0 && res.Verdict != verdictPublished {
		t.Errorf("who %d: no holder, verdict %q; want %q", port, res.Verdict, verdictPublished)
	}
	code, out, _ = runCLI(t, "who", fmt.Sprint(port), "--netns", d.NS.Name)
	if code != ExitOK || strings.Count(out, "'docker stop db' frees the port") != 1 || strings.Contains(out, "'portctl kill") {
		t.Errorf("who %d text: exit %d; want 'docker stop db' once and no portctl kill:\n%s", port, code, out)
	}
	code, out, _ = runCLI(t, "who", fmt.Sprint(port), "--all-netns")
	if code != ExitOK || strings.Count(out, "'docker stop db' frees the port") != 1 {
		t.Errorf("who %d --all-netns: exit %d; want 'docker stop db' once:\n%s", port, code, out)
	}
	code, out, _ = runCLI(t, "ls", "--netns", d.NS.Name, "-p", fmt.Sprint(port))
	if len(res.Holders) > 0 && (code != ExitOK || !strings.Contains(out, "dockerd→db")) {
		t.Errorf("ls: exit %d; want dockerd→db in WHERE:\n%s", code, out)
	}
	code, out, _ = runCLI(t, "kill", fmt.Sprint(port), "--netns", d.NS.Name, "--yes")
	if len(res.Holders) > 0 && (code == ExitOK || !strings.Contains(out, "refused")) {
		t.Errorf("kill %d: exit %d; want dockerd refused:\n%s", port, code, out)
	}
	if out := d.Run(t, "inspect", "-f", "{{.State.Running}}", "db"); out != "true" {
		t.Errorf("container db after kill: running = %s", out)
	}
}

// waitListening waits until ls with args lists a listener.
func waitListening(t *testing.T, args ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, _ := runCLI(t, append([]string{"ls", "--json"}, args...)...)
		var res lsResult
		if code == ExitOK && json.Unmarshal([]byte(out), &res) == nil && len(res.Sockets) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens after 10s: ls %v", args)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestIntegrationPodman asks Podman through its Docker-compatible API: the
// port it publishes (held by conmon) and the container's own listener are
// named, in Podman's terms.
func TestIntegrationPodman(t *testing.T) {
	requireRoot(t)
	e := testnet.StartPodman(t)
	t.Setenv("DOCKER_HOST", e.Host)
	port := 20000 + rand.IntN(10000)
	e.Run(t, "run", "-d", "--name", "pweb", "-l", "com.docker.compose.project=blog", "-l", "com.docker.compose.service=www",
		"-p", fmt.Sprintf("%d:80", port), e.Image, "/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www")
	pid := e.PID(t, "pweb")
	waitListening(t, "--netns", e.NS.Name, "-p", fmt.Sprint(port))

	code, out, stderr := runCLI(t, "who", fmt.Sprint(port), "--netns", e.NS.Name, "--json")
	if code != ExitOK {
		t.Fatalf("who %d: exit %d, %s", port, code, stderr)
	}
	var res whoResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Published) == 0 || res.Published[0].Container.Name != "pweb" || res.Published[0].Container.Runtime != "podman" {
		t.Errorf("who %d: published %+v; want pweb, by podman", port, res.Published)
	}
	for _, p := range res.Holders {
		if p.ContainerInfo == nil || p.ContainerInfo.Name != "pweb" {
			t.Errorf("holder %d %s: container_info %+v; want pweb", p.PID, p.Name, p.ContainerInfo)
		}
	}
	code, out, _ = runCLI(t, "who", fmt.Sprint(port), "--netns", e.NS.Name)
	if code != ExitOK || strings.Count(out, "'podman compose -p blog stop www' frees the port") != 1 {
		t.Errorf("who %d text: exit %d; want Podman's compose advice once:\n%s", port, code, out)
	}
	code, out, _ = runCLI(t, "ls", "--all-netns", "-t", "-p", "80")
	if code != ExitOK || !strings.Contains(out, "podman:pweb") || !strings.Contains(out, fmt.Sprintf("busybox/%d", pid)) {
		t.Errorf("ls --all-netns: exit %d; want pweb's listener, held by busybox/%d:\n%s", code, pid, out)
	}
}
