package sockets

import (
	"bytes"
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// socketInode parses a /proc/PID/fd link target "socket:[12345]".
func socketInode(link []byte) (uint64, bool) {
	const prefix = "socket:["
	if len(link) < len(prefix)+2 || string(link[:len(prefix)]) != prefix || link[len(link)-1] != ']' {
		return 0, false
	}
	var n uint64
	for _, c := range link[len(prefix) : len(link)-1] {
		if c < '0' || c > '9' || n > (1<<63)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// procStat is what portctl reads from /proc/PID/stat.
type procStat struct {
	Comm      string
	PPID      int
	StartTime uint64 // clock ticks after boot
}

// parseStat parses /proc/PID/stat. The command name is in parentheses and
// may itself contain spaces and parentheses, so the fields are found after
// the last ')'.
func parseStat(b []byte) (procStat, error) {
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return procStat{}, fmt.Errorf("sockets: /proc stat: no (comm)")
	}
	st := procStat{Comm: string(b[open+1 : closing])}
	f := strings.Fields(string(b[closing+1:]))
	// After comm: state(0) ppid(1) … starttime is field 22 of the line,
	// index 19 here.
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("sockets: /proc stat: %d fields after comm, want at least 20", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("sockets: /proc stat: ppid %q", f[1])
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("sockets: /proc stat: starttime %q", f[19])
	}
	st.PPID, st.StartTime = ppid, start
	return st, nil
}

// parseBootTime finds "btime SECONDS" in /proc/stat.
func parseBootTime(b []byte) (int64, error) {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			return strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		}
	}
	return 0, fmt.Errorf("sockets: /proc/stat has no btime")
}

// parseCmdline splits /proc/PID/cmdline at NUL bytes.
func parseCmdline(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}

// Cgroup is what a process's cgroup path says about where it runs.
type Cgroup struct {
	Path      string // the cgroup v2 path, or v1's name=systemd path
	Unit      string // systemd unit: nginx.service, session-3.scope
	Container string // container ID (64 hex digits, or as given)
	Runtime   string // docker, podman, containerd, cri-o, kubernetes
	Pod       string // Kubernetes pod UID
}

// parseCgroup reads /proc/PID/cgroup ("hierarchy:controllers:path" lines)
// and interprets the unified (v2) path, or the systemd v1 path.
func parseCgroup(b []byte) Cgroup {
	var p string
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			p = parts[2]
			break
		}
		if parts[1] == "name=systemd" && p == "" {
			p = parts[2]
		}
	}
	return CgroupFromPath(p)
}

// CgroupFromPath interprets a cgroup path such as
// "/system.slice/docker-<id>.scope" or
// "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope".
func CgroupFromPath(p string) Cgroup {
	c := Cgroup{Path: p}
	if p == "" || p == "/" {
		return c
	}
	parts := strings.Split(strings.Trim(p, "/"), "/")
	for i, part := range parts {
		if strings.Contains(part, "kubepods") {
			c.Runtime = "kubernetes"
		}
		if uid := podUID(part); uid != "" {
			c.Pod = uid
		}
		if part == "docker" && i+1 < len(parts) && isHexID(parts[i+1]) {
			c.Runtime, c.Container = "docker", parts[i+1]
		}
		name := strings.TrimSuffix(part, ".scope")
		for _, rt := range []struct{ prefix, runtime string }{
			{"docker-", "docker"}, {"libpod-", "podman"}, {"cri-containerd-", "containerd"},
			{"crio-", "cri-o"}, {"containerd-", "containerd"},
		} {
			if id, ok := strings.CutPrefix(name, rt.prefix); ok && isHexID(id) {
				c.Container = id
				if c.Runtime != "kubernetes" {
					c.Runtime = rt.runtime
				}
			}
		}
		if c.Runtime == "kubernetes" && c.Container == "" && isHexID(part) {
			c.Container = part
		}
	}
	// The systemd unit is the last component that names a service, socket
	// or scope, unless that scope is a container's.
	for i := len(parts) - 1; i >= 0; i-- {
		part := parts[i]
		if strings.HasSuffix(part, ".service") || strings.HasSuffix(part, ".socket") ||
			(strings.HasSuffix(part, ".scope") && c.Container == "") {
			c.Unit = part
			break
		}
	}
	return c
}

// podUID extracts the pod UID from a cgroup path component: "pod<uid>"
// (cgroupfs driver) or "…-pod<uid>.slice" (systemd driver, with '_' for
// '-'). Other components, "kubepods-burstable.slice" among them, give "".
func podUID(part string) string {
	part = strings.TrimSuffix(part, ".slice")
	var uid string
	switch {
	case strings.HasPrefix(part, "pod"):
		uid = part[3:]
	case strings.Contains(part, "-pod"):
		uid = part[strings.LastIndex(part, "-pod")+4:]
	default:
		return ""
	}
	uid = strings.ReplaceAll(uid, "_", "-")
	// A UID is 32 hex digits in five dash-separated groups.
	if len(uid) != 36 || strings.Count(uid, "-") != 4 {
		return ""
	}
	for _, c := range []byte(uid) {
		if c != '-' && !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return ""
		}
	}
	return uid
}

func isHexID(s string) bool {
	if len(s) < 12 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// DockerProxy describes Docker's userland proxy process, which holds a host
// port on behalf of a container.
type DockerProxy struct {
	Proto         string         `json:"protocol"`
	Host          netip.AddrPort `json:"host"`
	Container     netip.AddrPort `json:"container"`
	ContainerName string         `json:"container_name,omitempty"`
}

// ParseDockerProxy recognises the command line of docker-proxy
// ("docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080
// -container-ip 172.17.0.2 -container-port 80"). Flags may use one or two
// dashes and "=" or a separate value.
func ParseDockerProxy(args []string) (DockerProxy, bool) {
	if len(args) == 0 || path.Base(args[0]) != "docker-proxy" {
		return DockerProxy{}, false
	}
	vals := map[string]string{}
	for i := 1; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		if a == args[i] {
			continue
		}
		if k, v, ok := strings.Cut(a, "="); ok {
			vals[k] = v
			continue
		}
		if i+1 < len(args) {
			vals[a] = args[i+1]
			i++
		}
	}
	d := DockerProxy{Proto: vals["proto"]}
	hostIP, err1 := netip.ParseAddr(vals["host-ip"])
	hostPort, err2 := strconv.ParseUint(vals["host-port"], 10, 16)
	ctrIP, err3 := netip.ParseAddr(vals["container-ip"])
	ctrPort, err4 := strconv.ParseUint(vals["container-port"], 10, 16)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return DockerProxy{}, false
	}
	d.Host = netip.AddrPortFrom(hostIP, uint16(hostPort))
	d.Container = netip.AddrPortFrom(ctrIP, uint16(ctrPort))
	if d.Proto == "" {
		d.Proto = "tcp"
	}
	return d, true
}

// hasListenFDs reports whether a process environment (/proc/PID/environ,
// NUL-separated) carries systemd's socket-activation variables.
func hasListenFDs(environ []byte) bool {
	for _, kv := range bytes.Split(environ, []byte{0}) {
		if bytes.HasPrefix(kv, []byte("LISTEN_FDS=")) {
			return true
		}
	}
	return false
}
