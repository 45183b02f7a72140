package portmap

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func startReflector(t *testing.T, o ReflectOptions) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeReflector(ctx, l, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeReflector: %v", err)
		}
	})
	return l.Addr().String()
}

func TestReflect(t *testing.T) {
	refl := startReflector(t, ReflectOptions{Timeout: time.Second})
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	openPort := uint16(open.Addr().(*net.TCPAddr).Port)
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := uint16(closed.Addr().(*net.TCPAddr).Port)
	closed.Close()
	echo, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(buf[:n], from)
		}
	}()
	echoPort := uint16(echo.LocalAddr().(*net.UDPAddr).Port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name      string
		proto     string
		port      uint16
		via       netip.Addr
		reachable bool
		errHas    string
	}{
		{"open TCP port", "tcp", openPort, netip.Addr{}, true, ""},
		{"closed TCP port", "tcp", closedPort, netip.Addr{}, false, "refused"},
		{"UDP echo", "udp", echoPort, netip.Addr{}, true, ""},
		{"another address", "tcp", openPort, netip.MustParseAddr("192.0.2.1"), false, "only your own address"},
		{"port 0", "tcp", 0, netip.Addr{}, false, "port 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ans, err := Reflect(ctx, refl, tc.proto, tc.port, tc.via)
			if err != nil {
				t.Fatal(err)
			}
			if ans.Reachable != tc.reachable || !strings.Contains(ans.Error, tc.errHas) || ans.Seen.Addr() != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("Reflect(%s %d via %v) = %+v; want reachable %v, error with %q, seen from 127.0.0.1", tc.proto, tc.port, tc.via, ans, tc.reachable, tc.errHas)
			}
		})
	}
}

func TestParseReflectRequest(t *testing.T) {
	for _, tc := range []struct {
		in  string
		bad bool
	}{
		{`{"proto":"tcp","port":80}`, false},
		{`{"proto":"udp","port":53,"address":"192.0.2.1"}`, false},
		{`{"proto":"sctp","port":80}`, true},
		{`{"proto":"tcp"}`, true},
		{`{"proto":"tcp","port":70000}`, true},
		{`not json`, true},
		{`{"proto":"tcp","port":80,"address":"nowhere"}`, true},
	} {
		if _, err := ParseReflectRequest([]byte(tc.in)); (err != nil) != tc.bad {
			t.Errorf("ParseReflectRequest(%s) error = %v; want error %v", tc.in, err, tc.bad)
		}
	}
}

func FuzzParseReflectRequest(f *testing.F) {
	f.Add([]byte(`{"proto":"tcp","port":80}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReflectRequest(b)
		if err == nil && (r.Port == 0 || (r.Proto != "tcp" && r.Proto != "udp")) {
			t.Errorf("ParseReflectRequest(%q) = %+v with no error", b, r)
		}
	})
}
