package probe

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan/probe/nmapdb"
)

// TestQuietServerGetsNmapProbes: a server that keeps every connection
// open and silent until it reads the one request it knows, which only the
// last probe of the file (rarity 7, after five others) sends, is still
// found within the budget, after all of this package's probes drew
// nothing: the wait shrinks once four probes in a row drew nothing.
func TestQuietServerGetsNmapProbes(t *testing.T) {
	file := "Probe TCP NULL q||\n"
	for _, name := range []string{"A", "B", "C", "D", "E"} {
		file += "Probe TCP Filler" + name + " q|" + name + "\\r\\n|\nrarity 1\n"
	}
	file += "Probe TCP Hello q|HELLO QUIET\\r\\n|\nrarity 7\nmatch quiet m|^QUIET ([\\d.]+)| p/Quiet server/ v/$1/\n"
	db, err := nmapdb.Parse(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	addr := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		c.SetDeadline(time.Now().Add(15 * time.Second))
		var got []byte
		b := make([]byte, 512)
		for {
			n, err := c.Read(b)
			got = append(got, b[:n]...)
			if bytes.HasPrefix(got, []byte("HELLO QUIET\r\n")) {
				c.Write([]byte("QUIET 1.2\r\n"))
				return
			}
			if err != nil {
				return
			}
		}
	})
	start := time.Now()
	s := Detect(context.Background(), Config{DB: db}, Target{Addr: addr, Proto: registry.TCP})
	if s.Name != "quiet" || s.Version != "1.2" {
		t.Errorf("Detect = %q %q %q (%v) after %v; want quiet 1.2", s.Name, s.Product, s.Version, s.Extra, time.Since(start))
	}
}
