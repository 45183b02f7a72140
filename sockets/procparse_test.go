package sockets

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSocketInode(t *testing.T) {
	tests := []struct {
		in     string
		want   uint64
		wantOK bool
	}{
		{"socket:[12345]", 12345, true},
		{"socket:[0]", 0, true},
		{"socket:[1]", 1, true},
		{"socket:[18446744073709551]", 18446744073709551, true},
		{"socket:[9223372036854775807]", 9223372036854775807, true},
		{"socket:[]", 0, false},
		{"pipe:[1]", 0, false},
		{"socket:[12a]", 0, false},
		{"socket:[-1]", 0, false},
		{"socket:[ 1]", 0, false},
		{"socket:[99999999999999999999999]", 0, false},
		{"socket:[18446744073709551616]", 0, false}, // 2^64
		{"socket:[12345", 0, false},
		{"socket:12345]", 0, false},
		{"anon_inode:[eventpoll]", 0, false},
		{"/dev/null", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := socketInode([]byte(tt.in))
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("socketInode(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

// statLine builds a /proc/PID/stat line (proc(5)): (1) pid (2) comm
// (3) state (4) ppid … (21) itrealvalue (22) starttime (23) vsize …
func statLine(comm string, ppid string, start string) string {
	f := []string{
		"S", ppid, "100", "100", "0", "-1", "4194560", // state … flags (3-9)
		"1000", "0", "0", "0", "5", "3", "0", "0", // minflt … cstime (10-17)
		"20", "0", "1", "0", start, // priority, nice, num_threads, itrealvalue, starttime (18-22)
		"12345678", "345", "18446744073709551615", // vsize, rss, rsslim (23-25)
	}
	return "4242 (" + comm + ") " + strings.Join(f, " ") + " 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
}

// realStat is /proc/self/stat of cat(1) on Linux 6.18.
const realStat = "22965 (cat) R 22961 22961 11039 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 224858 3133440 388 " +
	"18446744073709551615 94055246782464 94055246802345 140729148903568 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 " +
	"94055246818352 94055246819968 94055323975680 140729148905966 140729148905986 140729148905986 140729148907499 0\n"

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{"real line", realStat, procStat{Comm: "cat", PPID: 22961, StartTime: 224858}, false},
		{"ordinary comm", statLine("nginx", "1", "987654"), procStat{Comm: "nginx", PPID: 1, StartTime: 987654}, false},
		{"comm with spaces", statLine("tmux: server", "77", "5"), procStat{Comm: "tmux: server", PPID: 77, StartTime: 5}, false},
		{"comm with parentheses", statLine("(my (weird) prog)", "2", "3"), procStat{Comm: "(my (weird) prog)", PPID: 2, StartTime: 3}, false},
		{"comm that looks like fields", statLine("a) R 9 9", "2", "3"), procStat{Comm: "a) R 9 9", PPID: 2, StartTime: 3}, false},
		{"empty comm", statLine("", "0", "0"), procStat{Comm: "", PPID: 0, StartTime: 0}, false},
		{"no trailing newline", strings.TrimSuffix(statLine("sshd", "1", "42"), "\n"), procStat{Comm: "sshd", PPID: 1, StartTime: 42}, false},
		{"short line", "4242 (sshd) S 1 4242 4242 0 -1", procStat{}, true},
		{"nothing after comm", "4242 (sshd)", procStat{}, true},
		{"non-numeric ppid", statLine("sshd", "one", "42"), procStat{}, true},
		{"non-numeric starttime", statLine("sshd", "1", "soon"), procStat{}, true},
		{"negative starttime", statLine("sshd", "1", "-5"), procStat{}, true},
		{"no parentheses", "4242 sshd S 1 2 3", procStat{}, true},
		{"closing before opening", "4242 )sshd( S 1", procStat{}, true},
		{"empty", "", procStat{}, true},
	}
	for _, tt := range tests {
		got, err := parseStat([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: parseStat(%q) error = %v; want error %v", tt.name, tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: parseStat(%q) = %+v; want %+v", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestParseBootTime(t *testing.T) {
	const procStat = "cpu  1 2 3 4 5 6 7 0 0 0\ncpu0 1 2 3 4 5 6 7 0 0 0\nintr 12345 0 1\nctxt 987\nbtime 1700000000\nprocesses 4242\nprocs_running 2\n"
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{"proc stat", procStat, 1700000000, false},
		{"first line", "btime 1\n", 1, false},
		{"trailing space", "btime 1700000000  \n", 1700000000, false},
		{"no newline", "btime 42", 42, false},
		{"missing", "cpu 1 2 3\nctxt 5\n", 0, true},
		{"not a number", "btime soon\n", 0, true},
		{"empty value", "btime \n", 0, true},
		{"prefix only in another word", "xbtime 5\n", 0, true},
		{"empty", "", 0, true},
	}
	for _, tt := range tests {
		got, err := parseBootTime([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: parseBootTime(%q) = %d, %v; want %d, error %v", tt.name, tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseCmdline(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"a\x00b\x00", []string{"a", "b"}},
		{"/usr/sbin/nginx\x00-g\x00daemon off;\x00", []string{"/usr/sbin/nginx", "-g", "daemon off;"}},
		{"no-nul", []string{"no-nul"}},
		{"a\x00\x00b\x00", []string{"a", "", "b"}},
		{"nginx: master process /usr/sbin/nginx", []string{"nginx: master process /usr/sbin/nginx"}}, // rewritten argv
		{"", nil},
		{"\x00", nil},
		{"\x00\x00\x00", nil},
	}
	for _, tt := range tests {
		got := parseCmdline([]byte(tt.in))
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("parseCmdline(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

const (
	hexID  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	hexID2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	podID  = "1234abcd-5678-90ef-1234-567890abcdef"
)

func TestCgroupFromPath(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Cgroup
	}{
		{"root", "/", Cgroup{Path: "/"}},
		{"empty", "", Cgroup{}},
		{"systemd service", "/system.slice/nginx.service", Cgroup{Path: "/system.slice/nginx.service", Unit: "nginx.service"}},
		{"socket unit", "/system.slice/ssh.socket", Cgroup{Path: "/system.slice/ssh.socket", Unit: "ssh.socket"}},
		{
			"user session", "/user.slice/user-1000.slice/session-3.scope",
			Cgroup{Path: "/user.slice/user-1000.slice/session-3.scope", Unit: "session-3.scope"},
		},
		{
			"user service", "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-1234.scope",
			Cgroup{Path: "/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-firefox-1234.scope", Unit: "app-gnome-firefox-1234.scope"},
		},
		{"slice only", "/system.slice", Cgroup{Path: "/system.slice"}},
		{"init scope", "/init.scope", Cgroup{Path: "/init.scope", Unit: "init.scope"}},
		{
			"docker systemd driver", "/system.slice/docker-" + hexID + ".scope",
			Cgroup{Path: "/system.slice/docker-" + hexID + ".scope", Runtime: "docker", Container: hexID},
		},
		{
			"docker cgroupfs driver", "/docker/" + hexID,
			Cgroup{Path: "/docker/" + hexID, Runtime: "docker", Container: hexID},
		},
		{
			"docker directory without an id", "/docker/buildkit",
			Cgroup{Path: "/docker/buildkit"},
		},
		{
			"podman", "/machine.slice/libpod-" + hexID + ".scope",
			Cgroup{Path: "/machine.slice/libpod-" + hexID + ".scope", Runtime: "podman", Container: hexID},
		},
		{
			"podman conmon is not the container", "/machine.slice/libpod-conmon-" + hexID + ".scope",
			Cgroup{Path: "/machine.slice/libpod-conmon-" + hexID + ".scope", Unit: "libpod-conmon-" + hexID + ".scope"},
		},
		{
			"containerd", "/system.slice/containerd-" + hexID + ".scope",
			Cgroup{Path: "/system.slice/containerd-" + hexID + ".scope", Runtime: "containerd", Container: hexID},
		},
		{
			"cri-o", "/machine.slice/crio-" + hexID + ".scope",
			Cgroup{Path: "/machine.slice/crio-" + hexID + ".scope", Runtime: "cri-o", Container: hexID},
		},
		{
			"short id is not a container", "/system.slice/docker-abc.scope",
			Cgroup{Path: "/system.slice/docker-abc.scope", Unit: "docker-abc.scope"},
		},
		{
			"kubernetes systemd driver",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234abcd_5678_90ef_1234_567890abcdef.slice/cri-containerd-" + hexID + ".scope",
			Cgroup{
				Path:    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234abcd_5678_90ef_1234_567890abcdef.slice/cri-containerd-" + hexID + ".scope",
				Runtime: "kubernetes", Pod: podID, Container: hexID,
			},
		},
		{
			"kubernetes systemd driver guaranteed pod",
			"/kubepods.slice/kubepods-pod1234abcd_5678_90ef_1234_567890abcdef.slice/crio-" + hexID + ".scope",
			Cgroup{
				Path:    "/kubepods.slice/kubepods-pod1234abcd_5678_90ef_1234_567890abcdef.slice/crio-" + hexID + ".scope",
				Runtime: "kubernetes", Pod: podID, Container: hexID,
			},
		},
		{
			"kubernetes docker runtime",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234abcd_5678_90ef_1234_567890abcdef.slice/docker-" + hexID + ".scope",
			Cgroup{
				Path:    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234abcd_5678_90ef_1234_567890abcdef.slice/docker-" + hexID + ".scope",
				Runtime: "kubernetes", Pod: podID, Container: hexID,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CgroupFromPath(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("CgroupFromPath(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestCgroupFromPathKubepodsCgroupfs covers the kubelet's cgroupfs driver,
// whose pod directory is "pod<uid>" under the QoS class.
func TestCgroupFromPathKubepodsCgroupfs(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Cgroup
	}{
		{
			"besteffort", "/kubepods/besteffort/pod" + podID + "/" + hexID,
			Cgroup{Path: "/kubepods/besteffort/pod" + podID + "/" + hexID, Runtime: "kubernetes", Pod: podID, Container: hexID},
		},
		{
			"burstable", "/kubepods/burstable/pod" + podID + "/" + hexID2,
			Cgroup{Path: "/kubepods/burstable/pod" + podID + "/" + hexID2, Runtime: "kubernetes", Pod: podID, Container: hexID2},
		},
		{
			"guaranteed (no QoS directory)", "/kubepods/pod" + podID + "/" + hexID,
			Cgroup{Path: "/kubepods/pod" + podID + "/" + hexID, Runtime: "kubernetes", Pod: podID, Container: hexID},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CgroupFromPath(tt.in)
			if got.Runtime != tt.want.Runtime || got.Container != tt.want.Container || got.Unit != "" {
				t.Errorf("CgroupFromPath(%q) = %+v; want %+v", tt.in, got, tt.want)
			}
			if got.Pod != tt.want.Pod {
				t.Errorf("CgroupFromPath(%q).Pod = %q; want %q", tt.in, got.Pod, tt.want.Pod)
			}
		})
	}
}

// TestCgroupFromPathCgroupRoot covers a kubelet with --cgroup-root (kind
// runs its kubelet under /kubelet): every component then starts with
// "kubelet-kubepods", not "kubepods".
func TestCgroupFromPathCgroupRoot(t *testing.T) {
	in := "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/" +
		"kubelet-kubepods-besteffort-pod1234abcd_5678_90ef_1234_567890abcdef.slice/cri-containerd-" + hexID + ".scope"
	want := Cgroup{Path: in, Runtime: "kubernetes", Pod: podID, Container: hexID}
	got := CgroupFromPath(in)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CgroupFromPath(%q) mismatch (-want +got):\n%s", in, diff)
	}
}

// TestCgroupFromPathQoSSliceIsNotAPod: a process in a QoS-class slice but
// no pod must not get a pod UID cut out of the slice's name.
func TestCgroupFromPathQoSSliceIsNotAPod(t *testing.T) {
	for _, in := range []string{
		"/kubepods.slice",
		"/kubepods.slice/kubepods-burstable.slice",
		"/kubepods.slice/kubepods-besteffort.slice",
		"/kubepods/besteffort",
	} {
		got := CgroupFromPath(in)
		if got.Runtime != "kubernetes" {
			t.Errorf("CgroupFromPath(%q).Runtime = %q; want kubernetes", in, got.Runtime)
		}
		if got.Pod != "" {
			t.Errorf("CgroupFromPath(%q).Pod = %q; want \"\"", in, got.Pod)
		}
	}
}

func TestParseCgroup(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Cgroup
	}{
		{"v2 service", "0::/system.slice/nginx.service\n", Cgroup{Path: "/system.slice/nginx.service", Unit: "nginx.service"}},
		{
			"v2 session", "0::/user.slice/user-1000.slice/session-3.scope\n",
			Cgroup{Path: "/user.slice/user-1000.slice/session-3.scope", Unit: "session-3.scope"},
		},
		{
			"v2 docker", "0::/system.slice/docker-" + hexID + ".scope\n",
			Cgroup{Path: "/system.slice/docker-" + hexID + ".scope", Runtime: "docker", Container: hexID},
		},
		{
			"v1",
			"12:pids:/system.slice/ssh.service\n11:memory:/system.slice/ssh.service\n" +
				"2:cpu,cpuacct:/system.slice/ssh.service\n1:name=systemd:/system.slice/ssh.service\n",
			Cgroup{Path: "/system.slice/ssh.service", Unit: "ssh.service"},
		},
		{
			"v1 docker cgroupfs",
			"4:devices:/docker/" + hexID + "\n1:name=systemd:/docker/" + hexID + "\n",
			Cgroup{Path: "/docker/" + hexID, Runtime: "docker", Container: hexID},
		},
		{
			"hybrid: the unified line wins",
			"1:name=systemd:/system.slice/old.service\n0::/system.slice/cron.service\n",
			Cgroup{Path: "/system.slice/cron.service", Unit: "cron.service"},
		},
		{"root", "0::/\n", Cgroup{Path: "/"}},
		{"empty", "", Cgroup{}},
		{"garbage", "not a cgroup file\n", Cgroup{}},
		{"v1 without systemd", "3:cpu:/foo\n", Cgroup{}},
		{"path with colons", "0::/a:b/x.service\n", Cgroup{Path: "/a:b/x.service", Unit: "x.service"}},
		{"no newline", "0::/system.slice/nginx.service", Cgroup{Path: "/system.slice/nginx.service", Unit: "nginx.service"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseCgroup([]byte(tt.in))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseCgroup(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseDockerProxy(t *testing.T) {
	tests := []struct {
		name   string
		in     []string
		want   DockerProxy
		wantOK bool
	}{
		{
			"typical",
			[]string{"/usr/bin/docker-proxy", "-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port", "8080", "-container-ip", "172.17.0.2", "-container-port", "80"},
			DockerProxy{Proto: "tcp", Host: netip.MustParseAddrPort("0.0.0.0:8080"), Container: netip.MustParseAddrPort("172.17.0.2:80")},
			true,
		},
		{
			"with -use-listen-fd (Docker 28)",
			[]string{"/usr/bin/docker-proxy", "-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port", "8080", "-container-ip", "172.17.0.2", "-container-port", "80", "-use-listen-fd"},
			DockerProxy{Proto: "tcp", Host: netip.MustParseAddrPort("0.0.0.0:8080"), Container: netip.MustParseAddrPort("172.17.0.2:80")},
			true,
		},
		{
			"bare name, udp",
			[]string{"docker-proxy", "-proto", "udp", "-host-ip", "127.0.0.1", "-host-port", "53", "-container-ip", "172.18.0.3", "-container-port", "53"},
			DockerProxy{Proto: "udp", Host: netip.MustParseAddrPort("127.0.0.1:53"), Container: netip.MustParseAddrPort("172.18.0.3:53")},
			true,
		},
		{
			"double dashes",
			[]string{"docker-proxy", "--proto", "tcp", "--host-ip", "0.0.0.0", "--host-port", "443", "--container-ip", "172.17.0.5", "--container-port", "8443"},
			DockerProxy{Proto: "tcp", Host: netip.MustParseAddrPort("0.0.0.0:443"), Container: netip.MustParseAddrPort("172.17.0.5:8443")},
			true,
		},
		{
			"equals form",
			[]string{"docker-proxy", "-proto=tcp", "--host-ip=0.0.0.0", "-host-port=9000", "-container-ip=172.17.0.9", "--container-port=9001"},
			DockerProxy{Proto: "tcp", Host: netip.MustParseAddrPort("0.0.0.0:9000"), Container: netip.MustParseAddrPort("172.17.0.9:9001")},
			true,
		},
		{
			"ipv6",
			[]string{"/usr/bin/docker-proxy", "-proto", "tcp", "-host-ip", "::", "-host-port", "8080", "-container-ip", "fd00::2", "-container-port", "80"},
			DockerProxy{Proto: "tcp", Host: netip.MustParseAddrPort("[::]:8080"), Container: netip.MustParseAddrPort("[fd00::2]:80")},
			true,
		},
		{
			"no proto means tcp",
			[]string{"docker-proxy", "-host-ip", "0.0.0.0", "-host-port", "8080", "-container-ip", "172.17.0.2", "-container-port", "80"},
			DockerProxy{Proto: "tcp", Host: netip.MustParseAddrPort("0.0.0.0:8080"), Container: netip.MustParseAddrPort("172.17.0.2:80")},
			true,
		},
		{
			"missing container-port",
			[]string{"docker-proxy", "-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port", "8080", "-container-ip", "172.17.0.2"},
			DockerProxy{}, false,
		},
		{
			"flag without its value",
			[]string{"docker-proxy", "-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port", "8080", "-container-ip", "172.17.0.2", "-container-port"},
			DockerProxy{}, false,
		},
		{
			"port out of range",
			[]string{"docker-proxy", "-host-ip", "0.0.0.0", "-host-port", "65536", "-container-ip", "172.17.0.2", "-container-port", "80"},
			DockerProxy{}, false,
		},
		{
			"bad address",
			[]string{"docker-proxy", "-host-ip", "localhost", "-host-port", "80", "-container-ip", "172.17.0.2", "-container-port", "80"},
			DockerProxy{}, false,
		},
		{
			"not docker-proxy",
			[]string{"/usr/sbin/nginx", "-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port", "8080", "-container-ip", "172.17.0.2", "-container-port", "80"},
			DockerProxy{}, false,
		},
		{
			"name that only contains docker-proxy",
			[]string{"/opt/my-docker-proxy", "-host-ip", "0.0.0.0", "-host-port", "8080", "-container-ip", "172.17.0.2", "-container-port", "80"},
			DockerProxy{}, false,
		},
		{"empty", nil, DockerProxy{}, false},
		{"only the name", []string{"docker-proxy"}, DockerProxy{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseDockerProxy(tt.in)
			if ok != tt.wantOK {
				t.Fatalf("ParseDockerProxy(%q) ok = %v; want %v", tt.in, ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got, equateAddrs); diff != "" {
				t.Errorf("ParseDockerProxy(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestHasListenFDs(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"PATH=/usr/bin\x00LISTEN_PID=42\x00LISTEN_FDS=1\x00LISTEN_FDNAMES=http\x00", true},
		{"LISTEN_FDS=2", true},
		{"LISTEN_FDS=", true},
		{"PATH=/usr/bin\x00HOME=/root\x00", false},
		{"LISTEN_PID=42\x00", false},
		{"XLISTEN_FDS=1\x00", false},
		{"FOO=LISTEN_FDS=1\x00", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := hasListenFDs([]byte(tt.in)); got != tt.want {
			t.Errorf("hasListenFDs(%q) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	for _, s := range []string{
		statLine("nginx", "1", "987654"), statLine("(my (weird) prog)", "2", "3"),
		"4242 (sshd) S 1", "", "(", ")", ")(", "1 () 2", statLine("a", "-1", "99999999999999999999"),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStat(b)
		if err != nil {
			return
		}
		// The comm is what lies between the first '(' and the last ')'.
		if !strings.Contains(string(b), "("+st.Comm+")") {
			t.Fatalf("parseStat(%q) comm %q is not in the input's parentheses", b, st.Comm)
		}
	})
}

func FuzzCgroupFromPath(f *testing.F) {
	for _, s := range []string{
		"", "/", "/system.slice/nginx.service", "/user.slice/user-1000.slice/session-3.scope",
		"/system.slice/docker-" + hexID + ".scope", "/docker/" + hexID, "/machine.slice/libpod-" + hexID + ".scope",
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234abcd_5678_90ef_1234_567890abcdef.slice/cri-containerd-" + hexID + ".scope",
		"/kubepods/besteffort/pod" + podID + "/" + hexID, "kubepods", "/pod", "//", "/.scope",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c := CgroupFromPath(p)
		if c.Path != p {
			t.Fatalf("CgroupFromPath(%q).Path = %q; want the input", p, c.Path)
		}
		if c.Unit != "" {
			if !strings.HasSuffix(c.Unit, ".service") && !strings.HasSuffix(c.Unit, ".socket") && !strings.HasSuffix(c.Unit, ".scope") {
				t.Fatalf("CgroupFromPath(%q).Unit = %q; want a .service, .socket or .scope", p, c.Unit)
			}
			if strings.Contains(c.Unit, "/") || !strings.Contains(p, c.Unit) {
				t.Fatalf("CgroupFromPath(%q).Unit = %q; want one component of the path", p, c.Unit)
			}
		}
		if c.Container != "" && !strings.Contains(p, c.Container) {
			t.Fatalf("CgroupFromPath(%q).Container = %q; not in the path", p, c.Container)
		}
		if c.Container != "" && c.Runtime == "" {
			t.Fatalf("CgroupFromPath(%q) = %+v: a container without a runtime", p, c)
		}
		// parseCgroup reads the same path from a v2 line.
		if !strings.Contains(p, "\n") {
			if got := parseCgroup([]byte("0::" + p + "\n")); got != c {
				t.Fatalf("parseCgroup(%q) = %+v; want %+v", "0::"+p, got, c)
			}
		}
	})
}

func FuzzParseDockerProxy(f *testing.F) {
	f.Add("/usr/bin/docker-proxy\x00-proto\x00tcp\x00-host-ip\x000.0.0.0\x00-host-port\x008080\x00-container-ip\x00172.17.0.2\x00-container-port\x0080\x00-use-listen-fd")
	f.Add("docker-proxy\x00--host-ip=::\x00--host-port=1\x00--container-ip=fd00::2\x00--container-port=2")
	f.Add("docker-proxy\x00-proto\x00")
	f.Add("")
	f.Fuzz(func(t *testing.T, cmdline string) {
		args := parseCmdline([]byte(cmdline))
		d, ok := ParseDockerProxy(args)
		if !ok {
			if d != (DockerProxy{}) {
				t.Fatalf("ParseDockerProxy(%q) = %+v, false; want the zero value", args, d)
			}
			return
		}
		if !d.Host.IsValid() || !d.Container.IsValid() || d.Proto == "" {
			t.Fatalf("ParseDockerProxy(%q) = %+v, true; want valid addresses and a protocol", args, d)
		}
	})
}
