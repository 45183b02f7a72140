package sockets

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sock builds a Socket from "addr:port" strings; remote "" is unconnected.
func sock(proto Proto, state State, local, remote string, procs ...*Process) Socket {
	s := Socket{Proto: proto, State: state, Local: netip.MustParseAddrPort(local), Processes: procs}
	if remote == "" {
		if s.Local.Addr().Is4() {
			remote = "0.0.0.0:0"
		} else {
			remote = "[::]:0"
		}
	}
	s.Remote = netip.MustParseAddrPort(remote)
	return s
}

func TestClassifyPort(t *testing.T) {
	nginx := &Process{PID: 100, Name: "nginx"}
	curl := &Process{PID: 200, Name: "curl"}

	listener := sock(TCP, Listen, "0.0.0.0:8080", "", nginx)
	listener6 := sock(TCP, Listen, "[::]:8080", "", nginx)
	listenerLo := sock(TCP, Listen, "127.0.0.1:8080", "", nginx)
	served1 := sock(TCP, Established, "10.0.0.1:8080", "10.0.0.2:51000", nginx)
	served2 := sock(TCP, CloseWait, "[2001:db8::1]:8080", "[2001:db8::2]:51001", nginx)
	client := sock(TCP, Established, "10.0.0.1:8080", "93.184.216.34:443", curl)
	synSent := sock(TCP, SynSent, "10.0.0.1:8080", "10.0.0.7:22", curl)
	tw1 := sock(TCP, TimeWait, "10.0.0.1:8080", "10.0.0.2:50000")
	tw1.Expires = 12 * time.Second
	tw2 := sock(TCP, TimeWait, "10.0.0.1:8080", "10.0.0.3:50000")
	tw2.Expires = 45 * time.Second
	tw3 := sock(TCP, TimeWait, "10.0.0.1:8080", "10.0.0.4:50000")
	tw3.Expires = 3 * time.Second
	udpBound := sock(UDP, Close, "127.0.0.53:8080", "")
	udpConnected := sock(UDP, Established, "10.0.0.1:8080", "10.0.0.9:53")
	tcpBound := sock(TCP, Close, "0.0.0.0:8080", "", curl)
	otherPort := []Socket{
		sock(TCP, Listen, "0.0.0.0:80", ""),
		sock(TCP, Established, "10.0.0.1:80", "10.0.0.2:8080"), // 8080 as remote port does not count
		sock(TCP, TimeWait, "10.0.0.1:8081", "10.0.0.2:443"),
		sock(UDP, Close, "0.0.0.0:53", ""),
	}

	tests := []struct {
		name        string
		socks       []Socket
		want        PortUse
		wantVerdict Verdict
		wantExpiry  time.Duration
	}{
		{
			name:  "listener with served connections",
			socks: append([]Socket{served1, listener, served2, listener6}, otherPort...),
			want: PortUse{
				Listeners: []Socket{listener, listener6},
				Served:    []Socket{served1, served2},
			},
			wantVerdict: VerdictListening,
		},
		{
			// The kernel lists them in its hash tables' order: the newest
			// of an address first, IPv4 and IPv6 mixed.
			name:  "listeners in order of protocol, family and address",
			socks: []Socket{udpBound, listener6, served1, listenerLo, listener},
			want: PortUse{
				Listeners: []Socket{listener, listenerLo, listener6, udpBound},
				Served:    []Socket{served1},
			},
			wantVerdict: VerdictListening,
		},
		{
			name:        "client connections, no listener",
			socks:       append([]Socket{client, synSent}, otherPort...),
			want:        PortUse{Clients: []Socket{client, synSent}},
			wantVerdict: VerdictClient,
		},
		{
			name:        "time-wait only",
			socks:       append([]Socket{tw1, tw2, tw3}, otherPort...),
			want:        PortUse{TimeWait: []Socket{tw1, tw2, tw3}},
			wantVerdict: VerdictTimeWait,
			wantExpiry:  45 * time.Second,
		},
		{
			name:        "udp bound, unconnected, is a listener",
			socks:       []Socket{udpBound},
			want:        PortUse{Listeners: []Socket{udpBound}},
			wantVerdict: VerdictListening,
		},
		{
			name:        "udp connected socket next to a udp listener is served",
			socks:       []Socket{udpBound, udpConnected},
			want:        PortUse{Listeners: []Socket{udpBound}, Served: []Socket{udpConnected}},
			wantVerdict: VerdictListening,
		},
		{
			name:        "a tcp listener does not make a udp connection served",
			socks:       []Socket{listener, udpConnected},
			want:        PortUse{Listeners: []Socket{listener}, Clients: []Socket{udpConnected}},
			wantVerdict: VerdictListening,
		},
		{
			name:        "tcp bound, not listening",
			socks:       append([]Socket{tcpBound}, otherPort...),
			want:        PortUse{Bound: []Socket{tcpBound}},
			wantVerdict: VerdictBound,
		},
		{
			name:        "bound beats time-wait",
			socks:       []Socket{tw1, tcpBound},
			want:        PortUse{Bound: []Socket{tcpBound}, TimeWait: []Socket{tw1}},
			wantVerdict: VerdictBound,
			wantExpiry:  12 * time.Second,
		},
		{
			name:        "client beats bound and time-wait",
			socks:       []Socket{tw2, tcpBound, client},
			want:        PortUse{Clients: []Socket{client}, Bound: []Socket{tcpBound}, TimeWait: []Socket{tw2}},
			wantVerdict: VerdictClient,
			wantExpiry:  45 * time.Second,
		},
		{
			name:        "everything at once",
			socks:       []Socket{tw1, served1, tcpBound, listener, tw2},
			want:        PortUse{Listeners: []Socket{listener}, Served: []Socket{served1}, Bound: []Socket{tcpBound}, TimeWait: []Socket{tw1, tw2}},
			wantVerdict: VerdictListening,
			wantExpiry:  45 * time.Second,
		},
		{
			name:        "other ports only",
			socks:       otherPort,
			wantVerdict: VerdictFree,
		},
		{
			name:        "empty",
			wantVerdict: VerdictFree,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ClassifyPort(tt.socks, 8080)
			want := tt.want
			want.Port = 8080
			for _, s := range []*[]Socket{&want.Listeners, &want.Served, &want.Clients, &want.TimeWait, &want.Bound} {
				if *s == nil {
					*s = []Socket{} // ClassifyPort never leaves nil slices (JSON [] not null)
				}
			}
			if diff := cmp.Diff(want, got, equateAddrs); diff != "" {
				t.Errorf("ClassifyPort(…, 8080) mismatch (-want +got):\n%s", diff)
			}
			if v := got.Verdict(); v != tt.wantVerdict {
				t.Errorf("ClassifyPort(…, 8080).Verdict() = %q; want %q", v, tt.wantVerdict)
			}
			if d := got.LastExpiry(); d != tt.wantExpiry {
				t.Errorf("ClassifyPort(…, 8080).LastExpiry() = %v; want %v", d, tt.wantExpiry)
			}
		})
	}
}

