package forward

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
)

// TestHandOver: a connection whose backend has no address yet (a host
// name not resolved) goes from the event loop to the goroutine path,
// whose dialer resolves it, and is relayed and counted as any other.
func TestHandOver(t *testing.T) {
	echo := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) { io.Copy(c, c) })
	r, _ := ParseRule("127.0.0.1:0:" + echo.String())
	f := New(Config{DataPath: DataPathLoops})
	if err := f.Apply([]Rule{r}); err != nil {
		t.Fatal(err)
	}
	defer f.Shutdown(context.Background())
	run := f.rules[r.Key()]
	for _, b := range run.pool.backends {
		b.addr.Store(nil) // as if its host name were not resolved yet
	}
	addr, _ := f.Addr(r.Key())
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("handed over"))
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != "handed over" {
		t.Fatalf("read %q, %v; want the echo", got, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := f.Stats()[0]
		if s.Active == 0 && s.Conns == 1 && s.BytesIn == 11 && s.BytesOut == 11 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v; want 1 connection, 11 bytes each way, none active", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
