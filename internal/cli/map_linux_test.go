package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/portmap"
	"github.com/portctl/portctl/web"
)

// inLAN runs portctl ARGS inside the router's lan namespace, as its own
// process (its goroutines' sockets must be made there too), and returns
// its exit code and output.
func inLAN(t *testing.T, r *testnet.Router, args ...string) (int, string, string) {
	t.Helper()
	return inLANEnv(t, r, nil, args...)
}

// inLANEnv is inLAN with env added to the environment.
func inLANEnv(t *testing.T, r *testnet.Router, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", r.LAN, os.Args[0], "-test.run=^$", "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), "PORTCTL_TEST_HELPER=portctl"), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("portctl %q: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// TestIntegrationMapProbe: map probe against Debian's miniupnpd finds
// NAT-PMP, PCP and UPnP IGD and the router's external address, with no
// double NAT; the latency of 20 probes is logged.
func TestIntegrationMapProbe(t *testing.T) {
	r := testnet.NewRouter(t)
	code, out, errOut := inLAN(t, r, "map", "probe", "--gateway", r.RouterLAN.String(), "--json")
	if code != 0 {
		t.Fatalf("map probe: exit %d: %s%s", code, out, errOut)
	}
	var rep probeResult
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("map probe --json: %v\n%s", err, out)
	}
	for _, p := range rep.Protocols {
		if !p.Answered || p.External != r.External {
			t.Errorf("%s: %+v; want an answer with external address %s", p.Protocol, p, r.External)
		}
	}
	if rep.DoubleNAT != "" {
		t.Errorf("double NAT %q behind a router with a public address", rep.DoubleNAT)
	}
	// The time the slowest protocol took, of 20 probes.
	var took []time.Duration
	for range 20 {
		_, out, _ := inLAN(t, r, "map", "probe", "--gateway", r.RouterLAN.String(), "--json")
		var rep probeResult
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		var slowest time.Duration
		for _, p := range rep.Protocols {
			slowest = max(slowest, p.Latency)
		}
		took = append(took, slowest)
	}
	slices.Sort(took)
	t.Logf("map probe, all three protocols at once: median %s, slowest %s (of 20)", took[10].Round(100*time.Microsecond), took[19].Round(100*time.Microsecond))
}

// mapAddProc is a `portctl map add` running in the router's lan, its
// output's lines on a channel.
type mapAddProc struct {
	cmd     *exec.Cmd
	lines   chan string
	done    chan error
	stopped bool
}

