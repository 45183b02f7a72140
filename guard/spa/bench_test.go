package spa

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkSPACheck measures Check on an accepted packet of each kind,
// and on the junk a flood would send: what one datagram costs the server.
func BenchmarkSPACheck(b *testing.B) {
	hk, ek, fw, server := fuzzKeys(b)
	req := Request{Proto: "tcp", Port: 22, Addr: netip.MustParseAddr("192.0.2.1")}
	hmacPkt, _ := Encode(req, hk, t0)
	edPkt, _ := Encode(req, ek, t0)
	fwPkt, _ := EncodeFwknop(req, fw, "root", t0)
	junkFw := bytes.Repeat([]byte("A"), len(fwPkt))
	junkPortctl := bytes.Clone(hmacPkt)
	junkPortctl[len(junkPortctl)-1] ^= 1
	for _, bc := range []struct {
		name string
		pkt  []byte
		ok   bool
	}{
		{"portctl-hmac", hmacPkt, true},
		{"portctl-ed25519", edPkt, true},
		{"fwknop", fwPkt, true},
		{"forged-portctl", junkPortctl, false},
		{"junk-fwknop-sized", junkFw, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			v := NewVerifier(server, nil, 0)
			b.ReportAllocs()
			for b.Loop() {
				// A fresh cache each time, so that the packet is not a replay.
				v.cache = &ReplayCache{limit: 1, seen: make(map[string]time.Time, 1)}
				if _, err := v.Check(bc.pkt, client, t0.Add(time.Second)); (err == nil) != bc.ok {
					b.Fatalf("Check = %v", err)
				}
			}
		})
	}
}
