package port

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/portctl/portctl/netconf"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/sockets"
)

var host = netconf.Host{Ephemeral: registry.Range{First: 32768, Last: 60999}, UnprivilegedStart: 1024,
	Reserved: []registry.Range{{First: 40000, Last: 40000}}}

func TestDescribe(t *testing.T) {
	reg := registry.Builtin()
	for _, tt := range []struct {
		port                            uint16
		class                           registry.Class
		privileged, ephemeral, reserved bool
		name                            string // an assignment's name, "" for none
	}{
		{443, registry.System, true, false, false, "https"},
		{6379, registry.User, false, false, false, "redis"},
		{40000, registry.User, false, true, true, ""},
		{60999, registry.Dynamic, false, true, false, ""},
	} {
		got := Describe(reg, host, tt.port, registry.AnyProtocol)
		if got.Port != tt.port || got.Class != tt.class || got.Privileged != tt.privileged || got.Ephemeral != tt.ephemeral || got.Reserved != tt.reserved {
			t.Errorf("Describe(%d) = %+v; want class %v, privileged %v, ephemeral %v, reserved %v", tt.port, got, tt.class, tt.privileged, tt.ephemeral, tt.reserved)
		}
		found := tt.name == ""
		for _, a := range got.Assignments {
			found = found || a.Name == tt.name
		}
		if !found {
			t.Errorf("Describe(%d).Assignments = %+v; want %q among them", tt.port, got.Assignments, tt.name)
		}
		if got.EphemeralRange != "32768-60999" || got.UnprivilegedStart != 1024 {
			t.Errorf("Describe(%d) host facts = %q, %d", tt.port, got.EphemeralRange, got.UnprivilegedStart)
		}
	}
	// A port nobody assigned still gives lists, not null.
	b, _ := json.Marshal(Describe(reg, host, 65000, registry.SCTP))
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"assignments", "uses", "security_notes"} {
		if _, ok := m[k].([]any); !ok {
			t.Errorf("Describe(65000/sctp) JSON %s = %v; want a list", k, m[k])
		}
	}
}

func TestServicePort(t *testing.T) {
	eph := registry.Range{First: 32768, Last: 60999}
	for _, tt := range []struct {
		local, remote string
		state         sockets.State
		want          uint16
	}{
		{"0.0.0.0:443", "0.0.0.0:0", sockets.Listen, 443},
		{"10.0.0.1:443", "10.0.0.9:50000", sockets.Established, 443},   // served: the local end
		{"10.0.0.1:50000", "10.0.0.9:5432", sockets.Established, 5432}, // a client: the remote end
		{"10.0.0.1:8080", "10.0.0.9:9090", sockets.Established, 8080},  // neither ephemeral: the lower
		{"127.0.0.1:53", "0.0.0.0:0", sockets.Close, 53},
	} {
		s := sockets.Socket{Local: netip.MustParseAddrPort(tt.local), Remote: netip.MustParseAddrPort(tt.remote), State: tt.state}
		if got := ServicePort(&s, eph); got != tt.want {
			t.Errorf("ServicePort(%s -> %s, %v) = %d; want %d", tt.local, tt.remote, tt.state, got, tt.want)
		}
	}
	if got := ServiceName(registry.Builtin(), 53, sockets.UDP); got != "domain" {
		t.Errorf("ServiceName(53, udp) = %q; want domain", got)
	}
}
