package spa

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fwknopTestKeys returns a fresh fwknop key pair and a server key file
// holding it, as base64 for fwknop's command line.
func fwknopTestKeys(t testing.TB) (rij, mac string, server Keys) {
	t.Helper()
	r, m := make([]byte, 32), make([]byte, 64)
	rand.Read(r)
	rand.Read(m)
	rij, mac = base64.StdEncoding.EncodeToString(r), base64.StdEncoding.EncodeToString(m)
	server, err := LoadKeys(strings.NewReader("fwknop-rijndael " + rij + "\nfwknop-hmac-sha256 " + mac + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return rij, mac, server
}

func fwknopPair(t testing.TB, ks Keys) FwknopKey {
	t.Helper()
	p, err := ks.FwknopPairs()
	if err != nil || len(p) != 1 {
		t.Fatalf("FwknopPairs = %v, %v; want one pair", p, err)
	}
	return p[0]
}

func TestFwknopRoundTrip(t *testing.T) {
	_, _, server := fwknopTestKeys(t)
	key := fwknopPair(t, server)
	tests := []struct {
		name string
		req  Request
		want Grant
	}{
		{"access, allow IP", Request{Proto: "tcp", Port: 22, Addr: netip.MustParseAddr("192.0.2.44")},
			Grant{Proto: "tcp", Port: 22, Addr: netip.MustParseAddr("192.0.2.44"), For: DefaultFor, Format: "fwknop", User: "alice"}},
		{"client timeout, source IP", Request{Proto: "udp", Port: 1194, For: 90 * time.Second},
			Grant{Proto: "udp", Port: 1194, Addr: client, For: 90 * time.Second, Format: "fwknop", User: "alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt, err := EncodeFwknop(tt.req, key, "alice", t0)
			if err != nil {
				t.Fatal(err)
			}
			g, err := NewVerifier(server, nil, 0).Check(pkt, client, t0)
			if err != nil || g != tt.want {
				t.Errorf("Check = %+v, %v; want %+v", g, err, tt.want)
			}
		})
	}
}

func TestFwknopTamperedRejected(t *testing.T) {
	_, _, server := fwknopTestKeys(t)
	pkt, err := EncodeFwknop(Request{Proto: "tcp", Port: 22}, fwknopPair(t, server), "bob", t0)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(server, nil, 0)
	for i := range pkt {
		bad := bytes.Clone(pkt)
		bad[i] = "AB"[i%2] // a base64 character, different from most
		if bad[i] == pkt[i] {
			bad[i] = 'z'
		}
		if g, err := v.Check(bad, client, t0); err == nil {
			t.Errorf("fwknop packet with byte %d changed: Check = %+v; want an error", i, g)
		}
	}
	if _, err := v.Check(pkt[:len(pkt)-1], client, t0); err == nil {
		t.Error("fwknop packet cut short: want an error")
	}
	_, _, other := fwknopTestKeys(t)
	if _, err := NewVerifier(other, nil, 0).Check(pkt, client, t0); !errors.Is(err, ErrAuth) {
		t.Errorf("fwknop packet against other keys: Check = %v; want ErrAuth", err)
	}
	hk, _, noFwknop := testKeys(t)
	_ = hk
	if _, err := NewVerifier(noFwknop, nil, 0).Check(pkt, client, t0); !errors.Is(err, ErrAuth) {
		t.Errorf("fwknop packet against a server without fwknop keys: Check = %v; want ErrAuth", err)
	}
	if _, err := v.Check(pkt, client, t0.Add(-time.Hour)); !errors.Is(err, ErrStale) {
		t.Errorf("fwknop packet an hour ahead: Check = %v; want ErrStale", err)
	}
	if _, err := v.Check(pkt, client, t0); err != nil {
		t.Fatalf("fwknop packet: Check = %v", err)
	}
	if _, err := v.Check(pkt, client, t0); !errors.Is(err, ErrReplay) {
		t.Errorf("fwknop packet again: Check = %v; want ErrReplay", err)
	}
}

// TestFwknopFields covers the decrypted fields a key holder might send.
func TestFwknopFields(t *testing.T) {
	e := b64.EncodeToString
	msg := func(fields ...string) string {
		return strings.Join(fields, ":")
	}
	rnd, user, ts := "1234567890123456", e([]byte("root")), "1800000000"
	access := e([]byte("192.0.2.1,tcp/22"))
	tests := []struct {
		name    string
		body    string
		want    Request
		wantErr error
	}{
		{"access", msg(rnd, user, ts, "3.0.0", "1", access), Request{Proto: "tcp", Port: 22, Addr: netip.MustParseAddr("192.0.2.1")}, nil},
		{"timeout", msg(rnd, user, ts, "3.0.0", "3", e([]byte("0.0.0.0,udp/53")), "120"), Request{Proto: "udp", Port: 53, For: 2 * time.Minute}, nil},
		{"IPv6 allow", msg(rnd, user, ts, "3.0.0", "1", e([]byte("2001:db8::1,tcp/22"))), Request{Proto: "tcp", Port: 22, Addr: netip.MustParseAddr("2001:db8::1")}, nil},
		{"command", msg(rnd, user, ts, "3.0.0", "0", e([]byte("192.0.2.1,uname -a"))), Request{}, ErrUnsupported},
		{"NAT", msg(rnd, user, ts, "3.0.0", "2", access, e([]byte("10.0.0.1,22"))), Request{}, ErrUnsupported},
		{"server auth", msg(rnd, user, ts, "3.0.0", "1", access, e([]byte("crypt,pw"))), Request{}, ErrUnsupported},
		{"several ports", msg(rnd, user, ts, "3.0.0", "1", e([]byte("192.0.2.1,tcp/22,udp/53"))), Request{}, ErrUnsupported},
		{"icmp", msg(rnd, user, ts, "3.0.0", "1", e([]byte("192.0.2.1,icmp/0"))), Request{}, ErrUnsupported},
		{"port 0", msg(rnd, user, ts, "3.0.0", "1", e([]byte("192.0.2.1,tcp/0"))), Request{}, ErrFormat},
		{"port too big", msg(rnd, user, ts, "3.0.0", "1", e([]byte("192.0.2.1,tcp/65536"))), Request{}, ErrFormat},
		{"short random", msg("123", user, ts, "3.0.0", "1", access), Request{}, ErrFormat},
		{"bad timestamp", msg(rnd, user, "-5", "3.0.0", "1", access), Request{}, ErrFormat},
		{"type 7", msg(rnd, user, ts, "3.0.0", "7", access), Request{}, ErrFormat},
		{"too few fields", msg(rnd, user, ts, "3.0.0", "1"), Request{}, ErrFormat},
		{"bad address", msg(rnd, user, ts, "3.0.0", "1", e([]byte("host,tcp/22"))), Request{}, ErrFormat},
		{"timeout not a number", msg(rnd, user, ts, "3.0.0", "3", access, "1x"), Request{}, ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt := fwknopPlaintext(tt.body)
			m, err := parseFwknopFields(pt)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("parseFwknopFields(%q) = %v; want %v", pt, err, tt.wantErr)
				}
				return
			}
			if err != nil || m.req != tt.want || m.user != "root" || m.timestamp != 1_800_000_000 {
				t.Errorf("parseFwknopFields(%q) = %+v, %v; want %+v", pt, m, err, tt.want)
			}
		})
	}
	if _, err := parseFwknopFields(msg(rnd, user, ts, "3.0.0", "1", access, "AAAA")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("MD5-length digest: %v; want ErrUnsupported", err)
	}
	if _, err := parseFwknopFields(msg(rnd, user, ts, "3.0.0", "1", access, strings.Repeat("A", 43))); !errors.Is(err, ErrFormat) {
		t.Errorf("wrong digest: %v; want ErrFormat", err)
	}
}

