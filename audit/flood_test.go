package audit

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/portctl/portctl/guard/flood"
	"github.com/portctl/portctl/sockets"
)

// TestCheckFlood: a full accept queue in the table, and the kernel's
// counters of overflowed queues in Input.Flood.
func TestCheckFlood(t *testing.T) {
	nginx := proc(300, "nginx", 33, "/usr/sbin/nginx")
	queued := func(addr string, p *sockets.Process, queue, backlog uint32) sockets.Socket {
		s := listen(addr, p)
		s.RecvQ, s.SendQ = queue, backlog
		return s
	}
	tests := []struct {
		name   string
		socks  []sockets.Socket
		flood  *flood.Counters
		policy string
		want   []summary
	}{
		{"queue full", []sockets.Socket{queued("0.0.0.0:80", nginx, 511, 511), queued("[::]:80", nginx, 0, 511)}, nil, "",
			[]summary{{"accept-queue-full", "medium", "tcp 0.0.0.0:80"}}},
		{"queue past its backlog", []sockets.Socket{queued("127.0.0.1:9000", nil, 2, 1)}, nil, "",
			[]summary{{"accept-queue-full", "medium", "tcp 127.0.0.1:9000"}}},
		{"queue not full", []sockets.Socket{queued("0.0.0.0:80", nginx, 500, 511)}, nil, "", []summary{}},
		{"udp queues are not accept queues", []sockets.Socket{func() sockets.Socket {
			s := udp("0.0.0.0:53", proc(400, "named", 53, ""))
			s.RecvQ, s.SendQ = 10, 0
			return s
		}()}, nil, "", []summary{}},
		{"quiet counters", nil, &flood.Counters{PassiveOpens: 1000}, "", []summary{}},
		{"overflows and cookies", nil, &flood.Counters{ListenOverflows: 12, SyncookiesSent: 45128, PassiveOpens: 1000}, "",
			[]summary{{"listen-overflows", "low", "TcpExt ListenOverflows"}, {"syncookies-sent", "low", "TcpExt SyncookiesSent"}}},
		{"excepted by the policy", nil, &flood.Counters{ListenOverflows: 12, SyncookiesSent: 1}, "except:\n  - rule: syncookies-sent\n    reason: a load test\n",
			[]summary{{"listen-overflows", "low", "TcpExt ListenOverflows"}}},
		{"raised by the policy", []sockets.Socket{queued("0.0.0.0:80", nginx, 511, 511)}, nil, "severity:\n  accept-queue-full: high\n",
			[]summary{{"accept-queue-full", "high", "tcp 0.0.0.0:80"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p *Policy
			if tt.policy != "" {
				var err error
				if p, err = ParsePolicy([]byte(tt.policy)); err != nil {
					t.Fatal(err)
				}
			}
			rep := Check(Input{Sockets: tt.socks, Host: linuxHost, OS: "linux", Flood: tt.flood}, p)
			if diff := cmp.Diff(tt.want, summarize(rep.Findings)); diff != "" {
				t.Errorf("Check findings mismatch (-want +got):\n%s", diff)
				for _, f := range rep.Findings {
					t.Logf("%s %s: %s", f.Severity, f.Rule, f.Title)
				}
			}
			for _, f := range rep.Findings {
				if f.Title == "" || f.Why == "" || f.Fix == "" || f.Key == "" {
					t.Errorf("finding %s has an empty title, why, fix or key: %+v", f.Rule, f)
				}
			}
		})
	}
	rep := Check(Input{Sockets: []sockets.Socket{queued("0.0.0.0:80", nginx, 511, 511)}, Host: linuxHost, OS: "linux",
		Flood: &flood.Counters{SyncookiesSent: 45128, SyncookiesRecv: 3}}, nil)
	for _, want := range []string{
		"The accept queue of nginx on tcp 0.0.0.0:80 is full (511 of 511)",
		"The SYN queue has overflowed: 45128 SYN cookies sent",
		"answered 45128 SYNs with SYN cookies because a SYN queue was full (3 came back valid)",
	} {
		found := false
		for _, f := range rep.Findings {
			found = found || strings.Contains(f.Title+" "+f.Why, want)
		}
		if !found {
			t.Errorf("no finding says %q: %+v", want, rep.Findings)
		}
	}
}
