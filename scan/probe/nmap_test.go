package probe

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portctl/portctl/internal/testnet"
	"github.com/portctl/portctl/registry"
	"github.com/portctl/portctl/scan/probe/nmapdb"
)

// TestNmapProbesReachRarity7 is the OpenLDAP case: a server that answers
// only a rarity-6 probe of the file, after 29 more common ones, on a port
// none of them lists. nmap sends every probe up to rarity 7; Detect used
// to stop at 20 probes, its own included, and found nothing.
func TestNmapProbesReachRarity7(t *testing.T) {
	var file strings.Builder
	file.WriteString("Probe TCP NULL q||\n")
	for i := range 29 {
		fmt.Fprintf(&file, "Probe TCP Common%d q|common%d\\r\\n|\nrarity %d\nports 1\n", i, i, 1+i%5)
	}
	file.WriteString("Probe TCP BindReq q|\\x30\\x0c\\x02\\x01\\x01\\x60\\x07\\x02\\x01\\x02\\x04\\0\\x80\\0|\nrarity 6\nports 389\n")
	file.WriteString("match ldap m|^0E\\x02\\x01\\x01a@\\n\\x01\\x02\\x04\\0\\x049historical protocol version requested, use LDAPv3 instead| p/OpenLDAP/\n")
	db, err := nmapdb.Parse(strings.NewReader(file.String()))
	if err != nil {
		t.Fatal(err)
	}
	bind := []byte("\x30\x0c\x02\x01\x01\x60\x07\x02\x01\x02\x04\x00\x80\x00")
	// What slapd 2.5 answers to an LDAPv2 bind; anything else ends the
	// connection, as slapd does with what is not BER.
	answer := []byte("0E\x02\x01\x01a@\n\x01\x02\x04\x00\x049historical protocol version requested, use LDAPv3 instead")
	addr := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 64)
		if n, _ := c.Read(b); bytes.Equal(b[:n], bind) {
			c.Write(answer)
		}
	})
	s := Detect(context.Background(), Config{DB: db, Timeout: 200 * time.Millisecond},
		Target{Addr: addr, Proto: registry.TCP})
	if s.Name != "ldap" || s.Product != "OpenLDAP" || s.Probe != "nmap:BindReq" {
		t.Errorf("Detect = %q %q by %q (%v); want ldap OpenLDAP by nmap:BindReq", s.Name, s.Product, s.Probe, s.Extra)
	}
}
