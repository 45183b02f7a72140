package freeport

import (
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/registry"
)

// linuxHost is a host with Linux's default settings.
var linuxHost = netconf.Host{Ephemeral: registry.Range{First: 32768, Last: 60999}, UnprivilegedStart: 1024}

// hold binds TCP (and UDP when udp is set) on addr ("127.0.0.1", "::1") at
// port p until the test ends, the way a server would, with Go's default
// options. It reports whether it could.
func hold(t *testing.T, addr string, p uint16, udp bool) bool {
	t.Helper()
	hp := net.JoinHostPort(addr, strconv.Itoa(int(p)))
	l, err := net.Listen("tcp", hp)
	if err != nil {
		return false
	}
	t.Cleanup(func() { l.Close() })
	if udp {
		c, err := net.ListenPacket("udp", hp)
		if err != nil {
			return false
		}
		t.Cleanup(func() { c.Close() })
	}
	return true
}

func TestFindProvenFree(t *testing.T) {
	for _, udp := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "tcp and udp"}[udp], func(t *testing.T) {
			res, err := Find(Config{N: 5, UDP: udp, Host: linuxHost})
			if err != nil {
				t.Fatalf("Find: %v", err)
			}
			if len(res.Ports) != 5 {
				t.Fatalf("Find(N=5) = %v; want 5 ports", res.Ports)
			}
			seen := map[uint16]bool{}
			for _, p := range res.Ports {
				if seen[p] {
					t.Errorf("port %d returned twice in %v", p, res.Ports)
				}
				seen[p] = true
				if p < 1024 || linuxHost.InEphemeral(p) {
					t.Errorf("port %d is privileged or ephemeral", p)
				}
				// The proof: we can bind each of them ourselves, on both
				// loopback addresses.
				if !hold(t, "127.0.0.1", p, udp) {
					t.Errorf("port %d is not free on 127.0.0.1", p)
				}
				if res.IPv6 && !hold(t, "::1", p, udp) {
					t.Errorf("port %d is not free on ::1", p)
				}
			}
			wantProto := registry.TCP
			if udp {
				wantProto |= registry.UDP
			}
			if res.Protocols != wantProto {
				t.Errorf("Protocols = %v; want %v", res.Protocols, wantProto)
			}
		})
	}
}

func TestFindSkipsHeldPort(t *testing.T) {
	// A port held on 127.0.0.1 only, or on ::1 only, is not free: a
	// server on the wildcard address could not bind it.
	for _, addr := range []string{"127.0.0.1", "::1"} {
		t.Run(addr, func(t *testing.T) {
			res, err := Find(Config{Host: linuxHost})
			if err != nil {
				t.Fatal(err)
			}
			p := res.Ports[0]
			if !hold(t, addr, p, false) {
				t.Skipf("cannot bind %s here", addr)
			}
			r := registry.Range{First: p, Last: p}
			if res, err := Find(Config{Range: &r, Host: linuxHost}); !errors.Is(err, ErrNotEnough) || len(res.Ports) != 0 {
				t.Errorf("Find(range %d) with %d held on %s = %v, %v; want none, ErrNotEnough", p, p, addr, res.Ports, err)
			}
		})
	}
}

func TestFindNear(t *testing.T) {
	res, err := Find(Config{Host: linuxHost})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Ports[0]
	got, err := Find(Config{Near: p, Host: linuxHost})
	if err != nil || len(got.Ports) != 1 || got.Ports[0] != p {
		t.Fatalf("Find(Near %d) while it is free = %v, %v; want [%d]", p, got.Ports, err, p)
	}
	if !hold(t, "127.0.0.1", p, false) {
		t.Fatalf("cannot hold %d", p)
	}
	got, err = Find(Config{Near: p, N: 2, Host: linuxHost})
	if err != nil || len(got.Ports) != 2 {
		t.Fatalf("Find(Near %d, N 2) = %v, %v; want two neighbours", p, got.Ports, err)
	}
	for _, q := range got.Ports {
		if q == p {
			t.Errorf("Find(Near %d) returned the held port itself: %v", p, got.Ports)
		}
		if d := int(q) - int(p); d < -100 || d > 100 {
			t.Errorf("Find(Near %d) returned %d, far from it", p, q)
		}
	}
	// The closest first.
	if d0, d1 := dist(got.Ports[0], p), dist(got.Ports[1], p); d0 > d1 {
		t.Errorf("Find(Near %d) = %v; want the closest first", p, got.Ports)
	}
}

func dist(a, b uint16) int { return max(int(a)-int(b), int(b)-int(a)) }

