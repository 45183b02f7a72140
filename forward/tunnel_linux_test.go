package forward_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/portctl/portctl/forward"
	"github.com/portctl/portctl/internal/sshtest"
	"github.com/portctl/portctl/internal/testnet"
)

// TestIntegrationViaReload: a reload that moves a rule onto an SSH server,
// or back off it, keeps its address and serves through the new transport
// at once.
func TestIntegrationViaReload(t *testing.T) {
	d := testnet.StartSSHD(t, testnet.SSHDOptions{})
	m := sshtest.Manager(t, d, "bastion")
	echo := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) { io.Copy(c, c) })
	listen := testnet.ClosedPort(t, "127.0.0.1")
	direct, err := forward.ParseRule(listen.String() + ":" + echo.String())
	if err != nil {
		t.Fatal(err)
	}
	via := direct
	via.Via = "ssh://bastion"
	f := forward.New(forward.Config{SSH: m})
	defer f.Shutdown(t.Context())
	tunnelled := func() uint64 {
		if hs := f.Hosts(); len(hs) == 1 {
			return hs[0].Conns
		}
		return 0
	}
	for i, r := range []forward.Rule{direct, via, direct, via} {
		if err := f.Apply([]forward.Rule{r}); err != nil {
			t.Fatalf("apply %d (%s): %v", i, r, err)
		}
		before := tunnelled()
		c, err := net.DialTimeout("tcp", listen.String(), 5*time.Second)
		if err != nil {
			t.Fatalf("apply %d (%s): %v", i, r, err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("hello"))
		if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
			t.Fatalf("apply %d (%s): no echo: %v", i, r, err)
		}
		c.Close()
		if through := tunnelled() > before; through != (r.Via != "") {
			t.Errorf("apply %d (%s): through SSH %v", i, r, through)
		}
	}
}
