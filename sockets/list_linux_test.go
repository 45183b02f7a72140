package sockets_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/sockets"
)

// The test binary doubles as a helper process, chosen by
// PORTCTL_SOCKETS_HELPER:
//
//	hold     keep the inherited file descriptor 3 open until stdin closes
//	listen   listen on the -host-ip/-host-port arguments (as docker-proxy
//	         would), print "ready", wait until stdin closes
func TestMain(m *testing.M) {
	switch os.Getenv("PORTCTL_SOCKETS_HELPER") {
	case "hold":
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		return
	case "listen":
		var ip, port string
		for i, a := range os.Args {
			if a == "-host-ip" && i+1 < len(os.Args) {
				ip = os.Args[i+1]
			}
			if a == "-host-port" && i+1 < len(os.Args) {
				port = os.Args[i+1]
			}
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		defer l.Close()
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		return
	}
	os.Exit(m.Run())
}

func list(t *testing.T, q sockets.Query) *sockets.Table {
	t.Helper()
	tb, err := sockets.List(context.Background(), q)
	if err != nil {
		t.Fatalf("List(%+v): %v", q, err)
	}
	return tb
}

func listenQuery(port uint16) sockets.Query {
	q := sockets.ListeningQuery()
	q.LocalPort, q.Processes = port, true
	return q
}

func pids(s sockets.Socket) []int {
	var out []int
	for _, p := range s.Processes {
		out = append(out, p.PID)
	}
	return out
}

func TestListAttributesOwnListeners(t *testing.T) {
	for _, tt := range []struct{ network, addr string }{
		{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}, {"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"},
	} {
		t.Run(tt.network, func(t *testing.T) {
			var port uint16
			if strings.HasPrefix(tt.network, "tcp") {
				l, err := net.Listen(tt.network, tt.addr)
				if err != nil {
					t.Skip(err)
				}
				defer l.Close()
				port = uint16(l.Addr().(*net.TCPAddr).Port)
			} else {
				c, err := net.ListenPacket(tt.network, tt.addr)
				if err != nil {
					t.Skip(err)
				}
				defer c.Close()
				port = uint16(c.LocalAddr().(*net.UDPAddr).Port)
			}
			tb := list(t, listenQuery(port))
			if len(tb.Sockets) != 1 {
				t.Fatalf("List on port %d = %d sockets; want 1: %+v", port, len(tb.Sockets), tb.Sockets)
			}
			s := tb.Sockets[0]
			if s.Local.Port() != port || s.Inode == 0 || s.UID != uint32(os.Getuid()) {
				t.Errorf("socket %+v", s)
			}
			wantFam := sockets.IPv4
			if strings.HasSuffix(tt.network, "6") {
				wantFam = sockets.IPv6
			}
			if s.Family() != wantFam {
				t.Errorf("family %v; want %v", s.Family(), wantFam)
			}
			if got := pids(s); len(got) != 1 || got[0] != os.Getpid() {
				t.Fatalf("holders %v; want [%d]", got, os.Getpid())
			}
			p := s.Processes[0]
			exe, _ := os.Executable()
			if p.Name == "" || len(p.Cmdline) == 0 || p.Exe != exe || time.Since(p.Start) > time.Hour || p.Start.After(time.Now().Add(time.Second)) {
				t.Errorf("process details %+v (exe %s)", p, exe)
			}
		})
	}
}

func TestListStatesAndKernelPortFilter(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client := uint16(c.LocalAddr().(*net.TCPAddr).Port)

	q := sockets.Query{Protos: sockets.TCP, Families: sockets.IPv4, States: sockets.AllStates, LocalPort: port}
	tb := list(t, q)
	var states []string
	for _, x := range tb.Sockets {
		if x.Local.Port() != port {
			t.Errorf("kernel filter let through local port %d", x.Local.Port())
		}
		states = append(states, x.State.Name())
	}
	if strings.Join(states, ",") != "listen,established" && strings.Join(states, ",") != "established,listen" {
		t.Errorf("states on port %d = %v; want listen and established", port, states)
	}
	q.LocalPort, q.RemotePort = client, port
	if tb := list(t, q); len(tb.Sockets) != 1 || tb.Sockets[0].Remote.Port() != port {
		t.Errorf("local %d remote %d filter = %+v", client, port, tb.Sockets)
	}
	q.States = sockets.StatesOf(sockets.Listen)
	q.LocalPort, q.RemotePort = port, 0
	if tb := list(t, q); len(tb.Sockets) != 1 || tb.Sockets[0].State != sockets.Listen {
		t.Errorf("listen-only query = %+v", tb.Sockets)
	}
}

func TestListTimeWait(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	c, _ := net.Dial("tcp4", l.Addr().String())
	s, _ := l.Accept()
	s.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	c.Read(make([]byte, 1))
	c.Close()
	l.Close()
	time.Sleep(50 * time.Millisecond)
	tb := list(t, sockets.Query{Protos: sockets.TCP, Families: sockets.IPv4, States: sockets.AllStates, LocalPort: port})
	use := sockets.ClassifyPort(tb.Sockets, port)
	if use.Verdict() != sockets.VerdictTimeWait || use.LastExpiry() <= 0 || use.LastExpiry() > 61*time.Second {
		t.Errorf("after the server closed first: verdict %s, expiry %s, sockets %+v", use.Verdict(), use.LastExpiry(), tb.Sockets)
	}
}

func TestIntegrationMPTCPListener(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/net/mptcp/enabled"); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Skip("MPTCP is not enabled in this kernel")
	}
	var lc net.ListenConfig
	lc.SetMultipathTCP(true)
	l, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	q := listenQuery(port)
	q.Protos = sockets.TCP | sockets.MPTCP
	tb := list(t, q)
	if len(tb.Sockets) != 1 || !tb.Sockets[0].MPTCP || tb.Sockets[0].Proto != sockets.TCP {
		t.Fatalf("MPTCP listener = %+v; want one TCP entry marked MPTCP", tb.Sockets)
	}
	if got := pids(tb.Sockets[0]); len(got) != 1 || got[0] != os.Getpid() {
		t.Errorf("MPTCP listener holders %v", got)
	}
	q.Protos = sockets.MPTCP
	if tb := list(t, q); len(tb.Sockets) != 1 {
		t.Errorf("MPTCP-only listing = %+v", tb.Sockets)
	}
}