func TestFindRangeFullyHeld(t *testing.T) {
	// Pick three consecutive ports and hold them all.
	var r registry.Range
	for attempt := 0; ; attempt++ {
		if attempt == 20 {
			t.Skip("found no three consecutive free ports to hold")
		}
		res, err := Find(Config{Host: linuxHost})
		if err != nil {
			t.Fatal(err)
		}
		p := min(res.Ports[0], 65533)
		held := 0
		for q := p; q < p+3 && hold(t, "127.0.0.1", q, false); q++ {
			held++
		}
		if held == 3 {
			r = registry.Range{First: p, Last: p + 2}
			break
		}
	}
	res, err := Find(Config{N: 1, Range: &r, Host: linuxHost})
	if !errors.Is(err, ErrNotEnough) || len(res.Ports) != 0 {
		t.Fatalf("Find(range %v, all held) = %v, %v; want none and ErrNotEnough", r, res.Ports, err)
	}
	if res.Candidates != 3 || res.Tried != 3 || res.Range != r {
		t.Errorf("Find(range %v) = %+v; want 3 candidates, 3 tried", r, res)
	}
}

func TestFindNotEnoughKeepsWhatItFound(t *testing.T) {
	b := &fakeBinder{busy: map[uint16]bool{5001: true}}
	r := registry.Range{First: 5000, Last: 5002}
	res, err := find(Config{N: 3, Range: &r, Host: linuxHost}, b)
	if !errors.Is(err, ErrNotEnough) {
		t.Fatalf("find = %v; want ErrNotEnough", err)
	}
	slices.Sort(res.Ports)
	if diff := cmp.Diff([]uint16{5000, 5002}, res.Ports); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
}

// fakeBinder stands in for the OS: ports in busy are taken, and with
// noIPv6 every IPv6 bind fails as on a host without IPv6.
type fakeBinder struct {
	busy   map[uint16]bool
	noIPv6 bool
	calls  []string
}

func (b *fakeBinder) bind(network string, p uint16) error {
	b.calls = append(b.calls, network+":"+strconv.Itoa(int(p)))
	if b.noIPv6 && network[len(network)-1] == '6' {
		return syscall.EAFNOSUPPORT
	}
	if b.busy[p] {
		return syscall.EADDRINUSE
	}
	return nil
}

func TestFindWithoutIPv6(t *testing.T) {
	b := &fakeBinder{noIPv6: true}
	res, err := find(Config{N: 2, UDP: true, Host: linuxHost}, b)
	if err != nil || len(res.Ports) != 2 || res.IPv6 {
		t.Fatalf("find without IPv6 = %+v, %v; want two ports, IPv6 false", res, err)
	}
	// One probe of IPv6, then IPv4 only: tcp4 and udp4 for each port.
	if len(b.calls) != 1+2*2 {
		t.Errorf("binds = %v; want one IPv6 probe and two per port", b.calls)
	}
}

func TestFindBindsEveryNetwork(t *testing.T) {
	b := &fakeBinder{}
	r := registry.Range{First: 4000, Last: 4000}
	if _, err := find(Config{Range: &r, UDP: true}, b); err != nil {
		t.Fatal(err)
	}
	want := []string{"tcp6:0", "tcp4:4000", "tcp6:4000", "udp4:4000", "udp6:4000"}
	if diff := cmp.Diff(want, b.calls); diff != "" {
		t.Errorf("binds (-want +got):\n%s", diff)
	}
}

func TestFindOtherBindErrorIsReturned(t *testing.T) {
	b := errBinder{syscall.EMFILE}
	if _, err := find(Config{Host: linuxHost}, b); !errors.Is(err, syscall.EMFILE) || errors.Is(err, ErrNotEnough) {
		t.Errorf("find with EMFILE = %v; want EMFILE", err)
	}
}

type errBinder struct{ err error }

func (b errBinder) bind(network string, p uint16) error {
	if p == 0 {
		return nil
	}
	return b.err
}

func TestFindRandomOrder(t *testing.T) {
	// Two searches with different seeds pick different ports: parallel
	// jobs do not all start at the same one.
	r := registry.Range{First: 20000, Last: 29999}
	a, _ := find(Config{N: 5, Range: &r, Rand: rand.New(rand.NewPCG(1, 2))}, &fakeBinder{})
	b, _ := find(Config{N: 5, Range: &r, Rand: rand.New(rand.NewPCG(3, 4))}, &fakeBinder{})
	if slices.Equal(a.Ports, b.Ports) {
		t.Errorf("two seeds gave the same ports %v", a.Ports)
	}
	again, _ := find(Config{N: 5, Range: &r, Rand: rand.New(rand.NewPCG(1, 2))}, &fakeBinder{})
	if !slices.Equal(a.Ports, again.Ports) {
		t.Errorf("the same seed gave %v then %v", a.Ports, again.Ports)
	}
}
