package forward_test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// udpBackend answers each datagram with copies more datagrams: the
// datagram itself, then "reply N of <first bytes>".
func udpBackend(t *testing.T, copies int) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(buf[:n], from)
			for i := 1; i < copies; i++ {
				pc.WriteToUDPAddrPort([]byte(fmt.Sprintf("reply %d of %.8s", i, buf[:min(n, 8)])), from)
			}
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestUDP: several clients at once, each sending 8,000-byte datagrams,
// each getting its own datagrams back whole, and every extra reply.
func TestUDP(t *testing.T) {
	backend := udpBackend(t, 3)
	f, addrs := start(t, "udp/127.0.0.1:0:"+backend.String())
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			c, err := net.Dial("udp", addrs[0].String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for n := range 10 {
				msg := bytes.Repeat([]byte{byte('a' + i)}, 8000)
				copy(msg, fmt.Sprintf("c%d m%d ", i, n))
				if _, err := c.Write(msg); err != nil {
					t.Error(err)
					return
				}
				buf := make([]byte, 65536)
				c.SetReadDeadline(time.Now().Add(3 * time.Second))
				got, err := c.Read(buf)
				if err != nil || !bytes.Equal(buf[:got], msg) {
					t.Errorf("client %d message %d: %d bytes back, %v; want the 8000 sent", i, n, got, err)
					return
				}
				for r := 1; r < 3; r++ {
					got, err := c.Read(buf)
					want := fmt.Sprintf("reply %d of %.8s", r, msg)
					if err != nil || string(buf[:got]) != want {
						t.Errorf("client %d message %d: extra reply %q, %v; want %q", i, n, buf[:got], err, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	s := f.Stats()[0]
	if s.Conns != 5 || s.BytesIn != 5*10*8000 {
		t.Errorf("stats %+v; want 5 sessions and 400,000 bytes in", s)
	}
}

// TestUDPSessionLimitAndIdle: sessions past the limit are refused, and an
// idle session ends, making room.
func TestUDPSessionLimitAndIdle(t *testing.T) {
	backend := udpBackend(t, 1)
	f, addrs := start(t, "udp/127.0.0.1:0:"+backend.String())
	rules := f.Rules()
	rules[0].MaxConns = 1
	rules[0].IdleTimeout = 300 * time.Millisecond
	if err := f.Apply(rules); err != nil {
		t.Fatal(err)
	}
	ask := func() error {
		c, err := net.Dial("udp", addrs[0].String())
		if err != nil {
			return err
		}
		defer c.Close()
		c.Write([]byte("ping"))
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 16)
		_, err = c.Read(buf)
		return err
	}
	c1, _ := net.Dial("udp", addrs[0].String())
	defer c1.Close()
	c1.Write([]byte("first"))
	c1.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c1.Read(make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if err := ask(); err == nil {
		t.Error("a second session went through a limit of 1")
	}
	// The first session idles out after 300 ms; a busy machine may take
	// longer to reap it, so ask again for up to 10 s.
	err := ask()
	for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); err = ask() {
	}
	if err != nil {
		t.Errorf("10 s after the idle timeout: %v", err)
	}
}