// fwknopPlaintext appends the SHA-256 digest to body, as the client does.
func fwknopPlaintext(body string) string {
	sum := sha256Sum(body)
	return body + ":" + b64.EncodeToString(sum[:])
}

// TestIntegrationFwknopClient points Debian's fwknop client at a UDP
// socket on loopback and checks the datagram it sends.
func TestIntegrationFwknopClient(t *testing.T) {
	const bin = "/usr/bin/fwknop"
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("fwknop's client is not installed (%v): apt-get install fwknop-client", err)
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	port := conn.LocalAddr().(*net.UDPAddr).Port
	rij, mac, server := fwknopTestKeys(t)
	allow := netip.MustParseAddr("192.0.2.7")

	tests := []struct {
		name  string
		extra []string
		want  Grant
	}{
		{"access", []string{"-a", allow.String()}, Grant{Proto: "tcp", Port: 22, Addr: allow, For: DefaultFor, Format: "fwknop", User: "spa-test"}},
		{"client timeout", []string{"-a", allow.String(), "--fw-timeout", "45"}, Grant{Proto: "tcp", Port: 22, Addr: allow, For: 45 * time.Second, Format: "fwknop", User: "spa-test"}},
		// -s: open for the packet's source.
		{"source", []string{"-s"}, Grant{Proto: "tcp", Port: 22, Addr: netip.MustParseAddr("127.0.0.1"), For: DefaultFor, Format: "fwknop", User: "spa-test"}},
	}
	v := NewVerifier(server, nil, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			home := t.TempDir()
			args := append([]string{
				"--no-save-args", "--rc-file", home + "/fwknoprc",
				"-A", "tcp/22", "-D", "127.0.0.1", "-p", strconv.Itoa(port),
				"--key-base64-rijndael", rij, "--key-base64-hmac", mac,
			}, tt.extra...)
			cmd := exec.CommandContext(ctx, bin, args...)
			cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "SPOOF_USER=spa-test"}
			cmd.Dir = home
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("fwknop %q: %v\n%s", args, err, out)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 2048)
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("no datagram from fwknop: %v\n%s", err, out)
			}
			pkt := buf[:n]
			g, err := v.Check(pkt, from.Addr(), time.Now())
			if err != nil || g != tt.want {
				t.Fatalf("Check(fwknop's packet %q) = %+v, %v; want %+v", pkt, g, err, tt.want)
			}
			if _, err := v.Check(pkt, from.Addr(), time.Now()); !errors.Is(err, ErrReplay) {
				t.Errorf("Check(fwknop's packet again) = %v; want ErrReplay", err)
			}
			_, _, other := fwknopTestKeys(t)
			if _, err := NewVerifier(other, nil, 0).Check(pkt, from.Addr(), time.Now()); !errors.Is(err, ErrAuth) {
				t.Errorf("Check(fwknop's packet, other keys) = %v; want ErrAuth", err)
			}
		})
	}
}

func sha256Sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }
