package registry_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/registry"
)

const (
	tcp  = registry.TCP
	udp  = registry.UDP
	sctp = registry.SCTP
	dccp = registry.DCCP
)

func TestParseProtocol(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want registry.Protocol
	}{
		{"tcp", "tcp", tcp},
		{"upper case", "UDP", udp},
		{"mixed case", "Sctp", sctp},
		{"dccp", "dccp", dccp},
		{"slash set", "tcp/udp", tcp | udp},
		{"comma set", "tcp,udp", tcp | udp},
		{"reversed set", "udp/tcp", tcp | udp},
		{"space around parts", " tcp / udp ", tcp | udp},
		{"repeated", "tcp/tcp", tcp},
		{"every protocol", "tcp/udp/sctp/dccp", registry.AnyProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := registry.ParseProtocol(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParseProtocol(%q) = %v, %v; want %v, nil", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseProtocolErrors(t *testing.T) {
	for _, in := range []string{"icmp", "", "/", ",", "tcp/icmp", "ddp", "tcpudp", "6"} {
		t.Run(in, func(t *testing.T) {
			got, err := registry.ParseProtocol(in)
			if err == nil {
				t.Fatalf("ParseProtocol(%q) = %v, nil; want an error", in, got)
			}
			if !errors.Is(err, registry.ErrSyntax) {
				t.Errorf("ParseProtocol(%q) error %v does not match ErrSyntax", in, err)
			}
		})
	}
}

func TestProtocolString(t *testing.T) {
	tests := []struct {
		p    registry.Protocol
		want string
	}{
		{0, ""},
		{tcp, "tcp"},
		{udp, "udp"},
		{sctp, "sctp"},
		{dccp, "dccp"},
		{udp | tcp, "tcp/udp"},
		{dccp | tcp, "tcp/dccp"},
		{registry.AnyProtocol, "tcp/udp/sctp/dccp"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("Protocol(%d).String() = %q; want %q", uint8(tt.p), got, tt.want)
		}
	}
}

func TestProtocolHas(t *testing.T) {
	tests := []struct {
		p, q registry.Protocol
		want bool
	}{
		{tcp, tcp, true},
		{tcp, udp, false},
		{tcp | udp, tcp, true},
		{tcp | udp, udp, true},
		{tcp | udp, tcp | udp, true},
		{tcp, tcp | udp, false},
		{registry.AnyProtocol, sctp | dccp, true},
		{tcp, 0, false},
		{0, 0, false},
	}
	for _, tt := range tests {
		if got := tt.p.Has(tt.q); got != tt.want {
			t.Errorf("%v.Has(%v) = %v; want %v", tt.p, tt.q, got, tt.want)
		}
	}
}

func TestProtocolEach(t *testing.T) {
	tests := []struct {
		p    registry.Protocol
		want []registry.Protocol
	}{
		{0, nil},
		{tcp, []registry.Protocol{tcp}},
		{dccp | udp, []registry.Protocol{udp, dccp}},
		{registry.AnyProtocol, []registry.Protocol{tcp, udp, sctp, dccp}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.p.Each()); diff != "" {
			t.Errorf("%v.Each() mismatch (-want +got):\n%s", tt.p, diff)
		}
	}
}

func TestProtocolTextRoundTrip(t *testing.T) {
	for p := registry.Protocol(1); p <= registry.AnyProtocol; p++ {
		b, err := p.MarshalText()
		if err != nil {
			t.Fatalf("Protocol(%d).MarshalText() error: %v", uint8(p), err)
		}
		var got registry.Protocol
		if err := got.UnmarshalText(b); err != nil || got != p {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v, nil", b, got, err, p)
		}
	}
}

func TestProtocolUnmarshalTextError(t *testing.T) {
	p := tcp
	err := p.UnmarshalText([]byte("icmp"))
	if !errors.Is(err, registry.ErrSyntax) {
		t.Errorf("UnmarshalText(%q) error = %v; want ErrSyntax", "icmp", err)
	}
	if p != tcp {
		t.Errorf("UnmarshalText(%q) changed the protocol to %v; want it left at tcp", "icmp", p)
	}
}
