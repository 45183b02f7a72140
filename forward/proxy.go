package forward

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// proxyV2Signature starts every PROXY protocol version 2 header.
var proxyV2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// proxyHeader is the PROXY protocol header (HAProxy's specification) of
// the given version, 1 (text) or 2 (binary), telling the backend the
// client's address (src) and the address it connected to (dst).
func proxyHeader(version int, src, dst netip.AddrPort) []byte {
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	v4 := src.Addr().Is4()
	mixed := v4 != dst.Addr().Is4()
	if version == 1 {
		if mixed {
			return []byte("PROXY UNKNOWN\r\n")
		}
		family := "TCP6"
		if v4 {
			family = "TCP4"
		}
		return fmt.Appendf(nil, "PROXY %s %s %s %d %d\r\n", family, src.Addr(), dst.Addr(), src.Port(), dst.Port())
	}
	b := append([]byte{}, proxyV2Signature...)
	switch {
	case mixed:
		// LOCAL command, no address: the backend uses the connection's.
		return append(b, 0x20, 0x00, 0, 0)
	case v4:
		b = append(b, 0x21, 0x11, 0, 12) // PROXY, TCP over IPv4, 12 bytes
	default:
		b = append(b, 0x21, 0x21, 0, 36) // PROXY, TCP over IPv6, 36 bytes
	}
	b = append(b, src.Addr().AsSlice()...)
	b = append(b, dst.Addr().AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}
