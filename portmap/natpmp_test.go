package portmap

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// unhex decodes a captured message; spaces are for reading.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(string(bytes.ReplaceAll([]byte(s), []byte(" "), nil)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNATPMPRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"external address", natpmpExternalRequest(), "0000"},
		{"map tcp 40000 to 40001 for an hour", natpmpMapRequest(natpmpOpMapTCP, 40000, 40001, 3600), "0002 0000 9c40 9c41 00000e10"},
		{"map udp, any external port", natpmpMapRequest(natpmpOpMapUDP, 5353, 0, 7200), "0001 0000 14e9 0000 00001c20"},
		{"delete tcp 40000", natpmpMapRequest(natpmpOpMapTCP, 40000, 0, 0), "0002 0000 9c40 0000 00000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if want := unhex(t, tc.want); !bytes.Equal(tc.got, want) {
				t.Errorf("request = %x; want %x", tc.got, want)
			}
		})
	}
}

func TestParseNATPMPResponse(t *testing.T) {
	// The successes and refusals are miniupnpd 2.3.1's answers, captured
	// in testnet.NewRouter's namespaces.
	for _, tc := range []struct {
		name    string
		in      string
		want    natpmpResponse
		wantErr bool
	}{
		{"external address", "0080 0000 00000000 0b4d0001",
			natpmpResponse{Op: 0, External: netip.MustParseAddr("11.77.0.1")}, false},
		{"mapped tcp 40000 to 40001 for an hour", "0082 0000 00000000 9c40 9c41 00000e10",
			natpmpResponse{Op: 2, InternalPort: 40000, ExternalPort: 40001, Lifetime: 3600}, false},
		{"deleted", "0082 0000 00000000 9c40 0000 00000000",
			natpmpResponse{Op: 2, InternalPort: 40000}, false},
		{"refused by a deny rule", "0082 0002 00000000 1388 1388 00000e10",
			natpmpResponse{Op: 2, Result: NATPMPNotAuthorized, InternalPort: 5000, ExternalPort: 5000, Lifetime: 3600}, false},
		{"unsupported opcode, cut after the epoch", "0089 0005 00000001",
			natpmpResponse{Op: 9, Result: NATPMPUnsupportedOpcode, Epoch: 1}, false},
		{"epoch", "0080 0000 0001e240 0b4d0001",
			natpmpResponse{Op: 0, Epoch: 123456, External: netip.MustParseAddr("11.77.0.1")}, false},
		{"empty", "", natpmpResponse{}, true},
		{"a request", "0000", natpmpResponse{}, true},
		{"seven bytes", "0080 0000 000000", natpmpResponse{}, true},
		{"success cut after the epoch", "0080 0000 00000000", natpmpResponse{}, true},
		{"success one byte long", "0080 0000 00000000 0b4d000100", natpmpResponse{}, true},
		{"mapping success of 12 bytes", "0082 0000 00000000 9c40 9c41", natpmpResponse{}, true},
		{"version 2 (PCP)", "0280 0000 00000000 0b4d0001", natpmpResponse{}, true},
		{"request opcode", "0002 0000 00000000 9c40 9c41 00000e10", natpmpResponse{}, true},
		{"success for unknown opcode", "0089 0000 00000000", natpmpResponse{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseNATPMPResponse(unhex(t, tc.in))
			if tc.wantErr {
				if err == nil || !errors.Is(err, errMalformed) {
					t.Errorf("parseNATPMPResponse(%s) = %+v, %v; want a malformed-response error", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("parseNATPMPResponse(%s) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestNATPMPResultError(t *testing.T) {
	err := natpmpResponse{Op: 2, Result: NATPMPNotAuthorized}.err()
	var re *ResultError
	if !errors.Is(err, ErrRefused) || !errors.As(err, &re) || re.Name != "NOT_AUTHORIZED" || re.Code != 2 || re.Protocol != NATPMP {
		t.Fatalf("err() = %#v; want a *ResultError NOT_AUTHORIZED wrapping ErrRefused", err)
	}
	if want := "the router refused: NOT_AUTHORIZED (result code 2)"; err.Error() != want {
		t.Errorf("Error() = %q; want %q", err, want)
	}
	if got := NATPMPResult(77).String(); got != "result code 77" {
		t.Errorf("NATPMPResult(77).String() = %q", got)
	}
}

func FuzzNATPMPResponse(f *testing.F) {
	for _, s := range []string{"00800000000000000b4d0001", "00820000000000009c409c4100000e10",
		"00820002000000001388138800000e10", "0089000500000001", "", "0080"} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseNATPMPResponse(b)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		if len(b) != 8 && len(b) != 12 && len(b) != 16 {
			t.Fatalf("accepted a response of %d bytes", len(b))
		}
		if r.Result == NATPMPSuccess && r.Op == natpmpOpExternal && !r.External.Is4() {
			t.Fatalf("success without an IPv4 external address: %+v", r)
		}
		if (r.err() == nil) != (r.Result == NATPMPSuccess) {
			t.Fatalf("err() = %v for result %d", r.err(), r.Result)
		}
	})
}

// fakeServer is a NAT-PMP/PCP server on loopback: answer gets each
// request and returns the packets to send back (none: silence).
type fakeServer struct {
	conn *net.UDPConn
	mu   sync.Mutex
	reqs [][]byte
}

func newFakeServer(t *testing.T, answer func(n int, req []byte) [][]byte) (*fakeServer, netip.AddrPort) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.1: %v", err)
	}
	s := &fakeServer{conn: c}
	var wg sync.WaitGroup
	wg.Go(func() {
		b := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			req := bytes.Clone(b[:n])
			s.mu.Lock()
			s.reqs = append(s.reqs, req)
			count := len(s.reqs)
			s.mu.Unlock()
			for _, p := range answer(count, req) {
				c.WriteToUDPAddrPort(p, from)
			}
		}
	})
	t.Cleanup(func() { c.Close(); wg.Wait() })
	return s, c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (s *fakeServer) requests() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slicesClone(s.reqs)
}

func slicesClone(b [][]byte) [][]byte { return append([][]byte(nil), b...) }

// testNATPMP is a NAT-PMP client of addr with a schedule of 100 ms,
// 200 ms, 400 ms, 800 ms: a loopback answer is never so late that the
// request goes again.
func testNATPMP(addr netip.AddrPort) *natpmpClient {
	c := NewNATPMP(addr.Addr()).(*natpmpClient)
	c.port, c.first, c.tries = addr.Port(), 100*time.Millisecond, 4
	return c
}

func TestNATPMPClientRetransmits(t *testing.T) {
	// The first request is lost; the second is answered after a stray
	// packet and an answer to another opcode.
	s, addr := newFakeServer(t, func(n int, req []byte) [][]byte {
		if n == 1 {
			return nil
		}
		return [][]byte{{1, 2, 3}, unhex(t, "0081 0000 00000001 9c40 9c41 00000e10"),
			unhex(t, "0082 0000 00000007 9c40 9c41 00000e10")}
	})
	c := testNATPMP(addr)
	m, err := c.Map(t.Context(), Request{Proto: "tcp", Internal: netip.AddrPortFrom(netip.Addr{}, 40000), External: 40001, Lease: time.Hour})
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	want := Mapping{Protocol: NATPMP, Proto: "tcp", Internal: netip.MustParseAddrPort("127.0.0.1:40000"),
		External: netip.AddrPortFrom(netip.Addr{}, 40001), Lease: time.Hour, Epoch: 7}
	if m != want {
		t.Errorf("Map = %+v; want %+v", m, want)
	}
	reqs := s.requests()
	if len(reqs) != 2 || !bytes.Equal(reqs[0], reqs[1]) || !bytes.Equal(reqs[0], natpmpMapRequest(2, 40000, 40001, 3600)) {
		t.Errorf("requests = %x; want the same mapping request twice", reqs)
	}
}

func TestNATPMPClientNoAnswer(t *testing.T) {
	s, addr := newFakeServer(t, func(int, []byte) [][]byte { return nil })
	c := testNATPMP(addr)
	c.first = 20 * time.Millisecond
	start := time.Now()
	_, _, err := c.ExternalAddress(t.Context())
	if !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("ExternalAddress = %v; want ErrNoAnswer", err)
	}
	// 20 + 40 + 80 + 160 ms.
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("gave up after %s; want about 300 ms", d)
	}
	if n := len(s.requests()); n != 4 {
		t.Errorf("%d requests sent; want 4", n)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	c.tries = 100
	start = time.Now()
	_, _, err = c.ExternalAddress(ctx)
	if !errors.Is(err, ErrNoAnswer) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ExternalAddress with a 50 ms context = %v; want ErrNoAnswer and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the context's end took %s to stop it", d)
	}
}

