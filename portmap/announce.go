package portmap

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// AnnouncePort is the port NAT-PMP and PCP routers send their
// unsolicited announcements to, on the all-hosts group 224.0.0.1 (and
// ff02::1): after a restart, or when their external address changed
// (RFC 6886 3.2.1, RFC 6887 14.1.3).
const AnnouncePort = 5350

// Announcement is a router's unsolicited announcement: its epoch started
// again (it restarted and lost its mappings) or its external address
// changed. Mappings should be renewed at once.
type Announcement struct {
	Protocol Protocol
	From     netip.Addr
	Epoch    uint32
	// External is the external address a NAT-PMP announcement carries.
	External netip.Addr
}

// ParseAnnouncement decodes an unsolicited announcement: a NAT-PMP
// external address response (version 0, opcode 128, 12 bytes) or a PCP
// ANNOUNCE response (version 2, success).
func ParseAnnouncement(b []byte) (Announcement, error) {
	if len(b) > 0 && b[0] == 0 {
		r, err := parseNATPMPResponse(b)
		if err != nil {
			return Announcement{}, err
		}
		if r.Op != natpmpOpExternal || r.Result != NATPMPSuccess {
			return Announcement{}, fmt.Errorf("%w: NAT-PMP announcement of opcode %d, %s", errMalformed, r.Op, r.Result)
		}
		return Announcement{Protocol: NATPMP, Epoch: r.Epoch, External: r.External}, nil
	}
	r, err := parsePCPResponse(b)
	if err != nil {
		return Announcement{}, err
	}
	if r.Version != pcpVersion || r.Op != pcpOpAnnounce || r.Result != PCPSuccess {
		return Announcement{}, fmt.Errorf("%w: PCP announcement of version %d, opcode %d, %s", errMalformed, r.Version, r.Op, r.Result)
	}
	return Announcement{Protocol: PCP, Epoch: r.Epoch}, nil
}

// WatchAnnouncements listens on port 5350 for the announcements of the
// router at gateway (others are ignored) and calls fn for each, until ctx
// ends. The port is shared (SO_REUSEADDR, SO_REUSEPORT) so that several
// watchers on one host each get them. It returns once listening, with an
// error if it could not listen; fn runs on a goroutine of its own.
func WatchAnnouncements(ctx context.Context, gateway netip.Addr, fn func(Announcement)) error {
	network, group := "udp4", "0.0.0.0"
	if gateway.Is6() && !gateway.Is4In6() {
		network, group = "udp6", "::"
	}
	lc := net.ListenConfig{Control: shareAddr}
	pc, err := lc.ListenPacket(ctx, network, net.JoinHostPort(group, "5350"))
	if err != nil {
		return fmt.Errorf("portmap: listening for announcements: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	go func() {
		defer stop()
		defer pc.Close()
		buf := make([]byte, pcpMaxLen+1)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return // closed: ctx ended (no deadline is set)
			}
			ua, ok := from.(*net.UDPAddr)
			if !ok || ua.AddrPort().Addr().Unmap().WithZone("") != gateway.Unmap().WithZone("") {
				continue
			}
			a, err := ParseAnnouncement(buf[:n])
			if err != nil {
				continue
			}
			a.From = gateway
			fn(a)
		}
	}()
	return nil
}
