package forward

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestProxyHeader(t *testing.T) {
	v4c, v4s := netip.MustParseAddrPort("192.0.2.1:5000"), netip.MustParseAddrPort("[::ffff:192.0.2.2]:443")
	v6c, v6s := netip.MustParseAddrPort("[2001:db8::1]:5000"), netip.MustParseAddrPort("[2001:db8::2]:443")
	sig := "\r\n\r\n\x00\r\nQUIT\n"
	tests := []struct {
		name     string
		version  int
		src, dst netip.AddrPort
		want     string
	}{
		{"v1 IPv4, mapped unmapped", 1, v4c, v4s, "PROXY TCP4 192.0.2.1 192.0.2.2 5000 443\r\n"},
		{"v1 IPv6", 1, v6c, v6s, "PROXY TCP6 2001:db8::1 2001:db8::2 5000 443\r\n"},
		{"v1 mixed", 1, v4c, v6s, "PROXY UNKNOWN\r\n"},
		{"v2 IPv4", 2, v4c, v4s, sig + "\x21\x11\x00\x0c" + "\xc0\x00\x02\x01\xc0\x00\x02\x02\x13\x88\x01\xbb"},
		{"v2 IPv6", 2, v6c, v6s, sig + "\x21\x21\x00\x24" +
			"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" +
			"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x13\x88\x01\xbb"},
		{"v2 mixed", 2, v6c, v4s, sig + "\x20\x00\x00\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := proxyHeader(tt.version, tt.src, tt.dst); !bytes.Equal(got, []byte(tt.want)) {
				t.Errorf("proxyHeader(%d, %v, %v) = %q; want %q", tt.version, tt.src, tt.dst, got, tt.want)
			}
		})
	}
}