func TestVerdictServedOnly(t *testing.T) {
	// Served without a listener cannot come from ClassifyPort, but a PortUse
	// built by hand still answers.
	u := PortUse{Served: []Socket{sock(TCP, Established, "10.0.0.1:80", "10.0.0.2:5000")}}
	if v := u.Verdict(); v != VerdictClient {
		t.Errorf("PortUse{Served: 1}.Verdict() = %q; want %q", v, VerdictClient)
	}
}

func pidsOf(ps []*Process) []int {
	var out []int
	for _, p := range ps {
		out = append(out, p.PID)
	}
	return out
}

func TestHolders(t *testing.T) {
	master := &Process{PID: 300, Name: "nginx"}
	worker1 := &Process{PID: 301, Name: "nginx"}
	worker2 := &Process{PID: 302, Name: "nginx"}
	worker2Again := &Process{PID: 302, Name: "nginx"} // the same process found twice
	curl := &Process{PID: 50, Name: "curl"}
	app := &Process{PID: 7, Name: "app"}

	tests := []struct {
		name string
		u    PortUse
		want []int
	}{
		{
			name: "listeners' holders, distinct and sorted, others ignored",
			u: PortUse{
				Listeners: []Socket{
					sock(TCP, Listen, "0.0.0.0:80", "", worker2, master),
					sock(TCP, Listen, "[::]:80", "", worker1, worker2Again, master),
				},
				Served:  []Socket{sock(TCP, Established, "10.0.0.1:80", "10.0.0.2:5000", app)},
				Clients: []Socket{sock(TCP, Established, "10.0.0.1:80", "10.0.0.3:443", curl)},
			},
			want: []int{300, 301, 302},
		},
		{
			name: "a bound socket's holder blocks the bind; connections do not count",
			u: PortUse{
				Bound:   []Socket{sock(TCP, Close, "0.0.0.0:80", "", worker1)},
				Clients: []Socket{sock(TCP, Established, "10.0.0.1:80", "10.0.0.3:443", curl, worker1)},
				Served:  []Socket{sock(TCP, Established, "10.0.0.1:80", "10.0.0.2:5000", app)},
			},
			want: []int{301},
		},
		{
			name: "no listener or bound socket: the connections' holders",
			u: PortUse{
				Clients: []Socket{sock(TCP, Established, "10.0.0.1:80", "10.0.0.3:443", curl, worker1)},
				Served:  []Socket{sock(TCP, Established, "10.0.0.1:80", "10.0.0.2:5000", app)},
			},
			want: []int{7, 50, 301},
		},
		{
			// kill must never pick a connection's process for a listener
			// whose holder it cannot see.
			name: "listener without attribution has no holder",
			u: PortUse{
				Listeners: []Socket{sock(TCP, Listen, "0.0.0.0:80", "")},
				Clients:   []Socket{sock(TCP, Established, "10.0.0.1:80", "10.0.0.3:443", curl)},
			},
		},
		{
			name: "time-wait has no holder",
			u:    PortUse{TimeWait: []Socket{sock(TCP, TimeWait, "10.0.0.1:80", "10.0.0.3:443")}},
		},
		{name: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pidsOf(tt.u.Holders())
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Holders() PIDs mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
