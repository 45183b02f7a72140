package sockets

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rawDump sends a request built by diagRequest on c and returns every
// buffer the kernel answers with, concatenated, up to and including
// NLMSG_DONE.
func rawDump(t *testing.T, c *diagConn, family uint8, protocol int, states StateSet, local, remote uint16) []byte {
	t.Helper()
	c.seq++
	req := diagRequest(c.seq, family, protocol, states, local, remote)
	if err := unix.Sendto(c.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatalf("sendto sock_diag: %v", err)
	}
	var all []byte
	for {
		n, _, err := unix.Recvfrom(c.fd, c.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("recvfrom sock_diag: %v", err)
		}
		all = append(all, c.buf[:n]...)
		if _, err := parseDump(c.buf[:n], TCP, nil); err != nil {
			return all // errDone, or an error the caller's parse reports
		}
	}
}

// dumpSockets is rawDump parsed; it fails the test on anything but errDone.
func dumpSockets(t *testing.T, c *diagConn, family uint8, protocol int, proto Proto, local, remote uint16) ([]Socket, []byte) {
	t.Helper()
	raw := rawDump(t, c, family, protocol, AllStates, local, remote)
	socks, err := parseDump(raw, proto, nil)
	if err != errDone {
		t.Fatalf("parseDump(dump of family %d protocol %d, local %d, remote %d) error = %v; want errDone", family, protocol, local, remote, err)
	}
	return socks, raw
}

func statesOf(socks []Socket) []State {
	var out []State
	for _, s := range socks {
		if !slices.Contains(out, s.State) {
			out = append(out, s.State)
		}
	}
	slices.Sort(out)
	return out
}

// TestDumpKernel checks diagRequest and parseDump against the running
// kernel on loopback sockets it makes: the kernel must accept the port
// bytecode and filter with it as intended. With -update it saves the
// answers in testdata for TestParseDumpCaptured and FuzzParseDump. No
// privilege is needed: sock_diag lists every user's sockets.
func TestDumpKernel(t *testing.T) {
	c, err := newDiagConn()
	if err != nil {
		t.Skipf("no sock_diag here: %v", err)
	}
	t.Cleanup(func() { c.Close() })

	for _, fam := range []struct {
		name   string
		family uint8
		lo     string
	}{{"4", afINET, "127.0.0.1"}, {"6", afINET6, "::1"}} {
		t.Run("tcp"+fam.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", net.JoinHostPort(fam.lo, "0"))
			if err != nil {
				t.Skipf("no loopback for IPv%s: %v", fam.name, err)
			}
			t.Cleanup(func() { ln.Close() })
			port := uint16(ln.Addr().(*net.TCPAddr).Port)
			dial := func() (client, server net.Conn) {
				t.Helper()
				client, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				server, err = ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { client.Close(); server.Close() })
				return client, server
			}
			// One connection the server closes first (its side ends in
			// TIME-WAIT on the listening port), one kept open.
			c1, s1 := dial()
			s1.Close()
			c1.Close()
			c2, _ := dial()
			clientPort := uint16(c2.LocalAddr().(*net.TCPAddr).Port)

			var socks []Socket
			var raw []byte
			want := []State{Established, TimeWait, Listen}
			deadline := time.Now().Add(5 * time.Second)
			for {
				socks, raw = dumpSockets(t, c, fam.family, ipprotoTCP, TCP, port, 0)
				if slices.Equal(statesOf(socks), want) || time.Now().After(deadline) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got := statesOf(socks); !slices.Equal(got, want) {
				t.Fatalf("dump filtered on local port %d: states %v; want %v", port, got, want)
			}
			for _, s := range socks {
				if s.Local.Port() != port || !s.Local.Addr().IsLoopback() {
					t.Errorf("dump filtered on local port %d returned %v→%v", port, s.Local, s.Remote)
				}
			}

			// Both ports: exactly the client's side of the open connection.
			both, _ := dumpSockets(t, c, fam.family, ipprotoTCP, TCP, clientPort, port)
			wantSock := netip.MustParseAddrPort(c2.LocalAddr().String())
			if len(both) != 1 || both[0].Local != wantSock || both[0].Remote.Port() != port || both[0].State != Established {
				t.Errorf("dump filtered on local %d and remote %d = %+v; want one ESTAB socket from %v", clientPort, port, both, wantSock)
			}
			// Remote port only: the client sockets.
			remote, _ := dumpSockets(t, c, fam.family, ipprotoTCP, TCP, 0, port)
			for _, s := range remote {
				if s.Remote.Port() != port {
					t.Errorf("dump filtered on remote port %d returned %v→%v", port, s.Local, s.Remote)
				}
			}
			if len(remote) == 0 {
				t.Errorf("dump filtered on remote port %d found nothing; want the client of %v", port, wantSock)
			}
			saveTestdata(t, "diag_tcp"+fam.name+".bin", raw)
		})

		t.Run("udp"+fam.name, func(t *testing.T) {
			pc, err := net.ListenPacket("udp", net.JoinHostPort(fam.lo, "0"))
			if err != nil {
				t.Skipf("no loopback for IPv%s: %v", fam.name, err)
			}
			t.Cleanup(func() { pc.Close() })
			port := uint16(pc.LocalAddr().(*net.UDPAddr).Port)
			socks, raw := dumpSockets(t, c, fam.family, ipprotoUDP, UDP, port, 0)
			if len(socks) != 1 || socks[0].State != Close || socks[0].Local.Port() != port || socks[0].Inode == 0 {
				t.Fatalf("UDP dump filtered on local port %d = %+v; want the one bound socket", port, socks)
			}
			saveTestdata(t, "diag_udp"+fam.name+".bin", raw)
		})
	}

	// Family 0: TCP of both families in one dump, filtered by port too.
	t.Run("tcp both families", func(t *testing.T) {
		ln4, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Skip(err)
		}
		t.Cleanup(func() { ln4.Close() })
		port := uint16(ln4.Addr().(*net.TCPAddr).Port)
		ln6, err := net.Listen("tcp6", net.JoinHostPort("::1", fmt.Sprint(port)))
		if err != nil {
			t.Skipf("no IPv6 listener on [::1]:%d: %v", port, err)
		}
		t.Cleanup(func() { ln6.Close() })
		cl, err := net.Dial("tcp6", ln6.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		s, err := ln6.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })

		socks, _ := dumpSockets(t, c, 0, ipprotoTCP, TCP, port, 0)
		var got []string
		for _, x := range socks {
			got = append(got, x.State.String()+" "+x.Local.String())
		}
		slices.Sort(got)
		want := []string{
			"ESTAB [::1]:" + fmt.Sprint(port),
			"LISTEN 127.0.0.1:" + fmt.Sprint(port),
			"LISTEN [::1]:" + fmt.Sprint(port),
		}
		if !slices.Equal(got, want) {
			t.Errorf("dump of both families filtered on local port %d = %q; want %q", port, got, want)
		}
		for _, x := range socks {
			if x.Proto != TCP || x.Inode == 0 {
				t.Errorf("dump of both families: %+v", x)
			}
		}
	})

	t.Run("mptcp4", func(t *testing.T) {
		var lc net.ListenConfig
		lc.SetMultipathTCP(true)
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Skipf("listen: %v", err)
		}
		t.Cleanup(func() { ln.Close() })
		port := uint16(ln.Addr().(*net.TCPAddr).Port)
		raw := rawDump(t, c, afINET, ipprotoMPTCP, AllStates, port, 0)
		socks, err := parseDump(raw, MPTCP, nil)
		var de *DumpError
		if errors.As(err, &de) {
			t.Skipf("the kernel has no MPTCP sock_diag (errno %d)", de.Errno)
		}
		if err != errDone {
			t.Fatalf("parseDump(MPTCP dump) error = %v; want errDone", err)
		}
		if len(socks) == 0 {
			t.Skip("the listener is not MPTCP: Go fell back to TCP")
		}
		if len(socks) != 1 || socks[0].State != Listen || socks[0].Local.Port() != port || socks[0].Proto != MPTCP {
			t.Fatalf("MPTCP dump filtered on local port %d = %+v; want the one listener", port, socks)
		}
		saveTestdata(t, "diag_mptcp4.bin", raw)
	})
}

func saveTestdata(t *testing.T, name string, b []byte) {
	t.Helper()
	if !*update {
		return
	}
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote testdata/%s (%d bytes)", name, len(b))
}
