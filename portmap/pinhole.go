package portmap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/huin/goupnp/dcps/internetgateway2"
)

// pinholeKey names a pinhole IGD opened: its protocol and the address and
// port it lets in to.
type pinholeKey struct {
	proto    string
	internal netip.AddrPort
}

// maxPinholeLease is the longest lease WANIPv6FirewallControl allows (a
// day); a pinhole cannot be permanent.
const maxPinholeLease = 86400

// pinholeLease turns a lease into a pinhole's seconds: 1 to a day; zero
// (permanent, which pinholes cannot be) is a day, renewed at half.
func pinholeLease(d time.Duration) uint32 {
	s := leaseSeconds(d)
	if s == 0 || s > maxPinholeLease {
		return maxPinholeLease
	}
	return s
}

func (c *IGD) firewall() *internetgateway2.WANIPv6FirewallControl1 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fc
}

func (c *IGD) pinhole(k pinholeKey) (uint16, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.pinholes[k]
	return id, ok
}

func (c *IGD) setPinhole(k pinholeKey, id uint16, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok {
		delete(c.pinholes, k)
		return
	}
	if c.pinholes == nil {
		c.pinholes = map[pinholeKey]uint16{}
	}
	c.pinholes[k] = id
}

// errNoFirewallControl is returned for an IPv6 mapping through a device
// without the IPv6 firewall control service.
var errNoFirewallControl = errors.New("upnp: the router has no WANIPv6FirewallControl service (IGDv2): it opens no IPv6 pinholes")

// mapPinhole opens, or renews, an IPv6 pinhole (IGDv2's
// WANIPv6FirewallControl: AddPinhole, UpdatePinhole) that lets any remote
// host in to internal and r's internal port. There is no translation:
// the mapping's external address and port are the internal ones. The
// request must come from internal itself (routers check that), so the
// control URL must be reached over IPv6. A pinhole whose update the
// router refuses is opened again: one it lost gives 704, NoSuchEntry, or
// from miniupnpd 2.3.1 with nftables 402, Invalid Args; and AddPinhole
// of a pinhole the router still has extends it (IGDv2 asks that).
func (c *IGD) mapPinhole(ctx context.Context, r Request, internal netip.Addr) (Mapping, error) {
	if c.firewall() == nil {
		return Mapping{}, errNoFirewallControl
	}
	proto, err := pcpProto(r.Proto) // the IANA number, as PCP
	if err != nil {
		return Mapping{}, fmt.Errorf("upnp: %w", err)
	}
	if r.External != 0 && r.External != r.Internal.Port() {
		return Mapping{}, fmt.Errorf("upnp: an IPv6 pinhole opens the internal port %d itself; external port %d cannot differ", r.Internal.Port(), r.External)
	}
	at := netip.AddrPortFrom(internal, r.Internal.Port())
	k := pinholeKey{r.Proto, at}
	lease := pinholeLease(r.Lease)
	m := Mapping{Protocol: UPnP, Proto: r.Proto, Internal: at, External: at,
		Lease: time.Duration(lease) * time.Second, Description: r.Description}
	if id, ok := c.pinhole(k); ok {
		err := c.do(ctx, "UpdatePinhole", func(igdConn) error { return c.firewall().UpdatePinholeCtx(ctx, id, lease) })
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, ErrRefused) {
			return Mapping{}, err
		}
		c.setPinhole(k, 0, false)
	}
	var id uint16
	err = c.do(ctx, "AddPinhole", func(igdConn) (err error) {
		id, err = c.firewall().AddPinholeCtx(ctx, "", 0, internal.String(), r.Internal.Port(), uint16(proto), lease)
		return err
	})
	if err != nil {
		return Mapping{}, err
	}
	c.setPinhole(k, id, true)
	return m, nil
}

// unmapPinhole closes a pinhole mapPinhole opened (DeletePinhole); one
// the router no longer has, or this client never opened, is not an
// error.
func (c *IGD) unmapPinhole(ctx context.Context, m Mapping) error {
	k := pinholeKey{m.Proto, m.Internal}
	id, ok := c.pinhole(k)
	if !ok {
		return nil
	}
	if c.firewall() == nil {
		return errNoFirewallControl
	}
	err := c.do(ctx, "DeletePinhole", func(igdConn) error { return c.firewall().DeletePinholeCtx(ctx, id) })
	if err != nil && errorCode(err) != 704 {
		return err
	}
	c.setPinhole(k, 0, false)
	return nil
}

// lookupPinhole says whether the router still has the pinhole of m
// (GetPinholePackets answers for an open one, 704 for one it lost).
func (c *IGD) lookupPinhole(ctx context.Context, m Mapping) (Mapping, bool, error) {
	id, ok := c.pinhole(pinholeKey{m.Proto, m.Internal})
	if !ok || c.firewall() == nil {
		return Mapping{}, false, nil
	}
	err := c.do(ctx, "GetPinholePackets", func(igdConn) error {
		_, err := c.firewall().GetPinholePacketsCtx(ctx, id)
		return err
	})
	if errorCode(err) == 704 {
		return Mapping{}, false, nil
	}
	if err != nil {
		return Mapping{}, false, err
	}
	return m, true, nil
}
