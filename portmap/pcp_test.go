package portmap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestPCPMapRequest(t *testing.T) {
	nonce := [12]byte([]byte("0123456789ab"))
	for _, tc := range []struct {
		name string
		r    pcpMapRequest
		want string
	}{
		{"tcp 40002 to 40003 for an hour from IPv4",
			pcpMapRequest{Lifetime: 3600, Client: netip.MustParseAddr("192.168.77.10"), Nonce: nonce, Proto: 6, InternalPort: 40002, ExternalPort: 40003},
			"02 01 0000 00000e10 00000000000000000000ffffc0a84d0a" +
				"303132333435363738396162 06 000000 9c42 9c43 00000000000000000000ffff00000000"},
		{"delete udp 5353, suggested address kept",
			pcpMapRequest{Client: netip.MustParseAddr("10.0.0.2"), Nonce: nonce, Proto: 17, InternalPort: 5353, External: netip.MustParseAddr("11.77.0.1")},
			"02 01 0000 00000000 00000000000000000000ffff0a000002" +
				"303132333435363738396162 11 000000 14e9 0000 00000000000000000000ffff0b4d0001"},
		{"from IPv6",
			pcpMapRequest{Lifetime: 7200, Client: netip.MustParseAddr("2001:db8::2"), Nonce: nonce, Proto: 6, InternalPort: 443},
			"02 01 0000 00001c20 20010db8000000000000000000000002" +
				"303132333435363738396162 06 000000 01bb 0000 00000000000000000000000000000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := tc.r.marshal(), unhex(t, tc.want); !bytes.Equal(got, want) {
				t.Errorf("marshal() =\n%x; want\n%x", got, want)
			}
		})
	}
}

