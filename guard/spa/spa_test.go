package spa

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	t0     = time.Unix(1_800_000_000, 0)
	client = netip.MustParseAddr("198.51.100.7")
)

// testKeys returns a client's HMAC key file, a client's Ed25519 private
// key file and the server's file holding both (the public key for the
// Ed25519 one).
func testKeys(t testing.TB) (hmacKey, edKey Key, server Keys) {
	t.Helper()
	h, err := GenerateHMAC()
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := GenerateEd25519()
	if err != nil {
		t.Fatal(err)
	}
	hk, err := LoadKeys(strings.NewReader(h))
	if err != nil {
		t.Fatalf("LoadKeys(GenerateHMAC()): %v", err)
	}
	ek, err := LoadKeys(strings.NewReader(priv))
	if err != nil {
		t.Fatalf("LoadKeys(GenerateEd25519() private): %v", err)
	}
	server, err = LoadKeys(strings.NewReader("# server\n" + h + pub))
	if err != nil {
		t.Fatalf("LoadKeys(server): %v", err)
	}
	return hk[0], ek[0], server
}

func TestSPARoundTrip(t *testing.T) {
	hk, ek, server := testKeys(t)
	tests := []struct {
		name string
		key  Key
		req  Request
		want Grant
	}{
		{"hmac, source address", hk, Request{Proto: "tcp", Port: 22, For: 45 * time.Second},
			Grant{Proto: "tcp", Port: 22, Addr: client, For: 45 * time.Second, Format: "portctl"}},
		{"ed25519, named IPv4 address", ek, Request{Proto: "udp", Port: 51820, Addr: netip.MustParseAddr("203.0.113.9")},
			Grant{Proto: "udp", Port: 51820, Addr: netip.MustParseAddr("203.0.113.9"), For: DefaultFor, Format: "portctl"}},
		{"hmac, named IPv6 address, capped", hk, Request{Proto: "tcp", Port: 443, For: 5 * time.Hour, Addr: netip.MustParseAddr("2001:db8::5")},
			Grant{Proto: "tcp", Port: 443, Addr: netip.MustParseAddr("2001:db8::5"), For: DefaultMaxFor, Format: "portctl"}},
		{"ed25519, mapped address sent as IPv4, rounded up", ek, Request{Proto: "tcp", Port: 1, For: 1500 * time.Millisecond, Addr: netip.MustParseAddr("::ffff:192.0.2.1")},
			Grant{Proto: "tcp", Port: 1, Addr: netip.MustParseAddr("192.0.2.1"), For: 2 * time.Second, Format: "portctl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt, err := Encode(tt.req, tt.key, t0)
			if err != nil {
				t.Fatal(err)
			}
			v := NewVerifier(server, nil, 0)
			got, err := v.Check(pkt, client, t0.Add(3*time.Second))
			if err != nil {
				t.Fatalf("Check = %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("Check grant (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSPAVerifierLimits(t *testing.T) {
	hk, _, server := testKeys(t)
	v := NewVerifier(server, nil, time.Minute)
	v.DefaultFor, v.MaxFor = 10*time.Second, 20*time.Second
	for _, tt := range []struct {
		ask, want time.Duration
	}{{0, 10 * time.Second}, {15 * time.Second, 15 * time.Second}, {time.Hour, 20 * time.Second}} {
		pkt, _ := Encode(Request{Proto: "tcp", Port: 22, For: tt.ask}, hk, t0)
		g, err := v.Check(pkt, client, t0)
		if err != nil || g.For != tt.want {
			t.Errorf("Check(For %s) = %v, %v; want For %s", tt.ask, g.For, err, tt.want)
		}
	}
}

func TestSPATamperedRejected(t *testing.T) {
	hk, ek, server := testKeys(t)
	for _, key := range []Key{hk, ek} {
		pkt, err := Encode(Request{Proto: "tcp", Port: 22, Addr: netip.MustParseAddr("192.0.2.1")}, key, t0)
		if err != nil {
			t.Fatal(err)
		}
		v := NewVerifier(server, nil, 0)
		for i := range pkt {
			for _, flip := range []byte{0x01, 0x80} {
				bad := bytes.Clone(pkt)
				bad[i] ^= flip
				if g, err := v.Check(bad, client, t0); err == nil {
					t.Errorf("%s packet with byte %d ^ %#x: Check = %+v; want an error", key.Kind, i, flip, g)
				}
			}
		}
		for _, n := range []int{0, 1, 4, len(pkt) - 1} {
			if _, err := v.Check(pkt[:n], client, t0); !errors.Is(err, ErrFormat) {
				t.Errorf("%s packet cut to %d bytes: Check = %v; want ErrFormat", key.Kind, n, err)
			}
		}
		if _, err := v.Check(append(bytes.Clone(pkt), 0), client, t0); !errors.Is(err, ErrFormat) {
			t.Errorf("%s packet with a byte more: Check = %v; want ErrFormat", key.Kind, err)
		}
		if _, err := v.Check(pkt, client, t0); err != nil {
			t.Errorf("%s packet untouched after the tampered ones: Check = %v", key.Kind, err)
		}
	}
}

func TestSPATimestamp(t *testing.T) {
	hk, _, server := testKeys(t)
	tests := []struct {
		name  string
		sent  time.Time
		valid bool
	}{
		{"now", t0, true},
		{"2 minutes old", t0.Add(-DefaultMaxAge), true},
		{"2 minutes ahead", t0.Add(DefaultMaxAge), true},
		{"too old", t0.Add(-DefaultMaxAge - time.Second), false},
		{"from the future", t0.Add(DefaultMaxAge + time.Second), false},
		{"an hour old", t0.Add(-time.Hour), false},
	}
	for _, tt := range tests {
		pkt, _ := Encode(Request{Proto: "tcp", Port: 22}, hk, tt.sent)
		_, err := NewVerifier(server, nil, 0).Check(pkt, client, t0)
		if tt.valid && err != nil {
			t.Errorf("%s: Check = %v; want accepted", tt.name, err)
		}
		if !tt.valid && !errors.Is(err, ErrStale) {
			t.Errorf("%s: Check = %v; want ErrStale", tt.name, err)
		}
	}
}

func TestSPAReplay(t *testing.T) {
	hk, ek, server := testKeys(t)
	cache := NewReplayCache(0)
	v := NewVerifier(server, cache, 0)
	p1, _ := Encode(Request{Proto: "tcp", Port: 22}, hk, t0)
	p2, _ := Encode(Request{Proto: "tcp", Port: 22}, ek, t0)
	for _, p := range [][]byte{p1, p2} {
		if _, err := v.Check(p, client, t0); err != nil {
			t.Fatalf("first Check = %v", err)
		}
		if _, err := v.Check(p, client, t0.Add(time.Second)); !errors.Is(err, ErrReplay) {
			t.Errorf("replay: Check = %v; want ErrReplay", err)
		}
	}

	// The cache survives a restart.
	var buf bytes.Buffer
	if err := cache.Save(&buf); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadReplayCache(bytes.NewReader(buf.Bytes()), t0.Add(10*time.Second))
	if err != nil {
		t.Fatalf("LoadReplayCache(Save()) = %v\n%s", err, buf.String())
	}
	v2 := NewVerifier(server, loaded, 0)
	for _, p := range [][]byte{p1, p2} {
		if _, err := v2.Check(p, client, t0.Add(20*time.Second)); !errors.Is(err, ErrReplay) {
			t.Errorf("replay after Save and Load: Check = %v; want ErrReplay", err)
		}
	}
	// Entries expire after twice the maximum age; by then the packet is stale.
	late, err := LoadReplayCache(bytes.NewReader(buf.Bytes()), t0.Add(2*DefaultMaxAge+time.Second))
	if err != nil || late.Len() != 0 {
		t.Errorf("LoadReplayCache after expiry: %d entries, %v; want 0", late.Len(), err)
	}
	p3, _ := Encode(Request{Proto: "tcp", Port: 22}, hk, t0)
	if _, err := v2.Check(p3, client, t0.Add(20*time.Second)); err != nil {
		t.Errorf("a new packet after Load: Check = %v", err)
	}
}

func TestSPAReplayCacheBounded(t *testing.T) {
	hk, _, server := testKeys(t)
	v := NewVerifier(server, NewReplayCache(3), 0)
	for i := range 3 {
		p, _ := Encode(Request{Proto: "tcp", Port: 22}, hk, t0)
		if _, err := v.Check(p, client, t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := Encode(Request{Proto: "tcp", Port: 22}, hk, t0)
	if _, err := v.Check(p, client, t0.Add(5*time.Second)); !errors.Is(err, ErrReplayCacheFull) {
		t.Errorf("fourth packet into a cache of 3: Check = %v; want ErrReplayCacheFull", err)
	}
	// Once the first ones have expired, there is room again.
	p, _ = Encode(Request{Proto: "tcp", Port: 22}, hk, t0.Add(2*DefaultMaxAge+time.Second))
	if _, err := v.Check(p, client, t0.Add(2*DefaultMaxAge+time.Second)); err != nil {
		t.Errorf("after expiry: Check = %v", err)
	}
}

func TestSPAWrongKey(t *testing.T) {
	hk, ek, _ := testKeys(t)
	_, _, other := testKeys(t)
	v := NewVerifier(other, nil, 0)
	for _, k := range []Key{hk, ek} {
		p, _ := Encode(Request{Proto: "tcp", Port: 22}, k, t0)
		if _, err := v.Check(p, client, t0); !errors.Is(err, ErrAuth) {
			t.Errorf("%s packet against other keys: Check = %v; want ErrAuth", k.Kind, err)
		}
	}
	// An HMAC packet whose key ID is forged to name the server's key.
	_, _, server := testKeys(t)
	var serverHMAC Key
	for _, k := range server {
		if k.Kind == HMACSHA256 {
			serverHMAC = k
		}
	}
	p, _ := Encode(Request{Proto: "tcp", Port: 22}, hk, t0)
	id := serverHMAC.ID()
	copy(p[6:14], id[:])
	if _, err := NewVerifier(server, nil, 0).Check(p, client, t0); !errors.Is(err, ErrAuth) {
		t.Errorf("packet naming the server's key ID: Check = %v; want ErrAuth", err)
	}
	if _, err := Encode(Request{Proto: "tcp", Port: 22}, Key{Kind: Ed25519Public, Material: make([]byte, 32)}, t0); err == nil {
		t.Error("Encode with a public key: want an error")
	}
}

func TestSPAEncodeErrors(t *testing.T) {
	hk, _, _ := testKeys(t)
	for _, req := range []Request{
		{Proto: "sctp", Port: 22},
		{Proto: "tcp", Port: 0},
		{Proto: "tcp", Port: 22, For: -time.Second},
		{Proto: "tcp", Port: 22, For: 1 << 62},
	} {
		if _, err := Encode(req, hk, t0); err == nil {
			t.Errorf("Encode(%+v) = nil error; want one", req)
		}
	}
}

func TestSPALoadKeys(t *testing.T) {
	b32 := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // 32 bytes 0..31
	tests := []struct {
		name    string
		in      string
		want    []KeyKind
		wantErr string // substring; "" for no error
	}{
		{"hmac with comment", "portctl-spa hmac-sha256 " + b32 + " laptop\n", []KeyKind{HMACSHA256}, ""},
		{"several, comments, blank lines", "# keys\n\nportctl-spa ed25519-public " + b32 + "\n  portctl-spa ed25519-public " + strings.TrimSuffix(b32, "=") + "\nportctl-spa hmac-sha256 " + b32 + "\n",
			[]KeyKind{Ed25519Public, Ed25519Public, HMACSHA256}, ""},
		{"fwknop pair", "fwknop-rijndael " + b32 + "\nfwknop-hmac-sha256 " + b32 + "\n", []KeyKind{FwknopRijndael, FwknopHMACSHA256}, ""},
		{"fwknop --key-gen output", "KEY_BASE64:   " + b32 + "\nHMAC_KEY_BASE64:  " + b32 + "\n", []KeyKind{FwknopRijndael, FwknopHMACSHA256}, ""},
		{"empty", "", nil, "no key"},
		{"only comments", "# nothing\n", nil, "no key"},
		{"unknown type", "portctl-spa rsa " + b32, nil, `line 1: unknown key type "portctl-spa rsa"`},
		{"unknown word", "\nssh-ed25519 AAAA", nil, `line 2: unknown key type "ssh-ed25519"`},
		{"no key", "portctl-spa hmac-sha256", nil, "line 1: portctl-spa hmac-sha256 has no key"},
		{"not base64", "portctl-spa hmac-sha256 !!!!", nil, "line 1: portctl-spa hmac-sha256: the key is not base64"},
		{"short hmac", "portctl-spa hmac-sha256 AAAA", nil, "3 bytes; want 16 to 64"},
		{"short ed25519", "portctl-spa ed25519-public AAAA", nil, "3 bytes; want 32"},
		{"unpaired fwknop", "fwknop-rijndael " + b32 + "\n#\nportctl-spa hmac-sha256 " + b32 + "\n", nil, "line 1: fwknop-rijndael key without its fwknop-hmac-sha256 key"},
		{"two rijndael", "fwknop-rijndael " + b32 + "\nfwknop-rijndael " + b32 + "\nfwknop-hmac-sha256 " + b32, nil, "line 1: fwknop-rijndael key without"},
		{"long line", strings.Repeat("x", 5000), nil, "line 1 is longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := LoadKeys(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrKeyFile) {
					t.Fatalf("LoadKeys(%q) = %v; want an ErrKeyFile mentioning %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadKeys(%q) = %v", tt.in, err)
			}
			var got []KeyKind
			for _, k := range ks {
				got = append(got, k.Kind)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("LoadKeys(%q) kinds (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestSPAKeyStringRoundTrip(t *testing.T) {
	_, ek, server := testKeys(t)
	ks := append(Keys{ek}, server...)
	ks[0].Comment = "alice@laptop"
	var text strings.Builder
	for _, k := range ks {
		text.WriteString(k.String() + "\n")
	}
	got, err := LoadKeys(strings.NewReader(text.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i].Line = 0
	}
	for i := range ks {
		ks[i].Line = 0
	}
	if diff := cmp.Diff(ks, got); diff != "" {
		t.Errorf("LoadKeys(String()) (-want +got):\n%s", diff)
	}
	if ks[0].ID() != ks[2].ID() {
		t.Errorf("the private key's ID %x differs from its public key's %x", ks[0].ID(), ks[2].ID())
	}
}

func TestSPASigner(t *testing.T) {
	hk, ek, server := testKeys(t)
	if k, err := (Keys{ek}).Signer(); err != nil || k.Kind != Ed25519Private {
		t.Errorf("Signer of a private key file = %v, %v", k.Kind, err)
	}
	if k, err := (Keys{hk}).Signer(); err != nil || k.Kind != HMACSHA256 {
		t.Errorf("Signer of an HMAC key file = %v, %v", k.Kind, err)
	}
	var pubOnly Keys
	for _, k := range server {
		if k.Kind == Ed25519Public {
			pubOnly = append(pubOnly, k)
		}
	}
	if _, err := pubOnly.Signer(); err == nil || !strings.Contains(err.Error(), "for the server") {
		t.Errorf("Signer of a public key file = %v; want an error", err)
	}
	if _, err := (Keys{hk, ek}).Signer(); err == nil {
		t.Error("Signer of two signing keys: want an error")
	}
}

func TestSPAReplayCacheLoadErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", "empty"},
		{"bad header", "hello\n", "line 1"},
		{"bad limit", "portctl-spa-replay 1 limit=0\n", "line 1: limit"},
		{"no expiry", "portctl-spa-replay 1 limit=5\nabcd\n", "line 2"},
		{"bad hex", "portctl-spa-replay 1 limit=5\nxyz 1\n", "line 2: ID"},
		{"bad expiry", "portctl-spa-replay 1 limit=5\nabcd -1\n", "line 2: expiry"},
		{"twice", "portctl-spa-replay 1 limit=5\nabcd 99999999999\nabcd 99999999999\n", "line 3: ID abcd is there twice"},
		{"over the limit", "portctl-spa-replay 1 limit=1\nab 99999999999\ncd 99999999999\n", "line 3: more entries"},
	}
	for _, tt := range tests {
		if _, err := LoadReplayCache(strings.NewReader(tt.in), t0); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: LoadReplayCache(%q) = %v; want an error mentioning %q", tt.name, tt.in, err, tt.want)
		}
	}
}

// TestSPAConcurrentReplay: of one packet checked by many goroutines at
// once, exactly one is accepted.
func TestSPAConcurrentReplay(t *testing.T) {
	hk, _, server := testKeys(t)
	v := NewVerifier(server, nil, 0)
	pkt, _ := Encode(Request{Proto: "tcp", Port: 22}, hk, t0)
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := v.Check(pkt, client, t0)
			errs <- err
		}()
	}
	accepted := 0
	for range n {
		err := <-errs
		switch {
		case err == nil:
			accepted++
		case !errors.Is(err, ErrReplay):
			t.Errorf("Check = %v; want nil or ErrReplay", err)
		}
	}
	if accepted != 1 {
		t.Errorf("%d of %d concurrent Checks of one packet accepted it; want 1", accepted, n)
	}
}