// startMapAdd starts portctl ARGS (a map add that stays) in the lan, with
// env added to its environment; it is killed when the test ends unless
// stopped.
func startMapAdd(t *testing.T, r *testnet.Router, env []string, args ...string) *mapAddProc {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", r.LAN, os.Args[0], "-test.run=^$", "--"}, args...)...)
	cmd.Env = append(append(os.Environ(), "PORTCTL_TEST_HELPER=portctl"), env...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &mapAddProc{cmd: cmd, lines: make(chan string, 16), done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		if !p.stopped {
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// mapped checks that map add's first line says it mapped ext, within 15 s.
func (p *mapAddProc) mapped(t *testing.T, ext netip.AddrPort) {
	t.Helper()
	select {
	case l := <-p.lines:
		if !strings.Contains(l, "mapped "+ext.String()) {
			t.Fatalf("first line %q; want it mapped to %s", l, ext)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("map add printed nothing in 15s")
	}
}

// interrupt sends Ctrl-C and waits, at most 10 s, for a clean exit.
func (p *mapAddProc) interrupt(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	p.stopped = true
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("map add after Ctrl-C: %v", err)
		}
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatal("map add did not exit in 10s after Ctrl-C")
	}
}

// mapAddReaches runs portctl ARGS (a map add) in the lan and checks that
// its first line says it mapped ext, that a connection from the wan to
// ext then reaches the lan's listener (the time to that is logged), and
// that after Ctrl-C it no longer does.
func mapAddReaches(t *testing.T, r *testnet.Router, ext netip.AddrPort, env []string, args ...string) {
	t.Helper()
	start := time.Now()
	p := startMapAdd(t, r, env, args...)
	p.mapped(t, ext)
	for !r.Connects(t, ext, 500*time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("no connection from the wan through %s", ext)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%q: from map add to a connection from outside: %s", args, time.Since(start).Round(time.Millisecond))
	p.interrupt(t)
	if r.Connects(t, ext, 500*time.Millisecond) {
		t.Errorf("%s still reaches the lan after map add exited", ext)
	}
}

// TestIntegrationMapAdd: map add through each protocol makes a connection
// from the wan namespace reach the lan listener, renews, and deletes the
// mapping on Ctrl-C; --once --verify asks a reflector in the wan.
func TestIntegrationMapAdd(t *testing.T) {
	r := testnet.NewRouter(t)
	testnet.ListenIn(t, r.LAN, netip.AddrPortFrom(r.LANAddr, 8080))
	for i, protocol := range []string{"natpmp", "pcp", "upnp"} {
		t.Run(protocol, func(t *testing.T) {
			ext := netip.AddrPortFrom(r.External, uint16(18080+i))
			mapAddReaches(t, r, ext, nil, "map", "add", "8080", "--external", strconv.Itoa(int(ext.Port())), "--protocol", protocol,
				"--gateway", r.RouterLAN.String(), "--lease", "20s")
		})
	}

	t.Run("once and verify", func(t *testing.T) {
		code, out, errOut := inLAN(t, r, "map", "add", "8080", "--external", "18090", "--once", "--protocol", "natpmp",
			"--gateway", r.RouterLAN.String(), "--verify", reflectorIn(t, r).String())
		if code != 0 || !strings.Contains(out, "reachable from outside") {
			t.Errorf("map add --once --verify: exit %d: %s%s", code, out, errOut)
		}
		code, out, errOut = inLAN(t, r, "map", "rm", "8080", "--external", "18090", "--protocol", "natpmp", "--gateway", r.RouterLAN.String(), "--json")
		var rm struct{ Deleted portmap.Mapping }
		if code != 0 || json.Unmarshal([]byte(out), &rm) != nil || rm.Deleted.Internal.Port() != 8080 ||
			r.Connects(t, netip.AddrPortFrom(r.External, 18090), 500*time.Millisecond) {
			t.Errorf("map rm --json: exit %d: %s%s; want the deleted mapping in JSON, and the port gone", code, out, errOut)
		}
	})
}

// reflectorIn runs a portctl reflector in the router's wan namespace
// until the test ends, and returns its address.
func reflectorIn(t *testing.T, r *testnet.Router) netip.AddrPort {
	t.Helper()
	var l net.Listener
	var err error
	testnet.In(t, r.WAN, func() { l, err = net.Listen("tcp", netip.AddrPortFrom(r.WANAddr, 0).String()) })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- portmap.ServeReflector(ctx, l, portmap.ReflectOptions{Timeout: 2 * time.Second}) }()
	t.Cleanup(func() { cancel(); <-served })
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// TestIntegrationMapAddRouterRestart: when miniupnpd restarts (its
// mappings lost) it announces so on 224.0.0.1:5350; map add, whose lease
// is renewed only every 5 minutes, maps again within seconds, through
// NAT-PMP and through PCP, and the wan reaches the lan again.
func TestIntegrationMapAddRouterRestart(t *testing.T) {
	for i, protocol := range []string{"natpmp", "pcp"} {
		t.Run(protocol, func(t *testing.T) {
			r := testnet.NewRouter(t)
			testnet.ListenIn(t, r.LAN, netip.AddrPortFrom(r.LANAddr, 8080))
			ext := netip.AddrPortFrom(r.External, uint16(18110+i))
			p := startMapAdd(t, r, nil, "map", "add", "8080", "--external", strconv.Itoa(int(ext.Port())), "--protocol", protocol,
				"--gateway", r.RouterLAN.String(), "--lease", "10m")
			p.mapped(t, ext)
			if !r.Connects(t, ext, 2*time.Second) {
				t.Fatalf("%s does not reach the lan after map add", ext)
			}
			// Epochs are whole seconds, and one that went back is told
			// from clocks that differ by up to 2 s plus an eighth.
			time.Sleep(5 * time.Second)
			r.Restart(t)
			restarted := time.Now()
			var remapped time.Duration
			select {
			case l := <-p.lines:
				remapped = time.Since(restarted)
				if !strings.Contains(l, "remapped") {
					t.Errorf("after the router restarted: %q; want remapped", l)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("map add did not map again within 10 s of the router's restart")
			}
			for !r.Connects(t, ext, 500*time.Millisecond) {
				if time.Since(restarted) > 10*time.Second {
					t.Fatalf("%s does not reach the lan again after the router's restart", ext)
				}
			}
			t.Logf("%s: from the router's restart (its announcement) to map add's remapping: %s, to a connection from outside: %s",
				protocol, remapped.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
			p.interrupt(t)
		})
	}
}

// TestIntegrationMapProbeDoubleNAT: behind a second NAT (the router's WAN
// address in 100.64.0.0/10, a masquerading isp namespace beyond it, where
// Debian's miniupnpd answers but maps nothing) map probe says double NAT
// from the router's answers alone, and with --reflect from a reflector in
// the wan that sees the isp's address; map add fails saying why.
func TestIntegrationMapProbeDoubleNAT(t *testing.T) {
	r := testnet.NewRouter(t, testnet.RouterConfig{Behind: true})
	code, out, errOut := inLAN(t, r, "map", "probe", "--gateway", r.RouterLAN.String(), "--json")
	var rep probeResult
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("map probe --json: exit %d: %v\n%s%s", code, err, out, errOut)
	}
	if !rep.NoPublicAddress || !strings.HasPrefix(rep.DoubleNAT, "double NAT") {
		t.Errorf("map probe --json behind a second NAT: no_public_address %v, double_nat %q; want true and a double NAT verdict\n%s",
			rep.NoPublicAddress, rep.DoubleNAT, out)
	}
	for _, p := range rep.Protocols {
		if !p.Answered {
			t.Errorf("%s: %+v; want an answer (a refusal, or no address)", p.Protocol, p)
		}
	}

	refl := reflectorIn(t, r)
	code, out, errOut = inLAN(t, r, "map", "probe", "--gateway", r.RouterLAN.String(), "--reflect", refl.String())
	want := "sees this host come from " + r.Outside.String()
	t.Logf("map probe --reflect:\n%s", out)
	if code != 0 || !strings.Contains(out, "double NAT") || !strings.Contains(out, want) {
		t.Errorf("map probe --reflect %s: exit %d; want exit 0 and %q in:\n%s%s", refl, code, want, out, errOut)
	}

	testnet.ListenIn(t, r.LAN, netip.AddrPortFrom(r.LANAddr, 8080))
	code, out, errOut = inLAN(t, r, "map", "add", "8080", "--once", "--gateway", r.RouterLAN.String())
	if code == 0 || !strings.Contains(errOut, "double NAT") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("map add behind a second NAT: exit %d; want a failure, one line naming double NAT:\n%s%s", code, out, errOut)
	}
	t.Logf("map add: %s", errOut)
}

// TestIntegrationMapDashboard: a map add that stays publishes what it
// keeps; the dashboard (serve's web.Server over the machine) shows it in
// /api/v1/mappings and /metrics, renewed, and no more once map add exits;
// map ls marks it as kept by map add.
func TestIntegrationMapDashboard(t *testing.T) {
	r := testnet.NewRouter(t, testnet.RouterConfig{MinLifetime: 2 * time.Second})
	testnet.ListenIn(t, r.LAN, netip.AddrPortFrom(r.LANAddr, 8080))
	runtime := t.TempDir()
	p := startMapAdd(t, r, []string{"XDG_RUNTIME_DIR=" + runtime}, "map", "add", "8080",
		"--external", "18100", "--protocol", "natpmp", "--gateway", r.RouterLAN.String(), "--lease", "2s", "--description", "dash")
	cmd := p.cmd
	go func() {
		for range p.lines {
		}
	}()

	s, err := web.New(web.Options{Source: web.Machine{StatsDir: filepath.Join(runtime, "portctl")}, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { s.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran }()
	get := func(path string) string {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1"+path, nil))
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	// A 2 s lease is renewed every second: wait for a renewal.
	var keepers []portmap.Keeper
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		body := get("/api/v1/mappings")
		if err := json.Unmarshal([]byte(body), &keepers); err != nil {
			t.Fatalf("GET /api/v1/mappings = %s: %v", body, err)
		}
		if len(keepers) == 1 && len(keepers[0].Mappings) == 1 && keepers[0].Mappings[0].Renewals > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /api/v1/mappings = %s; want map add's mapping, renewed, within 15 s", body)
		}
	}
	k := keepers[0]
	m := k.Mappings[0]
	if k.PID != cmd.Process.Pid || k.Gateway != r.RouterLAN || m.Protocol != portmap.NATPMP || m.Proto != "tcp" ||
		m.External != netip.AddrPortFrom(r.External, 18100) || m.Internal.Port() != 8080 || m.Error != "" {
		t.Errorf("the dashboard's mapping: %+v of %d at %s; want natpmp tcp %s:18100 -> :8080 of %d at %s",
			m, k.PID, k.Gateway, r.External, cmd.Process.Pid, r.RouterLAN)
	}
	metrics := get("/metrics")
	for _, want := range []string{
		`portctl_map_mapping_info{description="dash",external="` + r.External.String() + `:18100",gateway="` + r.RouterLAN.String() + `",internal="` + r.LANAddr.String() + `:8080"`,
		`portctl_map_lease_seconds{internal="` + r.LANAddr.String() + `:8080",pid="`,
		`portctl_map_renewal_failing{internal="` + r.LANAddr.String() + `:8080",pid="` + strconv.Itoa(k.PID) + `",proto="tcp"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "portctl_map_"))
		}
	}

	// map ls marks it as portctl's, kept by map add's PID.
	code, out, errOut := inLANEnv(t, r, []string{"XDG_RUNTIME_DIR=" + runtime}, "map", "ls", "--gateway", r.RouterLAN.String())
	want := "portctl (kept by PID " + strconv.Itoa(cmd.Process.Pid) + ")"
	if code != 0 || !strings.Contains(grepLines(out, ":18100"), want) {
		t.Errorf("map ls: exit %d; want the mapping of 18100 marked %q:\n%s%s", code, want, out, errOut)
	}
	code, out, errOut = inLANEnv(t, r, []string{"XDG_RUNTIME_DIR=" + runtime}, "map", "ls", "--gateway", r.RouterLAN.String(), "--json")
	var ls []lsEntry
	if err := json.Unmarshal([]byte(out), &ls); err != nil || code != 0 || len(ls) != 1 || !ls[0].Portctl || ls[0].KeptBy != cmd.Process.Pid {
		t.Errorf("map ls --json: exit %d, %v; want the one mapping, portctl's, kept by %d:\n%s%s", code, err, cmd.Process.Pid, out, errOut)
	}

	p.interrupt(t)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if body := get("/api/v1/mappings"); strings.TrimSpace(body) == "[]" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after map add exited, GET /api/v1/mappings = %s; want []", body)
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestIntegrationMapIPv6: over IPv6, map probe asks PCP and UPnP (NAT-PMP
// is IPv4 only), the gateway found on the default IPv6 route with --ipv6;
// map add opens a pinhole to the lan's listener through PCP and through
// IGDv2's WANIPv6FirewallControl that a connection from the wan passes,
// closed on Ctrl-C.
func TestIntegrationMapIPv6(t *testing.T) {
	r := testnet.NewRouter(t, testnet.RouterConfig{IPv6: true})
	code, out, errOut := inLAN(t, r, "map", "probe", "--ipv6", "--json")
	var rep probeResult
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
		t.Fatalf("map probe --ipv6 --json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if rep.Gateway != r.RouterLAN6 {
		t.Errorf("map probe --ipv6 asked %s; want the default IPv6 route's gateway %s", rep.Gateway, r.RouterLAN6)
	}
	for _, p := range rep.Protocols {
		want := p.Protocol != portmap.NATPMP
		if p.Answered != want {
			t.Errorf("%s over IPv6: %+v; want answered %v", p.Protocol, p, want)
		}
	}
	testnet.ListenIn(t, r.LAN, netip.AddrPortFrom(r.LAN6, 8080))
	hole := netip.AddrPortFrom(r.LAN6, 8080)
	for _, protocol := range []string{"pcp", "upnp"} {
		t.Run(protocol, func(t *testing.T) {
			mapAddReaches(t, r, hole, nil, "map", "add", "8080", "--protocol", protocol, "--gateway", r.RouterLAN6.String(), "--lease", "20s")
		})
	}
	code, _, errOut = inLAN(t, r, "map", "add", "8080", "--ipv6", "--external", "9090")
	if code != 2 || !strings.Contains(errOut, "--external 9090") {
		t.Errorf("map add --ipv6 --external 9090: exit %d, %q; want a usage error naming --external", code, errOut)
	}
}