func TestParsePCPResponse(t *testing.T) {
	nonce := [12]byte([]byte("0123456789ab"))
	ext := netip.MustParseAddr("11.77.0.1")
	// The first five are miniupnpd 2.3.1's answers, captured in
	// testnet.NewRouter's namespaces.
	mapped := "02 81 00 00 00000258 00000001 000000000000000000000000" +
		"303132333435363738396162 06 000000 9c42 9c43 00000000000000000000ffff0b4d0001"
	for _, tc := range []struct {
		name    string
		in      string
		want    pcpResponse
		wantErr bool
	}{
		{"mapped tcp 40002 to 40003 for 600 s", mapped,
			pcpResponse{Version: 2, Op: 1, Lifetime: 600, Epoch: 1, HasMap: true, Nonce: nonce, Proto: 6, InternalPort: 40002, ExternalPort: 40003, External: ext}, false},
		{"deleted", "02 81 00 00 00000000 00000001 000000000000000000000000" +
			"303132333435363738396162 06 000000 9c42 9c43 00000000000000000000ffff0b4d0001",
			pcpResponse{Version: 2, Op: 1, Epoch: 1, HasMap: true, Nonce: nonce, Proto: 6, InternalPort: 40002, ExternalPort: 40003, External: ext}, false},
		{"refused by a deny rule", "02 81 00 02 00000000 00000002 000000000000000000000000" +
			"303132333435363738396162 06 000000 1388 1388 00000000000000000000ffff0b4d0001",
			pcpResponse{Version: 2, Op: 1, Result: PCPNotAuthorized, Epoch: 2, HasMap: true, Nonce: nonce, Proto: 6, InternalPort: 5000, ExternalPort: 5000, External: ext}, false},
		{"address mismatch", "02 81 00 0c 00000000 00000002 000000000000000000000000" +
			"303132333435363738396162 06 000000 9c42 9c43 00000000000000000000ffff00000000",
			pcpResponse{Version: 2, Op: 1, Result: PCPAddressMismatch, Epoch: 2, HasMap: true, Nonce: nonce, Proto: 6, InternalPort: 40002, ExternalPort: 40003, External: netip.IPv4Unspecified()}, false},
		{"unsupported version", "02 81 00 01 00000000 00000002 000000000000000000000000" +
			"303132333435363738396162 06 000000 0000 0000 00000000000000000000ffff00000000",
			pcpResponse{Version: 2, Op: 1, Result: PCPUnsuppVersion, Epoch: 2, HasMap: true, Nonce: nonce, Proto: 6, External: netip.IPv4Unspecified()}, false},
		{"a NAT-PMP server's unsupported version", "0081 0001 00000063",
			pcpResponse{Op: 1, Result: PCPUnsuppVersion, Epoch: 99}, false},
		{"refusal with the header only", "02 81 00 08 0000001e 00000005 000000000000000000000000",
			pcpResponse{Version: 2, Op: 1, Result: PCPNoResources, Lifetime: 30, Epoch: 5}, false},
		{"announce", "02 80 00 00 00000000 00000005 000000000000000000000000",
			pcpResponse{Version: 2, Op: 0, Epoch: 5}, false},
		{"with an option", mapped + "01 00 0004 0a0b0c0d",
			pcpResponse{Version: 2, Op: 1, Lifetime: 600, Epoch: 1, HasMap: true, Nonce: nonce, Proto: 6, InternalPort: 40002, ExternalPort: 40003, External: ext}, false},
		{"with an option padded", mapped + "01 00 0001 0a000000",
			pcpResponse{Version: 2, Op: 1, Lifetime: 600, Epoch: 1, HasMap: true, Nonce: nonce, Proto: 6, InternalPort: 40002, ExternalPort: 40003, External: ext}, false},
		{"IPv6 external", "02 81 00 00 00000258 00000001 000000000000000000000000" +
			"303132333435363738396162 06 000000 9c42 9c43 20010db8000000000000000000000001",
			pcpResponse{Version: 2, Op: 1, Lifetime: 600, Epoch: 1, HasMap: true, Nonce: nonce, Proto: 6, InternalPort: 40002, ExternalPort: 40003, External: netip.MustParseAddr("2001:db8::1")}, false},

		{"empty", "", pcpResponse{}, true},
		{"header cut", "02 81 00 00 00000258 00000001 0000000000000000", pcpResponse{}, true},
		{"success without its MAP data", "02 81 00 00 00000258 00000001 000000000000000000000000", pcpResponse{}, true},
		{"not a multiple of 4", mapped + "00", pcpResponse{}, true},
		{"option longer than the rest", mapped + "01 00 0008 0a0b0c0d", pcpResponse{}, true},
		{"option header cut", mapped + "0100", pcpResponse{}, true},
		{"a request", "02 01 00 00 00000258 00000001 000000000000000000000000", pcpResponse{}, true},
		{"version 1 success", "01 81 00 00 00000258 00000001 000000000000000000000000", pcpResponse{}, true},
		{"success for PEER", "02 82 00 00 00000258 00000001 000000000000000000000000", pcpResponse{}, true},
		{"a NAT-PMP success", "0080 0000 00000000 0b4d0001", pcpResponse{}, true},
		{"a NAT-PMP-like answer of 24 bytes", "0080 0003 00000000 0000000000000000000000000000000000000000", pcpResponse{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePCPResponse(unhex(t, tc.in))
			if tc.wantErr {
				if err == nil || !errors.Is(err, errMalformed) {
					t.Errorf("parsePCPResponse(%s) = %+v, %v; want a malformed-response error", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("parsePCPResponse(%s) =\n%+v, %v; want\n%+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestPCPResultError(t *testing.T) {
	err := pcpResponse{Version: 2, Op: 1, Result: PCPNotAuthorized, Lifetime: 30}.err()
	var re *ResultError
	if !errors.Is(err, ErrRefused) || !errors.As(err, &re) || re.Name != "NOT_AUTHORIZED" || re.Code != 2 || re.RetryAfter != 30*time.Second {
		t.Fatalf("err() = %#v; want NOT_AUTHORIZED, retry after 30 s, wrapping ErrRefused", err)
	}
	err = pcpResponse{Op: 1, Result: PCPUnsuppVersion}.err()
	if want := "the router refused: UNSUPP_VERSION (the router speaks NAT-PMP only) (result code 1)"; err == nil || err.Error() != want {
		t.Errorf("err() from a NAT-PMP server = %v; want %q", err, want)
	}
	if got := PCPResult(200).String(); got != "result code 200" {
		t.Errorf("PCPResult(200).String() = %q", got)
	}
}

func FuzzPCPResponse(f *testing.F) {
	for _, s := range []string{
		"028100000000025800000001000000000000000000000000303132333435363738396162060000009c429c4300000000000000000000ffff0b4d0001",
		"028100020000000000000002000000000000000000000000303132333435363738396162060000001388138800000000000000000000ffff0b4d0001",
		"0281000c0000000000000002000000000000000000000000",
		"0081000100000063", "", "02",
	} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parsePCPResponse(b)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		if len(b) > pcpMaxLen {
			t.Fatalf("accepted %d bytes", len(b))
		}
		if r.Result == PCPSuccess && (r.Version != pcpVersion || r.Op == pcpOpMap && !r.HasMap) {
			t.Fatalf("a success without version 2 or MAP data: %+v", r)
		}
		if r.HasMap && len(b) < pcpHeaderLen+pcpMapLen {
			t.Fatalf("MAP data from %d bytes", len(b))
		}
		if (r.err() == nil) != (r.Result == PCPSuccess) {
			t.Fatalf("err() = %v for result %d", r.err(), r.Result)
		}
	})
}

// testPCP is a PCP client of addr with testNATPMP's schedule.
func testPCP(addr netip.AddrPort) *pcpClient {
	c := NewPCP(addr.Addr(), netip.Addr{}).(*pcpClient)
	c.port, c.first, c.tries = addr.Port(), 100*time.Millisecond, 4
	return c
}

// pcpAnswer answers a MAP request as a router would, with the external
// address 11.77.0.1, port internal+1, the lifetime asked and epoch 5.
func pcpAnswer(req []byte, result PCPResult) []byte {
	resp := bytes.Clone(req)
	resp[1] |= pcpResponseBit
	resp[2], resp[3] = 0, byte(result)
	copy(resp[8:12], []byte{0, 0, 0, 5})
	clear(resp[12:24])
	d := resp[pcpHeaderLen:]
	port := uint16(d[16])<<8 | uint16(d[17]) + 1
	d[18], d[19] = byte(port>>8), byte(port)
	ext := netip.MustParseAddr("11.77.0.1").As16()
	copy(d[20:36], ext[:])
	return resp
}

func TestPCPClient(t *testing.T) {
	s, addr := newFakeServer(t, func(n int, req []byte) [][]byte {
		if n == 1 {
			return nil // lost
		}
		// A stray answer for another nonce first.
		other := pcpAnswer(req, PCPSuccess)
		other[pcpHeaderLen] ^= 0xff
		return [][]byte{other, pcpAnswer(req, PCPSuccess)}
	})
	c := testPCP(addr)
	req := Request{Proto: "udp", Internal: netip.AddrPortFrom(netip.Addr{}, 40000), Lease: time.Hour}
	m, err := c.Map(t.Context(), req)
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	want := Mapping{Protocol: PCP, Proto: "udp", Internal: netip.MustParseAddrPort("127.0.0.1:40000"),
		External: netip.MustParseAddrPort("11.77.0.1:40001"), Lease: time.Hour, Epoch: 5}
	if m != want {
		t.Errorf("Map = %+v; want %+v", m, want)
	}
	if _, err := c.Map(t.Context(), req); err != nil {
		t.Fatalf("renewing: %v", err)
	}
	if err := c.Unmap(t.Context(), m); err != nil {
		t.Fatalf("Unmap: %v", err)
	}
	reqs := s.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests; want 4 (the first lost, its retransmission, the renewal, the deletion)", len(reqs))
	}
	for i, r := range reqs {
		if len(r) != 60 || r[0] != 2 || r[1] != 1 {
			t.Fatalf("request %d = %x; want a PCP MAP", i, r)
		}
	}
	client := netip.MustParseAddr("127.0.0.1").As16()
	if !bytes.Equal(reqs[0][8:24], client[:]) {
		t.Errorf("client address %x; want %x (IPv4-mapped)", reqs[0][8:24], client)
	}
	nonce := reqs[0][24:36]
	for i, r := range reqs[1:] {
		if !bytes.Equal(r[24:36], nonce) {
			t.Errorf("request %d's nonce %x; want the mapping's %x", i+1, r[24:36], nonce)
		}
	}
	if lifetime := reqs[3][4:8]; !bytes.Equal(lifetime, []byte{0, 0, 0, 0}) {
		t.Errorf("deletion's lifetime %x; want 0", lifetime)
	}
	// A new mapping of the same port after the deletion has a new nonce.
	if _, err := c.Map(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if r := s.requests()[4]; bytes.Equal(r[24:36], nonce) {
		t.Errorf("a new mapping after Unmap reused the nonce %x", nonce)
	}
}

func TestPCPClientRefused(t *testing.T) {
	_, addr := newFakeServer(t, func(_ int, req []byte) [][]byte {
		return [][]byte{pcpAnswer(req, PCPNotAuthorized)}
	})
	_, err := testPCP(addr).Map(t.Context(), Request{Proto: "tcp", Internal: netip.AddrPortFrom(netip.Addr{}, 40000), Lease: time.Hour})
	var re *ResultError
	if !errors.As(err, &re) || !errors.Is(err, ErrRefused) || re.Name != "NOT_AUTHORIZED" || re.Protocol != PCP {
		t.Fatalf("Map = %v; want NOT_AUTHORIZED wrapping ErrRefused", err)
	}
}

func TestPCPClientExternalAddress(t *testing.T) {
	s, addr := newFakeServer(t, func(_ int, req []byte) [][]byte {
		return [][]byte{pcpAnswer(req, PCPSuccess)}
	})
	a, epoch, err := testPCP(addr).ExternalAddress(t.Context())
	if err != nil || a != netip.MustParseAddr("11.77.0.1") || epoch != 5 {
		t.Fatalf("ExternalAddress = %s, %d, %v; want 11.77.0.1, 5", a, epoch, err)
	}
	reqs := s.requests()
	if len(reqs) != 2 || !bytes.Equal(reqs[0][24:36], reqs[1][24:36]) || !bytes.Equal(reqs[1][4:8], []byte{0, 0, 0, 0}) {
		t.Errorf("requests %x; want a MAP and its deletion", reqs)
	}
}

func TestPCPClientNATPMPOnly(t *testing.T) {
	_, addr := newFakeServer(t, func(_ int, req []byte) [][]byte {
		return [][]byte{unhex(t, "0081 0001 00000063")}
	})
	_, err := testPCP(addr).Map(t.Context(), Request{Proto: "tcp", Internal: netip.AddrPortFrom(netip.Addr{}, 40000), Lease: time.Hour})
	var re *ResultError
	if !errors.As(err, &re) || re.Code != uint16(PCPUnsuppVersion) {
		t.Fatalf("Map = %v; want UNSUPP_VERSION", err)
	}
}

func TestPCPClientExternalUnknown(t *testing.T) {
	_, addr := newFakeServer(t, func(_ int, req []byte) [][]byte {
		resp := pcpAnswer(req, PCPSuccess)
		ext := netip.IPv4Unspecified().As16()
		copy(resp[pcpHeaderLen+20:], ext[:])
		return [][]byte{resp}
	})
	a, epoch, err := testPCP(addr).ExternalAddress(t.Context())
	if !errors.Is(err, ErrExternalUnknown) || epoch != 5 {
		t.Fatalf("ExternalAddress = %s, %d, %v; want ErrExternalUnknown with epoch 5", a, epoch, err)
	}
}
