package portmap

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

func TestParseAnnouncement(t *testing.T) {
	natpmp := []byte{0, 128, 0, 0, 0, 0, 0, 7, 203, 0, 113, 1}
	pcp := make([]byte, 24)
	pcp[0], pcp[1] = 2, 0x80 // version 2, ANNOUNCE response
	binary.BigEndian.PutUint32(pcp[8:], 3)
	pcpMap := append([]byte(nil), pcp...)
	pcpMap[1] = 0x81
	failed := append([]byte(nil), natpmp...)
	failed[3] = 3
	for _, c := range []struct {
		name string
		b    []byte
		want Announcement
		ok   bool
	}{
		{"natpmp", natpmp, Announcement{Protocol: NATPMP, Epoch: 7, External: netip.MustParseAddr("203.0.113.1")}, true},
		{"pcp", pcp, Announcement{Protocol: PCP, Epoch: 3}, true},
		{"pcp map response", pcpMap, Announcement{}, false},
		{"natpmp failure", failed, Announcement{}, false},
		{"natpmp request", []byte{0, 0}, Announcement{}, false},
		{"empty", nil, Announcement{}, false},
	} {
		got, err := ParseAnnouncement(c.b)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("%s: ParseAnnouncement(%x) = %+v, %v; want %+v, ok %v", c.name, c.b, got, err, c.want, c.ok)
		}
	}
}

func FuzzParseAnnouncement(f *testing.F) {
	f.Add([]byte{0, 128, 0, 0, 0, 0, 0, 7, 203, 0, 113, 1})
	f.Add(append([]byte{2, 0x80}, make([]byte, 22)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAnnouncement(b)
		if err == nil && a.Protocol != NATPMP && a.Protocol != PCP {
			t.Errorf("ParseAnnouncement(%x) = %+v with no error", b, a)
		}
	})
}
