package containers

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/sockets"
)

var (
	web = Container{
		ContainerInfo: sockets.ContainerInfo{ID: "40318c463c3a8ad65c90310d2302c2447048caa70908b60c0174d9e08e3a9942", Name: "web", Runtime: "docker", ComposeProject: "shop", ComposeService: "front"},
		Addrs:         []netip.Addr{netip.MustParseAddr("172.17.0.2")},
		Ports: []Port{
			{Proto: "tcp", Host: netip.MustParseAddrPort("0.0.0.0:18080"), Container: 80},
			{Proto: "tcp", Host: netip.MustParseAddrPort("[::]:18080"), Container: 80},
		},
	}
	db = Container{
		ContainerInfo: sockets.ContainerInfo{ID: "aa4f8cdf129a665370763437607932390c5c85ac4a7a1ab2977fd46ca6aac63c", Name: "db", Runtime: "podman"},
		Addrs:         []netip.Addr{netip.MustParseAddr("10.88.0.5"), netip.MustParseAddr("fd00::5")},
		Ports:         []Port{{Proto: "udp", Host: netip.MustParseAddrPort("127.0.0.1:5353"), Container: 53}},
	}
)

func TestIndexLookups(t *testing.T) {
	x := NewIndex([]Container{web, db})
	name := func(c *Container) string {
		if c == nil {
			return ""
		}
		return c.Name
	}
	for _, tt := range []struct {
		name string
		got  *Container
		want string
	}{
		{"full id", x.ByID(web.ID), "web"},
		{"short id", x.ByID("aa4f8cdf129a"), "db"},
		{"too short a prefix", x.ByID("aa4f8cdf"), ""},
		{"unknown id", x.ByID("ffffffffffff"), ""},
		{"empty id", x.ByID(""), ""},
		{"ipv4", x.ByAddr(netip.MustParseAddr("172.17.0.2")), "web"},
		{"mapped ipv4", x.ByAddr(netip.MustParseAddr("::ffff:172.17.0.2")), "web"},
		{"ipv6", x.ByAddr(netip.MustParseAddr("fd00::5")), "db"},
		{"unknown addr", x.ByAddr(netip.MustParseAddr("172.17.0.9")), ""},
		{"nil index", (*Index)(nil).ByID(web.ID), ""},
	} {
		if got := name(tt.got); got != tt.want {
			t.Errorf("%s: got %q; want %q", tt.name, got, tt.want)
		}
	}
	if got := x.Publishing("tcp", 18080); len(got) != 2 || got[0].Container.Name != "web" {
		t.Errorf("Publishing(tcp, 18080) = %+v; want web's two", got)
	}
	if got := x.Publishing("udp", 18080); len(got) != 0 {
		t.Errorf("Publishing(udp, 18080) = %+v; want none", got)
	}
	if got := x.Publishing("", 5353); len(got) != 1 || got[0].Container.Name != "db" {
		t.Errorf("Publishing(\"\", 5353) = %+v; want db", got)
	}
}

func TestPublisher(t *testing.T) {
	x := NewIndex([]Container{web, db})
	proxy := &sockets.Process{PID: 10, Name: "docker-proxy", DockerProxy: &sockets.DockerProxy{
		Proto: "tcp", Host: netip.MustParseAddrPort("0.0.0.0:18080"), Container: netip.MustParseAddrPort("172.17.0.2:80")}}
	dockerd := &sockets.Process{PID: 11, Name: "dockerd"}
	nginx := &sockets.Process{PID: 12, Name: "nginx"}
	for _, tt := range []struct {
		name  string
		p     *sockets.Process
		proto string
		port  uint16
		want  string
	}{
		{"docker-proxy by its target", proxy, "tcp", 18080, "web"},
		{"dockerd by the published port", dockerd, "tcp", 18080, "web"},
		{"dockerd, another protocol", dockerd, "udp", 18080, ""},
		{"dockerd, a port nobody publishes", dockerd, "tcp", 2375, ""},
		{"not an engine", nginx, "tcp", 18080, ""},
	} {
		got := ""
		if c := x.Publisher(tt.p, tt.proto, tt.port); c != nil {
			got = c.Name
		}
		if got != tt.want {
			t.Errorf("%s: Publisher = %q; want %q", tt.name, got, tt.want)
		}
	}
}

func TestAnnotate(t *testing.T) {
	x := NewIndex([]Container{web, db})
	inWeb := &sockets.Process{PID: 20, Name: "busybox", Container: web.ID, Runtime: "docker"}
	proxy := &sockets.Process{PID: 21, Name: "docker-proxy", DockerProxy: &sockets.DockerProxy{
		Proto: "tcp", Host: netip.MustParseAddrPort("[::]:18080"), Container: netip.MustParseAddrPort("172.17.0.2:80")}}
	gone := &sockets.Process{PID: 22, Name: "sh", Container: "0123456789abcdef0123", Runtime: "docker"}
	tbl := &sockets.Table{
		Sockets: []sockets.Socket{
			{Processes: []*sockets.Process{inWeb}},
			{Processes: []*sockets.Process{proxy}},
			{Processes: []*sockets.Process{inWeb, gone}},
		},
		Namespaces: []sockets.Namespace{{Container: db.ID, Runtime: "podman"}, {}},
	}
	if !Wanted(tbl) {
		t.Fatal("Wanted = false for a table with containers")
	}
	if n := x.Annotate(tbl); n != 3 {
		t.Errorf("Annotate named %d; want 3 (two processes and a namespace)", n)
	}
	if diff := cmp.Diff(&web.ContainerInfo, inWeb.ContainerInfo); diff != "" {
		t.Errorf("process in web (-want +got):\n%s", diff)
	}
	if proxy.ContainerInfo == nil || proxy.ContainerInfo.Name != "web" || proxy.DockerProxy.ContainerName != "web" {
		t.Errorf("docker-proxy: %+v, %+v; want web", proxy.ContainerInfo, proxy.DockerProxy)
	}
	if gone.ContainerInfo != nil {
		t.Errorf("a container the engine does not list got %+v", gone.ContainerInfo)
	}
	if ns := tbl.Namespaces[0].ContainerInfo; ns == nil || ns.Name != "db" {
		t.Errorf("namespace of db: %+v", ns)
	}
	if Wanted(&sockets.Table{Sockets: []sockets.Socket{{Processes: []*sockets.Process{{Name: "nginx"}}}}}) {
		t.Error("Wanted = true for a table without containers")
	}
}

func TestDefaultHosts(t *testing.T) {
	for _, tt := range []struct {
		dockerHost, xdg string
		want            []string
	}{
		{"tcp://10.0.0.1:2376", "/run/user/1000", []string{"tcp://10.0.0.1:2376"}},
		{"", "", []string{"unix:///var/run/docker.sock", "unix:///run/podman/podman.sock"}},
		{"", "/run/user/1000/", []string{"unix:///var/run/docker.sock", "unix:///run/podman/podman.sock", "unix:///run/user/1000/podman/podman.sock"}},
	} {
		if diff := cmp.Diff(tt.want, DefaultHosts(tt.dockerHost, tt.xdg)); diff != "" {
			t.Errorf("DefaultHosts(%q, %q) (-want +got):\n%s", tt.dockerHost, tt.xdg, diff)
		}
	}
}
