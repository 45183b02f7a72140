package portmap

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// ParseRouteTable reads Linux's /proc/net/route and returns the gateway
// of the default route with the lowest metric, and its interface; ok is
// false when there is no default route through a gateway.
func ParseRouteTable(r io.Reader) (gw netip.Addr, iface string, ok bool, err error) {
	sc := bufio.NewScanner(r)
	first := true
	best := uint64(1<<63 - 1)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if first {
			first = false
			if len(f) < 8 || f[0] != "Iface" || f[1] != "Destination" || f[2] != "Gateway" {
				return netip.Addr{}, "", false, fmt.Errorf("route table: header %q", sc.Text())
			}
			continue
		}
		if len(f) < 8 {
			return netip.Addr{}, "", false, fmt.Errorf("route table: line %q: want 8 or more fields", sc.Text())
		}
		dst, err1 := routeAddr(f[1])
		via, err2 := routeAddr(f[2])
		flags, err3 := strconv.ParseUint(f[3], 16, 32)
		metric, err4 := strconv.ParseUint(f[6], 10, 32)
		mask, err5 := routeAddr(f[7])
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil {
			return netip.Addr{}, "", false, fmt.Errorf("route table: line %q", sc.Text())
		}
		const up, gateway = 0x1, 0x2 // RTF_UP, RTF_GATEWAY
		if !dst.IsUnspecified() || !mask.IsUnspecified() || flags&(up|gateway) != up|gateway {
			continue
		}
		if metric < best {
			best, gw, iface, ok = metric, via, f[0], true
		}
	}
	return gw, iface, ok, sc.Err()
}

// ParseIPv6RouteTable reads Linux's /proc/net/ipv6_route and returns the
// gateway of the default IPv6 route (::/0 through a gateway) with the
// lowest metric, and its interface; a link-local gateway carries the
// interface as its zone. ok is false when there is no such route.
func ParseIPv6RouteTable(r io.Reader) (gw netip.Addr, iface string, ok bool, err error) {
	sc := bufio.NewScanner(r)
	best := uint64(1<<63 - 1)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 10 {
			return netip.Addr{}, "", false, fmt.Errorf("ipv6 route table: line %q: want 10 fields", sc.Text())
		}
		dst, err1 := hexAddr6(f[0])
		dstLen, err2 := strconv.ParseUint(f[1], 16, 8)
		via, err3 := hexAddr6(f[4])
		metric, err4 := strconv.ParseUint(f[5], 16, 32)
		flags, err5 := strconv.ParseUint(f[8], 16, 32)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil {
			return netip.Addr{}, "", false, fmt.Errorf("ipv6 route table: line %q", sc.Text())
		}
		const up, gateway = 0x1, 0x2 // RTF_UP, RTF_GATEWAY
		if !dst.IsUnspecified() || dstLen != 0 || flags&(up|gateway) != up|gateway || via.IsUnspecified() {
			continue
		}
		if metric < best {
			best, gw, iface, ok = metric, via, f[9], true
			if via.IsLinkLocalUnicast() {
				gw = via.WithZone(iface)
			}
		}
	}
	return gw, iface, ok, sc.Err()
}

// hexAddr6 reads an IPv6 address as /proc/net/ipv6_route prints it: 32
// hex digits, in network order.
func hexAddr6(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 {
		return netip.Addr{}, fmt.Errorf("address %q", s)
	}
	return netip.AddrFrom16([16]byte(b)), nil
}

// routeAddr reads an address as /proc/net/route prints it: the 4 bytes
// of the address taken as a number in the machine's byte order, in hex.
func routeAddr(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return netip.Addr{}, fmt.Errorf("address %q", s)
	}
	var a [4]byte
	binary.NativeEndian.PutUint32(a[:], binary.BigEndian.Uint32(b))
	return netip.AddrFrom4(a), nil
}

// Behind says what an external address a router reports means: another
// NAT beyond it when the address is private (RFC 1918), shared
// (100.64.0.0/10, carrier-grade NAT), link-local or unspecified.
func Behind(external netip.Addr) string {
	a := external.Unmap()
	switch {
	case !a.IsValid() || a.IsUnspecified():
		return "unknown: the router reports no external address"
	case a.IsPrivate():
		return "double NAT: the router's external address " + a.String() + " is private: another NAT lies beyond it"
	case cgnat.Contains(a):
		return "double NAT: the router's external address " + a.String() + " is in 100.64.0.0/10, a carrier-grade NAT's"
	case a.IsLinkLocalUnicast() || a.IsLoopback():
		return "double NAT: the router's external address " + a.String() + " is not routable"
	}
	return ""
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")
