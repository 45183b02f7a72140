package guard

import (
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
)

// FuzzConntrackEvent: whatever a conntrack event message holds, decoding
// it and reading the flow it ended does not panic, and a flow read has
// both ends.
func FuzzConntrackEvent(f *testing.F) {
	// A destroy event's header type: NFNL_SUBSYS_CTNETLINK << 8 |
	// IPCTNL_MSG_CT_DELETE.
	const destroy = 1<<8 | 2
	f.Add([]byte{2, 0, 0, 0})
	f.Add([]byte{2, 0, 0, 0, 52, 0, 1, 128, 20, 0, 1, 128, 8, 0, 1, 0, 10, 0, 0, 2, 8, 0, 2, 0, 10, 0, 0, 1,
		28, 0, 2, 128, 5, 0, 1, 0, 6, 0, 0, 0, 6, 0, 2, 0, 156, 64, 0, 0, 6, 0, 3, 0, 0, 80, 0, 0,
		8, 0, 3, 0, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev conntrack.Event
		if err := ev.Unmarshal(netlink.Message{Header: netlink.Header{Type: destroy}, Data: b}); err != nil {
			return
		}
		if _, c, s, ok := endedFlow(ev); ok && (!c.IsValid() || !s.IsValid()) {
			t.Errorf("endedFlow = %v, %v, true", c, s)
		}
	})
}
