package cli

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/term"
	"github.com/portctl/portctl/portmap"
)

func TestReflectFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want reflectOptions
	}{
		{nil, reflectOptions{Listen: netip.MustParseAddrPort("[::]:7654"), Timeout: 3 * time.Second}},
		{[]string{"--listen", "127.0.0.1:9000", "--timeout", "5s", "--allow-other"},
			reflectOptions{Listen: netip.MustParseAddrPort("127.0.0.1:9000"), Timeout: 5 * time.Second, AllowOther: true}},
	} {
		streams, _, _ := term.Test("")
		var got reflectOptions
		cmd := newReflectCmd(streams, func(_ context.Context, o reflectOptions) error { got = o; return nil })
		cmd.SetArgs(tc.args)
		if err := cmd.Execute(); err != nil || got != tc.want {
			t.Errorf("reflect %q = %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
	for _, bad := range [][]string{{"--listen", "nowhere"}, {"--listen", "1.2.3.4:0x"}, {"--listen", "host:80"}, {"--timeout", "0s"}} {
		streams, _, errOut := term.Test("")
		if code := Run(append([]string{"reflect"}, bad...), streams); code != 2 || strings.Count(errOut.String(), "\n") != 1 {
			t.Errorf("reflect %q: exit %d, stderr %q; want exit 2 and one line", bad, code, errOut)
		}
	}
}

func TestReflectRun(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	streams, _, _ := term.Test("")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runReflect(ctx, streams, reflectOptions{Listen: netip.MustParseAddrPort(addr), Timeout: time.Second})
	}()
	defer func() { cancel(); <-done }()
	target, _ := net.Listen("tcp", "127.0.0.1:0")
	defer target.Close()
	var ans portmap.ReflectAnswer
	var err error
	for range 50 {
		if ans, err = portmap.Reflect(ctx, addr, "tcp", uint16(target.Addr().(*net.TCPAddr).Port), netip.Addr{}); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || !ans.Reachable {
		t.Errorf("Reflect = %+v, %v; want reachable", ans, err)
	}
}
