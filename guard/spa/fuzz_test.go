package spa

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// fuzzKeys are fixed keys, so that seeds stay valid across runs.
func fuzzKeys(t testing.TB) (hmacKey, edKey Key, fw FwknopKey, server Keys) {
	t.Helper()
	const text = `portctl-spa hmac-sha256 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
portctl-spa ed25519-private ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=
fwknop-rijndael QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=
fwknop-hmac-sha256 YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8=
`
	ks, err := LoadKeys(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	pairs, _ := ks.FwknopPairs()
	return ks[0], ks[1], pairs[0], ks
}

// checkGrant fails when a Grant that Check returned breaks its promises.
func checkGrant(t *testing.T, g Grant) {
	if (g.Proto != "tcp" && g.Proto != "udp") || g.Port == 0 || !g.Addr.IsValid() || g.For <= 0 || g.For > DefaultMaxFor {
		t.Fatalf("Check accepted a packet with grant %+v", g)
	}
}

// FuzzSPAPortctl: a portctl packet never panics the decoder, and one that
// decodes encodes back to the same bytes.
func FuzzSPAPortctl(f *testing.F) {
	hk, ek, _, server := fuzzKeys(f)
	for _, req := range []Request{
		{Proto: "tcp", Port: 22},
		{Proto: "udp", Port: 53, For: time.Minute, Addr: netip.MustParseAddr("192.0.2.1")},
		{Proto: "tcp", Port: 443, Addr: netip.MustParseAddr("2001:db8::1")},
	} {
		for _, k := range []Key{hk, ek} {
			p, err := Encode(req, k, t0)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(p)
		}
	}
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodePortctl(b)
		if err == nil {
			if len(p.tag) != 32 && len(p.tag) != 64 {
				t.Fatalf("decodePortctl(%x): tag of %d bytes", b, len(p.tag))
			}
			if !bytes.Equal(append(bytes.Clone(p.signed), p.tag...), b) {
				t.Fatalf("decodePortctl(%x) lost bytes", b)
			}
		}
		g, err := NewVerifier(server, nil, 0).Check(b, client, t0)
		if err == nil {
			checkGrant(t, g)
		}
	})
}

// FuzzSPAFwknop: fwknop's packets, with the fixed keys so that the
// fuzzer's mutations of a seed get past the HMAC only if it finds a
// collision; FuzzSPAFwknopFields reaches the fields.
func FuzzSPAFwknop(f *testing.F) {
	_, _, fw, server := fuzzKeys(f)
	for _, req := range []Request{
		{Proto: "tcp", Port: 22, Addr: netip.MustParseAddr("192.0.2.1")},
		{Proto: "udp", Port: 1194, For: time.Minute},
	} {
		p, err := EncodeFwknop(req, fw, "root", t0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	f.Add([]byte(strings.Repeat("A", fwknopMinLen)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := decodeFwknop(b, fw); err == nil && len(b) < fwknopMinLen {
			t.Fatalf("decodeFwknop accepted %d bytes", len(b))
		}
		g, err := NewVerifier(server, nil, 0).Check(b, client, t0)
		if err == nil {
			checkGrant(t, g)
		}
	})
}

// FuzzSPAFwknopFields: the decrypted fields, digest recomputed so that
// mutations reach the parser.
func FuzzSPAFwknopFields(f *testing.F) {
	e := b64.EncodeToString
	f.Add("1234567890123456:" + e([]byte("root")) + ":1800000000:3.0.0:1:" + e([]byte("192.0.2.1,tcp/22")))
	f.Add("1234567890123456:" + e([]byte("root")) + ":1800000000:3.0.0:3:" + e([]byte("0.0.0.0,udp/53")) + ":60")
	f.Add("1234567890123456:" + e([]byte("root")) + ":1800000000:3.0.0:2:" + e([]byte("192.0.2.1,tcp/22")) + ":" + e([]byte("10.0.0.1,22")))
	f.Fuzz(func(t *testing.T, body string) {
		m, err := parseFwknopFields(fwknopPlaintext(body))
		if err != nil {
			return
		}
		if (m.req.Proto != "tcp" && m.req.Proto != "udp") || m.req.Port == 0 || m.timestamp < 0 || len(m.digest) != 32 {
			t.Fatalf("parseFwknopFields(%q) = %+v", body, m)
		}
	})
}

// FuzzSPALoadKeys: a key file never panics the loader, and what it loads
// writes back to a file that loads the same.
func FuzzSPALoadKeys(f *testing.F) {
	f.Add("portctl-spa hmac-sha256 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= laptop\n")
	f.Add("# c\nportctl-spa ed25519-public AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n")
	f.Add("KEY_BASE64: QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=\nHMAC_KEY_BASE64: YGFi\n")
	f.Add("fwknop-rijndael QUJD\nfwknop-hmac-sha256 QUJD\nfwknop-rijndael QUJD\n")
	f.Fuzz(func(t *testing.T, text string) {
		ks, err := LoadKeys(strings.NewReader(text))
		if err != nil {
			return
		}
		var out strings.Builder
		for _, k := range ks {
			out.WriteString(k.String() + "\n")
		}
		again, err := LoadKeys(strings.NewReader(out.String()))
		if err != nil || len(again) != len(ks) {
			t.Fatalf("LoadKeys(%q) loads, but its keys written back do not: %v\n%s", text, err, out.String())
		}
		for i := range ks {
			if again[i].Kind != ks[i].Kind || !bytes.Equal(again[i].Material, ks[i].Material) {
				t.Fatalf("key %d: %v, written back %v", i, ks[i], again[i])
			}
		}
	})
}

// FuzzSPALoadReplayCache: a cache file never panics the loader, and what
// it loads saves to a file that loads the same.
func FuzzSPALoadReplayCache(f *testing.F) {
	f.Add("portctl-spa-replay 1 limit=65536\n70aabbccdd 1800000200\n66eeff 1800000300\n")
	f.Add("portctl-spa-replay 1 limit=1\nab 1\n")
	f.Add("portctl-spa-replay 1 limit=2\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := LoadReplayCache(strings.NewReader(text), t0)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := c.Save(&buf); err != nil {
			t.Fatal(err)
		}
		again, err := LoadReplayCache(&buf, t0)
		if err != nil || again.Len() != c.Len() || again.limit != c.limit {
			t.Fatalf("LoadReplayCache(%q) loads, but saved again it does not: %v", text, err)
		}
	})
}