func TestNATPMPClientPortUnreachable(t *testing.T) {
	// A port where nothing listens: the ICMP port unreachable ends it.
	l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.1: %v", err)
	}
	addr := l.LocalAddr().(*net.UDPAddr).AddrPort()
	l.Close()
	c := testNATPMP(addr)
	c.first, c.tries = time.Second, 9
	start := time.Now()
	_, _, err = c.ExternalAddress(t.Context())
	if !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("ExternalAddress = %v; want ErrNoAnswer", err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Logf("no ICMP seen here: gave up after %s", d)
	}
}

func TestNATPMPClientRefused(t *testing.T) {
	_, addr := newFakeServer(t, func(int, []byte) [][]byte {
		return [][]byte{unhex(t, "0082 0002 00000000 9c40 9c41 00000e10")}
	})
	_, err := testNATPMP(addr).Map(t.Context(), Request{Proto: "tcp", Internal: netip.AddrPortFrom(netip.Addr{}, 40000), Lease: time.Hour})
	var re *ResultError
	if !errors.As(err, &re) || !errors.Is(err, ErrRefused) || re.Name != "NOT_AUTHORIZED" {
		t.Fatalf("Map = %v; want NOT_AUTHORIZED wrapping ErrRefused", err)
	}
}

func TestNATPMPClientBadRequests(t *testing.T) {
	c := testNATPMP(netip.MustParseAddrPort("127.0.0.1:9"))
	for _, tc := range []struct {
		name string
		r    Request
	}{
		{"protocol", Request{Proto: "sctp", Internal: netip.MustParseAddrPort("0.0.0.0:80"), Lease: time.Hour}},
		{"no port", Request{Proto: "tcp", Lease: time.Hour}},
		{"no lease", Request{Proto: "tcp", Internal: netip.MustParseAddrPort("0.0.0.0:80")}},
		{"another host", Request{Proto: "tcp", Internal: netip.MustParseAddrPort("127.0.0.2:80"), Lease: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.Map(t.Context(), tc.r); err == nil || errors.Is(err, ErrNoAnswer) {
				t.Errorf("Map(%+v) = %v; want an error before sending", tc.r, err)
			}
		})
	}
}

func TestNATPMPClientExternalUnknown(t *testing.T) {
	_, addr := newFakeServer(t, func(int, []byte) [][]byte {
		return [][]byte{unhex(t, "0080 0000 00000011 00000000")}
	})
	a, epoch, err := testNATPMP(addr).ExternalAddress(t.Context())
	if !errors.Is(err, ErrExternalUnknown) || epoch != 17 {
		t.Fatalf("ExternalAddress = %s, %d, %v; want ErrExternalUnknown with epoch 17", a, epoch, err)
	}
}
