package packaging

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/portctl/portctl/internal/cli"
	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/internal/testnet"
)

// maxExposure is the worst `systemd-analyze security` rating a unit may
// have: 2.0 is the top of its "OK" band.
const maxExposure = 2.0

// TestIntegrationPackaging runs packaging/build as a user would, with a
// real Docker daemon in a network namespace of the test's own for the
// image, and checks what it made as an installed system sees it: the
// versions, lintian, dpkg and rpm installs into scratch roots, every path,
// the manual pages, bash completion, the units (systemd-analyze verify
// and security), and the image running info and serve.
func TestIntegrationPackaging(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: installs into scratch roots, overlay mounts, a Docker daemon in a namespace of its own")
	}
	for _, tool := range []string{"git", "dpkg", "dpkg-deb", "lintian", "rpm", "man", "systemd-analyze", "bash", "zsh", "fish", "unshare", "gzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (test-deps.sh installs it)", tool)
		}
	}
	if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err != nil {
		t.Skip("needs bash-completion (test-deps.sh installs it)")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	docker := testnet.StartDocker(t, testnet.DockerOptions{})

	// Others may commit to a shared checkout while the build runs: the
	// binary's commit is HEAD as it was before or after.
	headBefore := strings.TrimSpace(run(t, "git", "-C", repo, "rev-parse", "HEAD"))
	out := t.TempDir()
	const image = "portctl-test/portctl:packaging"
	start := time.Now()
	cmd := exec.Command("bash", filepath.Join(repo, "packaging", "build"), "--out", out, "--image", image)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+docker.Host)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	made, err := cmd.Output()
	if err != nil {
		t.Fatalf("packaging/build: %v\n%s", err, stderr.String())
	}
	t.Logf("packaging/build took %v", time.Since(start).Round(100*time.Millisecond))
	var deb, rpm string
	for _, f := range strings.Fields(string(made)) {
		switch {
		case strings.HasSuffix(f, ".deb"):
			deb = f
		case strings.HasSuffix(f, ".rpm"):
			rpm = f
		}
	}
	if deb == "" || rpm == "" || !strings.Contains(string(made), image) {
		t.Fatalf("packaging/build made %q; want a .deb, an .rpm and the image %s", made, image)
	}
	bin := filepath.Join(out, "stage", runtime.GOARCH, "portctl")
	bi := versionOf(t, bin)
	debVersion := packageVersion(bi.Version)

	t.Run("Version", func(t *testing.T) {
		head := strings.TrimSpace(run(t, "git", "-C", repo, "rev-parse", "HEAD"))
		if bi.Commit == headBefore {
			head = headBefore
		}
		if bi.Commit != head {
			t.Errorf("version --json commit = %q; want HEAD %q", bi.Commit, head)
		}
		ct, _ := strconv.ParseInt(strings.TrimSpace(run(t, "git", "-C", repo, "log", "-1", "--format=%ct", head)), 10, 64)
		if d, err := time.Parse(time.RFC3339, bi.Date); err != nil || d.Unix() != ct {
			t.Errorf("version --json date = %q; want the commit's date %s", bi.Date, time.Unix(ct, 0).UTC().Format(time.RFC3339))
		}
		// A release tag on HEAD is the version; else Go's pseudo-version
		// names the commit.
		if tags := strings.Fields(run(t, "git", "-C", repo, "tag", "--points-at", head)); len(tags) > 0 {
			if v, _, _ := strings.Cut(bi.Version, "+"); !slices.Contains(tags, v) {
				t.Errorf("version = %q; want one of HEAD's tags %q", bi.Version, tags)
			}
		} else if !strings.Contains(bi.Version, "-"+head[:12]) {
			t.Errorf("version = %q; want Go's pseudo-version of commit %s", bi.Version, head[:12])
		}
		line := strings.TrimSpace(run(t, bin, "version"))
		for _, want := range []string{bi.Version, "commit " + head[:12], bi.Date} {
			if !strings.Contains(line, want) {
				t.Errorf("portctl version = %q; want it to name %q", line, want)
			}
		}
		if got := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Version")); got != debVersion {
			t.Errorf(".deb Version = %q; want %q (from the binary's %s)", got, debVersion, bi.Version)
		}
		if got := run(t, "rpm", "-qp", "--qf", "%{VERSION}", rpm); got != debVersion {
			t.Errorf(".rpm VERSION = %q; want %q (from the binary's %s)", got, debVersion, bi.Version)
		}
		if out, err := exec.Command("dpkg", "--compare-versions", debVersion, "gt", "0~").CombinedOutput(); err != nil {
			t.Errorf("%q is not a version dpkg orders: %v %s", debVersion, err, out)
		}
	})

	t.Run("Lintian", func(t *testing.T) {
		out, err := exec.Command("lintian", "--tag-display-limit", "0", "--fail-on", "error", deb).CombinedOutput()
		var errs, warns []string
		for _, l := range strings.Split(string(out), "\n") {
			switch {
			case strings.HasPrefix(l, "E: "):
				errs = append(errs, l)
			case strings.HasPrefix(l, "W: "):
				warns = append(warns, l)
			}
		}
		t.Logf("lintian: %d errors, %d warnings %q", len(errs), len(warns), warns)
		if err != nil || len(errs) > 0 {
			t.Errorf("lintian %s: %v\n%s", filepath.Base(deb), err, out)
		}
	})

	root := dpkgInstall(t, deb)

	t.Run("Paths", func(t *testing.T) {
		listing := run(t, "dpkg-deb", "-c", deb)
		n := 0
		for _, l := range strings.Split(strings.TrimSpace(listing), "\n") {
			f := strings.Fields(l)
			if len(f) < 6 {
				t.Fatalf("dpkg-deb -c line %q", l)
			}
			p := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
			if p == "" {
				continue
			}
			fi, err := os.Lstat(root + p)
			if err != nil {
				t.Errorf("%s: in the package, not installed: %v", p, err)
				continue
			}
			if got := fi.Mode().String(); got != f[0] {
				t.Errorf("%s: installed %s; the package says %s", p, got, f[0])
			}
			if f[1] != "root/root" {
				t.Errorf("%s: owned by %s in the package; want root/root", p, f[1])
			}
			n++
		}
		want := []string{"/usr/bin/portctl", "/usr/share/bash-completion/completions/portctl",
			"/usr/share/zsh/vendor-completions/_portctl", "/usr/share/fish/vendor_completions.d/portctl.fish",
			"/usr/share/portctl/registry/service-names-port-numbers.csv", "/usr/share/doc/portctl/copyright",
			"/usr/share/doc/portctl/changelog.gz", "/etc/portctl"}
		for _, u := range units {
			want = append(want, "/lib/systemd/system/"+u)
		}
		for _, page := range manPages() {
			want = append(want, "/usr/share/man/man1/"+page+".1.gz")
		}
		for _, p := range want {
			if _, err := os.Stat(root + p); err != nil {
				t.Errorf("%s: missing from the installed package: %v", p, err)
			}
		}
		got := dpkgFiles(t, root)
		for _, p := range want {
			if !slices.Contains(got, p) {
				t.Errorf("dpkg --root -L portctl has no %s", p)
			}
		}
		if info := run(t, root+"/usr/bin/portctl", "info", "443"); !strings.Contains(info, "https") {
			t.Errorf("the installed portctl info 443:\n%s\nwant https", info)
		}
		if csv, err := os.ReadFile(filepath.Join(repo, "registry/sources/iana/service-names-port-numbers.csv")); err != nil {
			t.Error(err)
		} else if inst, _ := os.ReadFile(root + "/usr/share/portctl/registry/service-names-port-numbers.csv"); !bytes.Equal(csv, inst) {
			t.Error("the installed IANA registry differs from registry/sources/iana, which the binary was generated from")
		}
		t.Logf("%d paths installed as the package lists them", n)
		rpmInstall(t, rpm)
	})

	t.Run("Man", func(t *testing.T) {
		pages, _ := filepath.Glob(root + "/usr/share/man/man1/*.1.gz")
		if len(pages) < len(manPages()) {
			t.Fatalf("%d manual pages installed; want %d", len(pages), len(manPages()))
		}
		for _, p := range pages {
			name := strings.TrimSuffix(filepath.Base(p), ".1.gz")
			c := exec.Command("man", "-l", p)
			c.Env = append(os.Environ(), "MANWIDTH=80", "LC_ALL=C.UTF-8")
			var stderr bytes.Buffer
			c.Stderr = &stderr
			out, err := c.Output()
			// A line troff cannot justify (a long URL as a flag's default)
			// is typography, not a fault of the page.
			complaints := regexp.MustCompile(`(?m)^troff: .*warning.*cannot adjust line\n`).ReplaceAllString(stderr.String(), "")
			if err != nil || complaints != "" {
				t.Errorf("man -l %s: %v\n%s", name, err, stderr.String())
				continue
			}
			// groff renders a hyphen as U+2010 in a UTF-8 locale, and
			// justifies lines with runs of spaces.
			text := strings.NewReplacer("\u2010", "-", "\u2212", "-").Replace(string(out))
			text = strings.Join(strings.Fields(text), " ")
			if !strings.Contains(text, "NAME") || !strings.Contains(text, name+" - ") || !strings.Contains(text, "SYNOPSIS") {
				t.Errorf("man -l %s renders no NAME %q or SYNOPSIS:\n%s", name, name+" - ", text)
			}
		}
	})

	t.Run("Completion", func(t *testing.T) {
		// bash-completion finds the script where the package put it
		// (XDG_DATA_DIRS points at the scratch root's /usr/share), as it
		// does for a real install.
		script := `source /usr/share/bash-completion/bash_completion
_completion_loader portctl
complete -p portctl
reply() { COMP_WORDS=("$@"); COMP_CWORD=$(($#-1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
  __start_portctl portctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" 2>/dev/null
  printf '%s\n' "${COMPREPLY[@]}"; }
echo '-- command'; reply portctl sc
echo '-- flag'; reply portctl scan --se`
		c := exec.Command("bash", "--norc", "--noprofile", "-c", script)
		c.Env = append(os.Environ(), "PATH="+root+"/usr/bin:"+os.Getenv("PATH"), "XDG_DATA_DIRS="+root+"/usr/share")
		out, err := c.CombinedOutput()
		text := string(out)
		if err != nil || !strings.Contains(text, "-F __start_portctl portctl") {
			t.Fatalf("bash: complete -p portctl: %v\n%s", err, text)
		}
		_, flags, _ := strings.Cut(text, "-- flag")
		if !regexp.MustCompile(`(?m)^scan\b`).MatchString(text) || !strings.Contains(flags, "--service") || !strings.Contains(flags, "--seed") {
			t.Errorf("bash completion of 'portctl sc' and 'portctl scan --se':\n%s\nwant scan, then --seed and --service", text)
		}

		// fish, from its vendor directory: the script asks the binary.
		fish := exec.Command("fish", "--no-config", "-c", `set -p fish_complete_path $ROOT/usr/share/fish/vendor_completions.d
complete -C 'portctl sc'; echo '-- flag'; complete -C 'portctl scan --se'`)
		fish.Env = append(os.Environ(), "ROOT="+root, "PATH="+root+"/usr/bin:"+os.Getenv("PATH"))
		out, err = fish.CombinedOutput()
		if text := string(out); err != nil || !regexp.MustCompile(`(?m)^scan\t`).MatchString(text) || !strings.Contains(text, "--seed\t") || !strings.Contains(text, "--service\t") {
			t.Errorf("fish completion of 'portctl sc' and 'portctl scan --se': %v\n%s\nwant scan, --seed and --service", err, text)
		}

		// zsh's compinit registers _portctl for portctl from the
		// package's vendor-completions directory.
		zsh := exec.Command("zsh", "-f", "-c", `fpath=($ROOT/usr/share/zsh/vendor-completions $fpath)
autoload -Uz compinit && compinit -u -d $DUMP && print -r -- "comp=${_comps[portctl]}" && autoload -Uz _portctl && whence -w _portctl`)
		zsh.Env = append(os.Environ(), "ROOT="+root, "DUMP="+filepath.Join(t.TempDir(), "zcompdump"))
		out, err = zsh.CombinedOutput()
		if text := string(out); err != nil || !strings.Contains(text, "comp=_portctl") || !strings.Contains(text, "_portctl: function") {
			t.Errorf("zsh compinit: %v\n%s\nwant portctl completed by the function _portctl", err, text)
		}
	})

	t.Run("Units", func(t *testing.T) {
		dir := t.TempDir()
		var paths []string
		for _, u := range units {
			b, err := os.ReadFile(root + "/lib/systemd/system/" + u)
			if err != nil {
				t.Fatal(err)
			}
			names := []string{u}
			if strings.HasSuffix(u, "@.service") {
				// A template, and an instance of it, as systemctl starts it.
				names = append(names, strings.Replace(u, "@.", "@web.", 1))
			}
			for _, n := range names {
				if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
					t.Fatal(err)
				}
				paths = append(paths, filepath.Join(dir, n))
			}
		}
		// verify checks that ExecStart's binary and the man pages of
		// Documentation= exist: the installed package is laid over /usr in
		// a mount namespace of the test's own, so the host stays as it is.
		script := `set -e
mount -t overlay overlay -o lowerdir="$ROOT/usr/bin:/usr/bin" /usr/bin
mount -t overlay overlay -o lowerdir="$ROOT/usr/share/man:/usr/share/man" /usr/share/man
for u in "$@"; do
  if ! systemd-analyze verify "$u"; then echo "FAILED: systemd-analyze verify $u"; exit 1; fi
done`
		c := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "bash", "-c", script, "verify"}, paths...)...)
		c.Env = append(os.Environ(), "ROOT="+root)
		if out, err := c.CombinedOutput(); err != nil {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		} else if len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify said:\n%s", out)
		}
		level := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`)
		var scores []string
		for _, u := range units {
			out, _ := exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", root+"/lib/systemd/system/"+u).CombinedOutput()
			m := level.FindSubmatch(out)
			if m == nil {
				t.Errorf("systemd-analyze security %s: no overall level:\n%s", u, out)
				continue
			}
			score, _ := strconv.ParseFloat(string(m[1]), 64)
			scores = append(scores, fmt.Sprintf("%s %s %s", u, m[1], m[2]))
			if score > maxExposure {
				t.Errorf("systemd-analyze security %s: %.1f %s; want %.1f or better:\n%s", u, score, m[2], maxExposure, out)
			}
		}
		t.Logf("systemd-analyze security --offline=yes: %s", strings.Join(scores, "; "))
	})

	t.Run("Image", func(t *testing.T) {
		insp := docker.Run(t, "image", "inspect", "-f", "{{.Config.User}} {{json .Config.Entrypoint}} {{len .RootFS.Layers}}", image)
		if insp != `65534:65534 ["/usr/bin/portctl"] 1` {
			t.Errorf("image %s: user, entrypoint, layers = %s; want 65534:65534 [\"/usr/bin/portctl\"] 1 (FROM scratch, the binary alone)", image, insp)
		}
		if v := docker.Run(t, "run", "--rm", image, "version", "--json"); !strings.Contains(v, `"version": "`+bi.Version+`"`) {
			t.Errorf("docker run %s version --json:\n%s\nwant version %s", image, v, bi.Version)
		}
		if info := docker.Run(t, "run", "--rm", "--read-only", image, "info", "443"); !strings.Contains(info, "https") {
			t.Errorf("docker run %s info 443:\n%s\nwant https", image, info)
		}
		// serve, published on the namespace's port 19753 (a namespace of
		// this test's own: nothing else listens there), answers from the
		// host across the veth pair.
		const token = "packaging-test-token-0123456789"
		docker.Run(t, "run", "-d", "--name", "serve", "--read-only", "-p", "19753:9753", image,
			"serve", "--listen", "0.0.0.0:9753", "--token", token)
		url := fmt.Sprintf("http://%s:19753/api/v1/sockets", docker.NS.Peer)
		client := &http.Client{Timeout: 2 * time.Second}
		body := getWithToken(t, client, docker, "serve", url, token)
		if !bytes.Contains(body, []byte(`"port": 9753`)) {
			t.Errorf("GET %s from the container: no socket on 9753 (its own listener):\n%.2000s", url, body)
		}

		// The README's run for the host's dashboard: host network and PID
		// namespace (here the daemon's namespace is the "host"), read-only,
		// root in the container with two capabilities and no others. It
		// must name the docker-proxy that publishes 19753, a process of the
		// "host" (dockerd itself since Docker 28).
		docker.Run(t, "run", "-d", "--name", "hostserve", "--network", "host", "--pid", "host", "--read-only",
			"--user", "0", "--cap-drop", "ALL", "--cap-add", "SYS_PTRACE", "--cap-add", "DAC_READ_SEARCH", image,
			"serve", "--listen", "0.0.0.0:19754", "--token", token)
		hostURL := fmt.Sprintf("http://%s:19754/api/v1/sockets", docker.NS.Peer)
		hostBody := getWithToken(t, client, docker, "hostserve", hostURL, token)
		// Docker 28 and later hold a published port in dockerd itself.
		proxy := bytes.Contains(hostBody, []byte(`"process": "docker-proxy"`)) || bytes.Contains(hostBody, []byte(`"process": "dockerd"`))
		if !proxy || !bytes.Contains(hostBody, []byte(`"port": 19753`)) {
			t.Errorf("GET %s (serve with --network host --pid host): no docker-proxy (or dockerd) holding 19753:\n%.3000s", hostURL, hostBody)
		}

		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: status %d; want 401", url, resp.StatusCode)
		}
	})
}

// getWithToken GETs url with the bearer token until it answers 200 (a
// minute at most) and returns the body; the container's log goes with a
// failure.
func getWithToken(t *testing.T, client *http.Client, docker *testnet.Engine, container, url, token string) []byte {
	t.Helper()
	var body []byte
	var status int
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
			if status == http.StatusOK {
				t.Logf("GET %s from the container's serve: %d, %d bytes", url, status, len(body))
				return body
			}
		}
		if time.Now().After(deadline) {
			logs, _ := exec.Command("docker", "-H", docker.Host, "logs", container).CombinedOutput()
			t.Fatalf("GET %s: %v, status %d: %s\ncontainer log:\n%s", url, err, status, body, logs)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// units are the systemd units the packages hold.
var units = []string{"portctl-serve.service", "portctl-forward@.service", "portctl-guard.service", "portctl-map@.service"}

// manPages names the page of every command the binary has, as cobra's
// doc package names them: portctl, portctl-who, portctl-firewall-block….
func manPages() []string {
	streams, _, _ := term.Test("")
	root := cli.NewRootCmd(streams)
	root.InitDefaultCompletionCmd()
	var names []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c != root {
			return
		}
		names = append(names, strings.ReplaceAll(c.CommandPath(), " ", "-"))
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return names
}

// buildInfo is what `portctl version --json` prints.
type buildInfo struct {
	Version, Commit, Date string
}

func versionOf(t *testing.T, bin string) buildInfo {
	t.Helper()
	var bi buildInfo
	if err := json.Unmarshal([]byte(run(t, bin, "version", "--json")), &bi); err != nil {
		t.Fatal(err)
	}
	return bi
}

// packageVersion is the version the packages must carry for a binary of
// Go version v: v0.0.0-20261207145600-0123456789ab+dirty is
// 0.0.0~20261207145600.0123456789ab.dirty (the ~ sorts it before 0.0.0, as
// Go orders its pseudo-versions), v1.2.3 is 1.2.3.
func packageVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	v, meta, _ := strings.Cut(v, "+")
	base, pre, _ := strings.Cut(v, "-")
	pre = strings.ReplaceAll(pre, "-", ".")
	if meta != "" {
		if pre != "" {
			pre += "."
		}
		pre += meta
	}
	if pre == "" {
		return base
	}
	return base + "~" + pre
}

// dpkgInstall installs deb with dpkg -i into a scratch root of its own.
func dpkgInstall(t *testing.T, deb string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "dpkg", "--root="+root, "-i", deb)
	if s := run(t, "dpkg-query", "--admindir="+root+"/var/lib/dpkg", "-W", "-f", "${db:Status-Status}", "portctl"); s != "installed" {
		t.Fatalf("dpkg --root -i: portctl is %q; want installed", s)
	}
	return root
}

// dpkgFiles lists the files dpkg says the package installed.
func dpkgFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	sc := bufio.NewScanner(strings.NewReader(run(t, "dpkg", "--root="+root, "-L", "portctl")))
	for sc.Scan() {
		files = append(files, sc.Text())
	}
	return files
}

// rpmInstall installs the .rpm into a scratch root of its own with rpm
// itself, and checks a few of its paths.
func rpmInstall(t *testing.T, rpm string) {
	t.Helper()
	root := t.TempDir()
	run(t, "rpm", "--root", root, "--initdb")
	run(t, "rpm", "--root", root, "-i", "--nodeps", "--nosignature", "--nodigest", rpm)
	list := run(t, "rpm", "--root", root, "-ql", "portctl")
	for _, p := range []string{"/usr/bin/portctl", "/usr/lib/systemd/system/portctl-serve.service",
		"/usr/share/zsh/site-functions/_portctl", "/usr/share/man/man1/portctl-who.1.gz"} {
		if !strings.Contains(list, p+"\n") {
			t.Errorf("rpm -ql portctl has no %s", p)
		}
		if _, err := os.Stat(root + p); err != nil {
			t.Errorf("rpm -i: %v", err)
		}
	}
}

// run runs a command and returns its standard output, failing the test
// when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	c := exec.Command(name, args...)
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}