func TestIntegrationForkAfterListen(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	child := sockets.StartHelper(t, "hold", os.Args[0], []string{"-test.run=^$"}, f)
	q := listenQuery(port)
	q.AllHolders = true
	tb := list(t, q)
	if len(tb.Sockets) != 1 {
		t.Fatalf("sockets %+v", tb.Sockets)
	}
	got := pids(tb.Sockets[0])
	want := map[int]bool{os.Getpid(): true, child.Process.Pid: true}
	if len(got) != 2 || !want[got[0]] || !want[got[1]] {
		t.Errorf("holders of a shared listener = %v; want this process and the child %d", got, child.Process.Pid)
	}
}

func TestIntegrationDockerProxyRecognised(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "docker-proxy")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp4", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	sockets.StartHelper(t, "listen", exe, []string{"-proto", "tcp", "-host-ip", "127.0.0.1", "-host-port", fmt.Sprint(port),
		"-container-ip", "172.17.0.2", "-container-port", "80", "-test.run=^$"})
	tb := list(t, listenQuery(uint16(port)))
	if len(tb.Sockets) != 1 || len(tb.Sockets[0].Processes) != 1 {
		t.Fatalf("docker-proxy's socket: %+v", tb.Sockets)
	}
	d := tb.Sockets[0].Processes[0].DockerProxy
	if d == nil || d.Container.String() != "172.17.0.2:80" || d.Host.Port() != uint16(port) {
		t.Errorf("docker-proxy not recognised: %+v", d)
	}
}

// TestIntegrationNetNS lists a listener that exists only in a network
// namespace the test makes.
func TestIntegrationNetNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2)")
	}
	name := fmt.Sprintf("portctl-test-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	exec.Command("ip", "-n", name, "link", "set", "lo", "up").Run()
	path := "/run/netns/" + name

	// Make the listener inside the namespace.
	var l net.Listener
	var err error
	testnet.In(t, name, func() { l, err = net.Listen("tcp4", "127.0.0.1:0") })
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)

	q := listenQuery(port)
	q.NetNS = path
	tb := list(t, q)
	if len(tb.Sockets) != 1 || len(tb.Sockets[0].Processes) != 1 || tb.Sockets[0].Processes[0].PID != os.Getpid() {
		t.Fatalf("in the namespace: %+v", tb.Sockets)
	}
	inode := tb.Sockets[0].Inode
	for _, s := range list(t, listenQuery(port)).Sockets {
		if s.Inode == inode {
			t.Errorf("the namespace's listener shows in the host's table: %+v", s)
		}
	}
	if _, err := sockets.List(context.Background(), sockets.Query{NetNS: "/run/netns/does-not-exist-portctl"}); err == nil {
		t.Error("List in a missing namespace succeeded")
	}
}

// TestIntegrationWorkers lists a server laid out as nginx or gunicorn lay
// theirs out: worker processes that share the listener, each holding
// connections of its own, more of them than attribution reads by number
// rather than by listing. Every holder of the listener must be found, and
// each connection's own worker.
func TestIntegrationWorkers(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	lf, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	const workers, conns = 3, 100
	want := map[uint64]int{} // connection inode -> its worker's PID
	holders := []int{os.Getpid()}
	for range workers {
		var files []*os.File
		for range conns {
			c, err := net.Dial("tcp4", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			s, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			f, err := s.(*net.TCPConn).File()
			s.Close()
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		// The listener last: at the worker's highest descriptor.
		child := sockets.StartHelper(t, "hold", os.Args[0], []string{"-test.run=^$"}, append(files, lf)...)
		holders = append(holders, child.Process.Pid)
		for _, f := range files {
			fi, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			want[fi.Sys().(*syscall.Stat_t).Ino] = child.Process.Pid
			f.Close()
		}
	}

	q := listenQuery(port)
	q.Protos, q.AllHolders = sockets.TCP, true
	tb := list(t, q)
	if len(tb.Sockets) != 1 {
		t.Fatalf("listeners on port %d: %+v", port, tb.Sockets)
	}
	got := pids(tb.Sockets[0])
	slices.Sort(got)
	slices.Sort(holders)
	if !slices.Equal(got, holders) {
		t.Errorf("holders of the listener = %v; want this process and the %d workers %v", got, workers, holders)
	}

	tb = list(t, sockets.Query{Protos: sockets.TCP, Families: sockets.IPv4, States: sockets.StatesOf(sockets.Established),
		LocalPort: port, Processes: true})
	if len(tb.Sockets) != workers*conns {
		t.Fatalf("%d connections on port %d; want %d", len(tb.Sockets), port, workers*conns)
	}
	for _, s := range tb.Sockets {
		if got := pids(s); len(got) != 1 || got[0] != want[s.Inode] {
			t.Errorf("connection %v→%v (inode %d) held by %v; want its worker %d", s.Local, s.Remote, s.Inode, got, want[s.Inode])
		}
	}
}
